"""Position-sensitive RoIPool (Dai et al., 2016, R-FCN; torchvision.ops.ps_roi_pool):
each output bin averages its window over its own group of input channels."""

from __future__ import annotations

from manygrad import Tensor, nn
from manygrad.autograd import Function

from . import _regions
from .ps_roi_align import _check_channels
from .roi_align import _pair, _rois_of


class PSRoiPoolFn(Function):
    op_name = "PSRoiPool"

    def forward(self, x, rois, spatial_scale, ph, pw):
        n, c, h, w = x.shape
        k = rois.shape[0]
        # NOTE: as torchvision's forward kernel: boxes of end - start pixels (at least 1),
        # windows clipped to size - 1 (so the last row and column are never read)
        tap, valid = _regions.pool_plan(
            rois, (n, h, w), spatial_scale, ph, pw, x.dtype, plus_one=False, clip=1
        )
        area = valid.sum(axis=1, keepdims=True)
        self.weight = (valid / (area + (area == 0))).astype(x.dtype)
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
        return _regions.position_sensitive_grad(acc, self.shape, ph, pw), None, None, None, None


def ps_roi_pool(
    input: Tensor,  # noqa: A002 - torchvision's name
    boxes: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
) -> Tensor:
    """Position-sensitive RoIPool: output bin (i, j) of channel c is the average of its
    window (box corners rounded to pixels) in input channel ``(c * PH + i) * PW + j``;
    an empty window gives 0.

    Args:
        input: ``Tensor[N, C, H, W]``, C a multiple of PH * PW.
        boxes: ``Tensor[K, 5]`` (batch_index, x1, y1, x2, y2) or a list of ``Tensor[L, 4]``.
        output_size: (PH, PW), or one int for both.
        spatial_scale: maps box coordinates to the feature map's. Default 1.0.

    Example: ``ps_roi_pool(x, rois, 2)`` -> ``Tensor[K, C / 4, 2, 2]``.
    """
    rois = _rois_of("ps_roi_pool", input, boxes)
    ph, pw = _pair(output_size)
    _check_channels("ps_roi_pool", input.shape[1], ph, pw)
    return PSRoiPoolFn.apply(input, rois.detach(), float(spatial_scale), ph, pw)


class PSRoIPool(nn.Module):
    """See :func:`ps_roi_pool`."""

    def __init__(self, output_size: int | tuple[int, int], spatial_scale: float):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale

    def forward(self, input: Tensor, rois: Tensor | list[Tensor]) -> Tensor:  # noqa: A002
        return ps_roi_pool(input, rois, self.output_size, self.spatial_scale)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(output_size={self.output_size}, "
            f"spatial_scale={self.spatial_scale})"
        )
