"""``torch.multiprocessing``: Python's ``multiprocessing`` plus PyTorch's additions.

Tensors cross process boundaries by pickling (a copy); for Hogwild training, call
``model.share_memory()`` before forking workers (the default start method on Linux):
the CPU parameters then live in shared memory, and every process updates the same numbers.

Example:
    >>> import torch.multiprocessing as mp
    >>> model.share_memory()
    >>> ps = [mp.Process(target=train, args=(model,)) for _ in range(4)]
"""

from __future__ import annotations

import multiprocessing as _mp

_strategy = ["file_descriptor"]


def get_all_sharing_strategies() -> set:
    return {"file_descriptor", "file_system"}


def get_sharing_strategy() -> str:
    return _strategy[0]


def set_sharing_strategy(new_strategy: str) -> None:
    """Accepted for PyTorch compatibility (shared tensors use anonymous shared memory)."""
    if new_strategy not in get_all_sharing_strategies():
        raise ValueError(f"set_sharing_strategy: expected one of "
                         f"{sorted(get_all_sharing_strategies())}, got {new_strategy!r}")  # fmt: skip
    _strategy[0] = new_strategy


def _entry(fn, i, args):
    fn(i, *args)


class ProcessContext:
    """The processes started by ``spawn(..., join=False)``."""

    def __init__(self, processes):
        self.processes = processes

    def pids(self) -> list:
        return [p.pid for p in self.processes]

    def join(self, timeout=None) -> bool:
        for p in self.processes:
            p.join(timeout)
        failed = [p for p in self.processes if p.exitcode not in (0, None)]
        if failed:
            raise RuntimeError(f"spawn: process {self.processes.index(failed[0])} exited with "
                               f"code {failed[0].exitcode}")  # fmt: skip
        return all(p.exitcode is not None for p in self.processes)


def start_processes(fn, args=(), nprocs: int = 1, join: bool = True, daemon: bool = False,
                    start_method: str = "spawn"):  # fmt: skip
    """Run ``fn(i, *args)`` in ``nprocs`` new processes (``i`` = 0..nprocs-1)."""
    ctx = _mp.get_context(start_method)
    procs = [ctx.Process(target=_entry, args=(fn, i, args), daemon=daemon) for i in range(nprocs)]
    for p in procs:
        p.start()
    context = ProcessContext(procs)
    if not join:
        return context
    context.join()
    return None


def spawn(fn, args=(), nprocs: int = 1, join: bool = True, daemon: bool = False,
          start_method: str = "spawn"):  # fmt: skip
    """``torch.multiprocessing.spawn``: ``fn(i, *args)`` in ``nprocs`` fresh processes."""
    return start_processes(fn, args, nprocs, join, daemon, start_method)


def __getattr__(name: str):
    return getattr(_mp, name)  # Process, Queue, Pool, set_start_method, cpu_count, ...


def __dir__():
    return sorted(set(dir(_mp)) | set(globals()))
