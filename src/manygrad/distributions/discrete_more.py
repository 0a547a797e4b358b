"""``Poisson`` and ``Geometric`` with PyTorch's interface (samples carry no gradient).

Example:
    >>> Poisson(rate).log_prob(counts)          # differentiable in rate
"""

from __future__ import annotations

from .. import backend
from .. import creation as C
from .. import ops as F
from ..autograd import no_grad
from ..tensor import Tensor
from . import constraints
from ._checks import submit
from ._draws import BinaryProbsLogits
from .distribution import Distribution, ExponentialFamily, as_float, broadcast_all


class Poisson(ExponentialFamily):
    """Counts of events at ``rate`` per interval (no closed-form entropy: ``entropy()``
    raises ``NotImplementedError``, as PyTorch's)."""

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
        if self._validate_args:
            self._validate_sample(value)
        k = as_float(value, self.rate)
        return F.xlogy(k, self.rate) - self.rate - (k + 1).lgamma()

    @property
    def _natural_params(self) -> tuple:
        return (self.rate.log(),)

    def _log_normalizer(self, x):
        return x.exp()


class Geometric(BinaryProbsLogits, Distribution):
    """The number of failures before the first success of Bernoulli(``probs``) trials
    (``probs`` in (0, 1], or ``logits``)."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, probs=None, logits=None, validate_args=None):
        param = self._binary_params(probs, logits, "Geometric")
        super().__init__(param.shape, (), validate_args)
        if self._validate_args and probs is not None:
            # NOTE: probs 0 (no success ever) is outside too, checked beyond unit_interval
            value, shown = self._probs, self._repr_later()

            def error():
                return ValueError(
                    f"Expected parameter probs ({type(value).__name__} of shape "
                    f"{tuple(value.shape)}) of distribution {shown()} to be positive but found "
                    f"invalid values:\n{value.detach()[~(value > 0)]}"
                )

            submit([(value > 0, error)])

    @property
    def mean(self):
        return 1.0 / self.probs - 1.0

    @property
    def mode(self):
        return C.zeros_like(self.probs.detach())

    @property
    def variance(self):
        return (1.0 / self.probs - 1.0) / self.probs

    def sample(self, sample_shape=()):
        with no_grad():
            p = self.probs
            u = C.rand(*self._extended_shape(sample_shape), dtype=p.dtype, device=p.device)
            u = u.clamp(min=_tiny(p))  # NOTE: u in [tiny, 1), as PyTorch's uniform_(tiny, 1)
            return (u.log() / (-p).log1p()).floor()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.probs)
        p = self.probs
        # NOTE: 0 * log(0) is 0 at p = 1, value = 0
        return F.where((p == 1) & (value == 0), 0.0, value * (-p).log1p()) + p.log()

    def entropy(self):
        return F.binary_cross_entropy_with_logits(self.logits, self.probs,
                                                  reduction="none") / self.probs  # fmt: skip


def _tiny(t: Tensor) -> float:
    from ..compat.torch_api import finfo

    return float(finfo(t.dtype).tiny)


__all__ = ["Poisson", "Geometric"]
