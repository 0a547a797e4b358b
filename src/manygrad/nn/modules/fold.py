"""``torch.nn.modules.fold``: the same classes as ``manygrad.nn`` (found by name)."""

from ._reexport import module_getattr

NAMES = (
    "Fold",
    "Unfold",
)
__getattr__ = module_getattr(__name__, NAMES)
