"""FCOS (Tian et al., "FCOS: Fully Convolutional One-Stage Object Detection", 2019) with
a ResNet-50-FPN backbone, as torchvision builds it: the same module tree, state-dict keys
and weights enum."""

# ruff: noqa: N801 (torchvision's class name FCOS_ResNet50_FPN_Weights)
from __future__ import annotations

import math
from collections import OrderedDict
from functools import partial
from typing import Any

import manygrad as mg
from manygrad import Tensor, nn
from manygrad.nn import functional as F

from ...ops import generalized_box_iou_loss, sigmoid_focal_loss
from ...ops.feature_pyramid_network import LastLevelP6P7
from .._api import WeightsEnum, _build, register_model
from ..resnet import ResNet50_Weights
from ..segmentation._utils import handle_legacy_interface
from . import _utils as det_utils
from ._builders import _RECIPE, _URL, _coco_num_classes, _loader, _resnet50_fpn
from ._meta import _coco_weights
from .anchor_utils import AnchorGenerator
from .generalized_rcnn import _check_degenerate, _check_targets, _original_sizes
from .transform import GeneralizedRCNNTransform

__all__ = ["FCOS", "FCOS_ResNet50_FPN_Weights", "fcos_resnet50_fpn"]


def _tower(in_channels: int, num_convs: int, norm_layer) -> nn.Sequential:
    """``num_convs`` blocks of bare Conv2d, norm, ReLU (FCOS's keys: ``conv.0``, ``conv.1``,
    ...), normal(0.01) init."""
    if norm_layer is None:
        norm_layer = partial(nn.GroupNorm, 32)
    layers = []
    for _ in range(num_convs):
        layers += [
            nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1),
            norm_layer(in_channels),
            nn.ReLU(),
        ]
    conv = nn.Sequential(*layers)
    for layer in conv.children():
        if isinstance(layer, nn.Conv2d):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.constant_(layer.bias, 0)
    return conv


class FCOSClassificationHead(nn.Module):
    """A conv tower (GroupNorm) and a 3x3 conv to the class logits (prior 0.01)."""

    def __init__(self, in_channels, num_anchors, num_classes, num_convs=4,
                 prior_probability=0.01, norm_layer=None):  # fmt: skip
        super().__init__()
        self.num_classes = num_classes
        self.num_anchors = num_anchors
        self.conv = _tower(in_channels, num_convs, norm_layer)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors * num_classes, 3, stride=1, padding=1)
        nn.init.normal_(self.cls_logits.weight, std=0.01)
        bias = -math.log((1 - prior_probability) / prior_probability)
        nn.init.constant_(self.cls_logits.bias, bias)

    def forward(self, x: list[Tensor]) -> Tensor:
        return det_utils._flatten_levels(
            [self.cls_logits(self.conv(f)) for f in x], self.num_classes
        )


class FCOSRegressionHead(nn.Module):
    """A conv tower and 3x3 convs to the four (ReLU'd) edge distances and a centerness
    logit per location."""

    def __init__(self, in_channels, num_anchors, num_convs=4, norm_layer=None):
        super().__init__()
        self.conv = _tower(in_channels, num_convs, norm_layer)
        self.bbox_reg = nn.Conv2d(in_channels, num_anchors * 4, 3, stride=1, padding=1)
        self.bbox_ctrness = nn.Conv2d(in_channels, num_anchors * 1, 3, stride=1, padding=1)
        for layer in (self.bbox_reg, self.bbox_ctrness):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, x: list[Tensor]) -> tuple[Tensor, Tensor]:
        feats = [self.conv(f) for f in x]
        reg = det_utils._flatten_levels([F.relu(self.bbox_reg(f)) for f in feats], 4)
        ctr = det_utils._flatten_levels([self.bbox_ctrness(f) for f in feats], 1)
        return reg, ctr


class FCOSHead(nn.Module):
    """FCOS's classification and regression heads and its three losses (focal, GIoU,
    centerness binary cross-entropy, each over the foreground count).

    Args:
        in_channels: the features' channels.
        num_anchors: 1 (one location per cell).
        num_classes: classes with background.
        num_convs: the towers' depth (default 4).
    """

    def __init__(self, in_channels: int, num_anchors: int, num_classes: int, num_convs: int = 4):
        super().__init__()
        self.box_coder = det_utils.BoxLinearCoder(normalize_by_size=True)
        self.classification_head = FCOSClassificationHead(
            in_channels, num_anchors, num_classes, num_convs
        )
        self.regression_head = FCOSRegressionHead(in_channels, num_anchors, num_convs)

    def compute_loss(self, targets, head_outputs, anchors, matched_idxs) -> dict[str, Tensor]:
        cls_logits = head_outputs["cls_logits"]
        bbox_regression = head_outputs["bbox_regression"]
        bbox_ctrness = head_outputs["bbox_ctrness"]
        gt_classes, gt_boxes = [], []
        for target, matched in zip(targets, matched_idxs):
            if len(target["labels"]) == 0:
                classes = target["labels"].new_zeros((len(matched),))
                boxes = target["boxes"].new_zeros((len(matched), 4))
            else:
                classes = target["labels"][matched.clip(min=0)]
                boxes = target["boxes"][matched.clip(min=0)]
            classes[matched < 0] = -1  # background
            gt_classes.append(classes)
            gt_boxes.append(boxes)
        gt_boxes, gt_classes, anchors = mg.stack(gt_boxes), mg.stack(gt_classes), mg.stack(anchors)
        foreground = gt_classes >= 0
        num_foreground = max(1, int(foreground.sum().item()))
        cls_target = mg.zeros_like(cls_logits)
        cls_target[foreground, gt_classes[foreground]] = 1.0
        loss_cls = sigmoid_focal_loss(cls_logits, cls_target, reduction="sum")
        pred_boxes = self.box_coder.decode(bbox_regression, anchors)
        loss_reg = generalized_box_iou_loss(
            pred_boxes[foreground], gt_boxes[foreground], reduction="sum"
        )
        reg_targets = self.box_coder.encode(anchors, gt_boxes)
        if len(reg_targets) == 0:
            ctr_targets = reg_targets.new_zeros(reg_targets.shape[:-1])
        else:
            lr = reg_targets[:, :, [0, 2]]
            tb = reg_targets[:, :, [1, 3]]
            ratio = (lr.min(dim=-1)[0] / lr.max(dim=-1)[0]) * (
                tb.min(dim=-1)[0] / tb.max(dim=-1)[0]
            )
            # NOTE: clamped so that background locations (outside every box, ratio < 0,
            # masked out below) take no square root of a negative; foreground ones are > 0
            ctr_targets = mg.sqrt(ratio.clamp(min=0))
        pred_ctr = bbox_ctrness.squeeze(dim=2)
        loss_ctr = F.binary_cross_entropy_with_logits(
            pred_ctr[foreground], ctr_targets[foreground], reduction="sum"
        )
        return {
            "classification": loss_cls / num_foreground,
            "bbox_regression": loss_reg / num_foreground,
            "bbox_ctrness": loss_ctr / num_foreground,
        }

    def forward(self, x: list[Tensor]) -> dict[str, Tensor]:
        reg, ctr = self.regression_head(x)
        return {
            "cls_logits": self.classification_head(x),
            "bbox_regression": reg,
            "bbox_ctrness": ctr,
        }


class FCOS(nn.Module):
    """FCOS: per location of every FPN level, class logits, the distances to the box's
    four edges and a centerness; locations inside a ground truth's centre region (and its
    level's size range) are its positives. Inputs and outputs as ``RetinaNet``'s (losses
    ``classification``, ``bbox_regression``, ``bbox_ctrness``).

    Args:
        backbone: returns the feature maps; ``out_channels``.
        num_classes: classes with background.
        min_size, max_size, image_mean, image_std: the transform's.
        anchor_generator: one anchor per location, its size the level's stride (default
            8 ... 128).
        head: default ``FCOSHead``.
        center_sampling_radius: the centre region's half side in strides (default 1.5).
        score_thresh, nms_thresh, detections_per_img, topk_candidates: eval's filtering
            (defaults 0.2, 0.6, 100, 1000).

    Example:
        >>> model = fcos_resnet50_fpn(weights_backbone=None, num_classes=3).eval()
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        min_size: int = 800,
        max_size: int = 1333,
        image_mean: list[float] | None = None,
        image_std: list[float] | None = None,
        anchor_generator: AnchorGenerator | None = None,
        head: nn.Module | None = None,
        center_sampling_radius: float = 1.5,
        score_thresh: float = 0.2,
        nms_thresh: float = 0.6,
        detections_per_img: int = 100,
        topk_candidates: int = 1000,
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
                "anchor_generator should be of type AnchorGenerator or None, instead  got "
                f"{type(anchor_generator)}"
            )
        if anchor_generator is None:
            sizes = ((8,), (16,), (32,), (64,), (128,))  # the levels' strides
            anchor_generator = AnchorGenerator(sizes, ((1.0,),) * len(sizes))
        self.anchor_generator = anchor_generator
        n = self.anchor_generator.num_anchors_per_location()[0]
        if n != 1:
            raise ValueError(
                f"anchor_generator.num_anchors_per_location()[0] should be 1 instead of {n}"
            )
        if head is None:
            head = FCOSHead(backbone.out_channels, n, num_classes)
        self.head = head
        self.box_coder = det_utils.BoxLinearCoder(normalize_by_size=True)
        if image_mean is None:
            image_mean = [0.485, 0.456, 0.406]
        if image_std is None:
            image_std = [0.229, 0.224, 0.225]
        self.transform = GeneralizedRCNNTransform(
            min_size, max_size, image_mean, image_std, **kwargs
        )
        self.center_sampling_radius = center_sampling_radius
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        self.topk_candidates = topk_candidates
        self._has_warned = False

    def eager_outputs(self, losses, detections):
        return losses if self.training else detections

    def compute_loss(self, targets, head_outputs, anchors, num_anchors_per_level):
        """Match each location to the smallest ground truth whose centre region holds it
        and whose size fits its level, then ``head.compute_loss``."""
        matched_idxs = []
        for anchors_i, target in zip(anchors, targets):
            if target["boxes"].numel() == 0:
                n = anchors_i.shape[0]
                matched_idxs.append(mg.full((n,), -1, dtype=mg.int64, device=anchors_i.device))
                continue
            gt_boxes = target["boxes"]
            gt_centers = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
            centers = (anchors_i[:, :2] + anchors_i[:, 2:]) / 2
            sizes = anchors_i[:, 2] - anchors_i[:, 0]
            offsets = (centers[:, None, :] - gt_centers[None, :, :]).abs_().max(dim=2).values
            match = offsets < self.center_sampling_radius * sizes[:, None]
            x, y = centers.unsqueeze(dim=2).unbind(dim=1)
            x0, y0, x1, y1 = gt_boxes.unsqueeze(dim=0).unbind(dim=2)
            dist = mg.stack([x - x0, y - y0, x1 - x, y1 - y], dim=2)
            match &= dist.min(dim=2).values > 0  # inside the box
            lower = sizes * 4
            lower[: num_anchors_per_level[0]] = 0
            upper = sizes * 8
            upper[-num_anchors_per_level[-1] :] = float("inf")
            dist = dist.max(dim=2).values
            match &= (dist > lower[:, None]) & (dist < upper[:, None])
            areas = (gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1])
            # NOTE: the smallest matching box wins (1e8 - area is largest for it)
            weighted = match.to(mg.float32) * (1e8 - areas[None, :])
            best, matched = weighted.max(dim=1)
            matched[best < 1e-5] = -1
            matched_idxs.append(matched)
        return self.head.compute_loss(targets, head_outputs, anchors, matched_idxs)

    def postprocess_detections(self, head_outputs, anchors, image_shapes):
        """Per image ``{"boxes", "scores", "labels"}``; scores are
        ``sqrt(sigmoid(class) * sigmoid(centerness))``."""
        logits = head_outputs["cls_logits"]
        regs, ctrs = head_outputs["bbox_regression"], head_outputs["bbox_ctrness"]

        def boxes_of(level, index, anchor_idxs, anchors_sel):
            return self.box_coder.decode(regs[level][index][anchor_idxs], anchors_sel)

        def scores_of(level, index):
            return mg.sqrt(mg.sigmoid(logits[level][index]) * mg.sigmoid(ctrs[level][index]))

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
        per_level = [x.shape[2] * x.shape[3] for x in features]
        losses, detections = {}, []
        if self.training:
            losses = self.compute_loss(targets, head_outputs, anchors, per_level)
        else:
            split = {k: list(v.split(per_level, dim=1)) for k, v in head_outputs.items()}
            split_anchors = [list(a.split(per_level)) for a in anchors]
            detections = self.postprocess_detections(split, split_anchors, images.image_sizes)
            detections = self.transform.postprocess(
                detections, images.image_sizes, original_image_sizes
            )
        return self.eager_outputs(losses, detections)


class FCOS_ResNet50_FPN_Weights(WeightsEnum):
    COCO_V1 = _coco_weights(
        _URL + "fcos_resnet50_fpn_coco-99b0c9b7.pth", 32269600, {"box_map": 39.2},
        _RECIPE + "#fcos-resnet-50-fpn", 128.207, 123.608,
    )  # fmt: skip
    DEFAULT = COCO_V1


@register_model()
@handle_legacy_interface(
    weights=("pretrained", FCOS_ResNet50_FPN_Weights.COCO_V1),
    weights_backbone=("pretrained_backbone", ResNet50_Weights.IMAGENET1K_V1),
)
def fcos_resnet50_fpn(
    *,
    weights: FCOS_ResNet50_FPN_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    weights_backbone: ResNet50_Weights | None = ResNet50_Weights.IMAGENET1K_V1,
    trainable_backbone_layers: int | None = None,
    **kwargs: Any,
) -> FCOS:
    """FCOS with a ResNet-50-FPN backbone (P3-P7). Arguments as
    ``fasterrcnn_resnet50_fpn``; ``**kwargs`` go to ``FCOS``.

    Example:
        >>> model = fcos_resnet50_fpn(weights_backbone=None, num_classes=3)
    """
    weights = FCOS_ResNet50_FPN_Weights.verify(weights)
    weights_backbone = ResNet50_Weights.verify(weights_backbone)
    num_classes = _coco_num_classes(weights, num_classes)

    def make():
        backbone = _resnet50_fpn(
            weights, weights_backbone, progress, trainable_backbone_layers, v2=False,
            returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256),
        )  # fmt: skip
        return FCOS(backbone, num_classes, **kwargs)

    return _build(make, weights, progress, _loader())
