"""Continuous families built as ``TransformedDistribution``s, as PyTorch's: ``LogNormal``
(``exp`` of a ``Normal``), ``HalfNormal`` and ``HalfCauchy`` (``|x|`` of a centred
``Normal`` / ``Cauchy``), ``Gumbel`` (``loc - scale * log(-log(U))``), ``Pareto``
(``scale * exp(E)``) and ``Weibull`` (``scale * E^(1/k)``) for ``U`` uniform and ``E``
exponential. Each has ``base_dist`` and ``transforms``; ``rsample`` (and, where the family
does not give its own, ``log_prob``, ``cdf`` and ``icdf``) go through them.

Example:
    >>> d = LogNormal(mu, sigma); x = d.rsample(); lp = d.log_prob(x)
    >>> d.base_dist, d.transforms   # Normal(mu, sigma), [ExpTransform()]
"""

from __future__ import annotations

import math

from .. import creation as C
from .. import ops as F
from . import constraints
from .continuous import Exponential, Normal, Uniform
from .distribution import as_float, broadcast_all
from .more_continuous import _EULER, Cauchy
from .transformed_distribution import TransformedDistribution
from .transforms import AbsTransform, AffineTransform, ExpTransform, PowerTransform, _finfo

__all__ = ["LogNormal", "Gumbel", "HalfNormal", "HalfCauchy", "Weibull", "Pareto"]


class LogNormal(TransformedDistribution):
    """``exp(X)`` for ``X ~ Normal(loc, scale)``."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        base = Normal(loc, scale, validate_args=validate_args)
        super().__init__(base, ExpTransform(), validate_args=validate_args)

    @property
    def loc(self):
        return self.base_dist.loc

    @property
    def scale(self):
        return self.base_dist.scale

    @property
    def mean(self):
        return (self.loc + self.scale.pow(2) / 2).exp()

    @property
    def mode(self):
        return (self.loc - self.scale.square()).exp()

    @property
    def variance(self):
        scale_sq = self.scale.pow(2)
        return scale_sq.expm1() * (2 * self.loc + scale_sq).exp()

    def entropy(self):
        return self.base_dist.entropy() + self.loc


class Gumbel(TransformedDistribution):
    """The Gumbel (type-I extreme value) distribution: ``Uniform(tiny, 1 - eps)`` through
    ``log``, negation, ``log`` and ``loc - scale * x``."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        fi = _finfo(self.loc)
        base = Uniform(C.full_like(self.loc.detach(), float(fi.tiny)),
                       C.full_like(self.loc.detach(), 1 - float(fi.eps)),
                       validate_args=validate_args)  # fmt: skip
        transforms = [
            ExpTransform().inv,
            AffineTransform(loc=0, scale=-C.ones_like(self.scale.detach())),
            ExpTransform().inv,
            AffineTransform(loc=loc, scale=-self.scale),
        ]
        super().__init__(base, transforms, validate_args=validate_args)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        y = (self.loc - as_float(value, self.loc)) / self.scale
        return (y - y.exp()) - self.scale.log()

    @property
    def mean(self):
        return self.loc + self.scale * _EULER

    @property
    def mode(self):
        return self.loc

    @property
    def stddev(self):
        return (math.pi / math.sqrt(6)) * self.scale

    @property
    def variance(self):
        return self.stddev.pow(2)

    def entropy(self):
        return self.scale.log() + (1 + _EULER)


class HalfNormal(TransformedDistribution):
    """``|X|`` for ``X ~ Normal(0, scale)``."""

    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, scale, validate_args=None):
        base = Normal(0.0, scale, validate_args=False)
        super().__init__(base, AbsTransform(), validate_args=validate_args)

    @property
    def scale(self):
        return self.base_dist.scale

    @property
    def mean(self):
        return self.scale * math.sqrt(2 / math.pi)

    @property
    def mode(self):
        return C.zeros_like(self.scale.detach())

    @property
    def variance(self):
        return self.scale.pow(2) * (1 - 2 / math.pi)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.scale)
        lp = self.base_dist.log_prob(value) + math.log(2)
        return F.where(value >= 0, lp, -math.inf)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 2 * self.base_dist.cdf(value) - 1

    def icdf(self, value):
        return self.base_dist.icdf((as_float(value, self.scale) + 1) / 2)

    def entropy(self):
        return self.base_dist.entropy() - math.log(2)


class HalfCauchy(TransformedDistribution):
    """``|X|`` for ``X ~ Cauchy(0, scale)``."""

    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, scale, validate_args=None):
        base = Cauchy(0.0, scale, validate_args=False)
        super().__init__(base, AbsTransform(), validate_args=validate_args)

    @property
    def scale(self):
        return self.base_dist.scale

    @property
    def mean(self):
        s = self.scale
        return C.full(self._extended_shape(), math.inf, dtype=s.dtype, device=s.device)

    @property
    def mode(self):
        return C.zeros_like(self.scale.detach())

    @property
    def variance(self):
        return self.base_dist.variance

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.scale)
        return F.where(value >= 0, self.base_dist.log_prob(value) + math.log(2), -math.inf)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 2 * self.base_dist.cdf(value) - 1

    def icdf(self, value):
        return self.base_dist.icdf((as_float(value, self.scale) + 1) / 2)

    def entropy(self):
        return self.base_dist.entropy() - math.log(2)


class Weibull(TransformedDistribution):
    """Weibull with ``scale`` and shape ``concentration``: ``Exponential(1)`` through
    ``x^(1/concentration)`` and ``scale * x``."""

    arg_constraints = {"scale": constraints.positive, "concentration": constraints.positive}
    support = constraints.positive

    def __init__(self, scale, concentration, validate_args=None):
        self.scale, self.concentration = broadcast_all(scale, concentration)
        self.concentration_reciprocal = self.concentration.reciprocal()
        base = Exponential(C.ones_like(self.scale.detach()), validate_args=validate_args)
        super().__init__(base, self._weibull_transforms(), validate_args=validate_args)

    def _weibull_transforms(self) -> list:
        return [PowerTransform(exponent=self.concentration_reciprocal),
                AffineTransform(loc=0, scale=self.scale)]  # fmt: skip

    def expand(self, batch_shape, _instance=None):
        new = super().expand(batch_shape, _instance)
        # NOTE: the transforms are rebuilt from the expanded parameters, as PyTorch's
        new.concentration_reciprocal = new.concentration.reciprocal()
        new.transforms = new._weibull_transforms()
        return new

    @property
    def mean(self):
        return self.scale * (1 + self.concentration_reciprocal).lgamma().exp()

    @property
    def mode(self):
        k = self.concentration
        return self.scale * ((k - 1) / k) ** k.reciprocal()

    @property
    def variance(self):
        g2 = (1 + 2 * self.concentration_reciprocal).lgamma().exp()
        g1 = (2 * (1 + self.concentration_reciprocal).lgamma()).exp()
        return self.scale.pow(2) * (g2 - g1)

    def entropy(self):
        k_inv = self.concentration_reciprocal
        return _EULER * (1 - k_inv) + (self.scale * k_inv).log() + 1


class Pareto(TransformedDistribution):
    """Pareto (type I) with minimum ``scale`` and tail index ``alpha``:
    ``Exponential(alpha)`` through ``exp`` and ``scale * x``."""

    arg_constraints = {"alpha": constraints.positive, "scale": constraints.positive}

    def __init__(self, scale, alpha, validate_args=None):
        self.scale, self.alpha = broadcast_all(scale, alpha)
        base = Exponential(self.alpha, validate_args=validate_args)
        transforms = [ExpTransform(), AffineTransform(loc=0, scale=self.scale)]
        super().__init__(base, transforms, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.greater_than_eq(self.scale)

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
        return self.scale.pow(2) * a / ((a - 1).pow(2) * (a - 2))

    def entropy(self):
        return (self.scale / self.alpha).log() + (1 + self.alpha.reciprocal())
