"""``MultivariateNormal``: a Gaussian over vectors, parameterised by a Cholesky factor."""

from __future__ import annotations

import math

from .. import creation as C
from ..tensor import Tensor
from . import constraints
from ._lazy import lazy_property
from ._linalg import cholesky, solve
from .distribution import Distribution, as_float, broadcast_shape


def _diag(m: Tensor) -> Tensor:
    """The diagonals of a batch of square matrices ``(..., n, n)`` -> ``(..., n)``."""
    n = m.shape[-1]
    return (m * C.eye(n, dtype=m.dtype, device=m.device)).sum(-1)


def _expand(t: Tensor, shape: tuple) -> Tensor:
    return t if tuple(t.shape) == tuple(shape) else t.expand(*shape)


class MultivariateNormal(Distribution):
    """Gaussian over vectors of size ``n`` with mean ``loc`` ``(..., n)`` and exactly one of
    ``covariance_matrix``, ``precision_matrix`` or ``scale_tril`` ``(..., n, n)``.

    Example:
        >>> d = MultivariateNormal(mu, covariance_matrix=mg.eye(2) * 0.5)
        >>> d.log_prob(action)
    """

    arg_constraints = {
        "loc": constraints.real_vector,
        "covariance_matrix": constraints.positive_definite,
        "precision_matrix": constraints.positive_definite,
        "scale_tril": constraints.lower_cholesky,
    }
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None,
                 validate_args=None):  # fmt: skip
        loc = as_float(loc)
        if loc.dim() < 1:
            raise ValueError("loc must be at least one-dimensional.")
        given = {"covariance_matrix": covariance_matrix, "precision_matrix": precision_matrix,
                 "scale_tril": scale_tril}  # fmt: skip
        given = {k: v for k, v in given.items() if v is not None}
        if len(given) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or scale_tril "
                             "may be specified.")  # fmt: skip
        ((name, mat),) = given.items()
        mat = as_float(mat)
        if mat.dim() < 2:
            what = "scale_tril matrix" if name == "scale_tril" else name
            raise ValueError(f"{what} must be at least two-dimensional, with optional leading "
                             "batch dimensions")  # fmt: skip
        n = loc.shape[-1]
        if mat.shape[-1] != mat.shape[-2] or mat.shape[-1] != n:
            raise ValueError(f"MultivariateNormal: the matrix must be (..., {n}, {n}) to match "
                             f"loc {tuple(loc.shape)}, got {tuple(mat.shape)}")  # fmt: skip
        batch = broadcast_shape(loc.shape[:-1], mat.shape[:-2])
        # NOTE: the given matrix is kept by its name (the others are made on first use), so
        # that the checks and the repr are PyTorch's
        self.__dict__[name] = _expand(mat, (*batch, n, n))
        self.loc = _expand(loc, (*batch, n))
        super().__init__(batch, (n,), validate_args)
        # NOTE: a matrix checked positive definite needs no second host read in cholesky
        check = not self._validate_args
        if name == "scale_tril":
            self._unbroadcasted_scale_tril = mat
        elif name == "covariance_matrix":
            self._unbroadcasted_scale_tril = cholesky(mat, check)
        else:
            eye = C.eye(n, dtype=mat.dtype, device=mat.device)
            cov = solve(mat, _expand(eye, tuple(mat.shape)))
            self._unbroadcasted_scale_tril = cholesky((cov + cov.mT) / 2, check)

    @lazy_property
    def scale_tril(self) -> Tensor:
        return _expand(self._unbroadcasted_scale_tril, (*self.batch_shape, *self.event_shape * 2))

    @lazy_property
    def covariance_matrix(self) -> Tensor:
        low = self._unbroadcasted_scale_tril
        return _expand(low @ low.mT, (*self.batch_shape, *self.event_shape * 2))

    @lazy_property
    def precision_matrix(self) -> Tensor:
        cov = self.covariance_matrix
        eye = C.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
        return solve(cov, _expand(eye, tuple(cov.shape)))

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        v = (self._unbroadcasted_scale_tril**2).sum(-1)
        return _expand(v, (*self.batch_shape, *self.event_shape))

    def _half_log_det(self) -> Tensor:
        return _diag(self._unbroadcasted_scale_tril).log().sum(-1)

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        eps = C.randn(*shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + (self._unbroadcasted_scale_tril @ eps.unsqueeze(-1)).squeeze(-1)

    def _mahalanobis(self, diff: Tensor) -> Tensor:
        low = self._unbroadcasted_scale_tril
        shape = broadcast_shape(diff.shape[:-1], low.shape[:-2])
        n = diff.shape[-1]
        z = solve(_expand(low, (*shape, n, n)), _expand(diff, (*shape, n)).unsqueeze(-1), True)
        return (z.squeeze(-1) ** 2).sum(-1)

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        diff = as_float(value, self.loc) - self.loc
        n = self.event_shape[0]
        m = self._mahalanobis(diff)
        return -0.5 * (n * math.log(2 * math.pi) + m) - self._half_log_det()

    def entropy(self) -> Tensor:
        n = self.event_shape[0]
        h = 0.5 * n * (1.0 + math.log(2 * math.pi)) + self._half_log_det()
        return _expand(h, tuple(self.batch_shape))
