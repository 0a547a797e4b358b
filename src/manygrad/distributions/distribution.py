"""``Distribution``: the base of ``mg.distributions``, with PyTorch's interface."""

from __future__ import annotations

import warnings

from .. import creation as C
from ..autograd import no_grad
from ..tensor import Size, Tensor
from ._checks import collecting, submit


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

    Subclasses define ``arg_constraints``, ``support``, ``log_prob``, ``sample`` (or
    ``rsample`` when ``has_rsample``), ``mean``, ``variance`` and ``entropy`` as they exist.

    Arguments are validated as in PyTorch, by default (``__debug__``: off under
    ``python -O``): a constructor raises ``ValueError`` for parameters outside
    ``arg_constraints``, and ``log_prob`` / ``cdf`` for values outside ``support``. Each
    call reads its checks back from the device once (one GPU sync); turn them off, e.g. in
    a tuned training loop or a CUDA-graph capture, with ``validate_args=False`` per
    distribution or ``Distribution.set_default_validate_args(False)`` for all.

    Example:
        >>> d = mg.distributions.Normal(mg.zeros(3), 1.0)
        >>> x = d.rsample((10,)); lp = d.log_prob(x)   # (10, 3)
        >>> mg.distributions.Normal(0.0, -1.0)           # ValueError: ... GreaterThan(...)
    """

    has_rsample = False
    has_enumerate_support = False
    _validate_args = __debug__

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape = Size(batch_shape)
        self._event_shape = Size(event_shape)
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args:
            self._validate_params()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # NOTE: the checks made inside a constructor or a scoring call (nested ones too)
        # are read back together when it ends: one host read per call (see _checks.py)
        for name in _COLLECTING:
            fn = cls.__dict__.get(name)
            if callable(fn):
                setattr(cls, name, collecting(fn))

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Whether distributions check their parameters and values by default (``True``
        unless Python runs with ``-O``, as PyTorch's); a ``validate_args`` argument
        overrides it per distribution. Each check costs one host read (a GPU sync).

        Example: ``Distribution.set_default_validate_args(False)``
        """
        if value not in [True, False]:
            raise ValueError(f"set_default_validate_args: expected True or False, got {value!r}")
        Distribution._validate_args = value

    @property
    def arg_constraints(self) -> dict:
        """The constraint of each parameter, by name (checked when validating)."""
        raise NotImplementedError

    @property
    def support(self):
        """The constraint the values lie in (``log_prob`` checks them when validating)."""
        raise NotImplementedError

    def _validate_params(self) -> None:
        """Check the parameters against ``arg_constraints`` (PyTorch's rules: dependent
        constraints and parameters not made yet are skipped)."""
        from . import constraints
        from ._lazy import lazy_property

        try:
            arg_constraints = self.arg_constraints
        except NotImplementedError:
            arg_constraints = {}
            warnings.warn(
                f"{self.__class__} does not define `arg_constraints`. Please set "
                "`arg_constraints = {}` or initialize the distribution with "
                "`validate_args=False` to turn off validation.",
                stacklevel=3,
            )
        checks, shown = [], self._repr_later()
        for name, constraint in arg_constraints.items():
            if constraints.is_dependent(constraint):
                continue
            if name in self.__dict__:
                value = self.__dict__[name]
            elif self.__dict__.get("_" + name, False) is None:
                continue  # NOTE: made on first use from the other parameter (probs/logits)
            elif isinstance(getattr(type(self), name, None), lazy_property):
                continue
            else:
                value = getattr(self, name)
            ok = constraints.host_all(constraint, value)  # NOTE: CPU tensors: NumPy's check
            checks.append((constraint.check(value) if ok is None else ok,
                           _param_error(shown, name, constraint, value)))  # fmt: skip
        submit(checks)

    def _validate_sample(self, value) -> None:
        """Raise ``ValueError`` unless ``value`` is a tensor that broadcasts with
        ``batch_shape + event_shape`` and lies in the support."""
        if not isinstance(value, Tensor):
            raise ValueError("The value argument to log_prob must be a Tensor")
        shape, event = value.size(), self._event_shape
        if shape[len(shape) - len(event) :] != event:
            raise ValueError(
                f"The right-most size of value must match event_shape: {shape} vs {event}."
            )
        expected = self._batch_shape + event
        for i, j in zip(reversed(shape), reversed(expected)):
            if i != 1 and j != 1 and i != j:
                raise ValueError(f"Value is not broadcastable with batch_shape+event_shape: "
                                 f"{shape} vs {expected}.")  # fmt: skip
        try:
            support = self.support
        except NotImplementedError:
            warnings.warn(
                f"{self.__class__} does not define `support` to enable sample validation. "
                "Please initialize the distribution with `validate_args=False` to turn off "
                "validation.",
                stacklevel=3,
            )
            return
        if support is None:
            raise AssertionError("support is unexpectedly None")
        from .constraints import host_all

        ok = host_all(support, value)
        submit([(support.check(value) if ok is None else ok,
                 _sample_error(self._repr_later(), support, value))])  # fmt: skip

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
        """The same distribution over a larger batch (parameters expanded, not copied; not
        checked again, and validating as this one does)."""
        import copy

        batch_shape = tuple(batch_shape)
        new = copy.copy(self)
        n_old = len(self._batch_shape)
        # NOTE: parameters of the base classes too (Chi2 keeps Gamma's), and the inner
        # distributions that carry the batch (with their own extra batch dims kept)
        params = [k for c in type(self).__mro__ for k in _class_arg_constraints(c, self)]
        keys = [n for k in dict.fromkeys(params) for n in (k, "_" + k)]
        inner = ["base_dist", "_categorical", "_mixture_distribution", "_component_distribution",
                 "_dirichlet", "_gamma1", "_gamma2", "_chi2", "_binomial", "_beta",
                 "_dist_chi2"]  # fmt: skip
        for k in keys + inner:
            v = self.__dict__.get(k)
            if isinstance(v, Tensor):
                new.__dict__[k] = v.expand(*(batch_shape + tuple(v.shape[n_old:])))
            elif isinstance(v, Distribution):
                new.__dict__[k] = v.expand(batch_shape + tuple(v.batch_shape)[n_old:])
        new._batch_shape = Size(batch_shape)
        new._validate_args = self._validate_args
        return new

    def _get_checked_instance(self, cls, _instance=None):
        """A bare instance for ``expand`` of a subclass (PyTorch's helper): subclasses
        with their own ``__init__`` must define their own ``expand``."""
        if _instance is None and type(self).__init__ != cls.__init__:
            raise NotImplementedError(
                f"Subclass {self.__class__.__name__} of {cls.__name__} that defines a custom "
                "__init__ method must also define a custom .expand() method."
            )
        return self.__new__(type(self)) if _instance is None else _instance

    def __repr__(self) -> str:
        return self._repr_later()()

    def _repr_later(self):
        """A callable giving the repr as it is now (PyTorch's: the parameters set on the
        instance, a one-element one by value, others by size), formatted only when called,
        as formatting a value reads it from the device."""
        if type(self).__repr__ is not Distribution.__repr__:
            return lambda: repr(self)
        try:
            names = list(self.arg_constraints)
        except NotImplementedError:
            names = []
        # NOTE: _probs / _logits stand for probs / logits (None: not made yet)
        params = [(k, self.__dict__.get(k, self.__dict__.get("_" + k))) for k in names]
        params = [(k, v) for k, v in params if isinstance(v, Tensor)]
        name = type(self).__name__

        def text():
            shown = ", ".join(f"{k}: {v if v.numel() == 1 else v.size()}" for k, v in params)
            return f"{name}({shown})"

        return text


# the entry points whose checks, nested ones included, are read back together
_COLLECTING = ("__init__", "log_prob", "cdf", "log_cdf", "log_survival_function")


def _class_arg_constraints(cls, instance) -> dict:
    """``cls``'s own ``arg_constraints`` (evaluated on ``instance`` when a property)."""
    ac = cls.__dict__.get("arg_constraints")
    if isinstance(ac, property):
        try:
            return ac.fget(instance)
        except (NotImplementedError, AttributeError):
            return {}
    return ac if isinstance(ac, dict) else {}


def _param_error(shown, name, constraint, value):
    """The error of a parameter outside its constraint (PyTorch's message), made when the
    check fails; ``shown()`` is the distribution's repr as it was at the check."""

    def make():
        return ValueError(
            f"Expected parameter {name} ({type(value).__name__} of shape "
            f"{tuple(value.shape)}) of distribution {shown()} to satisfy the constraint "
            f"{constraint!r}, but found invalid values:\n{value}"
        )

    return make


def _sample_error(shown, support, value):
    """The error of a value outside the support (PyTorch's message), made when it fails."""

    def make():
        return ValueError(
            f"Expected value argument ({type(value).__name__} of shape {tuple(value.shape)}) "
            f"to be within the support ({support!r}) of the distribution {shown()}, but found "
            f"invalid values:\n{value}"
        )

    return make


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
