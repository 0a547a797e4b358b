"""``torch.ao.nn.intrinsic``: fused float modules that ``fuse_modules`` makes (a conv or
linear followed by ReLU), which quantize as one module."""

from __future__ import annotations

from ....nn import Sequential


class _FusedModule(Sequential):
    pass


class ConvReLU2d(_FusedModule):
    """``Conv2d`` then ``ReLU``."""

    def __init__(self, conv, relu):
        super().__init__(conv, relu)


class LinearReLU(_FusedModule):
    """``Linear`` then ``ReLU``."""

    def __init__(self, linear, relu):
        super().__init__(linear, relu)


__all__ = ["ConvReLU2d", "LinearReLU"]
