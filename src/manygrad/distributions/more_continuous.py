"""More continuous distributions with PyTorch's interface: ``LogNormal``, ``Gumbel``,
``HalfNormal``, ``Cauchy``, ``HalfCauchy``, ``Weibull``, ``Pareto`` (reparameterized
samples through their inverse CDFs) and ``Gamma``, ``Chi2``, ``Beta`` (reparameterized
through the generator's gamma draws with implicit gradients, as PyTorch's).

Example:
    >>> d = LogNormal(mu, sigma); x = d.rsample(); lp = d.log_prob(x)
"""

from __future__ import annotations

import math

from .. import ops as F
from ..tensor import Tensor
from . import constraints
from .continuous import Normal, _noise
from .distribution import Distribution, as_float, broadcast_all

_EULER = 0.57721566490153286061


def _full_like(t: Tensor, value: float) -> Tensor:
    from ..creation import full_like

    return full_like(t, value)


def _uniform(shape, like: Tensor) -> Tensor:
    """Samples in the open interval (0, 1), so that logs and tangents stay finite."""
    u = _noise("uniform", shape, like)
    tiny = 1e-7 if like.dtype.itemsize <= 4 else 1e-15
    return u.clamp(tiny, 1 - tiny)


class LogNormal(Distribution):
    """``exp(X)`` for ``X ~ Normal(loc, scale)``."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.base_dist = Normal(loc, scale, validate_args)
        self.loc, self.scale = self.base_dist.loc, self.base_dist.scale
        super().__init__(self.loc.shape, (), validate_args)

    @property
    def mean(self):
        return (self.loc + self.scale**2 / 2).exp()

    @property
    def mode(self):
        return (self.loc - self.scale**2).exp()

    @property
    def variance(self):
        s2 = self.scale**2
        return s2.expm1() * (2 * self.loc + s2).exp()

    def rsample(self, sample_shape=()):
        return self.base_dist.rsample(sample_shape).exp()

    def log_prob(self, value):
        value = as_float(value, self.loc)
        return self.base_dist.log_prob(value.log()) - value.log()

    def cdf(self, value):
        return self.base_dist.cdf(as_float(value, self.loc).log())

    def icdf(self, value):
        return self.base_dist.icdf(value).exp()

    def entropy(self):
        return self.base_dist.entropy() + self.loc


class Gumbel(Distribution):
    """The Gumbel (type-I extreme value) distribution."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, (), validate_args)

    @property
    def mean(self):
        return self.loc + self.scale * _EULER

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        return (math.pi**2 / 6) * self.scale**2

    def rsample(self, sample_shape=()):
        u = _uniform(self._extended_shape(sample_shape), self.loc)
        return self.loc - self.scale * (-u.log()).log()

    def log_prob(self, value):
        z = (as_float(value, self.loc) - self.loc) / self.scale
        return -(z + (-z).exp()) - self.scale.log()

    def cdf(self, value):
        z = (as_float(value, self.loc) - self.loc) / self.scale
        return (-(-z).exp()).exp()

    def icdf(self, value):
        return self.loc - self.scale * (-as_float(value, self.loc).log()).log()

    def entropy(self):
        return self.scale.log() + 1 + _EULER


class Cauchy(Distribution):
    """The Cauchy (Lorentz) distribution: no mean or variance (NaN and inf, as PyTorch)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, (), validate_args)

    @property
    def mean(self):
        return _full_like(self.loc, math.nan)

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        return _full_like(self.loc, math.inf)

    def rsample(self, sample_shape=()):
        u = _uniform(self._extended_shape(sample_shape), self.loc)
        return self.loc + self.scale * ((u - 0.5) * math.pi).tan()

    def log_prob(self, value):
        z = (as_float(value, self.loc) - self.loc) / self.scale
        return -math.log(math.pi) - self.scale.log() - (z * z).log1p()

    def cdf(self, value):
        z = (as_float(value, self.loc) - self.loc) / self.scale
        return z.atan() / math.pi + 0.5

    def icdf(self, value):
        return self.loc + self.scale * ((as_float(value, self.loc) - 0.5) * math.pi).tan()

    def entropy(self):
        return math.log(4 * math.pi) + self.scale.log()


class HalfNormal(Distribution):
    """``|X|`` for ``X ~ Normal(0, scale)``."""

    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, scale, validate_args=None):
        (self.scale,) = broadcast_all(scale)
        self.base_dist = Normal(0.0 * self.scale, self.scale)
        super().__init__(self.scale.shape, (), validate_args)

    @property
    def mean(self):
        return self.scale * math.sqrt(2 / math.pi)

    @property
    def mode(self):
        return _full_like(self.scale.detach(), 0.0)

    @property
    def variance(self):
        return self.scale**2 * (1 - 2 / math.pi)

    def rsample(self, sample_shape=()):
        return self.base_dist.rsample(sample_shape).abs()

    def log_prob(self, value):
        value = as_float(value, self.scale)
        lp = self.base_dist.log_prob(value) + math.log(2)
        return F.where(value >= 0, lp, -math.inf)

    def cdf(self, value):
        return 2 * self.base_dist.cdf(as_float(value, self.scale)) - 1

    def icdf(self, value):
        return self.base_dist.icdf((as_float(value, self.scale) + 1) / 2)

    def entropy(self):
        return self.base_dist.entropy() - math.log(2)


class HalfCauchy(Distribution):
    """``|X|`` for ``X ~ Cauchy(0, scale)``."""

    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, scale, validate_args=None):
        (self.scale,) = broadcast_all(scale)
        self.base_dist = Cauchy(0.0 * self.scale, self.scale)
        super().__init__(self.scale.shape, (), validate_args)

    @property
    def mean(self):
        return _full_like(self.scale, math.inf)

    @property
    def mode(self):
        return _full_like(self.scale.detach(), 0.0)

    @property
    def variance(self):
        return _full_like(self.scale, math.inf)

    def rsample(self, sample_shape=()):
        return self.base_dist.rsample(sample_shape).abs()

    def log_prob(self, value):
        value = as_float(value, self.scale)
        return F.where(value >= 0, self.base_dist.log_prob(value) + math.log(2), -math.inf)

    def cdf(self, value):
        return 2 * self.base_dist.cdf(as_float(value, self.scale)) - 1

    def icdf(self, value):
        return self.base_dist.icdf((as_float(value, self.scale) + 1) / 2)

    def entropy(self):
        return self.base_dist.entropy() - math.log(2)


class Weibull(Distribution):
    """Weibull with ``scale`` and shape ``concentration``."""

    arg_constraints = {"scale": constraints.positive, "concentration": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, scale, concentration, validate_args=None):
        self.scale, self.concentration = broadcast_all(scale, concentration)
        super().__init__(self.scale.shape, (), validate_args)

    @property
    def mean(self):
        return self.scale * (1 + 1 / self.concentration).lgamma().exp()

    @property
    def mode(self):
        k = self.concentration
        return self.scale * ((k - 1) / k) ** (1 / k)

    @property
    def variance(self):
        g2 = (1 + 2 / self.concentration).lgamma().exp()
        g1 = (1 + 1 / self.concentration).lgamma().exp()
        return self.scale**2 * (g2 - g1**2)

    def rsample(self, sample_shape=()):
        u = _uniform(self._extended_shape(sample_shape), self.scale)
        return self.scale * (-(-u).log1p()) ** (1 / self.concentration)

    def log_prob(self, value):
        z = as_float(value, self.scale) / self.scale
        k = self.concentration
        return k.log() - self.scale.log() + (k - 1) * z.log() - z**k

    def cdf(self, value):
        return 1 - (-((as_float(value, self.scale) / self.scale) ** self.concentration)).exp()

    def icdf(self, value):
        return self.scale * (-(-as_float(value, self.scale)).log1p()) ** (1 / self.concentration)

    def entropy(self):
        k = self.concentration
        return _EULER * (1 - 1 / k) + (self.scale / k).log() + 1


class Pareto(Distribution):
    """Pareto (type I) with minimum ``scale`` and tail index ``alpha``."""

    arg_constraints = {"alpha": constraints.positive, "scale": constraints.positive}
    has_rsample = True

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.greater_than_eq(self.scale)

    def __init__(self, scale, alpha, validate_args=None):
        self.scale, self.alpha = broadcast_all(scale, alpha)
        super().__init__(self.scale.shape, (), validate_args)

    # NOTE: the clamp makes alpha <= 1 (mean) and alpha <= 2 (variance) divide by zero,
    # giving inf there, with PyTorch's gradients (inf to the scale, 0 to alpha)

    @property
    def mean(self):
        a = self.alpha.clamp(min=1)
        return a * self.scale / (a - 1)

    @property
    def mode(self):
        return self.scale

    @property
    def variance(self):
        a = self.alpha.clamp(min=2)
        return self.scale**2 * a / ((a - 1) ** 2 * (a - 2))

    def rsample(self, sample_shape=()):
        u = _uniform(self._extended_shape(sample_shape), self.scale)
        return self.scale * (-u.log() / self.alpha).exp()

    def log_prob(self, value):
        value = as_float(value, self.scale)
        lp = self.alpha.log() + self.alpha * self.scale.log() - (self.alpha + 1) * value.log()
        return F.where(value >= self.scale, lp, -math.inf)

    def cdf(self, value):
        return 1 - (self.scale / as_float(value, self.scale)) ** self.alpha

    def icdf(self, value):
        return self.scale * (-(-as_float(value, self.scale)).log1p() / self.alpha).exp()

    def entropy(self):
        return (self.scale / self.alpha).log() + 1 / self.alpha + 1


class Gamma(Distribution):
    """Gamma with shape ``concentration`` and inverse scale ``rate``; ``rsample`` is
    reparameterized (implicit gradients to the concentration)."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = broadcast_all(concentration, rate)
        super().__init__(self.concentration.shape, (), validate_args)

    @property
    def mean(self):
        return self.concentration / self.rate

    @property
    def mode(self):
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self):
        return self.concentration / self.rate**2

    def rsample(self, sample_shape=()):
        from ._draws import gamma_rsample

        shape = self._extended_shape(sample_shape)
        return gamma_rsample(self.concentration.expand(*shape)) / self.rate

    def log_prob(self, value):
        value = as_float(value, self.rate)
        a, b = self.concentration, self.rate
        # NOTE: xlogy: density 1 at value 0 for concentration 1 (0 * log 0 counts as 0)
        return F.xlogy(a, b) + F.xlogy(a - 1, value) - b * value - a.lgamma()

    def cdf(self, value):
        from ..special import gammainc

        return gammainc(self.concentration, self.rate * as_float(value, self.rate))

    def entropy(self):
        a = self.concentration
        return a - self.rate.log() + a.lgamma() + (1 - a) * a.digamma()


class Chi2(Gamma):
    """Chi-squared with ``df`` degrees of freedom: ``Gamma(df / 2, 1 / 2)``."""

    arg_constraints = {"df": constraints.positive}

    def __init__(self, df, validate_args=None):
        (df,) = broadcast_all(df)
        super().__init__(0.5 * df, _full_like(df, 0.5), validate_args)

    @property
    def df(self):
        return self.concentration * 2


class Beta(Distribution):
    """Beta on (0, 1) with ``concentration1`` (alpha) and ``concentration0`` (beta);
    ``rsample`` is ``x / (x + y)`` of two reparameterized gamma draws."""

    arg_constraints = {
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
    }
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        super().__init__(self.concentration1.shape, (), validate_args)

    @property
    def mean(self):
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self):
        from .t_dirichlet import _dirichlet_mode

        c = F.stack([self.concentration1, self.concentration0], -1)
        return _dirichlet_mode(c)[..., 0]

    @property
    def variance(self):
        a, b = self.concentration1, self.concentration0
        s = a + b
        return a * b / (s**2 * (s + 1))

    def rsample(self, sample_shape=()):
        from ._draws import gamma_rsample

        shape = self._extended_shape(sample_shape)
        x = gamma_rsample(self.concentration1.expand(*shape))
        y = gamma_rsample(self.concentration0.expand(*shape))
        tiny = 1e-37 if x.dtype.itemsize == 4 else 1e-300
        return x / (x + y).clamp(min=tiny)

    def log_prob(self, value):
        value = as_float(value, self.concentration1)
        a, b = self.concentration1, self.concentration0
        norm = a.lgamma() + b.lgamma() - (a + b).lgamma()
        return F.xlogy(a - 1, value) + F.xlogy(b - 1, 1 - value) - norm

    def entropy(self):
        a, b = self.concentration1, self.concentration0
        s = a + b
        norm = a.lgamma() + b.lgamma() - s.lgamma()
        return norm - (a - 1) * a.digamma() - (b - 1) * b.digamma() + (s - 2) * s.digamma()


__all__ = [
    "LogNormal", "Gumbel", "Cauchy", "HalfNormal", "HalfCauchy", "Weibull", "Pareto", "Gamma",
    "Chi2", "Beta",
]  # fmt: skip
