"""``torch.export.dynamic_shapes``: the dims that ``export(..., dynamic_shapes=...)`` takes,
for programs that import them from this module (``from torch.export.dynamic_shapes import
Dim``). The objects are ``manygrad.export``'s.

Example:
    >>> from manygrad.compat.torch_export_dynamic_shapes import Dim
    >>> batch = Dim("batch", min=1, max=64)
"""

from __future__ import annotations

from ..export import Dim, dims

__all__ = ["Dim", "dims"]
