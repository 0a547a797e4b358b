"""Loader workers: threads or processes running one loop, fed through queues.

Every worker has its own request queue, so task ``t`` always goes to worker ``t % n``;
all answer on one result queue and the main side puts answers back in task order. The
same loop serves both kinds (``queue.Queue`` + threads, ``multiprocessing`` queues +
processes), so determinism and error handling are the same for both.
"""

from __future__ import annotations

import copy
import os
import queue
import signal
import threading
import time
import traceback

from . import _worker_rng
from .dataset import IterableDataset, Subset, WorkerInfo, _clear_sample, _local, _set_sample

EXHAUSTED = "__exhausted__"  # an iterable worker's stream ended


def is_exhausted(batch) -> bool:
    return isinstance(batch, str) and batch == EXHAUSTED  # NOTE: == : it crossed a pipe


class RemoteError:
    """An exception raised in a worker, sent back as text (always picklable)."""

    def __init__(self, exc: BaseException, where: str, worker: int | None, tb: str):
        self.type = type(exc)
        self.message = str(exc)
        self.where = where
        self.worker = worker
        self.tb = tb

    def __getstate__(self):
        d = dict(self.__dict__)
        try:  # NOTE: exception classes defined in odd places may not pickle by reference
            import pickle

            pickle.dumps(self.type)
        except Exception:
            d["type"] = RuntimeError
        return d

    def reraise(self, kind: str = "process"):
        """Raise the worker's exception type again in the main process, with PyTorch's
        ``Caught ValueError in DataLoader worker process 0.`` heading and the worker's
        traceback."""
        name = self.type.__name__
        who = (
            "the main process"
            if self.worker is None
            else f"DataLoader worker process {self.worker}"
        )
        tb = self.tb if self.tb.startswith("Traceback") else f"Traceback:\n{self.tb}"
        msg = (
            f"Caught {name} in {who}.\nOriginal {tb.rstrip()}\n"
            f"[manygrad: {name}: {self.message}; {self.where}"
            + ("" if self.worker is None else f", in worker {self.worker} ({kind})")
            + "]"
        )
        if self.type is KeyError:
            msg = _KeyErrorMessage(msg)
        try:
            err = self.type(msg)
        except Exception:
            err = RuntimeError(msg)
        raise err


class _KeyErrorMessage(str):
    """A message whose repr keeps its line breaks (``KeyError`` shows the repr)."""

    def __repr__(self):
        return str(self)


class SampleError(Exception):
    """Carries the index of the sample whose loading failed."""

    def __init__(self, index, exc: BaseException, tb: str):
        super().__init__(str(exc))
        self.index = index
        self.exc = exc
        self.tb = tb


def fetch(dataset, indices, collate_fn, auto, seed, epoch, skip, use_get_batch):
    """Load and collate one batch: returns (batch or None, [(index, error text), ...])."""
    if use_get_batch:
        get_batch = getattr(dataset, "get_batch", None)
        if get_batch is not None:
            out = get_batch(indices)
            if out is not None:
                return out, []
    samples, skipped = [], []
    getitems = _batch_reader(dataset) if auto and not skip else None
    if getitems is not None:  # the dataset reads a batch itself, as PyTorch's fetcher asks
        _set_sample(seed, epoch, indices[0])
        try:
            samples = getitems(list(indices))
        except Exception as e:
            raise SampleError(indices, e, traceback.format_exc()) from e
        finally:
            _clear_sample()
        return collate_fn(samples), []
    try:
        for i in indices:
            _set_sample(seed, epoch, i)
            try:
                samples.append(dataset[i])
            except Exception as e:
                if not skip:
                    raise SampleError(i, e, traceback.format_exc()) from e
                skipped.append((i, f"{type(e).__name__}: {e}"))
    finally:
        _clear_sample()
    if not samples:
        return None, skipped
    return (collate_fn(samples) if auto else collate_fn(samples[0])), skipped


def _batch_reader(dataset):
    """The dataset's ``__getitems__``, or None where it would only call ``__getitem__`` per
    index (a plain ``Subset`` or ``StackDataset`` of datasets without one): then each sample
    is read with its own ``sample_rng``."""
    from .weighted import StackDataset

    fn = getattr(dataset, "__getitems__", None)
    if not callable(fn):
        return None
    t = type(dataset)
    if t is Subset and not _batch_reader(dataset.dataset):
        return None
    if t is StackDataset:
        parts = dataset.datasets
        parts = parts.values() if isinstance(parts, dict) else parts
        if not any(_batch_reader(d) for d in parts):
            return None
    return fn


def fetch_stream(it, batch_size, collate_fn, auto, drop_last=False):
    """The next batch of an IterableDataset's iterator, or EXHAUSTED (also for a short
    last batch with ``drop_last``)."""
    if not auto:  # NOTE: collate_fn is default_convert unless the user gave one
        try:
            sample = next(it)
        except StopIteration:
            return EXHAUSTED, []
        return collate_fn(sample), []
    samples = []
    for s in it:
        samples.append(s)
        if len(samples) == batch_size:
            break
    if not samples or (drop_last and len(samples) < batch_size):
        return EXHAUSTED, []
    return collate_fn(samples), []


class LoopConfig:
    """What a worker needs to load batches (pickled once per process worker)."""

    def __init__(self, dataset, collate_fn, auto, batch_size, drop_last, seed, skip,
                 use_get_batch, worker_init_fn, num_workers, base_seed=0):  # fmt: skip
        self.dataset = dataset
        self.collate_fn = collate_fn
        self.auto = auto
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.seed = seed
        self.skip = skip
        self.use_get_batch = use_get_batch
        self.worker_init_fn = worker_init_fn
        self.num_workers = num_workers
        self.base_seed = base_seed


def worker_loop(wid, cfg: LoopConfig, requests, results, done, is_process):
    """Serve requests ``(task_id, indices or None, epoch)`` until told to stop."""
    if is_process:
        _worker_rng.seed_process(cfg.base_seed, wid)
        return _serve(wid, cfg, requests, results, done, True)
    _worker_rng.enter_thread(cfg.base_seed, wid)  # NOTE: its own random streams, as a process
    try:
        _serve(wid, cfg, requests, results, done, False)
    finally:
        _worker_rng.leave_thread()


def _serve(wid, cfg: LoopConfig, requests, results, done, is_process):
    wseed = cfg.base_seed + wid
    dataset = cfg.dataset
    if is_process:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # NOTE: the main process handles Ctrl-C
        import multiprocessing as mp

        parent = mp.parent_process()
    else:
        parent = None
        # NOTE: a shallow copy per thread, so that attributes a worker_init_fn or __iter__
        # sets on the dataset stay with that worker, as each process worker has its own
        try:
            dataset = copy.copy(dataset)
        except Exception:  # an object that refuses copying is shared, as before
            dataset = cfg.dataset
    _local.worker = WorkerInfo(wid, cfg.num_workers, wseed, dataset)
    init_error = None
    if cfg.worker_init_fn is not None:
        try:
            cfg.worker_init_fn(wid)
        except Exception as e:
            init_error = RemoteError(e, "in worker_init_fn", wid, traceback.format_exc())
    stream, stream_epoch = None, None
    while True:
        try:
            task = requests.get(timeout=0.5)
        except queue.Empty:
            if done.is_set() or (parent is not None and not parent.is_alive()):
                break
            continue
        if task is None or done.is_set():
            break
        tid, indices, epoch = task
        if init_error is not None:
            results.put((tid, None, init_error))
            continue
        try:
            if indices is None:  # the next batch of this worker's share of a stream
                if stream_epoch != epoch:
                    stream, stream_epoch = iter(dataset), epoch
                out = fetch_stream(stream, cfg.batch_size, cfg.collate_fn, cfg.auto,
                                   cfg.drop_last)  # fmt: skip
            else:
                out = fetch(dataset, indices, cfg.collate_fn, cfg.auto, cfg.seed, epoch,
                            cfg.skip, cfg.use_get_batch)  # fmt: skip
            results.put((tid, out, None))
        except SampleError as e:
            err = RemoteError(e.exc, f"loading sample index {e.index}", wid, e.tb)
            results.put((tid, None, err))
        except Exception as e:
            where = "collating a batch" if indices is None else f"the batch of indices {indices}"
            results.put((tid, None, RemoteError(e, where, wid, traceback.format_exc())))
    if is_process:
        results.cancel_join_thread()


def _context(name: str | None):
    """``name``'s multiprocessing context; by default forkserver (spawn where missing).

    Both start workers from a clean interpreter, so datasets must be picklable and scripts
    need ``if __name__ == "__main__":``; forkserver then forks each worker from a server
    that has already imported manygrad and NumPy, which makes worker start-up fast.
    """
    import multiprocessing as mp

    if name is None:
        name = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(name)
    if name == "forkserver":
        ctx.set_forkserver_preload(["numpy", "manygrad", "manygrad.data"])
    return ctx


class WorkerPool:
    """``n`` workers (threads or processes) and the queues between them and the loader."""

    def __init__(self, cfg: LoopConfig, n: int, kind: str, mp_context=None):
        self.n, self.kind = n, kind
        self.next_tid = 0
        self.min_tid = 0
        self.buffer: dict = {}
        self.closed = False
        if kind == "process":
            ctx = mp_context if mp_context is not None and not isinstance(mp_context, str) \
                else _context(mp_context)  # fmt: skip
            self.results = ctx.Queue()
            self.requests = [ctx.Queue() for _ in range(n)]
            self.done = ctx.Event()
            self.workers = [
                ctx.Process(
                    target=worker_loop,
                    args=(w, cfg, self.requests[w], self.results, self.done, True),
                    daemon=True,
                    name=f"manygrad-data-{w}",
                )  # fmt: skip
                for w in range(n)
            ]
        else:
            self.results = queue.Queue()
            self.requests = [queue.Queue() for _ in range(n)]
            self.done = threading.Event()
            self.workers = [
                threading.Thread(
                    target=worker_loop,
                    args=(w, cfg, self.requests[w], self.results, self.done, False),
                    daemon=True,
                    name=f"manygrad-data-{w}",
                )  # fmt: skip
                for w in range(n)
            ]
        try:
            for w in self.workers:
                w.start()
        except Exception as e:
            self.shutdown(timeout=1.0)
            if kind == "process" and (
                "pickle" in str(e).lower() or "pickl" in type(e).__name__.lower()
            ):
                raise TypeError(
                    f"DataLoader: process workers need a picklable dataset, collate_fn and "
                    f"worker_init_fn (module-level classes and functions, no lambdas): {e}; or "
                    "use worker_type='thread'"
                ) from e
            raise

    def submit(self, indices, epoch: int, worker: int | None = None) -> int:
        tid = self.next_tid
        self.next_tid += 1
        self.requests[tid % self.n if worker is None else worker].put((tid, indices, epoch))
        return tid

    def _drain(self, block: bool, timeout: float) -> bool:
        try:
            tid, out, err = self.results.get(block, timeout)
        except queue.Empty:
            return False
        if tid >= self.min_tid:  # answers to an abandoned epoch's tasks are dropped
            self.buffer[tid] = (out, err)
        return True

    def poll(self, tid: int) -> bool:
        """Whether the answer to ``tid`` has arrived (never blocks)."""
        while tid not in self.buffer and self._drain(False, 0):
            pass
        return tid in self.buffer

    def ready(self, tids) -> int | None:
        """The first of ``tids`` to have been answered (never blocks), or None."""
        while self._drain(False, 0):
            pass
        return next((t for t in self.buffer if t in tids), None)  # in order of arrival

    def get(self, tid: int, timeout: float = 0):
        """Wait for the answer to task ``tid``: ``(output, RemoteError or None)``."""
        return self.get_any((tid,), timeout)[1:]

    def get_any(self, tids, timeout: float = 0):
        """Wait for the first answer to any of ``tids``: ``(tid, output, RemoteError or
        None)``."""
        start = time.monotonic()
        while True:
            tid = next((t for t in self.buffer if t in tids), None)
            if tid is not None:
                return (tid, *self.buffer.pop(tid))
            wait = min(1.0, max(0.0, start + timeout - time.monotonic())) if timeout else 1.0
            if self._drain(True, wait):
                continue
            self._check_alive()
            if timeout and time.monotonic() - start >= timeout:
                raise RuntimeError(
                    f"DataLoader timed out after {timeout} s waiting for a batch from the "
                    "workers; raise timeout= or look for a stuck sample"
                )

    def forget_before(self, tid: int) -> None:
        """Drop answers to tasks older than ``tid`` (an abandoned epoch), now and later."""
        self.min_tid = tid
        for k in [k for k in self.buffer if k < tid]:
            del self.buffer[k]

    def _check_alive(self):
        for w in self.workers:
            if not w.is_alive() and not self.closed:
                code = getattr(w, "exitcode", None)
                pid = getattr(w, "pid", None)
                self.shutdown()
                raise RuntimeError(
                    f"DataLoader worker {w.name} (pid {pid}) exited unexpectedly with exit code "
                    f"{code}; it may have run out of memory or been killed. Try fewer workers, "
                    "a smaller batch_size, or worker_type='thread'"
                )

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every worker; processes still alive after ``timeout`` are terminated."""
        if self.closed:
            return
        self.closed = True
        self.done.set()
        for q in self.requests:
            try:
                q.put(None)
            except Exception:  # a queue already closed at interpreter exit
                pass
        deadline = time.monotonic() + timeout
        for w in self.workers:
            while w.is_alive() and time.monotonic() < deadline:
                if self.kind == "process":
                    while self._drain(False, 0):  # let a worker blocked on a full pipe finish
                        pass
                w.join(0.05)
        if self.kind == "process":
            for w in self.workers:
                if w.is_alive():
                    w.terminate()
                    w.join(1.0)
                if w.is_alive() and hasattr(w, "kill"):
                    w.kill()
                    w.join(1.0)
            for q in [*self.requests, self.results]:
                q.cancel_join_thread()
                q.close()
        self.buffer.clear()

    def pids(self) -> list[int]:
        return [w.pid for w in self.workers] if self.kind == "process" else [os.getpid()]


def is_iterable(dataset) -> bool:
    return isinstance(dataset, IterableDataset)
