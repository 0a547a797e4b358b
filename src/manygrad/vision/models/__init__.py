"""torchvision's classification models (``torchvision.models``) on manygrad: ResNet,
ResNeXt, Wide ResNet, VGG, AlexNet, SqueezeNet, MobileNet V2/V3, DenseNet, ShuffleNet V2,
EfficientNet B0-B7 and V2, GoogLeNet, Inception v3, MNASNet, RegNet X/Y, ConvNeXt, Vision
Transformer, Swin Transformer V1/V2 and MaxViT, with torchvision's module trees and
state-dict keys, its weights enums (``ResNet18_Weights.IMAGENET1K_V1``, ``.DEFAULT``,
``meta["categories"]``) and its registry (``get_model``, ``list_models``,
``get_model_weights``, ``get_weight``).

Example:
    >>> from manygrad.vision import models
    >>> model = models.resnet18(num_classes=10)
    >>> model = models.get_model("resnet50", weights="DEFAULT")  # from the hub cache
"""

from . import _api
from . import alexnet as _alexnet
from . import convnext as _convnext
from . import densenet as _densenet
from . import efficientnet as _efficientnet
from . import googlenet as _googlenet
from . import inception as _inception
from . import maxvit as _maxvit
from . import mnasnet as _mnasnet
from . import mobilenet as _mobilenet
from . import regnet as _regnet
from . import resnet as _resnet
from . import shufflenetv2 as _shufflenetv2
from . import squeezenet as _squeezenet
from . import swin_transformer as _swin_transformer
from . import vgg as _vgg
from . import vision_transformer as _vision_transformer
from ._api import *  # noqa: F403
from .alexnet import *  # noqa: F403
from .convnext import *  # noqa: F403
from .densenet import *  # noqa: F403
from .efficientnet import *  # noqa: F403
from .googlenet import *  # noqa: F403
from .inception import *  # noqa: F403
from .maxvit import *  # noqa: F403
from .mnasnet import *  # noqa: F403
from .mobilenet import *  # noqa: F403
from .regnet import *  # noqa: F403
from .resnet import *  # noqa: F403
from .shufflenetv2 import *  # noqa: F403
from .squeezenet import *  # noqa: F403
from .swin_transformer import *  # noqa: F403
from .vgg import *  # noqa: F403
from .vision_transformer import *  # noqa: F403

# isort: split
# NOTE: the task packages, as torchvision's (after the classification models they build on)
from . import (  # noqa: F401
    detection,
    feature_extraction,
    optical_flow,
    quantization,
    segmentation,
    video,
)

# NOTE: as in torchvision, a builder shadows its module of the same name (models.alexnet,
# models.googlenet are the functions; the modules stay importable as
# manygrad.vision.models.alexnet, ...)
__all__ = [
    *_api.__all__,
    *_resnet.__all__,
    *_vgg.__all__,
    *_alexnet.__all__,
    *_squeezenet.__all__,
    *_mobilenet.__all__,
    *_densenet.__all__,
    *_shufflenetv2.__all__,
    *_efficientnet.__all__,
    *_googlenet.__all__,
    *_inception.__all__,
    *_mnasnet.__all__,
    *_regnet.__all__,
    *_convnext.__all__,
    *_vision_transformer.__all__,
    *_swin_transformer.__all__,
    *_maxvit.__all__,
]
