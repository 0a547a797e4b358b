"""``torch.distributed.elastic.utils.data``: ``CyclingIterator`` and
``ElasticDistributedSampler`` (a ``DistributedSampler`` that starts at ``start_index``).

Example:
    >>> sampler = ElasticDistributedSampler(ds, num_replicas=2, rank=0, start_index=100)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sized

from .....data.sampler import DistributedSampler, torch_randperm

__all__ = ["CyclingIterator", "ElasticDistributedSampler"]


class CyclingIterator:
    """Runs through ``generator_fn(epoch)`` for epochs ``start_epoch`` .. ``n - 1``, one
    after the other (``n`` passes over the data in one iterator).

    Example:
        >>> list(CyclingIterator(2, lambda epoch: iter([1, 2])))
        [1, 2, 1, 2]
    """

    def __init__(self, n: int, generator_fn: Callable[[int], Iterator], start_epoch: int = 0):
        self._n = n
        self._epoch = start_epoch
        self._generator_fn = generator_fn
        self._iter = generator_fn(self._epoch)

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            try:
                return next(self._iter)
            except StopIteration:
                if self._epoch >= self._n - 1:
                    raise
                self._epoch += 1
                self._iter = self._generator_fn(self._epoch)


class ElasticDistributedSampler(DistributedSampler):
    """``DistributedSampler`` over the indices from ``start_index`` on (the samples not
    yet seen when a job restarts), shuffled by ``set_epoch`` as PyTorch's.

    Args:
        dataset: a sized dataset.
        num_replicas, rank: as ``DistributedSampler`` (default: from the process group).
        start_index: the first index to sample (less than ``len(dataset)``).
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 start_index: int = 0):  # fmt: skip
        super().__init__(dataset=dataset, num_replicas=num_replicas, rank=rank)
        if not isinstance(dataset, Sized):
            raise TypeError("Dataset must be an instance of collections.abc.Sized")
        if start_index >= len(dataset):
            raise ValueError(
                f"Start index {start_index} should be less than dataset size {len(dataset)}"
            )
        self.start_index = start_index
        self.num_samples = math.ceil((len(dataset) - start_index) / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset) - self.start_index
        idx = [i + self.start_index for i in torch_randperm(n, self.epoch)]
        pad = self.total_size - len(idx)
        # NOTE: cyclic, so that fewer samples than ranks still fill every rank (PyTorch's
        # one-pass padding raises then)
        idx += (idx * math.ceil(pad / len(idx)))[:pad]
        return iter(idx[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples
