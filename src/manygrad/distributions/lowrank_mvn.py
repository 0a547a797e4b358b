"""``LowRankMultivariateNormal``: covariance ``W Wᵀ + diag(d)`` in ``O(n r²)`` through
Woodbury's identity and the matrix determinant lemma."""

from __future__ import annotations

import math

from .. import creation as C
from ..tensor import Tensor
from . import constraints
from .distribution import Distribution, broadcast_shape


class LowRankMultivariateNormal(Distribution):
    """Gaussian over vectors with covariance ``cov_factor @ cov_factor.mT +
    diag(cov_diag)``: a rank-``r`` factor plus a diagonal, in ``O(n r²)``."""

    arg_constraints = {"loc": constraints.real_vector,
                       "cov_factor": constraints.independent(constraints.real, 2),
                       "cov_diag": constraints.independent(constraints.positive, 1)}  # fmt: skip
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, cov_factor, cov_diag, validate_args=None):
        if loc.ndim < 1:
            raise ValueError("loc must be at least one-dimensional.")
        n = loc.shape[-1]
        if cov_factor.ndim < 2:
            raise ValueError("cov_factor must be at least two-dimensional, with optional "
                             "leading batch dimensions")  # fmt: skip
        if tuple(cov_factor.shape[-2:-1]) != (n,):
            raise ValueError(f"cov_factor must be a batch of matrices with shape {n} x m")
        if tuple(cov_diag.shape[-1:]) != (n,):
            raise ValueError(f"cov_diag must be a batch of vectors with shape {(n,)}")
        batch = broadcast_shape(tuple(loc.shape[:-1]), tuple(cov_factor.shape[:-2]),
                                tuple(cov_diag.shape[:-1]))  # fmt: skip
        self.loc = loc.expand(*batch, n)
        self.cov_factor = cov_factor.expand(*batch, n, cov_factor.shape[-1])
        self.cov_diag = cov_diag.expand(*batch, n)
        self._unbroadcasted_cov_factor = cov_factor
        self._unbroadcasted_cov_diag = cov_diag
        self._capacitance_tril = _capacitance_tril(cov_factor, cov_diag)
        super().__init__(batch, (n,), validate_args)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        w, d = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        return ((w * w).sum(-1) + d).expand(*self._batch_shape, *self._event_shape)

    @property
    def covariance_matrix(self):
        w, d = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        cov = w @ w.mT + d.diag_embed()
        return cov.expand(*self._batch_shape, *self._event_shape, *self._event_shape)

    @property
    def scale_tril(self):
        from .. import linalg

        return linalg.cholesky(self.covariance_matrix)

    @property
    def precision_matrix(self):
        from .. import linalg

        return linalg.inv(self.covariance_matrix)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        r = self.cov_factor.shape[-1]
        eps_w = C.randn(*shape[:-1], r, dtype=self.loc.dtype, device=self.loc.device)
        eps_d = C.randn(*shape, dtype=self.loc.dtype, device=self.loc.device)
        w = self._unbroadcasted_cov_factor
        return (self.loc + (w @ eps_w.unsqueeze(-1)).squeeze(-1)
                + self._unbroadcasted_cov_diag.sqrt() * eps_d)  # fmt: skip

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        diff = value - self.loc
        m = _batch_lowrank_mahalanobis(self._unbroadcasted_cov_factor,
                                       self._unbroadcasted_cov_diag, diff,
                                       self._capacitance_tril)  # fmt: skip
        log_det = _batch_lowrank_logdet(self._unbroadcasted_cov_diag, self._capacitance_tril)
        n = self._event_shape[0]
        return -0.5 * (n * math.log(2 * math.pi) + log_det + m)

    def entropy(self):
        log_det = _batch_lowrank_logdet(self._unbroadcasted_cov_diag, self._capacitance_tril)
        n = self._event_shape[0]
        h = 0.5 * (n * (1.0 + math.log(2 * math.pi)) + log_det)
        return h.expand(*self._batch_shape) if len(self._batch_shape) else h


def _capacitance_tril(w: Tensor, d: Tensor) -> Tensor:
    """The Cholesky factor of ``I + Wᵀ D⁻¹ W`` (Woodbury's capacitance)."""
    from .. import linalg

    r = w.shape[-1]
    wt_dinv = w.mT / d.unsqueeze(-2)
    k = wt_dinv @ w
    k = k + C.eye(r, dtype=k.dtype, device=k.device)
    return linalg.cholesky(k)


def _batch_lowrank_logdet(d: Tensor, cap_tril: Tensor) -> Tensor:
    """``log det(W Wᵀ + D)`` by the matrix determinant lemma."""
    return 2 * cap_tril.diagonal(0, -2, -1).log().sum(-1) + d.log().sum(-1)


def _batch_lowrank_mahalanobis(w, d, x, cap_tril):
    """``xᵀ (W Wᵀ + D)⁻¹ x`` by the Woodbury identity."""
    from .. import linalg

    wt_dinv = w.mT / d.unsqueeze(-2)
    wt_dinv_x = (wt_dinv @ x.unsqueeze(-1)).squeeze(-1)
    mahalanobis_term1 = (x.pow(2) / d).sum(-1)
    y = linalg.solve_triangular(cap_tril, wt_dinv_x.unsqueeze(-1), upper=False).squeeze(-1)
    return mahalanobis_term1 - y.pow(2).sum(-1)
