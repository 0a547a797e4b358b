"""Box operations (torchvision.ops.boxes): areas, IoUs, format conversions, clipping and
non-maximum suppression, for boxes as ``Tensor[..., 4]``.

The IoU family is written with manygrad's tensor ops, so it runs on every device and is
differentiable. ``nms`` computes the pairwise overlaps on the boxes' device and walks the
greedy selection on the host, as torchvision's CUDA kernel does: its result size depends
on the data, so one transfer of the overlap mask is unavoidable.
"""

from __future__ import annotations

import numpy as np  # host-ok: nms's greedy walk runs on the host, as torchvision's kernel

import manygrad as mg
from manygrad import Tensor, backend

from ._box_convert import _CONVERT
from ._utils import _upcast

_AXIS_ALIGNED = ("xyxy", "xywh", "cxcywh")
_ROTATED = ("xywhr", "cxcywhr", "xyxyxyxy")
# NOTE: the number of boxes x 4 above which batched_nms runs nms per class (torchvision's
# benchmarks: one nms over offset boxes wins for small inputs, per-class loops for large)
_VANILLA_ABOVE = {"cpu": 4000}
_NMS_BLOCK = 1 << 22  # overlap-mask entries computed and moved to the host at a time


def _check_nms(op: str, boxes: Tensor, scores: Tensor) -> None:
    if not isinstance(boxes, Tensor) or boxes.dim() != 2 or boxes.shape[1] != 4:
        shape = tuple(boxes.shape) if isinstance(boxes, Tensor) else type(boxes).__name__
        raise ValueError(f"{op}: boxes must be Tensor[N, 4] as (x1, y1, x2, y2), got {shape}")
    if not isinstance(scores, Tensor) or scores.dim() != 1:
        shape = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f"{op}: scores must be Tensor[N] (one score per box), got {shape}")
    if boxes.shape[0] != scores.shape[0]:
        raise ValueError(
            f"{op}: boxes and scores should have the same number of elements in dimension 0, "
            f"got {boxes.shape[0]} and {scores.shape[0]}"
        )
    if not boxes.is_floating_point() or boxes.dtype != scores.dtype:
        raise TypeError(
            f"{op}: boxes and scores must be floating point of one dtype, got {boxes.dtype} "
            f"and {scores.dtype}; cast them, e.g. scores.to(boxes.dtype)"
        )
    if boxes.device != scores.device:
        raise RuntimeError(
            f"{op}: boxes are on {boxes.device} and scores on {scores.device}; move them to "
            "one device, e.g. scores.to(boxes.device)"
        )


def _threshold_for(dtype, iou_threshold: float):
    """A threshold in ``dtype`` that float ``iou > it`` compares as ``iou > iou_threshold``
    in float64, as torchvision's C++ kernel does (a float32 0.1 lies above 0.1)."""
    t = np.asarray(iou_threshold, dtype)
    if float(t) > iou_threshold:  # NOTE: the largest value of dtype below the threshold
        t = np.nextafter(t, np.asarray(-np.inf, dtype))
    return t.item()


def _suppression_mask(cols, area, rows: slice, threshold) -> np.ndarray:
    """``IoU(box i, box j) > threshold`` for i in ``rows`` and j >= ``rows.start`` (boxes in
    score order), as a host bool array; the ratio in the boxes' dtype as the kernel's."""
    xp = backend.array_module(area)
    x1, y1, x2, y2 = cols
    a, b = rows, slice(rows.start, None)
    w = xp.minimum(x2[a, None], x2[None, b])
    w -= xp.maximum(x1[a, None], x1[None, b])
    h = xp.minimum(y2[a, None], y2[None, b])
    h -= xp.maximum(y1[a, None], y1[None, b])
    xp.maximum(w, 0, out=w)
    xp.maximum(h, 0, out=h)
    w *= h  # the intersections
    union = area[a, None] + area[None, b]
    union -= w
    with backend.quiet_float_errors():  # NOTE: 0/0 for two empty boxes: NaN, not kept
        w /= union
    return backend.to_numpy(w > threshold)


def _greedy(ordered: Tensor, iou_threshold: float) -> list[int]:
    """The positions kept among boxes in score order: the overlap mask computed on the
    boxes' device a block of rows at a time, walked on the host."""
    n = ordered.shape[0]
    b = ordered._data
    with backend.device_scope(ordered._device):
        cols = (b[:, 0], b[:, 1], b[:, 2], b[:, 3])
        area = (cols[2] - cols[0]) * (cols[3] - cols[1])
        threshold = _threshold_for(b.dtype, iou_threshold)
        removed = np.zeros(n, bool)
        kept = []
        step = max(1, min(n, _NMS_BLOCK // n))
        for start in range(0, n, step):
            stop = min(n, start + step)
            over = _suppression_mask(cols, area, slice(start, stop), threshold)
            i = start
            while True:
                free = np.flatnonzero(~removed[i:stop])
                if free.size == 0:
                    break
                i += int(free[0])
                kept.append(i)
                removed[start:] |= over[i - start]
                i += 1
    return kept


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Non-maximum suppression: the indices of the boxes kept, by decreasing score.

    Boxes are visited by decreasing score (ties: the lower index first); a box is
    dropped when its IoU with a box already kept exceeds ``iou_threshold``.

    Args:
        boxes: ``Tensor[N, 4]`` as (x1, y1, x2, y2) with ``0 <= x1 < x2``, ``0 <= y1 < y2``.
        scores: ``Tensor[N]``, the boxes' scores (same dtype as ``boxes``).
        iou_threshold: drop boxes whose IoU with a kept box is above this.

    Example: ``keep = nms(boxes, scores, 0.5)`` -> int64 ``Tensor[K]``.
    """
    _check_nms("nms", boxes, scores)
    n = boxes.shape[0]
    if n == 0:
        return mg.empty((0,), dtype=mg.int64, device=boxes.device)
    with mg.no_grad():
        order = mg.sort(scores.detach(), descending=True, stable=True)[1]
        ordered = boxes.detach()[order]
        if ordered.dtype not in (mg.float32, mg.float64):
            ordered = ordered.float()  # NOTE: 16-bit boxes compared in float32
        kept = _greedy(ordered, float(iou_threshold))
        keep = mg.tensor(np.asarray(kept, np.int64), device=boxes.device)
        return order[keep]


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """Non-maximum suppression within each category: boxes of different ``idxs`` never
    suppress each other. Returns int64 indices by decreasing score.

    Args:
        boxes: ``Tensor[N, 4]`` as (x1, y1, x2, y2).
        scores: ``Tensor[N]``.
        idxs: ``Tensor[N]``, each box's category.
        iou_threshold: drop boxes whose IoU with a kept box of their category is above this.

    Example: ``keep = batched_nms(boxes, scores, labels, 0.5)``.
    """
    _check_nms("batched_nms", boxes, scores)
    limit = _VANILLA_ABOVE.get(boxes.device.type, 100_000)
    if boxes.numel() > limit:
        return _batched_nms_vanilla(boxes, scores, idxs, iou_threshold)
    return _batched_nms_coordinate_trick(boxes, scores, idxs, iou_threshold)


def _batched_nms_coordinate_trick(
    boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float
) -> Tensor:
    # Each category's boxes moved by (category x (largest coordinate + 1)): boxes of
    # different categories then never overlap, and one nms call serves them all.
    if boxes.numel() == 0:
        return mg.empty((0,), dtype=mg.int64, device=boxes.device)
    with mg.no_grad():
        boxes = boxes.detach()
        offsets = idxs.to(boxes) * (boxes.max() + 1)
        return nms(boxes + offsets[:, None], scores, iou_threshold)


def _batched_nms_vanilla(
    boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float
) -> Tensor:
    # One nms per category (Detectron2's way), then all kept boxes by decreasing score.
    with mg.no_grad():
        keep_mask = mg.zeros_like(scores, dtype=mg.bool)
        for class_id in mg.unique(idxs):
            members = mg.where(idxs == class_id)[0]
            kept = nms(boxes[members], scores[members], iou_threshold)
            keep_mask[members[kept]] = True
        keep = mg.where(keep_mask)[0]
        return keep[mg.sort(scores[keep], descending=True, stable=True)[1]]


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    """Indices of the boxes whose width and height are both at least ``min_size``.

    Args:
        boxes: ``Tensor[..., 4]`` as (x1, y1, x2, y2).
        min_size: the smallest side kept.

    Example: ``keep = remove_small_boxes(boxes, 1e-3)``.
    """
    ws, hs = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    return mg.where((ws >= min_size) & (hs >= min_size))[0]


def clip_boxes_to_image(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Boxes clipped to an image of ``size`` = (height, width).

    Args:
        boxes: ``Tensor[..., 4]`` as (x1, y1, x2, y2).
        size: (height, width) of the image.

    Example: ``clip_boxes_to_image(boxes, (480, 640))``.
    """
    height, width = size
    xs = boxes[..., 0::2].clamp(min=0, max=width)
    ys = boxes[..., 1::2].clamp(min=0, max=height)
    return mg.stack((xs, ys), dim=boxes.dim()).reshape(boxes.shape)


def box_convert(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    """Boxes converted from ``in_fmt`` to ``out_fmt``.

    Formats: ``"xyxy"`` (corners), ``"xywh"`` (top-left corner, width, height),
    ``"cxcywh"`` (centre, width, height), and the rotated ``"xywhr"``, ``"cxcywhr"``
    (r in degrees, counter-clockwise) and ``"xyxyxyxy"`` (four corners).

    Args:
        boxes: ``Tensor[..., K]`` (K = 4, 5 or 8 by format).
        in_fmt: the format of ``boxes``.
        out_fmt: the format wanted.

    Example: ``box_convert(b, "cxcywh", "xyxy")``.
    """
    allowed = _AXIS_ALIGNED + _ROTATED
    if in_fmt not in allowed or out_fmt not in allowed:
        raise ValueError(
            f"box_convert: unsupported conversion {in_fmt!r} -> {out_fmt!r}; "
            f"formats are {list(allowed)}"
        )
    if in_fmt == out_fmt:
        return boxes.clone()
    steps = _CONVERT.get((in_fmt, out_fmt))
    if steps is None:
        raise NotImplementedError(
            f"box_convert: no conversion between {in_fmt!r} and {out_fmt!r} (axis-aligned and "
            "rotated formats do not convert into each other)"
        )
    for step in steps:
        boxes = step(boxes)
    return boxes


# ---------------------------------------------------------------------------------- areas, IoUs


def box_area(boxes: Tensor, fmt: str = "xyxy") -> Tensor:
    """The area of each box.

    Args:
        boxes: ``Tensor[..., 4]``.
        fmt: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``.

    Example: ``box_area(mg.tensor([[0., 0., 2., 3.]]))`` -> ``tensor([6.])``.
    """
    if fmt not in _AXIS_ALIGNED:
        raise ValueError(f"box_area: unsupported format {fmt!r}; pass one of {_AXIS_ALIGNED}")
    boxes = _upcast(boxes)
    if fmt == "xyxy":
        return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    return boxes[..., 2] * boxes[..., 3]


def _corners(b: Tensor, fmt: str) -> tuple[Tensor, Tensor]:
    """Top-left and bottom-right corners (``[..., 2]`` each) of boxes in ``fmt``."""
    if fmt == "xyxy":
        return b[..., :2], b[..., 2:]
    if fmt == "xywh":
        return b[..., :2], b[..., :2] + b[..., 2:]
    return b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2


def _box_inter_union(boxes1: Tensor, boxes2: Tensor, fmt: str = "xyxy") -> tuple[Tensor, Tensor]:
    area1, area2 = box_area(boxes1, fmt=fmt), box_area(boxes2, fmt=fmt)
    lt1, rb1 = _corners(boxes1, fmt)
    lt2, rb2 = _corners(boxes2, fmt)
    lt = mg.max(lt1[..., None, :], lt2[..., None, :, :])  # [..., N, M, 2]
    rb = mg.min(rb1[..., None, :], rb2[..., None, :, :])
    wh = _upcast(rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter, area1[..., None] + area2[..., None, :] - inter


def box_iou(boxes1: Tensor, boxes2: Tensor, fmt: str = "xyxy") -> Tensor:
    """Pairwise intersection-over-union (Jaccard index) of two sets of boxes.

    Args:
        boxes1: ``Tensor[..., N, 4]``.
        boxes2: ``Tensor[..., M, 4]``.
        fmt: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``.

    Example: ``box_iou(a, b)`` -> ``Tensor[..., N, M]``.
    """
    if fmt in _ROTATED:
        raise NotImplementedError(
            f"box_iou: rotated boxes ({fmt!r}) need torchvision's compiled box_iou_rotated, "
            "which manygrad does not have; use axis-aligned boxes ('xyxy', 'xywh', 'cxcywh')"
        )
    if fmt not in _AXIS_ALIGNED:
        raise ValueError(f"box_iou: unsupported format {fmt!r}; pass one of {_AXIS_ALIGNED}")
    inter, union = _box_inter_union(boxes1, boxes2, fmt)
    return inter / union


def _enclosing_wh(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Width and height (``[..., N, M, 2]``) of the smallest box enclosing each pair."""
    lt = mg.min(boxes1[..., None, :2], boxes2[..., None, :, :2])
    rb = mg.max(boxes1[..., None, 2:], boxes2[..., None, :, 2:])
    return _upcast(rb - lt).clamp(min=0)


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise generalized IoU (Rezatofighi et al., 2019) of two sets of xyxy boxes.

    Args:
        boxes1: ``Tensor[..., N, 4]``.
        boxes2: ``Tensor[..., M, 4]``.

    Example: ``generalized_box_iou(a, b)`` -> ``Tensor[..., N, M]`` in [-1, 1].
    """
    inter, union = _box_inter_union(boxes1, boxes2)
    whi = _enclosing_wh(boxes1, boxes2)
    area = whi[..., 0] * whi[..., 1]
    return inter / union - (area - union) / area


def _box_diou_iou(boxes1: Tensor, boxes2: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    iou = box_iou(boxes1, boxes2)
    whi = _enclosing_wh(boxes1, boxes2)
    diagonal2 = whi[..., 0] ** 2 + whi[..., 1] ** 2 + eps
    xp, yp = (boxes1[..., 0] + boxes1[..., 2]) / 2, (boxes1[..., 1] + boxes1[..., 3]) / 2
    xg, yg = (boxes2[..., 0] + boxes2[..., 2]) / 2, (boxes2[..., 1] + boxes2[..., 3]) / 2
    centers2 = (
        _upcast(xp[..., None] - xg[..., None, :]) ** 2
        + _upcast(yp[..., None] - yg[..., None, :]) ** 2
    )
    return iou - centers2 / diagonal2, iou


def distance_box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7) -> Tensor:
    """Pairwise distance IoU (Zheng et al., 2019): IoU less the squared distance of the
    centres over the squared diagonal of the enclosing box.

    Args:
        boxes1: ``Tensor[..., N, 4]`` as xyxy.
        boxes2: ``Tensor[..., M, 4]`` as xyxy.
        eps: keeps the division finite. Default 1e-7.

    Example: ``distance_box_iou(a, b)`` -> ``Tensor[..., N, M]``.
    """
    return _box_diou_iou(_upcast(boxes1), _upcast(boxes2), eps)[0]


def complete_box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7) -> Tensor:
    """Pairwise complete IoU (Zheng et al., 2019): distance IoU less an aspect-ratio term.

    Args:
        boxes1: ``Tensor[..., N, 4]`` as xyxy.
        boxes2: ``Tensor[..., M, 4]`` as xyxy.
        eps: keeps the divisions finite. Default 1e-7.

    Example: ``complete_box_iou(a, b)`` -> ``Tensor[..., N, M]``.
    """
    boxes1, boxes2 = _upcast(boxes1), _upcast(boxes2)
    diou, iou = _box_diou_iou(boxes1, boxes2, eps)
    w1 = boxes1[..., None, 2] - boxes1[..., None, 0]
    h1 = boxes1[..., None, 3] - boxes1[..., None, 1]
    w2 = boxes2[..., None, :, 2] - boxes2[..., None, :, 0]
    h2 = boxes2[..., None, :, 3] - boxes2[..., None, :, 1]
    v = (4 / (mg.pi**2)) * (mg.atan(w1 / h1) - mg.atan(w2 / h2)) ** 2
    with mg.no_grad():  # NOTE: the trade-off weight alpha is a constant for the gradient
        alpha = v / (1 - iou + v + eps)
    return diou - alpha * v


def masks_to_boxes(masks: Tensor) -> Tensor:
    """The xyxy bounding box (float) of each mask's nonzero pixels; ``[0, 0, 0, 0]`` for
    an empty mask.

    Args:
        masks: ``Tensor[N, H, W]``.

    Example: ``masks_to_boxes(masks)`` -> ``Tensor[N, 4]``.
    """
    if masks.numel() == 0:
        return mg.zeros((0, 4), device=masks.device, dtype=mg.float32)
    if masks.dim() != 3:
        raise ValueError(f"masks_to_boxes: expected masks of shape [N, H, W], got {masks.shape}")
    _, h, w = masks.shape
    on = masks.bool()
    rows = mg.any(on, dim=2).float()  # [N, H]
    cols = mg.any(on, dim=1).float()  # [N, W]
    y1, x1 = rows.argmax(dim=1), cols.argmax(dim=1)
    y2 = (h - 1) - rows.flip(dims=[1]).argmax(dim=1)
    x2 = (w - 1) - cols.flip(dims=[1]).argmax(dim=1)
    boxes = mg.stack([x1, y1, x2, y2], dim=1).float()
    empty = (rows.sum(dim=1) == 0)[:, None]
    return mg.where(empty, mg.zeros_like(boxes), boxes)
