"""Keypoint R-CNN (He et al., "Mask R-CNN", 2017) with a ResNet-50-FPN backbone, as
torchvision builds it: Faster R-CNN plus a keypoint-heatmap branch."""

# ruff: noqa: N801 (torchvision's class name KeypointRCNN_ResNet50_FPN_Weights)
from __future__ import annotations

from typing import Any

from manygrad import nn
from manygrad.nn import functional as F

from ...ops import MultiScaleRoIAlign
from .._api import WeightsEnum, _build, register_model
from ..resnet import ResNet50_Weights
from ..segmentation._utils import _ovewrite_value_param, handle_legacy_interface
from ._builders import _RECIPE, _URL, _loader, _resnet50_fpn
from ._meta import _COCO_PERSON_CATEGORIES, _COCO_PERSON_KEYPOINT_NAMES, _coco_weights
from .faster_rcnn import FasterRCNN

__all__ = ["KeypointRCNN", "KeypointRCNN_ResNet50_FPN_Weights", "keypointrcnn_resnet50_fpn"]


class KeypointRCNN(FasterRCNN):
    """Keypoint R-CNN: Faster R-CNN with a keypoint head that predicts one heatmap per
    keypoint on the pooled features of the positive proposals / detections.

    Targets also hold ``"keypoints"``: ``FloatTensor[N, K, 3]`` (x, y, visibility; 0 =
    not visible). Training adds ``loss_keypoint``; eval adds ``"keypoints"``
    (``Tensor[N, K, 3]``) and ``"keypoints_scores"`` (``Tensor[N, K]``).

    Args:
        backbone, num_classes, ...: as ``FasterRCNN``; ``min_size`` defaults to
            ``(640, 672, 704, 736, 768, 800)`` (one drawn per image in training).
        keypoint_roi_pool: default ``MultiScaleRoIAlign(["0", "1", "2", "3"], 14, 2)``.
        keypoint_head: default ``KeypointRCNNHeads(out_channels, (512,) * 8)``.
        keypoint_predictor: default ``KeypointRCNNPredictor(512, num_keypoints)``.
        num_keypoints: default 17 (None when ``keypoint_predictor`` is given).

    Example:
        >>> model = keypointrcnn_resnet50_fpn(weights_backbone=None).eval()
        >>> model([mg.rand(3, 200, 300)])[0]["keypoints"].shape[1:]
        manygrad.Size([17, 3])
    """

    def __init__(
        self,
        backbone,
        num_classes=None,
        min_size=None,
        max_size=1333,
        image_mean=None,
        image_std=None,
        rpn_anchor_generator=None,
        rpn_head=None,
        rpn_pre_nms_top_n_train=2000,
        rpn_pre_nms_top_n_test=1000,
        rpn_post_nms_top_n_train=2000,
        rpn_post_nms_top_n_test=1000,
        rpn_nms_thresh=0.7,
        rpn_fg_iou_thresh=0.7,
        rpn_bg_iou_thresh=0.3,
        rpn_batch_size_per_image=256,
        rpn_positive_fraction=0.5,
        rpn_score_thresh=0.0,
        box_roi_pool=None,
        box_head=None,
        box_predictor=None,
        box_score_thresh=0.05,
        box_nms_thresh=0.5,
        box_detections_per_img=100,
        box_fg_iou_thresh=0.5,
        box_bg_iou_thresh=0.5,
        box_batch_size_per_image=512,
        box_positive_fraction=0.25,
        bbox_reg_weights=None,
        keypoint_roi_pool=None,
        keypoint_head=None,
        keypoint_predictor=None,
        num_keypoints=None,
        **kwargs,
    ):
        if not isinstance(keypoint_roi_pool, (MultiScaleRoIAlign, type(None))):
            raise TypeError(
                "keypoint_roi_pool should be of type MultiScaleRoIAlign or None instead of "
                f"{type(keypoint_roi_pool)}"
            )
        if min_size is None:
            min_size = (640, 672, 704, 736, 768, 800)
        if num_keypoints is not None and keypoint_predictor is not None:
            raise ValueError("num_keypoints should be None when keypoint_predictor is specified")
        if num_keypoints is None:
            num_keypoints = 17
        out_channels = backbone.out_channels
        if keypoint_roi_pool is None:
            keypoint_roi_pool = MultiScaleRoIAlign(
                featmap_names=["0", "1", "2", "3"], output_size=14, sampling_ratio=2
            )
        if keypoint_head is None:
            keypoint_head = KeypointRCNNHeads(out_channels, tuple(512 for _ in range(8)))
        if keypoint_predictor is None:
            keypoint_predictor = KeypointRCNNPredictor(512, num_keypoints)
        super().__init__(
            backbone, num_classes, min_size, max_size, image_mean, image_std,
            rpn_anchor_generator, rpn_head, rpn_pre_nms_top_n_train, rpn_pre_nms_top_n_test,
            rpn_post_nms_top_n_train, rpn_post_nms_top_n_test, rpn_nms_thresh,
            rpn_fg_iou_thresh, rpn_bg_iou_thresh, rpn_batch_size_per_image,
            rpn_positive_fraction, rpn_score_thresh, box_roi_pool, box_head, box_predictor,
            box_score_thresh, box_nms_thresh, box_detections_per_img, box_fg_iou_thresh,
            box_bg_iou_thresh, box_batch_size_per_image, box_positive_fraction,
            bbox_reg_weights, **kwargs,
        )  # fmt: skip
        self.roi_heads.keypoint_roi_pool = keypoint_roi_pool
        self.roi_heads.keypoint_head = keypoint_head
        self.roi_heads.keypoint_predictor = keypoint_predictor


class KeypointRCNNHeads(nn.Sequential):
    """3x3 conv-ReLU layers (bare ``Conv2d`` and ``ReLU`` modules), one per entry of
    ``layers``."""

    def __init__(self, in_channels, layers):
        blocks, prev = [], in_channels
        for channels in layers:
            blocks += [nn.Conv2d(prev, channels, 3, stride=1, padding=1), nn.ReLU(inplace=True)]
            prev = channels
        super().__init__(*blocks)
        for m in self.children():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.constant_(m.bias, 0)


class KeypointRCNNPredictor(nn.Module):
    """A 4x4 stride-2 transposed conv to one heatmap per keypoint (``kps_score_lowres``),
    upsampled 2x bilinearly: heatmaps of four times the pooled size."""

    def __init__(self, in_channels, num_keypoints):
        super().__init__()
        kernel = 4
        self.kps_score_lowres = nn.ConvTranspose2d(
            in_channels, num_keypoints, kernel, stride=2, padding=kernel // 2 - 1
        )
        nn.init.kaiming_normal_(self.kps_score_lowres.weight, mode="fan_out", nonlinearity="relu")
        nn.init.constant_(self.kps_score_lowres.bias, 0)
        self.up_scale = 2
        self.out_channels = num_keypoints

    def forward(self, x):
        x = self.kps_score_lowres(x)
        return F.interpolate(
            x, scale_factor=float(self.up_scale), mode="bilinear", align_corners=False,
            recompute_scale_factor=False,
        )  # fmt: skip


def _person_weights(url: str, num_params: int, metrics: dict, recipe: str, ops: float):
    return _coco_weights(
        url, num_params, metrics, recipe, ops, 226.054,
        categories=_COCO_PERSON_CATEGORIES, keypoint_names=_COCO_PERSON_KEYPOINT_NAMES,
    )  # fmt: skip


class KeypointRCNN_ResNet50_FPN_Weights(WeightsEnum):
    COCO_LEGACY = _person_weights(
        _URL + "keypointrcnn_resnet50_fpn_coco-9f466800.pth", 59137258,
        {"box_map": 50.6, "kp_map": 61.1}, "https://github.com/pytorch/vision/issues/1606",
        133.924,
    )  # fmt: skip
    COCO_V1 = _person_weights(
        _URL + "keypointrcnn_resnet50_fpn_coco-fc266e95.pth", 59137258,
        {"box_map": 54.6, "kp_map": 65.0}, _RECIPE + "#keypoint-r-cnn", 137.42,
    )  # fmt: skip
    DEFAULT = COCO_V1


def _legacy_default(kwargs: dict) -> KeypointRCNN_ResNet50_FPN_Weights:
    """``pretrained="legacy"`` picks the first checkpoint, ``True`` the current one."""
    if kwargs["pretrained"] == "legacy":
        return KeypointRCNN_ResNet50_FPN_Weights.COCO_LEGACY
    return KeypointRCNN_ResNet50_FPN_Weights.COCO_V1


@register_model()
@handle_legacy_interface(
    weights=("pretrained", _legacy_default),
    weights_backbone=("pretrained_backbone", ResNet50_Weights.IMAGENET1K_V1),
)
def keypointrcnn_resnet50_fpn(
    *,
    weights: KeypointRCNN_ResNet50_FPN_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    num_keypoints: int | None = None,
    weights_backbone: ResNet50_Weights | None = ResNet50_Weights.IMAGENET1K_V1,
    trainable_backbone_layers: int | None = None,
    **kwargs: Any,
) -> KeypointRCNN:
    """Keypoint R-CNN with a ResNet-50-FPN backbone (arguments as
    ``fasterrcnn_resnet50_fpn``; ``num_classes`` defaults to 2, person and background,
    ``num_keypoints`` to 17, COCO's).

    Example:
        >>> model = keypointrcnn_resnet50_fpn(weights_backbone=None, num_keypoints=5)
    """
    weights = KeypointRCNN_ResNet50_FPN_Weights.verify(weights)
    weights_backbone = ResNet50_Weights.verify(weights_backbone)
    if weights is not None:
        num_classes = _ovewrite_value_param(
            "num_classes", num_classes, len(weights.meta["categories"])
        )
        num_keypoints = _ovewrite_value_param(
            "num_keypoints", num_keypoints, len(weights.meta["keypoint_names"])
        )
    else:
        num_classes = 2 if num_classes is None else num_classes
        num_keypoints = 17 if num_keypoints is None else num_keypoints

    def make():
        backbone = _resnet50_fpn(
            weights, weights_backbone, progress, trainable_backbone_layers, v2=False
        )
        return KeypointRCNN(backbone, num_classes, num_keypoints=num_keypoints, **kwargs)

    return _build(make, weights, progress, _loader(KeypointRCNN_ResNet50_FPN_Weights.COCO_V1))
