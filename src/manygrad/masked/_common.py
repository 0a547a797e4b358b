"""What the masked reductions share: the identity values, the canonical dims and mask, and
the step that replaces the masked-out elements by the identity of an operation.
"""

from __future__ import annotations

import math

from .. import dtypes as D
from ..autograd import Function as _UserFunction
from ..tensor import Tensor

_SMALL_INTS = ("bool", "uint8", "int8", "int16", "int32")


def _mg():
    import manygrad

    return manygrad


def _is_mt(x) -> bool:
    from ._tensor import MaskedTensor

    return isinstance(x, MaskedTensor)


def _check_input(op: str, input) -> None:  # noqa: A002
    if not isinstance(input, Tensor) and not _is_mt(input):
        raise TypeError(
            f"masked {op}: expected input to be a Tensor or MaskedTensor, got "
            f"{type(input).__name__}"
        )


def _reduction_identity(op: str, input, *args):  # noqa: A002
    """The value that masked-out elements take for ``op`` (a 0-d tensor of ``input``'s
    dtype and device), or None where the identity is undefined (``mean``, ``var``,
    ``std``)."""
    mg, dt = _mg(), input.dtype
    is_float = dt.is_floating_point
    is_int = not is_float and not dt.is_complex and (dt.is_signed or dt is D.uint8)
    if dt is D.bool_:
        is_int = False
    value = None
    if op in ("sum", "cumsum"):
        value = 0
    elif op in ("prod", "cumprod"):
        value = 1
    elif op in ("amax", "argmax", "logaddexp", "logsumexp"):
        if is_float or (op == "logsumexp" and dt.is_complex):
            value = -math.inf
        elif is_int:
            value = mg.iinfo(dt).min
    elif op in ("amin", "argmin"):
        if is_float:
            value = math.inf
        elif is_int:
            value = mg.iinfo(dt).max
    elif op in ("mean", "var", "std"):
        return None
    elif op == "norm":
        ord = args[0] if args else 2  # noqa: A001
        value = math.inf if ord == -math.inf else 0
    elif op == "median":
        return mg.full((), math.nan, dtype=dt if is_float else D.float32, device=input.device)
    if value is None:
        raise NotImplementedError(f"masked {op}: no identity value for {dt} input")
    return mg.full((), value, dtype=dt, device=input.device)


def _canonical_dim(dim, ndim: int) -> tuple:
    """``dim`` (None, an int, or a sequence of ints) as a sorted tuple of dims >= 0; None
    and ``()`` mean every dim."""
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return tuple(range(ndim))
    n = max(ndim, 1)
    out: list = []
    for d in (dim,) if isinstance(dim, int) else tuple(dim):
        if not isinstance(d, int):
            raise TypeError(f"masked reduction: dim must be an int or ints, got {d!r}")
        if not -n <= d < n:
            raise IndexError(
                f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {d})"
            )
        if d % n in out:
            raise RuntimeError(f"dim={d} appears multiple times in the list of dims")
        out.append(d % n)
    return tuple(sorted(out))


def _dims_arg(dims: tuple):
    # NOTE: an empty tuple would mean "no dims" to some reductions; None reduces everything
    return dims if dims else None


def _input_mask(input, mask) -> Tensor:  # noqa: A002
    """``mask`` broadcast to ``input``'s shape, as bool."""
    if not isinstance(mask, Tensor):
        raise TypeError(
            f"masked op: mask must be a bool Tensor, got {type(mask).__name__}; "
            "pass mask=mg.tensor(...)"
        )
    shape = tuple(input.shape)
    if tuple(mask.shape) != shape:
        if mask.ndim > len(shape):
            raise IndexError(
                "_input_mask expected broadcastable mask (got mask dimensionality higher "
                f"than of the input): mask shape {tuple(mask.shape)}, input shape {shape}"
            )
        mask = _mg().broadcast_to(mask, shape)
    return mask if mask.dtype is D.bool_ else mask.to(D.bool_)


class _PassThroughWhere(_UserFunction):
    """``where(mask, data, fill)`` whose gradient goes to every element of ``data``
    unchanged: a MaskedTensor's gradient keeps the values at masked-out places, which its
    mask hides."""

    @staticmethod
    def forward(ctx, data, mask, fill):
        return _mg().where(mask, data, fill)

    @staticmethod
    def backward(ctx, grad):
        return grad, None, None


def _combine(op: str, input, mask, *args) -> Tensor:  # noqa: A002
    """``input`` with its masked-out elements replaced by the identity of ``op``."""
    if _is_mt(input):
        data, m = input._masked_data, input._masked_mask
        return _PassThroughWhere.apply(data, m, _reduction_identity(op, data, *args))
    if mask is None:
        return input
    m = _input_mask(input, mask)
    return _mg().where(m, input, _reduction_identity(op, input, *args))


def _sum_dtype(input, dtype):  # noqa: A002
    if dtype is not None:
        return dtype
    return D.int64 if input.dtype.name in _SMALL_INTS else input.dtype


def _data_of(input) -> Tensor:  # noqa: A002
    return input._masked_data if _is_mt(input) else input
