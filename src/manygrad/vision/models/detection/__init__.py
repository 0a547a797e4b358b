"""torchvision's detection models (``torchvision.models.detection``) on manygrad: Faster
R-CNN (ResNet-50-FPN v1 / v2, MobileNetV3-Large-FPN), Mask R-CNN (v1 / v2), Keypoint
R-CNN, RetinaNet (v1 / v2), FCOS, SSD300-VGG16 and SSDlite320-MobileNetV3, with
torchvision's module trees, state-dict keys, arguments and COCO weights enums.

A model takes a list of float (C, H, W) images in [0, 1]. In training (with a list of
targets ``{"boxes": (x1, y1, x2, y2) FloatTensor[N, 4], "labels": Int64Tensor[N], ...}``)
it returns a dict of losses; in eval a list of ``{"boxes", "labels", "scores", ...}``.

Example:
    >>> from manygrad.vision.models import detection
    >>> model = detection.fasterrcnn_mobilenet_v3_large_320_fpn(
    ...     weights_backbone=None, num_classes=3).eval()
    >>> model([mg.rand(3, 120, 160)])[0].keys()
    dict_keys(['boxes', 'labels', 'scores'])
"""

from . import faster_rcnn as _faster_rcnn
from . import fcos as _fcos
from . import keypoint_rcnn as _keypoint_rcnn
from . import mask_rcnn as _mask_rcnn
from . import retinanet as _retinanet
from . import ssd as _ssd
from . import ssdlite as _ssdlite
from .faster_rcnn import *  # noqa: F403
from .fcos import *  # noqa: F403
from .keypoint_rcnn import *  # noqa: F403
from .mask_rcnn import *  # noqa: F403
from .retinanet import *  # noqa: F403
from .ssd import *  # noqa: F403
from .ssdlite import *  # noqa: F403

__all__ = [
    *_faster_rcnn.__all__,
    *_fcos.__all__,
    *_keypoint_rcnn.__all__,
    *_mask_rcnn.__all__,
    *_retinanet.__all__,
    *_ssd.__all__,
    *_ssdlite.__all__,
]
