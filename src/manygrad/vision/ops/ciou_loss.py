"""Complete IoU loss (torchvision.ops.ciou_loss)."""

from __future__ import annotations

import manygrad as mg
from manygrad import Tensor

from ._utils import _reduce, _upcast_non_float
from .diou_loss import _diou_iou_loss


def complete_box_iou_loss(
    boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7
) -> Tensor:
    """``1 - CIoU`` of matched pairs of xyxy boxes (Zheng et al., 2019): the distance-IoU
    loss plus a term for the difference of aspect ratios.

    Args:
        boxes1: ``Tensor[N, 4]`` or ``Tensor[4]``.
        boxes2: same shape as ``boxes1``.
        reduction: ``"none"`` (default), ``"mean"`` or ``"sum"``.
        eps: keeps the divisions finite. Default 1e-7.

    Example: ``complete_box_iou_loss(pred, target)``.
    """
    boxes1, boxes2 = _upcast_non_float(boxes1), _upcast_non_float(boxes2)
    # NOTE: torchvision calls the distance loss with its default eps here, not ``eps``
    diou_loss, iou = _diou_iou_loss(boxes1, boxes2)
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    v = (4 / (mg.pi**2)) * (
        mg.atan((x2g - x1g) / (y2g - y1g)) - mg.atan((x2 - x1) / (y2 - y1))
    ) ** 2
    with mg.no_grad():  # NOTE: the trade-off weight alpha is a constant for the gradient
        alpha = v / (1 - iou + v + eps)
    return _reduce(diou_loss + alpha * v, reduction)
