"""``Independent``: treat some batch dims of a distribution as event dims."""

from __future__ import annotations

from ..tensor import Tensor
from . import constraints
from .distribution import Distribution


def _sum_right(x: Tensor, n: int) -> Tensor:
    return x.sum(tuple(range(-n, 0))) if n else x


class Independent(Distribution):
    """``base_distribution`` with its last ``reinterpreted_batch_ndims`` batch dims as one
    event: ``log_prob`` sums over them.

    Example: ``Independent(Normal(mu, sigma), 1)`` is a diagonal Gaussian over vectors.
    """

    arg_constraints: dict = {}

    def __init__(self, base_distribution: Distribution, reinterpreted_batch_ndims: int,
                 validate_args=None):  # fmt: skip
        n = int(reinterpreted_batch_ndims)
        shape = tuple(base_distribution.batch_shape) + tuple(base_distribution.event_shape)
        nb = len(base_distribution.batch_shape)
        if n > nb:
            raise ValueError("Expected reinterpreted_batch_ndims <= len(base_distribution."
                             f"batch_shape), actual {n} vs {nb}")  # fmt: skip
        if n < 0:
            raise ValueError(f"Independent: reinterpreted_batch_ndims must be >= 0, got {n}")
        self.base_dist = base_distribution
        self.reinterpreted_batch_ndims = n
        event_dim = n + len(base_distribution.event_shape)
        super().__init__(shape[: len(shape) - event_dim], shape[len(shape) - event_dim :],
                         validate_args)  # fmt: skip

    @property
    def has_rsample(self) -> bool:
        return self.base_dist.has_rsample

    @constraints.dependent_property
    def support(self):
        base = self.base_dist.support
        n = self.reinterpreted_batch_ndims
        return constraints.independent(base, n) if n else base

    @property
    def mean(self) -> Tensor:
        return self.base_dist.mean

    @property
    def mode(self) -> Tensor:
        return self.base_dist.mode

    @property
    def variance(self) -> Tensor:
        return self.base_dist.variance

    def sample(self, sample_shape=()) -> Tensor:
        return self.base_dist.sample(sample_shape)

    def rsample(self, sample_shape=()) -> Tensor:
        return self.base_dist.rsample(sample_shape)

    def log_prob(self, value) -> Tensor:
        # NOTE: no check of its own: the base checks each value, as PyTorch's
        return _sum_right(self.base_dist.log_prob(value), self.reinterpreted_batch_ndims)

    def entropy(self) -> Tensor:
        return _sum_right(self.base_dist.entropy(), self.reinterpreted_batch_ndims)

    def __repr__(self) -> str:
        return self._repr_later()()

    def _repr_later(self):
        base, n = self.base_dist._repr_later(), self.reinterpreted_batch_ndims
        name = type(self).__name__
        return lambda: f"{name}({base()}, {n})"
