"""The vector p-norm as one op, with PyTorch's gradient where the norm is 0.

Built from ``sqrt(sum(x * x))`` the 2-norm's gradient at a zero vector is ``0 * inf``, NaN;
PyTorch defines it as 0 there (a zero regulariser, ``normalize`` of a zero row, the zero
diagonal of ``cdist``). ``norm``, ``linalg.vector_norm``, ``matrix_norm("fro")``, ``cdist``,
``dist`` and ``renorm`` go through this op for every finite ``p`` other than 0 and 1.

A complex input's norm is that of its moduli (a real result); its gradient is the real
one with ``sign(x)`` read as ``sgn(z) = z / |z|``, in PyTorch's conjugate convention.
"""

from __future__ import annotations

from .. import backend
from ..autograd import Function
from ..tensor import Tensor
from .nn import _cdt


def _sgn(xp, x, ax):
    """sign(x) for real ``x``; ``x / |x|`` (0 at 0) for complex ``x`` (``ax`` is ``|x|``)."""
    if x.dtype.kind != "c":
        return xp.sign(x)
    return xp.where(ax == 0, 0, x / xp.where(ax == 0, 1, ax))


class PNorm(Function):
    complex_ok = True  # NOTE: complex inputs give real norms (those of their moduli)

    def forward(self, x, p, axis, keepdim):
        xp = backend.array_module(x)
        self.p, self.axis, self.keepdim = p, axis, keepdim
        a = x.astype(_cdt(x), copy=False)
        self.cdt = a.dtype
        if a.dtype.kind == "c":
            a = xp.abs(a)
        if p == 2:
            n = xp.sqrt((a * a).sum(axis=axis, keepdims=True))
        else:
            n = (xp.abs(a) ** p).sum(axis=axis, keepdims=True) ** (1.0 / p)
        self.x, self.n = x, n
        out = n if keepdim else n.reshape(tuple(s for i, s in enumerate(n.shape)
                                                if i not in axis))  # fmt: skip
        self.out = out.astype(n.dtype if x.dtype.kind == "c" else x.dtype, copy=False)
        return self.out

    def _scale(self, xp, g):
        """``g`` with the reduced dims kept, over ``n ** (p - 1)``, 0 where the norm is 0."""
        g = g.reshape(self.n.shape).astype(self.n.dtype, copy=False)
        n, p = self.n, self.p
        zero = n == 0
        den = xp.where(zero, 1, n if p == 2 else n ** (p - 1))  # NOTE: no 0 / 0 computed
        return xp.where(zero, 0, g / den).astype(n.dtype, copy=False)

    def backward(self, g):
        xp = backend.array_module(g)
        x = self.x.astype(self.cdt, copy=False)
        p = self.p
        if p == 2:
            return (x * self._scale(xp, g)).astype(self.x.dtype, copy=False)
        ax = xp.abs(x)
        if p < 1:
            s = _sgn(xp, x, ax) * xp.where(ax == 0, 1, ax) ** (p - 1)  # NOTE: sgn(0) = 0
            gk = g.reshape(self.n.shape).astype(self.n.dtype, copy=False)
            return (s * gk * self.n ** (1 - p)).astype(self.x.dtype, copy=False)
        s = _sgn(xp, x, ax) * ax ** (p - 1) if p < 2 else x * ax ** (p - 2)
        return (s * self._scale(xp, g)).astype(self.x.dtype, copy=False)

    def backward_graph(self, g):
        from . import elementwise as E

        x = self.saved_input(0, self.x)
        n = self.saved_output(self.out).reshape(self.n.shape)
        g = g.reshape(self.n.shape)
        p = self.p
        zero = n == 0
        sgn = x.sgn if x.is_complex() else x.sign
        if p < 1:
            ax = x.abs()
            s = sgn() * E.where(ax == 0, 1.0, ax) ** (p - 1)
            return s * g * n ** (1 - p)
        den = E.where(zero, 1.0, n if p == 2 else n ** (p - 1))
        scale = E.where(zero, 0.0, g / den)
        if p == 2:
            return x * scale
        ax = x.abs()
        s = sgn() * ax ** (p - 1) if p < 2 else x * ax ** (p - 2)
        return s * scale


def pnorm(x: Tensor, p, dim=None, keepdim: bool = False) -> Tensor:
    """The ``p``-norm of ``x`` over ``dim`` (all dims when None) for finite ``p`` other
    than 0 and 1 (the callers handle those); complex ``x`` gives the norm of ``|x|``."""
    nd = x.ndim
    if dim is None or (not isinstance(dim, int) and len(dim) == 0):  # NOTE: () is all dims
        axis = tuple(range(nd))
    else:
        from .reduce import _axes

        _axes(x, dim, "norm")  # NOTE: refuses a dim out of range (an IndexError, as PyTorch's)
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        axis = tuple(sorted({d % nd if nd else 0 for d in dims})) if nd else ()
    return PNorm.apply(x, float(p), axis, keepdim)
