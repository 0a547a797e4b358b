"""``torch.nn.modules.utils``: turning an int (or a sequence) into a tuple of sizes, as
layers take ``kernel_size=3`` or ``(3, 5)``.

Example:
    >>> _pair(3)
    (3, 3)
"""

from __future__ import annotations

import collections.abc
from itertools import repeat

NAMES: tuple = ()  # NOTE: nothing to re-export; the helpers are defined here


def _ntuple(n: int, name: str = "parse"):
    def parse(x):
        if isinstance(x, collections.abc.Iterable) and not isinstance(x, str):
            return tuple(x)
        return tuple(repeat(x, n))

    parse.__name__ = name
    return parse


_single = _ntuple(1, "_single")
_pair = _ntuple(2, "_pair")
_triple = _ntuple(3, "_triple")
_quadruple = _ntuple(4, "_quadruple")


def _reverse_repeat_tuple(t, n: int) -> tuple:
    """Each element of ``t`` ``n`` times, in reverse order (the padding layout of ``F.pad``
    from a per-dim size): ``(1, 2), 2 -> (2, 2, 1, 1)``."""
    return tuple(x for x in reversed(t) for _ in range(n))
