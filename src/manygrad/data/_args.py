"""The checks of ``DataLoader``'s arguments, with PyTorch's errors."""

from __future__ import annotations

from ._workers import _context

__all__ = ["FROZEN", "check_arguments"]


def check_arguments(batch_size, num_workers, prefetch_factor, persistent_workers, drop_last,
                    timeout, multiprocessing_context, worker_type, on_error):  # fmt: skip
    """Raise PyTorch's error for arguments that do not go together; returns the
    multiprocessing context (a start method's name becomes its context) and the worker
    type (processes where a context is given without a worker type)."""
    if num_workers < 0:
        raise ValueError("DataLoader: num_workers option should be non-negative")
    if prefetch_factor is not None and num_workers == 0:
        raise ValueError("DataLoader: prefetch_factor needs num_workers > 0")
    # NOTE: PyTorch takes prefetch_factor=0 and then loads nothing at all; refused here
    if prefetch_factor is not None and prefetch_factor < 1:
        raise ValueError(
            f"DataLoader: prefetch_factor option should be positive (batches queued per "
            f"worker), got {prefetch_factor}"
        )
    if persistent_workers and num_workers == 0:
        raise ValueError("DataLoader: persistent_workers option needs num_workers > 0")
    if batch_size is None and drop_last:
        raise ValueError(
            "DataLoader: batch_size=None option disables auto-batching and is mutually "
            "exclusive with drop_last"
        )
    multiprocessing_context = _check_context(multiprocessing_context, num_workers)
    if worker_type is None:
        worker_type = "thread" if multiprocessing_context is None else "process"
    if worker_type not in ("thread", "process"):
        raise ValueError(
            f"DataLoader: worker_type must be 'thread' or 'process', got {worker_type!r}"
        )
    if on_error not in ("raise", "skip"):
        raise ValueError(f"DataLoader: on_error must be 'raise' or 'skip', got {on_error!r}")
    if timeout < 0:
        raise ValueError("DataLoader: timeout option should be non-negative")
    return multiprocessing_context, worker_type


# The attributes that PyTorch's DataLoader refuses to change once it is built
FROZEN = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers")


def _check_context(ctx, num_workers: int):
    """``multiprocessing_context`` checked as PyTorch checks it: a start method's name
    becomes its context; it needs workers."""
    if ctx is None:
        return None
    import multiprocessing as mp

    if num_workers == 0:
        raise ValueError(
            "DataLoader: multiprocessing_context can only be used with multi-process loading "
            f"(num_workers > 0), but got num_workers={num_workers}"
        )
    if isinstance(ctx, str):
        methods = mp.get_all_start_methods()
        if ctx not in methods:
            raise ValueError(
                "DataLoader: multiprocessing_context option should specify a valid start "
                f"method in {methods!r}, but got multiprocessing_context={ctx!r}"
            )
        return _context(ctx)
    if not isinstance(ctx, mp.context.BaseContext):
        raise TypeError(
            "DataLoader: multiprocessing_context option should be a valid context object or a "
            f"string specifying the start method, but got multiprocessing_context={ctx!r}"
        )
    return ctx
