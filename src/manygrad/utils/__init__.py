"""``mg.utils``: PyTorch's ``torch.utils`` tree (``checkpoint``, ``data``, ``dlpack``).

``data`` holds the same objects as ``manygrad.data``.

Example:
    >>> from manygrad.utils.data import DataLoader, TensorDataset
"""

import importlib
import importlib.util


def __getattr__(name):
    if name in (
        "data",
        "checkpoint",
        "dlpack",
        "tensorboard",
        "model_zoo",
        "flop_counter",
    ) and importlib.util.find_spec(f"{__name__}.{name}"):
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'manygrad.utils' has no attribute {name!r}")
