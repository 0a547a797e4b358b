"""``torch._dynamo``: the entry points of PyTorch's graph capture that programs call
directly. manygrad runs eagerly (``torch.compile`` returns the model unchanged, see
``manygrad.compiler``), so these behave as PyTorch's do when nothing is compiled:
``disable`` and ``optimize`` leave functions as they are, ``is_compiling`` is False, and the
``mark_*`` functions record their dims on the tensor (as PyTorch does) for code that reads
them back. ``config`` holds the settings (``torch._dynamo.config``).

Example:
    >>> import torch._dynamo
    >>> torch._dynamo.config.suppress_errors = True
    >>> torch._dynamo.mark_dynamic(x, 0)
    >>> torch._dynamo.reset()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import compiler
from . import torch_dynamo_config as config

disable = compiler.disable
is_compiling = compiler.is_compiling
is_dynamo_compiling = compiler.is_dynamo_compiling
reset = compiler.reset
allow_in_graph = compiler.allow_in_graph
assume_constant_result = compiler.assume_constant_result

# the backends ``torch.compile(backend=...)`` names in PyTorch's list (all run eagerly here)
_BACKENDS = ["cudagraphs", "inductor"]


def _dims(index, what: str) -> list[int]:
    dims = [index] if isinstance(index, int) else list(index)
    if not all(isinstance(d, int) for d in dims):
        raise TypeError(f"{what}: index must be an int or a list of ints, got {index!r}")
    return dims


def _record(t, attr: str, dims: list[int]) -> None:
    seen = getattr(t, attr, None)
    if seen is None:
        seen = set()
        setattr(t, attr, seen)
    seen.update(dims)


def mark_dynamic(t, index: int | list | tuple, *, hint_override: int | None = None,
                 min: int | None = None, max: int | None = None,  # noqa: A002
                 specialize_on: list | None = None) -> None:  # fmt: skip
    """Mark dims ``index`` of ``t`` as dynamic (recorded in ``t._dynamo_dynamic_indices``;
    manygrad never specialises on shapes, so nothing else changes).

    Example: ``torch._dynamo.mark_dynamic(batch, 0)``
    """
    _record(t, "_dynamo_dynamic_indices", _dims(index, "mark_dynamic"))


def maybe_mark_dynamic(t, index: int | list | tuple) -> None:
    """Mark dims ``index`` of ``t`` as dynamic if the compiler can (a hint only)."""
    _record(t, "_dynamo_weak_dynamic_indices", _dims(index, "maybe_mark_dynamic"))


def mark_static(t, index: int | list | tuple | None = None) -> None:
    """Mark dims ``index`` of ``t`` (or a whole module, with no index) as static."""
    if index is None:
        t._dynamo_marked_static = True
        return
    _record(t, "_dynamo_static_indices", _dims(index, "mark_static"))


def mark_static_address(t, guard: bool = False) -> None:
    """Mark ``t``'s storage as one that stays put between calls (CUDA graphs keep it)."""
    t._dynamo_static_input_type = "guarded" if guard else "unguarded"


def disallow_in_graph(fn: Callable) -> Callable:
    """``fn`` unchanged: manygrad captures no graph to keep it out of."""
    return fn


def graph_break(msg: str = "") -> None:
    """Nothing to break: manygrad captures no graph."""


def optimize(*args: Any, **kwargs: Any):
    """PyTorch's older ``torch._dynamo.optimize(backend)(fn)``: a decorator returning
    ``fn`` unchanged, as ``torch.compile`` does on manygrad."""
    return lambda fn: fn


def run(fn: Callable | None = None) -> Any:
    """``fn`` unchanged (PyTorch runs an optimized function without compiling more)."""
    return fn if fn is not None else (lambda f: f)


def list_backends(exclude_tags=("debug", "experimental")) -> list[str]:
    """The backend names programs pass to ``torch.compile``; on manygrad each runs the
    model eagerly."""
    return list(_BACKENDS)


__all__ = [
    "config", "disable", "is_compiling", "is_dynamo_compiling", "reset", "allow_in_graph",
    "assume_constant_result", "mark_dynamic", "maybe_mark_dynamic", "mark_static",
    "mark_static_address", "disallow_in_graph", "graph_break", "optimize", "run",
    "list_backends",
]  # fmt: skip
