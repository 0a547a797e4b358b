"""Elementwise math, joins and slices of sparse COO tensors, as PyTorch has them.

The function forms (``mg.sqrt(s)``, ``mg.mul(s, 2)``, ``mg.cat([s1, s2])``,
``mg.narrow_copy(s, 1, 0, 2)``) reach the functions here when the dense op refuses a sparse
operand (see ``_out.with_out`` and ``ops.elementwise._binary``); the methods come from
``SparseMath``, a base of ``SparseCooTensor``. Results are sparse COO tensors whose values
are computed by the dense ops, so gradients reach the values.

As in PyTorch: a function with ``f(0) == 0`` is applied to the stored values, after
coalescing unless it is linear (``neg``, ``mul``, ``div``), which keeps the entries as they
are; functions that would make the result dense (``exp``, ``cos``, ``sigmoid``, ``log``)
are refused with ``NotImplementedError``.

Example:
    >>> s = mg.sparse_coo_tensor([[0, 1], [1, 0]], [4.0, 9.0], (2, 2))
    >>> mg.sqrt(s).to_dense()  # [[0, 2], [3, 0]]
"""

from __future__ import annotations

from . import backend
from . import dtypes as D
from .errors import ShapeError
from .tensor import Tensor

# unary functions that keep zeros as zeros: applied to the values of the coalesced tensor
COALESCING = frozenset(
    "abs absolute arcsin arcsinh arctan arctanh asin asinh atan atanh ceil deg2rad erf erfinv "
    "expm1 fix floor frac isinf isnan isneginf isposinf log1p nan_to_num rad2deg relu round "
    "sgn sign signbit sin sinh sqrt square tan tanh trunc".split()
)
# linear ones: applied to the values as stored (duplicates stay, as the coalesced flag)
LINEAR = frozenset({"neg", "negative", "positive", "conj"})


def is_sparse(x) -> bool:
    """Whether ``x`` is a sparse COO tensor."""
    return isinstance(x, _coo())


def _coo():
    from .sparse import SparseCooTensor

    return SparseCooTensor


def is_compressed(x) -> bool:
    """Whether ``x`` is a sparse CSR, CSC, BSR or BSC tensor."""
    from ._sparse_compressed import SparseCompressedTensor

    return isinstance(x, SparseCompressedTensor)


def _compressed_binary(name: str, input, other, alpha=1):  # noqa: A002
    """``add``/``sub``/``mul`` with a compressed operand: by a number or a 0-d tensor, two of
    one layout (their union or common entries), or dense + compressed (a dense tensor)."""
    if name == "mul":
        s, o = (input, other) if is_compressed(input) else (other, input)
        out = s.__mul__(o)
        if out is NotImplemented:
            raise RuntimeError(f"mul: unsupported operand {type(o).__name__} for a "
                               f"{s.layout} tensor; use s.to_dense()")  # fmt: skip
        return out
    if name == "sub":
        name, alpha = "add", -alpha
    if alpha != 1:
        other = other * alpha
    if is_compressed(input) and is_compressed(other):
        return input.__add__(other)
    if is_compressed(input):
        return _mg().add(input.to_dense(), other)
    return _mg().add(input, other.to_dense())


def _unsupported(x) -> RuntimeError:
    from ._sparse_compressed import layout_name

    return RuntimeError(f"unsupported tensor layout: {layout_name(x)} (convert with "
                        "s.to_dense() first)")  # fmt: skip


def _mg():
    import manygrad

    return manygrad


def _dense_only(name: str) -> NotImplementedError:
    return NotImplementedError(
        f"{name}: not supported for sparse COO tensors (as in PyTorch: {name}(0) is not 0, so "
        "the result would be dense); apply it to s.to_dense(), or to s.values() for the "
        "stored entries"
    )


def unary(name: str, input, *args, **kwargs):  # noqa: A002
    """``mg.<name>`` of a sparse COO tensor (see the module docstring), or of a compressed
    one's stored values."""
    if is_compressed(input):
        if name in COALESCING or name in LINEAR:
            return getattr(input, name)(*args, **kwargs)
        raise _unsupported(input)
    if not is_sparse(input):
        raise TypeError(f"{name}: expected a Tensor, got {type(input).__name__}")
    fn = getattr(_mg(), name)
    if name in LINEAR:
        return input._with_values(fn(input._vals, *args, **kwargs))
    if name not in COALESCING:
        raise _dense_only(name)
    c = input.coalesce()
    return _coo()(c._idx, fn(c._vals, *args, **kwargs), c._size, True)


# ---------------------------------------------------------------------------- binary ops


def mul(input, other):  # noqa: A002
    """Sparse times a number, a 0-d or broadcastable dense tensor (its entries at the stored
    positions), or a sparse tensor of the same size: a sparse tensor."""
    s, o = (input, other) if is_sparse(input) else (other, input)
    out = s.__mul__(o)
    if out is NotImplemented:
        raise TypeError(f"mul: unsupported operand type {type(o).__name__} for a sparse tensor")
    return out


def div(input, other, *, rounding_mode=None):  # noqa: A002
    """Sparse divided by a number or a 0-d tensor; a rounding mode coalesces first."""
    if not is_sparse(input) or is_sparse(other) or (isinstance(other, Tensor) and other.ndim):
        shape = list(other.shape) if hasattr(other, "shape") else []
        raise RuntimeError(
            "Sparse division requires a scalar or zero-dim dense tensor divisor (got shape "
            f"{shape} for divisor); divide the dense form (s.to_dense() / d) instead"
        )
    if rounding_mode is None:
        return input._with_values(_mg().div(input._vals, other))
    c = input.coalesce()
    return _coo()(c._idx, _mg().div(c._vals, other, rounding_mode=rounding_mode), c._size, True)


def add(input, other, *, alpha=1):  # noqa: A002
    """Sparse + sparse (a sparse tensor, coalesced when both are), or dense + sparse (a dense
    tensor of the same size); ``alpha`` scales ``other``."""
    if is_sparse(input) and is_sparse(other):
        if input._size != other._size:
            raise ShapeError(
                f"add: expected sizes of 'self' and 'other' to match, but {list(input._size)} "
                f"!= {list(other._size)}"
            )
        if alpha != 1:
            other = other * alpha
        ops = _mg().ops
        idx = ops.cat([input._idx, other._idx.to(input._idx.device)], 1)
        out = _coo()(idx, ops.cat([input._vals, other._vals]), input._size, False)
        # NOTE: PyTorch merges two coalesced operands into a coalesced result
        return out.coalesce() if input._coalesced and other._coalesced else out
    if is_sparse(input):
        raise RuntimeError("add(sparse, dense) is not supported. Use add(dense, sparse) instead.")
    shape = list(input.shape) if isinstance(input, Tensor) else []
    if shape != list(other._size):
        raise ShapeError(
            f"add: expected 'self' and 'other' to have same size, but self has size {shape} "
            f"while other has size {list(other._size)} (FYI: dense-sparse addition does not "
            "currently support broadcasting)"
        )
    return _mg().add(input, other.to_dense(), alpha=alpha)


def sub(input, other, *, alpha=1):  # noqa: A002
    """``add(input, other, alpha=-alpha)``."""
    return add(input, other, alpha=-alpha)


def pow(input, exponent):  # noqa: A001, A002
    """Entrywise power by a nonzero number (the missing entries stay zero)."""
    if not is_sparse(input) or is_sparse(exponent) or isinstance(exponent, Tensor):
        raise NotImplementedError(
            "pow: a sparse COO tensor takes only a number exponent (as in PyTorch); for a "
            "tensor exponent or base use s.to_dense()"
        )
    if exponent == 0:
        from .ops.linalg_extra import ArgumentError  # NOTE: a RuntimeError, as PyTorch's

        raise ArgumentError(
            "pow: cannot raise to zeroth power on sparse tensor; it would make the result "
            "tensor dense (the exponent must be a positive or negative number)"
        )
    c = input.coalesce()
    dt = c._vals.dtype
    if isinstance(exponent, float) and not (dt.is_floating_point or dt.is_complex):
        raise RuntimeError(  # NOTE: PyTorch keeps an integer sparse tensor's dtype here
            f"pow: result type Float can't be cast to the desired output type {dt}; convert "
            "the tensor first (s.float())"
        )
    return _coo()(c._idx, _mg().pow(c._vals, exponent), c._size, True)


def binary(name: str, input, other):  # noqa: A002
    """``add``, ``sub`` or ``mul`` with a sparse operand; NotImplemented for other ops."""
    fn = {"add": add, "sub": sub, "mul": mul}.get(name)
    if fn is not None and (is_compressed(input) or is_compressed(other)):
        return _compressed_binary(name, input, other)
    if fn is None or not (is_sparse(input) or is_sparse(other)):
        return NotImplemented
    return fn(input, other)


# ---------------------------------------------------------------------------- joins, slices


def cat(tensors, dim: int = 0):
    """Sparse COO tensors joined along ``dim``: their entries, shifted along ``dim`` (a
    sparse dim) or placed in their slot of a dense dim; uncoalesced, as in PyTorch."""
    tensors = list(tensors)
    for i, t in enumerate(tensors):
        if not is_sparse(t):
            if is_sparse(tensors[0]):
                raise RuntimeError(
                    f"Concatenating sparse tensors, but a dense tensor was found at position "
                    f"{i}; make it sparse (t.to_sparse()) or join dense tensors"
                )
            j = next(j for j, u in enumerate(tensors) if is_sparse(u))
            raise NotImplementedError(
                f"cat: a sparse tensor at position {j} among dense tensors; make them dense "
                "(s.to_dense()) or all sparse"
            )
    ref = tensors[0]
    nd, k, kd = ref.ndim, ref.sparse_dim(), ref.dense_dim()
    if not -nd <= dim < nd:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {dim})"
        )
    dim %= nd
    for i, t in enumerate(tensors):
        if (t.sparse_dim(), t.dense_dim()) != (k, kd):
            raise RuntimeError(
                f"All tensors must have the same sparse_dim and dense_dim: {k}, {kd}, but "
                f"tensor at position {i} has {t.sparse_dim()}, {t.dense_dim()}."
            )
        if t._size[:dim] != ref._size[:dim] or t._size[dim + 1 :] != ref._size[dim + 1 :]:
            raise ShapeError(
                f"All tensors must have the same shape: {list(ref._size)} (except in the "
                f"concatenating dimension), but found shape: {list(t._size)} at position {i}."
            )
    ops = _mg().ops
    dt = ref._vals.dtype
    for t in tensors[1:]:
        dt = D.promote_types(dt, t._vals.dtype)
    total = sum(t._size[dim] for t in tensors)
    idxs, vals, off = [], [], 0
    for t in tensors:
        v = t._vals if t._vals.dtype is dt else t._vals.to(dt)
        if dim < k:
            shift = [off if d == dim else 0 for d in range(k)]
            idxs.append(t._idx + Tensor._wrap(_col(t._idx, shift), t._idx._device))
        else:  # NOTE: a dense dim: each tensor's values in its slot, zeros around them
            vd, n = dim - k + 1, t._size[dim]
            before = v.new_zeros(*v.shape[:vd], off, *v.shape[vd + 1 :])
            after = v.new_zeros(*v.shape[:vd], total - off - n, *v.shape[vd + 1 :])
            v = ops.cat([before, v, after], vd)
            idxs.append(t._idx)
        vals.append(v)
        off += t._size[dim]
    size = ref._size[:dim] + (total,) + ref._size[dim + 1 :]
    return _coo()(ops.cat(idxs, 1), ops.cat(vals, 0), size, False)


def _col(idx: Tensor, shift: list):
    """A (sparse_dim, 1) int64 array of ``shift`` on ``idx``'s device."""
    with backend.device_scope(idx._device):
        return backend.array_module(idx._data).asarray(shift, dtype="int64").reshape(-1, 1)


def narrow_copy(input, dim: int, start: int, length: int):  # noqa: A002
    """The entries of ``input`` with ``start <= index < start + length`` along ``dim``
    (indices shifted by ``start``), as a new sparse tensor; ``dim`` must be >= 0, as in
    PyTorch's sparse ``narrow_copy``."""
    nd, k = input.ndim, input.sparse_dim()
    if not 0 <= dim < nd:
        raise RuntimeError(f"Dimension {dim} out of range. Expecting 0 <= dim < {nd}.")
    if length < 0:
        raise RuntimeError("narrow(): length must be non-negative.")
    n = input._size[dim]
    if start < 0 or start + length > n:
        raise RuntimeError(
            "Invalid range to narrow. range(start, start+length) must be a subset of "
            f"range(0, {n})."
        )
    ops = _mg().ops
    size = input._size[:dim] + (length,) + input._size[dim + 1 :]
    if dim >= k:
        vals = ops.narrow(input._vals, dim - k + 1, start, length).clone()
        return _coo()(input._idx.clone(), vals, size, input._coalesced)
    dev = input._idx._device
    with backend.device_scope(dev):
        xp = backend.array_module(input._idx._data)
        key = input._idx._data[dim]
        take = xp.nonzero((key >= start) & (key < start + length))[0].astype("int64")
        take = Tensor._wrap(take, dev)
    idx = ops.index_select(input._idx, 1, take)
    idx = idx - Tensor._wrap(_col(idx, [start if d == dim else 0 for d in range(k)]), dev)
    vals = ops.index_select(input._vals, 0, take)
    return _coo()(idx, vals, size, input._coalesced)


# ---------------------------------------------------------------------------- dispatch

_BY_NAME = {
    "div": div,
    "divide": div,
    "true_divide": div,
    "pow": pow,
    "add": add,
    "sub": sub,
    "subtract": sub,
    "mul": mul,
    "multiply": mul,
    "cat": cat,
    "concat": cat,
    "concatenate": cat,
    "narrow_copy": narrow_copy,
    # the methods sparse tensors already had, in their function forms
    "sum": lambda input, *a, **k: input.sum(*a, **k),  # noqa: A002
    "index_select": lambda input, *a, **k: input.index_select(*a, **k),  # noqa: A002
}


def call(name: str, args: tuple, kwargs: dict):
    """``mg.<name>(*args, **kwargs)`` for sparse COO operands (the function forms), or
    NotImplemented when none of the first operands is one. An op without a sparse form
    raises ``NotImplementedError``, as PyTorch's do."""
    first = args[0] if args else None
    if any(is_compressed(a) for a in args[:2]):
        if name in ("add", "sub", "subtract", "mul", "multiply"):
            base = {"subtract": "sub", "multiply": "mul"}.get(name, name)
            return _compressed_binary(base, *args[:2], alpha=kwargs.get("alpha", 1))
        if is_compressed(first) and (name in COALESCING or name in LINEAR):
            return unary(name, *args, **kwargs)
        raise _unsupported(first if is_compressed(first) else args[1])
    joined = name in ("cat", "concat", "concatenate") and isinstance(first, (list, tuple))
    if not (joined and any(is_sparse(t) for t in first)) and not any(
        is_sparse(a) for a in args[:2]
    ):
        return NotImplemented
    fn = _BY_NAME.get(name)
    if fn is not None:
        return fn(*args, **kwargs)
    if name in COALESCING or name in LINEAR:
        return unary(name, *args, **kwargs)
    raise NotImplementedError(
        f"{name}: not supported for sparse COO tensors; convert with s.to_dense() first"
    )


# ---------------------------------------------------------------------------- methods


class SparseMath:
    """The elementwise methods of ``SparseCooTensor`` (``s.sqrt()``, ``s.pow(2)``,
    ``s / 2``, ``s + t``, ...), as the functions above."""

    __slots__ = ()

    def add(self, other, *, alpha=1):
        return add(self, other, alpha=alpha)

    def sub(self, other, *, alpha=1):
        return sub(self, other, alpha=alpha)

    def __add__(self, other):
        return add(self, other)

    def __sub__(self, other):
        return sub(self, other)

    def div(self, other, *, rounding_mode=None):
        return div(self, other, rounding_mode=rounding_mode)

    def __truediv__(self, other):
        return div(self, other)

    def __rtruediv__(self, other):
        return div(other, self)

    true_divide = __truediv__
    divide = div

    def multiply(self, other):
        return mul(self, other)

    def subtract(self, other, *, alpha=1):
        return sub(self, other, alpha=alpha)

    def pow(self, exponent):
        return pow(self, exponent)

    __pow__ = pow

    def narrow_copy(self, dim: int, start: int, length: int):
        return narrow_copy(self, dim, start, length)


def _method(name: str):
    def method(self, *args, **kwargs):
        return unary(name, self, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"``mg.{name}`` of the stored values, as PyTorch's sparse ``{name}``."
    return method


for _name in sorted(COALESCING | LINEAR):
    setattr(SparseMath, _name, _method(_name))
del _name
