"""``VonMises``, ``NegativeBinomial`` and ``ContinuousBernoulli`` (the rest of PyTorch's
common families is in ``extra_continuous``).

``VonMises`` normalizes with the exact ``log I0`` (``special.i0e``), where PyTorch uses a
7-digit polynomial fit: densities agree to about 1e-7. ``NegativeBinomial`` draws through
gamma samples without reparameterization (as ``Gamma`` here).
"""

from __future__ import annotations

import math

from .. import creation as C
from .. import ops as F
from ..autograd import enable_grad, no_grad
from ..tensor import Size, Tensor
from . import constraints
from ._checks import submit
from ._draws import BinaryProbsLogits, _clamp_probs, _gamma_draw
from .discrete import _probs_and_logits
from .discrete_more import Poisson
from .distribution import Distribution, ExponentialFamily, as_float, broadcast_all

__all__ = ["ContinuousBernoulli", "NegativeBinomial", "VonMises"]


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
        if self._validate_args:
            self._validate_sample(value)
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


class NegativeBinomial(BinaryProbsLogits, Distribution):
    """Successes before ``total_count`` failures of Bernoulli(``probs``) trials."""

    arg_constraints = {"total_count": constraints.greater_than_eq(0),
                       "probs": constraints.half_open_interval(0.0, 1.0),
                       "logits": constraints.real}  # fmt: skip
    support = constraints.nonnegative_integer

    def __init__(self, total_count, probs=None, logits=None, validate_args=None):
        param = self._count_params(total_count, probs, logits, "NegativeBinomial")
        super().__init__(param.shape, (), validate_args)

    @property
    def param_shape(self) -> Size:
        """The shape of ``probs`` / ``logits`` (the batch shape)."""
        return self._batch_shape

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
            return Poisson(rate, validate_args=False).sample()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.logits)
        n = self.total_count
        log_unnormalized = n * _logsigmoid(-self.logits) + value * _logsigmoid(self.logits)
        log_norm = -(n + value).lgamma() + (1.0 + value).lgamma() + n.lgamma()
        log_norm = F.where(n + value == 0.0, C.zeros_like(log_norm), log_norm)
        return log_unnormalized - log_norm


# ----------------------------------------------------------------------------- continuous


class ContinuousBernoulli(ExponentialFamily):
    """The continuous Bernoulli on [0, 1] (Loaiza-Ganem & Cunningham, 2019): density
    proportional to ``p^x (1-p)^(1-x)``; Taylor expansions near ``p = 0.5`` (``lims``)."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True
    _mean_carrier_measure = 0

    def __init__(self, probs=None, logits=None, lims=(0.499, 0.501), validate_args=None):
        probs, logits = _probs_and_logits(probs, logits, "ContinuousBernoulli")
        if probs is not None:
            (p,) = broadcast_all(probs)
            if validate_args is not None:
                # NOTE: PyTorch checks the probs before clamping them whenever validate_args
                # is given, False included
                ok = self.arg_constraints["probs"].check(p)
                submit([(ok, lambda: ValueError("The parameter probs has invalid values"))])
            self._probs, self._logits = _clamp_probs(p), None
            param = self._probs
        else:
            (self._logits,) = broadcast_all(logits)
            self._probs = None
            param = self._logits
        self._lims = lims
        super().__init__(param.shape, (), validate_args)

    @property
    def param_shape(self) -> Size:
        """The shape of ``probs`` / ``logits`` (the batch shape)."""
        return self._batch_shape

    @property
    def probs(self):
        if self._probs is None:
            with enable_grad():  # NOTE: cached, so made with grad even inside no_grad
                self._probs = _clamp_probs(self._logits.sigmoid())
        return self._probs

    @property
    def logits(self):
        if self._logits is None:
            with enable_grad():
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
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        bce = F.binary_cross_entropy_with_logits(logits, value, reduction="none")
        return -bce + self._cont_bern_log_norm()

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
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

    @property
    def _natural_params(self) -> tuple:
        return (self.logits,)

    def _log_normalizer(self, x):
        """The log-normalizer as a function of the natural parameter (the logits), with
        PyTorch's Taylor expansion where ``x`` lies within ``lims - 0.5``."""
        outside = (x <= self._lims[0] - 0.5) | (x > self._lims[1] - 0.5)
        cut = F.where(outside, x, (self._lims[0] - 0.5) * C.ones_like(x))
        log_norm = cut.expm1().abs().log() - cut.abs().log()
        taylor = 0.5 * x + x.pow(2) / 24.0 - x.pow(4) / 2880.0
        return F.where(outside, log_norm, taylor)
