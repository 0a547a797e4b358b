"""RoIAlign (He et al., 2017, Mask R-CNN): average of bilinear samples per output bin
(torchvision.ops.roi_align), forward and backward, on every device."""

from __future__ import annotations

from manygrad import Tensor, nn
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
        k = rois.shape[0]
        self.tap, self.weight = _regions.align_plan(
            rois, (n, h, w), spatial_scale, ph, pw, sampling_ratio, aligned, x.dtype
        )
        self.shape = x.shape
        self.plan = _regions.sparse_plan(self.tap, self.weight, n * h * w)
        rows = _regions.channels_last_rows(x)
        rows = _regions.gather_weighted(rows, self.tap, self.weight, self.plan)
        return _regions.rows_to_nchw(rows, k, ph, pw)

    def backward(self, g):
        n, c, h, w = self.shape
        grows = _regions.channels_last_rows(g)  # (K * PH * PW, C)
        acc = _regions.scatter_weighted(grows, self.tap, self.weight, n * h * w, self.plan)
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
