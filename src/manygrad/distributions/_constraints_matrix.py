"""The constraints on matrices (``square``, ``symmetric``, ``lower_cholesky``,
``corr_cholesky``, ``positive_definite``...), re-exported by ``distributions.constraints``."""

from __future__ import annotations

from .constraints import Constraint


class _Square(Constraint):
    event_dim = 2

    def check(self, value):
        from ..creation import full

        ok = value.shape[-2] == value.shape[-1]
        return full(tuple(value.shape[:-2]), ok, device=value.device).bool()


class _Symmetric(_Square):
    def check(self, value):
        from ..ops import isclose

        if value.shape[-2] != value.shape[-1]:
            return super().check(value)  # NOTE: known from the shape, no host read
        return isclose(value, value.mT, atol=1e-6).all(-2).all(-1)


def _when_all_symmetric(value, sym, test):
    """``test(value)`` per matrix when every matrix is symmetric, else ``sym`` (PyTorch's
    rule), computed without a host read: the non-symmetric matrices (NaN among them) are
    swapped for the identity before ``test`` sees them."""
    from .. import ops as F
    from ..creation import eye

    if value.shape[-2] != value.shape[-1]:
        return sym
    ident = eye(value.shape[-1], dtype=value.dtype, device=value.device)
    safe = F.where(sym.unsqueeze(-1).unsqueeze(-1), value.detach(), ident)
    return F.where(sym.all(), test(safe), sym)


class _LowerTriangular(Constraint):
    event_dim = 2

    def check(self, value):
        return (value.tril() == value).reshape(*value.shape[:-2], -1).all(-1)


class _LowerCholesky(Constraint):
    event_dim = 2

    def check(self, value):
        lower = (value.tril() == value).reshape(*value.shape[:-2], -1).all(-1)
        positive_diag = (value.diagonal(0, -2, -1) > 0).all(-1)
        return lower & positive_diag


class _CorrCholesky(Constraint):
    event_dim = 2

    def check(self, value):
        from .. import finfo

        # NOTE: PyTorch's tolerance: 10 epsilons of the dtype per column
        tol = finfo(value.dtype).eps * value.shape[-1] * 10
        v = value.detach()
        row_norm = (v * v).sum(-1).sqrt()
        unit = ((row_norm - 1).abs() <= tol).all(-1)
        return _LowerCholesky().check(value) & unit


class _PositiveSemidefinite(_Symmetric):
    def check(self, value):
        from .. import linalg

        sym = super().check(value)
        return _when_all_symmetric(value, sym, lambda m: (linalg.eigvalsh(m) >= 0).all(-1))


class _PositiveDefinite(_Symmetric):
    def check(self, value):
        from .. import linalg
        from ..ops import isfinite

        def test(m):
            # NOTE: a Cholesky factorization, as PyTorch's check; LAPACK's fails on inf
            finite = isfinite(m).all(-1).all(-1)
            return (linalg.cholesky_ex(m).info == 0) & finite

        return _when_all_symmetric(value, super().check(value), test)
