"""The rest of ``torch.distributions``' common families: ``VonMises``, ``NegativeBinomial``,
``ContinuousBernoulli``, ``FisherSnedecor``, ``GeneralizedPareto``, ``InverseGamma``,
``LogisticNormal`` and ``OneHotCategoricalStraightThrough``.

``VonMises`` normalizes with the exact ``log I0`` (``special.i0e``), where PyTorch uses a
7-digit polynomial fit: densities agree to about 1e-7. ``FisherSnedecor``,
``NegativeBinomial`` and ``InverseGamma`` draw through gamma samples without
reparameterization (as ``Gamma`` here).
"""

from __future__ import annotations

import math

from .. import creation as C
from .. import ops as F
from ..autograd import no_grad
from ..tensor import Tensor
from . import constraints
from .continuous import Normal
from .discrete import OneHotCategorical, _probs_and_logits
from .discrete_more import Poisson
from .distribution import Distribution, as_float, broadcast_all
from .more_continuous import Gamma
from .more_families import _clamp_probs, _gamma_draw
from .transformed_distribution import TransformedDistribution
from .transforms import PowerTransform, StickBreakingTransform

__all__ = [
    "ContinuousBernoulli", "FisherSnedecor", "GeneralizedPareto", "InverseGamma",
    "LogisticNormal", "NegativeBinomial", "OneHotCategoricalStraightThrough", "VonMises",
]  # fmt: skip


def _logsigmoid(x: Tensor) -> Tensor:
    from ..ops.activation import logsigmoid

    return logsigmoid(x)


def _nan_where(cond: Tensor, value: Tensor) -> Tensor:
    return F.where(cond, value, C.full_like(value, math.nan))


# ----------------------------------------------------------------------------- VonMises


def _log_i0(k: Tensor) -> Tensor:
    from ..special import i0e

    return i0e(k).log() + k.abs()


def _log_i1(k: Tensor) -> Tensor:
    from ..special import i1e

    return i1e(k).log() + k.abs()


class VonMises(Distribution):
    """The circular normal: angles around ``loc`` with ``concentration`` (kappa)."""

    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}
    support = constraints.real
    has_rsample = False

    def __init__(self, loc, concentration, validate_args=None):
        self.loc, self.concentration = broadcast_all(loc, concentration)
        super().__init__(self.loc.shape, (), validate_args)

    def log_prob(self, value):
        value = as_float(value, self.loc)
        return (self.concentration * (value - self.loc).cos() - math.log(2 * math.pi)
                - _log_i0(self.concentration))  # fmt: skip

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        k = self.concentration
        return 1 - (_log_i1(k) - _log_i0(k)).exp()

    def sample(self, sample_shape=()):
        """Best & Fisher's rejection sampler (float64 inside), in ``[-π, π)``."""
        with no_grad():
            shape = self._extended_shape(sample_shape)
            from .. import dtypes as D

            loc = self.loc.to(D.float64).expand(*shape)
            kappa = self.concentration.to(D.float64).expand(*shape)
            tau = 1 + (1 + 4 * kappa**2).sqrt()
            rho = (tau - (2 * tau).sqrt()) / (2 * kappa)
            r = F.where(kappa < 1e-5, 1 / kappa + kappa, (1 + rho**2) / (2 * rho))
            x = C.zeros(*shape, dtype=D.float64, device=loc.device)
            done = C.zeros(*shape, dtype=D.bool_, device=loc.device)
            while not bool(done.all()):
                u1, u2, u3 = (C.rand(*shape, dtype=D.float64, device=loc.device)
                              for _ in range(3))  # fmt: skip
                z = (math.pi * u1).cos()
                f = (1 + r * z) / (r + z)
                c = kappa * (r - f)
                accept = ((c * (2 - c) - u2) > 0) | ((c / u2).log() + 1 - c >= 0)
                take = accept & ~done
                x = F.where(take, (u3 - 0.5).sign() * f.acos(), x)
                done = done | accept
            out = (x + math.pi + loc) % (2 * math.pi) - math.pi
            return out.to(self.loc.dtype)


# ----------------------------------------------------------------------------- counts


class NegativeBinomial(Distribution):
    """Successes before ``total_count`` failures of Bernoulli(``probs``) trials."""

    arg_constraints = {"total_count": constraints.greater_than_eq(0),
                       "probs": constraints.half_open_interval(0.0, 1.0),
                       "logits": constraints.real}  # fmt: skip
    support = constraints.nonnegative_integer

    def __init__(self, total_count, probs=None, logits=None, validate_args=None):
        probs, logits = _probs_and_logits(probs, logits, "NegativeBinomial")
        if probs is not None:
            self.total_count, self._probs = broadcast_all(total_count, probs)
            self.total_count = self.total_count.to(self._probs.dtype)
            self._logits = None
            param = self._probs
        else:
            self.total_count, self._logits = broadcast_all(total_count, logits)
            self.total_count = self.total_count.to(self._logits.dtype)
            self._probs = None
            param = self._logits
        super().__init__(param.shape, (), validate_args)

    @property
    def probs(self):
        if self._probs is None:
            self._probs = self._logits.sigmoid()
        return self._probs

    @property
    def logits(self):
        if self._logits is None:
            p = _clamp_probs(self._probs)
            self._logits = p.log() - (-p).log1p()
        return self._logits

    @property
    def mean(self):
        return self.total_count * self.logits.exp()

    @property
    def mode(self):
        return ((self.total_count - 1) * self.logits.exp()).floor().clamp(min=0.0)

    @property
    def variance(self):
        return self.mean / (-self.logits).sigmoid()

    def sample(self, sample_shape=()):
        with no_grad():
            shape = self._extended_shape(sample_shape)
            rate = _gamma_draw(self.total_count.expand(*shape)) * self.logits.exp()
            return Poisson(rate).sample()

    def log_prob(self, value):
        value = as_float(value, self.logits)
        n = self.total_count
        log_unnormalized = n * _logsigmoid(-self.logits) + value * _logsigmoid(self.logits)
        log_norm = -(n + value).lgamma() + (1.0 + value).lgamma() + n.lgamma()
        log_norm = F.where(n + value == 0.0, C.zeros_like(log_norm), log_norm)
        return log_unnormalized - log_norm


# ----------------------------------------------------------------------------- continuous


class ContinuousBernoulli(Distribution):
    """The continuous Bernoulli on [0, 1] (Loaiza-Ganem & Cunningham, 2019): density
    proportional to ``p^x (1-p)^(1-x)``; Taylor expansions near ``p = 0.5`` (``lims``)."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, probs=None, logits=None, lims=(0.499, 0.501), validate_args=None):
        probs, logits = _probs_and_logits(probs, logits, "ContinuousBernoulli")
        if probs is not None:
            (p,) = broadcast_all(probs)
            self._probs, self._logits = _clamp_probs(p), None
            param = self._probs
        else:
            (self._logits,) = broadcast_all(logits)
            self._probs = None
            param = self._logits
        self._lims = lims
        super().__init__(param.shape, (), validate_args)

    @property
    def probs(self):
        if self._probs is None:
            self._probs = _clamp_probs(self._logits.sigmoid())
        return self._probs

    @property
    def logits(self):
        if self._logits is None:
            p = _clamp_probs(self._probs)
            self._logits = p.log() - (-p).log1p()
        return self._logits

    def _outside_unstable_region(self):
        return (self.probs <= self._lims[0]) | (self.probs > self._lims[1])

    def _cut_probs(self):
        return F.where(self._outside_unstable_region(), self.probs,
                       self._lims[0] * C.ones_like(self.probs))  # fmt: skip

    def _cont_bern_log_norm(self):
        cut = self._cut_probs()
        below = F.where(cut <= 0.5, cut, C.zeros_like(cut))
        above = F.where(cut >= 0.5, cut, C.ones_like(cut))
        log_norm = ((-cut).log1p() - cut.log()).abs().log() - F.where(
            cut <= 0.5, (-2.0 * below).log1p(), (2.0 * above - 1.0).log()
        )
        x = (self.probs - 0.5) ** 2
        taylor = math.log(2.0) + (4.0 / 3.0 + 104.0 / 45.0 * x) * x
        return F.where(self._outside_unstable_region(), log_norm, taylor)

    @property
    def mean(self):
        cut = self._cut_probs()
        mus = cut / (2.0 * cut - 1.0) + 1.0 / ((-cut).log1p() - cut.log())
        x = self.probs - 0.5
        taylor = 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * x**2) * x
        return F.where(self._outside_unstable_region(), mus, taylor)

    @property
    def stddev(self):
        return self.variance.sqrt()

    @property
    def variance(self):
        cut = self._cut_probs()
        v = cut * (cut - 1.0) / (1.0 - 2.0 * cut) ** 2 + 1.0 / ((-cut).log1p() - cut.log()) ** 2
        x = (self.probs - 0.5) ** 2
        taylor = 1.0 / 12.0 - (1.0 / 15.0 - 128.0 / 945.0 * x) * x
        return F.where(self._outside_unstable_region(), v, taylor)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        u = C.rand(*shape, dtype=self.probs.dtype, device=self.probs.device)
        return self.icdf(u)

    def log_prob(self, value):
        logits, value = broadcast_all(self.logits, value)
        bce = F.binary_cross_entropy_with_logits(logits, value, reduction="none")
        return -bce + self._cont_bern_log_norm()

    def cdf(self, value):
        cut = self._cut_probs()
        value = as_float(value, cut)
        cdfs = (cut.pow(value) * (1.0 - cut).pow(1.0 - value) + cut - 1.0) / (2.0 * cut - 1.0)
        unbounded = F.where(self._outside_unstable_region(), cdfs, value)
        return F.where(value <= 0.0, C.zeros_like(unbounded),
                       F.where(value >= 1.0, C.ones_like(unbounded), unbounded))  # fmt: skip

    def icdf(self, value):
        cut = self._cut_probs()
        return F.where(
            self._outside_unstable_region(),
            ((-cut + value * (2.0 * cut - 1.0)).log1p() - (-cut).log1p())
            / (cut.log() - (-cut).log1p()),
            value,
        )

    def entropy(self):
        log_p0 = (-self.probs).log1p()
        log_p1 = self.probs.log()
        return self.mean * (log_p0 - log_p1) - self._cont_bern_log_norm() - log_p0


class FisherSnedecor(Distribution):
    """The F distribution with ``df1`` and ``df2`` degrees of freedom."""

    arg_constraints = {"df1": constraints.positive, "df2": constraints.positive}
    support = constraints.positive
    has_rsample = False

    def __init__(self, df1, df2, validate_args=None):
        self.df1, self.df2 = broadcast_all(df1, df2)
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

    def sample(self, sample_shape=()):
        with no_grad():
            shape = self._extended_shape(sample_shape)
            x1 = _gamma_draw((0.5 * self.df1).expand(*shape)) / (0.5 * self.df1)
            x2 = _gamma_draw((0.5 * self.df2).expand(*shape)) / (0.5 * self.df2)
            tiny = 1e-37 if x2.dtype.itemsize == 4 else 1e-300
            return x1 / x2.clamp(min=tiny)

    def log_prob(self, value):
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
        z = (as_float(value, self.loc) - self.loc) / self.scale
        eq_zero, safe = self._safe()
        y = 1 / safe + C.ones_like(z)
        nonzero = F.where(y == 0, y, y * (safe * z).log1p())
        return -self.scale.log() - F.where(eq_zero, z, nonzero)

    def log_survival_function(self, value):
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
        base = Gamma(concentration, rate)
        neg_one = C.full_like(base.rate, -1.0)
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
        base = Normal(loc, scale)
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
