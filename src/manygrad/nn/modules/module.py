"""``torch.nn.modules.module``: the same classes as ``manygrad.nn`` (found by name)."""

from ._reexport import module_getattr

NAMES = ("Module",)
__getattr__ = module_getattr(__name__, NAMES)
