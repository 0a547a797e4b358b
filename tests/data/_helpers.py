"""Datasets for loader tests; module-level so that process workers can unpickle them."""

import os
import threading
import time

import numpy as np

import manygrad as mg


class Squares(mg.data.Dataset):
    """Sample i is (i * ones(3), i * i)."""

    def __init__(self, n=20):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full(3, i, np.float32), i * i


class Augmented(mg.data.Dataset):
    """Each sample draws from mg.data.sample_rng(): the per-sample augmentation RNG."""

    def __len__(self):
        return 24

    def __getitem__(self, i):
        return np.float64(mg.data.sample_rng().random()), i


class Failing(mg.data.Dataset):
    """Samples in ``bad`` raise; the others are their index."""

    def __init__(self, n=12, bad=(5,)):
        self.n, self.bad = n, set(bad)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i in self.bad:
            raise ValueError(f"sample {i} is broken on purpose")
        return i


class Slow(mg.data.Dataset):
    def __init__(self, n=1000, delay=0.01):
        self.n, self.delay = n, delay

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        time.sleep(self.delay)
        return i


class WhoLoads(mg.data.Dataset):
    """Sample i is (i, worker id, pid, thread id) of the worker that loaded it."""

    def __len__(self):
        return 16

    def __getitem__(self, i):
        info = mg.data.get_worker_info()
        return i, -1 if info is None else info.id, os.getpid(), threading.get_ident()


class Stream(mg.data.IterableDataset):
    """0..n-1, split between workers with get_worker_info()."""

    def __init__(self, n=23):
        self.n = n

    def __len__(self):
        return self.n

    def __iter__(self):
        info = mg.data.get_worker_info()
        if info is None:
            return iter(range(self.n))
        return iter(range(info.id, self.n, info.num_workers))


def init_marker(worker_id):
    if worker_id == 1:
        raise RuntimeError("worker_init_fn refused worker 1")
