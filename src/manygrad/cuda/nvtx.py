"""``torch.cuda.nvtx``: named ranges that GPU profilers (Nsight Systems) show on their
timeline. On a GPU they go to NVTX through CuPy; elsewhere they cost nothing and do nothing,
so profiling annotations can stay in code that runs on the CPU.

Example:
    >>> with mg.cuda.nvtx.range("forward"):
    ...     y = model(x)
"""

from __future__ import annotations

import contextlib

from .. import backend

_ids = {"next": 0}


def _nvtx():
    if not backend.cuda_available():
        return None
    nvtx = getattr(backend.cuda_module().cuda, "nvtx", None)  # NOTE: None: built without
    if nvtx is None:
        return None
    return nvtx if getattr(nvtx, "available", True) else None


def range_push(msg: str) -> int:
    """Open a nested range named ``msg``; returns its depth (0-based), as PyTorch does."""
    nv = _nvtx()
    if nv is not None:
        nv.RangePush(str(msg))
    _ids["next"] += 1
    return _ids["next"] - 1


def range_pop() -> int:
    """Close the innermost range opened by ``range_push``; returns the depth left."""
    nv = _nvtx()
    if nv is not None:
        nv.RangePop()
    _ids["next"] = max(_ids["next"] - 1, 0)
    return _ids["next"]


_open: dict[int, str] = {}


def range_start(msg: str) -> int:
    """Open a range that need not nest (``range_end(id)`` closes it); returns its id."""
    rid = len(_open) + 1
    while rid in _open:
        rid += 1
    _open[rid] = str(msg)
    range_push(msg)
    return rid


def range_end(range_id: int) -> None:
    if _open.pop(range_id, None) is not None:
        range_pop()


def mark(msg: str) -> None:
    """An instantaneous event named ``msg``."""
    nv = _nvtx()
    if nv is not None:
        nv.Mark(str(msg))


class range(contextlib.ContextDecorator):  # noqa: A001, N801 - PyTorch's name
    """``with mg.cuda.nvtx.range("step {}", i):``, or a decorator: a range around a block.
    ``msg`` is formatted with ``args`` and ``kwargs``."""

    def __init__(self, msg: str, *args, **kwargs):
        self.msg = msg.format(*args, **kwargs) if (args or kwargs) else msg

    def __enter__(self):
        range_push(self.msg)
        return self

    def __exit__(self, *exc):
        range_pop()
        return False


__all__ = ["range_push", "range_pop", "range_start", "range_end", "mark", "range"]
