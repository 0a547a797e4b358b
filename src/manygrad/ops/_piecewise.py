"""Piecewise-linear activations as single graph nodes: hardtanh (relu6), threshold,
hardshrink, softshrink, hardsigmoid and hardswish.

Each op computes its value in one or two array passes and its gradient as a select (``g``
where the input is inside the op's sloped pieces, 0 elsewhere: inf or NaN in ``g`` give 0
outside, as PyTorch's backward kernels), with PyTorch's breakpoints, NaN and signed-zero
behaviour. 16-bit floats are computed in float32 and rounded once, as PyTorch's CPU
kernels do. In double backward the input gets a zero gradient (``_zero_grad_of``), not
none, as PyTorch's backward ops give it.

NOTE: one node instead of a composite of comparisons and ``where``s: 786k float32 values,
relu6 forward and backward ran in 3.3 ms as five nodes against about 1 ms as one.
"""

from __future__ import annotations

import numpy as np  # host-ok: the CPU selects run on NumPy arrays only (type checked)

from .. import _native, backend
from ..autograd import Function
from ..tensor import Tensor


def _opmath(xp, x):
    """``x`` in the dtype its math runs in: float32 for 16-bit floats."""
    return x.astype(xp.float32) if x.dtype.itemsize == 2 else x


_BITS = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def _keep(xp, g, inside):
    """``g`` where ``inside``, else 0, as a select (bit for bit: no ``inf * 0``).

    NOTE: on the CPU, ``g``'s bits times the mask as integers: one pass, without NumPy's
    ``where``, which branches per element (786k float32 values with a random mask: 0.24
    against 1.2 ms for ``backend.where``'s branch-free form)."""
    it = _BITS.get(g.dtype.itemsize)
    if type(g) is np.ndarray and type(inside) is np.ndarray and it is not None:
        if g.shape != inside.shape:
            g = np.broadcast_to(g, inside.shape)
        return np.multiply(g.view(it), inside, dtype=it).view(g.dtype)
    return backend.where(inside, g, xp.zeros((), g.dtype))


def _pick(xp, cond, a, b):
    """``where(cond, a, b)`` for a float array ``a`` of ``cond``'s shape and ``b`` an array
    or a number; on the CPU as integers, ``((a ^ b) * cond) ^ b`` (three passes)."""
    it = _BITS.get(a.dtype.itemsize)
    if type(a) is np.ndarray and type(cond) is np.ndarray and it is not None:
        bb = np.asarray(b, a.dtype).view(it)
        r = np.bitwise_xor(a.view(it), bb)
        np.multiply(r, cond, out=r, dtype=it)
        r ^= bb
        return r.view(a.dtype)
    return backend.where(cond, a, xp.asarray(b, a.dtype))


class _Piecewise(Function):
    """Base: subclasses give ``value(xp, x, *params)`` and ``passes(xp, x, *params)``
    (where the gradient passes), or their own ``grad(xp, g, x, *params)``; ``native`` names
    the op in the CPU kernels (``_native.piecewise``), which take float32 CPU arrays."""

    native = ""

    def forward(self, x, *params):
        self.params = params
        self.x = x
        if (y := _native.piecewise(self.native, x, *params)) is not None:
            return y  # NOTE: CPU float32: one pass in C, the same values bit for bit
        xp = backend.array_module(x)
        with backend.quiet_float_errors():
            # NOTE: 0-d as 1-element arrays: NumPy's ops on 0-d arrays return scalars
            y = self.value(xp, _opmath(xp, x.reshape(-1) if x.ndim == 0 else x), *params)
        return y.astype(x.dtype, copy=False).reshape(x.shape)

    def backward(self, g):
        if (dx := _native.piecewise_backward(self.native, g, self.x, *self.params)) is not None:
            return (dx,) + (None,) * len(self.params)
        xp = backend.array_module(g)
        with backend.quiet_float_errors():
            return (self.grad(xp, g, self.x, *self.params),) + (None,) * len(self.params)

    def grad(self, xp, g, x, *params):
        return _keep(xp, g, self.passes(xp, x, *params))

    def backward_graph(self, g):
        from .elementwise import _zero_grad_of

        x = self.saved_input(0, self.x)
        inside = Tensor._wrap(self.passes(backend.array_module(self.x), self.x, *self.params))
        from .elementwise import where

        gx = where(inside, g, Tensor._wrap(backend.array_module(g._data).zeros((), g._data.dtype)))
        return (_zero_grad_of(gx, x),) + (None,) * len(self.params)


class Hardtanh(_Piecewise):
    """``clamp(x, lo, hi)`` (NaN stays NaN); gradient ``g`` strictly inside (lo, hi) and for
    NaN, as PyTorch's ``(x <= lo || x >= hi) ? 0 : g``; for the in-place form (``strict``),
    0 for NaN, as PyTorch's ``hardtanh_``."""

    native = "hardtanh"

    def value(self, xp, x, lo, hi, strict=False):
        return xp.clip(x, lo, hi)

    def passes(self, xp, x, lo, hi, strict=False):
        if strict:
            out = x > lo
            out &= x < hi
            return out
        out = x <= lo
        out |= x >= hi
        return ~out


class Threshold(_Piecewise):
    """``x <= threshold ? value : x`` (NaN stays NaN); gradient ``x <= threshold ? 0 : g``."""

    native = "threshold"

    def value(self, xp, x, threshold, value):
        return _pick(xp, self.passes(xp, x, threshold, value), x, value)

    def passes(self, xp, x, threshold, value):
        return ~(x <= threshold)


class Hardshrink(_Piecewise):
    """``-lambd <= x <= lambd ? 0 : x``; the gradient selects the same way."""

    native = "hardshrink"

    def value(self, xp, x, lambd):
        return _keep(xp, x, self.passes(xp, x, lambd))

    def passes(self, xp, x, lambd):
        out = x >= -lambd
        out &= x <= lambd
        return ~out


class Softshrink(_Piecewise):
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, ``+0.0`` between
    NaN stays NaN); gradient as hardshrink's."""

    native = "softshrink"

    def value(self, xp, x, lambd):
        # NOTE: x - clip(x) is x - lambd / x + lambd / +0.0 on the three pieces, as PyTorch's
        return x - xp.clip(x, -lambd, lambd)

    passes = Hardshrink.passes


class Hardsigmoid(_Piecewise):
    """``min(max(x + 3, 0), 6) / 6`` (NaN stays NaN); gradient ``g / 6`` strictly inside
    (-3, 3), 0 elsewhere and for NaN."""

    native = "hardsigmoid"

    def value(self, xp, x):
        y = x + 3
        xp.clip(y, 0.0, 6.0, out=y)
        y /= 6
        return y

    def passes(self, xp, x):
        out = x > -3
        out &= x < 3
        return out

    def grad(self, xp, g, x):
        # NOTE: PyTorch multiplies by 1/6 rounded to float32, in float64 too
        gm = _opmath(xp, g)
        sixth = xp.asarray(xp.float32(1.0 / 6.0), gm.dtype)
        return _keep(xp, (gm * sixth).astype(g.dtype, copy=False), self.passes(xp, x))

    def backward_graph(self, g):
        from .elementwise import _zero_grad_of, where

        x = self.saved_input(0, self.x)
        inside = Tensor._wrap(self.passes(backend.array_module(self.x), self.x))
        gx = where(inside, g * float(np.float32(1.0 / 6.0)), 0.0).to(g.dtype)
        return (_zero_grad_of(gx, x),)


class Hardswish(_Piecewise):
    """``x * min(max(x + 3, 0), 6) / 6`` (-0.0 below -3, NaN at -inf); gradient 0 up to -3,
    ``g * (x / 3 + 1/2)`` below 3, ``g`` from 3 on and for NaN."""

    native = "hardswish"

    def value(self, xp, x):
        y = x + 3
        xp.clip(y, 0.0, 6.0, out=y)
        y *= x
        y /= 6
        return y

    @staticmethod
    def grad(xp, g, x):
        xm, gm = _opmath(xp, x), _opmath(xp, g)
        mid = xm / 3
        mid += 0.5
        mid *= gm
        out = _pick(xp, xm < 3, mid, gm)  # NOTE: NaN takes g, as PyTorch's
        return _keep(xp, out, ~(xm <= -3)).astype(g.dtype, copy=False)

    def backward_graph(self, g):
        return (_HardswishGrad.apply(g, self.saved_input(0, self.x)),)


class _HardswishGrad(Function):
    """Hardswish's gradient ``(g, x) -> gx`` as a node, for double backward: its own
    derivatives are the slope for ``g`` and ``g / 3`` strictly inside (-3, 3) for ``x``
    (0 elsewhere), as PyTorch's."""

    def forward(self, g, x):
        self.g, self.x = g, x
        xp = backend.array_module(g)
        with backend.quiet_float_errors():
            return Hardswish.grad(xp, g, x)

    def backward(self, gg):
        xp = backend.array_module(gg)
        with backend.quiet_float_errors():
            dg = Hardswish.grad(xp, gg, self.x)
            inside = self.x > -3
            inside &= self.x < 3
            dx = _keep(xp, _opmath(xp, gg) * _opmath(xp, self.g) / 3, inside)
        return dg, dx.astype(gg.dtype, copy=False)

    def backward_graph(self, gg):
        from .elementwise import where

        g, x = self.saved_input(0, self.g), self.saved_input(1, self.x)
        dg = where(x <= -3, 0.0, where(x < 3, gg * (x / 3 + 0.5), gg))
        dx = where((x > -3) & (x < 3), gg * g / 3, 0.0)
        return dg.to(gg.dtype), dx.to(gg.dtype)
