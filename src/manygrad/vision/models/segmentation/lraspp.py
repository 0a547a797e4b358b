"""Lite R-ASPP (Howard et al., "Searching for MobileNetV3", 2019) on a dilated
MobileNetV3-Large, as torchvision builds it: the same module tree and state-dict keys."""

# ruff: noqa: N801 (torchvision's class name LRASPP_MobileNet_V3_Large_Weights)
from __future__ import annotations

from collections import OrderedDict
from typing import Any

from manygrad import nn
from manygrad.nn import functional as F

from .._api import WeightsEnum, _build, register_model
from ..mobilenetv3 import MobileNet_V3_Large_Weights, MobileNetV3, mobilenet_v3_large
from ._utils import (
    IntermediateLayerGetter,
    _load_state,
    _ovewrite_value_param,
    handle_legacy_interface,
)
from .deeplabv3 import _stage_indices
from .fcn import _RECIPE, _voc_weights

__all__ = ["LRASPP", "LRASPP_MobileNet_V3_Large_Weights", "lraspp_mobilenet_v3_large"]


class LRASPP(nn.Module):
    """Lite R-ASPP: the backbone's ``"low"`` (stride 8) and ``"high"`` (stride 16) features
    through ``LRASPPHead``, upsampled to the input's size; returns ``{"out": logits}``.

    Args:
        backbone: returns a dict with ``"low"`` and ``"high"`` feature maps.
        low_channels, high_channels: their channels.
        num_classes: outputs, background included.
        inter_channels: channels of the high branch (default 128).

    Example:
        >>> model = lraspp_mobilenet_v3_large(weights_backbone=None, num_classes=5).eval()
        >>> model(mg.rand(1, 3, 64, 64))["out"].shape
        manygrad.Size([1, 5, 64, 64])
    """

    def __init__(
        self,
        backbone: nn.Module,
        low_channels: int,
        high_channels: int,
        num_classes: int,
        inter_channels: int = 128,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = LRASPPHead(low_channels, high_channels, num_classes, inter_channels)

    def forward(self, input):  # noqa: A002 - torchvision's name
        out = self.classifier(self.backbone(input))
        out = F.interpolate(out, size=input.shape[-2:], mode="bilinear", align_corners=False)
        return OrderedDict([("out", out)])


class LRASPPHead(nn.Module):
    """The high features (1x1 conv-norm-ReLU) gated by a squeeze of themselves (pool, 1x1
    conv, sigmoid), upsampled to the low features' size; each classified by a 1x1 conv
    and summed."""

    def __init__(
        self, low_channels: int, high_channels: int, num_classes: int, inter_channels: int
    ) -> None:
        super().__init__()
        self.cbr = nn.Sequential(
            nn.Conv2d(high_channels, inter_channels, 1, bias=False),
            nn.BatchNorm2d(inter_channels),
            nn.ReLU(inplace=True),
        )
        self.scale = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(high_channels, inter_channels, 1, bias=False),
            nn.Sigmoid(),
        )
        self.low_classifier = nn.Conv2d(low_channels, num_classes, 1)
        self.high_classifier = nn.Conv2d(inter_channels, num_classes, 1)

    def forward(self, input: dict):  # noqa: A002 - torchvision's name
        low, high = input["low"], input["high"]
        x = self.cbr(high) * self.scale(high)
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.low_classifier(low) + self.high_classifier(x)


def _lraspp_mobilenetv3(backbone: MobileNetV3, num_classes: int) -> LRASPP:
    features = backbone.features
    stages = _stage_indices(features)
    low_pos, high_pos = stages[-4], stages[-1]  # C2 (output stride 8) and C5 (stride 16)
    body = IntermediateLayerGetter(
        features, return_layers={str(low_pos): "low", str(high_pos): "high"}
    )
    return LRASPP(
        body, features[low_pos].out_channels, features[high_pos].out_channels, num_classes
    )


class LRASPP_MobileNet_V3_Large_Weights(WeightsEnum):
    COCO_WITH_VOC_LABELS_V1 = _voc_weights(
        "https://download.pytorch.org/models/lraspp_mobilenet_v3_large-d234d4ea.pth",
        3221538, 57.9, 91.2, _RECIPE + "#lraspp_mobilenet_v3_large", _ops=2.086,
        _file_size=12.49,
    )  # fmt: skip
    DEFAULT = COCO_WITH_VOC_LABELS_V1


@register_model()
@handle_legacy_interface(
    weights=("pretrained", LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1),
    weights_backbone=("pretrained_backbone", MobileNet_V3_Large_Weights.IMAGENET1K_V1),
)
def lraspp_mobilenet_v3_large(
    *,
    weights: LRASPP_MobileNet_V3_Large_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    weights_backbone: MobileNet_V3_Large_Weights | None = MobileNet_V3_Large_Weights.IMAGENET1K_V1,
    **kwargs: Any,
) -> LRASPP:
    """Lite R-ASPP on a dilated MobileNetV3-Large.

    Args:
        weights: ``LRASPP_MobileNet_V3_Large_Weights`` entry (or its name) to load
            (default None).
        progress: show a download progress bar (default True).
        num_classes: outputs, background included (default 21).
        weights_backbone: ImageNet weights of the MobileNet (default
            ``MobileNet_V3_Large_Weights.IMAGENET1K_V1``, from the hub cache; None: random).
        **kwargs: ``aux_loss=True`` is refused (this model has no auxiliary head).

    Example:
        >>> model = lraspp_mobilenet_v3_large(weights_backbone=None, num_classes=5)
    """
    if kwargs.pop("aux_loss", False):
        raise NotImplementedError("This model does not use auxiliary loss")
    weights = LRASPP_MobileNet_V3_Large_Weights.verify(weights)
    weights_backbone = MobileNet_V3_Large_Weights.verify(weights_backbone)
    if weights is not None:
        weights_backbone = None
        num_classes = _ovewrite_value_param(
            "num_classes", num_classes, len(weights.meta["categories"])
        )
    elif num_classes is None:
        num_classes = 21

    def make():
        backbone = mobilenet_v3_large(weights=weights_backbone, dilated=True)
        return _lraspp_mobilenetv3(backbone, num_classes)

    return _build(make, weights, progress, _load_state)
