"""Helpers the box and region ops share (torchvision.ops._utils)."""

from __future__ import annotations

import manygrad as mg
from manygrad import Tensor, nn


def _cat(tensors: list[Tensor], dim: int = 0) -> Tensor:
    """``mg.cat`` that returns a single tensor as it is (no copy)."""
    return tensors[0] if len(tensors) == 1 else mg.cat(tensors, dim)


def convert_boxes_to_roi_format(boxes: list[Tensor]) -> Tensor:
    """A list of per-image ``Tensor[L, 4]`` boxes as one ``Tensor[K, 5]`` whose first
    column is the image's index in the batch."""
    ids = [mg.full_like(b[:, :1], i) for i, b in enumerate(boxes)]
    return mg.cat([_cat(ids), _cat(list(boxes))], dim=1)


def check_roi_boxes_shape(boxes, op: str = "roi_align") -> None:
    """``boxes`` is a ``Tensor[K, 5]`` or a list of ``Tensor[L, 4]``, else a clear error."""
    if isinstance(boxes, (list, tuple)):
        for b in boxes:
            if not isinstance(b, Tensor) or b.dim() != 2 or b.shape[1] != 4:
                shape = tuple(b.shape) if isinstance(b, Tensor) else type(b).__name__
                raise ValueError(
                    f"{op}: each tensor of the boxes list must be Tensor[L, 4] as "
                    f"(x1, y1, x2, y2), got {shape}"
                )
    elif isinstance(boxes, Tensor):
        if boxes.dim() != 2 or boxes.shape[1] != 5:
            raise ValueError(
                f"{op}: a boxes tensor must be Tensor[K, 5] as (batch_index, x1, y1, x2, y2), "
                f"got shape {tuple(boxes.shape)}; pass a list of Tensor[L, 4] per image instead"
            )
    else:
        raise TypeError(
            f"{op}: boxes must be a Tensor[K, 5] or a list of Tensor[L, 4], "
            f"got {type(boxes).__name__}"
        )


def split_normalization_params(
    model: nn.Module, norm_classes: list[type] | None = None
) -> tuple[list[Tensor], list[Tensor]]:
    """The trainable parameters of ``model`` split into those of its normalization layers
    and all others (so that weight decay can skip the former).

    Args:
        model: the module.
        norm_classes: the layer types counted as normalization; default: batch, layer,
            group, instance and local-response norms.

    Example: ``norm, other = split_normalization_params(model)``.
    """
    if not norm_classes:
        norm_classes = [
            nn.modules.batchnorm._BatchNorm,
            nn.LayerNorm,
            nn.GroupNorm,
            nn.modules.instancenorm._InstanceNorm,
            nn.LocalResponseNorm,
        ]
    for t in norm_classes:
        if not issubclass(t, nn.Module):
            raise ValueError(f"Class {t} is not a subclass of nn.Module.")
    classes = tuple(norm_classes)
    norm_params, other_params = [], []
    for module in model.modules():
        if next(module.children(), None) is not None:  # only the leaves' own parameters
            other_params.extend(p for p in module.parameters(recurse=False) if p.requires_grad)
        elif isinstance(module, classes):
            norm_params.extend(p for p in module.parameters() if p.requires_grad)
        else:
            other_params.extend(p for p in module.parameters() if p.requires_grad)
    return norm_params, other_params


def _upcast(t: Tensor) -> Tensor:
    """Floats below 32 bits to float32, integers below 32 bits to int32 (products of
    coordinates would overflow them)."""
    if t.is_floating_point():
        return t if t.dtype in (mg.float32, mg.float64) else t.float()
    return t if t.dtype in (mg.int32, mg.int64) else t.int()


def _upcast_non_float(t: Tensor) -> Tensor:
    """Any tensor that is not float32/float64 as float32 (the losses work in floats)."""
    return t if t.dtype in (mg.float32, mg.float64) else t.float()


def _reduce(loss: Tensor, reduction: str, empty_mean_zero: bool = True) -> Tensor:
    """A loss's ``reduction``: ``"none"``, ``"mean"`` or ``"sum"``."""
    if reduction == "none":
        return loss
    if reduction == "mean":
        if empty_mean_zero and loss.numel() == 0:
            return 0.0 * loss.sum()
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(
        f"Invalid Value for arg 'reduction': '{reduction}'; pass one of 'none', 'mean', 'sum'"
    )


def _loss_inter_union(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    """Element-wise intersection and union areas of two equally shaped sets of boxes."""
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    xi1, yi1 = mg.max(x1, x1g), mg.max(y1, y1g)
    xi2, yi2 = mg.min(x2, x2g), mg.min(y2, y2g)
    overlap = (yi2 > yi1) & (xi2 > xi1)
    # NOTE: where, not a clamp: disjoint boxes give the intersection no gradient at all
    inter = mg.where(overlap, (xi2 - xi1) * (yi2 - yi1), mg.zeros_like(x1))
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    return inter, union
