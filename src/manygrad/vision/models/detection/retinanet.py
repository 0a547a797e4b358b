"""RetinaNet (Lin et al., "Focal Loss for Dense Object Detection", 2017) with a
ResNet-50-FPN backbone (v1, and v2 with GroupNorm heads and a GIoU box loss), as
torchvision builds it: the same module tree, state-dict keys and weights enums."""

# ruff: noqa: N801 (torchvision's class names: RetinaNet_ResNet50_FPN_Weights, ...)
from __future__ import annotations

import math
from collections import OrderedDict
from functools import partial
from typing import Any

import manygrad as mg
from manygrad import Tensor, nn

from ...ops import Conv2dNormActivation, sigmoid_focal_loss
from ...ops import boxes as box_ops
from ...ops.feature_pyramid_network import LastLevelP6P7
from .._api import WeightsEnum, _build, register_model
from ..resnet import ResNet50_Weights
from ..segmentation._utils import handle_legacy_interface
from . import _utils as det_utils
from ._builders import _RECIPE, _URL, _coco_num_classes, _loader, _resnet50_fpn
from ._meta import _coco_weights
from ._utils import _box_loss
from .anchor_utils import AnchorGenerator
from .generalized_rcnn import _check_degenerate, _check_targets, _original_sizes
from .transform import GeneralizedRCNNTransform

__all__ = [
    "RetinaNet",
    "RetinaNet_ResNet50_FPN_Weights",
    "RetinaNet_ResNet50_FPN_V2_Weights",
    "retinanet_resnet50_fpn",
    "retinanet_resnet50_fpn_v2",
]


def _sum(x: list[Tensor]) -> Tensor:
    res = x[0]
    for i in x[1:]:
        res = res + i
    return res


def _v1_to_v2_weights(state_dict, prefix) -> None:
    """The heads' convs were bare ``Conv2d`` at even indices (with ReLUs between)."""
    for i in range(4):
        for kind in ("weight", "bias"):
            old = f"{prefix}conv.{2 * i}.{kind}"
            if old in state_dict:
                state_dict[f"{prefix}conv.{i}.0.{kind}"] = state_dict.pop(old)


def _default_anchorgen() -> AnchorGenerator:
    sizes = tuple(
        (x, int(x * 2 ** (1.0 / 3)), int(x * 2 ** (2.0 / 3))) for x in [32, 64, 128, 256, 512]
    )
    return AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))


class _ConvTower(nn.Module):
    """Four 3x3 conv(-norm)-ReLU layers (``conv``), normal(0.01) init, old keys renamed."""

    _version = 2

    def _tower(self, in_channels: int, norm_layer) -> nn.Sequential:
        conv = nn.Sequential(
            *[
                Conv2dNormActivation(in_channels, in_channels, norm_layer=norm_layer)
                for _ in range(4)
            ]
        )
        for layer in conv.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.normal_(layer.weight, std=0.01)
                if layer.bias is not None:
                    nn.init.constant_(layer.bias, 0)
        return conv

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
        error_msgs,
    ):  # fmt: skip
        version = local_metadata.get("version", None)
        if version is None or version < 2:
            _v1_to_v2_weights(state_dict, prefix)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


class RetinaNetClassificationHead(_ConvTower):
    """A conv tower and a 3x3 conv to ``num_anchors * num_classes`` logits, biased so that
    every class starts at probability ``prior_probability``; trained with the focal loss.

    Example: ``RetinaNetClassificationHead(256, 9, 91)([p3, p4])`` -> ``(N, anchors, 91)``.
    """

    def __init__(self, in_channels, num_anchors, num_classes, prior_probability=0.01,
                 norm_layer=None):  # fmt: skip
        super().__init__()
        self.conv = self._tower(in_channels, norm_layer)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors * num_classes, 3, stride=1, padding=1)
        nn.init.normal_(self.cls_logits.weight, std=0.01)
        bias = -math.log((1 - prior_probability) / prior_probability)
        nn.init.constant_(self.cls_logits.bias, bias)
        self.num_classes = num_classes
        self.num_anchors = num_anchors
        self.BETWEEN_THRESHOLDS = det_utils.Matcher.BETWEEN_THRESHOLDS

    def compute_loss(self, targets, head_outputs, matched_idxs) -> Tensor:
        """The sigmoid focal loss over the anchors not ignored, per image divided by its
        foreground count, averaged over images."""
        losses = []
        for target, logits, matched in zip(targets, head_outputs["cls_logits"], matched_idxs):
            foreground = matched >= 0
            num_foreground = int(foreground.sum())
            gt = mg.zeros_like(logits)
            gt[foreground, target["labels"][matched[foreground]]] = 1.0
            valid = matched != self.BETWEEN_THRESHOLDS
            loss = sigmoid_focal_loss(logits[valid], gt[valid], reduction="sum")
            losses.append(loss / max(1, num_foreground))
        return _sum(losses) / len(targets)

    def forward(self, x: list[Tensor]) -> Tensor:
        return det_utils._flatten_levels(
            [self.cls_logits(self.conv(f)) for f in x], self.num_classes
        )


class RetinaNetRegressionHead(_ConvTower):
    """A conv tower and a 3x3 conv to ``num_anchors * 4`` box deltas; its loss is L1 on the
    deltas (``_loss_type = "l1"``) or GIoU etc. on the decoded boxes (v2: ``"giou"``).

    Example: ``RetinaNetRegressionHead(256, 9)([p3, p4])`` -> ``(N, anchors, 4)``.
    """

    def __init__(self, in_channels, num_anchors, norm_layer=None):
        super().__init__()
        self.conv = self._tower(in_channels, norm_layer)
        self.bbox_reg = nn.Conv2d(in_channels, num_anchors * 4, 3, stride=1, padding=1)
        nn.init.normal_(self.bbox_reg.weight, std=0.01)
        nn.init.zeros_(self.bbox_reg.bias)
        self.box_coder = det_utils.BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
        self._loss_type = "l1"

    def compute_loss(self, targets, head_outputs, anchors, matched_idxs) -> Tensor:
        """The box loss over the foreground anchors, per image divided by their count,
        averaged over images."""
        losses = []
        regs = head_outputs["bbox_regression"]
        for target, reg, anchors_i, matched in zip(targets, regs, anchors, matched_idxs):
            fg = mg.where(matched >= 0)[0]
            gt_boxes = target["boxes"][matched[fg]]
            loss = _box_loss(
                self._loss_type, self.box_coder, anchors_i[fg, :], gt_boxes, reg[fg, :]
            )
            losses.append(loss / max(1, fg.numel()))
        return _sum(losses) / max(1, len(targets))

    def forward(self, x: list[Tensor]) -> Tensor:
        return det_utils._flatten_levels([self.bbox_reg(self.conv(f)) for f in x], 4)


class RetinaNetHead(nn.Module):
    """The classification and regression heads, shared by every pyramid level.

    Args:
        in_channels: the features' channels.
        num_anchors: anchors per location.
        num_classes: classes (background included, as COCO's ids).
        norm_layer: the towers' norm (default None; v2: ``GroupNorm(32)``).
    """

    def __init__(self, in_channels, num_anchors, num_classes, norm_layer=None):
        super().__init__()
        self.classification_head = RetinaNetClassificationHead(
            in_channels, num_anchors, num_classes, norm_layer=norm_layer
        )
        self.regression_head = RetinaNetRegressionHead(
            in_channels, num_anchors, norm_layer=norm_layer
        )

    def compute_loss(self, targets, head_outputs, anchors, matched_idxs):
        return {
            "classification": self.classification_head.compute_loss(
                targets, head_outputs, matched_idxs
            ),
            "bbox_regression": self.regression_head.compute_loss(
                targets, head_outputs, anchors, matched_idxs
            ),
        }

    def forward(self, x):
        return {
            "cls_logits": self.classification_head(x),
            "bbox_regression": self.regression_head(x),
        }


class RetinaNet(nn.Module):
    """RetinaNet: a one-stage detector, a class and a box head on every FPN level, trained
    with the focal loss; inputs and outputs as ``FasterRCNN``'s (losses
    ``classification`` and ``bbox_regression``).

    Args:
        backbone: returns the feature maps; ``out_channels``.
        num_classes: classes with background.
        min_size, max_size, image_mean, image_std: the transform's (as ``FasterRCNN``).
        anchor_generator: default three sizes and three ratios per level (9 anchors).
        head: default ``RetinaNetHead``.
        proposal_matcher: default ``Matcher(fg_iou_thresh, bg_iou_thresh, True)``.
        score_thresh, nms_thresh, detections_per_img, topk_candidates: eval's filtering
            (defaults 0.05, 0.5, 300, 1000).
        fg_iou_thresh, bg_iou_thresh: the matcher's (defaults 0.5, 0.4).

    Example:
        >>> model = retinanet_resnet50_fpn(weights_backbone=None, num_classes=3).eval()
        >>> model([mg.rand(3, 200, 300)])[0].keys()
        dict_keys(['boxes', 'scores', 'labels'])
    """

    def __init__(
        self,
        backbone,
        num_classes,
        min_size=800,
        max_size=1333,
        image_mean=None,
        image_std=None,
        anchor_generator=None,
        head=None,
        proposal_matcher=None,
        score_thresh=0.05,
        nms_thresh=0.5,
        detections_per_img=300,
        fg_iou_thresh=0.5,
        bg_iou_thresh=0.4,
        topk_candidates=1000,
        **kwargs,
    ):
        super().__init__()
        if not hasattr(backbone, "out_channels"):
            raise ValueError(
                "backbone should contain an attribute out_channels specifying the number of "
                "output channels (assumed to be the same for all the levels)"
            )
        self.backbone = backbone
        if not isinstance(anchor_generator, (AnchorGenerator, type(None))):
            raise TypeError(
                "anchor_generator should be of type AnchorGenerator or None instead of "
                f"{type(anchor_generator)}"
            )
        if anchor_generator is None:
            anchor_generator = _default_anchorgen()
        self.anchor_generator = anchor_generator
        if head is None:
            n = anchor_generator.num_anchors_per_location()[0]
            head = RetinaNetHead(backbone.out_channels, n, num_classes)
        self.head = head
        if proposal_matcher is None:
            proposal_matcher = det_utils.Matcher(fg_iou_thresh, bg_iou_thresh, True)
        self.proposal_matcher = proposal_matcher
        self.box_coder = det_utils.BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
        if image_mean is None:
            image_mean = [0.485, 0.456, 0.406]
        if image_std is None:
            image_std = [0.229, 0.224, 0.225]
        self.transform = GeneralizedRCNNTransform(
            min_size, max_size, image_mean, image_std, **kwargs
        )
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        self.topk_candidates = topk_candidates
        self._has_warned = False

    def eager_outputs(self, losses, detections):
        return losses if self.training else detections

    def compute_loss(self, targets, head_outputs, anchors):
        matched_idxs = []
        for anchors_i, target in zip(anchors, targets):
            if target["boxes"].numel() == 0:
                n = anchors_i.shape[0]
                matched_idxs.append(mg.full((n,), -1, dtype=mg.int64, device=anchors_i.device))
                continue
            matched_idxs.append(self.proposal_matcher(box_ops.box_iou(target["boxes"], anchors_i)))
        return self.head.compute_loss(targets, head_outputs, anchors, matched_idxs)

    def postprocess_detections(self, head_outputs, anchors, image_shapes):
        """Per image ``{"boxes", "scores", "labels"}`` from the per-level outputs."""
        logits, regs = head_outputs["cls_logits"], head_outputs["bbox_regression"]

        def boxes_of(level, index, anchor_idxs, anchors_sel):
            return self.box_coder.decode_single(regs[level][index][anchor_idxs], anchors_sel)

        def scores_of(level, index):
            return mg.sigmoid(logits[level][index])

        return det_utils._dense_detections(self, boxes_of, logits, image_shapes, anchors, scores_of)

    def forward(self, images, targets=None):
        _check_targets(targets, self.training)
        original_image_sizes = _original_sizes(images)
        images, targets = self.transform(images, targets)
        _check_degenerate(targets)
        features = self.backbone(images.tensors)
        if isinstance(features, Tensor):
            features = OrderedDict([("0", features)])
        features = list(features.values())
        head_outputs = self.head(features)
        anchors = self.anchor_generator(images, features)
        losses, detections = {}, []
        if self.training:
            losses = self.compute_loss(targets, head_outputs, anchors)
        else:
            hw = [x.shape[2] * x.shape[3] for x in features]
            a = head_outputs["cls_logits"].shape[1] // sum(hw)
            per_level = [n * a for n in hw]
            split = {k: list(v.split(per_level, dim=1)) for k, v in head_outputs.items()}
            split_anchors = [list(x.split(per_level)) for x in anchors]
            detections = self.postprocess_detections(split, split_anchors, images.image_sizes)
            detections = self.transform.postprocess(
                detections, images.image_sizes, original_image_sizes
            )
        return self.eager_outputs(losses, detections)


class RetinaNet_ResNet50_FPN_Weights(WeightsEnum):
    COCO_V1 = _coco_weights(
        _URL + "retinanet_resnet50_fpn_coco-eeacb38b.pth", 34014999, {"box_map": 36.4},
        _RECIPE + "#retinanet", 151.54, 130.267,
    )  # fmt: skip
    DEFAULT = COCO_V1


class RetinaNet_ResNet50_FPN_V2_Weights(WeightsEnum):
    COCO_V1 = _coco_weights(
        _URL + "retinanet_resnet50_fpn_v2_coco-5905b1c5.pth", 38198935, {"box_map": 41.5},
        "https://github.com/pytorch/vision/pull/5756", 152.238, 146.037,
    )  # fmt: skip
    DEFAULT = COCO_V1


@register_model()
@handle_legacy_interface(
    weights=("pretrained", RetinaNet_ResNet50_FPN_Weights.COCO_V1),
    weights_backbone=("pretrained_backbone", ResNet50_Weights.IMAGENET1K_V1),
)
def retinanet_resnet50_fpn(
    *,
    weights: RetinaNet_ResNet50_FPN_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    weights_backbone: ResNet50_Weights | None = ResNet50_Weights.IMAGENET1K_V1,
    trainable_backbone_layers: int | None = None,
    **kwargs: Any,
) -> RetinaNet:
    """RetinaNet with a ResNet-50-FPN backbone (P3-P7: P6 and P7 from P5). Arguments as
    ``fasterrcnn_resnet50_fpn``; ``**kwargs`` go to ``RetinaNet``.

    Example:
        >>> model = retinanet_resnet50_fpn(weights_backbone=None, num_classes=3)
    """
    weights = RetinaNet_ResNet50_FPN_Weights.verify(weights)
    weights_backbone = ResNet50_Weights.verify(weights_backbone)
    num_classes = _coco_num_classes(weights, num_classes)

    def make():
        backbone = _resnet50_fpn(
            weights, weights_backbone, progress, trainable_backbone_layers, v2=False,
            returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256),
        )  # fmt: skip
        return RetinaNet(backbone, num_classes, **kwargs)

    return _build(make, weights, progress, _loader(RetinaNet_ResNet50_FPN_Weights.COCO_V1))


@register_model()
@handle_legacy_interface(
    weights=("pretrained", RetinaNet_ResNet50_FPN_V2_Weights.COCO_V1),
    weights_backbone=("pretrained_backbone", ResNet50_Weights.IMAGENET1K_V1),
)
def retinanet_resnet50_fpn_v2(
    *,
    weights: RetinaNet_ResNet50_FPN_V2_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    weights_backbone: ResNet50_Weights | None = None,
    trainable_backbone_layers: int | None = None,
    **kwargs: Any,
) -> RetinaNet:
    """RetinaNet v2 (Zhang et al., ATSS-style improvements): P6 from C5, GroupNorm in the
    heads, GIoU box loss, batch norm in the backbone (arguments as
    ``retinanet_resnet50_fpn``; ``weights_backbone`` defaults to None)."""
    weights = RetinaNet_ResNet50_FPN_V2_Weights.verify(weights)
    weights_backbone = ResNet50_Weights.verify(weights_backbone)
    num_classes = _coco_num_classes(weights, num_classes)

    def make():
        backbone = _resnet50_fpn(
            weights, weights_backbone, progress, trainable_backbone_layers, v2=True,
            returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(2048, 256),
        )  # fmt: skip
        anchor_generator = _default_anchorgen()
        head = RetinaNetHead(
            backbone.out_channels,
            anchor_generator.num_anchors_per_location()[0],
            num_classes,
            norm_layer=partial(nn.GroupNorm, 32),
        )
        head.regression_head._loss_type = "giou"
        return RetinaNet(
            backbone, num_classes, anchor_generator=anchor_generator, head=head, **kwargs
        )

    return _build(make, weights, progress, _loader())
