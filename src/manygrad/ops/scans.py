"""Cumulative ops and paired reductions: cumprod, cummax, cummin, logcumsumexp,
var_mean, std_mean, aminmax, nansum, nanmean."""

from __future__ import annotations

from .. import backend, return_types
from .. import dtypes as D
from ..autograd import Function
from ..tensor import Tensor
from .elementwise import cast, exp, log, where
from .indexing import _dim, gather
from .reduce import amax, amin, cumsum, mean, std, sum, var


class Cumprod(Function):
    def forward(self, x, axis):
        xp = backend.array_module(x)
        self.x, self.axis = x, axis
        self.y = xp.cumprod(x, axis=axis)
        return self.y

    def backward(self, g):
        xp = backend.array_module(g)
        ax, x, y = self.axis, self.x, self.y
        # NOTE: d y_j / d x_k = y_j / x_k for j >= k; where x has zeros, the products are
        # recomputed without each element (quadratic in the dim's length, exact)
        rev = xp.flip(xp.cumsum(xp.flip(g * y, ax), axis=ax), ax)
        if not bool((x == 0).any()):
            return rev / x, None
        xm = xp.moveaxis(x, ax, -1)
        gm = xp.moveaxis(g, ax, -1)
        n = xm.shape[-1]
        eye = xp.eye(n, dtype=bool)
        # others[..., k, j] = prod_{i <= j, i != k} x_i
        others = xp.cumprod(xp.where(eye, 1, xm[..., None, :]), axis=-1)
        upper = xp.triu(xp.ones((n, n), dtype=bool))
        gk = (others * upper * gm[..., None, :]).sum(-1)
        return xp.moveaxis(gk, -1, ax).astype(g.dtype, copy=False), None

    def backward_graph(self, g):
        if bool((self.x == 0).any()):
            return NotImplemented  # NOTE: with zeros, the first derivative only
        x, y, ax = self.saved_input(0, self.x), self.saved_output(self.y), self.axis
        return cumsum((g * y).flip(ax), ax).flip(ax) / x, None


def cumprod(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    """Running products along ``dim``."""
    if dtype is not None:
        input = cast(input, dtype)
    elif not (input.is_floating_point() or input.is_complex()):
        input = cast(input, D.int64)  # NOTE: integers and bools accumulate in int64, as PyTorch
    if input.ndim == 0:
        return input.clone()
    return Cumprod.apply(input, _dim(dim, input.ndim, "cumprod"))


def _result(name, values, indices):
    return getattr(return_types, name)((values, indices))


@backend.on_tensor_device
def _cum_ext(x: Tensor, dim: int, is_max: bool, name: str):
    if x.ndim == 0:
        return _result(
            name,
            x.clone(),
            Tensor._wrap(backend.array_module(x._data).zeros((), "int64"), x._device),
        )
    d = _dim(dim, x.ndim, name)
    xp = backend.array_module(x._data)
    v = xp.moveaxis(x._data, d, -1)
    n = v.shape[-1]
    i = xp.broadcast_to(xp.arange(n), v.shape).astype("int64")
    nan = xp.isnan(v) if v.dtype.kind == "f" else xp.zeros(v.shape, bool)
    s = 1
    # NOTE: a log-step scan over (value, index) pairs: the later element wins ties and
    # NaN wins over anything, also over an earlier NaN (PyTorch's rule: x >= out or isnan)
    while s < n:
        lv, li, ln = v[..., :-s], i[..., :-s], nan[..., :-s]
        rv, ri, rn = v[..., s:], i[..., s:], nan[..., s:]
        better = (rv >= lv) if is_max else (rv <= lv)
        take_left = ~rn & (ln | ~better)
        nv = xp.where(take_left, lv, rv)
        ni = xp.where(take_left, li, ri)
        nn = ln | rn
        v = xp.concatenate([v[..., :s], nv], -1)
        i = xp.concatenate([i[..., :s], ni], -1)
        nan = xp.concatenate([nan[..., :s], nn], -1)
        s *= 2
    idx = Tensor._wrap(xp.ascontiguousarray(xp.moveaxis(i, -1, d)), x._device)
    return _result(name, gather(x, d, idx), idx)


def cummax(input: Tensor, dim: int):
    """Running maxima along ``dim`` and the index where each was reached."""
    return _cum_ext(input, dim, True, "cummax")


def cummin(input: Tensor, dim: int):
    """Running minima along ``dim`` and the index where each was reached."""
    return _cum_ext(input, dim, False, "cummin")


def logcumsumexp(input: Tensor, dim: int) -> Tensor:
    """``log(cumsum(exp(x)))`` along ``dim``, shifted by the maximum to avoid overflow."""
    if input.ndim == 0:
        return input.clone()
    d = _dim(dim, input.ndim, "logcumsumexp")
    m = amax(input, d, keepdim=True).detach()
    m = where(m.isfinite(), m, 0.0)
    return log(cumsum(exp(input - m), d)) + m


def var_mean(input: Tensor, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """``(var, mean)`` over ``dim``."""
    return (var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim))


def std_mean(input: Tensor, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """``(std, mean)`` over ``dim``."""
    return (std(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim))


def aminmax(input: Tensor, *, dim=None, keepdim: bool = False):
    """``(min, max)`` over ``dim`` (all elements when None)."""
    return return_types.aminmax((amin(input, dim, keepdim), amax(input, dim, keepdim)))


def nansum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Sum treating NaN as zero."""
    if not (input.is_floating_point() or input.is_complex()):
        return sum(input, dim, keepdim, dtype=dtype)  # NOTE: integers have no NaN (int64 sums)
    return sum(where(input.isnan(), 0.0, input), dim, keepdim, dtype=dtype)


def nanmean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Mean of the non-NaN entries."""
    keep = (~input.isnan()).to(input.dtype)
    return nansum(input, dim, keepdim, dtype=dtype) / sum(keep, dim, keepdim)


from ._common import public  # noqa: E402

__all__ = public(globals())
