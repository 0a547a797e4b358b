"""``torch.nn.modules.dropout``: the same classes as ``manygrad.nn`` (found by name)."""

from ._reexport import module_getattr

NAMES = (
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "FeatureAlphaDropout",
)
__getattr__ = module_getattr(__name__, NAMES)
