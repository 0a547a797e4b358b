"""``FisherSnedecor``, ``GeneralizedPareto``, ``InverseGamma``, ``LogisticNormal`` and
``OneHotCategoricalStraightThrough``; ``FisherSnedecor`` and ``InverseGamma`` are
reparameterized through gamma draws with implicit gradients."""

from __future__ import annotations

import math

from .. import creation as C
from .. import ops as F
from . import constraints
from ._draws import gamma_rsample
from .continuous import Normal
from .discrete import OneHotCategorical
from .distribution import Distribution, as_float, broadcast_all
from .extra_families import _nan_where
from .more_continuous import Gamma
from .transformed_distribution import TransformedDistribution
from .transforms import PowerTransform, StickBreakingTransform


class FisherSnedecor(Distribution):
    """The F distribution with ``df1`` and ``df2`` degrees of freedom."""

    arg_constraints = {"df1": constraints.positive, "df2": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, df1, df2, validate_args=None):
        self.df1, self.df2 = broadcast_all(df1, df2)
        # NOTE: as PyTorch's, two Gammas that check df1 and df2 by the default setting
        self._gamma1 = Gamma(self.df1 * 0.5, self.df1)
        self._gamma2 = Gamma(self.df2 * 0.5, self.df2)
        super().__init__(self.df1.shape, (), validate_args)

    @property
    def mean(self):
        df2 = self.df2.clone()
        return _nan_where(df2 > 2, df2 / (df2 - 2))

    @property
    def mode(self):
        m = (self.df1 - 2) / self.df1 * self.df2 / (self.df2 + 2)
        return _nan_where(self.df1 > 2, m)

    @property
    def variance(self):
        df1, df2 = self.df1, self.df2
        v = 2 * df2**2 * (df1 + df2 - 2) / (df1 * (df2 - 2) ** 2 * (df2 - 4))
        return _nan_where(df2 > 4, v)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        x1 = gamma_rsample((0.5 * self.df1).expand(*shape)) / (0.5 * self.df1)
        x2 = gamma_rsample((0.5 * self.df2).expand(*shape)) / (0.5 * self.df2)
        tiny = 1e-37 if x2.dtype.itemsize == 4 else 1e-300
        return x1 / x2.clamp(min=tiny)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.df1)
        ct1, ct2 = self.df1 * 0.5, self.df2 * 0.5
        ct3 = self.df1 / self.df2
        t1 = (ct1 + ct2).lgamma() - ct1.lgamma() - ct2.lgamma()
        t2 = ct1 * ct3.log() + (ct1 - 1) * value.log()
        t3 = (ct1 + ct2) * (ct3 * value).log1p()
        return t1 + t2 - t3


class GeneralizedPareto(Distribution):
    """Excesses over a threshold: ``loc``, ``scale`` and shape ``concentration`` (xi)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive,
                       "concentration": constraints.real}  # fmt: skip
    has_rsample = True

    def __init__(self, loc, scale, concentration, validate_args=None):
        self.loc, self.scale, self.concentration = broadcast_all(loc, scale, concentration)
        super().__init__(self.loc.shape, (), validate_args)

    def _safe(self):
        c = self.concentration
        eq_zero = c.abs() <= 1e-8  # NOTE: isclose(c, 0) with PyTorch's default atol
        return eq_zero, F.where(eq_zero, C.ones_like(c), c)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        u = C.rand(*shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.icdf(u)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (as_float(value, self.loc) - self.loc) / self.scale
        eq_zero, safe = self._safe()
        y = 1 / safe + C.ones_like(z)
        nonzero = F.where(y == 0, y, y * (safe * z).log1p())
        return -self.scale.log() - F.where(eq_zero, z, nonzero)

    def log_survival_function(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (as_float(value, self.loc) - self.loc) / self.scale
        eq_zero, safe = self._safe()
        return F.where(eq_zero, -z, -(safe * z).log1p() / safe)

    def log_cdf(self, value):
        return (-self.log_survival_function(value).exp()).log1p()

    def cdf(self, value):
        return self.log_cdf(value).exp()

    def icdf(self, value):
        eq_zero, safe = self._safe()
        logu = (-as_float(value, self.loc)).log1p()
        nonzero = self.loc + self.scale / safe * (-safe * logu).expm1()
        return F.where(eq_zero, self.loc - self.scale * logu, nonzero)

    @property
    def mean(self):
        c = self.concentration
        valid = c < 1
        safe = F.where(valid, c, C.full_like(c, 0.5))
        return _nan_where(valid, self.loc + self.scale / (1 - safe))

    @property
    def variance(self):
        c = self.concentration
        valid = c < 0.5
        safe = F.where(valid, c, C.full_like(c, 0.25))
        return _nan_where(valid, self.scale**2 / ((1 - safe) ** 2 * (1 - 2 * safe)))

    @property
    def mode(self):
        return self.loc

    def entropy(self):
        return (self.scale.log() + self.concentration + 1).expand(*self._batch_shape)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        upper = F.where(self.concentration < 0, self.loc - self.scale / self.concentration,
                        C.full_like(self.loc, math.inf))  # fmt: skip
        return constraints.interval(self.loc, upper)


class InverseGamma(TransformedDistribution):
    """``1 / X`` for ``X ~ Gamma(concentration, rate)``."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.positive

    def __init__(self, concentration, rate, validate_args=None):
        base = Gamma(concentration, rate, validate_args=validate_args)
        neg_one = C.full((), -1.0, dtype=base.rate.dtype, device=base.rate.device)
        super().__init__(base, PowerTransform(neg_one), validate_args)

    @property
    def concentration(self):
        return self.base_dist.concentration

    @property
    def rate(self):
        return self.base_dist.rate

    @property
    def mean(self):
        c = self.concentration
        m = self.rate / (c - 1)
        return F.where(c > 1, m, C.full_like(m, math.inf))

    @property
    def mode(self):
        return self.rate / (self.concentration + 1)

    @property
    def variance(self):
        c = self.concentration
        v = self.rate**2 / ((c - 1) ** 2 * (c - 2))
        return F.where(c > 2, v, C.full_like(v, math.inf))

    def entropy(self):
        c = self.concentration
        return c + self.rate.log() + c.lgamma() - (1 + c) * c.digamma()


class LogisticNormal(TransformedDistribution):
    """The stick-breaking image of a ``Normal(loc, scale)`` vector on the simplex (one
    more coordinate than ``loc``)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        base = Normal(loc, scale, validate_args=validate_args)
        if not base.batch_shape:
            base = base.expand([1])
        super().__init__(base, StickBreakingTransform(), validate_args)

    @property
    def loc(self):
        return self.base_dist.base_dist.loc

    @property
    def scale(self):
        return self.base_dist.base_dist.scale


class OneHotCategoricalStraightThrough(OneHotCategorical):
    """``OneHotCategorical`` whose ``rsample`` passes gradients straight through to the
    probabilities (Bengio et al., 2013): the one-hot sample forward, ``probs``' gradient
    backward."""

    has_rsample = True

    def rsample(self, sample_shape=()):
        samples = self.sample(sample_shape)
        probs = self._categorical.probs
        return samples + (probs - probs.detach())
