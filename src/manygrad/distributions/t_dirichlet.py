"""``StudentT``, ``Dirichlet`` and ``Kumaraswamy``, all reparameterized (``StudentT`` and
``Dirichlet`` through gamma draws with implicit gradients)."""

from __future__ import annotations

import math

from .. import creation as C
from .. import dtypes as D
from .. import ops as F
from ..tensor import Tensor
from . import constraints
from ._draws import gamma_rsample
from .continuous import Uniform
from .distribution import Distribution, ExponentialFamily, as_float, broadcast_all
from .transformed_distribution import TransformedDistribution
from .transforms import AffineTransform, PowerTransform

# ---------------------------------------------------------------------------- continuous


class StudentT(Distribution):
    """Student's t with ``df`` degrees of freedom, location ``loc`` and scale ``scale``."""

    arg_constraints = {"df": constraints.positive, "loc": constraints.real,
                       "scale": constraints.positive}  # fmt: skip
    support = constraints.real
    has_rsample = True

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None):
        from .more_continuous import Chi2

        self.df, self.loc, self.scale = broadcast_all(df, loc, scale)
        self._chi2 = Chi2(self.df)  # NOTE: checks df by the default setting, as PyTorch's
        super().__init__(self.df.shape, (), validate_args)

    @property
    def mean(self):
        m = self.loc.clone()
        return F.where(self.df <= 1, C.full_like(m, math.nan), m)

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        df = self.df
        var = self.scale**2 * df / (df - 2)
        var = F.where(df <= 2, C.full_like(var, math.inf), var)
        return F.where(df <= 1, C.full_like(var, math.nan), var)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        df = self.df.expand(*shape)
        x = C.randn(*shape, dtype=df.dtype, device=df.device)
        z = gamma_rsample(0.5 * df) * 2  # chi-squared with df degrees of freedom
        return self.loc + self.scale * x * (z / df).rsqrt()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        y = (as_float(value, self.loc) - self.loc) / self.scale
        z = (self.scale.log() + 0.5 * self.df.log() + 0.5 * math.log(math.pi)
             + (0.5 * self.df).lgamma() - (0.5 * (self.df + 1.0)).lgamma())  # fmt: skip
        return -0.5 * (self.df + 1.0) * (y**2.0 / self.df).log1p() - z

    def entropy(self):
        lbeta = (0.5 * self.df).lgamma() + math.lgamma(0.5) - (0.5 * (self.df + 1)).lgamma()
        return (self.scale.log() + 0.5 * (self.df + 1)
                * ((0.5 * (self.df + 1)).digamma() - (0.5 * self.df).digamma())
                + 0.5 * self.df.log() + lbeta)  # fmt: skip


class Dirichlet(ExponentialFamily):
    """Points of the simplex with ``concentration`` (the last dim indexes categories)."""

    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration, validate_args=None):
        concentration = as_float(concentration)
        if concentration.ndim < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        shape = tuple(concentration.shape)
        super().__init__(shape[:-1], shape[-1:], validate_args)

    @property
    def mean(self):
        return self.concentration / self.concentration.sum(-1, keepdim=True)

    @property
    def mode(self):
        return _dirichlet_mode(self.concentration)

    @property
    def variance(self):
        c0 = self.concentration.sum(-1, keepdim=True)
        c = self.concentration
        return c * (c0 - c) / (c0.pow(2) * (c0 + 1))

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        g = gamma_rsample(self.concentration.expand(*shape))
        tiny = 1e-37 if g.dtype.itemsize == 4 else 1e-300
        g = g.clamp(min=tiny)
        return g / g.sum(-1, keepdim=True)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        c = self.concentration
        value = as_float(value, c)
        return F.xlogy(c - 1.0, value).sum(-1) + c.sum(-1).lgamma() - c.lgamma().sum(-1)

    def entropy(self):
        c = self.concentration
        k = c.shape[-1]
        a0 = c.sum(-1)
        return (c.lgamma().sum(-1) - a0.lgamma() - (k - a0) * a0.digamma()
                - ((c - 1.0) * c.digamma()).sum(-1))  # fmt: skip

    # NOTE: no _mean_carrier_measure (as PyTorch's): entropy() has its own closed form

    @property
    def _natural_params(self) -> tuple:
        return (self.concentration,)

    def _log_normalizer(self, x):
        return x.lgamma().sum(-1) - x.sum(-1).lgamma()


class Kumaraswamy(TransformedDistribution):
    """``(1 - (1 - U)^(1/b))^(1/a)``-shaped law on (0, 1) (``a = concentration1``,
    ``b = concentration0``), reparameterized through its inverse CDF."""

    arg_constraints = {"concentration1": constraints.positive,
                       "concentration0": constraints.positive}  # fmt: skip
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        c1 = self.concentration1
        base = Uniform(C.zeros_like(c1), C.ones_like(c1), validate_args=validate_args)
        transforms = [
            PowerTransform(exponent=self.concentration0.reciprocal()),
            AffineTransform(loc=1.0, scale=-1.0),
            PowerTransform(exponent=self.concentration1.reciprocal()),
        ]
        super().__init__(base, transforms, validate_args)

    @property
    def mean(self):
        return _moments(self.concentration1, self.concentration0, 1)

    @property
    def mode(self):
        log_mode = (self.concentration0.reciprocal() * (-self.concentration0).log1p()
                    - (-self.concentration0 * self.concentration1).log1p())  # fmt: skip
        log_mode = log_mode.clone()
        bad = (self.concentration0 < 1) | (self.concentration1 < 1)
        return F.where(bad, C.full_like(log_mode, math.nan), log_mode.exp())

    @property
    def variance(self):
        return (_moments(self.concentration1, self.concentration0, 2)
                - _moments(self.concentration1, self.concentration0, 1).pow(2))  # fmt: skip

    def entropy(self):
        t1 = 1 - self.concentration1.reciprocal()
        t0 = 1 - self.concentration0.reciprocal()
        h0 = (self.concentration0 + 1).digamma() + 0.5772156649015329
        return t0 + t1 * h0 - self.concentration1.log() - self.concentration0.log()


def _dirichlet_mode(c: Tensor) -> Tensor:
    """The mode of ``Dirichlet(c)``; where every concentration is below 1 the density peaks
    at every vertex and, as PyTorch, the first vertex is taken."""
    cm1 = (c - 1).clamp(min=0.0)
    mask = (c < 1).all(-1, keepdim=True)
    # NOTE: the masked rows divide by 1, not by 0, so that no NaN reaches the gradient
    mode = cm1 / F.where(mask, C.ones_like(cm1), cm1.sum(-1, keepdim=True))
    first = F.one_hot(C.zeros(c.shape[:-1], dtype=D.int64, device=c.device), c.shape[-1])
    return F.where(mask, first.to(mode.dtype), mode)


def _moments(a: Tensor, b: Tensor, n: int) -> Tensor:
    """``E[X^n]`` of ``Kumaraswamy(a, b)``: ``b B(1 + n/a, b)``."""
    arg1 = 1 + n / a
    log_value = arg1.lgamma() + b.lgamma() - (arg1 + b).lgamma()
    return b * log_value.exp()
