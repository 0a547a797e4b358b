"""Reductions: sum, mean, var/std, max/min, argmax, prod, logsumexp, cumsum, all/any."""

from __future__ import annotations

import builtins as _b

from .. import backend, return_types
from .. import dtypes as D
from ..autograd import Function, autocast_fp32
from ..cpu import _sortscan
from ..errors import DimError, DTypeError, DTypeNotImplementedError, ShapeError
from ..tensor import Tensor
from ._common import trailing_sum
from .elementwise import _float_input, _scale32, cast


def _axes(x, dim, op):
    """Normalise ``dim`` (None, int or tuple) to a tuple of non-negative axes or None."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if not dims and op not in ("any", "all"):
        return None  # NOTE: dim=() or [] reduces over every dim, as PyTorch's (any and all
        # reduce over none)
    nd = _b.max(x.ndim, 1)
    out = []
    for d in dims:
        if not -nd <= d < nd:
            raise DimError(
                f"{op}: dim {d} is out of range for a tensor of shape {tuple(x.shape)} "
                f"(expected -{nd} <= dim < {nd})"
            )
        if d % nd in out:
            raise ShapeError(f"{op}: dim {d % nd} appears multiple times in the list of dims")
        out.append(d % nd)
    return tuple(out) if x.ndim else None


def _need_float(op: str, x, kinds: str = "biu", not_implemented: bool = False) -> None:
    """Refuse a tensor of a dtype kind in ``kinds`` ("b" bool, "iu" integers) where
    PyTorch's op takes floating point (or complex) tensors only: a RuntimeError, or (PyTorch's
    missing kernels) a NotImplementedError."""
    if x._data.dtype.kind in kinds:
        raise (DTypeNotImplementedError if not_implemented else DTypeError)(
            f"{op}: does not take {x.dtype.name} tensors (as in PyTorch); convert the input "
            "first, e.g. x.float()"
        )


def _no_identity(op: str, x, dim, sep: str = "():", wrap: bool = True) -> None:
    """PyTorch's errors for a reduction without an identity (max, argmax, median, ...) of
    an empty ``x``: an IndexError naming the first empty dim of ``dim`` (``wrap``: as a
    non-negative dim), a RuntimeError for ``dim`` None (every dim). Returns when ``x``
    has entries or the reduced dims all do (``dim`` already checked to be in range)."""
    if x._data.size or x.ndim == 0:
        return
    if dim is None or (not isinstance(dim, int) and len(dim) == 0):
        arg = op.startswith("arg")  # NOTE: PyTorch's argmax/argmin raise an IndexError here
        raise (DimError if arg else ShapeError)(
            f"{op}(): Expected reduction dim to be specified for input.numel() == 0 (the "
            f"input is empty, shape {tuple(x.shape)})."
            + ("" if arg else " Specify the reduction dim with the 'dim' argument.")
        )
    for d in (dim,) if isinstance(dim, int) else dim:
        if x.shape[d] == 0:
            raise DimError(
                f"{op}{sep} Expected reduction dim {d % x.ndim if wrap else d} to have non-zero"
                f" size (input shape {tuple(x.shape)}): {op} has no value for an empty dim"
            )


def _expand_t(g, shape, axes, keepdim):
    """``_expand`` on graph tensors (double backward)."""
    if axes is not None and not keepdim:
        for a in sorted(axes):
            g = g.unsqueeze(a)
    return g.expand(*shape)


def _expand(g, shape, axes, keepdim):
    """Broadcast a reduced gradient back over the reduced axes."""
    xp = backend.array_module(g)
    if axes is not None and not keepdim:
        g = xp.expand_dims(g, axes)
    return xp.broadcast_to(g, shape)


def _is_half(dt) -> bool:
    """float16 or bfloat16: sums of these accumulate in float32, as PyTorch's do.

    NOTE: NumPy's running sum along an axis (and every bfloat16 sum) rounds to 16 bits at
    each step, which is off by several units in the last place after a few dozen terms."""
    return dt.itemsize == 2 and dt.kind in "fV"


def _sum32(x, axes, keepdims):
    """A sum of 16-bit floats accumulated in float32, rounded once to ``x``'s dtype.

    NOTE: through a float32 copy: CuPy's bfloat16 support has no reductions of its own."""
    total = x.astype(D.float32.np).sum(axis=axes, keepdims=keepdims)
    with backend.quiet_float_errors():  # NOTE: a sum past 16 bits' range is inf, silently
        return total.astype(x.dtype)


class Sum(Function):
    keeps_nothing = True  # a second backward works without retain_graph
    changes_dtype = True  # sum(dtype=...) accumulates in the dtype asked for
    complex_ok = True

    def forward(self, x, axes, keepdim, dt):
        self.shape, self.axes, self.keepdim = x.shape, axes, keepdim
        if dt is None or dt == x.dtype:
            if _is_half(x.dtype):
                return _sum32(x, axes, keepdim)
            fast = trailing_sum(x, axes, keepdim)
            if fast is not None:
                return fast
        return x.sum(axis=axes, keepdims=keepdim, dtype=dt)

    def backward(self, g):
        return _expand(g, self.shape, self.axes, self.keepdim)

    def backward_graph(self, g):
        return _expand_t(g, self.shape, self.axes, self.keepdim)


class Mean(Function):
    keeps_nothing = True  # a second backward works without retain_graph
    complex_ok = True

    def forward(self, x, axes, keepdim):
        self.shape, self.axes, self.keepdim = x.shape, axes, keepdim
        self.n = _count(x.shape, axes)
        if _is_half(x.dtype):
            f = x.astype(D.float32.np)
            return f.mean(axis=axes, keepdims=keepdim).astype(x.dtype)
        fast = trailing_sum(x, axes, keepdim)
        if fast is not None:
            return fast * x.dtype.type(1.0 / _b.max(self.n, 1))
        return x.mean(axis=axes, keepdims=keepdim)

    def backward(self, g):
        if _is_half(g.dtype):  # NOTE: g / n, as PyTorch's, with n at float32 precision
            g = _scale32(g, _b.max(self.n, 1), True)
        else:
            g = (g * (1.0 / _b.max(self.n, 1))).astype(g.dtype, copy=False)  # NOTE: see Var
        return _expand(g, self.shape, self.axes, self.keepdim)

    def backward_graph(self, g):
        return _expand_t(g * (1.0 / _b.max(self.n, 1)), self.shape, self.axes, self.keepdim)


def _count(shape, axes, reduced=True):
    """Elements per reduced slice (``reduced``) or number of slices."""
    if axes is None:
        n = 1
        for s in shape:
            n *= s
        return n if reduced else 1
    r = 1
    for a in axes:
        r *= shape[a]
    if reduced:
        return r
    total = 1
    for s in shape:
        total *= s
    return total // r if r else 0


def sum(input: Tensor, dim=None, keepdim: bool = False, dtype=None) -> Tensor:  # noqa: A001
    """Sum over ``dim`` (all when None). Integers and bools sum to int64."""
    dt = D.from_any(dtype).np if dtype is not None else None
    if dt is None and not (input.is_floating_point() or input.is_complex()):
        dt = D.int64.np
    return Sum.apply(input, _axes(input, dim, "sum"), keepdim, dt)


def mean(input: Tensor, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    if input.__class__ is not Tensor and input.is_quantized and dtype is None:
        from ..ao import _qops  # NOTE: PyTorch's quantized mean: the input's qparams

        return _qops.mean(input, dim, keepdim)
    if dtype is not None:
        input = cast(input, dtype)
    if not (input.is_floating_point() or input.is_complex()):
        raise DTypeError(
            f"mean: needs a floating point tensor, got {input.dtype}; use x.float().mean()"
        )
    return Mean.apply(input, _axes(input, dim, "mean"), keepdim)


class Var(Function):
    def forward(self, x, axes, correction, keepdim):
        return self._variance(x, axes, correction, keepdim).astype(x.dtype, copy=False)

    def _variance(self, x, axes, correction, keepdim):
        """The variance, in float32 for 16-bit floats (see ``_is_half``)."""
        xp = backend.array_module(x)
        if _is_half(x.dtype):
            x32 = x.astype(D.float32.np)
            mu = x32.mean(axis=axes, keepdims=True)
            # NOTE: the gradient's centred values are rounded to x's dtype, as PyTorch's
            xc, self.centered = x32 - mu, x - mu.astype(x.dtype)
        else:
            xc = self.centered = x - x.mean(axis=axes, keepdims=True)
            if x.dtype == D.float32.np and xp is backend.np:
                # NOTE: PyTorch's CPU variance of float32 accumulates in float64 (Welford)
                # and so is correctly rounded; float32 sums differ from it by an ulp or so
                x64 = x.astype(D.float64.np)
                xc = x64 - x64.mean(axis=axes, keepdims=True)
        self.x = x
        n = _count(x.shape, axes)
        self.denom = _b.max(n - correction, 0)
        self.axes, self.keepdim = axes, keepdim
        sq = xp.square(xc).sum(axis=axes, keepdims=keepdim)
        # NOTE: NumPy < 2 makes a 0-d float32 / a Python int float64 (scalar promotion);
        # no degrees of freedom: sq / 0, inf (NaN where sq is 0), as PyTorch's
        if self.denom:
            return sq / self.denom
        with backend.quiet_float_errors():
            return sq / xp.zeros((), sq.dtype)

    def backward(self, g):
        xp = backend.array_module(g)
        g = g if self.keepdim or self.axes is None else xp.expand_dims(g, self.axes)
        if self.denom:
            if _is_half(g.dtype):  # NOTE: each product rounded to 16 bits, as PyTorch's
                return _scale32(g, 2.0 / self.denom, False) * self.centered
            return (2.0 / self.denom) * g * self.centered
        # NOTE: no degrees of freedom: PyTorch 2.13 gives g * inf (its sign, not the
        # centred value's) where x differs from the mean, NaN where it does not
        with backend.quiet_float_errors():
            return g * (xp.abs(xp.sign(self.centered)) * float("inf"))

    def backward_graph(self, g):
        x = self.saved_input(0, self.x)
        axes = self.axes if self.axes is not None else tuple(range(x.ndim))
        c = x - x.mean(axes, keepdim=True)
        if not self.keepdim and self.axes is not None:
            for a in sorted(self.axes):
                g = g.unsqueeze(a)
        return g * (2.0 / self.denom) * c if self.denom else g * c * 0


class Std(Var):
    """``sqrt(var)`` with PyTorch's gradient: 0 where the result is 0 (a constant slice),
    where the chain through sqrt would give inf * 0 = NaN."""

    def forward(self, x, axes, correction, keepdim):
        xp = backend.array_module(x)
        self.y = xp.sqrt(self._variance(x, axes, correction, keepdim)).astype(x.dtype, copy=False)
        return self.y

    def backward(self, g):
        xp = backend.array_module(g)
        with backend.quiet_float_errors():
            gv = g / (2 * self.y)
        return super().backward(xp.where(self.y == 0, xp.zeros((), gv.dtype), gv))

    def backward_graph(self, g):
        from .elementwise import where

        x = self.saved_input(0, self.x)
        axes = self.axes if self.axes is not None else tuple(range(x.ndim))
        c = x - x.mean(axes, keepdim=True)
        with backend.quiet_float_errors():  # NOTE: no degrees of freedom: sq / 0, as forward
            v = (c * c).sum(axes, keepdim=self.keepdim) / self.denom
        # NOTE: sqrt of a safe 1 where the variance is 0, so that no inf * 0 reaches the
        # second derivative (PyTorch's masked gradient is 0 there, to every order)
        y = where(v == 0, 1.0, v).sqrt()
        return super().backward_graph(where(v == 0, 0.0, g / (2 * y)))


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    return 1 if unbiased in (None, True) else 0


def _dof_warning(x: Tensor, axes, correction, name: str) -> None:
    if _count(x.shape, axes) - correction <= 0:
        from ._common import warn_caller

        warn_caller(
            f"{name}(): degrees of freedom is <= 0. Correction should be strictly less than "
            "the reduction factor (input numel divided by output numel)."
        )


def var(input: Tensor, dim=None, unbiased=None, keepdim=False, *, correction=None) -> Tensor:
    """Variance with Bessel's correction by default (``correction=1``)."""
    _need_float("var", input)
    axes, corr = _axes(input, dim, "var"), _correction(unbiased, correction)
    _dof_warning(input, axes, corr, "var")
    return Var.apply(input, axes, corr, keepdim)


def std(input: Tensor, dim=None, unbiased=None, keepdim=False, *, correction=None) -> Tensor:
    """Standard deviation, ``sqrt(var)``, with Bessel's correction by default."""
    _need_float("std", input)
    x = input
    axes, corr = _axes(x, dim, "std"), _correction(unbiased, correction)
    _dof_warning(x, axes, corr, "std")
    return Std.apply(x, axes, corr, keepdim)


class AMax(Function):
    """Max/min over axes; the gradient is shared evenly among tied elements."""

    def forward(self, x, axes, keepdim, is_max):
        y = x.max(axis=axes, keepdims=True) if is_max else x.min(axis=axes, keepdims=True)
        self.mask = x == y
        self.axes, self.keepdim, self.shape = axes, keepdim, x.shape
        if keepdim:
            return y
        xp = backend.array_module(x)
        return y.reshape(()) if axes is None else xp.squeeze(y, axis=axes)

    def backward(self, g):
        xp = backend.array_module(g)
        if not self.keepdim and self.axes is not None:
            g = xp.expand_dims(g, self.axes)
        m = self.mask.astype(g.dtype)
        return m * (g / m.sum(axis=self.axes, keepdims=True))

    def backward_graph(self, g):
        if not self.keepdim and self.axes is not None:
            for a in sorted(self.axes):
                g = g.unsqueeze(a)
        m = self.mask.astype(g._data.dtype)
        return Tensor._wrap(m / m.sum(axis=self.axes, keepdims=True)) * g


class MaxDim(Function):
    """``max(dim)``: the gradient goes to the selected index only."""

    def forward(self, x, axis, keepdim, idx):  # idx has keepdim shape
        xp = backend.array_module(x)
        self.idx, self.axis, self.keepdim, self.shape = idx, axis, keepdim, x.shape
        v = xp.take_along_axis(x, idx, axis)
        return v if keepdim else v.squeeze(axis)

    def backward(self, g):
        xp = backend.array_module(g)
        gk = g if self.keepdim else xp.expand_dims(g, self.axis)
        pos = [1] * len(self.shape)
        pos[self.axis] = self.shape[self.axis]
        hit = xp.arange(self.shape[self.axis]).reshape(pos) == self.idx
        return xp.where(hit, gk, xp.zeros((), g.dtype))

    def backward_graph(self, g):
        from .elementwise import where

        xp = backend.array_module(g._data)
        gk = g if self.keepdim else g.unsqueeze(self.axis)
        pos = [1] * len(self.shape)
        pos[self.axis] = self.shape[self.axis]
        hit = xp.arange(self.shape[self.axis]).reshape(pos) == self.idx
        return where(Tensor._wrap(hit), gk, 0.0)


class ArgMax(Function):
    """Index of the largest entry along ``axis`` (None: of the flattened tensor)."""

    differentiable = False
    pick = "argmax"

    def forward(self, x, axis, keepdim):
        f = getattr(backend.array_module(x), self.pick)
        if axis is None:
            r = f(x.reshape(-1), keepdims=True).astype(D.int64.np)
            return r.reshape((1,) * x.ndim if keepdim else ())
        return f(x, axis=axis, keepdims=keepdim).astype(D.int64.np)


class ArgMin(ArgMax):
    pick = "argmin"


def _arg(x: Tensor, dim, keepdim, is_max, op):
    if dim is None:
        _no_identity(op, x, None)
        return (ArgMax if is_max else ArgMin).apply(x, None, keepdim)
    (axis,) = _axes(x, dim, op) or (0,)
    _no_identity(op, x, dim)
    return (ArgMax if is_max else ArgMin).apply(x, axis, keepdim)


def _maxmin(x, dim, keepdim, is_max, op):
    if not isinstance(dim, (int, type(None))) and not (isinstance(dim, Tensor)):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    if isinstance(dim, Tensor):  # torch.max(a, b) is maximum
        return _elementwise(x, None, dim, is_max, op)
    if dim is None:
        _no_identity(op, x, None)
        return AMax.apply(x, None, False, is_max)
    axes = _axes(x, dim, op)
    _no_identity(op, x, dim)
    axis = axes[0] if axes else 0
    idx = _arg(x, dim, True, is_max, op)._data
    if x.ndim == 0:
        return _values_indices(op, x.clone(), Tensor._wrap(idx.reshape(()), x._device))
    vals = MaxDim.apply(x, axis, keepdim, idx)
    ind = idx if keepdim else backend.array_module(idx).squeeze(idx, axis=axis)
    return _values_indices(op, vals, Tensor._wrap(ind, x._device))


def _values_indices(op, values, indices):
    """``torch.return_types.max`` (or ``min``): ``(values, indices)``."""
    return (return_types.max if op == "max" else return_types.min)((values, indices))


def _elementwise(input, dim, other, is_max, op):
    """``max(input, other=t)``: PyTorch's keyword for the elementwise form (which also
    comes positionally, in the place of ``dim``)."""
    if dim is not None:
        raise TypeError(f"{op}: got both dim and other; pass dim to reduce, other to compare")
    if not isinstance(other, Tensor):
        raise TypeError(
            f"{op}: other must be a Tensor, got {type(other).__name__}; for a number use "
            f"mg.clamp(input, {'min' if is_max else 'max'}=value)"
        )
    from .elementwise import maximum, minimum

    return (maximum if is_max else minimum)(input, other)


@backend.on_tensor_device
def max(input: Tensor, dim=None, keepdim: bool = False, *, other=None):  # noqa: A001
    """Largest element, ``(values, indices)`` along ``dim``, or the elementwise maximum
    with the tensor ``other`` (also taken in the place of ``dim``)."""
    if other is not None:
        return _elementwise(input, dim, other, True, "max")
    return _maxmin(input, dim, keepdim, True, "max")


@backend.on_tensor_device
def min(input: Tensor, dim=None, keepdim: bool = False, *, other=None):  # noqa: A001
    """Smallest element, ``(values, indices)`` along ``dim``, or the elementwise minimum
    with the tensor ``other`` (also taken in the place of ``dim``)."""
    if other is not None:
        return _elementwise(input, dim, other, False, "min")
    return _maxmin(input, dim, keepdim, False, "min")


def amax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    axes = _axes(input, dim, "amax") if dim != () else None
    _no_identity("amax", input, dim, wrap=False)
    return AMax.apply(input, axes, keepdim, True)


def amin(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    axes = _axes(input, dim, "amin") if dim != () else None
    _no_identity("amin", input, dim, wrap=False)
    return AMax.apply(input, axes, keepdim, False)


@backend.on_tensor_device
def argmax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    _need_float("argmax", input, "b")  # NOTE: PyTorch's argmax/argmin refuse bool (max takes it)
    return _arg(input, dim, keepdim, True, "argmax")


@backend.on_tensor_device
def argmin(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    _need_float("argmin", input, "b")
    return _arg(input, dim, keepdim, False, "argmin")


class Prod(Function):
    def forward(self, x, axis, keepdim):
        self.x, self.axis, self.keepdim = x, axis, keepdim
        if axis is None:
            return x.prod()
        if axis == x.ndim - 1 and backend.array_module(x) is backend.np:
            # NOTE: NumPy's multiply-reduce along a contiguous row is one product at a time
            # (0.28 ms for 384 x 512 float32, PyTorch 0.03): C runs 8 rows side by side
            y = _sortscan.prod_last(x)
            if y is not None:
                return y[..., None] if keepdim else y
        return x.prod(axis=axis, keepdims=keepdim)

    def backward(self, g):
        xp = backend.array_module(g)
        x, axis = self.x, self.axis
        if axis is None:
            flat = x.reshape(-1)
            return (g * _prod_others(xp, flat, 0)).reshape(x.shape)
        if not self.keepdim:
            g = xp.expand_dims(g, axis)
        return g * _prod_others(xp, x, axis)

    def backward_graph(self, g):
        from .movement import cat

        x = self.saved_input(0, self.x)
        xf, ax = (x.reshape(-1), 0) if self.axis is None else (x, self.axis)
        n = xf.shape[ax]
        if n == 0:
            return (x * 0,)
        # NOTE: the product of the others, exact with zeros: left and right running products
        parts = [xf.narrow(ax, i, 1) for i in range(n)]
        ones = parts[0] * 0 + 1
        left, acc = [], ones
        for p in parts:
            left.append(acc)
            acc = acc * p
        others, acc = [None] * n, ones
        for i in range(n - 1, -1, -1):
            others[i] = left[i] * acc
            acc = acc * parts[i]
        others = cat(others, ax)
        if self.axis is None:
            return (g * others).reshape(*x.shape)
        return (g if self.keepdim else g.unsqueeze(ax)) * others


def _prod_others(xp, x, axis):
    """Product of all other elements along ``axis`` (exact with zeros): exclusive cumprods."""
    if xp is backend.np:  # NOTE: one C pass each way, the same products in the same order
        out = _sortscan.prod_others(x, axis)
        if out is not None:
            return out
    head = [slice(None)] * x.ndim
    head[axis] = slice(0, x.shape[axis] - 1)
    head = tuple(head)
    shape = list(x.shape)
    shape[axis] = 1
    ones = xp.ones(tuple(shape), x.dtype)
    left = xp.cumprod(xp.concatenate([ones, x[head]], axis), axis)
    rx = xp.flip(x, axis)
    right = xp.cumprod(xp.concatenate([ones, rx[head]], axis), axis)
    return left * xp.flip(right, axis)


@autocast_fp32()
def prod(input: Tensor, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    if dtype is not None:
        input = cast(input, dtype)
    elif not (input.is_floating_point() or input.is_complex()):
        input = cast(input, D.int64)  # NOTE: integers and bools accumulate in int64, as PyTorch
    axes = _axes(input, dim, "prod")
    return Prod.apply(input, axes[0] if axes else None, keepdim)


class LogSumExp(Function):
    def forward(self, x, axes, keepdim):
        xp = backend.array_module(x)
        if x.size:
            m = x.max(axis=axes, keepdims=True)
            m = xp.where(xp.isfinite(m), m, 0)
        else:  # NOTE: an empty sum: log(0) = -inf, as PyTorch's
            m = xp.zeros([1 if i in axes else n for i, n in enumerate(x.shape)], x.dtype)
        # NOTE: 16-bit floats round each step to 16 bits but sum in float32, as PyTorch's
        e = xp.exp(x - m)
        out = xp.log(_sum32(e, axes, True) if _is_half(x.dtype) else e.sum(axes, keepdims=True)) + m
        self.x, self.out, self.axes, self.keepdim = x, out, axes, keepdim
        self.y = out if keepdim else xp.squeeze(out, axis=axes)
        return self.y

    def backward(self, g):
        xp = backend.array_module(g)
        if not self.keepdim:
            g = xp.expand_dims(g, self.axes)
        return g * xp.exp(self.x - self.out)

    def backward_graph(self, g):
        y = self.saved_output(self.y)
        if not self.keepdim:
            for a in sorted(self.axes):
                g, y = g.unsqueeze(a), y.unsqueeze(a)
        return g * (self.saved_input(0, self.x) - y).exp()


def logsumexp(input: Tensor, dim, keepdim: bool = False) -> Tensor:
    """``log(sum(exp(x), dim))`` computed without overflow."""
    input = _float_input(input)
    axes = _axes(input, dim, "logsumexp")
    if axes is None:
        axes = tuple(range(input.ndim))
    return LogSumExp.apply(input, axes, keepdim)


def _cumsum(x, axis, reverse: bool = False):
    """Running sums along ``axis`` (from the end with ``reverse``: ``cumsum``'s gradient),
    accumulated in float32 for 16-bit floats (``_is_half``) and, on the CPU, in float64
    for float32 (see ``_scan_accumulator``)."""
    xp = backend.array_module(x)
    if xp is backend.np:  # NOTE: one C pass, NumPy's order (2-4x NumPy's accumulate + cast)
        y = _sortscan.scan(x, axis, reverse)
        if y is not None:
            return y
    if reverse:
        return xp.flip(_cumsum(xp.flip(x, axis), axis), axis)
    if _is_half(x.dtype):
        return xp.cumsum(x.astype(D.float32.np), axis=axis).astype(x.dtype)
    wide = _scan_accumulator(x)
    if wide is not None:
        return xp.cumsum(x, axis=axis, dtype=wide).astype(x.dtype)
    return xp.cumsum(x, axis=axis)


def _scan_accumulator(x):
    """The wider dtype PyTorch's CPU scans (cumsum, cumprod) accumulate a float32 array in,
    or None.

    NOTE: PyTorch's CPU scan kernels carry float32 running values in double (its CPU
    ``acc_type``) and round each output once; float32 running sums drift from that by many
    ulps along a long dim. CUDA's accumulate in float32, as CuPy's do."""
    return (
        D.float64.np if x.dtype == D.float32.np and backend.array_module(x) is backend.np else None
    )


class Cumsum(Function):
    def forward(self, x, axis):
        self.axis = axis
        return _cumsum(x, axis)

    def backward(self, g):
        return _cumsum(g, self.axis, reverse=True)

    def backward_graph(self, g):
        return g.flip(self.axis).cumsum(self.axis).flip(self.axis)


def cumsum(input: Tensor, dim: int, dtype=None) -> Tensor:
    if dtype is not None:
        input = cast(input, dtype)
    elif not (input.is_floating_point() or input.is_complex()):
        input = cast(input, D.int64)  # NOTE: integers and bools accumulate in int64, as PyTorch
    if input.ndim == 0:
        return input.clone()
    (axis,) = _axes(input, dim, "cumsum")
    return Cumsum.apply(input, axis)


@backend.on_tensor_device
def all(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    xp = backend.array_module(input._data)
    out = xp.asarray(input._data.all(axis=_axes(input, dim, "all"), keepdims=keepdim))
    if input.dtype is D.uint8:  # NOTE: PyTorch keeps uint8 for uint8 inputs
        out = out.astype(D.uint8.np)
    return Tensor._wrap(out, input._device)


@backend.on_tensor_device
def any(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    xp = backend.array_module(input._data)
    out = xp.asarray(input._data.any(axis=_axes(input, dim, "any"), keepdims=keepdim))
    if input.dtype is D.uint8:  # NOTE: PyTorch keeps uint8 for uint8 inputs
        out = out.astype(D.uint8.np)
    return Tensor._wrap(out, input._device)


def norm(input: Tensor, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """``torch.norm``: the vector p-norm over ``dim`` (all elements when None); ``"fro"``
    is the 2-norm, ``"nuc"`` the nuclear norm of the matrices over two dims."""
    from .elementwise import abs as _abs

    if isinstance(p, str):
        dims = None if dim is None else (dim,) if isinstance(dim, int) else tuple(dim)
        if p == "fro" and (dims is None or len(dims) <= 2):
            p = 2
        elif p == "nuc":
            from .linalg_extra import matrix_norm

            dims = tuple(range(input.ndim)) if dims is None else dims
            if len(dims) != 2:
                raise ShapeError(
                    f"norm: p='nuc' is a matrix norm over 2 dims, got dim={dim} for a "
                    f"{input.ndim}-dim tensor; pass dim=(-2, -1) for a batch of matrices"
                )
            return matrix_norm(input, "nuc", dims, keepdim, dtype=dtype)
        else:
            from .linalg_extra import ArgumentError  # NOTE: a RuntimeError, as PyTorch's

            raise ArgumentError(
                f"norm: p={p!r} is not supported; use a number (inf and -inf included), "
                "'fro' (over at most 2 dims) or 'nuc'"
            )
    if dtype is not None:
        input = input.to(dtype)
    _need_float("norm", input)
    if input.is_complex():  # NOTE: the norm of complex values is that of their moduli
        input = _abs(input)
    if p == 1:
        return sum(_abs(input), dim, keepdim)
    if p == float("inf"):
        return amax(_abs(input), dim, keepdim)
    if p == -float("inf"):
        return amin(_abs(input), dim, keepdim)
    if p == 0:
        from .products import _count_node

        return _count_node(sum((input != 0).to(input.dtype), dim, keepdim), input)
    from .pnorm import pnorm

    return pnorm(_float_input(input), p, dim, keepdim)


from ._common import public  # noqa: E402

__all__ = public(globals())
