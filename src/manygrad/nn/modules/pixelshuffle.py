"""``torch.nn.modules.pixelshuffle``: the same classes as ``manygrad.nn`` (found by name)."""

from ._reexport import module_getattr

NAMES = (
    "PixelShuffle",
    "PixelUnshuffle",
)
__getattr__ = module_getattr(__name__, NAMES)
