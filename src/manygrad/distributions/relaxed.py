"""The Concrete / Gumbel-softmax relaxations (Maddison et al., 2017; Jang et al., 2017):
``RelaxedBernoulli``, ``LogitRelaxedBernoulli``, ``RelaxedOneHotCategorical`` and
``ExpRelaxedCategorical``, reparameterized."""

from __future__ import annotations

from .. import creation as C
from .. import ops as F
from . import constraints
from ._draws import BinaryProbsLogits, _clamp_probs
from .discrete import Categorical, _probs_and_logits
from .distribution import Distribution, as_float, broadcast_all
from .transformed_distribution import TransformedDistribution
from .transforms import ExpTransform, SigmoidTransform

# ---------------------------------------------------------------------------- relaxed


class _RelaxedParams:
    """``temperature``, ``logits`` and ``probs`` of a relaxed family, from its base."""

    @property
    def temperature(self):
        return self.base_dist.temperature

    @property
    def logits(self):
        return self.base_dist.logits

    @property
    def probs(self):
        return self.base_dist.probs


class LogitRelaxedBernoulli(BinaryProbsLogits, Distribution):
    """The logit of a ``RelaxedBernoulli`` sample (Maddison et al., 2017)."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.real
    has_rsample = False  # NOTE: as PyTorch's flag, though rsample() is reparameterized

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        probs, logits = _probs_and_logits(probs, logits, "LogitRelaxedBernoulli")
        self._probs = as_float(probs) if probs is not None else None
        self._logits = as_float(logits) if logits is not None else None
        param = self._probs if self._probs is not None else self._logits
        self.temperature = as_float(temperature, param)
        super().__init__(param.shape, (), validate_args)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        probs = _clamp_probs(self.probs.expand(*shape))
        u = _clamp_probs(C.rand(*shape, dtype=probs.dtype, device=probs.device))
        return (u.log() - (-u).log1p() + probs.log() - (-probs).log1p()) / self.temperature

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        diff = logits - value * self.temperature
        return self.temperature.log() + diff - 2 * diff.exp().log1p()


class RelaxedBernoulli(_RelaxedParams, TransformedDistribution):
    """A continuous relaxation of ``Bernoulli`` on (0, 1) (reparameterized): the sigmoid of
    a ``LogitRelaxedBernoulli`` sample. Lower ``temperature``: closer to 0/1."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        # NOTE: the base checks by the default setting, not validate_args (PyTorch's)
        base = LogitRelaxedBernoulli(temperature, probs, logits)
        super().__init__(base, SigmoidTransform(), validate_args)


class ExpRelaxedCategorical(Distribution):
    """The log of a ``RelaxedOneHotCategorical`` sample (a point on the log-simplex)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        self._categorical = Categorical(probs, logits)  # NOTE: checks by the default setting
        self.temperature = as_float(temperature, self._categorical.logits)
        batch_shape = tuple(self._categorical.batch_shape)
        event_shape = tuple(self._categorical.param_shape[-1:])
        super().__init__(batch_shape, event_shape, validate_args)

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def probs(self):
        return self._categorical.probs

    @property
    def param_shape(self):
        return self._categorical.param_shape

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        logits = self.logits
        u = _clamp_probs(C.rand(*shape, dtype=logits.dtype, device=logits.device))
        gumbels = -((-(u.log())).log())
        scores = (logits + gumbels) / self.temperature
        return scores - F.logsumexp(scores, -1, keepdim=True)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        k = self._categorical._num_events
        t = self.temperature
        log_scale = C.full_like(t, float(k)).lgamma() - t.log() * (-(k - 1))
        score = self.logits - value * t
        score = (score - F.logsumexp(score, -1, keepdim=True)).sum(-1)
        return score + log_scale


class RelaxedOneHotCategorical(_RelaxedParams, TransformedDistribution):
    """The Gumbel-softmax / Concrete relaxation of ``OneHotCategorical`` on the simplex
    (reparameterized; Jang et al., 2017; Maddison et al., 2017)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        base = ExpRelaxedCategorical(temperature, probs, logits, validate_args)
        super().__init__(base, ExpTransform(), validate_args)
