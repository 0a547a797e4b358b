"""``DataLoader``: batches from a dataset, loaded by workers, copied ahead to the device."""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterator

import numpy as np

from manygrad import backend

from ._args import FROZEN, check_arguments
from ._workers import (
    LoopConfig,
    SampleError,
    WorkerPool,
    fetch,
    fetch_stream,
    is_exhausted,
    is_iterable,
)
from .collate import default_collate, default_convert
from .sampler import BatchSampler, RandomSampler, SequentialSampler
from .staging import make_stager

__all__ = ["DataLoader", "SkippedSamplesWarning"]


class SkippedSamplesWarning(UserWarning):
    """Samples that failed to load were skipped (``on_error="skip"``)."""


class DataLoader:
    """Iterate over a dataset in batches, optionally with workers and on a device.

    Args:
        dataset: a map-style ``Dataset`` or an ``IterableDataset``.
        batch_size: samples per batch (default 1); None yields single samples.
        shuffle: visit samples in a new random order each epoch (default False).
        sampler: the order of indices (excludes ``shuffle``).
        batch_sampler: yields lists of indices (excludes batch_size/shuffle/sampler).
        num_workers: worker threads or processes; 0 loads in the main thread (default 0).
        collate_fn: turns a list of samples into a batch (default: ``default_collate``).
        pin_memory: stage batches in page-locked host memory (CUDA only; default False).
        drop_last: drop the last incomplete batch (default False).
        timeout: seconds to wait for a worker's batch before failing (0: forever).
        worker_init_fn: called with the worker id in each worker at start.
        multiprocessing_context: start method name or ``multiprocessing`` context for
            process workers (default ``"forkserver"``, or ``"spawn"`` where that is
            missing); needs ``num_workers > 0``.
        generator: seed (int), ``numpy.random.Generator`` or ``mg.Generator`` for the
            shuffle and the workers' base seed, drawn anew at each ``iter(loader)`` (default
            None: both come from manygrad's CPU RNG). Worker ``i`` gets seed
            ``base_seed + i`` (``get_worker_info().seed``); each worker, thread or process,
            draws from its own ``random``, NumPy global and manygrad CPU generators, seeded
            as PyTorch seeds its worker processes (see docs/porting.md).
        prefetch_factor: batches queued ahead per worker (default 2).
        persistent_workers: keep workers alive between epochs (default False).
        pin_memory_device: accepted for PyTorch compatibility; ``device`` picks the device.
        in_order: with workers, False yields batches as they are loaded instead of in the
            sampler's order, and sends work to the workers that have room (default True).
        device: put batches on this device (``"cuda"``: pinned staging + copy stream).
        worker_type: ``"thread"`` (I/O-bound decoding; the default) or ``"process"``
            (decoding that holds the GIL; the dataset must be picklable, and scripts need
            ``if __name__ == "__main__":``, as with PyTorch's spawn workers). Giving
            ``multiprocessing_context`` without ``worker_type`` picks processes. Each
            thread worker gets its own shallow copy of the dataset, so that a
            ``worker_init_fn`` setting attributes on ``get_worker_info().dataset`` affects
            that worker only, as with PyTorch's process workers.
        seed: makes the shuffle and per-sample randomness (``mg.data.sample_rng()``)
            reproducible for any ``num_workers``; the epoch is mixed in.
        on_error: ``"raise"`` (default) or ``"skip"`` samples that fail to load; skipped
            ones are reported with a ``SkippedSamplesWarning`` at the end of the epoch.

    Example:
        >>> loader = mg.data.DataLoader(ds, batch_size=64, shuffle=True, num_workers=2,
        ...                             device="cuda", seed=0)
        >>> for x, y in loader: ...
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler=None, batch_sampler=None, num_workers: int = 0,
                 collate_fn: Callable | None = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable | None = None, multiprocessing_context=None,
                 generator=None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = "",
                 in_order: bool = True, device=None, worker_type: str | None = None,
                 seed: int | None = None, on_error: str = "raise"):  # fmt: skip
        multiprocessing_context, worker_type = check_arguments(
            batch_size, num_workers, prefetch_factor, persistent_workers, drop_last, timeout,
            multiprocessing_context, worker_type, on_error
        )  # fmt: skip
        self.dataset = dataset
        self.num_workers = num_workers
        if prefetch_factor is None and num_workers > 0:
            prefetch_factor = 2  # NOTE: None without workers, as PyTorch's attribute reads
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.in_order = in_order
        self.generator = generator
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.persistent_workers = persistent_workers
        self.worker_type = worker_type
        self.on_error = on_error
        self.device = backend.device(device) if device is not None else None
        if self.device is not None:
            backend.check_device(self.device)
        if seed is None and isinstance(generator, int):
            seed = generator
        self._seed_given = seed is not None
        shuffle_seed = seed
        if seed is None:
            g = backend.generator(backend.CPU)
            seed = int(backend.to_numpy(g.integers(0, 2**31, (), np.int64)))
        self.seed = int(seed)
        self.epoch = 0
        self.skipped: list[tuple[int, str]] = []
        self._iterable = is_iterable(dataset)
        if self._iterable:
            for name, value in (("shuffle", shuffle if shuffle else None), ("sampler", sampler),
                                ("batch_sampler", batch_sampler)):  # fmt: skip
                if value is not None:
                    raise ValueError(
                        f"DataLoader with IterableDataset: expected unspecified {name} option, "
                        f"but got {name}={value!r} (the dataset decides the order)"
                    )
        elif batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "DataLoader: batch_sampler option is mutually exclusive with batch_size, "
                    "shuffle, sampler, and drop_last"
                )
            batch_size, drop_last = None, False
        elif sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        self._own_sampler = sampler is None and batch_sampler is None and not self._iterable
        if not self._iterable and sampler is None:
            if shuffle:
                # NOTE: no seed: the sampler draws each epoch's order from the CPU RNG when
                # the epoch starts, so mg.manual_seed before an epoch fixes it, as in PyTorch
                g = generator if generator is not None else shuffle_seed
                sampler = RandomSampler(dataset, generator=g)
            else:
                sampler = SequentialSampler(dataset)
        if not self._iterable and batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self._auto = batch_size is not None or batch_sampler is not None
        self.collate_fn = collate_fn or (default_collate if self._auto else default_convert)
        self._use_get_batch = collate_fn is None and self._auto and on_error == "raise"
        self._pool = None
        self._finalizer = None
        self.stager = None
        self._iterable_len = None  # len(dataset) once len(loader) was asked, as PyTorch
        self._initialized = True

    def __setattr__(self, name, value):
        if name in FROZEN and getattr(self, "_initialized", False):
            raise ValueError(
                f"{name} attribute should not be set after {type(self).__name__} is "
                "initialized; create a new DataLoader instead"
            )
        super().__setattr__(name, value)

    def _index_sampler(self):
        if self.batch_sampler is not None:
            return self.batch_sampler
        return ([i] for i in self.sampler)  # batch_size=None: one sample at a time

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)  # TypeError if the stream has no length, as in PyTorch
            self._iterable_len = n
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self.batch_sampler) if self.batch_sampler is not None else len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch number that the next ``iter(loader)`` uses (e.g. when resuming)."""
        self.epoch = epoch

    def _config(self, base_seed: int) -> LoopConfig:
        return LoopConfig(self.dataset, self.collate_fn, self._auto, self.batch_size,
                          self.drop_last, self.seed, self.on_error == "skip",
                          self._use_get_batch, self.worker_init_fn, self.num_workers,
                          base_seed)  # fmt: skip

    def _base_seed(self, epoch: int) -> int:
        """This iteration's base seed for the workers, drawn from ``generator`` (or the
        ``seed`` and the epoch, or manygrad's CPU RNG), as PyTorch draws one per iterator."""
        g = self.generator
        if g is None and self._seed_given:
            g = self.seed
        if g is None:
            g = backend.generator(backend.CPU)
            return int(backend.to_numpy(g.integers(0, 2**62, (), np.int64)))
        if isinstance(g, np.random.Generator):
            return int(g.integers(0, 2**62))
        if isinstance(g, (int, np.integer)):
            return int(np.random.default_rng([int(g) & (2**63 - 1), epoch, 1]).integers(2**62))
        return int(g) % 2**62  # a manygrad (or torch-like) Generator: a draw from its stream

    def _get_pool(self, base_seed: int) -> WorkerPool:
        if self._pool is not None and not self._pool.closed:
            return self._pool
        pool = WorkerPool(self._config(base_seed), self.num_workers, self.worker_type,
                          self.multiprocessing_context)  # fmt: skip
        if self.persistent_workers:
            self._pool = pool
            self._finalizer = weakref.finalize(self, pool.shutdown)
        return pool

    def shutdown(self) -> None:
        """Stop persistent workers now (they also stop when the loader is collected)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if self._finalizer is not None:  # NOTE: it would keep the closed pool alive
            self._finalizer.detach()
            self._finalizer = None

    def __iter__(self) -> Iterator:
        epoch = self.epoch
        self.epoch += 1
        if self._own_sampler and hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
        if self.stager is None:
            self.stager = make_stager(self.device, self.pin_memory)
        if self.pin_memory and self.device is None and not backend.cuda_available():
            warnings.warn(
                "'pin_memory' argument is set as true but no accelerator is found, then device "
                "pinned memory won't be used.",
                UserWarning,
                stacklevel=2,
            )
        return _LoaderIter(self, epoch)


class _LoaderIter:
    """One epoch: host batches from workers (or inline), staged one batch ahead."""

    def __init__(self, loader: DataLoader, epoch: int):
        self.loader = loader
        self.epoch = epoch
        self.stager = loader.stager
        self.skipped: list[tuple[int, str]] = []
        self.staged = None
        self.finished = False
        self.pool = None
        self._finalizer = None
        self.ahead = loader.device is not None and loader.device.type != "cpu"
        self.yielded = 0
        self.iterable_len = loader._iterable_len  # NOTE: as len(loader) stood at iter()
        # NOTE: drawn for every iterator, with or without workers, so that the number of
        # workers does not change what the RNG gives afterwards
        base_seed = loader._base_seed(epoch)
        if loader.num_workers == 0:
            if loader._iterable:
                self.stream = iter(loader.dataset)
            else:
                self.indices = iter(loader._index_sampler())
            return
        self.pool = loader._get_pool(base_seed)
        if not loader.persistent_workers:
            self._finalizer = weakref.finalize(self, self.pool.shutdown)
        self.first_tid = self.pool.next_tid
        self.pool.forget_before(self.first_tid)
        self.pending: list[int] = []
        self.active = list(range(loader.num_workers))
        self.rr = 0  # NOTE: worker b % n loads batch b (in order), as in PyTorch
        self.routes: dict[int, int] = {}
        self.load = [0] * loader.num_workers  # tasks sent to each worker and not yet taken
        self.indices = None if loader._iterable else iter(loader._index_sampler())
        for _ in range(loader.num_workers * loader.prefetch_factor):
            self._submit()

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self.loader)

    # ---------------------------------------------------------------- host batches
    def _submit(self) -> None:
        w = self._next_worker()
        if w is None:
            return
        idx = None
        if not self.loader._iterable:
            idx = next(self.indices, None)
            if idx is None:
                return
        tid = self.pool.submit(idx, self.epoch, worker=w)
        self.routes[tid] = w
        self.load[w] += 1
        self.pending.append(tid)

    def _next_worker(self) -> int | None:
        """The next active worker in turn; with ``in_order=False`` the next one that has
        fewer tasks than its share of ``num_workers * prefetch_factor`` (PyTorch's rule)."""
        ld = self.loader
        if not self.active:
            return None
        room = ld.num_workers * ld.prefetch_factor // len(self.active)
        for _ in range(ld.num_workers):
            w = self.rr % ld.num_workers
            self.rr += 1
            if w in self.active and (ld.in_order or self.load[w] < room):
                return w
        return None

    def _host_batch(self, block: bool = True):
        """The next host batch; None when not ready (block=False); raises StopIteration."""
        ld = self.loader
        if self.pool is None:
            if not block:
                return None
            return self._inline()
        while True:
            if not self.pending:
                raise StopIteration
            if ld.in_order:
                tid = self.pending[0]
                if not block and not self.pool.poll(tid):
                    return None
                out, err = self.pool.get(tid, ld.timeout)
            else:  # NOTE: whichever batch is ready first
                if not block and self.pool.ready(self.pending) is None:
                    return None
                tid, out, err = self.pool.get_any(self.pending, ld.timeout)
            self.pending.remove(tid)
            w = self.routes.pop(tid)
            self.load[w] -= 1
            if err is not None:
                self.close()
                err.reraise(self.pool.kind)
            batch, skipped = out
            if is_exhausted(batch):
                if w in self.active:
                    self.active.remove(w)
                self._submit()  # NOTE: to another worker, as PyTorch does
                continue
            self._submit()
            self.skipped += skipped
            if batch is not None:
                return batch

    def _inline(self):
        ld = self.loader
        while True:
            if ld._iterable:
                batch, _ = fetch_stream(self.stream, ld.batch_size, ld.collate_fn, ld._auto,
                                        ld.drop_last)  # fmt: skip
                if is_exhausted(batch):
                    raise StopIteration
                return batch
            idx = next(self.indices)
            try:
                batch, skipped = fetch(ld.dataset, idx, ld.collate_fn, ld._auto, ld.seed,
                                       self.epoch, ld.on_error == "skip", ld._use_get_batch)  # fmt: skip
            except SampleError as e:
                e.exc.add_note(f"(DataLoader: while loading sample index {e.index})")
                raise e.exc from None
            self.skipped += skipped
            if batch is not None:
                return batch

    # ---------------------------------------------------------------- device staging
    def __next__(self):
        batch = self._next_batch()
        self.yielded += 1
        n = self.iterable_len
        if n is not None and self.yielded > n:
            more = (
                " For multiprocessing data-loading, this could be caused by not properly "
                "configuring the IterableDataset replica at each worker."
                if self.loader.num_workers > 0
                else ""
            )
            warnings.warn(
                f"Length of IterableDataset {self.loader.dataset} was reported to be {n} (when "
                f"accessing len(dataloader)), but {self.yielded} samples have been fetched.{more}",
                UserWarning,
                stacklevel=2,
            )
        return batch

    def _next_batch(self):
        if self.finished:
            raise StopIteration
        try:
            if not self.ahead:
                return self.stager.ready(self.stager.stage(self._host_batch()))
            if self.staged is None:
                self.staged = self.stager.stage(self._host_batch())
            current, self.staged = self.staged, None
            try:  # start copying the next batch now if a worker has it ready
                nxt = self._host_batch(block=False)
            except StopIteration:
                nxt = None
            if nxt is not None:
                self.staged = self.stager.stage(nxt)
            return self.stager.ready(current)
        except StopIteration:
            self._end_epoch()
            raise
        except BaseException:  # errors and KeyboardInterrupt: stop the workers first
            self.close()
            raise

    def _end_epoch(self) -> None:
        self.finished = True
        self.loader.skipped = list(self.skipped)
        self.close()
        if self.skipped:
            shown = "; ".join(f"index {i}: {msg}" for i, msg in self.skipped[:10])
            more = f"; ... and {len(self.skipped) - 10} more" if len(self.skipped) > 10 else ""
            warnings.warn(
                f"DataLoader skipped {len(self.skipped)} sample(s) that failed to load in epoch "
                f"{self.epoch} (on_error='skip'): {shown}{more}. The full list is in "
                "loader.skipped",
                SkippedSamplesWarning,
                stacklevel=3,
            )

    def close(self) -> None:
        """Stop this epoch's workers (persistent workers stay up for the next epoch)."""
        self.finished = True
        if self.pool is not None and not self.loader.persistent_workers:
            self.pool.shutdown()
