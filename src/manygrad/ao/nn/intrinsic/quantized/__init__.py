"""``torch.ao.nn.intrinsic.quantized``: quantized layers with the ReLU fused in (the
output's codes start at its zero point)."""

from ...quantized import modules as _m


class LinearReLU(_m.Linear):
    """Quantized ``Linear`` then ReLU, in one requantization."""

    _relu = True


class ConvReLU2d(_m.Conv2d):
    """Quantized ``Conv2d`` then ReLU, in one requantization."""

    _relu = True


__all__ = ["ConvReLU2d", "LinearReLU"]
