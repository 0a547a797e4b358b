"""``torch.utils.dlpack``: tensors to and from DLPack capsules, sharing memory.

Example:
    >>> from manygrad.utils.dlpack import from_dlpack, to_dlpack
    >>> t = from_dlpack(to_dlpack(mg.ones(3)))
"""

from ..compat.torch_functions import from_dlpack, to_dlpack

__all__ = ["from_dlpack", "to_dlpack"]
