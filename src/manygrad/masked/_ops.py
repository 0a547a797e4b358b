"""The masked reductions and normalizations of ``manygrad.masked`` (``torch.masked``'s).

Each function replaces the masked-out elements of ``input`` (where ``mask`` is False) by the
identity of the operation (0 for ``sum``, 1 for ``prod``, ``-inf`` for ``amax``, ...) and
then runs the plain operation, so gradients reach the masked-in elements only. ``mask`` is a
bool tensor that broadcasts to ``input``; ``None`` masks nothing out. A ``MaskedTensor``
input brings its own mask.
"""

from __future__ import annotations

import math

from .. import dtypes as D
from ..tensor import Tensor
from ._common import (
    _canonical_dim,
    _check_input,
    _combine,
    _data_of,
    _dims_arg,
    _input_mask,
    _is_mt,
    _mg,
    _sum_dtype,
)


def sum(input, dim=None, *, keepdim=False, dtype=None, mask=None) -> Tensor:  # noqa: A001, A002
    """The sum of the masked-in elements of ``input`` over ``dim`` (all dims when None).

    Args:
        input: a Tensor or MaskedTensor.
        dim: an int, a tuple of ints, or None (default None).
        keepdim: keep reduced dims with size 1 (default False).
        dtype: the result dtype (default: ``input``'s, int64 for bool and small ints).
        mask: bool, broadcastable to ``input``; False elements are left out (default None).

    Example: ``mg.masked.sum(x, 1, mask=x > 0)``.
    """
    _check_input("sum", input)
    dims = _canonical_dim(dim, input.ndim)
    x = _combine("sum", input, mask)
    return _mg().sum(x, _dims_arg(dims), bool(keepdim), dtype=_sum_dtype(input, dtype))


def prod(input, dim=None, *, keepdim=False, dtype=None, mask=None) -> Tensor:  # noqa: A002
    """The product of the masked-in elements of ``input`` over ``dim`` (masked-out count
    as 1). Arguments as in ``sum``.

    Example: ``mg.masked.prod(x, 0, mask=m)``.
    """
    _check_input("prod", input)
    dims = _canonical_dim(dim, input.ndim)
    out = _combine("prod", input, mask).to(_sum_dtype(input, dtype))
    for d in reversed(dims):
        out = out.prod(dim=d, keepdim=bool(keepdim))
    return out


def _scan(op: str, ident: str, input, dim, dtype, mask) -> Tensor:  # noqa: A002
    _check_input(op, input)
    dtype = input.dtype if dtype is None else dtype
    d = _canonical_dim(dim, input.ndim)[0]
    x = _combine(ident, input, mask)
    return getattr(_mg(), op)(x, d, dtype=dtype).to(dtype)


def cumsum(input, dim, *, dtype=None, mask=None) -> Tensor:  # noqa: A002
    """Cumulative sum along ``dim`` with masked-out elements counted as 0.

    Example: ``mg.masked.cumsum(x, 1, mask=m)``.
    """
    return _scan("cumsum", "sum", input, dim, dtype, mask)


def cumprod(input, dim, *, dtype=None, mask=None) -> Tensor:  # noqa: A002
    """Cumulative product along ``dim`` with masked-out elements counted as 1.

    Example: ``mg.masked.cumprod(x, 1, mask=m)``.
    """
    return _scan("cumprod", "prod", input, dim, dtype, mask)


def _extreme(op: str, input, dim, keepdim, dtype, mask) -> Tensor:  # noqa: A002
    _check_input(op, input)
    dtype = input.dtype if dtype is None else dtype
    x = _combine(op, input, mask)
    dims = _canonical_dim(dim, x.ndim)
    return getattr(_mg(), op)(x, _dims_arg(dims), bool(keepdim)).to(dtype)


def amax(input, dim=None, *, keepdim=False, dtype=None, mask=None) -> Tensor:  # noqa: A002
    """The largest masked-in element over ``dim``; ``-inf`` (or the dtype's minimum) where
    every element is masked out. Arguments as in ``sum``.

    Example: ``mg.masked.amax(x, 1, mask=m)``.
    """
    return _extreme("amax", input, dim, keepdim, dtype, mask)


def amin(input, dim=None, *, keepdim=False, dtype=None, mask=None) -> Tensor:  # noqa: A002
    """The smallest masked-in element over ``dim``; ``inf`` (or the dtype's maximum) where
    every element is masked out. Arguments as in ``sum``.

    Example: ``mg.masked.amin(x, 1, mask=m)``.
    """
    return _extreme("amin", input, dim, keepdim, dtype, mask)


def _arg(op: str, input, dim, keepdim, dtype, mask) -> Tensor:  # noqa: A002
    _check_input(op, input)
    dtype = input.dtype if dtype is None else dtype
    x = _combine(op, input, mask)
    # NOTE: the index comes back in input's dtype unless dtype= says otherwise (PyTorch's)
    return getattr(_mg(), op)(x, dim, bool(keepdim)).to(dtype)


def argmax(input, dim=None, *, keepdim=False, dtype=None, mask=None) -> Tensor:  # noqa: A002
    """The index of the largest masked-in element along ``dim`` (of the flattened input
    when None), in ``input``'s dtype unless ``dtype`` is given.

    Example: ``mg.masked.argmax(x, 1, mask=m, dtype=mg.int64)``.
    """
    return _arg("argmax", input, dim, keepdim, dtype, mask)


def argmin(input, dim=None, *, keepdim=False, dtype=None, mask=None) -> Tensor:  # noqa: A002
    """The index of the smallest masked-in element along ``dim``; see ``argmax``.

    Example: ``mg.masked.argmin(x, 1, mask=m, dtype=mg.int64)``.
    """
    return _arg("argmin", input, dim, keepdim, dtype, mask)


def _count(input, dims, keepdim, mask) -> Tensor:  # noqa: A002
    """The number of masked-in elements (all of them when ``mask`` is None), int64."""
    mg = _mg()
    if mask is None:
        ones = mg.ones(tuple(input.shape), dtype=D.int64, device=input.device)
        return mg.sum(ones, _dims_arg(dims), keepdim)
    return mg.sum(_input_mask(input, mask), _dims_arg(dims), keepdim)


def mean(input, dim=None, *, keepdim=False, dtype=None, mask=None) -> Tensor:  # noqa: A002
    """The mean of the masked-in elements over ``dim``; ``nan`` where all are masked out.

    ``dtype`` (default ``input``'s) must be a floating or complex dtype. Arguments as in
    ``sum``.

    Example: ``mg.masked.mean(x, 1, mask=m)``.
    """
    _check_input("mean", input)
    source = "Input" if dtype is None else "Optional"
    dtype = input.dtype if dtype is None else dtype
    if not (dtype.is_floating_point or dtype.is_complex):
        raise ValueError(
            f"mean(): Could not infer output dtype. {source} dtype must be either a floating "
            f"point or complex dtype. Got: {dtype}"
        )
    dims = _canonical_dim(dim, input.ndim)
    inmask = None if mask is None else _input_mask(input, mask)
    total = sum(input, dim, keepdim=keepdim, dtype=dtype, mask=inmask)
    return total / _count(input, dims, bool(keepdim), inmask)


def median(input, dim=-1, *, keepdim=False, dtype=None, mask=None) -> Tensor:  # noqa: A002
    """The (lower) median of the masked-in elements along one ``dim``; ``nan`` where all
    are masked out (a ValueError for integer input, which has no ``nan``).

    Example: ``mg.masked.median(x, 1, mask=m)``.
    """
    _check_input("median", input)
    dtype = input.dtype if dtype is None else dtype
    d = _canonical_dim(dim, input.ndim)[0]
    is_float = input.dtype.is_floating_point
    if not is_float:
        input = input.to(D.float32)  # noqa: A001
    x = _combine("median", input, mask)
    out = _mg().nanmedian(x, d, bool(keepdim)).values
    if is_float:
        return out
    if bool(_mg().isnan(out).any()):
        raise ValueError(
            "masked median expects no fully masked out rows if dtype is not floating point"
        )
    return out.to(dtype)


def logsumexp(input, dim=None, *, keepdim=False, dtype=None, mask=None) -> Tensor:  # noqa: A002
    """``log(sum(exp(x)))`` of the masked-in elements over ``dim``; ``-inf`` where all
    are masked out.

    Example: ``mg.masked.logsumexp(x, 1, mask=m)``.
    """
    _check_input("logsumexp", input)
    dtype = input.dtype if dtype is None else dtype
    dims = _canonical_dim(dim, input.ndim)
    x = _combine("logsumexp", input, mask)
    return _mg().logsumexp(x, dims, keepdim=bool(keepdim)).to(dtype)


def logaddexp(input, other, *, dtype=None, input_mask=None, other_mask=None) -> Tensor:  # noqa: A002
    """``log(exp(input) + exp(other))`` elementwise, each operand's masked-out elements
    taken as ``-inf``.

    Args:
        input, other: Tensors or MaskedTensors.
        dtype: the result dtype (default ``input``'s).
        input_mask, other_mask: bool masks of the two operands (default None: all in).

    Example: ``mg.masked.logaddexp(a, b, input_mask=m, other_mask=m)``.
    """
    _check_input("logaddexp", input)
    _check_input("logaddexp", other)
    dtype = input.dtype if dtype is None else dtype
    a = _combine("logaddexp", input, input_mask)
    b = _combine("logaddexp", other, other_mask)
    out = _mg().logaddexp(a, b)
    if out.is_floating_point():
        # NOTE: both operands masked out (-inf) give -inf, as PyTorch's logaddexp does
        out = _mg().where((a == -math.inf) & (b == -math.inf), a, out)
    return out.to(dtype)


def norm(input, ord=2.0, dim=None, *, keepdim=False, dtype=None, mask=None) -> Tensor:  # noqa: A002
    """The vector ``ord``-norm of the masked-in elements over ``dim`` (masked-out count
    as 0, or as ``inf`` for ``ord=-inf``).

    Example: ``mg.masked.norm(x, 2.0, 1, mask=m)``.
    """
    _check_input("norm", input)
    dtype = input.dtype if dtype is None else dtype
    x = _combine("norm", input, mask, ord)
    dims = _canonical_dim(dim, input.ndim)
    return _mg().linalg.vector_norm(x, ord, _dims_arg(dims), bool(keepdim), dtype=dtype)


def _std_var(input, dim, unbiased, correction, keepdim, dtype, mask, sqrt: bool):  # noqa: A002
    op = "std" if sqrt else "var"
    _check_input(op, input)
    if unbiased is not None and correction is not None:
        raise AssertionError(f"masked {op}: give only one of unbiased= and correction=")
    corr = 1.0
    if unbiased is not None:
        corr = 1.0 if unbiased else 0.0
    if correction is not None:
        corr = float(correction)
    if dtype is None:
        dtype = input.dtype
        if not (dtype.is_floating_point or dtype.is_complex):
            dtype = D.float32
    compute = dtype if (dtype.is_floating_point or dtype.is_complex) else D.float32
    dims = _canonical_dim(dim, input.ndim)
    inmask = None if mask is None else _input_mask(input, mask)
    count = _count(input, dims, True, inmask)
    mu = sum(input, dim, keepdim=True, dtype=dtype, mask=inmask) / count
    x = _data_of(input) - mu
    sq = x * x.conj() if x.is_complex() else x * x
    # NOTE: the squared deviations of a MaskedTensor's masked-out elements get no gradient
    # (else it would reach the mean through them)
    sq_mask = input._masked_mask if _is_mt(input) else inmask
    total = sum(sq, dim, keepdim=keepdim, dtype=compute, mask=sq_mask)
    if not keepdim:
        count = count.reshape(tuple(total.shape))
    if corr != 0:
        real = compute
        if compute.is_complex:
            real = D.float32 if compute is D.complex64 else D.float64
        count = (count.to(real) - corr).clamp(min=0)
    out = (total / count).to(dtype)
    return out.sqrt() if sqrt else out


def var(input, dim=None, unbiased=None, *, correction=None, keepdim=False, dtype=None,  # noqa: A002
        mask=None) -> Tensor:  # fmt: skip
    """The variance of the masked-in elements over ``dim``: squared deviations summed and
    divided by ``max(count - correction, 0)``; ``nan`` where all are masked out.

    Args:
        unbiased: ``False`` for ``correction=0`` (default None: ``correction=1``).
        correction: subtracted from the count (default 1); give it or ``unbiased``.
        others as in ``sum`` (``dtype`` default: ``input``'s, float32 for integers).

    Example: ``mg.masked.var(x, 1, mask=m, correction=0)``.
    """
    return _std_var(input, dim, unbiased, correction, keepdim, dtype, mask, False)


def std(input, dim=None, unbiased=None, *, correction=None, keepdim=False, dtype=None,  # noqa: A002
        mask=None) -> Tensor:  # fmt: skip
    """The standard deviation of the masked-in elements (square root of ``var``).

    Example: ``mg.masked.std(x, 1, mask=m)``.
    """
    return _std_var(input, dim, unbiased, correction, keepdim, dtype, mask, True)


def _normalizer(name: str, ident: str, input, dim, dtype, mask) -> Tensor:  # noqa: A002
    _check_input(name, input)
    dtype = input.dtype if dtype is None else dtype
    d = _canonical_dim(dim, input.ndim)[0]
    x = _combine(ident, input, mask)
    return getattr(_mg().nn.functional, name)(x, d, dtype=dtype)


def softmax(input, dim, *, dtype=None, mask=None) -> Tensor:  # noqa: A002
    """Softmax along ``dim`` over the masked-in elements: masked-out ones get 0, and a
    slice with every element masked out gets ``nan``.

    Example: ``mg.masked.softmax(scores, -1, mask=keep)``.
    """
    return _normalizer("softmax", "amax", input, dim, dtype, mask)


def log_softmax(input, dim, *, dtype=None, mask=None) -> Tensor:  # noqa: A002
    """Log-softmax along ``dim`` over the masked-in elements (masked-out get ``-inf``).

    Example: ``mg.masked.log_softmax(scores, -1, mask=keep)``.
    """
    return _normalizer("log_softmax", "amax", input, dim, dtype, mask)


def softmin(input, dim, *, dtype=None, mask=None) -> Tensor:  # noqa: A002
    """Softmin (softmax of ``-input``) along ``dim`` over the masked-in elements.

    Example: ``mg.masked.softmin(costs, -1, mask=keep)``.
    """
    return _normalizer("softmin", "amin", input, dim, dtype, mask)


def normalize(input, ord, dim, *, eps=1e-12, dtype=None, mask=None) -> Tensor:  # noqa: A002
    """``input`` divided by its masked ``ord``-norm along ``dim`` (at least ``eps``);
    masked-out elements become 0.

    Example: ``mg.masked.normalize(x, 2.0, 1, mask=m)``.
    """
    _check_input("normalize", input)
    dtype = input.dtype if dtype is None else dtype
    x = _combine("sum", input, mask)
    nrm = norm(input, ord, dim, keepdim=True, dtype=dtype, mask=mask)
    floor = _mg().full((), eps, dtype=nrm.dtype, device=nrm.device)
    return x / _mg().maximum(nrm, floor)
