"""``torch.nn.modules.linear``: the same classes as ``manygrad.nn`` (found by name)."""

from ._reexport import module_getattr

NAMES = (
    "Identity",
    "Linear",
    "Bilinear",
    "LazyLinear",
)
__getattr__ = module_getattr(__name__, NAMES)
