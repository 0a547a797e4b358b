"""PyTorch's ``torch._foreach_*`` ops: one op applied across lists of tensors, as EMA code
(timm's ``ModelEmaV3``, ema-pytorch) and hand-written optimizers call them.

``_foreach_add(tensors, other)`` is ``tuple(t.add(o) for t, o in zip(tensors, others))``;
the ``_`` forms work in place and return the list they were given. ``other`` is a number, a
list of numbers, a list of tensors, or (add, sub, mul, div) one tensor for all; ``value`` of
``addcmul``/``addcdiv`` is a number, a list of numbers or a 1-d tensor of them; ``lerp``'s
``weight`` is a number, a list of numbers, one tensor or a list of tensors. The out-of-place
forms are differentiable, as PyTorch's are. manygrad runs them one tensor at a time, through
the Tensor methods (no fused multi-tensor kernels).

Re-exported as ``manygrad._foreach_<op>`` (``torch._foreach_<op>`` under ``manygrad run``).

Example:
    >>> ema, params = [mg.zeros(3), mg.zeros(2)], [mg.ones(3), mg.ones(2)]
    >>> mg._foreach_lerp_(ema, params, weight=0.1)   # ema += 0.1 * (params - ema)
    >>> mg._foreach_norm(params)                     # (tensor(1.7321), tensor(1.4142))
"""

from __future__ import annotations

from ..errors import ShapeError
from ..tensor import Tensor


def _list(name: str, tensors, what: str = "tensors") -> list:
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"torch.{name}: {what} should be a list or tuple of Tensors, got "
                        f"{type(tensors).__name__}")  # fmt: skip
    if not tensors:
        raise ShapeError(f"torch.{name}: the tensor list is empty; pass at least one tensor")
    return list(tensors)


def _spread(name: str, n: int, other) -> list:
    """``other`` once per tensor: a list/tuple of ``n`` items as given, anything else n times."""
    if isinstance(other, (list, tuple)):
        if len(other) != n:
            raise ShapeError(f"torch.{name}: {n} tensors but {len(other)} values in the second "
                             "list; give one value (or tensor) per tensor")  # fmt: skip
        return list(other)
    return [other] * n


def _scalars(name: str, n: int, value) -> list:
    """``value`` of addcmul/addcdiv: a number, a list of numbers or a 1-d tensor of them."""
    if isinstance(value, Tensor):
        if value.ndim != 1:
            raise ShapeError(f"torch.{name}: a tensor of scalars should be 1-d, got shape "
                             f"{tuple(value.shape)}")  # fmt: skip
        value = value.tolist()  # NOTE: PyTorch too needs these scalars on the host
    return _spread(name, n, value)


# ------------------------------------------------------------------------------------ builders


def _unary(op: str):
    name = f"_foreach_{op}"

    def fn(self):
        return tuple(getattr(t, op)() for t in _list(name, self))

    def fn_(self):
        for t in _list(name + "_", self):
            getattr(t, op + "_")()
        return self

    fn.__doc__ = f"``t.{op}()`` for each tensor ``t``, as a tuple."
    fn_.__doc__ = f"``t.{op}_()`` for each tensor ``t``; returns ``self``."
    return {name: fn, name + "_": fn_}


def _binary(op: str, alpha: bool = False, scalar_op: str | None = None):
    """``scalar_op``: the Tensor method for a number (``maximum(x, 0.5)`` is ``clamp_min``)."""
    name = f"_foreach_{op}"

    def pairs(fname, self, other):
        ts = _list(fname, self)
        return ts, _spread(fname, len(ts), other)

    def method(t, o, inplace):
        m = scalar_op if scalar_op and not isinstance(o, Tensor) else op
        if not inplace:
            return getattr(t, m)
        if hasattr(t, m + "_"):
            return getattr(t, m + "_")
        return lambda *a, **k: t.copy_(getattr(t, m)(*a, **k))  # no Tensor.maximum_

    if alpha:

        def fn(self, other, *, alpha=1):
            ts, os = pairs(name, self, other)
            if alpha != 1 and not isinstance(os[0], Tensor):
                raise TypeError(f"torch.{name}: alpha goes with tensors only; scale the "
                                "number instead")  # fmt: skip
            return tuple(method(t, o, False)(o, alpha=alpha) for t, o in zip(ts, os))

        def fn_(self, other, *, alpha=1):
            ts, os = pairs(name + "_", self, other)
            if alpha != 1 and not isinstance(os[0], Tensor):
                raise TypeError(f"torch.{name}_: alpha goes with tensors only; scale the "
                                "number instead")  # fmt: skip
            for t, o in zip(ts, os):
                method(t, o, True)(o, alpha=alpha)
            return self

    else:

        def fn(self, other):
            ts, os = pairs(name, self, other)
            return tuple(method(t, o, False)(o) for t, o in zip(ts, os))

        def fn_(self, other):
            ts, os = pairs(name + "_", self, other)
            for t, o in zip(ts, os):
                method(t, o, True)(o)
            return self

    fn.__doc__ = f"``t.{op}(o)`` for each tensor ``t`` and its ``other`` ``o``, as a tuple."
    fn_.__doc__ = f"``t.{op}_(o)`` for each tensor ``t`` and its ``other`` ``o``; returns ``self``."
    return {name: fn, name + "_": fn_}


def _pointwise(op: str):
    """addcmul / addcdiv: ``self + value * t1 {*,/} t2``."""
    name = f"_foreach_{op}"

    def fn(self, tensor1, tensor2, value=1):
        ts = _list(name, self)
        t1 = _spread(name, len(ts), _list(name, tensor1, "tensor1"))
        t2 = _spread(name, len(ts), _list(name, tensor2, "tensor2"))
        vs = _scalars(name, len(ts), value)
        return tuple(getattr(t, op)(a, b, value=v) for t, a, b, v in zip(ts, t1, t2, vs))

    def fn_(self, tensor1, tensor2, value=1):
        ts = _list(name + "_", self)
        t1 = _spread(name + "_", len(ts), _list(name + "_", tensor1, "tensor1"))
        t2 = _spread(name + "_", len(ts), _list(name + "_", tensor2, "tensor2"))
        for t, a, b, v in zip(ts, t1, t2, _scalars(name + "_", len(ts), value)):
            getattr(t, op + "_")(a, b, value=v)
        return self

    fn.__doc__ = f"``t.{op}(t1, t2, value=v)`` per tensor, as a tuple."
    fn_.__doc__ = f"``t.{op}_(t1, t2, value=v)`` per tensor; returns ``self``."
    return {name: fn, name + "_": fn_}


_UNARY = (
    "abs", "acos", "asin", "atan", "ceil", "cos", "cosh", "erf", "erfc", "exp", "expm1",
    "floor", "frac", "lgamma", "log", "log10", "log1p", "log2", "neg", "reciprocal", "round",
    "rsqrt", "sigmoid", "sign", "sin", "sinh", "sqrt", "tan", "tanh", "trunc",
)  # fmt: skip


def _named(fns: dict) -> dict:
    # NOTE: module-level names, so that the functions pickle by reference
    for n, f in fns.items():
        f.__name__ = f.__qualname__ = n
    return fns


_OPS: dict = {}
for _op in _UNARY:
    _OPS.update(_unary(_op))
for _op in ("add", "sub"):
    _OPS.update(_binary(_op, alpha=True))
for _op in ("mul", "div", "clamp_min", "clamp_max", "pow"):
    _OPS.update(_binary(_op))
_OPS.update(_binary("maximum", scalar_op="clamp_min"))
_OPS.update(_binary("minimum", scalar_op="clamp_max"))
_OPS.update(_pointwise("addcmul"))
_OPS.update(_pointwise("addcdiv"))
globals().update(_named(_OPS))

_tensor_pow = _OPS["_foreach_pow"]


def _foreach_pow(self, exponent):
    """``tensors ** exponent``; ``self`` may also be one number raised to each tensor."""
    if isinstance(self, (int, float)):
        from ..ops import pow as _pow

        return tuple(_pow(self, e) for e in _list("_foreach_pow", exponent, "exponent"))
    return _tensor_pow(self, exponent)


def _foreach_lerp(self, tensors1, weight):
    """``self + weight * (tensors1 - self)`` per tensor."""
    ts = _list("_foreach_lerp", self)
    ends = _spread("_foreach_lerp", len(ts), _list("_foreach_lerp", tensors1, "tensors1"))
    ws = _spread("_foreach_lerp", len(ts), weight)
    return tuple(t.lerp(e, w) for t, e, w in zip(ts, ends, ws))


def _foreach_lerp_(self, tensors1, weight):
    """In place: ``self += weight * (tensors1 - self)`` per tensor; returns ``self``."""
    ts = _list("_foreach_lerp_", self)
    ends = _spread("_foreach_lerp_", len(ts), _list("_foreach_lerp_", tensors1, "tensors1"))
    ws = _spread("_foreach_lerp_", len(ts), weight)
    for t, e, w in zip(ts, ends, ws):
        t.lerp_(e, w)
    return self


def _foreach_zero_(self):
    """Zero every tensor in place; returns ``self``."""
    for t in _list("_foreach_zero_", self):
        t.zero_()
    return self


def _foreach_copy_(self, src, non_blocking: bool = False):
    """Copy ``src[i]`` into ``self[i]`` (broadcast, cast, across devices); returns ``self``."""
    ts = _list("_foreach_copy_", self)
    for t, s in zip(ts, _spread("_foreach_copy_", len(ts), _list("_foreach_copy_", src, "src"))):
        t.copy_(s, non_blocking=non_blocking)
    return self


def _foreach_clone(self):
    """A copy of each tensor."""
    return tuple(t.clone() for t in _list("_foreach_clone", self))


def _foreach_norm(self, ord=2, dtype=None):  # noqa: A002
    """The vector norm of each tensor, as 0-d tensors."""
    from ..linalg import vector_norm

    return tuple(vector_norm(t, ord, dtype=dtype) for t in _list("_foreach_norm", self))


def _foreach_powsum(self, ord=2):  # noqa: A002
    """``sum(|t| ** ord)`` of each tensor, as 0-d tensors."""
    return tuple(t.abs().pow(ord).sum() for t in _list("_foreach_powsum", self))


def _foreach_max(self):
    """The largest element of each tensor, as 0-d tensors."""
    return tuple(t.max() for t in _list("_foreach_max", self))


def _foreach_mm(self, mat2):
    """``self[i] @ mat2[i]`` for 2-d tensors."""
    ts = _list("_foreach_mm", self)
    mats = _spread("_foreach_mm", len(ts), _list("_foreach_mm", mat2, "mat2"))
    return tuple(a.mm(b) for a, b in zip(ts, mats))


__all__ = sorted(n for n in globals() if n.startswith("_foreach_"))
