"""Differentiable Cholesky factor and linear solve, for ``MultivariateNormal``.

Kept private to the distributions: each is one ``Function`` on raw arrays, with PyTorch's
gradient conventions (the Cholesky gradient is symmetric, as the input is; a triangular
solve's gradient keeps only the triangle that holds the factor).
"""

from __future__ import annotations

from .. import backend
from ..autograd import Function
from ..errors import ManygradError
from ..tensor import Tensor


class NotPositiveDefiniteError(ManygradError, ValueError):
    """A covariance or precision matrix that has no Cholesky factor."""


def _mT(a):  # noqa: N802
    return a.swapaxes(-1, -2)


def _solve(xp, a, b):
    a, b = xp.broadcast_arrays(a, b) if a.ndim == b.ndim else (a, b)
    return xp.linalg.solve(a, b)


class Cholesky(Function):
    def forward(self, a, check: bool = True):
        xp = backend.array_module(a)
        try:
            low = xp.linalg.cholesky(a)
        except Exception as e:  # NumPy raises LinAlgError; CuPy returns NaNs
            raise NotPositiveDefiniteError(
                f"cholesky: the matrix of shape {a.shape} is not positive definite ({e}); a "
                "covariance must be symmetric with positive eigenvalues"
            ) from None
        if check and xp is not backend.np and bool(xp.isnan(low).any()):
            raise NotPositiveDefiniteError(
                f"cholesky: the matrix of shape {a.shape} is not positive definite"
            )
        self.low = low
        return low

    def backward(self, g):
        # NOTE: from dA = L X^T + X L^T with X = L^-1 dL lower-triangular:
        # gA = sym(L^-T Phi(L^T gL) L^-1), Phi = lower triangle with the diagonal halved.
        low = self.low
        xp = backend.array_module(low)
        m = xp.tril(_mT(low) @ g)
        m = m - 0.5 * xp.tril(xp.triu(m))  # NOTE: triu(tril(m)) is m's diagonal
        s = _mT(xp.linalg.solve(_mT(low), _mT(xp.linalg.solve(_mT(low), m))))
        return 0.5 * (s + _mT(s))


class Solve(Function):
    """``X = A^-1 B``; ``lower=True`` marks ``A`` as lower-triangular (gradient kept there)."""

    def forward(self, a, b, lower: bool = False):
        xp = backend.array_module(a)
        self.a, self.lower = a, lower
        self.x = xp.linalg.solve(xp.broadcast_to(a, b.shape[:-2] + a.shape[-2:]), b)
        return self.x

    def backward(self, g):
        xp = backend.array_module(g)
        a = xp.broadcast_to(self.a, g.shape[:-2] + self.a.shape[-2:])
        gb = xp.linalg.solve(_mT(a), g)
        ga = -(gb @ _mT(self.x))
        return (xp.tril(ga) if self.lower else ga), gb


def cholesky(a: Tensor, check: bool = True) -> Tensor:
    """The lower Cholesky factor of ``a``; ``check=False`` skips the host read that finds a
    failed factorization on the GPU (CuPy gives NaN there), for a matrix already checked."""
    return Cholesky.apply(a, check=check)


def solve(a: Tensor, b: Tensor, lower: bool = False) -> Tensor:
    """``A^-1 B`` for ``a`` ``(..., n, n)`` and ``b`` ``(..., n, k)`` (batch dims broadcast)."""
    return Solve.apply(a, b, lower=lower)
