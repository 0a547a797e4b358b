"""``torch.utils.data`` names, as the very same objects that ``manygrad.data`` holds
(``default_collate`` and ``default_convert`` excepted: here they give CPU Tensors, as
PyTorch's do, where ``manygrad.data``'s give the host arrays the DataLoader moves to its
device).

Example:
    >>> from manygrad.utils.data import DataLoader, TensorDataset
    >>> DataLoader is manygrad.data.DataLoader
    True
"""

from ...data import (  # noqa: F401
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
    get_worker_info,
    random_split,
)
from . import dataloader, dataset, distributed, sampler  # noqa: F401
from ._utils.collate import default_collate, default_convert  # noqa: F401

# Families others add to manygrad.data show up here too, under the same names.
_LATER = ("WeightedRandomSampler", "ChainDataset", "StackDataset")

# NOTE: `from torch.utils.data import *` gives these names, as PyTorch's __all__ does (the
# lazily served families above included, which a bare star import would miss)
__all__ = [
    "BatchSampler",
    "ChainDataset",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "StackDataset",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "default_collate",
    "default_convert",
    "get_worker_info",
    "random_split",
]


def __getattr__(name):
    if name in _LATER:
        from ... import data

        if hasattr(data, name):
            return getattr(data, name)
    raise AttributeError(f"module 'manygrad.utils.data' has no attribute {name!r}")
