"""Datasets with PyTorch's names: map-style ``Dataset`` and streaming ``IterableDataset``."""

from __future__ import annotations

import bisect
import math
import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from manygrad import backend
from manygrad.errors import ManygradError, ShapeError

__all__ = [
    "ConcatDataset",
    "Dataset",
    "IterableDataset",
    "Subset",
    "TensorDataset",
    "get_worker_info",
    "random_split",
    "sample_rng",
]


class Dataset:
    """A map-style dataset: ``len(ds)`` samples, ``ds[i]`` returns sample ``i``.

    Subclass it and define ``__getitem__`` and ``__len__``. A dataset may also define
    ``get_batch(indices)`` returning an already collated batch of NumPy arrays; the
    DataLoader uses it (when no ``collate_fn`` is given) to read a batch in one slice.

    Example:
        >>> class Squares(mg.data.Dataset):
        ...     def __len__(self): return 10
        ...     def __getitem__(self, i): return i * i
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset read as a stream: define ``__iter__`` (no indexing, no sampler).

    With workers, each worker iterates its own copy; split the stream inside ``__iter__``
    with ``mg.data.get_worker_info()`` so that samples are not repeated.

    Example:
        >>> class Count(mg.data.IterableDataset):
        ...     def __iter__(self): return iter(range(5))
    """

    def __iter__(self) -> Iterator:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __add__(self, other: Dataset):
        from .weighted import ChainDataset

        return ChainDataset([self, other])  # NOTE: streams chain, as in PyTorch


class TensorDataset(Dataset):
    """Samples are the i-th rows of the given tensors (or arrays), which share dim 0.

    Args:
        *tensors: Tensors or NumPy arrays with the same length.

    Example:
        >>> ds = mg.data.TensorDataset(mg.randn(100, 3), mg.arange(100))
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: give at least one tensor")
        n = len(tensors[0])
        for k, t in enumerate(tensors):
            if len(t) != n:
                lens = [len(t) for t in tensors]
                raise ShapeError(
                    f"TensorDataset: tensors must have the same length (dim 0), got {lens}; "
                    f"tensor {k} has {len(t)} rows but tensor 0 has {n}"
                )
        self.tensors = tensors

    def __getitem__(self, index):
        from manygrad.tensor import Tensor

        # NOTE: data tensors need no graph; index the raw array (any device) directly
        return tuple(
            Tensor._wrap(_row(t._data, index), t._device)
            if isinstance(t, Tensor) and not t.requires_grad
            else t[index]
            for t in self.tensors
        )

    def __len__(self) -> int:
        return len(self.tensors[0])

    def get_batch(self, indices: Sequence[int]):
        """The collated batch for ``indices`` (one fancy-indexing read per tensor)."""
        from manygrad.tensor import Tensor

        idx = np.asarray(indices, dtype=np.int64)
        out = []
        for t in self.tensors:
            if isinstance(t, Tensor):
                if t._device.type != "cpu":
                    return None  # device tensors: let the collate stack on the device
                out.append(t._data[idx])
            else:
                out.append(np.asarray(t)[idx])
        return list(out)  # NOTE: a list, as PyTorch's collate gives


def _row(a, index):
    r = a[index]
    return np.asarray(r) if isinstance(r, np.generic) else r  # 0-d arrays, as CuPy gives


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    Args:
        dataset: the full dataset.
        indices: positions to keep (a sequence, kept as given, as in PyTorch).

    Example:
        >>> first_ten = mg.data.Subset(ds, range(10))
    """

    def __init__(self, dataset: Dataset, indices: Sequence[int]):
        self.dataset = dataset
        is_seq = hasattr(indices, "__getitem__") and hasattr(indices, "__len__")
        self.indices = indices if is_seq else list(indices)

    def __getitem__(self, index):
        if isinstance(index, list):  # NOTE: the dataset gets the list, as in PyTorch
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __getitems__(self, indices: list[int]) -> list:
        """The samples at ``indices`` (the DataLoader reads a batch through this)."""
        if type(self).__getitem__ is not Subset.__getitem__:  # a subclass's own lookup
            return [self[i] for i in indices]
        inner = [self.indices[i] for i in indices]
        getitems = getattr(self.dataset, "__getitems__", None)
        if callable(getitems):
            return getitems(inner)
        return [self.dataset[i] for i in inner]

    def __len__(self) -> int:
        return len(self.indices)


class _IndexValueError(ManygradError, IndexError, ValueError):
    """A negative index past the start (PyTorch raises ValueError there)."""


class ConcatDataset(Dataset):
    """Several datasets one after the other.

    Args:
        datasets: map-style datasets.

    Example:
        >>> both = mg.data.ConcatDataset([train_a, train_b])
    """

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]).tolist())

    def __len__(self) -> int:
        return self.cumulative_sizes[-1] if self.cumulative_sizes else 0

    def __getitem__(self, index: int):
        n = len(self)
        if index < 0:
            if -index > n:
                raise _IndexValueError(
                    f"ConcatDataset: absolute value of index should not exceed dataset length: "
                    f"index {index} for length {n}"
                )
            index += n
        if index >= n:
            raise IndexError(f"ConcatDataset: index {index} out of range for length {n}")
        k = bisect.bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[k - 1] if k > 0 else 0
        return self.datasets[k][index - start]


def random_split(dataset: Dataset, lengths: Sequence[int | float], generator=None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random subsets of the given lengths.

    Args:
        dataset: the dataset to split.
        lengths: sizes, or fractions summing to 1 (remainders go round-robin, as PyTorch).
        generator: an int seed or ``numpy.random.Generator`` (default: manygrad's CPU RNG).

    Example:
        >>> train, val = mg.data.random_split(ds, [0.9, 0.1], generator=0)
    """
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        for i, f in enumerate(lengths):
            if not 0 <= f <= 1:
                raise ValueError(f"random_split: fraction at index {i} is {f}, not between 0 and 1")
        sizes = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        lengths = sizes
        for i, k in enumerate(lengths):
            if k == 0:
                warnings.warn(
                    f"random_split: length of split at index {i} is 0; this might result in "
                    "an empty dataset",
                    stacklevel=2,
                )
    if sum(lengths) != n:
        raise ValueError(
            f"random_split: sum of lengths {sum(lengths)} does not equal the dataset length {n}"
        )
    perm = _rng(generator).permutation(n).tolist()
    out, start = [], 0
    for k in lengths:
        out.append(Subset(dataset, perm[start : start + k]))
        start += k
    return out


def _rng(generator) -> np.random.Generator:
    if isinstance(generator, np.random.Generator):
        return generator
    if generator is None:
        seed = int(
            backend.to_numpy(backend.generator(backend.CPU).integers(0, 2**62, (), np.int64))
        )
        return np.random.default_rng(seed)
    return np.random.default_rng(int(generator))


# ---------------------------------------------------------------- per-sample randomness

_local = threading.local()


class WorkerInfo:
    """What ``get_worker_info()`` returns inside a DataLoader worker."""

    def __init__(self, id: int, num_workers: int, seed: int, dataset: Dataset):  # noqa: A002
        self.id = id
        self.num_workers = num_workers
        self.seed = seed
        self.dataset = dataset

    def __repr__(self) -> str:
        return f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed})"


def get_worker_info() -> WorkerInfo | None:
    """Information about the current DataLoader worker, or None in the main thread.

    Example:
        >>> info = mg.data.get_worker_info()
        >>> shard = range(info.id, n, info.num_workers) if info else range(n)
    """
    return getattr(_local, "worker", None)


def _set_sample(seed: int, epoch: int, index: int) -> None:
    _local.key = (seed, epoch, index)
    _local.rng = None


def sample_rng() -> np.random.Generator:
    """The random generator for the sample being loaded now (for random augmentations).

    Inside a DataLoader it is seeded from ``(seed, epoch, index)``, so a sample gets the
    same augmentation for a given seed and epoch whatever the number of workers. Outside a
    loader it falls back to a generator seeded from manygrad's CPU RNG.

    Example:
        >>> flip = mg.data.sample_rng().random() < 0.5
    """
    rng = getattr(_local, "rng", None)
    if rng is None:
        key = getattr(_local, "key", None)
        if key is None:
            rng = _rng(None)
        else:
            rng = np.random.default_rng([k & (2**63 - 1) for k in key])
        _local.rng = rng
    return rng


def _clear_sample() -> None:
    _local.key = None
    _local.rng = None
