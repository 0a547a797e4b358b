"""``torch.ops``: custom operators by namespace (``torch.ops.mylib.scale``) and
``torch.ops.aten.<name>`` for manygrad's functions; see ``manygrad.library``."""

from ..library import ops as _ops


def __getattr__(name: str):
    return getattr(_ops, name)


def load_library(path) -> None:
    _ops.load_library(path)
