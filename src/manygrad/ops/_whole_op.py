"""Public ops whose Function nodes are not the op that was called: a transposed
convolution runs as a convolution of a padded input, a 3-d convolution as 2-d ones. An
observer that must see the op the user called (``FlopCounterMode``) registers here; the
decorated functions then report each call whole, and the observer is told to ignore the
nodes they run inside.

NOTE: ``watchers`` is empty unless such an observer is open: one list check per call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

watchers: list = []


def whole_op(name: str) -> Callable:
    """Decorate a public op so that each watcher gets ``enter()`` before it runs,
    ``exit()`` after, and then ``whole_op(name, args, kwargs, out)``."""

    def deco(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if not watchers:
                return fn(*args, **kwargs)
            ws = list(watchers)
            for w in ws:
                w.enter()
            try:
                out = fn(*args, **kwargs)
            finally:
                for w in ws:
                    w.exit()
            for w in ws:
                w.whole_op(name, args, kwargs, out)
            return out

        return wrapper

    return deco
