"""More of ``Tensor``'s methods, kept apart so that ``tensor.py`` stays readable.

``Tensor`` derives from ``TensorMethods``; every method here forwards to the functional op
of the same name in ``manygrad.ops`` (so ``x.sort()`` and ``mg.sort(x)`` are the same code).
"""

from __future__ import annotations

from .compat.tensor_methods import CompatMethods  # type, stride, __format__, ...


class TensorMethods(CompatMethods):
    """Methods of ``Tensor`` that forward to ``manygrad.ops``."""

    __slots__ = ()
