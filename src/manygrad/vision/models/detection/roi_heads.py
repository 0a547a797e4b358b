"""The R-CNN heads on region proposals (torchvision.models.detection.roi_heads): box
classification and regression (Fast R-CNN), and optionally masks (Mask R-CNN) and
keypoints (Keypoint R-CNN); training targets, losses and inference."""

from __future__ import annotations

import manygrad as mg
from manygrad import Tensor, nn
from manygrad.nn import functional as F

from ...ops import boxes as box_ops
from . import _utils as det_utils
from ._masks_keypoints import (  # noqa: F401 - torchvision has them in this module
    expand_boxes,
    expand_masks,
    heatmaps_to_keypoints,
    keypointrcnn_inference,
    keypointrcnn_loss,
    keypoints_to_heatmap,
    maskrcnn_inference,
    maskrcnn_loss,
    paste_mask_in_image,
    paste_masks_in_image,
    project_masks_on_boxes,
)


def fastrcnn_loss(
    class_logits: Tensor, box_regression: Tensor, labels: list[Tensor],
    regression_targets: list[Tensor],
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Fast R-CNN's losses: cross-entropy of the class logits, and smooth L1 (beta 1/9) of
    the positives' deltas of their own class, summed over the sampled proposals' count."""
    labels = mg.cat(labels, dim=0)
    regression_targets = mg.cat(regression_targets, dim=0)
    classification_loss = F.cross_entropy(class_logits, labels)
    pos = mg.where(labels > 0)[0]
    n = class_logits.shape[0]
    box_regression = box_regression.reshape(n, box_regression.shape[-1] // 4, 4)
    box_loss = F.smooth_l1_loss(
        box_regression[pos, labels[pos]], regression_targets[pos], beta=1 / 9, reduction="sum"
    )
    return classification_loss, box_loss / labels.numel()


class RoIHeads(nn.Module):
    """Box head on the proposals (and mask / keypoint heads when given). In training the
    proposals (with the ground-truth boxes added) are matched, sampled and used for the
    losses; in eval the detections are decoded, scored, thresholded and suppressed per
    class.

    Args:
        box_roi_pool, box_head, box_predictor: the box branch.
        fg_iou_thresh, bg_iou_thresh: the proposal matcher's IoUs.
        batch_size_per_image, positive_fraction: the proposals sampled per image.
        bbox_reg_weights: the box coder's weights (None: ``(10, 10, 5, 5)``).
        score_thresh, nms_thresh, detections_per_img: eval's filtering.
        mask_roi_pool, mask_head, mask_predictor: the mask branch (default None).
        keypoint_roi_pool, keypoint_head, keypoint_predictor: the keypoint branch.

    Example:
        >>> detections, losses = roi_heads(features, proposals, image_sizes, targets)
    """

    def __init__(
        self,
        box_roi_pool,
        box_head,
        box_predictor,
        fg_iou_thresh,
        bg_iou_thresh,
        batch_size_per_image,
        positive_fraction,
        bbox_reg_weights,
        score_thresh,
        nms_thresh,
        detections_per_img,
        mask_roi_pool=None,
        mask_head=None,
        mask_predictor=None,
        keypoint_roi_pool=None,
        keypoint_head=None,
        keypoint_predictor=None,
    ):
        super().__init__()
        self.box_similarity = box_ops.box_iou
        self.proposal_matcher = det_utils.Matcher(fg_iou_thresh, bg_iou_thresh, False)
        self.fg_bg_sampler = det_utils.BalancedPositiveNegativeSampler(
            batch_size_per_image, positive_fraction
        )
        if bbox_reg_weights is None:
            bbox_reg_weights = (10.0, 10.0, 5.0, 5.0)
        self.box_coder = det_utils.BoxCoder(bbox_reg_weights)
        self.box_roi_pool = box_roi_pool
        self.box_head = box_head
        self.box_predictor = box_predictor
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        self.mask_roi_pool = mask_roi_pool
        self.mask_head = mask_head
        self.mask_predictor = mask_predictor
        self.keypoint_roi_pool = keypoint_roi_pool
        self.keypoint_head = keypoint_head
        self.keypoint_predictor = keypoint_predictor

    def has_mask(self) -> bool:
        return None not in (self.mask_roi_pool, self.mask_head, self.mask_predictor)

    def has_keypoint(self) -> bool:
        return None not in (self.keypoint_roi_pool, self.keypoint_head, self.keypoint_predictor)

    def assign_targets_to_proposals(self, proposals, gt_boxes, gt_labels):
        """Per image, each proposal's matched ground truth (0 when unmatched) and label (0
        background, -1 ignored)."""
        matched_idxs, labels = [], []
        for props, boxes, gt_lab in zip(proposals, gt_boxes, gt_labels):
            device = props.device
            if boxes.numel() == 0:
                clamped = mg.zeros((props.shape[0],), dtype=mg.int64, device=device)
                lab = mg.zeros((props.shape[0],), dtype=mg.int64, device=device)
            else:
                idxs = self.proposal_matcher(box_ops.box_iou(boxes, props))
                clamped = idxs.clamp(min=0)
                lab = gt_lab[clamped].to(dtype=mg.int64)
                lab[idxs == self.proposal_matcher.BELOW_LOW_THRESHOLD] = 0
                lab[idxs == self.proposal_matcher.BETWEEN_THRESHOLDS] = -1  # the sampler skips
            matched_idxs.append(clamped)
            labels.append(lab)
        return matched_idxs, labels

    def subsample(self, labels):
        pos, neg = self.fg_bg_sampler(labels)
        return [mg.where(p | n)[0] for p, n in zip(pos, neg)]

    def add_gt_proposals(self, proposals, gt_boxes):
        return [mg.cat((p, g)) for p, g in zip(proposals, gt_boxes)]

    def check_targets(self, targets) -> None:
        if targets is None:
            raise ValueError("targets should not be None")
        for key in ("boxes", "labels") + (("masks",) if self.has_mask() else ()):
            if not all(key in t for t in targets):
                raise ValueError(f"Every element of targets should have a {key} key")

    def select_training_samples(self, proposals, targets):
        """The sampled proposals (ground truths included), their matched ground truths,
        labels and regression targets, per image."""
        self.check_targets(targets)
        dtype, device = proposals[0].dtype, proposals[0].device
        gt_boxes = [t["boxes"].to(dtype) for t in targets]
        gt_labels = [t["labels"] for t in targets]
        proposals = self.add_gt_proposals(proposals, gt_boxes)
        matched_idxs, labels = self.assign_targets_to_proposals(proposals, gt_boxes, gt_labels)
        sampled = self.subsample(labels)
        matched_gt_boxes = []
        for i, inds in enumerate(sampled):
            proposals[i] = proposals[i][inds]
            labels[i] = labels[i][inds]
            matched_idxs[i] = matched_idxs[i][inds]
            boxes = gt_boxes[i]
            if boxes.numel() == 0:
                boxes = mg.zeros((1, 4), dtype=dtype, device=device)
            matched_gt_boxes.append(boxes[matched_idxs[i]])
        regression_targets = self.box_coder.encode(matched_gt_boxes, proposals)
        return proposals, matched_idxs, labels, regression_targets

    def postprocess_detections(self, class_logits, box_regression, proposals, image_shapes):
        """Per image: boxes decoded for every class but background, clipped, filtered by
        score and size, suppressed per class, the best ``detections_per_img`` kept."""
        device = class_logits.device
        num_classes = class_logits.shape[-1]
        per_image = [p.shape[0] for p in proposals]
        pred_boxes = self.box_coder.decode(box_regression, proposals)
        pred_scores = F.softmax(class_logits, -1)
        all_boxes, all_scores, all_labels = [], [], []
        for boxes, scores, image_shape in zip(
            pred_boxes.split(per_image, 0), pred_scores.split(per_image, 0), image_shapes
        ):
            boxes = box_ops.clip_boxes_to_image(boxes, image_shape)
            labels = mg.arange(num_classes, device=device).reshape(1, -1).expand_as(scores)
            boxes = boxes[:, 1:].reshape(-1, 4)
            scores = scores[:, 1:].reshape(-1)
            labels = labels[:, 1:].reshape(-1)
            inds = mg.where(scores > self.score_thresh)[0]
            boxes, scores, labels = boxes[inds], scores[inds], labels[inds]
            keep = box_ops.remove_small_boxes(boxes, min_size=1e-2)
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = box_ops.batched_nms(boxes, scores, labels, self.nms_thresh)
            keep = keep[: self.detections_per_img]
            all_boxes.append(boxes[keep])
            all_scores.append(scores[keep])
            all_labels.append(labels[keep])
        return all_boxes, all_scores, all_labels

    def _check_target_types(self, targets) -> None:
        for t in targets:
            if t["boxes"].dtype not in (mg.float32, mg.float64, mg.float16):
                raise TypeError(f"target boxes must of float type, instead got {t['boxes'].dtype}")
            if t["labels"].dtype != mg.int64:
                raise TypeError(
                    f"target labels must of int64 type, instead got {t['labels'].dtype}"
                )
            if self.has_keypoint() and t["keypoints"].dtype != mg.float32:
                raise TypeError(
                    f"target keypoints must of float type, instead got {t['keypoints'].dtype}"
                )

    def _positives(self, proposals, matched_idxs, labels):
        """The positive proposals of each image and their matched ground truths."""
        props, idxs = [], []
        for p, m, lab in zip(proposals, matched_idxs, labels):
            pos = mg.where(lab > 0)[0]
            props.append(p[pos])
            idxs.append(m[pos])
        return props, idxs

    def forward(self, features, proposals, image_shapes, targets=None):
        if targets is not None:
            self._check_target_types(targets)
        if self.training:
            proposals, matched_idxs, labels, regression_targets = self.select_training_samples(
                proposals, targets
            )
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(box_features)
        result, losses = [], {}
        if self.training:
            loss_classifier, loss_box_reg = fastrcnn_loss(
                class_logits, box_regression, labels, regression_targets
            )
            losses = {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
        else:
            boxes, scores, labels = self.postprocess_detections(
                class_logits, box_regression, proposals, image_shapes
            )
            result = [{"boxes": b, "labels": lab, "scores": s}
                      for b, s, lab in zip(boxes, scores, labels)]  # fmt: skip
        if self.has_mask():
            if self.training:
                mask_proposals, pos_matched_idxs = self._positives(proposals, matched_idxs, labels)
            else:
                mask_proposals = [r["boxes"] for r in result]
            mask_features = self.mask_head(
                self.mask_roi_pool(features, mask_proposals, image_shapes)
            )
            mask_logits = self.mask_predictor(mask_features)
            if self.training:
                gt_masks = [t["masks"] for t in targets]
                gt_labels = [t["labels"] for t in targets]
                losses["loss_mask"] = maskrcnn_loss(
                    mask_logits, mask_proposals, gt_masks, gt_labels, pos_matched_idxs
                )
            else:
                probs = maskrcnn_inference(mask_logits, [r["labels"] for r in result])
                for prob, r in zip(probs, result):
                    r["masks"] = prob
        if self.has_keypoint():
            if self.training:
                kp_proposals, pos_matched_idxs = self._positives(proposals, matched_idxs, labels)
            else:
                kp_proposals = [r["boxes"] for r in result]
            kp_features = self.keypoint_head(
                self.keypoint_roi_pool(features, kp_proposals, image_shapes)
            )
            kp_logits = self.keypoint_predictor(kp_features)
            if self.training:
                gt_keypoints = [t["keypoints"] for t in targets]
                losses["loss_keypoint"] = keypointrcnn_loss(
                    kp_logits, kp_proposals, gt_keypoints, pos_matched_idxs
                )
            else:
                kp_probs, kp_scores = keypointrcnn_inference(kp_logits, kp_proposals)
                for prob, sc, r in zip(kp_probs, kp_scores, result):
                    r["keypoints"] = prob
                    r["keypoints_scores"] = sc
        return result, losses
