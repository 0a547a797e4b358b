"""``ShapeProp``: run a graph on example inputs and note each node's tensor shape, dtype,
strides and layout in ``node.meta["tensor_meta"]``."""

from __future__ import annotations

import traceback
from typing import Any, NamedTuple

from ..interpreter import Interpreter
from ..node import Node, map_aggregate

__all__ = ["TensorMetadata", "ShapeProp"]


class TensorMetadata(NamedTuple):
    """What ``ShapeProp`` records about a tensor value."""

    shape: Any
    dtype: Any
    requires_grad: bool
    stride: tuple[int, ...]
    memory_format: Any
    is_quantized: bool
    qparams: dict[str, Any]


def _extract_tensor_metadata(result: Any, include_contiguity: bool = True) -> TensorMetadata:
    import manygrad as mg

    memory_format = None
    if include_contiguity:
        for fmt in (mg.contiguous_format, mg.channels_last, mg.channels_last_3d):
            try:
                if result.is_contiguous(memory_format=fmt):
                    memory_format = fmt
                    break
            except RuntimeError:  # NOTE: a layout for another rank: not that layout
                continue
    return TensorMetadata(result.shape, result.dtype, result.requires_grad, result.stride(),
                          memory_format, False, {})  # fmt: skip


class ShapeProp(Interpreter):
    """An ``Interpreter`` that records, for every node whose value holds tensors,
    ``node.meta["tensor_meta"]`` (a ``TensorMetadata``, or the same nesting of them) and
    ``node.meta["type"]``.

    Args:
        gm: the graph module.

    Example:
        >>> ShapeProp(gm).propagate(x)
        >>> for node in gm.graph.nodes:
        ...     print(node.name, node.meta["tensor_meta"].shape)
    """

    def __init__(self, gm: Any, fake_mode: Any = None) -> None:
        super().__init__(gm)
        self.fake_mode = fake_mode

    def run_node(self, n: Node) -> Any:
        from ...tensor import Tensor

        try:
            result = super().run_node(n)
        except Exception as e:
            traceback.print_exc()
            raise RuntimeError(f"ShapeProp error for: node={n.format_node()} with meta={n.meta}"
                               ) from e  # fmt: skip
        found = False

        def meta_of(obj: Any) -> Any:
            nonlocal found
            if isinstance(obj, Tensor):
                found = True
                return _extract_tensor_metadata(obj)
            return obj

        meta = map_aggregate(result, meta_of)
        if found:
            n.meta["tensor_meta"] = meta
        n.meta["type"] = type(result)
        return result

    def propagate(self, *args: Any) -> Any:
        """Run the graph on ``args``, recording the metadata; returns the output."""
        return super().run(*args)
