"""``distributions.constraints``: the sets that parameters and values live in, as PyTorch
names them (``constraints.positive``, ``interval(0, 1)``, ``simplex``...). ``check(value)``
says elementwise (per event) whether a value is inside; ``biject_to`` / ``transform_to``
(``distributions.constraint_registry``) map the real numbers onto each.

Example:
    >>> constraints.positive.check(mg.tensor([1.0, -1.0]))
    tensor([ True, False])
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor

__all__ = [
    "Constraint", "boolean", "cat", "corr_cholesky", "dependent", "dependent_property",
    "greater_than", "greater_than_eq", "half_open_interval", "independent",
    "integer_interval", "interval", "is_dependent", "less_than", "lower_cholesky",
    "lower_triangular", "MixtureSameFamilyConstraint", "multinomial", "nonnegative", "nonnegative_integer", "one_hot", "positive",
    "positive_definite", "positive_integer", "positive_semidefinite", "real", "real_vector",
    "simplex", "square", "stack", "symmetric", "unit_interval",
]  # fmt: skip


class Constraint:
    """A region of values. ``is_discrete``: integer-valued; ``event_dim``: how many of the
    rightmost dims one value spans (``check`` reduces over them)."""

    is_discrete = False
    event_dim = 0

    def check(self, value: Tensor) -> Tensor:
        """A boolean tensor: whether each value (each event) is inside."""
        raise NotImplementedError

    def _host(self, x):
        """``check`` on a NumPy array (or None where only ``check`` serves): what
        validation uses for CPU tensors, without a graph of tensor ops per check."""
        return None

    def __repr__(self) -> str:
        return type(self).__name__[1:] + "()"  # NOTE: PyTorch's rule (drops the "_")


def _host_bound(b):
    """A bound as ``_host`` uses it: a number, a CPU tensor's array, or None (a GPU tensor)."""
    if isinstance(b, (int, float)):
        return b
    if isinstance(b, Tensor) and b._device.type == "cpu" and b._data.__class__ is np.ndarray:
        return b._data
    return None


def _whole(x):
    """Whether each value is a whole number (inf and NaN are not; no warning for them)."""
    if x.dtype.kind in "biu":
        return np.ones(x.shape, bool)
    with np.errstate(invalid="ignore"):
        return x % 1 == 0


_HOST_OK: dict = {}  # constraint class -> whether its _host stands for its check


def host_all(constraint: Constraint, value) -> bool | None:
    """Whether all of ``value`` (a CPU tensor) satisfies ``constraint``, computed with NumPy
    (a few microseconds, where ``check`` builds tensor ops), or None where it can't be."""
    if not (isinstance(value, Tensor) and value._device.type == "cpu"):
        return None
    x = value._data
    if x.__class__ is not np.ndarray or x.dtype.kind == "c":
        return None
    cls = type(constraint)
    usable = _HOST_OK.get(cls)
    if usable is None:
        # NOTE: only where the class that defines check also defines _host (a subclass with
        # its own check, e.g. a matrix constraint built on another, keeps check)
        mro = cls.__mro__
        usable = _HOST_OK[cls] = next(k for k in mro if "check" in k.__dict__) is next(
            k for k in mro if "_host" in k.__dict__
        )
    if not usable:
        return None
    r = constraint._host(x)
    if r is None:
        return None
    return bool(r.all()) if r.__class__ is np.ndarray else bool(r)


def _all_right(x: Tensor, n: int) -> Tensor:
    for _ in range(n):
        x = x.all(-1)
    return x


class _Dependent(Constraint):
    """A constraint that depends on other parameters (e.g. ``Uniform``'s support); it cannot
    be checked on its own."""

    def __init__(self, *, is_discrete=NotImplemented, event_dim=NotImplemented):
        self._is_discrete, self._event_dim = is_discrete, event_dim

    @property
    def is_discrete(self):  # type: ignore[override]
        if self._is_discrete is NotImplemented:
            raise NotImplementedError(".is_discrete cannot be determined statically")
        return self._is_discrete

    @property
    def event_dim(self):  # type: ignore[override]
        if self._event_dim is NotImplemented:
            raise NotImplementedError(".event_dim cannot be determined statically")
        return self._event_dim

    def __call__(self, *, is_discrete=NotImplemented, event_dim=NotImplemented):
        """``dependent(is_discrete=True, event_dim=1)``: a copy with those static values."""
        if is_discrete is NotImplemented:
            is_discrete = self._is_discrete
        if event_dim is NotImplemented:
            event_dim = self._event_dim
        return _Dependent(is_discrete=is_discrete, event_dim=event_dim)

    def check(self, x):
        raise ValueError("Cannot determine validity of dependent constraint")


def is_dependent(constraint) -> bool:
    return isinstance(constraint, _Dependent)


class _DependentProperty(property, _Dependent):
    """A property that is a dependent constraint on the class (``Uniform.support``) and the
    constraint itself on an instance."""

    def __init__(self, fn=None, *, is_discrete=NotImplemented, event_dim=NotImplemented):
        property.__init__(self, fn)
        _Dependent.__init__(self, is_discrete=is_discrete, event_dim=event_dim)

    def __call__(self, fn):  # type: ignore[override]
        return _DependentProperty(fn, is_discrete=self._is_discrete, event_dim=self._event_dim)


class _IndependentConstraint(Constraint):
    """``base`` over events of ``reinterpreted_batch_ndims`` more dims."""

    def __init__(self, base_constraint: Constraint, reinterpreted_batch_ndims: int):
        # NOTE: AssertionError, the type PyTorch raises here
        if not isinstance(base_constraint, Constraint):
            raise AssertionError(f"base_constraint must be a Constraint, got "
                                 f"{type(base_constraint).__name__}")  # fmt: skip
        if not isinstance(reinterpreted_batch_ndims, int):
            raise AssertionError(f"reinterpreted_batch_ndims must be an int, got "
                                 f"{type(reinterpreted_batch_ndims).__name__}")  # fmt: skip
        if reinterpreted_batch_ndims < 0:
            raise AssertionError(f"reinterpreted_batch_ndims must be >= 0, got "
                                 f"{reinterpreted_batch_ndims}")  # fmt: skip
        self.base_constraint = base_constraint
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims

    @property
    def is_discrete(self):  # type: ignore[override]
        return self.base_constraint.is_discrete

    @property
    def event_dim(self):  # type: ignore[override]
        return self.base_constraint.event_dim + self.reinterpreted_batch_ndims

    def check(self, value):
        result = self.base_constraint.check(value)
        if result.ndim < self.reinterpreted_batch_ndims:
            expected = self.base_constraint.event_dim + self.reinterpreted_batch_ndims
            raise ValueError(f"Expected value.dim() >= {expected} but got {value.ndim}")
        return _all_right(result, self.reinterpreted_batch_ndims)

    def _host(self, x):
        if x.ndim - self.base_constraint.event_dim < self.reinterpreted_batch_ndims:
            return None  # NOTE: check raises the error
        return self.base_constraint._host(x)  # NOTE: all() of it is all() of the events

    def __repr__(self):
        return (f"IndependentConstraint({self.base_constraint!r}, "
                f"{self.reinterpreted_batch_ndims})")  # fmt: skip


class MixtureSameFamilyConstraint(Constraint):
    """The support of a ``MixtureSameFamily``: a value is inside when it lies in the support
    of every component (``base_constraint`` is the component distribution's).

    Example: ``MixtureSameFamilyConstraint(constraints.positive).check(x)``
    """

    def __init__(self, base_constraint: Constraint):
        if not isinstance(base_constraint, Constraint):
            # NOTE: AssertionError, the type PyTorch raises here
            raise AssertionError(
                f"MixtureSameFamilyConstraint: base_constraint must be a Constraint (such as "
                f"constraints.real), got {type(base_constraint).__name__}"
            )
        self.base_constraint = base_constraint

    @property
    def is_discrete(self):  # type: ignore[override]
        return self.base_constraint.is_discrete

    @property
    def event_dim(self):  # type: ignore[override]
        return self.base_constraint.event_dim

    def check(self, value):
        """Checks ``value`` against each component: the component dim is added back before
        the event dims, and the result is reduced over it."""
        n = self.event_dim
        result = self.base_constraint.check(value.unsqueeze(-1 - n))
        if value.ndim < n:
            raise ValueError(f"Expected value.dim() >= {n} but got {value.ndim}")
        return result.reshape(*result.shape[: value.ndim - n], -1).all(-1)

    def __repr__(self):
        return f"{type(self).__name__}({self.base_constraint!r})"


class _Boolean(Constraint):
    is_discrete = True

    def check(self, value):
        return (value == 0) | (value == 1)

    def _host(self, x):
        return (x == 0) | (x == 1)


class _OneHot(Constraint):
    is_discrete = True
    event_dim = 1

    def check(self, value):
        is_bool = ((value == 0) | (value == 1)).all(-1)
        return is_bool & (value.sum(-1) == 1)


class _IntegerInterval(Constraint):
    is_discrete = True

    def __init__(self, lower_bound, upper_bound):
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def check(self, value):
        return (value % 1 == 0) & (self.lower_bound <= value) & (value <= self.upper_bound)

    def _host(self, x):
        lo, hi = _host_bound(self.lower_bound), _host_bound(self.upper_bound)
        if lo is None or hi is None:
            return None
        return _whole(x) & (lo <= x) & (x <= hi)

    def __repr__(self):
        return f"IntegerInterval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _IntegerLessThan(Constraint):
    """Integers up to ``upper_bound``: ``(-inf, upper_bound]``."""

    is_discrete = True

    def __init__(self, upper_bound):
        self.upper_bound = upper_bound

    def check(self, value):
        return (value % 1 == 0) & (value <= self.upper_bound)

    def _host(self, x):
        hi = _host_bound(self.upper_bound)
        return None if hi is None else _whole(x) & (x <= hi)

    def __repr__(self):
        return f"IntegerLessThan(upper_bound={self.upper_bound})"


class _IntegerGreaterThan(Constraint):
    is_discrete = True

    def __init__(self, lower_bound):
        self.lower_bound = lower_bound

    def check(self, value):
        return (value % 1 == 0) & (value >= self.lower_bound)

    def _host(self, x):
        lo = _host_bound(self.lower_bound)
        return None if lo is None else _whole(x) & (x >= lo)

    def __repr__(self):
        return f"IntegerGreaterThan(lower_bound={self.lower_bound})"


class _Multinomial(Constraint):
    """Nonnegative counts (over the last dim) whose sum is at most ``upper_bound``."""

    is_discrete = True
    event_dim = 1

    def __init__(self, upper_bound):
        self.upper_bound = upper_bound

    def check(self, value):
        return (value >= 0).all(-1) & (value.sum(-1) <= self.upper_bound)


class _Real(Constraint):
    def check(self, value):
        return value == value  # NOTE: False only for NaN

    def _host(self, x):
        return x == x


class _GreaterThan(Constraint):
    def __init__(self, lower_bound):
        self.lower_bound = lower_bound

    def check(self, value):
        return self.lower_bound < value

    def _host(self, x):
        lo = _host_bound(self.lower_bound)
        return None if lo is None else lo < x

    def __repr__(self):
        return f"GreaterThan(lower_bound={self.lower_bound})"


class _GreaterThanEq(Constraint):
    def __init__(self, lower_bound):
        self.lower_bound = lower_bound

    def check(self, value):
        return self.lower_bound <= value

    def _host(self, x):
        lo = _host_bound(self.lower_bound)
        return None if lo is None else lo <= x

    def __repr__(self):
        return f"GreaterThanEq(lower_bound={self.lower_bound})"


class _LessThan(Constraint):
    def __init__(self, upper_bound):
        self.upper_bound = upper_bound

    def check(self, value):
        return value < self.upper_bound

    def _host(self, x):
        hi = _host_bound(self.upper_bound)
        return None if hi is None else x < hi

    def __repr__(self):
        return f"LessThan(upper_bound={self.upper_bound})"


class _Interval(Constraint):
    def __init__(self, lower_bound, upper_bound):
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def check(self, value):
        return (self.lower_bound <= value) & (value <= self.upper_bound)

    def _host(self, x):
        lo, hi = _host_bound(self.lower_bound), _host_bound(self.upper_bound)
        return None if lo is None or hi is None else (lo <= x) & (x <= hi)

    def __repr__(self):
        return f"Interval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _HalfOpenInterval(Constraint):
    # NOTE: not an _Interval, as PyTorch's (isinstance tells the two apart)
    def __init__(self, lower_bound, upper_bound):
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def check(self, value):
        return (self.lower_bound <= value) & (value < self.upper_bound)

    def _host(self, x):
        lo, hi = _host_bound(self.lower_bound), _host_bound(self.upper_bound)
        return None if lo is None or hi is None else (lo <= x) & (x < hi)

    def __repr__(self):
        return (f"HalfOpenInterval(lower_bound={self.lower_bound}, "
                f"upper_bound={self.upper_bound})")  # fmt: skip


class _Simplex(Constraint):
    event_dim = 1

    def check(self, value):
        return (value >= 0).all(-1) & ((value.sum(-1) - 1).abs() < 1e-6)

    def _host(self, x):
        if x.ndim == 0:
            return None  # NOTE: check raises the error
        return (x >= 0).all(-1) & (abs(x.sum(-1) - 1) < 1e-6)


class _Cat(Constraint):
    """Each of ``cseq`` on its slice of ``dim`` (sizes ``lengths``)."""

    def __init__(self, cseq, dim: int = 0, lengths=None):
        self.cseq = list(cseq)
        if not all(isinstance(c, Constraint) for c in self.cseq):
            raise AssertionError("All elements of cseq must be Constraint instances")
        self.lengths = list(lengths) if lengths is not None else [1] * len(self.cseq)
        if len(self.lengths) != len(self.cseq):
            raise AssertionError(f"lengths ({len(self.lengths)}) must match cseq "
                                 f"({len(self.cseq)})")  # fmt: skip
        self.dim = dim

    @property
    def is_discrete(self):  # type: ignore[override]
        return any(c.is_discrete for c in self.cseq)

    @property
    def event_dim(self):  # type: ignore[override]
        return max(c.event_dim for c in self.cseq)

    def check(self, value):
        from ..ops import cat as _cat

        _check_dim(self.dim, value)
        checks, start = [], 0
        for c, n in zip(self.cseq, self.lengths):
            checks.append(c.check(value.narrow(self.dim, start, n)))
            start += n
        return _cat(checks, self.dim)


class _Stack(Constraint):
    """Each of ``cseq`` on its index of ``dim``."""

    def __init__(self, cseq, dim: int = 0):
        self.cseq, self.dim = list(cseq), dim
        if not all(isinstance(c, Constraint) for c in self.cseq):
            raise AssertionError("All elements of cseq must be Constraint instances")

    @property
    def is_discrete(self):  # type: ignore[override]
        return any(c.is_discrete for c in self.cseq)

    @property
    def event_dim(self):  # type: ignore[override]
        dim = max(c.event_dim for c in self.cseq)
        return dim + 1 if self.dim + dim < 0 else dim

    def check(self, value):
        from ..ops import stack as _stack

        _check_dim(self.dim, value)
        parts = [value.select(self.dim, i) for i in range(value.shape[self.dim])]
        return _stack([c.check(v) for c, v in zip(self.cseq, parts)], self.dim)


# NOTE: the matrix constraints live in their own module (defined on Constraint, above)
from ._constraints_matrix import (  # noqa: E402
    _CorrCholesky,
    _LowerCholesky,
    _LowerTriangular,
    _PositiveDefinite,
    _PositiveSemidefinite,
    _Square,
    _Symmetric,
)


def _check_dim(dim: int, value) -> None:
    if not -value.ndim <= dim < value.ndim:
        raise AssertionError(f"dim {dim} out of range for value with {value.ndim} dimensions")


dependent = _Dependent()
dependent_property = _DependentProperty
independent = _IndependentConstraint
boolean = _Boolean()
one_hot = _OneHot()
nonnegative_integer = _IntegerGreaterThan(0)
positive_integer = _IntegerGreaterThan(1)
integer_interval = _IntegerInterval
real = _Real()
real_vector = independent(real, 1)
positive = _GreaterThan(0.0)
nonnegative = _GreaterThanEq(0.0)
greater_than = _GreaterThan
greater_than_eq = _GreaterThanEq
less_than = _LessThan
multinomial = _Multinomial
unit_interval = _Interval(0.0, 1.0)
interval = _Interval
half_open_interval = _HalfOpenInterval
simplex = _Simplex()
lower_triangular = _LowerTriangular()
lower_cholesky = _LowerCholesky()
corr_cholesky = _CorrCholesky()
square = _Square()
symmetric = _Symmetric()
positive_semidefinite = _PositiveSemidefinite()
positive_definite = _PositiveDefinite()
cat = _Cat
stack = _Stack
