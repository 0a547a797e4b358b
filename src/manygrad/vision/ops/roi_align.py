"""RoIAlign (He et al., 2017, Mask R-CNN): average of bilinear samples per output bin
(torchvision.ops.roi_align), forward and backward, on every device."""

from __future__ import annotations

from manygrad import Tensor, backend, nn
from manygrad.autograd import Function

from . import _regions
from ._utils import check_roi_boxes_shape, convert_boxes_to_roi_format


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (list, tuple)):
        if len(v) == 1:
            return int(v[0]), int(v[0])
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _rois_of(op: str, input: Tensor, boxes) -> Tensor:  # noqa: A002 - torchvision's name
    check_roi_boxes_shape(boxes, op)
    rois = boxes if isinstance(boxes, Tensor) else convert_boxes_to_roi_format(boxes)
    if not isinstance(input, Tensor) or input.dim() != 4:
        shape = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
        raise ValueError(f"{op}: input must be Tensor[N, C, H, W], got {shape}")
    if not input.is_floating_point() or rois.dtype != input.dtype:
        raise TypeError(
            f"{op}: input and boxes must be floating point of one dtype, got {input.dtype} "
            f"and {rois.dtype}; cast the boxes, e.g. boxes.to(input.dtype)"
        )
    return rois


class RoiAlignFn(Function):
    op_name = "RoiAlign"

    def forward(self, x, rois, spatial_scale, ph, pw, sampling_ratio, aligned):
        n, c, h, w = x.shape
        self.shape = x.shape
        self.args = (rois, (n, h, w), spatial_scale, ph, pw, sampling_ratio, aligned, x.dtype)
        grid = _regions.align_grid_bound(
            rois, spatial_scale, ph, pw, sampling_ratio, aligned, x.dtype
        )
        self.chunks = _regions.box_chunks(rois.shape[0], ph * pw * 4 * grid)
        # NOTE: one chunk (the usual case): its plan is kept for backward; several (large
        # outputs): each is planned again in backward rather than kept
        self.plans = [] if len(self.chunks) == 1 else None
        rows = _regions.channels_last_rows(x)
        outs = []
        for k0, k1 in self.chunks:
            plan = self._plan(k0, k1)
            outs.append(_regions.gather_weighted(rows, *plan))
            if self.plans is not None:
                self.plans.append(plan)
        xp = backend.array_module(x)
        out = outs[0] if len(outs) == 1 else xp.concatenate(outs)
        return _regions.rows_to_nchw(out, rois.shape[0], ph, pw)

    def _plan(self, k0: int, k1: int):
        rois, size, *rest = self.args
        tap, weight = _regions.align_plan(rois[k0:k1], size, *rest)
        return tap, weight, _regions.sparse_plan(tap, weight, size[0] * size[1] * size[2])

    def backward(self, g):
        n, c, h, w = self.shape
        _, _, _, ph, pw, *_ = self.args
        grows = _regions.channels_last_rows(g)  # (K * PH * PW, C)
        acc = None
        for i, (k0, k1) in enumerate(self.chunks):
            tap, weight, plan = self.plans[i] if self.plans is not None else self._plan(k0, k1)
            part = grows[k0 * ph * pw : k1 * ph * pw]
            got = _regions.scatter_weighted(part, tap, weight, n * h * w, plan)
            acc = got if acc is None else acc + got
        gx = acc.reshape(n, h, w, c).transpose(0, 3, 1, 2)
        return gx, None, None, None, None, None, None


def roi_align(
    input: Tensor,  # noqa: A002 - torchvision's name
    boxes: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoIAlign: for each box, ``output_size`` bins, each the average of bilinearly
    interpolated samples of ``input`` (gradients flow to ``input``, not to the boxes).

    Args:
        input: ``Tensor[N, C, H, W]`` feature maps.
        boxes: ``Tensor[K, 5]`` as (batch_index, x1, y1, x2, y2), or a list of
            ``Tensor[L, 4]`` boxes, one per image of the batch.
        output_size: (height, width) of each box's output, or one int for both.
        spatial_scale: maps box coordinates to the feature map's. Default 1.0.
        sampling_ratio: samples per bin along each axis; <= 0 (default -1) picks
            ``ceil(box size / output size)`` per box.
        aligned: shift boxes by -0.5 pixel (Detectron2's alignment). Default False.

    Example: ``roi_align(feats, [boxes], (7, 7), 1 / 16, 2, aligned=True)`` ->
    ``Tensor[K, C, 7, 7]``.
    """
    rois = _rois_of("roi_align", input, boxes)
    ph, pw = _pair(output_size)
    return RoiAlignFn.apply(
        input, rois.detach(), float(spatial_scale), ph, pw, int(sampling_ratio), bool(aligned)
    )


class RoIAlign(nn.Module):
    """See :func:`roi_align`."""

    def __init__(
        self,
        output_size: int | tuple[int, int],
        spatial_scale: float,
        sampling_ratio: int,
        aligned: bool = False,
    ):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, input: Tensor, rois: Tensor | list[Tensor]) -> Tensor:  # noqa: A002
        return roi_align(
            input, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned
        )

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(output_size={self.output_size}, "
            f"spatial_scale={self.spatial_scale}, sampling_ratio={self.sampling_ratio}, "
            f"aligned={self.aligned})"
        )


__all__ = ["roi_align", "RoIAlign"]
