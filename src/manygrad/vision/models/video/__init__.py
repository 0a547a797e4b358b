"""torchvision's video classification models (``torchvision.models.video``) on manygrad:
R3D-18, MC3-18, R(2+1)D-18, S3D, MViT V1-B / V2-S and Video Swin T / S / B, with
torchvision's module trees, state-dict keys, arguments and Kinetics-400 weights enums
(``weights.meta["categories"]`` names the 400 actions; ``weights.transforms()`` is the
``VideoClassification`` preset).

A model takes a batch of clips ``(N, C, T, H, W)`` and returns ``(N, num_classes)`` logits.

Example:
    >>> from manygrad.vision.models import video
    >>> model = video.r3d_18(num_classes=10).eval()
    >>> model(mg.randn(1, 3, 2, 32, 32)).shape
    manygrad.Size([1, 10])
"""

from . import mvit as _mvit
from . import resnet as _resnet
from . import s3d as _s3d
from . import swin_transformer as _swin_transformer
from .mvit import *  # noqa: F403
from .resnet import *  # noqa: F403
from .s3d import *  # noqa: F403
from .swin_transformer import *  # noqa: F403

__all__ = [
    *_mvit.__all__,
    *_resnet.__all__,
    *_s3d.__all__,
    *_swin_transformer.__all__,
]
