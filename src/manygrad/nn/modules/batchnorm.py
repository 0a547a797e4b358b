"""``torch.nn.modules.batchnorm``: the same classes as ``manygrad.nn`` (found by name)."""

from ._reexport import module_getattr

NAMES = (
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "SyncBatchNorm",
    "LazyBatchNorm1d",
)
__getattr__ = module_getattr(__name__, NAMES)
