"""Mask R-CNN (He et al., 2017) with a ResNet-50-FPN backbone (v1, and v2 of Li et al.,
2021), as torchvision builds it: Faster R-CNN plus a mask branch on the detections."""

# ruff: noqa: N801 (torchvision's class names: MaskRCNN_ResNet50_FPN_Weights, ...)
from __future__ import annotations

from collections import OrderedDict
from typing import Any

from manygrad import nn

from ...ops import Conv2dNormActivation, MultiScaleRoIAlign
from .._api import WeightsEnum, _build, register_model
from ..resnet import ResNet50_Weights
from ..segmentation._utils import handle_legacy_interface
from ._builders import _RECIPE, _URL, _coco_num_classes, _loader, _resnet50_fpn
from ._meta import _coco_weights
from .faster_rcnn import FasterRCNN, _v2_parts

__all__ = [
    "MaskRCNN",
    "MaskRCNN_ResNet50_FPN_Weights",
    "MaskRCNN_ResNet50_FPN_V2_Weights",
    "maskrcnn_resnet50_fpn",
    "maskrcnn_resnet50_fpn_v2",
]


class MaskRCNN(FasterRCNN):
    """Mask R-CNN: Faster R-CNN with a mask head on the pooled features of the positive
    proposals (training) or of the detections (eval).

    Targets also hold ``"masks"``: ``UInt8Tensor[N, H, W]``. Training adds ``loss_mask``;
    eval adds ``"masks"``: ``Tensor[N, 1, H, W]`` probabilities in the input's pixels.

    Args:
        backbone, num_classes, ...: as ``FasterRCNN``.
        mask_roi_pool: default ``MultiScaleRoIAlign(["0", "1", "2", "3"], 14, 2)``.
        mask_head: default ``MaskRCNNHeads(out_channels, (256,) * 4, 1)``.
        mask_predictor: default ``MaskRCNNPredictor(256, 256, num_classes)``.

    Example:
        >>> model = maskrcnn_resnet50_fpn(weights_backbone=None, num_classes=3).eval()
        >>> model([mg.rand(3, 200, 300)])[0]["masks"].shape[1:]
        manygrad.Size([1, 200, 300])
    """

    def __init__(
        self,
        backbone,
        num_classes=None,
        min_size=800,
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
        mask_roi_pool=None,
        mask_head=None,
        mask_predictor=None,
        **kwargs,
    ):
        if not isinstance(mask_roi_pool, (MultiScaleRoIAlign, type(None))):
            raise TypeError(
                "mask_roi_pool should be of type MultiScaleRoIAlign or None instead of "
                f"{type(mask_roi_pool)}"
            )
        if num_classes is not None and mask_predictor is not None:
            raise ValueError("num_classes should be None when mask_predictor is specified")
        out_channels = backbone.out_channels
        if mask_roi_pool is None:
            mask_roi_pool = MultiScaleRoIAlign(
                featmap_names=["0", "1", "2", "3"], output_size=14, sampling_ratio=2
            )
        if mask_head is None:
            mask_head = MaskRCNNHeads(out_channels, (256, 256, 256, 256), 1)
        if mask_predictor is None:
            mask_predictor = MaskRCNNPredictor(256, 256, num_classes)
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
        self.roi_heads.mask_roi_pool = mask_roi_pool
        self.roi_heads.mask_head = mask_head
        self.roi_heads.mask_predictor = mask_predictor


class MaskRCNNHeads(nn.Sequential):
    """3x3 conv(-norm)-ReLU layers, one per entry of ``layers``.

    Args:
        in_channels: the pooled features' channels.
        layers: each layer's channels.
        dilation: of the convs (padding keeps the size).
        norm_layer: default None (v2: ``nn.BatchNorm2d``).
    """

    _version = 2

    def __init__(self, in_channels, layers, dilation, norm_layer=None):
        blocks, prev = [], in_channels
        for channels in layers:
            blocks.append(
                Conv2dNormActivation(
                    prev, channels, kernel_size=3, stride=1, padding=dilation,
                    dilation=dilation, norm_layer=norm_layer,
                )
            )  # fmt: skip
            prev = channels
        super().__init__(*blocks)
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
        error_msgs,
    ):  # fmt: skip
        version = local_metadata.get("version", None)
        if version is None or version < 2:  # NOTE: the layers were mask_fcn1... convs
            for i in range(len(self)):
                for kind in ("weight", "bias"):
                    old = f"{prefix}mask_fcn{i + 1}.{kind}"
                    if old in state_dict:
                        state_dict[f"{prefix}{i}.0.{kind}"] = state_dict.pop(old)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


class MaskRCNNPredictor(nn.Sequential):
    """A 2x2 stride-2 transposed conv (``conv5_mask``), ReLU, and a 1x1 conv to one mask
    logit map per class (``mask_fcn_logits``)."""

    def __init__(self, in_channels, dim_reduced, num_classes):
        super().__init__(
            OrderedDict(
                [
                    ("conv5_mask", nn.ConvTranspose2d(in_channels, dim_reduced, 2, 2, 0)),
                    ("relu", nn.ReLU(inplace=True)),
                    ("mask_fcn_logits", nn.Conv2d(dim_reduced, num_classes, 1, 1, 0)),
                ]
            )
        )
        for name, param in self.named_parameters():
            if "weight" in name:
                nn.init.kaiming_normal_(param, mode="fan_out", nonlinearity="relu")


class MaskRCNN_ResNet50_FPN_Weights(WeightsEnum):
    COCO_V1 = _coco_weights(
        _URL + "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth", 44401393,
        {"box_map": 37.9, "mask_map": 34.6}, _RECIPE + "#mask-r-cnn", 134.38, 169.84,
    )  # fmt: skip
    DEFAULT = COCO_V1


class MaskRCNN_ResNet50_FPN_V2_Weights(WeightsEnum):
    COCO_V1 = _coco_weights(
        _URL + "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth", 46359409,
        {"box_map": 47.4, "mask_map": 41.8}, "https://github.com/pytorch/vision/pull/5773",
        333.577, 177.219,
    )  # fmt: skip
    DEFAULT = COCO_V1


@register_model()
@handle_legacy_interface(
    weights=("pretrained", MaskRCNN_ResNet50_FPN_Weights.COCO_V1),
    weights_backbone=("pretrained_backbone", ResNet50_Weights.IMAGENET1K_V1),
)
def maskrcnn_resnet50_fpn(
    *,
    weights: MaskRCNN_ResNet50_FPN_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    weights_backbone: ResNet50_Weights | None = ResNet50_Weights.IMAGENET1K_V1,
    trainable_backbone_layers: int | None = None,
    **kwargs: Any,
) -> MaskRCNN:
    """Mask R-CNN with a ResNet-50-FPN backbone (arguments as
    ``fasterrcnn_resnet50_fpn``; ``**kwargs`` go to ``MaskRCNN``).

    Example:
        >>> model = maskrcnn_resnet50_fpn(weights_backbone=None, num_classes=3)
    """
    weights = MaskRCNN_ResNet50_FPN_Weights.verify(weights)
    weights_backbone = ResNet50_Weights.verify(weights_backbone)
    num_classes = _coco_num_classes(weights, num_classes)

    def make():
        backbone = _resnet50_fpn(
            weights, weights_backbone, progress, trainable_backbone_layers, v2=False
        )
        return MaskRCNN(backbone, num_classes=num_classes, **kwargs)

    return _build(make, weights, progress, _loader(MaskRCNN_ResNet50_FPN_Weights.COCO_V1))


@register_model()
@handle_legacy_interface(
    weights=("pretrained", MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1),
    weights_backbone=("pretrained_backbone", ResNet50_Weights.IMAGENET1K_V1),
)
def maskrcnn_resnet50_fpn_v2(
    *,
    weights: MaskRCNN_ResNet50_FPN_V2_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    weights_backbone: ResNet50_Weights | None = None,
    trainable_backbone_layers: int | None = None,
    **kwargs: Any,
) -> MaskRCNN:
    """Mask R-CNN v2: Faster R-CNN v2's parts and a mask head with batch norm (arguments
    as ``fasterrcnn_resnet50_fpn``; ``weights_backbone`` defaults to None)."""
    weights = MaskRCNN_ResNet50_FPN_V2_Weights.verify(weights)
    weights_backbone = ResNet50_Weights.verify(weights_backbone)
    num_classes = _coco_num_classes(weights, num_classes)

    def make():
        backbone = _resnet50_fpn(
            weights, weights_backbone, progress, trainable_backbone_layers, v2=True,
            norm_layer=nn.BatchNorm2d,
        )  # fmt: skip
        c = backbone.out_channels
        mask_head = MaskRCNNHeads(c, [256, 256, 256, 256], 1, norm_layer=nn.BatchNorm2d)
        return MaskRCNN(
            backbone, num_classes=num_classes, mask_head=mask_head, **_v2_parts(c), **kwargs
        )

    return _build(make, weights, progress, _loader())
