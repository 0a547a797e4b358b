"""``torch.ao.nn.intrinsic.quantized.dynamic``: dynamically quantized ``Linear`` with the
ReLU fused in (float32 in and out; ``quantize_dynamic`` swaps ``nni.LinearReLU`` for it).

Example:
    >>> q = quantize_dynamic(model, {nni.LinearReLU}, dtype=torch.qint8)
"""

from __future__ import annotations

from ......tensor import Tensor
from ....quantized import dynamic as _dynamic


class LinearReLU(_dynamic.Linear):
    """Dynamic ``Linear`` then ReLU on its float output."""

    def _get_name(self) -> str:
        return "DynamicQuantizedLinearReLU"

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x).relu()


__all__ = ["LinearReLU"]
