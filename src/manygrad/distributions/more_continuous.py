"""More continuous distributions with PyTorch's interface: ``Cauchy`` (reparameterized
through its inverse CDF) and the exponential families ``Gamma``, ``Chi2``, ``Beta``
(reparameterized through the generator's gamma draws with implicit gradients, as
PyTorch's). The families built as transformed distributions (``LogNormal``, ``Gumbel``,
``Pareto``...) are in ``transformed_continuous``.

Example:
    >>> d = Gamma(alpha, beta); x = d.rsample(); lp = d.log_prob(x)
"""

from __future__ import annotations

import math

from .. import ops as F
from ..tensor import Tensor
from . import constraints
from .continuous import _noise
from .distribution import Distribution, ExponentialFamily, as_float, broadcast_all

_EULER = 0.57721566490153286061


def _full_like(t: Tensor, value: float) -> Tensor:
    from ..creation import full_like

    return full_like(t, value)


def _uniform(shape, like: Tensor) -> Tensor:
    """Samples in the open interval (0, 1), so that logs and tangents stay finite."""
    u = _noise("uniform", shape, like)
    tiny = 1e-7 if like.dtype.itemsize <= 4 else 1e-15
    return u.clamp(tiny, 1 - tiny)


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
        if self._validate_args:
            self._validate_sample(value)
        z = (as_float(value, self.loc) - self.loc) / self.scale
        return -math.log(math.pi) - self.scale.log() - (z * z).log1p()

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (as_float(value, self.loc) - self.loc) / self.scale
        return z.atan() / math.pi + 0.5

    def icdf(self, value):
        return self.loc + self.scale * ((as_float(value, self.loc) - 0.5) * math.pi).tan()

    def entropy(self):
        return math.log(4 * math.pi) + self.scale.log()


class Gamma(ExponentialFamily):
    """Gamma with shape ``concentration`` and inverse scale ``rate``; ``rsample`` is
    reparameterized (implicit gradients to the concentration)."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True
    _mean_carrier_measure = 0

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
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.rate)
        a, b = self.concentration, self.rate
        # NOTE: xlogy: density 1 at value 0 for concentration 1 (0 * log 0 counts as 0)
        return F.xlogy(a, b) + F.xlogy(a - 1, value) - b * value - a.lgamma()

    def cdf(self, value):
        from ..special import gammainc

        if self._validate_args:
            self._validate_sample(value)
        return gammainc(self.concentration, self.rate * as_float(value, self.rate))

    def entropy(self):
        a = self.concentration
        return a - self.rate.log() + a.lgamma() + (1 - a) * a.digamma()

    @property
    def _natural_params(self) -> tuple:
        return (self.concentration - 1, -self.rate)

    def _log_normalizer(self, x, y):
        return (x + 1).lgamma() + (x + 1) * (-y.reciprocal()).log()


class Chi2(Gamma):
    """Chi-squared with ``df`` degrees of freedom: ``Gamma(df / 2, 1 / 2)``."""

    arg_constraints = {"df": constraints.positive}

    def __init__(self, df, validate_args=None):
        (df,) = broadcast_all(df)
        super().__init__(0.5 * df, _full_like(df, 0.5), validate_args)

    @property
    def df(self):
        return self.concentration * 2


class Beta(ExponentialFamily):
    """Beta on (0, 1) with ``concentration1`` (alpha) and ``concentration0`` (beta);
    ``rsample`` is ``x / (x + y)`` of two reparameterized gamma draws."""

    arg_constraints = {
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
    }
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        from .t_dirichlet import Dirichlet

        # NOTE: built on a Dirichlet of (alpha, beta) pairs, as PyTorch's, whose checks
        # (and their messages) come first
        c1, c0 = broadcast_all(concentration1, concentration0)
        self._dirichlet = Dirichlet(F.stack([c1, c0], -1), validate_args=validate_args)
        super().__init__(self._dirichlet._batch_shape, (), validate_args)

    @property
    def concentration1(self) -> Tensor:
        return self._dirichlet.concentration[..., 0]

    @property
    def concentration0(self) -> Tensor:
        return self._dirichlet.concentration[..., 1]

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
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.concentration1)
        a, b = self.concentration1, self.concentration0
        norm = a.lgamma() + b.lgamma() - (a + b).lgamma()
        return F.xlogy(a - 1, value) + F.xlogy(b - 1, 1 - value) - norm

    def entropy(self):
        a, b = self.concentration1, self.concentration0
        s = a + b
        norm = a.lgamma() + b.lgamma() - s.lgamma()
        return norm - (a - 1) * a.digamma() - (b - 1) * b.digamma() + (s - 2) * s.digamma()

    # NOTE: no _mean_carrier_measure (as PyTorch's): entropy() has its own closed form

    @property
    def _natural_params(self) -> tuple:
        return (self.concentration1, self.concentration0)

    def _log_normalizer(self, x, y):
        return x.lgamma() + y.lgamma() - (x + y).lgamma()


__all__ = ["Cauchy", "Gamma", "Chi2", "Beta"]
