"""``torch.utils.data.dataset``: the dataset classes and ``random_split``."""

from ...data import (  # noqa: F401
    ConcatDataset,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    random_split,
)


def __getattr__(name):
    from ... import data

    if name in ("ChainDataset", "StackDataset") and hasattr(data, name):
        return getattr(data, name)
    raise AttributeError(f"module 'manygrad.utils.data.dataset' has no attribute {name!r}")
