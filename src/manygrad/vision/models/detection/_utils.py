"""The bookkeeping detection models share (torchvision.models.detection._utils): box
codecs (``BoxCoder``, ``BoxLinearCoder``), the IoU ``Matcher`` (and SSD's), the balanced
positive/negative sampler, and small helpers."""

from __future__ import annotations

import math
from collections import OrderedDict

import manygrad as mg
from manygrad import Tensor, nn
from manygrad.nn import functional as F

from ...ops import (
    FrozenBatchNorm2d,
    complete_box_iou_loss,
    distance_box_iou_loss,
    generalized_box_iou_loss,
)
from ...ops import boxes as box_ops


class BalancedPositiveNegativeSampler:
    """Pick, per image, at most ``batch_size_per_image`` elements of which at most
    ``positive_fraction`` are positives (the rest negatives), uniformly at random.

    Args:
        batch_size_per_image: elements kept per image.
        positive_fraction: the largest share of positives.

    Example:
        >>> pos, neg = BalancedPositiveNegativeSampler(256, 0.5)([labels])  # uint8 masks
    """

    def __init__(self, batch_size_per_image: int, positive_fraction: float) -> None:
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction

    def __call__(self, matched_idxs: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Per image of ``matched_idxs`` (-1 ignored, 0 negative, >= 1 positive), a uint8
        mask of the sampled positives and one of the sampled negatives."""
        pos_idx, neg_idx = [], []
        for matched in matched_idxs:
            positive = mg.where(matched >= 1)[0]
            negative = mg.where(matched == 0)[0]
            num_pos = min(positive.numel(), int(self.batch_size_per_image * self.positive_fraction))
            num_neg = min(negative.numel(), self.batch_size_per_image - num_pos)
            perm1 = mg.randperm(positive.numel(), device=positive.device)[:num_pos]
            perm2 = mg.randperm(negative.numel(), device=negative.device)[:num_neg]
            pos_mask = mg.zeros_like(matched, dtype=mg.uint8)
            neg_mask = mg.zeros_like(matched, dtype=mg.uint8)
            pos_mask[positive[perm1]] = 1
            neg_mask[negative[perm2]] = 1
            pos_idx.append(pos_mask)
            neg_idx.append(neg_mask)
        return pos_idx, neg_idx


def encode_boxes(reference_boxes: Tensor, proposals: Tensor, weights: Tensor) -> Tensor:
    """The regression targets ``(dx, dy, dw, dh)`` that move each proposal onto its
    reference box, scaled by ``weights`` (R-CNN's parametrization)."""
    wx, wy, ww, wh = weights[0], weights[1], weights[2], weights[3]
    px1, py1, px2, py2 = (proposals[:, i].unsqueeze(1) for i in range(4))
    gx1, gy1, gx2, gy2 = (reference_boxes[:, i].unsqueeze(1) for i in range(4))
    ex_w, ex_h = px2 - px1, py2 - py1
    ex_x, ex_y = px1 + 0.5 * ex_w, py1 + 0.5 * ex_h
    gt_w, gt_h = gx2 - gx1, gy2 - gy1
    gt_x, gt_y = gx1 + 0.5 * gt_w, gy1 + 0.5 * gt_h
    dx = wx * (gt_x - ex_x) / ex_w
    dy = wy * (gt_y - ex_y) / ex_h
    dw = ww * mg.log(gt_w / ex_w)
    dh = wh * mg.log(gt_h / ex_h)
    return mg.cat((dx, dy, dw, dh), dim=1)


class BoxCoder:
    """Encode boxes as deltas from reference boxes and decode them back (R-CNN's
    ``(dx, dy, dw, dh)``, each divided by its weight); ``dw``, ``dh`` are clipped at
    ``bbox_xform_clip`` when decoding so that ``exp`` stays finite.

    Args:
        weights: ``(wx, wy, ww, wh)``, e.g. ``(10.0, 10.0, 5.0, 5.0)`` in the box heads.
        bbox_xform_clip: default ``log(1000 / 16)``.

    Example:
        >>> coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        >>> boxes = coder.decode_single(coder.encode_single(gt, anchors), anchors)  # == gt
    """

    def __init__(
        self,
        weights: tuple[float, float, float, float],
        bbox_xform_clip: float = math.log(1000.0 / 16),
    ) -> None:
        self.weights = weights
        self.bbox_xform_clip = bbox_xform_clip

    def encode(self, reference_boxes: list[Tensor], proposals: list[Tensor]) -> tuple[Tensor, ...]:
        """``encode_single`` over lists of boxes, one tensor per image."""
        counts = [len(b) for b in reference_boxes]
        targets = self.encode_single(mg.cat(reference_boxes, dim=0), mg.cat(proposals, dim=0))
        return targets.split(counts, 0)

    def encode_single(self, reference_boxes: Tensor, proposals: Tensor) -> Tensor:
        weights = mg.as_tensor(
            self.weights, dtype=reference_boxes.dtype, device=reference_boxes.device
        )
        return encode_boxes(reference_boxes, proposals, weights)

    def decode(self, rel_codes: Tensor, boxes: list[Tensor]) -> Tensor:
        """Decode ``rel_codes`` (rows for the boxes of every image, concatenated) against
        the list ``boxes``: ``Tensor[total, K, 4]``."""
        if not isinstance(boxes, (list, tuple)):
            raise TypeError(
                f"BoxCoder.decode: boxes must be a list of Tensor[N_i, 4], got {type(boxes)}"
            )
        total = sum(b.shape[0] for b in boxes)
        if total > 0:
            rel_codes = rel_codes.reshape(total, -1)
        pred = self.decode_single(rel_codes, mg.cat(list(boxes), dim=0))
        return pred.reshape(total, -1, 4) if total > 0 else pred

    def decode_single(self, rel_codes: Tensor, boxes: Tensor) -> Tensor:
        """Boxes from deltas ``rel_codes`` (``Tensor[N, 4k]``) and reference ``boxes``
        (``Tensor[N, 4]``): ``Tensor[N, 4k]``."""
        boxes = boxes.to(rel_codes.dtype)
        widths = boxes[:, 2] - boxes[:, 0]
        heights = boxes[:, 3] - boxes[:, 1]
        ctr_x = boxes[:, 0] + 0.5 * widths
        ctr_y = boxes[:, 1] + 0.5 * heights
        wx, wy, ww, wh = self.weights
        dx = rel_codes[:, 0::4] / wx
        dy = rel_codes[:, 1::4] / wy
        dw = mg.clamp(rel_codes[:, 2::4] / ww, max=self.bbox_xform_clip)
        dh = mg.clamp(rel_codes[:, 3::4] / wh, max=self.bbox_xform_clip)
        pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
        pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
        half_w = 0.5 * (mg.exp(dw) * widths[:, None])
        half_h = 0.5 * (mg.exp(dh) * heights[:, None])
        corners = (
            pred_ctr_x - half_w,
            pred_ctr_y - half_h,
            pred_ctr_x + half_w,
            pred_ctr_y + half_h,
        )
        return mg.stack(corners, dim=2).flatten(1)


class BoxLinearCoder:
    """FCOS's box codec: the distances from a reference box's center to the four edges of
    the target box, divided by the reference's width / height when ``normalize_by_size``.

    Example:
        >>> BoxLinearCoder().decode(BoxLinearCoder().encode(anchors, gt), anchors)  # == gt
    """

    def __init__(self, normalize_by_size: bool = True) -> None:
        self.normalize_by_size = normalize_by_size

    def _sizes(self, boxes: Tensor) -> Tensor:
        w = boxes[..., 2] - boxes[..., 0]
        h = boxes[..., 3] - boxes[..., 1]
        return mg.stack((w, h, w, h), dim=-1)

    def encode(self, reference_boxes: Tensor, proposals: Tensor) -> Tensor:
        cx = 0.5 * (reference_boxes[..., 0] + reference_boxes[..., 2])
        cy = 0.5 * (reference_boxes[..., 1] + reference_boxes[..., 3])
        targets = mg.stack(
            (cx - proposals[..., 0], cy - proposals[..., 1], proposals[..., 2] - cx,
             proposals[..., 3] - cy),
            dim=-1,
        )  # fmt: skip
        if self.normalize_by_size:
            targets = targets / self._sizes(reference_boxes)
        return targets

    def decode(self, rel_codes: Tensor, boxes: Tensor) -> Tensor:
        boxes = boxes.to(dtype=rel_codes.dtype)
        cx = 0.5 * (boxes[..., 0] + boxes[..., 2])
        cy = 0.5 * (boxes[..., 1] + boxes[..., 3])
        if self.normalize_by_size:
            rel_codes = rel_codes * self._sizes(boxes)
        return mg.stack(
            (cx - rel_codes[..., 0], cy - rel_codes[..., 1], cx + rel_codes[..., 2],
             cy + rel_codes[..., 3]),
            dim=-1,
        )  # fmt: skip


class Matcher:
    """Match each prediction (column of an M x N quality matrix, e.g. IoUs with M ground
    truths) to its best ground truth: its index when the quality reaches
    ``high_threshold``, ``BETWEEN_THRESHOLDS`` (-2) in ``[low, high)``, and
    ``BELOW_LOW_THRESHOLD`` (-1) below ``low_threshold``.

    Args:
        high_threshold, low_threshold: the two quality levels (low <= high).
        allow_low_quality_matches: also match, to its ground truth, each prediction that is
            the best (ties included) for some ground truth, whatever its quality.

    Example:
        >>> matches = Matcher(0.7, 0.3, True)(box_iou(gt_boxes, anchors))  # int64 Tensor[N]
    """

    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(
        self, high_threshold: float, low_threshold: float, allow_low_quality_matches: bool = False
    ) -> None:
        if low_threshold > high_threshold:
            raise ValueError(
                f"Matcher: low_threshold should be <= high_threshold, got {low_threshold} > "
                f"{high_threshold}"
            )
        self.high_threshold = high_threshold
        self.low_threshold = low_threshold
        self.allow_low_quality_matches = allow_low_quality_matches

    def __call__(self, match_quality_matrix: Tensor) -> Tensor:
        if match_quality_matrix.numel() == 0:
            what = "ground-truth" if match_quality_matrix.shape[0] == 0 else "proposal"
            raise ValueError(f"No {what} boxes available for one of the images during training")
        matched_vals, matches = match_quality_matrix.max(dim=0)
        all_matches = matches.clone() if self.allow_low_quality_matches else None
        below = matched_vals < self.low_threshold
        between = (matched_vals >= self.low_threshold) & (matched_vals < self.high_threshold)
        matches[below] = self.BELOW_LOW_THRESHOLD
        matches[between] = self.BETWEEN_THRESHOLDS
        if all_matches is not None:
            self.set_low_quality_matches_(matches, all_matches, match_quality_matrix)
        return matches

    def set_low_quality_matches_(
        self, matches: Tensor, all_matches: Tensor, match_quality_matrix: Tensor
    ) -> None:
        """Give back its best ground truth to every prediction that is some ground truth's
        best match (ties included), in place."""
        best_per_gt = match_quality_matrix.max(dim=1)[0]
        preds = mg.where(match_quality_matrix == best_per_gt[:, None])[1]
        matches[preds] = all_matches[preds]


class SSDMatcher(Matcher):
    """SSD's matcher: one IoU ``threshold``, and each ground truth's best prediction is
    matched to it whatever the IoU."""

    def __init__(self, threshold: float) -> None:
        super().__init__(threshold, threshold, allow_low_quality_matches=False)

    def __call__(self, match_quality_matrix: Tensor) -> Tensor:
        matches = super().__call__(match_quality_matrix)
        best_pred_per_gt = match_quality_matrix.max(dim=1)[1]
        matches[best_pred_per_gt] = mg.arange(
            best_pred_per_gt.shape[0], dtype=mg.int64, device=best_pred_per_gt.device
        )
        return matches


def overwrite_eps(model: nn.Module, eps: float) -> None:
    """Set ``eps`` of every ``FrozenBatchNorm2d`` in ``model`` (the first COCO checkpoints
    were trained with eps 0, before torchvision's default became 1e-5)."""
    for module in model.modules():
        if isinstance(module, FrozenBatchNorm2d):
            module.eps = eps


def retrieve_out_channels(model: nn.Module, size: tuple[int, int]) -> list[int]:
    """The channels of each feature map ``model`` returns for a zero image of ``size``
    (width, height), run in eval mode without gradients."""
    was_training = model.training
    model.eval()
    with mg.no_grad():
        device = next(model.parameters()).device
        features = model(mg.zeros((1, 3, size[1], size[0]), device=device))
        if isinstance(features, Tensor):
            features = OrderedDict([("0", features)])
        out_channels = [x.shape[1] for x in features.values()]
    if was_training:
        model.train()
    return out_channels


def _topk_min(input: Tensor, orig_kval: int, axis: int) -> int:  # noqa: A002
    """``min(k, size of input along axis)``."""
    return min(orig_kval, input.shape[axis])


def _box_loss(
    type: str,  # noqa: A002 - torchvision's name
    box_coder: BoxCoder,
    anchors_per_image: Tensor,
    matched_gt_boxes_per_image: Tensor,
    bbox_regression_per_image: Tensor,
    cnf: dict[str, float] | None = None,
) -> Tensor:
    """The summed box-regression loss of one image: ``"l1"`` / ``"smooth_l1"`` on the
    encoded deltas, or ``"giou"`` / ``"diou"`` / ``"ciou"`` on the decoded boxes."""
    if type not in ("l1", "smooth_l1", "ciou", "diou", "giou"):
        raise ValueError(f"Unsupported loss: {type} (use l1, smooth_l1, giou, diou or ciou)")
    cnf = cnf or {}
    if type in ("l1", "smooth_l1"):
        target = box_coder.encode_single(matched_gt_boxes_per_image, anchors_per_image)
        if type == "l1":
            return F.l1_loss(bbox_regression_per_image, target, reduction="sum")
        beta = cnf.get("beta", 1.0)
        return F.smooth_l1_loss(bbox_regression_per_image, target, reduction="sum", beta=beta)
    boxes = box_coder.decode_single(bbox_regression_per_image, anchors_per_image)
    loss = {
        "ciou": complete_box_iou_loss,
        "diou": distance_box_iou_loss,
        "giou": generalized_box_iou_loss,
    }[type]
    return loss(boxes, matched_gt_boxes_per_image, reduction="sum", eps=cnf.get("eps", 1e-7))


def _flatten_levels(outputs: list[Tensor], columns: int) -> Tensor:
    """Per-level (N, A*K, H, W) maps as one (N, sum(H*W*A), K) tensor, in anchor order."""
    flat = []
    for t in outputs:
        n, _, h, w = t.shape
        flat.append(t.reshape(n, -1, columns, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, columns))
    return mg.cat(flat, dim=1)


def _dense_detections(model, boxes_of, class_logits, image_shapes, anchors, scores_of):
    """Per image: per level the ``topk_candidates`` (anchor, class) pairs scoring above
    ``score_thresh``, decoded and clipped; then NMS per class over all levels and the
    best ``detections_per_img`` (RetinaNet's and FCOS's inference)."""
    detections = []
    for index, image_shape in enumerate(image_shapes):
        image_boxes, image_scores, image_labels = [], [], []
        for level, anchors_level in enumerate(anchors[index]):
            logits = class_logits[level][index]
            num_classes = logits.shape[-1]
            scores = scores_of(level, index).flatten()
            keep = scores > model.score_thresh
            scores = scores[keep]
            topk_idxs = mg.where(keep)[0]
            k = _topk_min(topk_idxs, model.topk_candidates, 0)
            scores, idxs = scores.topk(k)
            topk_idxs = topk_idxs[idxs]
            anchor_idxs = mg.div(topk_idxs, num_classes, rounding_mode="floor")
            labels = topk_idxs % num_classes
            boxes = boxes_of(level, index, anchor_idxs, anchors_level[anchor_idxs])
            image_boxes.append(box_ops.clip_boxes_to_image(boxes, image_shape))
            image_scores.append(scores)
            image_labels.append(labels)
        boxes, scores, labels = mg.cat(image_boxes), mg.cat(image_scores), mg.cat(image_labels)
        keep = box_ops.batched_nms(boxes, scores, labels, model.nms_thresh)[
            : model.detections_per_img
        ]
        detections.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
    return detections
