"""Cumulative ops and paired reductions: cumprod, cummax, cummin, logcumsumexp,
var_mean, std_mean, aminmax, nansum, nanmean."""

from __future__ import annotations

from .. import backend, return_types
from .. import dtypes as D
from ..autograd import Function
from ..cpu import _sortscan
from ..errors import ShapeError
from ..tensor import Tensor
from .elementwise import cast, where
from .indexing import AddAt, _dim, _mesh, gather
from .reduce import (
    _cumsum,
    _is_half,
    _need_float,
    _no_identity,
    _scan_accumulator,
    amax,
    amin,
    cumsum,
    mean,
    std,
    sum,
    var,
)


class Cumprod(Function):
    def forward(self, x, axis):
        xp = backend.array_module(x)
        self.x, self.axis = x, axis
        if xp is backend.np:  # NOTE: one C pass, NumPy's order and float64 carry
            self.y = _sortscan.scan(x, axis, prod=True)
            if self.y is not None:
                return self.y
            if _is_half(x.dtype):  # NOTE: carried in float32, as PyTorch's CPU kernel
                with backend.quiet_float_errors():  # NOTE: overflow gives inf, silently
                    self.y = xp.cumprod(x.astype(D.float32.np), axis=axis).astype(x.dtype)
                return self.y
        wide = _scan_accumulator(x)
        if wide is not None:
            self.y = xp.cumprod(x, axis=axis, dtype=wide).astype(x.dtype)
        else:
            self.y = xp.cumprod(x, axis=axis)
        return self.y

    def backward(self, g):
        xp = backend.array_module(g)
        ax, x, y = self.axis, self.x, self.y
        # NOTE: d y_j / d x_k = y_j / x_k for j >= k; where x has zeros, the products are
        # recomputed without each element (quadratic in the dim's length, exact)
        rev = _cumsum(g * y, ax, reverse=True)
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


class Cummax(Function):
    """cummax's values at the indices of its scan; the gradient goes back to those
    positions (PyTorch's CummaxBackward0: a scatter-add)."""

    def forward(self, x, axis, idx, vals=None):
        self.idx, self.axis, self.shape = idx, axis, x.shape
        if vals is not None:  # NOTE: the scan's own running values (the same as picked)
            return vals
        y = _sortscan.take(x, idx, axis)
        return backend.array_module(x).take_along_axis(x, idx, axis) if y is None else y

    def backward(self, g):
        gx = backend.array_module(g).zeros(self.shape, g.dtype)
        if not _sortscan.scatter(gx, self.idx, g, self.axis, "sum"):
            backend.index_add(gx, _mesh(backend.array_module(g), self.idx, self.axis), g)
        return gx, None, None, None

    def backward_graph(self, g):
        mesh = _mesh(backend.array_module(g._data), self.idx, self.axis)
        return AddAt.apply(g, mesh, self.shape), None, None, None


class Cummin(Cummax):
    pass


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
    if xp is backend.np and x._device.type == "cpu":
        # NOTE: one pass in C (the log-step scan below: 6 ms against PyTorch's 0.16 for
        # 192 x 384 float32), the values picked and their gradient put back in C too
        r = _sortscan.cumext(x._data, d, is_max, values=True)
        if r is not None:
            vals = (Cummax if is_max else Cummin).apply(x, d, *r)
            return _result(name, vals, Tensor._wrap(r[0], x._device))
    v = xp.moveaxis(x._data, d, -1)
    n = v.shape[-1]
    i = xp.broadcast_to(xp.arange(n), v.shape).astype("int64")
    # NOTE: bfloat16 and float8 (ml_dtypes) are of kind "V" and have NaN too
    nan = xp.isnan(v) if v.dtype.kind in "fV" else xp.zeros(v.shape, bool)
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


def _log_add(xp, a, b):
    """``log(exp(a) + exp(b))`` elementwise: the larger plus ``log1p(exp(-|a - b|))``."""
    same = a == b  # NOTE: equal infinities: a zero difference, so no inf - inf
    return xp.maximum(a, b) + xp.log1p(xp.exp(-xp.abs(xp.where(same, 0, a) - xp.where(same, 0, b))))


def _log_scan(x, axis, reverse: bool = False):
    """Running ``log(sum(exp))`` along ``axis`` (from the end with ``reverse``): on the CPU
    one C pass in double, PyTorch's order (its bits); else a log-step scan of pairwise
    log-adds."""
    xp = backend.array_module(x)
    if xp is backend.np:
        # NOTE: (192, 384) float32: 8.6 ms by the log-step scan, PyTorch 2.4
        y = _sortscan.logcumsumexp(x, axis, reverse)
        if y is not None:
            return y
    if reverse:
        return xp.flip(_log_scan(xp.flip(x, axis), axis), axis)
    v = xp.moveaxis(x, axis, -1)
    s = 1
    while s < v.shape[-1]:
        v = xp.concatenate([v[..., :s], _log_add(xp, v[..., s:], v[..., :-s])], -1)
        s *= 2
    return xp.ascontiguousarray(xp.moveaxis(v, -1, axis))


class Logcumsumexp(Function):
    # NOTE: every prefix is combined exactly (a running log-add, as PyTorch's scan), not
    # shifted by one maximum for the whole dim: entries far below the maximum (-1e4 next to
    # 0) would underflow to -inf; 16-bit floats compute in float32
    def forward(self, x, axis):
        wide = x.dtype.itemsize == 2
        self.x = x.astype(D.float32.np) if wide else x
        self.axis, self.y = axis, _log_scan(self.x, axis)
        return self.y.astype(x.dtype) if wide else self.y

    def backward(self, g):
        # NOTE: PyTorch's formula: the positive and negative parts of the gradient go through
        # reverse scans in log space, exp(x + revscan(log|g| - y)), so nothing overflows
        xp = backend.array_module(g)
        x, y, ax = self.x, self.y, self.axis
        low = xp.finfo(x.dtype).min
        with backend.quiet_float_errors():
            log_abs = xp.log(xp.abs(g.astype(x.dtype)))
            parts = [xp.where(keep, log_abs, low) - y for keep in (g > 0, g < 0)]
            pos, neg = (xp.exp(_log_scan(p, ax, reverse=True) + x) for p in parts)
        return (pos - neg).astype(g.dtype), None

    def backward_graph(self, g):
        x, y, ax = self.saved_input(0, self.x), self.saved_output(self.y), self.axis
        low = float(backend.array_module(self.x).finfo(self.x.dtype).min)
        log_abs = g.abs().log()
        parts = [where(keep, log_abs, low) - y for keep in (g > 0, g < 0)]
        pos, neg = ((logcumsumexp(p.flip(ax), ax).flip(ax) + x).exp() for p in parts)
        return pos - neg, None


def logcumsumexp(input: Tensor, dim: int) -> Tensor:
    """``log(cumsum(exp(x)))`` along ``dim``, each prefix log-added exactly (no overflow or
    underflow).

    Example:
        >>> mg.logcumsumexp(mg.tensor([-1e4, 0.0]), 0)  # tensor([-10000., 0.])
    """
    if input.ndim == 0:
        return input.clone()
    d = _dim(dim, input.ndim, "logcumsumexp")
    _need_float("logcumsumexp", input, not_implemented=True)
    if not input._data.size:
        return input.clone()
    return Logcumsumexp.apply(input, d)


def var_mean(input: Tensor, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """``(var, mean)`` over ``dim``."""
    return (var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim))


def std_mean(input: Tensor, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """``(std, mean)`` over ``dim``."""
    return (std(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim))


def aminmax(input: Tensor, *, dim=None, keepdim: bool = False):
    """``(min, max)`` over ``dim`` (all elements when None)."""
    if not input._data.size and input.ndim:
        if dim is None:
            raise ShapeError(
                "aminmax(): cannot compute aminmax over an empty dimension as the operation "
                f"has no identity (input shape {tuple(input.shape)})"
            )
        _no_identity("aminmax", input, _dim(dim, input.ndim, "aminmax"), sep=":")
    return return_types.aminmax((amin(input, dim, keepdim), amax(input, dim, keepdim)))


def nansum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Sum treating NaN as zero."""
    if not (input.is_floating_point() or input.is_complex()):
        return sum(input, dim, keepdim, dtype=dtype)  # NOTE: integers have no NaN (int64 sums)
    return sum(where(input.isnan(), 0.0, input), dim, keepdim, dtype=dtype)


def nanmean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Mean of the non-NaN entries."""
    _need_float("nanmean", input)
    keep = (~input.isnan()).to(input.dtype)
    return nansum(input, dim, keepdim, dtype=dtype) / sum(keep, dim, keepdim)


from ._common import public  # noqa: E402

__all__ = public(globals())
