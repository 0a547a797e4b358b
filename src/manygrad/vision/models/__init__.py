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

from . import resnet
from ._api import (
    Weights,
    WeightsEnum,
    get_model,
    get_model_builder,
    get_model_weights,
    get_weight,
    list_models,
)
from .resnet import *  # noqa: F403

__all__ = [
    "Weights",
    "WeightsEnum",
    "get_model",
    "get_model_builder",
    "get_model_weights",
    "get_weight",
    "list_models",
    *resnet.__all__,
]
