"""``Binomial`` and ``Multinomial``: counts of Bernoulli and categorical trials, with
PyTorch's log-densities (differentiable in the probabilities) and samples."""

from __future__ import annotations

import math

from .. import creation as C
from .. import ops as F
from ..autograd import no_grad
from ..tensor import Size
from . import constraints
from ._draws import BinaryProbsLogits
from .discrete import Categorical
from .distribution import Distribution, as_float, broadcast_shape

# ---------------------------------------------------------------------------- counts


class Binomial(BinaryProbsLogits, Distribution):
    """Successes in ``total_count`` Bernoulli(``probs``) trials."""

    arg_constraints = {"total_count": constraints.nonnegative_integer,
                       "probs": constraints.unit_interval, "logits": constraints.real}  # fmt: skip
    has_enumerate_support = True

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        param = self._count_params(total_count, probs, logits, "Binomial")
        super().__init__(param.shape, (), validate_args)

    @property
    def param_shape(self) -> Size:
        """The shape of ``probs`` / ``logits`` (the batch shape)."""
        return self._batch_shape

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    @property
    def mean(self):
        return self.total_count * self.probs

    @property
    def mode(self):
        return ((self.total_count + 1) * self.probs).floor().clamp(max=self.total_count)

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        """Counts by summing Bernoulli trials (``max(total_count)`` of them)."""
        with no_grad():
            shape = self._extended_shape(sample_shape)
            n_max = int(self.total_count.max().item()) if self.total_count.numel() else 0
            p = self.probs.expand(*shape)
            n = self.total_count.expand(*shape)
            if n_max == 0:
                return C.zeros_like(p)
            u = C.rand(*shape, n_max, dtype=p.dtype, device=p.device)
            trial = C.arange(n_max, device=p.device).to(p.dtype)
            hits = (u < p.unsqueeze(-1)) & (trial < n.unsqueeze(-1))
            return hits.to(p.dtype).sum(-1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.logits)
        n, logits = self.total_count, self.logits
        log_factorial_n = (n + 1).lgamma()
        log_factorial_k = (value + 1).lgamma()
        log_factorial_nmk = (n - value + 1).lgamma()
        clamp_by_zero = (logits.clamp(min=0) + logits - logits.clamp(max=0)) / 2
        normalize = n * clamp_by_zero + n * (-logits.abs()).exp().log1p() - log_factorial_n
        return value * logits - log_factorial_k - log_factorial_nmk - normalize

    def entropy(self):
        total = int(self.total_count.max().item())
        if not bool((self.total_count == total).all()):
            raise NotImplementedError("Inhomogeneous total count not supported by `entropy`.")
        values = self.enumerate_support(False)
        log_prob = self.log_prob(values)
        return -(log_prob.exp() * log_prob).sum(0)

    def enumerate_support(self, expand: bool = True):
        total = int(self.total_count.max().item())
        if not bool((self.total_count == total).all()):
            raise NotImplementedError(
                "Inhomogeneous total count not supported by `enumerate_support`."
            )
        nb = len(self.batch_shape)
        values = C.arange(1 + total, dtype=self.probs.dtype, device=self.probs.device)
        values = values.reshape(-1, *([1] * nb))
        if expand:
            values = values.expand(-1, *self.batch_shape)
        return values


class Multinomial(Distribution):
    """Counts of ``total_count`` draws from a ``Categorical(probs / logits)``."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}

    def __init__(self, total_count: int = 1, probs=None, logits=None, validate_args=None):
        if not isinstance(total_count, int):
            raise NotImplementedError("inhomogeneous total_count is not supported")
        self.total_count = total_count
        # NOTE: as PyTorch's, the inner distributions check by the default setting, not by
        # validate_args, and the Binomial checks total_count (and the normalised probs)
        self._categorical = Categorical(probs=probs, logits=logits)
        self._binomial = Binomial(total_count=total_count, probs=self.probs)
        batch_shape = tuple(self._categorical.batch_shape)
        event_shape = tuple(self._categorical.param_shape[-1:])
        super().__init__(batch_shape, event_shape, validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.multinomial(self.total_count)

    @property
    def probs(self):
        return self._categorical.probs

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def param_shape(self):
        return self._categorical.param_shape

    @property
    def mean(self):
        return self.probs * self.total_count

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        with no_grad():
            shape = Size(sample_shape)
            samples = self._categorical.sample(Size((self.total_count,)) + shape)
            k = self._event_shape[-1]
            counts = F.one_hot(samples, k).to(self.probs.dtype).sum(0)
            return counts

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.logits)
        shape = broadcast_shape(tuple(self.logits.shape), tuple(value.shape))
        logits = self.logits.expand(*shape)
        value = value.expand(*shape)
        log_factorial_n = (value.sum(-1) + 1).lgamma()
        log_factorial_xs = (value + 1).lgamma().sum(-1)
        # NOTE: 0 * log(0) counts as 0: a category of probability 0 that was not drawn
        safe = F.where((value == 0) & (logits == -math.inf), C.zeros_like(logits), logits)
        log_powers = (safe * value).sum(-1)
        return log_factorial_n - log_factorial_xs + log_powers

    def entropy(self):
        """``n H(Categorical) - log n! + Σ_k E[log x_k!]``, the last term from each count's
        binomial marginal."""
        n = self.total_count
        term1 = n * self._categorical.entropy() - math.lgamma(n + 1)
        binomial = self._binomial
        support = binomial.enumerate_support(expand=False)[1:]
        term2 = (binomial.log_prob(support).exp() * (support + 1).lgamma()).sum((0, -1))
        return term1 + term2
