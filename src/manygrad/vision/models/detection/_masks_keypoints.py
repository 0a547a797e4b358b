"""Mask R-CNN's and Keypoint R-CNN's targets, losses and inference (torchvision's
``roi_heads`` functions): masks projected onto proposals and pasted back into images,
keypoints turned into heatmap targets and read back from heatmaps."""

from __future__ import annotations

import manygrad as mg
from manygrad import Tensor
from manygrad.nn import functional as F

from ...ops import roi_align


def maskrcnn_inference(x: Tensor, labels: list[Tensor]) -> tuple[Tensor, ...]:
    """Per image, the mask probabilities of each detection's predicted class:
    ``Tensor[N_i, 1, M, M]``."""
    mask_prob = x.sigmoid()
    per_image = [label.shape[0] for label in labels]
    labels = mg.cat(labels)
    index = mg.arange(x.shape[0], device=labels.device)
    return mask_prob[index, labels][:, None].split(per_image, dim=0)


def project_masks_on_boxes(gt_masks: Tensor, boxes: Tensor, matched_idxs: Tensor, M: int):  # noqa: N803
    """Each proposal's matched ground-truth mask cropped to the proposal and resized to
    ``M`` x ``M`` (RoIAlign): the mask loss's targets."""
    matched_idxs = matched_idxs.to(dtype=boxes.dtype, device=boxes.device)
    rois = mg.cat([matched_idxs[:, None], boxes], dim=1)
    gt_masks = gt_masks[:, None].to(dtype=rois.dtype, device=rois.device)
    return roi_align(gt_masks, rois, (M, M), 1.0)[:, 0]


def maskrcnn_loss(mask_logits, proposals, gt_masks, gt_labels, mask_matched_idxs) -> Tensor:
    """Binary cross-entropy between each positive proposal's mask logits of its class and
    its projected ground-truth mask (zero, with gradients, when there is none)."""
    size = mask_logits.shape[-1]
    labels = [lab[idxs] for lab, idxs in zip(gt_labels, mask_matched_idxs)]
    targets = [
        project_masks_on_boxes(m, p, i, size)
        for m, p, i in zip(gt_masks, proposals, mask_matched_idxs)
    ]
    labels = mg.cat(labels, dim=0)
    targets = mg.cat(targets, dim=0)
    if targets.numel() == 0:
        return mask_logits.sum() * 0
    index = mg.arange(labels.shape[0], device=labels.device)
    return F.binary_cross_entropy_with_logits(mask_logits[index, labels], targets)


def keypoints_to_heatmap(keypoints: Tensor, rois: Tensor, heatmap_size: int):
    """Each keypoint's cell in its proposal's ``heatmap_size``-square heatmap (row-major
    index) and whether it is usable (visible and inside the proposal)."""
    offset_x, offset_y = rois[:, 0][:, None], rois[:, 1][:, None]
    scale_x = (heatmap_size / (rois[:, 2] - rois[:, 0]))[:, None]
    scale_y = (heatmap_size / (rois[:, 3] - rois[:, 1]))[:, None]
    x, y = keypoints[..., 0], keypoints[..., 1]
    x_boundary = x == rois[:, 2][:, None]
    y_boundary = y == rois[:, 3][:, None]
    x = ((x - offset_x) * scale_x).floor().long()
    y = ((y - offset_y) * scale_y).floor().long()
    x[x_boundary] = heatmap_size - 1  # NOTE: a keypoint on the far edge falls in the grid
    y[y_boundary] = heatmap_size - 1
    valid_loc = (x >= 0) & (y >= 0) & (x < heatmap_size) & (y < heatmap_size)
    valid = (valid_loc & (keypoints[..., 2] > 0)).long()
    return (y * heatmap_size + x) * valid, valid


def heatmaps_to_keypoints(maps: Tensor, rois: Tensor) -> tuple[Tensor, Tensor]:
    """Keypoints read from heatmaps: each ``Tensor[K, H, W]`` map resized bicubically to its
    box's size, its argmax taken as the keypoint (visibility 1).

    Args:
        maps: ``Tensor[R, K, H, W]`` heatmap logits.
        rois: ``Tensor[R, 4]`` boxes (x1, y1, x2, y2).

    Returns:
        ``Tensor[R, K, 3]`` (x, y, 1) and ``Tensor[R, K]``, the heatmap values there.
    """
    offset_x, offset_y = rois[:, 0], rois[:, 1]
    widths = (rois[:, 2] - rois[:, 0]).clamp(min=1)
    heights = (rois[:, 3] - rois[:, 1]).clamp(min=1)
    # NOTE: one host read for every box's map size (data-dependent shapes)
    sizes = mg.stack((widths.ceil(), heights.ceil()), dim=1).tolist()
    num_keypoints = maps.shape[1]
    xy_preds = mg.zeros((len(rois), 3, num_keypoints), dtype=mg.float32, device=maps.device)
    end_scores = mg.zeros((len(rois), num_keypoints), dtype=mg.float32, device=maps.device)
    kp = mg.arange(num_keypoints, device=maps.device)
    for i, (w_ceil, h_ceil) in enumerate(sizes):
        map_w, map_h = int(w_ceil), int(h_ceil)
        roi_map = F.interpolate(
            maps[i][:, None], size=(map_h, map_w), mode="bicubic", align_corners=False
        )[:, 0]
        w = roi_map.shape[2]
        pos = roi_map.reshape(num_keypoints, -1).argmax(dim=1)
        x_int = pos % w
        y_int = mg.div(pos - x_int, w, rounding_mode="floor")
        x = (x_int.float() + 0.5) * (widths[i] / map_w)
        y = (y_int.float() + 0.5) * (heights[i] / map_h)
        xy_preds[i, 0, :] = x + offset_x[i]
        xy_preds[i, 1, :] = y + offset_y[i]
        xy_preds[i, 2, :] = 1
        end_scores[i, :] = roi_map[kp, y_int, x_int]
    return xy_preds.permute(0, 2, 1), end_scores


def keypointrcnn_loss(keypoint_logits, proposals, gt_keypoints, keypoint_matched_idxs) -> Tensor:
    """Cross-entropy over each heatmap's cells against the cell of its ground-truth
    keypoint, for the usable keypoints (zero, with gradients, when none is)."""
    n, k, h, w = keypoint_logits.shape
    if h != w:
        raise ValueError(
            "keypoint_logits height and width (last two elements of shape) should be equal. "
            f"Instead got H = {h} and W = {w}"
        )
    heatmaps, valid = [], []
    for props, gt_kp, midx in zip(proposals, gt_keypoints, keypoint_matched_idxs):
        hm, ok = keypoints_to_heatmap(gt_kp[midx], props, h)
        heatmaps.append(hm.reshape(-1))
        valid.append(ok.reshape(-1))
    targets = mg.cat(heatmaps, dim=0)
    valid = mg.where(mg.cat(valid, dim=0).to(dtype=mg.uint8))[0]
    if targets.numel() == 0 or len(valid) == 0:
        return keypoint_logits.sum() * 0
    logits = keypoint_logits.reshape(n * k, h * w)
    return F.cross_entropy(logits[valid], targets[valid])


def keypointrcnn_inference(x: Tensor, boxes: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    """``heatmaps_to_keypoints`` per image: keypoints and their scores."""
    kp_probs, kp_scores = [], []
    for xx, bb in zip(x.split([b.shape[0] for b in boxes], dim=0), boxes):
        prob, scores = heatmaps_to_keypoints(xx, bb)
        kp_probs.append(prob)
        kp_scores.append(scores)
    return kp_probs, kp_scores


def expand_boxes(boxes: Tensor, scale: float) -> Tensor:
    """Boxes grown by ``scale`` about their centres."""
    w_half = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale
    h_half = (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    x_c = (boxes[:, 2] + boxes[:, 0]) * 0.5
    y_c = (boxes[:, 3] + boxes[:, 1]) * 0.5
    return mg.stack((x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half), dim=1)


def expand_masks(mask: Tensor, padding: int) -> tuple[Tensor, float]:
    """Masks zero-padded by ``padding`` on each side, and the scale that grows their boxes
    to match."""
    m = mask.shape[-1]
    return F.pad(mask, (padding,) * 4), float(m + 2 * padding) / m


def paste_mask_in_image(mask: Tensor, box, im_h: int, im_w: int) -> Tensor:
    """One (M, M) mask resized bilinearly to its integer ``box`` (x1, y1, x2, y2, both
    ends inclusive) and placed in an ``im_h`` x ``im_w`` image of zeros."""
    x1, y1, x2, y2 = (int(v) for v in box)
    w, h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
    mask = F.interpolate(mask.expand((1, 1, -1, -1)), size=(h, w), mode="bilinear",
                         align_corners=False)[0][0]  # fmt: skip
    im_mask = mg.zeros((im_h, im_w), dtype=mask.dtype, device=mask.device)
    x_0, x_1 = max(x1, 0), min(x2 + 1, im_w)
    y_0, y_1 = max(y1, 0), min(y2 + 1, im_h)
    im_mask[y_0:y_1, x_0:x_1] = mask[(y_0 - y1) : (y_1 - y1), (x_0 - x1) : (x_1 - x1)]
    return im_mask


def paste_masks_in_image(masks: Tensor, boxes: Tensor, img_shape, padding: int = 1) -> Tensor:
    """Masks ``Tensor[N, 1, M, M]`` predicted for ``boxes`` pasted into images of
    ``img_shape`` (h, w): ``Tensor[N, 1, h, w]`` (padded by ``padding`` first so that the
    borders interpolate towards zero).

    Example:
        >>> full = paste_masks_in_image(result["masks"], result["boxes"], (480, 640))
    """
    masks, scale = expand_masks(masks, padding=padding)
    boxes = expand_boxes(boxes, scale).to(dtype=mg.int64)
    im_h, im_w = img_shape
    # NOTE: one host read of the integer boxes: the pasted regions' shapes depend on them
    res = [paste_mask_in_image(m[0], b, im_h, im_w) for m, b in zip(masks, boxes.tolist())]
    if res:
        return mg.stack(res, dim=0)[:, None]
    return masks.new_empty((0, 1, im_h, im_w))
