"""``torch.nn.modules.sparse``: the same classes as ``manygrad.nn`` (found by name)."""

from ._reexport import module_getattr

NAMES = (
    "Embedding",
    "EmbeddingBag",
)
__getattr__ = module_getattr(__name__, NAMES)
