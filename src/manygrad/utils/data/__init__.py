"""``torch.utils.data`` names, as the very same objects that ``manygrad.data`` holds.

Example:
    >>> from manygrad.utils.data import DataLoader, TensorDataset
    >>> DataLoader is manygrad.data.DataLoader
    True
"""

from ...data import (  # noqa: F401  # noqa: F401
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    dataloader,
    dataset,
    default_collate,
    default_convert,
    get_worker_info,
    random_split,
    sampler,
)
from . import distributed  # noqa: F401

# Families others add to manygrad.data show up here too, under the same names.
_LATER = ("WeightedRandomSampler", "ChainDataset", "StackDataset")


def __getattr__(name):
    if name in _LATER:
        from ... import data

        if hasattr(data, name):
            return getattr(data, name)
    raise AttributeError(f"module 'manygrad.utils.data' has no attribute {name!r}")
