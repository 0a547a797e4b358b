"""Faster R-CNN (Ren et al., 2015) with a ResNet-50-FPN (v1, and v2 of Li et al., 2021)
or MobileNetV3-Large-FPN backbone, as torchvision builds it: the same module tree, state-
dict keys, arguments and weights enums."""

# ruff: noqa: N801 (torchvision's class names: FasterRCNN_ResNet50_FPN_Weights, ...)
from __future__ import annotations

from typing import Any

from manygrad import nn
from manygrad.nn import functional as F

from ...ops import Conv2dNormActivation, FrozenBatchNorm2d, MultiScaleRoIAlign
from .._api import WeightsEnum, _build, register_model
from ..mobilenetv3 import MobileNet_V3_Large_Weights, mobilenet_v3_large
from ..resnet import ResNet50_Weights
from ..segmentation._utils import handle_legacy_interface
from ._builders import _RECIPE, _URL, _coco_num_classes, _loader, _resnet50_fpn
from ._meta import _coco_weights
from .anchor_utils import AnchorGenerator
from .backbone_utils import _mobilenet_extractor, _validate_trainable_layers
from .generalized_rcnn import GeneralizedRCNN
from .roi_heads import RoIHeads
from .rpn import RegionProposalNetwork, RPNHead
from .transform import GeneralizedRCNNTransform

__all__ = [
    "FasterRCNN",
    "FasterRCNN_ResNet50_FPN_Weights",
    "FasterRCNN_ResNet50_FPN_V2_Weights",
    "FasterRCNN_MobileNet_V3_Large_FPN_Weights",
    "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights",
    "fasterrcnn_resnet50_fpn",
    "fasterrcnn_resnet50_fpn_v2",
    "fasterrcnn_mobilenet_v3_large_fpn",
    "fasterrcnn_mobilenet_v3_large_320_fpn",
]


def _default_anchorgen() -> AnchorGenerator:
    sizes = ((32,), (64,), (128,), (256,), (512,))
    return AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))


class FasterRCNN(GeneralizedRCNN):
    """Faster R-CNN: a backbone (with ``out_channels``), an RPN and Fast R-CNN box heads.

    Inputs are a list of float (C, H, W) images in [0, 1]; in training also a list of
    targets ``{"boxes": FloatTensor[N, 4] (x1, y1, x2, y2), "labels": Int64Tensor[N]}``.
    Training returns the losses (``loss_classifier``, ``loss_box_reg``, ``loss_objectness``,
    ``loss_rpn_box_reg``); eval returns per image ``{"boxes", "labels", "scores"}`` in the
    input's pixels.

    Args:
        backbone: returns a feature map or an ordered dict of them; ``out_channels``.
        num_classes: classes with background (None when ``box_predictor`` is given).
        min_size, max_size: the transform's resizing (default 800, 1333).
        image_mean, image_std: normalization (default ImageNet's).
        rpn_*: the RPN's anchors, head, proposal counts (``rpn_pre_nms_top_n_train/test``,
            ``rpn_post_nms_top_n_train/test``), NMS and matching thresholds, sampling.
        box_*: the RoI pooler, head, predictor, eval filtering (``box_score_thresh``,
            ``box_nms_thresh``, ``box_detections_per_img``), matching and sampling.
        bbox_reg_weights: the box coder's weights (default ``(10, 10, 5, 5)``).
        **kwargs: passed to ``GeneralizedRCNNTransform`` (``size_divisible``, ...).

    Example:
        >>> model = fasterrcnn_mobilenet_v3_large_fpn(weights_backbone=None, num_classes=3)
        >>> predictions = model.eval()([mg.rand(3, 200, 300)])
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
        **kwargs,
    ):
        if not hasattr(backbone, "out_channels"):
            raise ValueError(
                "backbone should contain an attribute out_channels specifying the number of "
                "output channels (assumed to be the same for all the levels)"
            )
        if not isinstance(rpn_anchor_generator, (AnchorGenerator, type(None))):
            raise TypeError(
                "rpn_anchor_generator should be of type AnchorGenerator or None instead of "
                f"{type(rpn_anchor_generator)}"
            )
        if not isinstance(box_roi_pool, (MultiScaleRoIAlign, type(None))):
            raise TypeError(
                "box_roi_pool should be of type MultiScaleRoIAlign or None instead of "
                f"{type(box_roi_pool)}"
            )
        if num_classes is not None and box_predictor is not None:
            raise ValueError("num_classes should be None when box_predictor is specified")
        if num_classes is None and box_predictor is None:
            raise ValueError("num_classes should not be None when box_predictor is not specified")
        out_channels = backbone.out_channels
        if rpn_anchor_generator is None:
            rpn_anchor_generator = _default_anchorgen()
        if rpn_head is None:
            rpn_head = RPNHead(out_channels, rpn_anchor_generator.num_anchors_per_location()[0])
        rpn = RegionProposalNetwork(
            rpn_anchor_generator,
            rpn_head,
            rpn_fg_iou_thresh,
            rpn_bg_iou_thresh,
            rpn_batch_size_per_image,
            rpn_positive_fraction,
            {"training": rpn_pre_nms_top_n_train, "testing": rpn_pre_nms_top_n_test},
            {"training": rpn_post_nms_top_n_train, "testing": rpn_post_nms_top_n_test},
            rpn_nms_thresh,
            score_thresh=rpn_score_thresh,
        )
        if box_roi_pool is None:
            box_roi_pool = MultiScaleRoIAlign(
                featmap_names=["0", "1", "2", "3"], output_size=7, sampling_ratio=2
            )
        if box_head is None:
            resolution = box_roi_pool.output_size[0]
            box_head = TwoMLPHead(out_channels * resolution**2, 1024)
        if box_predictor is None:
            box_predictor = FastRCNNPredictor(1024, num_classes)
        roi_heads = RoIHeads(
            box_roi_pool,
            box_head,
            box_predictor,
            box_fg_iou_thresh,
            box_bg_iou_thresh,
            box_batch_size_per_image,
            box_positive_fraction,
            bbox_reg_weights,
            box_score_thresh,
            box_nms_thresh,
            box_detections_per_img,
        )
        if image_mean is None:
            image_mean = [0.485, 0.456, 0.406]
        if image_std is None:
            image_std = [0.229, 0.224, 0.225]
        transform = GeneralizedRCNNTransform(min_size, max_size, image_mean, image_std, **kwargs)
        super().__init__(backbone, rpn, roi_heads, transform)


class TwoMLPHead(nn.Module):
    """Two fully connected ReLU layers on the flattened pooled features (``fc6``, ``fc7``).

    Example: ``TwoMLPHead(256 * 7 * 7, 1024)``.
    """

    def __init__(self, in_channels: int, representation_size: int):
        super().__init__()
        self.fc6 = nn.Linear(in_channels, representation_size)
        self.fc7 = nn.Linear(representation_size, representation_size)

    def forward(self, x):
        return F.relu(self.fc7(F.relu(self.fc6(x.flatten(start_dim=1)))))


class FastRCNNConvFCHead(nn.Sequential):
    """Conv-norm-ReLU layers then fully connected ReLU layers (Faster R-CNN v2's box head).

    Args:
        input_size: (channels, height, width) of the pooled features.
        conv_layers: channels of each 3x3 conv.
        fc_layers: width of each linear layer.
        norm_layer: the convs' norm (default None).

    Example: ``FastRCNNConvFCHead((256, 7, 7), [256] * 4, [1024], norm_layer=nn.BatchNorm2d)``.
    """

    def __init__(self, input_size, conv_layers, fc_layers, norm_layer=None):
        in_channels, in_height, in_width = input_size
        blocks, prev = [], in_channels
        for channels in conv_layers:
            blocks.append(Conv2dNormActivation(prev, channels, norm_layer=norm_layer))
            prev = channels
        blocks.append(nn.Flatten())
        prev = prev * in_height * in_width
        for width in fc_layers:
            blocks += [nn.Linear(prev, width), nn.ReLU(inplace=True)]
            prev = width
        super().__init__(*blocks)
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)


class FastRCNNPredictor(nn.Module):
    """Class logits (``cls_score``) and per-class box deltas (``bbox_pred``) from the box
    head's features.

    Example: ``model.roi_heads.box_predictor = FastRCNNPredictor(1024, num_classes)``.
    """

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, num_classes * 4)

    def forward(self, x):
        if x.dim() == 4 and list(x.shape[2:]) != [1, 1]:
            raise ValueError(
                "x has the wrong shape, expecting the last two dimensions to be [1,1] instead "
                f"of {list(x.shape[2:])}"
            )
        x = x.flatten(start_dim=1)
        return self.cls_score(x), self.bbox_pred(x)


class FasterRCNN_ResNet50_FPN_Weights(WeightsEnum):
    COCO_V1 = _coco_weights(
        _URL + "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth", 41755286, {"box_map": 37.0},
        _RECIPE + "#faster-r-cnn-resnet-50-fpn", 134.38, 159.743,
    )  # fmt: skip
    DEFAULT = COCO_V1


class FasterRCNN_ResNet50_FPN_V2_Weights(WeightsEnum):
    COCO_V1 = _coco_weights(
        _URL + "fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth", 43712278, {"box_map": 46.7},
        "https://github.com/pytorch/vision/pull/5763", 280.371, 167.104,
    )  # fmt: skip
    DEFAULT = COCO_V1


class FasterRCNN_MobileNet_V3_Large_FPN_Weights(WeightsEnum):
    COCO_V1 = _coco_weights(
        _URL + "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth", 19386354, {"box_map": 32.8},
        _RECIPE + "#faster-r-cnn-mobilenetv3-large-fpn", 4.494, 74.239,
    )  # fmt: skip
    DEFAULT = COCO_V1


class FasterRCNN_MobileNet_V3_Large_320_FPN_Weights(WeightsEnum):
    COCO_V1 = _coco_weights(
        _URL + "fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth", 19386354,
        {"box_map": 22.8}, _RECIPE + "#faster-r-cnn-mobilenetv3-large-320-fpn", 0.719, 74.239,
    )  # fmt: skip
    DEFAULT = COCO_V1


def _v2_parts(out_channels: int) -> dict[str, nn.Module]:
    """The v2 RPN head (two convs) and box head (four conv-BN layers and one FC)."""
    anchor_generator = _default_anchorgen()
    n = anchor_generator.num_anchors_per_location()[0]
    return {
        "rpn_anchor_generator": anchor_generator,
        "rpn_head": RPNHead(out_channels, n, conv_depth=2),
        "box_head": FastRCNNConvFCHead(
            (out_channels, 7, 7), [256, 256, 256, 256], [1024], norm_layer=nn.BatchNorm2d
        ),
    }


@register_model()
@handle_legacy_interface(
    weights=("pretrained", FasterRCNN_ResNet50_FPN_Weights.COCO_V1),
    weights_backbone=("pretrained_backbone", ResNet50_Weights.IMAGENET1K_V1),
)
def fasterrcnn_resnet50_fpn(
    *,
    weights: FasterRCNN_ResNet50_FPN_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    weights_backbone: ResNet50_Weights | None = ResNet50_Weights.IMAGENET1K_V1,
    trainable_backbone_layers: int | None = None,
    **kwargs: Any,
) -> FasterRCNN:
    """Faster R-CNN with a ResNet-50-FPN backbone (Ren et al., 2015).

    Args:
        weights: ``FasterRCNN_ResNet50_FPN_Weights`` entry (or its name) to load (default
            None).
        progress: show a download progress bar (default True).
        num_classes: classes with background (default 91: COCO's ids).
        weights_backbone: the backbone's ImageNet weights (default ``IMAGENET1K_V1``, read
            from the hub cache; None: random, with trainable batch norm).
        trainable_backbone_layers: backbone stages trained, from the last (0 to 5, default
            3; all without pretrained weights).
        **kwargs: passed to ``FasterRCNN`` (``min_size``, ``box_score_thresh``, ...).

    Example:
        >>> model = fasterrcnn_resnet50_fpn(weights_backbone=None, num_classes=3).eval()
        >>> model([mg.rand(3, 200, 300)])[0].keys()
        dict_keys(['boxes', 'labels', 'scores'])
    """
    weights = FasterRCNN_ResNet50_FPN_Weights.verify(weights)
    weights_backbone = ResNet50_Weights.verify(weights_backbone)
    num_classes = _coco_num_classes(weights, num_classes)

    def make():
        backbone = _resnet50_fpn(
            weights, weights_backbone, progress, trainable_backbone_layers, v2=False
        )
        return FasterRCNN(backbone, num_classes=num_classes, **kwargs)

    return _build(make, weights, progress, _loader(FasterRCNN_ResNet50_FPN_Weights.COCO_V1))


@register_model()
@handle_legacy_interface(
    weights=("pretrained", FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1),
    weights_backbone=("pretrained_backbone", ResNet50_Weights.IMAGENET1K_V1),
)
def fasterrcnn_resnet50_fpn_v2(
    *,
    weights: FasterRCNN_ResNet50_FPN_V2_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    weights_backbone: ResNet50_Weights | None = None,
    trainable_backbone_layers: int | None = None,
    **kwargs: Any,
) -> FasterRCNN:
    """Faster R-CNN v2 (Li et al., "Benchmarking Detection Transfer Learning with Vision
    Transformers", 2021): batch norm throughout, a two-conv RPN head, a conv box head;
    ``weights_backbone`` defaults to None (arguments as ``fasterrcnn_resnet50_fpn``)."""
    weights = FasterRCNN_ResNet50_FPN_V2_Weights.verify(weights)
    weights_backbone = ResNet50_Weights.verify(weights_backbone)
    num_classes = _coco_num_classes(weights, num_classes)

    def make():
        backbone = _resnet50_fpn(
            weights, weights_backbone, progress, trainable_backbone_layers, v2=True,
            norm_layer=nn.BatchNorm2d,
        )  # fmt: skip
        parts = _v2_parts(backbone.out_channels)
        return FasterRCNN(backbone, num_classes=num_classes, **parts, **kwargs)

    return _build(make, weights, progress, _loader())


def _fasterrcnn_mobilenet_v3_large_fpn(
    *, weights, progress, num_classes, weights_backbone, trainable_backbone_layers, **kwargs
) -> FasterRCNN:
    if weights is not None:
        weights_backbone = None
    num_classes = _coco_num_classes(weights, num_classes)
    is_trained = weights is not None or weights_backbone is not None
    layers = _validate_trainable_layers(is_trained, trainable_backbone_layers, 6, 3)
    norm_layer = FrozenBatchNorm2d if is_trained else nn.BatchNorm2d

    def make():
        backbone = mobilenet_v3_large(
            weights=weights_backbone, progress=progress, norm_layer=norm_layer
        )
        backbone = _mobilenet_extractor(backbone, True, layers)
        sizes = ((32, 64, 128, 256, 512),) * 3
        anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
        return FasterRCNN(backbone, num_classes, rpn_anchor_generator=anchors, **kwargs)

    return _build(make, weights, progress, _loader())


@register_model()
@handle_legacy_interface(
    weights=("pretrained", FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1),
    weights_backbone=("pretrained_backbone", MobileNet_V3_Large_Weights.IMAGENET1K_V1),
)
def fasterrcnn_mobilenet_v3_large_320_fpn(
    *,
    weights: FasterRCNN_MobileNet_V3_Large_320_FPN_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    weights_backbone: MobileNet_V3_Large_Weights | None = MobileNet_V3_Large_Weights.IMAGENET1K_V1,
    trainable_backbone_layers: int | None = None,
    **kwargs: Any,
) -> FasterRCNN:
    """Faster R-CNN on a MobileNetV3-Large-FPN for low resolutions: images resized to 320
    (at most 640), 150 proposals, proposals below 0.05 objectness dropped (arguments as
    ``fasterrcnn_resnet50_fpn``; ``trainable_backbone_layers`` 0 to 6)."""
    weights = FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.verify(weights)
    weights_backbone = MobileNet_V3_Large_Weights.verify(weights_backbone)
    defaults = {
        "min_size": 320,
        "max_size": 640,
        "rpn_pre_nms_top_n_test": 150,
        "rpn_post_nms_top_n_test": 150,
        "rpn_score_thresh": 0.05,
    }
    return _fasterrcnn_mobilenet_v3_large_fpn(
        weights=weights,
        progress=progress,
        num_classes=num_classes,
        weights_backbone=weights_backbone,
        trainable_backbone_layers=trainable_backbone_layers,
        **{**defaults, **kwargs},
    )


@register_model()
@handle_legacy_interface(
    weights=("pretrained", FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1),
    weights_backbone=("pretrained_backbone", MobileNet_V3_Large_Weights.IMAGENET1K_V1),
)
def fasterrcnn_mobilenet_v3_large_fpn(
    *,
    weights: FasterRCNN_MobileNet_V3_Large_FPN_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    weights_backbone: MobileNet_V3_Large_Weights | None = MobileNet_V3_Large_Weights.IMAGENET1K_V1,
    trainable_backbone_layers: int | None = None,
    **kwargs: Any,
) -> FasterRCNN:
    """Faster R-CNN on a MobileNetV3-Large-FPN: anchors of five sizes on each level,
    proposals below 0.05 objectness dropped (arguments as ``fasterrcnn_resnet50_fpn``;
    ``trainable_backbone_layers`` 0 to 6)."""
    weights = FasterRCNN_MobileNet_V3_Large_FPN_Weights.verify(weights)
    weights_backbone = MobileNet_V3_Large_Weights.verify(weights_backbone)
    return _fasterrcnn_mobilenet_v3_large_fpn(
        weights=weights,
        progress=progress,
        num_classes=num_classes,
        weights_backbone=weights_backbone,
        trainable_backbone_layers=trainable_backbone_layers,
        **{"rpn_score_thresh": 0.05, **kwargs},
    )
