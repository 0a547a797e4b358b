"""``torch.nn.modules.normalization``: the same classes as ``manygrad.nn`` (found by name)."""

from ._reexport import module_getattr

NAMES = (
    "LocalResponseNorm",
    "CrossMapLRN2d",
    "LayerNorm",
    "GroupNorm",
    "RMSNorm",
)
__getattr__ = module_getattr(__name__, NAMES)
