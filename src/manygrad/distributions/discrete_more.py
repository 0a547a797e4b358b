"""``Poisson`` and ``Geometric`` with PyTorch's interface (samples carry no gradient).

Example:
    >>> Poisson(rate).log_prob(counts)          # differentiable in rate
"""

from __future__ import annotations

from .. import backend
from .. import ops as F
from ..autograd import no_grad
from ..tensor import Tensor
from . import constraints
from .discrete import Bernoulli
from .distribution import Distribution, as_float, broadcast_all


class Poisson(Distribution):
    """Counts of events at ``rate`` per interval."""

    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer

    def __init__(self, rate, validate_args=None):
        (self.rate,) = broadcast_all(rate)
        super().__init__(self.rate.shape, (), validate_args)

    @property
    def mean(self):
        return self.rate

    @property
    def mode(self):
        return self.rate.floor()

    @property
    def variance(self):
        return self.rate

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        with no_grad(), backend.device_scope(self.rate.device):
            lam = self.rate.expand(*shape).contiguous()._data
            counts = backend.generator(self.rate.device).poisson(lam)
        return Tensor._wrap(counts, self.rate.device)

    def log_prob(self, value):
        k = as_float(value, self.rate)
        return F.xlogy(k, self.rate) - self.rate - (k + 1).lgamma()


class Geometric(Bernoulli):
    """The number of failures before the first success of Bernoulli(``probs``) trials."""

    support = constraints.nonnegative_integer
    has_enumerate_support = False

    @property
    def mean(self):
        return 1.0 / self.probs - 1.0

    @property
    def mode(self):
        from ..creation import zeros_like

        return zeros_like(self.probs.detach())

    @property
    def variance(self):
        return (1.0 / self.probs - 1.0) / self.probs

    def sample(self, sample_shape=()):
        from .more_continuous import _uniform

        with no_grad():
            p = self.probs
            u = _uniform(self._extended_shape(sample_shape), p)
            return (u.log() / (-p).log1p()).floor()

    def log_prob(self, value):
        value = as_float(value, self.probs)
        p = self.probs
        # NOTE: 0 * log(0) is 0 at p = 1, value = 0
        return F.where((p == 1) & (value == 0), 0.0, value * (-p).log1p()) + p.log()

    def entropy(self):
        return F.binary_cross_entropy_with_logits(self.logits, self.probs,
                                                  reduction="none") / self.probs  # fmt: skip

    def enumerate_support(self, expand: bool = True):
        raise NotImplementedError("Geometric: the support is infinite")


__all__ = ["Poisson", "Geometric"]
