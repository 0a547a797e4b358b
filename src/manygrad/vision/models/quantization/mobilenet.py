"""The quantizable MobileNets (V2 and V3), as torchvision's ``quantization.mobilenet``."""

from . import mobilenetv2 as _mobilenetv2
from . import mobilenetv3 as _mobilenetv3
from .mobilenetv2 import *  # noqa: F403
from .mobilenetv3 import *  # noqa: F403

__all__ = _mobilenetv2.__all__ + _mobilenetv3.__all__
