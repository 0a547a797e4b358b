"""DeepLabV3 (Chen et al., "Rethinking Atrous Convolution for Semantic Image
Segmentation", 2017) on a dilated ResNet or MobileNetV3-Large, as torchvision builds it:
the same module tree and state-dict keys, so its checkpoints load."""

# ruff: noqa: N801 (torchvision's class names: DeepLabV3_ResNet50_Weights, ...)
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import manygrad as mg
from manygrad import nn
from manygrad.nn import functional as F

from .._api import WeightsEnum, _build, register_model
from ..mobilenetv3 import MobileNet_V3_Large_Weights, MobileNetV3, mobilenet_v3_large
from ..resnet import ResNet, ResNet50_Weights, ResNet101_Weights, resnet50, resnet101
from ._utils import (
    IntermediateLayerGetter,
    _load_state,
    _ovewrite_value_param,
    _SimpleSegmentationModel,
    handle_legacy_interface,
)
from .fcn import _RECIPE, FCNHead, _resnet_segmenter, _voc_weights

__all__ = [
    "DeepLabV3",
    "DeepLabV3_ResNet50_Weights",
    "DeepLabV3_ResNet101_Weights",
    "DeepLabV3_MobileNet_V3_Large_Weights",
    "deeplabv3_mobilenet_v3_large",
    "deeplabv3_resnet50",
    "deeplabv3_resnet101",
]


class DeepLabV3(_SimpleSegmentationModel):
    """DeepLabV3: a backbone returning ``{"out"[, "aux"]}``, an ASPP head on ``"out"``
    (an ``FCNHead`` on ``"aux"``), logits upsampled to the input's size.

    Args:
        backbone: returns a dict with ``"out"`` (and ``"aux"`` with an aux classifier).
        classifier: maps ``"out"`` to per-class logits (a ``DeepLabHead``).
        aux_classifier: maps ``"aux"`` to logits for the auxiliary loss (default None).

    Example:
        >>> model = deeplabv3_mobilenet_v3_large(weights_backbone=None, num_classes=5).eval()
        >>> model(mg.rand(1, 3, 64, 64))["out"].shape
        manygrad.Size([1, 5, 64, 64])
    """


class DeepLabHead(nn.Sequential):
    """ASPP, a 3x3 conv-norm-ReLU and a 1x1 conv to ``num_classes``."""

    def __init__(
        self, in_channels: int, num_classes: int, atrous_rates: Sequence[int] = (12, 24, 36)
    ) -> None:
        super().__init__(
            ASPP(in_channels, atrous_rates),
            nn.Conv2d(256, 256, 3, padding=1, bias=False),
            nn.BatchNorm2d(256),
            nn.ReLU(),
            nn.Conv2d(256, num_classes, 1),
        )


class ASPPConv(nn.Sequential):
    """A 3x3 conv dilated by ``dilation`` (padded to keep the size), batch norm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation,
                      bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )  # fmt: skip


class ASPPPooling(nn.Sequential):
    """Image-level features: global average pool, 1x1 conv-norm-ReLU, upsampled back to
    the input's size."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )

    def forward(self, x):
        size = x.shape[-2:]
        for mod in self:
            x = mod(x)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: a 1x1 branch, one dilated 3x3 branch per rate and
    an image-pooling branch, concatenated and projected to ``out_channels`` (dropout 0.5).
    """

    def __init__(
        self, in_channels: int, atrous_rates: Sequence[int], out_channels: int = 256
    ) -> None:
        super().__init__()
        branches = [
            nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(),
            )
        ]
        branches += [ASPPConv(in_channels, out_channels, rate) for rate in tuple(atrous_rates)]
        branches.append(ASPPPooling(in_channels, out_channels))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(
            nn.Conv2d(len(self.convs) * out_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Dropout(0.5),
        )

    def forward(self, x):
        return self.project(mg.cat([conv(x) for conv in self.convs], dim=1))


def _deeplabv3_resnet(backbone: ResNet, num_classes: int, aux: bool | None) -> DeepLabV3:
    return_layers = {"layer4": "out"}
    if aux:
        return_layers["layer3"] = "aux"
    body = IntermediateLayerGetter(backbone, return_layers=return_layers)
    aux_classifier = FCNHead(1024, num_classes) if aux else None
    return DeepLabV3(body, DeepLabHead(2048, num_classes), aux_classifier)


def _stage_indices(features: nn.Sequential) -> list[int]:
    """The first block, each strided block (C1 ... Cn-1) and the last block of a MobileNet's
    ``features``."""
    strided = [i for i, b in enumerate(features) if getattr(b, "_is_cn", False)]
    return [0, *strided, len(features) - 1]


def _deeplabv3_mobilenetv3(backbone: MobileNetV3, num_classes: int, aux: bool | None) -> DeepLabV3:
    features = backbone.features
    stages = _stage_indices(features)
    out_pos, aux_pos = stages[-1], stages[-4]  # C5 (output stride 16) and C2 (stride 8)
    return_layers = {str(out_pos): "out"}
    if aux:
        return_layers[str(aux_pos)] = "aux"
    body = IntermediateLayerGetter(features, return_layers=return_layers)
    aux_classifier = FCNHead(features[aux_pos].out_channels, num_classes) if aux else None
    classifier = DeepLabHead(features[out_pos].out_channels, num_classes)
    return DeepLabV3(body, classifier, aux_classifier)


class DeepLabV3_ResNet50_Weights(WeightsEnum):
    COCO_WITH_VOC_LABELS_V1 = _voc_weights(
        "https://download.pytorch.org/models/deeplabv3_resnet50_coco-cd0a2569.pth",
        42004074, 66.4, 92.4, _RECIPE + "#deeplabv3_resnet50", _ops=178.722,
        _file_size=160.515,
    )  # fmt: skip
    DEFAULT = COCO_WITH_VOC_LABELS_V1


class DeepLabV3_ResNet101_Weights(WeightsEnum):
    # NOTE: torchvision's recipe link for this entry names the FCN section (kept)
    COCO_WITH_VOC_LABELS_V1 = _voc_weights(
        "https://download.pytorch.org/models/deeplabv3_resnet101_coco-586e9e4e.pth",
        60996202, 67.4, 92.4, _RECIPE + "#fcn_resnet101", _ops=258.743, _file_size=233.217,
    )  # fmt: skip
    DEFAULT = COCO_WITH_VOC_LABELS_V1


class DeepLabV3_MobileNet_V3_Large_Weights(WeightsEnum):
    COCO_WITH_VOC_LABELS_V1 = _voc_weights(
        "https://download.pytorch.org/models/deeplabv3_mobilenet_v3_large-fc3c493d.pth",
        11029328, 60.3, 91.2, _RECIPE + "#deeplabv3_mobilenet_v3_large", _ops=10.452,
        _file_size=42.301,
    )  # fmt: skip
    DEFAULT = COCO_WITH_VOC_LABELS_V1


@register_model()
@handle_legacy_interface(
    weights=("pretrained", DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1),
    weights_backbone=("pretrained_backbone", ResNet50_Weights.IMAGENET1K_V1),
)
def deeplabv3_resnet50(
    *,
    weights: DeepLabV3_ResNet50_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    aux_loss: bool | None = None,
    weights_backbone: ResNet50_Weights | None = ResNet50_Weights.IMAGENET1K_V1,
    **kwargs: Any,
) -> DeepLabV3:
    """DeepLabV3 on a ResNet-50 whose last two stages are dilated.

    Args:
        weights: ``DeepLabV3_ResNet50_Weights`` entry (or its name) to load (default None).
        progress: show a download progress bar (default True).
        num_classes: outputs, background included (default 21).
        aux_loss: add the auxiliary ``FCNHead`` on ``layer3`` (default None: no).
        weights_backbone: ImageNet weights of the ResNet (default
            ``ResNet50_Weights.IMAGENET1K_V1``, read from the hub cache; None: random).
        **kwargs: unused.

    Example:
        >>> model = deeplabv3_resnet50(weights_backbone=None, num_classes=5)
    """
    weights = DeepLabV3_ResNet50_Weights.verify(weights)
    weights_backbone = ResNet50_Weights.verify(weights_backbone)
    return _resnet_segmenter(
        _deeplabv3_resnet, weights, weights_backbone, resnet50, num_classes, aux_loss, progress
    )


@register_model()
@handle_legacy_interface(
    weights=("pretrained", DeepLabV3_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1),
    weights_backbone=("pretrained_backbone", ResNet101_Weights.IMAGENET1K_V1),
)
def deeplabv3_resnet101(
    *,
    weights: DeepLabV3_ResNet101_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    aux_loss: bool | None = None,
    weights_backbone: ResNet101_Weights | None = ResNet101_Weights.IMAGENET1K_V1,
    **kwargs: Any,
) -> DeepLabV3:
    """DeepLabV3 on a dilated ResNet-101 (arguments as ``deeplabv3_resnet50``)."""
    weights = DeepLabV3_ResNet101_Weights.verify(weights)
    weights_backbone = ResNet101_Weights.verify(weights_backbone)
    return _resnet_segmenter(
        _deeplabv3_resnet, weights, weights_backbone, resnet101, num_classes, aux_loss, progress
    )


@register_model()
@handle_legacy_interface(
    weights=("pretrained", DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1),
    weights_backbone=("pretrained_backbone", MobileNet_V3_Large_Weights.IMAGENET1K_V1),
)
def deeplabv3_mobilenet_v3_large(
    *,
    weights: DeepLabV3_MobileNet_V3_Large_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    aux_loss: bool | None = None,
    weights_backbone: MobileNet_V3_Large_Weights | None = MobileNet_V3_Large_Weights.IMAGENET1K_V1,
    **kwargs: Any,
) -> DeepLabV3:
    """DeepLabV3 on a dilated MobileNetV3-Large (output stride 16; the aux head on the
    stride-8 block). Arguments as ``deeplabv3_resnet50``, with ``weights_backbone`` a
    ``MobileNet_V3_Large_Weights`` entry."""
    weights = DeepLabV3_MobileNet_V3_Large_Weights.verify(weights)
    weights_backbone = MobileNet_V3_Large_Weights.verify(weights_backbone)
    if weights is not None:
        weights_backbone = None
        num_classes = _ovewrite_value_param(
            "num_classes", num_classes, len(weights.meta["categories"])
        )
        aux_loss = _ovewrite_value_param("aux_loss", aux_loss, True)
    elif num_classes is None:
        num_classes = 21

    def make():
        backbone = mobilenet_v3_large(weights=weights_backbone, dilated=True)
        return _deeplabv3_mobilenetv3(backbone, num_classes, aux_loss)

    return _build(make, weights, progress, _load_state)
