"""``torch.nn.modules.channelshuffle``: the same classes as ``manygrad.nn`` (found by name)."""

from ._reexport import module_getattr

NAMES = ("ChannelShuffle",)
__getattr__ = module_getattr(__name__, NAMES)
