"""Continuous distributions over scalars: ``Normal``, ``Uniform``, ``Laplace``, ``Exponential``."""

from __future__ import annotations

import math

from .. import creation as C
from .. import ops as F
from ..autograd import no_grad
from ..tensor import Tensor
from . import constraints
from .distribution import Distribution, ExponentialFamily, as_float, broadcast_all


def _noise(kind: str, shape: tuple, like: Tensor) -> Tensor:
    make = C.randn if kind == "normal" else C.rand
    return make(*shape, dtype=like.dtype, device=like.device)


class Normal(ExponentialFamily):
    """Gaussian with mean ``loc`` and standard deviation ``scale`` (both broadcast).

    Example: ``Normal(mu, sigma).rsample()`` (differentiable in ``mu`` and ``sigma``).
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True
    _mean_carrier_measure = 0

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, (), validate_args)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def stddev(self) -> Tensor:
        return self.scale

    @property
    def variance(self) -> Tensor:
        return self.scale**2

    def rsample(self, sample_shape=()) -> Tensor:
        eps = _noise("normal", self._extended_shape(sample_shape), self.loc)
        return self.loc + eps * self.scale

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.loc)
        var = self.scale**2
        return (
            -((value - self.loc) ** 2) / (2 * var) - self.scale.log() - 0.5 * math.log(2 * math.pi)
        )

    def cdf(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.loc)
        return 0.5 * (1 + F.erf((value - self.loc) / (self.scale * math.sqrt(2))))

    def icdf(self, value) -> Tensor:
        value = as_float(value, self.loc)
        return self.loc + self.scale * F.erfinv(2 * value - 1) * math.sqrt(2)

    def entropy(self) -> Tensor:
        return 0.5 + 0.5 * math.log(2 * math.pi) + self.scale.log()

    @property
    def _natural_params(self) -> tuple:
        return (self.loc / self.scale.pow(2), -0.5 * self.scale.pow(2).reciprocal())

    def _log_normalizer(self, x, y):
        return -0.25 * x.pow(2) / y + 0.5 * (-math.pi / y).log()


class Uniform(Distribution):
    """Uniform on ``[low, high)`` (both broadcast)."""

    @property
    def arg_constraints(self) -> dict:
        """``low < high``, as PyTorch's."""
        return {"low": constraints.less_than(self.high), "high": constraints.greater_than(self.low)}

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.interval(self.low, self.high)

    has_rsample = True

    def __init__(self, low, high, validate_args=None):
        self.low, self.high = broadcast_all(low, high)
        super().__init__(self.low.shape, (), validate_args)

    @property
    def mean(self) -> Tensor:
        return (self.high + self.low) / 2

    @property
    def mode(self) -> Tensor:
        return self.high * math.nan  # NOTE: every point is a mode; NaN, as PyTorch

    @property
    def variance(self) -> Tensor:
        return (self.high - self.low) ** 2 / 12

    @property
    def stddev(self) -> Tensor:
        return (self.high - self.low) / math.sqrt(12)

    def rsample(self, sample_shape=()) -> Tensor:
        u = _noise("uniform", self._extended_shape(sample_shape), self.low)
        return self.low + u * (self.high - self.low)

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.low)
        inside = (self.low <= value).to(self.low.dtype) * (value < self.high).to(self.low.dtype)
        return inside.log() - (self.high - self.low).log()

    def cdf(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.low)
        return ((value - self.low) / (self.high - self.low)).clamp(0, 1)

    def icdf(self, value) -> Tensor:
        return self.low + as_float(value, self.low) * (self.high - self.low)

    def entropy(self) -> Tensor:
        return (self.high - self.low).log()


class Laplace(Distribution):
    """Laplace (double-exponential) with location ``loc`` and scale ``scale``."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, (), validate_args)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        return 2 * self.scale**2

    def rsample(self, sample_shape=()) -> Tensor:
        u = _noise("uniform", self._extended_shape(sample_shape), self.loc) * 2 - 1
        u = u.clamp(-1 + 1e-7, 1 - 1e-7)
        return self.loc - self.scale * u.sign() * (1 - u.abs()).log()

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.loc)
        return -(2 * self.scale).log() - (value - self.loc).abs() / self.scale

    def cdf(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        d = as_float(value, self.loc) - self.loc
        return 0.5 - 0.5 * d.sign() * (-d.abs() / self.scale).expm1()

    def icdf(self, value) -> Tensor:
        term = as_float(value, self.loc) - 0.5
        return self.loc - self.scale * term.sign() * (-2 * term.abs()).log1p()

    def entropy(self) -> Tensor:
        return 1 + (2 * self.scale).log()


class Exponential(ExponentialFamily):
    """Exponential with rate ``rate``."""

    arg_constraints = {"rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True
    _mean_carrier_measure = 0

    def __init__(self, rate, validate_args=None):
        (self.rate,) = broadcast_all(rate)
        super().__init__(self.rate.shape, (), validate_args)

    @property
    def mean(self) -> Tensor:
        return 1 / self.rate

    @property
    def mode(self) -> Tensor:
        return C.zeros_like(self.rate.detach())

    @property
    def variance(self) -> Tensor:
        return self.rate ** (-2)

    def rsample(self, sample_shape=()) -> Tensor:
        u = _noise("uniform", self._extended_shape(sample_shape), self.rate)
        with no_grad():
            e = -(1 - u).log()  # NOTE: 1 - u lies in (0, 1], so the log is finite
        return e / self.rate

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.rate)
        return self.rate.log() - self.rate * value

    def cdf(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return 1 - (-self.rate * as_float(value, self.rate)).exp()

    def icdf(self, value) -> Tensor:
        return -(-as_float(value, self.rate)).log1p() / self.rate

    def entropy(self) -> Tensor:
        return 1.0 - self.rate.log()

    @property
    def _natural_params(self) -> tuple:
        return (-self.rate,)

    def _log_normalizer(self, x):
        return -(-x).log()
