"""The ops of nested tensors, and the switch that sends ``F.linear(nt, ...)``,
``mg.relu(nt)`` and kin to them.

NOTE: manygrad has no ``__torch_function__`` dispatch, so importing ``manygrad.nested``
wraps the public functions named in ``_ELEMENTWISE`` and ``_SPECIAL`` (in ``manygrad``,
``manygrad.ops`` and ``manygrad.nn.functional``) with a check of the first argument: a
nested tensor goes to the function here, anything else to the original function as before.
"""

from __future__ import annotations

import functools

from ..sparse import jagged
from ..tensor import Tensor
from ._tensor import NestedTensor, unsupported


def _mg():
    import manygrad

    return manygrad


# elementwise functions that keep the shape: applied to the packed values or each component
_ELEMENTWISE = (
    "relu gelu silu sigmoid tanh exp neg abs sin cos sqrt rsqrt log log1p expm1 square "
    "reciprocal sign floor ceil round trunc erf elu leaky_relu hardtanh softplus mish "
    "hardswish hardsigmoid relu6 selu celu logsigmoid tanhshrink softsign dropout clamp "
    "clip nan_to_num"
).split()
ELEMENTWISE_METHODS = frozenset(_ELEMENTWISE) - {"dropout"} | {
    "relu_", "sigmoid_", "tanh_", "exp_", "neg_", "abs_", "mul_", "add_", "clamp_",
    "fill_", "zero_", "type_as", "bool", "int", "long", "masked_fill",
}  # fmt: skip


def _elementwise(orig):
    def fn(input, *args, **kwargs):  # noqa: A002
        out = input._map(lambda t: orig(t, *args, **kwargs))
        return input if kwargs.get("inplace") else out

    return fn


def _dense_fits(nt: NestedTensor, other: Tensor) -> bool:
    """Whether dense ``other`` broadcasts over each component without touching the ragged or
    the batch dim (e.g. a (D,) bias on a (B, j, D) nested tensor)."""
    if other.ndim == 0:
        return True
    if other.ndim >= nt.dim():
        return False
    if nt.layout is jagged:
        return other.ndim < nt.dim() - nt._ragged_idx
    return True


def binary(name: str, a, b):
    """``a <op> b`` where one or both are nested tensors of one structure, or the other is a
    scalar or a dense tensor over the trailing dims."""
    mg = _mg()
    fn = getattr(mg, name)
    if isinstance(a, NestedTensor) and isinstance(b, NestedTensor):
        if a.layout is not b.layout or a.size(0) != b.size(0):
            raise RuntimeError(f"{name}: nested tensors of different layouts or batch sizes")
        ca, cb = a.unbind(), b.unbind()
        if any(x.shape != y.shape for x, y in zip(ca, cb)):
            raise RuntimeError(
                f"{name}: nested tensors of different component shapes "
                f"{[tuple(x.shape) for x in ca]} and {[tuple(y.shape) for y in cb]}"
            )
        if a.layout is jagged and a._offs == b._offs and a._lens == b._lens:
            if a._ragged_idx == b._ragged_idx:
                return a._like(fn(a._values, b._values))
        return a._from_components([fn(x, y) for x, y in zip(ca, cb)])
    nt, other = (a, b) if isinstance(a, NestedTensor) else (b, a)
    if isinstance(other, Tensor) and not _dense_fits(nt, other):
        raise RuntimeError(
            f"{name}: a dense tensor of shape {tuple(other.shape)} does not broadcast over the "
            f"components of a nested tensor of {nt.dim()} dims; it may cover only the dims "
            "after the ragged one (e.g. shape (D,) for (B, j, D)), or nest it too"
        )
    if nt is a:
        return nt._map(lambda t: fn(t, other))
    return nt._map(lambda t: fn(other, t))


def matmul(a, b):
    """``a @ b``: nested @ nested per component, or nested @ dense (D, E) on the last dim."""
    if isinstance(a, NestedTensor) and isinstance(b, NestedTensor):
        if a.size(0) != b.size(0):
            raise RuntimeError("matmul: nested tensors of different batch sizes")
        comps = [x @ y for x, y in zip(a.unbind(), b.unbind())]
        return a._from_components(comps)
    if not isinstance(a, NestedTensor):
        raise unsupported("matmul of a dense tensor by a nested tensor")
    if b.ndim != 2:
        raise unsupported(f"matmul of a nested tensor by a dense tensor of {b.ndim} dims")
    if a._packed(a.dim() - 2):
        return a._like(a._values @ b)
    return a._map_each(lambda t: t @ b)


def _along(name: str, nt: NestedTensor, dim: int, fn):
    c = nt._comp_dim(dim, name)
    if nt._packed(c):
        return nt._like(fn(nt._values, c))
    return nt._map_each(lambda t: fn(t, c))


def softmax(input, dim=None, _stacklevel=3, dtype=None):  # noqa: A002
    """Softmax along ``dim`` of each component."""
    return _along("softmax", input, dim, lambda t, c: _mg().softmax(t, c, dtype=dtype))


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):  # noqa: A002
    """Log-softmax along ``dim`` of each component."""
    return _along("log_softmax", input, dim, lambda t, c: _mg().log_softmax(t, c, dtype=dtype))


def linear(input, weight, bias=None):  # noqa: A002
    """``input @ weight.T + bias`` on the last dim of each component."""
    lin = _ORIGINALS["linear"]
    if input._packed(input.dim() - 2):
        return input._like(lin(input._values, weight, bias))
    return input._map_each(lambda t: lin(t, weight, bias))


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):  # noqa: A002
    """Layer norm over the trailing ``normalized_shape`` dims of each component."""
    ln = _ORIGINALS["layer_norm"]
    k = 1 if isinstance(normalized_shape, int) else len(normalized_shape)
    first = input._comp_dim(input.dim() - k, "layer_norm")
    if input.layout is jagged and first > input._ragged_idx - 1:
        return input._like(ln(input._values, normalized_shape, weight, bias, eps))
    return input._map_each(lambda t: ln(t, normalized_shape, weight, bias, eps))


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):  # fmt: skip
    """Attention per component: nested ``(B, H, j, D)`` query, key and value (the sequences
    of each batch entry attend only among themselves)."""
    op = "scaled_dot_product_attention"
    if attn_mask is not None:
        raise unsupported(f"{op} with attn_mask")
    if not all(isinstance(t, NestedTensor) for t in (key, value)):
        raise RuntimeError(f"{op}: query is nested, so key and value must be nested too")
    if not query.size(0) == key.size(0) == value.size(0):
        raise RuntimeError(f"{op}: query, key and value have different batch sizes")
    sdpa = _ORIGINALS[op]
    comps = [
        sdpa(q, k, v, None, dropout_p, is_causal, scale, enable_gqa)
        for q, k, v in zip(query.unbind(), key.unbind(), value.unbind())
    ]
    return query._from_components(comps)


def dropout(input, p=0.5, training=True, inplace=False):  # noqa: A002
    """Dropout on every element of the components."""
    drop = _ORIGINALS["dropout"]
    return input._map(lambda t: drop(t, p, training, inplace))


def _reduce(name):
    def fn(input, dim=None, keepdim=False, *, dtype=None):  # noqa: A002
        return getattr(input, name)(dim, keepdim, dtype=dtype)

    return fn


def _transpose(input, dim0, dim1):  # noqa: A002
    return input.transpose(dim0, dim1)


def _to_padded(input, padding, output_size=None):  # noqa: A002
    return input.to_padded_tensor(padding, output_size)


def _binary_fn(name):
    def fn(input, other, *args, **kwargs):  # noqa: A002
        if args or kwargs:
            raise unsupported(f"{name} with extra arguments")
        return binary(name, input, other)

    return fn


_SPECIAL = {
    "softmax": softmax,
    "log_softmax": log_softmax,
    "linear": linear,
    "layer_norm": layer_norm,
    "scaled_dot_product_attention": scaled_dot_product_attention,
    "dropout": dropout,
    "sum": _reduce("sum"),
    "mean": _reduce("mean"),
    "transpose": _transpose,
    "matmul": matmul,
    "add": _binary_fn("add"),
    "sub": _binary_fn("sub"),
    "mul": _binary_fn("mul"),
    "div": _binary_fn("div"),
}
_ORIGINALS: dict = {}


def _dispatching(orig, impl):
    @functools.wraps(orig)
    def fn(*args, **kwargs):
        first = args[0] if args else kwargs.get("input", kwargs.get("query"))
        if first.__class__ is NestedTensor or (len(args) > 1 and args[1].__class__ is NestedTensor):
            return impl(*args, **kwargs)
        return orig(*args, **kwargs)

    fn._nested_original = orig
    return fn


def install() -> None:
    """Wrap the public functions so that nested tensors reach the functions here."""
    import manygrad

    from .. import ops
    from ..nn import functional

    done: dict = {}
    for mod in (functional, ops, manygrad):
        for name in (*_ELEMENTWISE, *_SPECIAL):
            orig = mod.__dict__.get(name)
            if orig is None or not callable(orig) or hasattr(orig, "_nested_original"):
                continue
            if id(orig) not in done:
                # NOTE: the originals are F's: F.dropout(input, p, training, inplace) is the
                # signature that the nested dropout calls
                _ORIGINALS.setdefault(name, orig)
                impl = _SPECIAL.get(name) or _elementwise(orig)
                wrapper = done[id(orig)] = _dispatching(orig, impl)
                # NOTE: the wrapper pickles by the first name it stands under
                wrapper.__module__, wrapper.__qualname__ = mod.__name__, name
                _keep_picklable(orig)
            setattr(mod, name, done[id(orig)])


def _keep_picklable(orig) -> None:
    """Give ``orig`` a name of its own here: objects that kept a reference to it from before
    the wrapping (``TransformerEncoderLayer``'s ``activation=F.relu``) still pickle, since
    pickle finds a function by its module and name, where the wrapper now stands."""
    alias = f"_original_{orig.__module__.replace('.', '_')}_{orig.__qualname__}"
    globals()[alias] = orig
    orig.__module__, orig.__qualname__ = __name__, alias
