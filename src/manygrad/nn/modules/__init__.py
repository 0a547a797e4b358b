"""``torch.nn.modules``: PyTorch's grouping of the layers, over manygrad's own files.

``manygrad.nn.modules.conv.Conv2d is manygrad.nn.Conv2d``; each file here lists its
PyTorch names and finds them lazily (see ``_reexport``).

Example:
    >>> from manygrad.nn.modules.loss import _Loss
"""

from types import ModuleType

from . import (  # noqa: F401
    activation,
    batchnorm,
    channelshuffle,
    container,
    conv,
    distance,
    dropout,
    flatten,
    fold,
    instancenorm,
    linear,
    loss,
    module,
    normalization,
    padding,
    pixelshuffle,
    pooling,
    rnn,
    sparse,
    transformer,
    upsampling,
    utils,
)
from ._reexport import find

# the files above, each listing its PyTorch names in NAMES
_GROUPS = tuple(
    m for m in list(globals().values()) if isinstance(m, ModuleType) and hasattr(m, "NAMES")
)


def __getattr__(name: str):
    obj = find(name) if any(name in g.NAMES for g in _GROUPS) else None
    if obj is None:
        raise AttributeError(f"module 'manygrad.nn.modules' has no attribute {name!r}")
    return obj
