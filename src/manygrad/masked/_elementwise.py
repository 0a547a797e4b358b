"""The elementwise ops of ``MaskedTensor``: the unary ones keep the mask; the binary ones
need both masks to be equal (a plain Tensor or a number as the other operand has no
mask) and keep it, broadcast to the result's shape."""

from __future__ import annotations

from ..tensor import Tensor

UNARY = frozenset(
    """
abs absolute acos arccos acosh arccosh angle asin arcsin asinh arcsinh atan arctan atanh
arctanh bitwise_not ceil clamp clip conj_physical cos cosh deg2rad digamma erf erfc erfinv
exp exp2 expm1 fix floor frac lgamma log log10 log1p log2 logit i0 isnan nan_to_num neg
negative positive pow rad2deg reciprocal round rsqrt sigmoid sign sgn signbit sin sinc sinh
sqrt square tan tanh trunc
""".split()
)
UNARY_INPLACE = frozenset(n + "_" for n in UNARY - {"angle", "positive", "signbit", "isnan"})

BINARY = frozenset(
    """
add atan2 arctan2 bitwise_and bitwise_or bitwise_xor bitwise_left_shift bitwise_right_shift
div divide floor_divide fmod logaddexp logaddexp2 mul multiply nextafter remainder sub
subtract true_divide eq ne le ge greater greater_equal gt less_equal lt less maximum
minimum fmax fmin not_equal
""".split()
)
BINARY_INPLACE = frozenset(
    n + "_" for n in BINARY - {"logaddexp", "logaddexp2", "fmin", "fmax", "minimum", "maximum"}
)


def _mt():
    from ._tensor import MaskedTensor

    return MaskedTensor


def _mg():
    import manygrad

    return manygrad


def unary(name: str, mt, args: tuple, kwargs: dict):
    """``name`` applied to ``mt``'s data (in place for a name ending in ``_``)."""
    for a in args:
        if isinstance(a, (Tensor, _mt())):
            raise TypeError(
                f"MaskedTensor.{name}: unary ops do not take another Tensor argument; "
                "use a number, or a binary op of two MaskedTensors with equal masks"
            )
    data = mt._masked_data
    if name.endswith("_"):
        getattr(data, name)(*args, **kwargs)
        return mt
    out = getattr(_mg(), name)(data, *args, **kwargs)
    return _mt()._make(out, mt._masked_mask)


def masks_match(a, b) -> bool:
    """Whether two masks are equal (for a binary op of two MaskedTensors)."""
    if a is b:  # NOTE: the common case (results of unary ops share their mask): no host sync
        return True
    if a.ndim != b.ndim:
        return False
    return bool((a == b).all())


def binary(name: str, a, b, args: tuple = (), kwargs: dict | None = None):
    """``name(a, b)`` on the data of MaskedTensor ``a`` and/or ``b``, with the mask kept."""
    mt_cls = _mt()
    if kwargs:
        raise ValueError(
            f"MaskedTensor.{name}: binary ops take no keyword arguments (got "
            f"{', '.join(kwargs)}); scale the operand first, e.g. a + 2 * b for alpha=2"
        )
    for x in args:
        if isinstance(x, (Tensor, mt_cls)):
            raise TypeError(
                f"MaskedTensor.{name}: binary ops take no Tensor arguments besides the two operands"
            )
    ma = a._masked_mask if isinstance(a, mt_cls) else None
    mb = b._masked_mask if isinstance(b, mt_cls) else None
    if ma is not None and mb is not None and not masks_match(ma, mb):
        raise ValueError(
            f"MaskedTensor.{name}: input masks must match; combine MaskedTensors with "
            "equal masks, or use mt.to_tensor(value) for a plain Tensor"
        )
    da = a._masked_data if ma is not None else a
    db = b._masked_data if mb is not None else b
    mask = ma if ma is not None else mb
    if name.endswith("_"):
        getattr(da, name)(db, *args)
        return a
    out = getattr(_mg(), name)(da, db, *args)
    if tuple(mask.shape) != tuple(out.shape):
        mask = mask.expand(*out.shape)
    return mt_cls._make(out, mask)
