"""PyTorch compatibility: the ``torch`` import hook and the unchanged-script runner.

Example:
    >>> import manygrad.compat
    >>> manygrad.compat.install()   # from now on `import torch` is manygrad
    >>> import torch.nn as nn
"""

from .importer import (
    UnsupportedAPIError,
    UnsupportedModuleError,
    install,
    target_name,
    uninstall,
)
from .runner import run_script

__all__ = [
    "install", "uninstall", "run_script", "target_name", "UnsupportedAPIError",
    "UnsupportedModuleError",
]  # fmt: skip
