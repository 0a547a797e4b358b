"""``torch.ao.nn.intrinsic.qat``: fused conv/linear + ReLU for quantization-aware training."""

from ...qat import Conv2d as _Conv2d
from ...qat import Linear as _Linear


class LinearReLU(_Linear):
    """QAT ``Linear`` followed by ReLU (from a fused ``LinearReLU``)."""

    _FUSED = True


class ConvReLU2d(_Conv2d):
    """QAT ``Conv2d`` followed by ReLU (from a fused ``ConvReLU2d``)."""

    _FUSED = True


__all__ = ["ConvReLU2d", "LinearReLU"]
