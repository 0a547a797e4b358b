"""``torch.nn.modules.upsampling``: the same classes as ``manygrad.nn`` (found by name)."""

from ._reexport import module_getattr

NAMES = (
    "Upsample",
    "UpsamplingNearest2d",
    "UpsamplingBilinear2d",
)
__getattr__ = module_getattr(__name__, NAMES)
