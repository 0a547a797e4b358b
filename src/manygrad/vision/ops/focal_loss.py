"""Sigmoid focal loss (torchvision.ops.focal_loss)."""

from __future__ import annotations

import manygrad as mg
from manygrad import Tensor
from manygrad.nn import functional as F

from ._utils import _reduce


def sigmoid_focal_loss(
    inputs: Tensor,
    targets: Tensor,
    alpha: float = 0.25,
    gamma: float = 2,
    reduction: str = "none",
) -> Tensor:
    """The focal loss of RetinaNet (Lin et al., 2017): binary cross-entropy on logits,
    scaled down by ``(1 - p_t) ** gamma`` for well-classified examples.

    Args:
        inputs: logits of any shape.
        targets: same shape, 0 or 1 (the class of each element).
        alpha: weight of the positive class in [0, 1], or -1 for none. Default 0.25.
        gamma: the focusing exponent. Default 2.
        reduction: ``"none"`` (default), ``"mean"`` or ``"sum"``.

    Example: ``sigmoid_focal_loss(logits, labels.float(), reduction="mean")``.
    """
    if not (0 <= alpha <= 1) and alpha != -1:
        raise ValueError(
            f"sigmoid_focal_loss: invalid alpha {alpha}; pass a value in [0, 1], or -1 for "
            "no class weighting"
        )
    p = mg.sigmoid(inputs)
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return _reduce(loss, reduction, empty_mean_zero=False)
