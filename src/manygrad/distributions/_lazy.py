"""``lazy_property`` (re-exported by ``distributions.utils``), in a module of its own so
that the distributions can use it without importing the transforms."""

from __future__ import annotations

from functools import update_wrapper


class lazy_property:  # noqa: N801 - PyTorch's name
    """A property computed on first access (with gradients enabled) and then stored on the
    instance, so later reads cost nothing."""

    def __init__(self, wrapped):
        self.wrapped = wrapped
        update_wrapper(self, wrapped)

    def __get__(self, instance, obj_type=None):
        if instance is None:
            return self
        from ..autograd import enable_grad

        with enable_grad():
            value = self.wrapped(instance)
        setattr(instance, self.wrapped.__name__, value)
        return value
