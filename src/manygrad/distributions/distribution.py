"""``Distribution``: the base of ``mg.distributions``, with PyTorch's interface."""

from __future__ import annotations

import functools

from .. import creation as C
from ..autograd import no_grad
from ..tensor import Size, Tensor


def broadcast_shape(*shapes) -> tuple:
    """The broadcast of ``shapes`` (NumPy rules)."""
    out: list[int] = []
    for s in shapes:
        s = tuple(s)
        if len(s) > len(out):
            out = [1] * (len(s) - len(out)) + out
        for i, n in enumerate(s[::-1]):
            j = len(out) - 1 - i
            if out[j] == 1:
                out[j] = n
            elif n not in (1, out[j]):
                raise ValueError(f"shapes {shapes} do not broadcast")
    return tuple(out)


def as_float(x, like: Tensor | None = None) -> Tensor:
    """A number or tensor as a floating tensor (on ``like``'s device, in its dtype)."""
    if isinstance(x, Tensor):
        return x if x.is_floating_point() else x.float()
    if like is not None:
        return C.full((), float(x), dtype=like.dtype, device=like.device)
    return C.tensor(float(x))


class Distribution:
    """A batch of probability distributions of shape ``batch_shape``, each over values of
    shape ``event_shape``.

    Subclasses define ``log_prob``, ``sample`` (or ``rsample`` when ``has_rsample``),
    ``mean``, ``variance`` and ``entropy`` as they exist.

    Example:
        >>> d = mg.distributions.Normal(mg.zeros(3), 1.0)
        >>> x = d.rsample((10,)); lp = d.log_prob(x)   # (10, 3)
    """

    has_rsample = False
    has_enumerate_support = False
    # NOTE: off by default (PyTorch's is on): each check reads a result back to the host
    _validate_args = False
    arg_constraints: dict = {}
    support = None

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape = Size(batch_shape)
        self._event_shape = Size(event_shape)
        if validate_args is not None:
            self._validate_args = bool(validate_args)
        if self._validate_args:
            self._validate_params()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # log_prob and cdf check their value against the support when validating
        for name in ("log_prob", "cdf"):
            fn = cls.__dict__.get(name)
            if fn is not None and not getattr(fn, "_validates", False):
                setattr(cls, name, _validating(fn))

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Whether distributions check their parameters and values by default (``False``;
        a ``validate_args`` argument overrides it per distribution)."""
        Distribution._validate_args = bool(value)

    def _validate_params(self) -> None:
        from . import constraints

        for name, constraint in self.arg_constraints.items():
            if constraints.is_dependent(constraint):
                continue
            value = self.__dict__.get(name, self.__dict__.get("_" + name))
            if value is None and isinstance(getattr(type(self), name, None), property):
                if "_" + name in self.__dict__:
                    continue  # NOTE: made on first use from the other parameter
                value = getattr(self, name)
            if not isinstance(value, Tensor) or bool(constraint.check(value).all()):
                continue
            raise ValueError(
                f"Expected parameter {name} ({type(value).__name__} of shape "
                f"{tuple(value.shape)}) of distribution {self!r} to satisfy the constraint "
                f"{constraint!r}, but found invalid values:\n{value}"
            )

    def _validate_sample(self, value) -> None:
        """Raise ``ValueError`` unless ``value`` broadcasts with ``batch_shape +
        event_shape`` and lies in the support."""
        if not isinstance(value, Tensor):
            value = C.tensor(value)
        shape, event = tuple(value.shape), tuple(self._event_shape)
        if shape[len(shape) - len(event) :] != event or len(shape) < len(event):
            raise ValueError(
                f"The right-most size of value must match event_shape: {shape} vs {event}."
            )
        expected = tuple(self._batch_shape) + event
        for i, j in zip(reversed(shape), reversed(expected)):
            if i != 1 and j != 1 and i != j:
                raise ValueError(f"Value is not broadcastable with batch_shape+event_shape: "
                                 f"{shape} vs {expected}.")  # fmt: skip
        support = self.support
        if support is None:
            return
        if not bool(support.check(value).all()):
            raise ValueError(
                f"Expected value argument ({type(value).__name__} of shape {shape}) to be "
                f"within the support ({support!r}) of the distribution {self!r}, but found "
                f"invalid values:\n{value}"
            )

    @property
    def batch_shape(self) -> Size:
        return self._batch_shape

    @property
    def event_shape(self) -> Size:
        return self._event_shape

    def _extended_shape(self, sample_shape=()) -> tuple:
        return tuple(sample_shape) + tuple(self._batch_shape) + tuple(self._event_shape)

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no mean")

    @property
    def mode(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no mode")

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no variance")

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    def sample(self, sample_shape=()) -> Tensor:
        """Draw ``sample_shape`` samples (no gradient)."""
        with no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()) -> Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} has no reparameterized sample (has_rsample is False); "
            "use sample() and a score-function estimator (log_prob)"
        )

    def sample_n(self, n: int) -> Tensor:
        return self.sample((n,))

    def log_prob(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.log_prob")

    def cdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.cdf")

    def icdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.icdf")

    def entropy(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.entropy")

    def perplexity(self) -> Tensor:
        return self.entropy().exp()

    def enumerate_support(self, expand: bool = True) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.enumerate_support")

    def expand(self, batch_shape, _instance=None):
        """The same distribution over a larger batch (parameters expanded, not copied)."""
        import copy

        batch_shape = tuple(batch_shape)
        new = copy.copy(self)
        n_old = len(self._batch_shape)
        # NOTE: parameters of the base classes too (Chi2 keeps Gamma's), and the inner
        # distributions that carry the batch (with their own extra batch dims kept)
        params = [k for c in type(self).__mro__ for k in getattr(c, "arg_constraints", {})]
        keys = [n for k in dict.fromkeys(params) for n in (k, "_" + k)]
        inner = ["base_dist", "_categorical", "_mixture_distribution", "_component_distribution"]
        for k in keys + inner:
            v = self.__dict__.get(k)
            if isinstance(v, Tensor):
                new.__dict__[k] = v.expand(*(batch_shape + tuple(v.shape[n_old:])))
            elif isinstance(v, Distribution):
                new.__dict__[k] = v.expand(batch_shape + tuple(v.batch_shape)[n_old:])
        new._batch_shape = Size(batch_shape)
        return new

    def __repr__(self) -> str:
        args = []
        for k in self.arg_constraints:
            v = self.__dict__.get(k, self.__dict__.get("_" + k))
            if isinstance(v, Tensor):
                args.append(f"{k}: {v if v.numel() == 1 else v.size()}")
        return f"{type(self).__name__}({', '.join(args)})"


def _validating(fn):
    """``fn(self, value)`` that first checks ``value`` when the distribution validates."""

    @functools.wraps(fn)
    def method(self, value, *args, **kwargs):
        if self._validate_args:
            self._validate_sample(value)
        return fn(self, value, *args, **kwargs)

    method._validates = True
    return method


def broadcast_all(*values) -> list[Tensor]:
    """Numbers and tensors as float tensors expanded to one broadcast shape."""
    like = next((v for v in values if isinstance(v, Tensor)), None)
    ts = [as_float(v, like) for v in values]
    shape = broadcast_shape(*(t.shape for t in ts))
    return [t if tuple(t.shape) == shape else t.expand(*shape) for t in ts]


class ExponentialFamily(Distribution):
    """A family with density ``h(x) exp(<θ, t(x)> - F(θ))``: subclasses give the natural
    parameters ``_natural_params`` (θ), the log-normalizer ``_log_normalizer(*θ)`` (F) and
    ``_mean_carrier_measure`` (E[log h(x)]); ``entropy`` follows from them (by the
    gradient of F, as PyTorch computes it)."""

    @property
    def _natural_params(self) -> tuple:
        raise NotImplementedError(f"{type(self).__name__}._natural_params")

    def _log_normalizer(self, *natural_params):
        raise NotImplementedError(f"{type(self).__name__}._log_normalizer")

    @property
    def _mean_carrier_measure(self):
        raise NotImplementedError(f"{type(self).__name__}._mean_carrier_measure")

    def entropy(self):
        from ..autograd import enable_grad, grad

        result = -self._mean_carrier_measure
        with enable_grad():
            params = [p.detach().requires_grad_() for p in self._natural_params]
            lg = self._log_normalizer(*params)
            grads = grad(lg.sum(), params, create_graph=True)
        result = result + lg
        for p, g in zip(params, grads):
            result = result - (p * g).reshape(*self._batch_shape, -1).sum(-1)
        return result
