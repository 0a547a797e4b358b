"""``biject_to(constraint)`` and ``transform_to(constraint)``: a transform from the real
numbers onto a constraint's set, for optimizing constrained parameters without
constraints (``x = transform_to(positive)(raw)``), as PyTorch registers them.

Example:
    >>> t = transform_to(constraints.interval(0.0, 2.0)); t(mg.zeros(3))  # 1.0 each
"""

from __future__ import annotations

from . import constraints
from . import transforms as T

__all__ = ["ConstraintRegistry", "biject_to", "transform_to"]


class ConstraintRegistry:
    """Constraint types (or instances) to factories ``fn(constraint) -> Transform``."""

    def __init__(self):
        self._registry: dict = {}

    def register(self, constraint, factory=None):
        if factory is None:
            return lambda f: self.register(constraint, f)
        if isinstance(constraint, constraints.Constraint):
            constraint = type(constraint)
        if not isinstance(constraint, type) or not issubclass(constraint, constraints.Constraint):
            raise TypeError(
                f"Expected constraint to be either a Constraint subclass or instance, but got "
                f"{constraint}"
            )
        self._registry[constraint] = factory
        return factory

    def __call__(self, constraint) -> T.Transform:
        try:
            factory = self._registry[type(constraint)]
        except KeyError:
            raise NotImplementedError(
                f"Cannot transform {type(constraint).__name__} constraints"
            ) from None
        return factory(constraint)


biject_to = ConstraintRegistry()
transform_to = ConstraintRegistry()


def _real(constraint):
    return T.identity_transform


def _independent_biject(constraint):
    base = biject_to(constraint.base_constraint)
    return T.IndependentTransform(base, constraint.reinterpreted_batch_ndims)


def _independent_transform(constraint):
    base = transform_to(constraint.base_constraint)
    return T.IndependentTransform(base, constraint.reinterpreted_batch_ndims)


def _positive(constraint):
    return T.ExpTransform()


def _greater_than(constraint):
    return T.ComposeTransform([T.ExpTransform(), T.AffineTransform(constraint.lower_bound, 1)])


def _less_than(constraint):
    return T.ComposeTransform([T.ExpTransform(), T.AffineTransform(constraint.upper_bound, -1)])


def _interval(constraint):
    lo, hi = constraint.lower_bound, constraint.upper_bound
    if isinstance(lo, (int, float)) and lo == 0 and isinstance(hi, (int, float)) and hi == 1:
        return T.SigmoidTransform()
    return T.ComposeTransform([T.SigmoidTransform(), T.AffineTransform(lo, hi - lo)])


for reg in (biject_to, transform_to):
    reg.register(constraints._Real, _real)
    reg.register(constraints._GreaterThan, _greater_than)
    reg.register(constraints._GreaterThanEq, _greater_than)
    reg.register(constraints._LessThan, _less_than)
    reg.register(constraints._Interval, _interval)
    reg.register(constraints._HalfOpenInterval, _interval)
biject_to.register(constraints._IndependentConstraint, _independent_biject)
transform_to.register(constraints._IndependentConstraint, _independent_transform)
biject_to.register(constraints._Simplex, lambda c: T.StickBreakingTransform())
transform_to.register(constraints._Simplex, lambda c: T.SoftmaxTransform())
transform_to.register(constraints._LowerCholesky, lambda c: T.LowerCholeskyTransform())
for reg in (biject_to, transform_to):
    reg.register(constraints._CorrCholesky, lambda c: T.CorrCholeskyTransform())
    reg.register(constraints._Cat, lambda c, r=reg: T.CatTransform(
        [r(x) for x in c.cseq], c.dim, c.lengths))  # fmt: skip
    reg.register(constraints._Stack, lambda c, r=reg: T.StackTransform(
        [r(x) for x in c.cseq], c.dim))  # fmt: skip
transform_to.register(constraints._PositiveDefinite, lambda c: T.PositiveDefiniteTransform())
transform_to.register(constraints._PositiveSemidefinite, lambda c: T.PositiveDefiniteTransform())
