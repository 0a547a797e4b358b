"""Generalized IoU loss (torchvision.ops.giou_loss)."""

from __future__ import annotations

import manygrad as mg
from manygrad import Tensor

from ._utils import _loss_inter_union, _reduce, _upcast_non_float


def generalized_box_iou_loss(
    boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7
) -> Tensor:
    """``1 - GIoU`` of matched pairs of xyxy boxes (Rezatofighi et al., 2019): an IoU loss
    that still has a gradient when the boxes do not overlap.

    Args:
        boxes1: ``Tensor[N, 4]`` or ``Tensor[4]``.
        boxes2: same shape as ``boxes1``.
        reduction: ``"none"`` (default), ``"mean"`` or ``"sum"``.
        eps: keeps the divisions finite. Default 1e-7.

    Example: ``generalized_box_iou_loss(pred, target, reduction="mean")``.
    """
    boxes1, boxes2 = _upcast_non_float(boxes1), _upcast_non_float(boxes2)
    inter, union = _loss_inter_union(boxes1, boxes2)
    iou = inter / (union + eps)
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    area_c = (mg.max(x2, x2g) - mg.min(x1, x1g)) * (mg.max(y2, y2g) - mg.min(y1, y1g))
    giou = iou - (area_c - union) / (area_c + eps)
    return _reduce(1 - giou, reduction)
