"""torchvision's semantic segmentation models (``torchvision.models.segmentation``) on
manygrad: FCN and DeepLabV3 on dilated ResNet-50/101, DeepLabV3 and Lite R-ASPP on
MobileNetV3-Large, with torchvision's module trees, state-dict keys and weights enums.

A model maps ``(N, 3, H, W)`` images to ``{"out": (N, num_classes, H, W)}`` logits (and
``"aux"`` with ``aux_loss=True``).

Example:
    >>> from manygrad.vision.models import segmentation
    >>> model = segmentation.fcn_resnet50(weights_backbone=None, num_classes=5).eval()
    >>> model(mg.rand(1, 3, 64, 64))["out"].shape
    manygrad.Size([1, 5, 64, 64])
"""

from . import deeplabv3 as _deeplabv3
from . import fcn as _fcn
from . import lraspp as _lraspp
from .deeplabv3 import *  # noqa: F403
from .fcn import *  # noqa: F403
from .lraspp import *  # noqa: F403

__all__ = [*_deeplabv3.__all__, *_fcn.__all__, *_lraspp.__all__]
