"""torchvision's classification models (``torchvision.models``) on manygrad: ResNet,
ResNeXt, Wide ResNet, VGG, AlexNet, MobileNet V2/V3, SqueezeNet, DenseNet, ShuffleNet V2
and EfficientNet, with torchvision's module trees and state-dict keys, its weights enums
(``ResNet18_Weights.IMAGENET1K_V1``, ``.DEFAULT``) and its registry (``get_model``,
``list_models``, ``get_model_weights``, ``get_weight``).

Example:
    >>> from manygrad.vision import models
    >>> model = models.resnet18(num_classes=10)
    >>> model = models.get_model("resnet50", weights="DEFAULT")  # from the hub cache
"""

from . import _api
from . import alexnet as _alexnet
from . import densenet as _densenet
from . import efficientnet as _efficientnet
from . import mobilenet as _mobilenet
from . import resnet as _resnet
from . import shufflenetv2 as _shufflenetv2
from . import squeezenet as _squeezenet
from . import vgg as _vgg
from ._api import *  # noqa: F403
from .alexnet import *  # noqa: F403
from .densenet import *  # noqa: F403
from .efficientnet import *  # noqa: F403
from .mobilenet import *  # noqa: F403
from .resnet import *  # noqa: F403
from .shufflenetv2 import *  # noqa: F403
from .squeezenet import *  # noqa: F403
from .vgg import *  # noqa: F403

# NOTE: as in torchvision, a builder shadows its module of the same name (models.alexnet is
# the function; the module stays importable as manygrad.vision.models.alexnet)
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
]
