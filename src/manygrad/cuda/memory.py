"""``torch.cuda.memory``: the GPU memory queries (``memory_allocated``, ``memory_stats``,
...), their deprecated ``*_cached`` names, and the allocator-history hooks that memory
debugging scripts call (``_record_memory_history``, ``_snapshot``, ``_dump_snapshot``).

NOTE: manygrad allocates through CuPy's memory pool, which keeps no per-allocation history:
a snapshot holds PyTorch's top-level layout (``segments``, ``device_traces``) with no
entries, so that scripts and viewers that read it run unchanged.

Example:
    >>> mg.cuda.memory._record_memory_history(max_entries=100000)
    >>> train_step()
    >>> mg.cuda.memory._dump_snapshot("snapshot.pickle")
"""

from __future__ import annotations

import pickle
import sys
import warnings

from . import (
    _need_gpu,
    _pool,
    device_count,
    empty_cache,
    is_initialized,
    max_memory_allocated,
    max_memory_reserved,
    mem_get_info,
    memory_allocated,
    memory_reserved,
    memory_stats,
    memory_summary,
    reset_max_memory_allocated,
    reset_peak_memory_stats,
    set_per_process_memory_fraction,
)

_history: dict = {"enabled": None, "max_entries": 0}


def memory_cached(device=None) -> int:
    """Deprecated name of ``memory_reserved`` (warns as PyTorch does)."""
    warnings.warn(
        "`torch.cuda.memory_cached` has been renamed to `torch.cuda.memory_reserved`",
        FutureWarning,
        stacklevel=2,
    )
    return memory_reserved(device)


def max_memory_cached(device=None) -> int:
    """Deprecated name of ``max_memory_reserved`` (warns as PyTorch does)."""
    warnings.warn(
        "`torch.cuda.max_memory_cached` has been renamed to `torch.cuda.max_memory_reserved`",
        FutureWarning,
        stacklevel=2,
    )
    return max_memory_reserved(device)


def reset_max_memory_cached(device=None) -> None:
    """Deprecated: resets every peak statistic, as ``reset_peak_memory_stats``."""
    warnings.warn(
        "torch.cuda.reset_max_memory_cached now calls torch.cuda.reset_peak_memory_stats, "
        "which resets /all/ peak memory stats.",
        FutureWarning,
        stacklevel=2,
    )
    reset_peak_memory_stats(device)


def reset_accumulated_memory_stats(device=None) -> None:
    """Reset the allocator's running totals. CuPy's pool keeps none (its counters are the
    current and peak sizes), so there is nothing to reset."""


def memory_stats_as_nested_dict(device=None) -> dict:
    """``memory_stats`` as nested dicts (``{"allocated_bytes": {"all": {"current": n}}}``);
    ``{}`` before the GPU is initialised, as PyTorch's."""
    if not is_initialized():
        return {}
    nested: dict = {}
    for key, value in memory_stats(device).items():
        *path, last = key.split(".")
        node = nested
        for p in path:
            node = node.setdefault(p, {})
        node[last] = value
    return nested


def get_per_process_memory_fraction(device=None) -> float:
    """The share of the GPU's memory the pool may use (``set_per_process_memory_fraction``;
    1.0 when no limit is set)."""
    _need_gpu("get_per_process_memory_fraction")
    limit = int(_pool().get_limit())
    return 1.0 if limit == 0 else limit / mem_get_info(device)[1]


def memory_snapshot() -> list:
    """The allocator's segments (none are listed: see the module's note)."""
    return _snapshot()["segments"]


def _record_memory_history(enabled: str | bool | None = "all", context: str | None = "all",
                           stacks: str = "all", max_entries: int = sys.maxsize, device=None,
                           clear_history: bool = False, **kwargs) -> None:  # fmt: skip
    """Start (``enabled="all"``/``"state"``) or stop (``enabled=None``) recording the
    allocator's history. Accepted for memory-debugging scripts; CuPy's pool records none."""
    if enabled is True:
        enabled = "all"
    if enabled not in (None, False, "all", "state"):
        raise ValueError(
            f'_record_memory_history: enabled must be None, "state" or "all", got {enabled!r}'
        )
    _history["enabled"] = enabled or None
    _history["max_entries"] = int(max_entries)


def _snapshot(device=None, augment_with_fx_traces: bool = False) -> dict:
    """The allocator's state in PyTorch's snapshot layout: ``{"segments": [...],
    "device_traces": [[...] per GPU]}``."""
    return {"segments": [], "device_traces": [[] for _ in range(max(device_count(), 1))]}


def _dump_snapshot(filename: str = "dump_snapshot.pickle",
                   augment_with_fx_traces: bool = False) -> None:  # fmt: skip
    """Write ``_snapshot()`` to ``filename`` as a pickle (what PyTorch's memory viewer
    reads)."""
    with open(filename, "wb") as f:
        pickle.dump(_snapshot(augment_with_fx_traces=augment_with_fx_traces), f)


__all__ = [
    "empty_cache", "memory_allocated", "max_memory_allocated", "memory_reserved",
    "max_memory_reserved", "memory_cached", "max_memory_cached", "memory_stats",
    "memory_stats_as_nested_dict", "memory_summary", "memory_snapshot", "mem_get_info",
    "reset_peak_memory_stats", "reset_max_memory_allocated", "reset_max_memory_cached",
    "reset_accumulated_memory_stats", "set_per_process_memory_fraction",
    "get_per_process_memory_fraction",
]  # fmt: skip
