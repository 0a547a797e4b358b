"""Discrete distributions: ``Categorical``, ``OneHotCategorical``, ``Bernoulli``."""

from __future__ import annotations

import math

from .. import creation as C
from .. import dtypes as D
from .. import ops as F
from ..autograd import enable_grad, no_grad
from ..tensor import Size, Tensor
from . import constraints
from ._draws import BinaryProbsLogits
from .distribution import Distribution, ExponentialFamily, as_float, broadcast_shape


def _min_real(dt) -> float:
    return {D.float64: -1.7976931348623157e308, D.float16: -65504.0}.get(dt, -3.4028234663852886e38)


def _probs_and_logits(probs, logits, name: str):
    if (probs is None) == (logits is None):
        # NOTE: PyTorch's words, which its users' tests match
        raise ValueError("Either `probs` or `logits` must be specified, but not both.")
    return probs, logits


class Categorical(Distribution):
    """A choice among ``K`` categories with ``probs`` (normalised here) or ``logits``.

    Example:
        >>> d = Categorical(logits=policy(state))
        >>> a = d.sample(); loss = -d.log_prob(a) * reward
    """

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    has_enumerate_support = True

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    def __init__(self, probs=None, logits=None, validate_args=None):
        probs, logits = _probs_and_logits(probs, logits, "Categorical")
        if probs is not None:
            probs = as_float(probs)
            if probs.dim() < 1:
                raise ValueError("`probs` parameter must be at least one-dimensional.")
            self._probs = probs / probs.sum(-1, keepdim=True)
            self._logits = None
            param = self._probs
        else:
            logits = as_float(logits)
            if logits.dim() < 1:
                raise ValueError("`logits` parameter must be at least one-dimensional.")
            self._logits = logits - F.logsumexp(logits, -1, keepdim=True)
            self._probs = None
            param = self._logits
        self._num_events = param.shape[-1]
        super().__init__(param.shape[:-1], (), validate_args)

    # NOTE: made with grad enabled even inside sample()'s no_grad, as the result is cached

    @property
    def probs(self) -> Tensor:
        if self._probs is None:
            with enable_grad():
                self._probs = F.softmax(self._logits, -1)
        return self._probs

    @property
    def logits(self) -> Tensor:
        if self._logits is None:
            eps = 1.1920928955078125e-07 if self._probs.dtype != D.float64 else 2.22e-16
            with enable_grad():
                self._logits = self._probs.clamp(eps, 1 - eps).log()
        return self._logits

    @property
    def param_shape(self) -> Size:
        return Size((*self.batch_shape, self._num_events))

    @property
    def mean(self) -> Tensor:
        return C.full(tuple(self.batch_shape), math.nan, dtype=self.probs.dtype,
                      device=self.probs.device)  # fmt: skip

    variance = mean

    @property
    def mode(self) -> Tensor:
        return self.probs.argmax(-1)

    def sample(self, sample_shape=()) -> Tensor:
        """Category indices (int64) of shape ``sample_shape + batch_shape``."""
        with no_grad():
            p = self.probs
            cdf = p.cumsum(-1)
            shape = tuple(sample_shape) + tuple(self.batch_shape)
            u = C.rand(*shape, 1, dtype=p.dtype, device=p.device) * cdf[..., -1:]
            idx = (cdf <= u).sum(-1)
            return idx.clamp(max=self._num_events - 1).long()

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = value if isinstance(value, Tensor) else C.tensor(value, device=self.probs.device)
        value = value.long()
        shape = broadcast_shape(value.shape, self.batch_shape)
        logits = self.logits
        if tuple(logits.shape[:-1]) != shape:
            logits = logits.expand(*shape, self._num_events)
        if tuple(value.shape) != shape:
            value = value.expand(*shape)
        return logits.gather(-1, value.unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> Tensor:
        logits = self.logits.clamp(min=_min_real(self.logits.dtype))
        return -(logits * self.probs).sum(-1)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        n = len(self.batch_shape)
        values = C.arange(self._num_events, device=self.probs.device).reshape(-1, *([1] * n))
        return values.expand(-1, *self.batch_shape) if expand else values


class OneHotCategorical(Distribution):
    """``Categorical`` whose samples are one-hot vectors."""

    arg_constraints = Categorical.arg_constraints
    support = constraints.one_hot
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        # NOTE: the Categorical checks by the default setting, not validate_args (PyTorch's)
        self._categorical = Categorical(probs, logits)
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:],
                         validate_args)  # fmt: skip

    probs = property(lambda self: self._categorical.probs)
    logits = property(lambda self: self._categorical.logits)
    mean = property(lambda self: self._categorical.probs)

    @property
    def mode(self) -> Tensor:
        probs = self._categorical.probs
        return F.one_hot(probs.argmax(-1), probs.shape[-1]).to(probs.dtype)

    @property
    def variance(self) -> Tensor:
        p = self._categorical.probs
        return p * (1 - p)

    def sample(self, sample_shape=()) -> Tensor:
        idx = self._categorical.sample(sample_shape)
        return F.one_hot(idx, self.event_shape[0]).to(self.probs.dtype)

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return self._categorical.log_prob(value.argmax(-1))

    def entropy(self) -> Tensor:
        return self._categorical.entropy()

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """The ``K`` one-hot vectors, shape ``(K, *batch_shape, K)`` (``(K, 1, ..., K)`` with
        ``expand=False``)."""
        n, p = self.event_shape[0], self.probs
        values = C.eye(n, dtype=p.dtype, device=p.device)
        values = values.reshape(n, *([1] * len(self.batch_shape)), n)
        return values.expand(n, *self.batch_shape, n) if expand else values


class Bernoulli(BinaryProbsLogits, ExponentialFamily):
    """0/1 outcomes with ``probs`` or ``logits`` of 1.

    Example: ``Bernoulli(logits=x).log_prob(target)``.
    """

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True
    _mean_carrier_measure = 0

    def __init__(self, probs=None, logits=None, validate_args=None):
        param = self._binary_params(probs, logits, "Bernoulli")
        super().__init__(param.shape, (), validate_args)

    @property
    def param_shape(self) -> Size:
        """The shape of ``probs`` / ``logits`` (the batch shape)."""
        return self._batch_shape

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def mode(self) -> Tensor:
        return (self.probs >= 0.5).to(self.probs.dtype)

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        with no_grad():
            p = self.probs
            u = C.rand(*self._extended_shape(sample_shape), dtype=p.dtype, device=p.device)
            return (u < p).to(p.dtype)

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        logits = self.logits
        value = as_float(value, logits)
        shape = broadcast_shape(logits.shape, value.shape)
        logits = logits.expand(*shape) if tuple(logits.shape) != shape else logits
        value = value.expand(*shape) if tuple(value.shape) != shape else value
        return -F.binary_cross_entropy_with_logits(logits, value, reduction="none")

    def entropy(self) -> Tensor:
        return F.binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")

    def enumerate_support(self, expand: bool = True) -> Tensor:
        n = len(self.batch_shape)
        values = C.tensor([0.0, 1.0], dtype=self.probs.dtype, device=self.probs.device)
        values = values.reshape(2, *([1] * n))
        return values.expand(2, *self.batch_shape) if expand else values

    @property
    def _natural_params(self) -> tuple:
        return (F.logit(self.probs),)

    def _log_normalizer(self, x):
        return x.exp().log1p()
