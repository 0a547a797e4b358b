"""Samplers: the order in which a DataLoader visits a map-style dataset."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

import numpy as np

from manygrad.errors import ManygradError

from .dataset import _rng

__all__ = [
    "BatchSampler",
    "DistributedSampler",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "SubsetRandomSampler",
]


class Sampler:
    """Base class: iterating a sampler yields dataset indices (or lists of them).

    A subclass defines ``__iter__`` and, if it knows its length, ``__len__``; without one
    ``len()`` raises ``TypeError`` (as for PyTorch's samplers), which progress bars expect.
    """

    def __iter__(self) -> Iterator:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler):
    """Indices ``0, 1, ..., len(data_source) - 1``.

    Args:
        data_source: the dataset (only its length is used).

    Example:
        >>> list(mg.data.SequentialSampler(range(3)))
        [0, 1, 2]
    """

    def __init__(self, data_source: Sized):
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """Indices in random order (or drawn with replacement).

    Args:
        data_source: the dataset.
        replacement: draw with replacement (default False).
        num_samples: how many indices per epoch (default ``len(data_source)``).
        generator: an int seed (reproducible; combined with ``set_epoch``), a
            ``numpy.random.Generator``, or None to draw from manygrad's CPU RNG.

    Example:
        >>> order = list(mg.data.RandomSampler(range(5), generator=0))
    """

    def __init__(self, data_source: Sized, replacement: bool = False, num_samples=None,
                 generator=None):  # fmt: skip
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        self.epoch = 0
        if not isinstance(replacement, bool):
            raise TypeError(
                f"RandomSampler: replacement should be a boolean value, but got "
                f"replacement={replacement!r}"
            )
        n = self.num_samples
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            what = "num_samples" if num_samples is not None else "len(data_source)"
            raise ValueError(
                f"RandomSampler: num_samples should be a positive integer value, but got "
                f"num_samples={n} ({what}); an empty dataset cannot be shuffled"
            )

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use a different (but reproducible) order for each epoch of a seeded sampler."""
        self.epoch = epoch

    def _generator(self) -> np.random.Generator:
        g = self.generator
        if g is None or isinstance(g, np.random.Generator):
            return _rng(g)
        return np.random.default_rng([int(g), self.epoch])

    def __iter__(self) -> Iterator[int]:
        n, g = len(self.data_source), self._generator()
        if self.replacement:
            return iter(g.integers(0, n, self.num_samples).tolist())
        reps = -(-self.num_samples // n) if n else 0
        perm = np.concatenate([g.permutation(n) for _ in range(reps)]) if reps else []
        return iter(np.asarray(perm[: self.num_samples], dtype=np.int64).tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in random order.

    Args:
        indices: the indices to draw from.
        generator: as for ``RandomSampler``.

    Example:
        >>> s = mg.data.SubsetRandomSampler([0, 5, 7], generator=1)
    """

    def __init__(self, indices, generator=None):
        self.indices = list(indices)
        self.generator = generator
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = self.generator
        g = _rng(g) if g is None or isinstance(g, np.random.Generator) else (
            np.random.default_rng([int(g), self.epoch]))  # fmt: skip
        return iter(self.indices[i] for i in g.permutation(len(self.indices)).tolist())

    def __len__(self) -> int:
        return len(self.indices)


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size``.

    Args:
        sampler: a sampler or any iterable of indices.
        batch_size: indices per batch.
        drop_last: drop the last batch when it is smaller than ``batch_size``.

    Example:
        >>> list(mg.data.BatchSampler(range(5), 2, drop_last=False))
        [[0, 1], [2, 3], [4]]
    """

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"BatchSampler: batch_size should be a positive int, got {batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"BatchSampler: drop_last should be a bool, got {drop_last!r}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        batch = []
        for i in self.sampler:
            batch.append(i)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


class _GroupError(ManygradError, ValueError, RuntimeError):
    """No process group to take the rank and world size from (PyTorch: ValueError)."""


def _process_group() -> tuple[int, int] | None:
    """(rank, world size) from manygrad.distributed when it is initialised, else None."""
    try:
        from manygrad import distributed as dist

        if dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except Exception:  # not built yet, or no MPI: the caller must give rank/world size
        return None
    return None


# NOTE: PyTorch's CPU randperm swaps through a Mersenne Twister (MT19937, seeded with the
# seed's low 32 bits) with a Fisher-Yates walk; NumPy's legacy RandomState is the same
# generator and its full-range uint32 draws are the raw outputs. PyTorch switches to
# another algorithm from n = 2**32 // 20 on; such sizes get NumPy's permutation here.
_TORCH_RANDPERM_MAX = (2**32 - 1) // 20


def torch_randperm(n: int, seed: int) -> list[int]:
    """The permutation ``torch.randperm(n, generator=torch.Generator().manual_seed(seed))``
    gives on PyTorch's CPU (for ``n`` below about 2**28).

    Example:
        >>> torch_randperm(5, 0)
        [4, 0, 1, 3, 2]
    """
    if n >= _TORCH_RANDPERM_MAX:
        return np.random.default_rng(seed & (2**63 - 1)).permutation(n).tolist()
    draws = np.random.RandomState(seed & 0xFFFFFFFF).randint(
        0, 2**32, size=max(n - 1, 0), dtype=np.uint32
    )
    steps = (draws.astype(np.int64) % np.arange(n, 1, -1, dtype=np.int64)).tolist()
    out = list(range(n))
    for i, k in enumerate(steps):
        j = i + k
        out[i], out[j] = out[j], out[i]
    return out


class DistributedSampler(Sampler):
    """Each of ``num_replicas`` processes sees its own ``1/num_replicas`` of the dataset.

    The indices are padded (or cut, with ``drop_last``) to a multiple of ``num_replicas``;
    call ``set_epoch(epoch)`` before each epoch so that the shuffle changes. The shuffle is
    the very permutation PyTorch's sampler draws for the same ``seed + epoch``, so ranks
    running manygrad and PyTorch split a dataset the same way.

    Args:
        dataset: the dataset.
        num_replicas: world size (default: from ``manygrad.distributed``).
        rank: this process's rank (default: from ``manygrad.distributed``).
        shuffle: shuffle the indices (default True).
        seed: shared seed; it must be the same on every rank (default 0).
        drop_last: drop the tail instead of padding (default False).

    Example:
        >>> s = mg.data.DistributedSampler(ds, num_replicas=4, rank=1)
        >>> loader = mg.data.DataLoader(ds, batch_size=32, sampler=s)
    """

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):  # fmt: skip
        if num_replicas is None or rank is None:
            group = _process_group()
            if group is None:
                raise _GroupError(
                    "DistributedSampler: the process group is not initialised; call "
                    "mg.distributed.init_process_group() first or pass num_replicas and rank"
                )
            rank = group[0] if rank is None else rank
            num_replicas = group[1] if num_replicas is None else num_replicas
        if not 0 <= rank < num_replicas:
            raise ValueError(
                f"DistributedSampler: invalid rank {rank}, rank should be in [0, {num_replicas - 1}]"
            )
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        n = len(dataset)
        if drop_last and n % num_replicas:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch, which seeds this epoch's shuffle (same on every rank)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            idx = torch_randperm(n, self.seed + self.epoch)
        else:
            idx = list(range(n))
        if self.drop_last:
            idx = idx[: self.total_size]
        elif idx:
            pad = self.total_size - len(idx)
            idx += (idx * math.ceil(pad / len(idx)))[:pad]
        return iter(idx[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples
