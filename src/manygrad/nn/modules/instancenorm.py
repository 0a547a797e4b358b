"""``torch.nn.modules.instancenorm``: the same classes as ``manygrad.nn`` (found by name)."""

from ._reexport import module_getattr

NAMES = (
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
)
__getattr__ = module_getattr(__name__, NAMES)
