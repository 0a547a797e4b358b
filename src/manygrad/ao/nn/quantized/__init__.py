"""``torch.ao.nn.quantized`` (also ``torch.nn.quantized``): statically quantized modules."""

from . import dynamic  # noqa: F401
from .modules import Conv2d, DeQuantize, Linear, Quantize

__all__ = ["Conv2d", "DeQuantize", "Linear", "Quantize", "dynamic"]
