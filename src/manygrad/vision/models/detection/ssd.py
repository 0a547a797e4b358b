"""SSD (Liu et al., "SSD: Single Shot MultiBox Detector", 2016) with a VGG-16 backbone at
300 x 300, as torchvision builds it: the same module tree, state-dict keys and weights
enum."""

# ruff: noqa: N801 (torchvision's class name SSD300_VGG16_Weights)
from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Any

import manygrad as mg
from manygrad import Tensor, nn
from manygrad.nn import functional as F

from ...ops import boxes as box_ops
from .._api import WeightsEnum, _build, register_model
from ..segmentation._utils import _load_state, handle_legacy_interface
from ..vgg import VGG16_Weights, vgg16
from . import _utils as det_utils
from ._builders import _RECIPE, _URL, _coco_num_classes
from ._meta import _coco_weights
from .anchor_utils import DefaultBoxGenerator
from .backbone_utils import _validate_trainable_layers
from .generalized_rcnn import _check_degenerate, _check_targets, _original_sizes
from .transform import GeneralizedRCNNTransform

__all__ = ["SSD300_VGG16_Weights", "ssd300_vgg16"]


class SSD300_VGG16_Weights(WeightsEnum):
    COCO_V1 = _coco_weights(
        _URL + "ssd300_vgg16_coco-b556d3b4.pth", 35641826, {"box_map": 25.1},
        _RECIPE + "#ssd300-vgg16", 34.858, 135.988,
    )  # fmt: skip
    DEFAULT = COCO_V1


def _xavier_init(conv: nn.Module) -> None:
    for layer in conv.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.constant_(layer.bias, 0.0)


class SSDScoringHead(nn.Module):
    """One module per feature map (``module_list``), each output flattened to
    (N, H*W*A, ``num_columns``) and concatenated over maps."""

    def __init__(self, module_list: nn.ModuleList, num_columns: int):
        super().__init__()
        self.module_list = module_list
        self.num_columns = num_columns

    def _get_result_from_module_list(self, x: Tensor, idx: int) -> Tensor:
        return self.module_list[idx](x)

    def forward(self, x: list[Tensor]) -> Tensor:
        outs = [self._get_result_from_module_list(f, i) for i, f in enumerate(x)]
        return det_utils._flatten_levels(outs, self.num_columns)


class SSDClassificationHead(SSDScoringHead):
    """A 3x3 conv per feature map to ``num_classes`` logits per default box."""

    def __init__(self, in_channels: list[int], num_anchors: list[int], num_classes: int):
        convs = nn.ModuleList(
            nn.Conv2d(c, num_classes * a, kernel_size=3, padding=1)
            for c, a in zip(in_channels, num_anchors)
        )
        _xavier_init(convs)
        super().__init__(convs, num_classes)


class SSDRegressionHead(SSDScoringHead):
    """A 3x3 conv per feature map to 4 box deltas per default box."""

    def __init__(self, in_channels: list[int], num_anchors: list[int]):
        convs = nn.ModuleList(
            nn.Conv2d(c, 4 * a, kernel_size=3, padding=1) for c, a in zip(in_channels, num_anchors)
        )
        _xavier_init(convs)
        super().__init__(convs, 4)


class SSDHead(nn.Module):
    """SSD's classification and regression heads."""

    def __init__(self, in_channels: list[int], num_anchors: list[int], num_classes: int):
        super().__init__()
        self.classification_head = SSDClassificationHead(in_channels, num_anchors, num_classes)
        self.regression_head = SSDRegressionHead(in_channels, num_anchors)

    def forward(self, x: list[Tensor]) -> dict[str, Tensor]:
        return {
            "bbox_regression": self.regression_head(x),
            "cls_logits": self.classification_head(x),
        }


class SSD(nn.Module):
    """SSD: class logits and box deltas for the default boxes of every feature map, trained
    with softmax cross-entropy (hard negatives mined at ``(1 - positive_fraction) /
    positive_fraction`` per positive) and smooth L1; inputs and outputs as ``RetinaNet``'s
    (losses ``bbox_regression`` and ``classification``). Images are resized to ``size``.

    Args:
        backbone: returns the feature maps (``out_channels`` or found by a forward pass).
        anchor_generator: a ``DefaultBoxGenerator``.
        size: (width, height) the images are resized to.
        num_classes: classes with background.
        image_mean, image_std: normalization (default ImageNet's).
        head: default ``SSDHead``.
        score_thresh, nms_thresh, detections_per_img, topk_candidates: eval's filtering
            (defaults 0.01, 0.45, 200, 400).
        iou_thresh: the matcher's (default 0.5).
        positive_fraction: of each loss's sample (default 0.25).

    Example:
        >>> model = ssd300_vgg16(weights_backbone=None, num_classes=3).eval()
    """

    def __init__(
        self,
        backbone: nn.Module,
        anchor_generator: DefaultBoxGenerator,
        size: tuple[int, int],
        num_classes: int,
        image_mean: list[float] | None = None,
        image_std: list[float] | None = None,
        head: nn.Module | None = None,
        score_thresh: float = 0.01,
        nms_thresh: float = 0.45,
        detections_per_img: int = 200,
        iou_thresh: float = 0.5,
        topk_candidates: int = 400,
        positive_fraction: float = 0.25,
        **kwargs: Any,
    ):
        super().__init__()
        self.backbone = backbone
        self.anchor_generator = anchor_generator
        self.box_coder = det_utils.BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
        if head is None:
            if hasattr(backbone, "out_channels"):
                out_channels = backbone.out_channels
            else:
                out_channels = det_utils.retrieve_out_channels(backbone, size)
            if len(out_channels) != len(anchor_generator.aspect_ratios):
                raise ValueError(
                    f"The length of the output channels from the backbone ({len(out_channels)}) "
                    "do not match the length of the anchor generator aspect ratios "
                    f"({len(anchor_generator.aspect_ratios)})"
                )
            head = SSDHead(
                out_channels, self.anchor_generator.num_anchors_per_location(), num_classes
            )
        self.head = head
        self.proposal_matcher = det_utils.SSDMatcher(iou_thresh)
        if image_mean is None:
            image_mean = [0.485, 0.456, 0.406]
        if image_std is None:
            image_std = [0.229, 0.224, 0.225]
        self.transform = GeneralizedRCNNTransform(
            min(size), max(size), image_mean, image_std, size_divisible=1, fixed_size=size, **kwargs
        )
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        self.topk_candidates = topk_candidates
        self.neg_to_pos_ratio = (1.0 - positive_fraction) / positive_fraction
        self._has_warned = False

    def eager_outputs(self, losses, detections):
        return losses if self.training else detections

    def compute_loss(self, targets, head_outputs, anchors, matched_idxs) -> dict[str, Tensor]:
        regs, cls_logits = head_outputs["bbox_regression"], head_outputs["cls_logits"]
        num_foreground = 0
        bbox_loss, cls_targets = [], []
        for target, reg, logits, anchors_i, matched in zip(targets, regs, cls_logits, anchors,
                                                          matched_idxs):  # fmt: skip
            fg = mg.where(matched >= 0)[0]
            fg_matched = matched[fg]
            num_foreground += fg_matched.numel()
            deltas = self.box_coder.encode_single(target["boxes"][fg_matched], anchors_i[fg, :])
            bbox_loss.append(F.smooth_l1_loss(reg[fg, :], deltas, reduction="sum"))
            labels = target["labels"]
            gt = mg.zeros((logits.shape[0],), dtype=labels.dtype, device=labels.device)
            gt[fg] = labels[fg_matched]
            cls_targets.append(gt)
        bbox_loss = mg.stack(bbox_loss)
        cls_targets = mg.stack(cls_targets)
        num_classes = cls_logits.shape[-1]
        cls_loss = F.cross_entropy(
            cls_logits.reshape(-1, num_classes), cls_targets.reshape(-1), reduction="none"
        ).reshape(cls_targets.shape)
        # hard negative mining: per image the highest-loss negatives, ratio per positive
        foreground = cls_targets > 0
        num_negative = self.neg_to_pos_ratio * foreground.sum(1, keepdim=True)
        negative_loss = cls_loss.detach().clone()
        negative_loss[foreground] = -float("inf")  # NOTE: positives rank last
        _, idx = negative_loss.sort(1, descending=True)
        background = idx.sort(1)[1] < num_negative
        n = max(1, num_foreground)
        return {
            "bbox_regression": bbox_loss.sum() / n,
            "classification": (cls_loss[foreground].sum() + cls_loss[background].sum()) / n,
        }

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
            matched_idxs = []
            for anchors_i, target in zip(anchors, targets):
                if target["boxes"].numel() == 0:
                    n = anchors_i.shape[0]
                    matched_idxs.append(mg.full((n,), -1, dtype=mg.int64, device=anchors_i.device))
                    continue
                quality = box_ops.box_iou(target["boxes"], anchors_i)
                matched_idxs.append(self.proposal_matcher(quality))
            losses = self.compute_loss(targets, head_outputs, anchors, matched_idxs)
        else:
            detections = self.postprocess_detections(head_outputs, anchors, images.image_sizes)
            detections = self.transform.postprocess(
                detections, images.image_sizes, original_image_sizes
            )
        return self.eager_outputs(losses, detections)

    def postprocess_detections(self, head_outputs, image_anchors, image_shapes):
        """Per image and class, the ``topk_candidates`` boxes scoring above
        ``score_thresh``; NMS per class; the best ``detections_per_img``."""
        pred_scores = F.softmax(head_outputs["cls_logits"], dim=-1)
        num_classes = pred_scores.shape[-1]
        device = pred_scores.device
        detections = []
        for boxes, scores, anchors, image_shape in zip(
            head_outputs["bbox_regression"], pred_scores, image_anchors, image_shapes
        ):
            boxes = box_ops.clip_boxes_to_image(
                self.box_coder.decode_single(boxes, anchors), image_shape
            )
            image_boxes, image_scores, image_labels = [], [], []
            for label in range(1, num_classes):
                score = scores[:, label]
                keep = score > self.score_thresh
                score, box = score[keep], boxes[keep]
                score, idxs = score.topk(det_utils._topk_min(score, self.topk_candidates, 0))
                image_boxes.append(box[idxs])
                image_scores.append(score)
                image_labels.append(mg.full_like(score, label, dtype=mg.int64, device=device))
            boxes, scores = mg.cat(image_boxes, dim=0), mg.cat(image_scores, dim=0)
            labels = mg.cat(image_labels, dim=0)
            keep = box_ops.batched_nms(boxes, scores, labels, self.nms_thresh)
            keep = keep[: self.detections_per_img]
            detections.append(
                {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}
            )
        return detections


class SSDFeatureExtractorVGG(nn.Module):
    """VGG-16 up to conv4_3 (L2-normalized and rescaled by a learned per-channel weight),
    then conv5 with a dilated FC6 / FC7 and extra blocks (``highres`` adds a sixth):
    six feature maps for 300 px inputs."""

    def __init__(self, backbone: nn.Module, highres: bool):
        super().__init__()
        pools = [i for i, layer in enumerate(backbone) if isinstance(layer, nn.MaxPool2d)]
        _, _, maxpool3_pos, maxpool4_pos, _ = pools
        backbone[maxpool3_pos].ceil_mode = True  # NOTE: the paper's 38 x 38 conv4_3 map
        self.scale_weight = nn.Parameter(mg.ones(512) * 20)
        self.features = nn.Sequential(*backbone[:maxpool4_pos])  # until conv4_3

        def block(cin, mid, cout, **conv):
            return nn.Sequential(
                nn.Conv2d(cin, mid, kernel_size=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(mid, cout, **conv),
                nn.ReLU(inplace=True),
            )

        extra = nn.ModuleList(
            [
                block(1024, 256, 512, kernel_size=3, padding=1, stride=2),  # conv8_2
                block(512, 128, 256, kernel_size=3, padding=1, stride=2),  # conv9_2
                block(256, 128, 256, kernel_size=3),  # conv10_2
                block(256, 128, 256, kernel_size=3),  # conv11_2
            ]
        )
        if highres:
            extra.append(block(256, 128, 256, kernel_size=4))  # conv12_2
        _xavier_init(extra)
        fc = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=False),  # maxpool5
            nn.Conv2d(512, 1024, kernel_size=3, padding=6, dilation=6),  # FC6, atrous
            nn.ReLU(inplace=True),
            nn.Conv2d(1024, 1024, kernel_size=1),  # FC7
            nn.ReLU(inplace=True),
        )
        _xavier_init(fc)
        extra.insert(0, nn.Sequential(*backbone[maxpool4_pos:-1], fc))  # conv5_3, no maxpool5
        self.extra = extra
        # NOTE: known here, so that SSD needs no forward pass at 300 px to find them
        # (torchvision's runs one: seconds on the CPU, as long on the meta device)
        self.out_channels = [512, 1024, 512, 256, 256, 256] + ([256] if highres else [])

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = self.features(x)
        output = [self.scale_weight.reshape(1, -1, 1, 1) * F.normalize(x)]
        for block in self.extra:
            x = block(x)
            output.append(x)
        return OrderedDict([(str(i), v) for i, v in enumerate(output)])


def _vgg_extractor(backbone, highres: bool, trainable_layers: int) -> SSDFeatureExtractorVGG:
    features = backbone.features
    pools = [i for i, b in enumerate(features) if isinstance(b, nn.MaxPool2d)][:-1]
    stage_indices = [0, *pools]
    num_stages = len(stage_indices)
    if not 0 <= trainable_layers <= num_stages:
        raise ValueError(
            f"trainable_layers should be in the range [0, {num_stages}]. Instead got "
            f"{trainable_layers}"
        )
    freeze_before = (
        len(features) if trainable_layers == 0 else stage_indices[num_stages - trainable_layers]
    )
    for b in features[:freeze_before]:
        for p in b.parameters():
            p.requires_grad_(False)
    return SSDFeatureExtractorVGG(features, highres)


@register_model()
@handle_legacy_interface(
    weights=("pretrained", SSD300_VGG16_Weights.COCO_V1),
    weights_backbone=("pretrained_backbone", VGG16_Weights.IMAGENET1K_FEATURES),
)
def ssd300_vgg16(
    *,
    weights: SSD300_VGG16_Weights | None = None,
    progress: bool = True,
    num_classes: int | None = None,
    weights_backbone: VGG16_Weights | None = VGG16_Weights.IMAGENET1K_FEATURES,
    trainable_backbone_layers: int | None = None,
    **kwargs: Any,
) -> SSD:
    """SSD300 on VGG-16: images resized to 300 x 300, six feature maps, 8,732 default
    boxes; inputs normalized as the Caffe VGG (mean only, values in [0, 255]).

    Args:
        weights: ``SSD300_VGG16_Weights`` entry (or its name) to load (default None).
        progress: show a download progress bar (default True).
        num_classes: classes with background (default 91).
        weights_backbone: default ``VGG16_Weights.IMAGENET1K_FEATURES`` (hub cache).
        trainable_backbone_layers: VGG stages trained (0 to 5, default 4).
        **kwargs: passed to ``SSD`` (``size`` is fixed and ignored with a warning).

    Example:
        >>> model = ssd300_vgg16(weights_backbone=None, num_classes=3)
    """
    weights = SSD300_VGG16_Weights.verify(weights)
    weights_backbone = VGG16_Weights.verify(weights_backbone)
    if "size" in kwargs:
        warnings.warn(
            "The size of the model is already fixed; ignoring the parameter.", stacklevel=2
        )
        kwargs.pop("size")
    if weights is not None:
        weights_backbone = None
    num_classes = _coco_num_classes(weights, num_classes)
    layers = _validate_trainable_layers(
        weights is not None or weights_backbone is not None, trainable_backbone_layers, 5, 4
    )
    defaults = {
        "image_mean": [0.48235, 0.45882, 0.40784],
        "image_std": [1.0 / 255.0, 1.0 / 255.0, 1.0 / 255.0],  # undo ToTensor's scaling
    }

    def make():
        backbone = _vgg_extractor(vgg16(weights=weights_backbone, progress=progress), False, layers)
        anchor_generator = DefaultBoxGenerator(
            [[2], [2, 3], [2, 3], [2, 3], [2], [2]],
            scales=[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05],
            steps=[8, 16, 32, 64, 100, 300],
        )
        return SSD(backbone, anchor_generator, (300, 300), num_classes, **{**defaults, **kwargs})

    return _build(make, weights, progress, _load_state)
