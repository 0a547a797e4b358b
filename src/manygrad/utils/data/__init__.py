"""``torch.utils.data`` names, as the very same objects that ``manygrad.data`` holds
(``default_collate`` excepted: here it gives CPU Tensors, as PyTorch's does, where
``manygrad.data.default_collate`` gives the host arrays the DataLoader moves to its device).

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
    default_convert,
    get_worker_info,
    random_split,
    sampler,
)
from . import distributed  # noqa: F401


def default_collate(batch):
    """Stack a list of samples into a batch of CPU Tensors, as PyTorch's ``default_collate``:
    numbers and arrays gain a leading dim, tuples and lists become lists, dicts and
    namedtuples keep their type, strings stay lists.

    Example:
        >>> default_collate([(1, 2.0), (3, 4.0)])
        [tensor([1, 3]), tensor([2., 4.], dtype=manygrad.float64)]
    """
    from ...data import collate as _collate
    from ...tensor import Tensor

    return _collate.map_arrays(lambda a: Tensor._wrap(a), _collate.default_collate(batch))


# Families others add to manygrad.data show up here too, under the same names.
_LATER = ("WeightedRandomSampler", "ChainDataset", "StackDataset")


def __getattr__(name):
    if name in _LATER:
        from ... import data

        if hasattr(data, name):
            return getattr(data, name)
    raise AttributeError(f"module 'manygrad.utils.data' has no attribute {name!r}")
