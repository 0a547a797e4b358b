"""SSDlite (Sandler et al., "MobileNetV2", 2018; Howard et al., "Searching for
MobileNetV3", 2019) on MobileNetV3-Large at 320 x 320, as torchvision builds it: the same
module tree, state-dict keys and weights enum."""

# ruff: noqa: N801 (torchvision's class name SSDLite320_MobileNet_V3_Large_Weights)
from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Any

from manygrad import Tensor, nn

from ...ops import Conv2dNormActivation
from .._api import WeightsEnum, _build, register_model
from ..mobilenetv3 import MobileNet_V3_Large_Weights, mobilenet_v3_large
from ..segmentation._utils import _load_state, handle_legacy_interface
from . import _utils as det_utils
from ._builders import _RECIPE, _URL, _coco_num_classes
from ._meta import _coco_weights
from .anchor_utils import DefaultBoxGenerator
from .backbone_utils import _validate_trainable_layers
from .ssd import SSD, SSDScoringHead

__all__ = ["SSDLite320_MobileNet_V3_Large_Weights", "ssdlite320_mobilenet_v3_large"]


def _prediction_block(in_channels, out_channels, kernel_size, norm_layer) -> nn.Sequential:
    """A depthwise conv-norm-ReLU6 and a 1x1 conv."""
    return nn.Sequential(
        Conv2dNormActivation(in_channels, in_channels, kernel_size=kernel_size,
                             groups=in_channels, norm_layer=norm_layer,
                             activation_layer=nn.ReLU6),
        nn.Conv2d(in_channels, out_channels, 1),
    )  # fmt: skip


def _extra_block(in_channels, out_channels, norm_layer) -> nn.Sequential:
    """1x1 to half the channels, 3x3 depthwise stride 2, 1x1 out (each norm and ReLU6)."""
    mid = out_channels // 2
    act = nn.ReLU6
    return nn.Sequential(
        Conv2dNormActivation(in_channels, mid, kernel_size=1, norm_layer=norm_layer,
                             activation_layer=act),
        Conv2dNormActivation(mid, mid, kernel_size=3, stride=2, groups=mid,
                             norm_layer=norm_layer, activation_layer=act),
        Conv2dNormActivation(mid, out_channels, kernel_size=1, norm_layer=norm_layer,
                             activation_layer=act),
    )  # fmt: skip


def _normal_init(conv: nn.Module) -> None:
    for layer in conv.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.normal_(layer.weight, mean=0.0, std=0.03)
            if layer.bias is not None:
                nn.init.constant_(layer.bias, 0.0)


class SSDLiteClassificationHead(SSDScoringHead):
    """A depthwise-separable prediction block per feature map to the class logits."""

    def __init__(self, in_channels, num_anchors, num_classes, norm_layer):
        blocks = nn.ModuleList(
            _prediction_block(c, num_classes * a, 3, norm_layer)
            for c, a in zip(in_channels, num_anchors)
        )
        _normal_init(blocks)
        super().__init__(blocks, num_classes)


class SSDLiteRegressionHead(SSDScoringHead):
    """A depthwise-separable prediction block per feature map to the box deltas."""

    def __init__(self, in_channels, num_anchors, norm_layer):
        blocks = nn.ModuleList(
            _prediction_block(c, 4 * a, 3, norm_layer) for c, a in zip(in_channels, num_anchors)
        )
        _normal_init(blocks)
        super().__init__(blocks, 4)


class SSDLiteHead(nn.Module):
    """SSDlite's classification and regression heads."""

    def __init__(self, in_channels, num_anchors, num_classes, norm_layer: Callable[..., nn.Module]):
        super().__init__()
        self.classification_head = SSDLiteClassificationHead(
            in_channels, num_anchors, num_classes, norm_layer
        )
        self.regression_head = SSDLiteRegressionHead(in_channels, num_anchors, norm_layer)

    def forward(self, x: list[Tensor]) -> dict[str, Tensor]:
        return {
            "bbox_regression": self.regression_head(x),
            "cls_logits": self.classification_head(x),
        }


class SSDLiteFeatureExtractorMobileNet(nn.Module):
    """A MobileNet's features split after the C4 block's expansion layer (first map) and
    at the end (second), then four extra blocks: six feature maps."""

    def __init__(self, backbone: nn.Module, c4_pos: int, norm_layer, width_mult: float = 1.0,
                 min_depth: int = 16):  # fmt: skip
        super().__init__()
        if backbone[c4_pos].use_res_connect:
            raise ValueError("backbone[c4_pos].use_res_connect should be False")
        c4 = backbone[c4_pos]
        self.features = nn.Sequential(
            nn.Sequential(*backbone[:c4_pos], c4.block[0]),  # until C4's expansion layer
            nn.Sequential(c4.block[1:], *backbone[c4_pos + 1 :]),  # C4's depthwise to the end
        )

        def depth(d):
            return max(min_depth, int(d * width_mult))

        extra = nn.ModuleList(
            [
                _extra_block(backbone[-1].out_channels, depth(512), norm_layer),
                _extra_block(depth(512), depth(256), norm_layer),
                _extra_block(depth(256), depth(256), norm_layer),
                _extra_block(depth(256), depth(128), norm_layer),
            ]
        )
        _normal_init(extra)
        self.extra = extra

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        output = []
        for block in (*self.features, *self.extra):
            x = block(x)
            output.append(x)
        return OrderedDict([(str(i), v) for i, v in enumerate(output)])


def _mobilenet_extractor(backbone, trainable_layers: int, norm_layer):
    features = backbone.features
    strided = [i for i, b in enumerate(features) if getattr(b, "_is_cn", False)]
    stage_indices = [0, *strided, len(features) - 1]
    num_stages = len(stage_indices)
    if not 0 <= trainable_layers <= num_stages:
        raise ValueError(
            f"trainable_layers should be in the range [0, {num_stages}], instead got "
            f"{trainable_layers}"
        )
    freeze_before = (
        len(features) if trainable_layers == 0 else stage_indices[num_stages - trainable_layers]
    )
    for b in features[:freeze_before]:
        for p in b.parameters():
            p.requires_grad_(False)
    return SSDLiteFeatureExtractorMobileNet(features, stage_indices[-2], norm_layer)


class SSDLite320_MobileNet_V3_Large_Weights(WeightsEnum):
    COCO_V1 = _coco_weights(
        _URL + "ssdlite320_mobilenet_v3_large_coco-a79551df.pth", 3440060, {"box_map": 21.3},
        _RECIPE + "#ssdlite320-mobilenetv3-large", 0.583, 13.418,
    )  # fmt: skip
    DEFAULT = COCO_V1


@register_model()
@handle_legacy_interface(
    weights=("pretrained", SSDLite320_MobileNet_V3_Large_Weights.COCO_V1),
    weights_backbone=("pretrained_backbone", MobileNet_V3_Large_Weights.IMAGENET1K_V1),
)
def ssdlite320_mobilenet_v3_large(
    *,
    weights: SSDLite320_MobileNet_V3_Large_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    weights_backbone: MobileNet_V3_Large_Weights | None = MobileNet_V3_Large_Weights.IMAGENET1K_V1,
    trainable_backbone_layers: int | None = None,
    norm_layer: Callable[..., nn.Module] | None = None,
    **kwargs: Any,
) -> SSD:
    """SSDlite on MobileNetV3-Large: images resized to 320 x 320, six feature maps,
    depthwise-separable heads (the tail halved when the backbone is not pretrained).

    Args:
        weights: ``SSDLite320_MobileNet_V3_Large_Weights`` entry (or its name) to load.
        progress: show a download progress bar (default True).
        num_classes: classes with background (default 91).
        weights_backbone: default ``MobileNet_V3_Large_Weights.IMAGENET1K_V1`` (hub cache).
        trainable_backbone_layers: MobileNet stages trained (0 to 6, default 6).
        norm_layer: default ``BatchNorm2d(eps=0.001, momentum=0.03)``.
        **kwargs: passed to the MobileNet and ``SSD`` (``score_thresh``, ...).

    Example:
        >>> model = ssdlite320_mobilenet_v3_large(weights_backbone=None, num_classes=3)
    """
    weights = SSDLite320_MobileNet_V3_Large_Weights.verify(weights)
    weights_backbone = MobileNet_V3_Large_Weights.verify(weights_backbone)
    if "size" in kwargs:
        warnings.warn(
            "The size of the model is already fixed; ignoring the parameter.", stacklevel=2
        )
        kwargs.pop("size")
    if weights is not None:
        weights_backbone = None
    num_classes = _coco_num_classes(weights, num_classes)
    layers = _validate_trainable_layers(
        weights is not None or weights_backbone is not None, trainable_backbone_layers, 6, 6
    )
    reduce_tail = weights_backbone is None
    if norm_layer is None:
        norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
    defaults = {
        "score_thresh": 0.001,
        "nms_thresh": 0.55,
        "detections_per_img": 300,
        "topk_candidates": 300,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
    }

    def make():
        # NOTE: as in torchvision, **kwargs reach the MobileNet too (MobileNetV3 ignores
        # the keys it does not take)
        backbone = mobilenet_v3_large(
            weights=weights_backbone, progress=progress, norm_layer=norm_layer,
            reduced_tail=reduce_tail, **kwargs,
        )  # fmt: skip
        if weights_backbone is None:
            _normal_init(backbone)
        backbone = _mobilenet_extractor(backbone, layers, norm_layer)
        size = (320, 320)
        anchor_generator = DefaultBoxGenerator(
            [[2, 3] for _ in range(6)], min_ratio=0.2, max_ratio=0.95
        )
        out_channels = det_utils.retrieve_out_channels(backbone, size)
        num_anchors = anchor_generator.num_anchors_per_location()
        if len(out_channels) != len(anchor_generator.aspect_ratios):
            raise ValueError(
                f"The length of the output channels from the backbone {len(out_channels)} do "
                "not match the length of the anchor generator aspect ratios "
                f"{len(anchor_generator.aspect_ratios)}"
            )
        head = SSDLiteHead(out_channels, num_anchors, num_classes, norm_layer)
        return SSD(
            backbone, anchor_generator, size, num_classes, head=head, **{**defaults, **kwargs}
        )

    return _build(make, weights, progress, _load_state)
