"""``torch.utils``'s place in manygrad: ``utils.data`` (the same objects as ``manygrad.data``).

Example:
    >>> from manygrad.utils.data import DataLoader, TensorDataset
"""

import importlib


def __getattr__(name):
    if name in ("data", "checkpoint"):
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'manygrad.utils' has no attribute {name!r}")
