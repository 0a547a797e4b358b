"""FCN (Long et al., "Fully Convolutional Networks for Semantic Segmentation", 2015) on a
dilated ResNet, as torchvision builds it: the same module tree and state-dict keys, so
its checkpoints load."""

# ruff: noqa: N801 (torchvision's class names: FCN_ResNet50_Weights, ...)
from __future__ import annotations

from functools import partial
from typing import Any

from manygrad import nn

from .._api import Weights, WeightsEnum, _build, register_model
from .._presets import SemanticSegmentation
from ..resnet import ResNet, ResNet50_Weights, ResNet101_Weights, resnet50, resnet101
from ._meta import _VOC_CATEGORIES
from ._utils import (
    IntermediateLayerGetter,
    _load_state,
    _ovewrite_value_param,
    _SimpleSegmentationModel,
    handle_legacy_interface,
)

__all__ = ["FCN", "FCN_ResNet50_Weights", "FCN_ResNet101_Weights", "fcn_resnet50", "fcn_resnet101"]


class FCN(_SimpleSegmentationModel):
    """Fully convolutional segmentation: a backbone returning ``{"out"[, "aux"]}`` feature
    maps, a classifier on each, logits upsampled to the input's size.

    Args:
        backbone: returns a dict with ``"out"`` (and ``"aux"`` with an aux classifier).
        classifier: maps ``"out"`` to per-class logits.
        aux_classifier: maps ``"aux"`` to logits for the auxiliary loss (default None).

    Example:
        >>> model = fcn_resnet50(weights_backbone=None, num_classes=5).eval()
        >>> model(mg.rand(1, 3, 64, 64))["out"].shape
        manygrad.Size([1, 5, 64, 64])
    """


class FCNHead(nn.Sequential):
    """3x3 conv to a quarter of the channels, batch norm, ReLU, dropout 0.1, 1x1 conv to
    ``channels`` outputs."""

    def __init__(self, in_channels: int, channels: int) -> None:
        inter = in_channels // 4
        super().__init__(
            nn.Conv2d(in_channels, inter, 3, padding=1, bias=False),
            nn.BatchNorm2d(inter),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Conv2d(inter, channels, 1),
        )


_DOCS = "Trained on the COCO images of the 20 Pascal VOC categories (and background)."
_RECIPE = "https://github.com/pytorch/vision/tree/main/references/segmentation"


def _voc_weights(url: str, num_params: int, miou: float, acc: float, recipe: str, **extra):
    """A ``Weights`` entry of a COCO-with-VOC-labels segmentation checkpoint."""
    meta = {
        "categories": _VOC_CATEGORIES,
        "min_size": (1, 1),
        "_docs": _DOCS,
        "num_params": num_params,
        "recipe": recipe,
        "_metrics": {"COCO-val2017-VOC-labels": {"miou": miou, "pixel_acc": acc}},
        **extra,
    }
    return Weights(url=url, transforms=partial(SemanticSegmentation, resize_size=520), meta=meta)


class FCN_ResNet50_Weights(WeightsEnum):
    COCO_WITH_VOC_LABELS_V1 = _voc_weights(
        "https://download.pytorch.org/models/fcn_resnet50_coco-1167a1af.pth",
        35322218, 60.5, 91.4, _RECIPE + "#fcn_resnet50", _ops=152.717, _file_size=135.009,
    )  # fmt: skip
    DEFAULT = COCO_WITH_VOC_LABELS_V1


class FCN_ResNet101_Weights(WeightsEnum):
    # NOTE: torchvision's recipe link for this entry names the DeepLabV3 section (kept)
    COCO_WITH_VOC_LABELS_V1 = _voc_weights(
        "https://download.pytorch.org/models/fcn_resnet101_coco-7ecb50ca.pth",
        54314346, 63.7, 91.9, _RECIPE + "#deeplabv3_resnet101", _ops=232.738,
        _file_size=207.711,
    )  # fmt: skip
    DEFAULT = COCO_WITH_VOC_LABELS_V1


def _fcn_resnet(backbone: ResNet, num_classes: int, aux: bool | None) -> FCN:
    return_layers = {"layer4": "out"}
    if aux:
        return_layers["layer3"] = "aux"
    body = IntermediateLayerGetter(backbone, return_layers=return_layers)
    aux_classifier = FCNHead(1024, num_classes) if aux else None
    return FCN(body, FCNHead(2048, num_classes), aux_classifier)


def _resnet_segmenter(
    head: Any, weights, weights_backbone, resnet, num_classes, aux_loss, progress: bool
):
    """Build ``head(dilated resnet, num_classes, aux_loss)``, the checkpoint loaded when
    ``weights`` is given (which fixes ``num_classes`` and ``aux_loss``)."""
    if weights is not None:
        weights_backbone = None
        num_classes = _ovewrite_value_param(
            "num_classes", num_classes, len(weights.meta["categories"])
        )
        aux_loss = _ovewrite_value_param("aux_loss", aux_loss, True)
    elif num_classes is None:
        num_classes = 21

    def make():
        backbone = resnet(
            weights=weights_backbone, replace_stride_with_dilation=[False, True, True]
        )
        return head(backbone, num_classes, aux_loss)

    return _build(make, weights, progress, _load_state)


@register_model()
@handle_legacy_interface(
    weights=("pretrained", FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1),
    weights_backbone=("pretrained_backbone", ResNet50_Weights.IMAGENET1K_V1),
)
def fcn_resnet50(
    *,
    weights: FCN_ResNet50_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    aux_loss: bool | None = None,
    weights_backbone: ResNet50_Weights | None = ResNet50_Weights.IMAGENET1K_V1,
    **kwargs: Any,
) -> FCN:
    """FCN on a ResNet-50 whose last two stages are dilated (output stride 8).

    Args:
        weights: ``FCN_ResNet50_Weights`` entry (or its name) to load (default None).
        progress: show a download progress bar (default True).
        num_classes: outputs, background included (default 21).
        aux_loss: add the auxiliary classifier on ``layer3`` (default None: no).
        weights_backbone: ImageNet weights of the ResNet (default
            ``ResNet50_Weights.IMAGENET1K_V1``, read from the hub cache; None: random).
        **kwargs: unused.

    Example:
        >>> model = fcn_resnet50(weights_backbone=None, num_classes=5, aux_loss=True)
    """
    weights = FCN_ResNet50_Weights.verify(weights)
    weights_backbone = ResNet50_Weights.verify(weights_backbone)
    return _resnet_segmenter(
        _fcn_resnet, weights, weights_backbone, resnet50, num_classes, aux_loss, progress
    )


@register_model()
@handle_legacy_interface(
    weights=("pretrained", FCN_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1),
    weights_backbone=("pretrained_backbone", ResNet101_Weights.IMAGENET1K_V1),
)
def fcn_resnet101(
    *,
    weights: FCN_ResNet101_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    aux_loss: bool | None = None,
    weights_backbone: ResNet101_Weights | None = ResNet101_Weights.IMAGENET1K_V1,
    **kwargs: Any,
) -> FCN:
    """FCN on a dilated ResNet-101 (arguments as ``fcn_resnet50``)."""
    weights = FCN_ResNet101_Weights.verify(weights)
    weights_backbone = ResNet101_Weights.verify(weights_backbone)
    return _resnet_segmenter(
        _fcn_resnet, weights, weights_backbone, resnet101, num_classes, aux_loss, progress
    )
