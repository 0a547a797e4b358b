"""``torch.nn.modules.flatten``: the same classes as ``manygrad.nn`` (found by name)."""

from ._reexport import module_getattr

NAMES = (
    "Flatten",
    "Unflatten",
)
__getattr__ = module_getattr(__name__, NAMES)
