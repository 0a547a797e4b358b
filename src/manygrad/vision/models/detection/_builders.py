"""Helpers the detection builders share: checkpoint locations, ``num_classes`` from the
weights, loading (with the first COCO checkpoints' frozen-norm eps), the ResNet-50-FPN
body."""

from __future__ import annotations

from manygrad import nn

from ...ops import FrozenBatchNorm2d
from .._api import WeightsEnum
from ..resnet import resnet50
from ..segmentation._utils import _ovewrite_value_param
from ._utils import overwrite_eps
from .backbone_utils import _resnet_fpn_extractor, _validate_trainable_layers

_RECIPE = "https://github.com/pytorch/vision/tree/main/references/detection"
_URL = "https://download.pytorch.org/models/"


def _coco_num_classes(weights, num_classes, default: int = 91) -> int:
    if weights is not None:
        return _ovewrite_value_param("num_classes", num_classes, len(weights.meta["categories"]))
    return default if num_classes is None else num_classes


def _loader(eps_zero_for: WeightsEnum | None = None):
    """Load a checkpoint; the first COCO checkpoints want their frozen norms' eps at 0."""

    def load(model, weights, progress):
        model.load_state_dict(weights.get_state_dict(progress=progress, check_hash=True))
        if weights == eps_zero_for:
            overwrite_eps(model, 0.0)

    return load


def _resnet50_fpn(weights, weights_backbone, progress, trainable_backbone_layers, v2, **extra):
    """The ResNet-50-FPN body: v1 with frozen norms when pretrained (batch norm when not),
    v2 with batch norm; ``extra`` goes to the FPN extractor (``norm_layer``, ...)."""
    if weights is not None:
        weights_backbone = None
    is_trained = weights is not None or weights_backbone is not None
    layers = _validate_trainable_layers(is_trained, trainable_backbone_layers, 5, 3)
    norm_layer = FrozenBatchNorm2d if is_trained and not v2 else nn.BatchNorm2d
    backbone = resnet50(weights=weights_backbone, progress=progress, norm_layer=norm_layer)
    return _resnet_fpn_extractor(backbone, layers, **extra)
