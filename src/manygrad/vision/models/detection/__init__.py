"""torchvision's detection models (``torchvision.models.detection``) on manygrad."""

from . import faster_rcnn as _faster_rcnn
from . import keypoint_rcnn as _keypoint_rcnn
from . import mask_rcnn as _mask_rcnn
from .faster_rcnn import *  # noqa: F403
from .keypoint_rcnn import *  # noqa: F403
from .mask_rcnn import *  # noqa: F403

__all__ = [*_faster_rcnn.__all__, *_keypoint_rcnn.__all__, *_mask_rcnn.__all__]
