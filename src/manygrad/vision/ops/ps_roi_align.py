"""Position-sensitive RoIAlign (Dai et al., 2016, R-FCN; torchvision.ops.ps_roi_align):
each output bin averages bilinear samples of its own group of input channels."""

from __future__ import annotations

from manygrad import Tensor, nn
from manygrad.autograd import Function

from . import _regions
from .roi_align import _pair, _rois_of


def _check_channels(op: str, c: int, ph: int, pw: int) -> None:
    if c % (ph * pw):
        raise ValueError(
            f"{op}: input channels ({c}) must be a multiple of output height x width "
            f"({ph} x {pw}); the output has input channels / ({ph * pw}) channels"
        )


class PSRoiAlignFn(Function):
    op_name = "PSRoiAlign"

    def forward(self, x, rois, spatial_scale, ph, pw, sampling_ratio):
        n, c, h, w = x.shape
        k = rois.shape[0]
        # NOTE: the kernel always shifts boxes by half a pixel and never enlarges them,
        # as roi_align(aligned=True)
        tap, self.weight = _regions.align_plan(
            rois, (n, h, w), spatial_scale, ph, pw, sampling_ratio, True, x.dtype
        )
        rows, self.tap = _regions.position_sensitive(x, tap, ph, pw)
        self.shape, self.bins = x.shape, (ph, pw)
        self.plan = _regions.sparse_plan(self.tap, self.weight, rows.shape[0])
        out = _regions.gather_weighted(rows, self.tap, self.weight, self.plan)
        return _regions.rows_to_nchw(out, k, ph, pw)

    def backward(self, g):
        n, c, h, w = self.shape
        ph, pw = self.bins
        grows = _regions.channels_last_rows(g)
        acc = _regions.scatter_weighted(
            grows, self.tap, self.weight, n * h * w * ph * pw, self.plan
        )
        return (
            _regions.position_sensitive_grad(acc, self.shape, ph, pw),
            None,
            None,
            None,
            None,
            None,
        )


def ps_roi_align(
    input: Tensor,  # noqa: A002 - torchvision's name
    boxes: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
) -> Tensor:
    """Position-sensitive RoIAlign: output bin (i, j) of channel c averages bilinear
    samples of input channel ``(c * PH + i) * PW + j``; boxes are shifted by -0.5 pixel.

    Args:
        input: ``Tensor[N, C, H, W]``, C a multiple of PH * PW.
        boxes: ``Tensor[K, 5]`` (batch_index, x1, y1, x2, y2) or a list of ``Tensor[L, 4]``.
        output_size: (PH, PW), or one int for both.
        spatial_scale: maps box coordinates to the feature map's. Default 1.0.
        sampling_ratio: samples per bin and axis; <= 0 (default -1): adaptive.

    Example: ``ps_roi_align(x, rois, 3)`` -> ``Tensor[K, C / 9, 3, 3]``.
    """
    rois = _rois_of("ps_roi_align", input, boxes)
    ph, pw = _pair(output_size)
    _check_channels("ps_roi_align", input.shape[1], ph, pw)
    return PSRoiAlignFn.apply(
        input, rois.detach(), float(spatial_scale), ph, pw, int(sampling_ratio)
    )


class PSRoIAlign(nn.Module):
    """See :func:`ps_roi_align`."""

    def __init__(
        self, output_size: int | tuple[int, int], spatial_scale: float, sampling_ratio: int
    ):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio

    def forward(self, input: Tensor, rois: Tensor | list[Tensor]) -> Tensor:  # noqa: A002
        return ps_roi_align(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(output_size={self.output_size}, "
            f"spatial_scale={self.spatial_scale}, sampling_ratio={self.sampling_ratio})"
        )
