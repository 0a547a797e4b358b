"""``Distribution``: the base of ``mg.distributions``, with PyTorch's interface."""

from __future__ import annotations

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
    _validate_default = False
    arg_constraints: dict = {}
    support = None

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape = Size(batch_shape)
        self._event_shape = Size(event_shape)

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        Distribution._validate_default = bool(value)

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
        keys = [n for k in self.arg_constraints for n in (k, "_" + k)] + ["base_dist"]
        for k in keys:
            v = self.__dict__.get(k)
            if isinstance(v, Tensor):
                new.__dict__[k] = v.expand(*(batch_shape + tuple(v.shape[n_old:])))
            elif isinstance(v, Distribution):
                new.__dict__[k] = v.expand(batch_shape)
        new._batch_shape = Size(batch_shape)
        return new

    def __repr__(self) -> str:
        args = ", ".join(
            f"{k}: {tuple(getattr(self, k).shape) if isinstance(getattr(self, k), Tensor) else getattr(self, k)}"  # noqa: E501
            for k in self.arg_constraints
            if k in self.__dict__
        )
        return f"{type(self).__name__}({args})"


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
