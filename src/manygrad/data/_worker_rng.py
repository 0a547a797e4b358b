"""Random streams of DataLoader thread workers: each worker thread draws from its own
``random``, ``numpy.random`` and manygrad CPU generators, seeded as PyTorch seeds a worker
process, so that a dataset drawing random numbers gives the same samples whatever the
threads' timing, and leaves the main thread's generators alone.

PyTorch's worker ``i`` of an iterator with base seed ``b`` seeds ``random`` and the torch
generator with ``b + i``, and NumPy's global ``RandomState`` with the four words of
``SeedSequence([i, b & 0xFFFFFFFF, b >> 32, 0])``; the same seeds are used here. While
thread workers run, the functions of the ``random`` and ``numpy.random`` modules are
replaced by ones that draw from the calling worker's own generator (the process-wide one in
any other thread); the originals come back when the last worker thread ends.
"""

from __future__ import annotations

import functools
import random
import threading
from _thread import get_ident

import numpy as np

from manygrad import backend

_lock = threading.Lock()
_own: dict[int, tuple[random.Random, np.random.RandomState]] = {}  # by thread id
_saved: list[tuple[object, str, object]] = []  # (module, name, original function)


def numpy_seed(base_seed: int, worker_id: int) -> np.ndarray:
    """NumPy's global seed in worker ``worker_id`` of a loader with ``base_seed`` (PyTorch's
    rule: it differs from the ``random`` seed, so the two streams do not coincide)."""
    words = [worker_id, base_seed & 0xFFFFFFFF, (base_seed >> 32) & 0xFFFFFFFF, 0]
    return np.random.SeedSequence(words).generate_state(4)


def seed_process(base_seed: int, worker_id: int) -> None:
    """Seed a worker process's global generators as PyTorch's workers do."""
    import manygrad

    random.seed(base_seed + worker_id)
    np.random.seed(numpy_seed(base_seed, worker_id))
    manygrad.manual_seed(base_seed + worker_id)


def enter_thread(base_seed: int, worker_id: int) -> None:
    """Give the calling thread its own generators (call ``leave_thread`` when it ends)."""
    from manygrad.ops.random import Generator

    seed = base_seed + worker_id
    ident = get_ident()
    with _lock:
        if not _own:
            _install()
        _own[ident] = (random.Random(seed), np.random.RandomState(numpy_seed(base_seed,
                                                                            worker_id)))  # fmt: skip
        backend.thread_cpu_generators[ident] = Generator("cpu").manual_seed(seed)


def leave_thread() -> None:
    """Drop the calling thread's generators; the last worker restores the modules."""
    ident = get_ident()
    with _lock:
        backend.thread_cpu_generators.pop(ident, None)
        if _own.pop(ident, None) is not None and not _own:
            _restore()


def _dispatcher(original, which: int, name: str):
    def draw(*args, **kwargs):
        own = _own.get(get_ident())
        if own is None:
            return original(*args, **kwargs)
        return getattr(own[which], name)(*args, **kwargs)

    return functools.wraps(original)(draw)


def _install() -> None:
    # NOTE: the module functions are bound methods of one hidden instance (random._inst,
    # numpy's mtrand._rand), so they are swapped for dispatchers; code that copied a
    # function before (``from random import random``) still draws from the shared stream
    legacy = np.random.mtrand._rand
    for module, inst, which in ((random, random._inst, 0), (np.random, legacy, 1)):
        for name in dir(module):
            fn = getattr(module, name)
            if getattr(fn, "__self__", None) is inst:
                _saved.append((module, name, fn))
                setattr(module, name, _dispatcher(fn, which, name))
    for name, method in (("seed", "seed"), ("ranf", "random_sample"), ("sample", "random_sample")):
        fn = getattr(np.random, name, None)
        if fn is not None:
            _saved.append((np.random, name, fn))
            setattr(np.random, name, _dispatcher(fn, 1, method))


def _restore() -> None:
    while _saved:
        module, name, fn = _saved.pop()
        setattr(module, name, fn)
