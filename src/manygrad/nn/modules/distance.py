"""``torch.nn.modules.distance``: the same classes as ``manygrad.nn`` (found by name)."""

from ._reexport import module_getattr

NAMES = (
    "PairwiseDistance",
    "CosineSimilarity",
)
__getattr__ = module_getattr(__name__, NAMES)
