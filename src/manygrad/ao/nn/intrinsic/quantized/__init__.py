"""``torch.ao.nn.intrinsic.quantized``: quantized layers with the ReLU fused in (the
output's codes start at its zero point)."""

from ...quantized import activation as _a
from ...quantized import conv as _c
from ...quantized import modules as _m


class LinearReLU(_m.Linear):
    """Quantized ``Linear`` then ReLU, in one requantization."""

    _relu = True


class ConvReLU1d(_m.Conv1d):
    """Quantized ``Conv1d`` then ReLU, in one requantization."""

    _relu = True


class ConvReLU2d(_m.Conv2d):
    """Quantized ``Conv2d`` then ReLU, in one requantization."""

    _relu = True


class ConvReLU3d(_c.Conv3d):
    """Quantized ``Conv3d`` then ReLU, in one requantization."""

    _relu = True


class BNReLU2d(_a.BatchNorm2d):
    """Quantized ``BatchNorm2d`` then ReLU, in one requantization."""

    _relu = True

    def _get_name(self) -> str:
        return "QuantizedBNReLU2d"


class BNReLU3d(_a.BatchNorm3d):
    """Quantized ``BatchNorm3d`` then ReLU, in one requantization."""

    _relu = True

    def _get_name(self) -> str:
        return "QuantizedBNReLU3d"


from . import dynamic  # noqa: E402, F401

__all__ = ["BNReLU2d", "BNReLU3d", "ConvReLU1d", "ConvReLU2d", "ConvReLU3d", "LinearReLU",
           "dynamic"]  # fmt: skip
