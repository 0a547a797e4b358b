"""The Region Proposal Network (Ren et al., "Faster R-CNN", 2015; torchvision.models.
detection.rpn): objectness and box deltas per anchor, proposals kept by score and NMS,
and its two losses."""

from __future__ import annotations

import manygrad as mg
from manygrad import Tensor, nn
from manygrad.nn import functional as F

from ...ops import Conv2dNormActivation
from ...ops import boxes as box_ops
from . import _utils as det_utils
from .anchor_utils import AnchorGenerator
from .image_list import ImageList

__all__ = ["AnchorGenerator", "RPNHead", "RegionProposalNetwork"]


class RPNHead(nn.Module):
    """``conv_depth`` 3x3 conv-ReLU layers shared by every level, then 1x1 convs for the
    objectness logit and the 4 box deltas of each anchor.

    Args:
        in_channels: channels of the feature maps.
        num_anchors: anchors per location.
        conv_depth: the shared convs (default 1).

    Example:
        >>> logits, deltas = RPNHead(256, 3)([p2, p3])
    """

    _version = 2

    def __init__(self, in_channels: int, num_anchors: int, conv_depth: int = 1) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            *[
                Conv2dNormActivation(in_channels, in_channels, kernel_size=3, norm_layer=None)
                for _ in range(conv_depth)
            ]
        )
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, kernel_size=1, stride=1)
        self.bbox_pred = nn.Conv2d(in_channels, num_anchors * 4, kernel_size=1, stride=1)
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.normal_(layer.weight, std=0.01)
                if layer.bias is not None:
                    nn.init.constant_(layer.bias, 0)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
        error_msgs,
    ):  # fmt: skip
        version = local_metadata.get("version", None)
        if version is None or version < 2:  # NOTE: the shared conv was a bare Conv2d
            for kind in ("weight", "bias"):
                old = f"{prefix}conv.{kind}"
                if old in state_dict:
                    state_dict[f"{prefix}conv.0.0.{kind}"] = state_dict.pop(old)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def forward(self, x: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        logits, bbox_reg = [], []
        for feature in x:
            t = self.conv(feature)
            logits.append(self.cls_logits(t))
            bbox_reg.append(self.bbox_pred(t))
        return logits, bbox_reg


def permute_and_flatten(layer: Tensor, N: int, A: int, C: int, H: int, W: int) -> Tensor:  # noqa: N803
    """(N, A*C, H, W) -> (N, H*W*A, C): the order of the anchors."""
    return layer.reshape(N, -1, C, H, W).permute(0, 3, 4, 1, 2).reshape(N, -1, C)


def concat_box_prediction_layers(box_cls: list[Tensor], box_regression: list[Tensor]):
    """Per-level predictions flattened in anchor order and concatenated over levels and
    images: ``Tensor[N*anchors, C]`` and ``Tensor[N*anchors, 4]``."""
    cls_flat, reg_flat = [], []
    for cls_level, reg_level in zip(box_cls, box_regression):
        n, axc, h, w = cls_level.shape
        a = reg_level.shape[1] // 4
        cls_flat.append(permute_and_flatten(cls_level, n, a, axc // a, h, w))
        reg_flat.append(permute_and_flatten(reg_level, n, a, 4, h, w))
    return mg.cat(cls_flat, dim=1).flatten(0, -2), mg.cat(reg_flat, dim=1).reshape(-1, 4)


class RegionProposalNetwork(nn.Module):
    """Region proposals: anchors scored and refined by ``head``; per image and level the
    ``pre_nms_top_n`` best, clipped, small ones dropped, NMS per level, the
    ``post_nms_top_n`` best kept. In training also the objectness (binary cross-entropy)
    and box (smooth L1) losses on a balanced sample of anchors.

    Args:
        anchor_generator: an ``AnchorGenerator``.
        head: e.g. ``RPNHead``.
        fg_iou_thresh, bg_iou_thresh: IoUs with a ground truth at or above which an anchor
            is positive, and below which negative.
        batch_size_per_image, positive_fraction: the loss's anchor sample.
        pre_nms_top_n, post_nms_top_n: ``{"training": n, "testing": n}``.
        nms_thresh: the NMS IoU threshold.
        score_thresh: drop proposals whose objectness is below this (default 0.0).

    Example:
        >>> boxes, losses = rpn(image_list, features, targets)
    """

    def __init__(
        self,
        anchor_generator: AnchorGenerator,
        head: nn.Module,
        fg_iou_thresh: float,
        bg_iou_thresh: float,
        batch_size_per_image: int,
        positive_fraction: float,
        pre_nms_top_n: dict[str, int],
        post_nms_top_n: dict[str, int],
        nms_thresh: float,
        score_thresh: float = 0.0,
    ) -> None:
        super().__init__()
        self.anchor_generator = anchor_generator
        self.head = head
        self.box_coder = det_utils.BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
        self.box_similarity = box_ops.box_iou
        self.proposal_matcher = det_utils.Matcher(
            fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=True
        )
        self.fg_bg_sampler = det_utils.BalancedPositiveNegativeSampler(
            batch_size_per_image, positive_fraction
        )
        self._pre_nms_top_n = pre_nms_top_n
        self._post_nms_top_n = post_nms_top_n
        self.nms_thresh = nms_thresh
        self.score_thresh = score_thresh
        self.min_size = 1e-3

    def pre_nms_top_n(self) -> int:
        return self._pre_nms_top_n["training" if self.training else "testing"]

    def post_nms_top_n(self) -> int:
        return self._post_nms_top_n["training" if self.training else "testing"]

    def assign_targets_to_anchors(self, anchors: list[Tensor], targets: list[dict[str, Tensor]]):
        """Per image, each anchor's label (1 positive, 0 negative, -1 ignored) and the
        ground-truth box it is matched to."""
        labels, matched_gt_boxes = [], []
        for anchors_per_image, target in zip(anchors, targets):
            gt_boxes = target["boxes"]
            device = anchors_per_image.device
            if gt_boxes.numel() == 0:
                matched = mg.zeros(anchors_per_image.shape, dtype=mg.float32, device=device)
                lab = mg.zeros((anchors_per_image.shape[0],), dtype=mg.float32, device=device)
            else:
                matched_idxs = self.proposal_matcher(
                    self.box_similarity(gt_boxes, anchors_per_image)
                )
                matched = gt_boxes[matched_idxs.clamp(min=0)]
                lab = (matched_idxs >= 0).to(dtype=mg.float32)
                lab[matched_idxs == self.proposal_matcher.BELOW_LOW_THRESHOLD] = 0.0
                lab[matched_idxs == self.proposal_matcher.BETWEEN_THRESHOLDS] = -1.0
            labels.append(lab)
            matched_gt_boxes.append(matched)
        return labels, matched_gt_boxes

    def _get_top_n_idx(self, objectness: Tensor, num_anchors_per_level: list[int]) -> Tensor:
        r, offset = [], 0
        for ob in objectness.split(num_anchors_per_level, 1):
            k = det_utils._topk_min(ob, self.pre_nms_top_n(), 1)
            r.append(ob.topk(k, dim=1)[1] + offset)
            offset += ob.shape[1]
        return mg.cat(r, dim=1)

    def filter_proposals(
        self,
        proposals: Tensor,
        objectness: Tensor,
        image_shapes: list[tuple[int, int]],
        num_anchors_per_level: list[int],
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Per image, the kept proposals and their objectness probabilities."""
        num_images = proposals.shape[0]
        device = proposals.device
        objectness = objectness.detach().reshape(num_images, -1)
        levels = mg.cat(
            [mg.full((n,), idx, dtype=mg.int64, device=device)
             for idx, n in enumerate(num_anchors_per_level)], 0,
        ).reshape(1, -1).expand_as(objectness)  # fmt: skip
        top_n_idx = self._get_top_n_idx(objectness, num_anchors_per_level)
        batch_idx = mg.arange(num_images, device=device)[:, None]
        objectness = objectness[batch_idx, top_n_idx]
        levels = levels[batch_idx, top_n_idx]
        proposals = proposals[batch_idx, top_n_idx]
        probs = mg.sigmoid(objectness)
        final_boxes, final_scores = [], []
        for boxes, scores, lvl, img_shape in zip(proposals, probs, levels, image_shapes):
            boxes = box_ops.clip_boxes_to_image(boxes, img_shape)
            keep = box_ops.remove_small_boxes(boxes, self.min_size)
            boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
            keep = mg.where(scores >= self.score_thresh)[0]
            boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
            keep = box_ops.batched_nms(boxes, scores, lvl, self.nms_thresh)
            keep = keep[: self.post_nms_top_n()]
            final_boxes.append(boxes[keep])
            final_scores.append(scores[keep])
        return final_boxes, final_scores

    def compute_loss(
        self, objectness: Tensor, pred_bbox_deltas: Tensor, labels: list[Tensor],
        regression_targets: list[Tensor],
    ) -> tuple[Tensor, Tensor]:  # fmt: skip
        """The objectness loss over the sampled anchors and the box loss over the sampled
        positives (summed, divided by the sample's size)."""
        pos, neg = self.fg_bg_sampler(labels)
        pos = mg.where(mg.cat(pos, dim=0))[0]
        neg = mg.where(mg.cat(neg, dim=0))[0]
        sampled = mg.cat([pos, neg], dim=0)
        objectness = objectness.flatten()
        labels = mg.cat(labels, dim=0)
        regression_targets = mg.cat(regression_targets, dim=0)
        box_loss = (
            F.smooth_l1_loss(
                pred_bbox_deltas[pos], regression_targets[pos], beta=1 / 9, reduction="sum"
            )
            / sampled.numel()
        )
        objectness_loss = F.binary_cross_entropy_with_logits(objectness[sampled], labels[sampled])
        return objectness_loss, box_loss

    def forward(
        self,
        images: ImageList,
        features: dict[str, Tensor],
        targets: list[dict[str, Tensor]] | None = None,
    ) -> tuple[list[Tensor], dict[str, Tensor]]:
        features = list(features.values())
        objectness, pred_bbox_deltas = self.head(features)
        anchors = self.anchor_generator(images, features)
        num_images = len(anchors)
        num_anchors_per_level = [o.shape[1] * o.shape[2] * o.shape[3] for o in objectness]
        objectness, pred_bbox_deltas = concat_box_prediction_layers(objectness, pred_bbox_deltas)
        # NOTE: proposals carry no gradient (Faster R-CNN's approximate joint training)
        proposals = self.box_coder.decode(pred_bbox_deltas.detach(), anchors)
        proposals = proposals.reshape(num_images, -1, 4)
        boxes, scores = self.filter_proposals(
            proposals, objectness, images.image_sizes, num_anchors_per_level
        )
        losses = {}
        if self.training:
            if targets is None:
                raise ValueError("targets should not be None in training mode")
            labels, matched_gt_boxes = self.assign_targets_to_anchors(anchors, targets)
            regression_targets = self.box_coder.encode(matched_gt_boxes, anchors)
            loss_objectness, loss_rpn_box_reg = self.compute_loss(
                objectness, pred_bbox_deltas, labels, regression_targets
            )
            losses = {"loss_objectness": loss_objectness, "loss_rpn_box_reg": loss_rpn_box_reg}
        return boxes, losses
