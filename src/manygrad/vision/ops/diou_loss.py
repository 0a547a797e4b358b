"""Distance IoU loss (torchvision.ops.diou_loss)."""

from __future__ import annotations

import manygrad as mg
from manygrad import Tensor

from ._utils import _loss_inter_union, _reduce, _upcast_non_float


def _diou_iou_loss(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7) -> tuple[Tensor, Tensor]:
    """The distance-IoU loss of matched pairs and their IoU."""
    inter, union = _loss_inter_union(boxes1, boxes2)
    iou = inter / (union + eps)
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    diagonal2 = (
        (mg.max(x2, x2g) - mg.min(x1, x1g)) ** 2 + (mg.max(y2, y2g) - mg.min(y1, y1g)) ** 2 + eps
    )
    centers2 = ((x2 + x1) / 2 - (x1g + x2g) / 2) ** 2 + ((y2 + y1) / 2 - (y1g + y2g) / 2) ** 2
    return 1 - iou + centers2 / diagonal2, iou


def distance_box_iou_loss(
    boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7
) -> Tensor:
    """``1 - DIoU`` of matched pairs of xyxy boxes (Zheng et al., 2019): IoU loss plus the
    squared distance of the centres over the squared diagonal of the enclosing box.

    Args:
        boxes1: ``Tensor[N, 4]`` or ``Tensor[4]``.
        boxes2: same shape as ``boxes1``.
        reduction: ``"none"`` (default), ``"mean"`` or ``"sum"``.
        eps: keeps the divisions finite. Default 1e-7.

    Example: ``distance_box_iou_loss(pred, target, reduction="sum")``.
    """
    boxes1, boxes2 = _upcast_non_float(boxes1), _upcast_non_float(boxes2)
    return _reduce(_diou_iou_loss(boxes1, boxes2, eps)[0], reduction)
