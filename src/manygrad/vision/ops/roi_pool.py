"""RoIPool (Girshick, 2015, Fast R-CNN): the maximum of each output bin's window
(torchvision.ops.roi_pool), forward and backward, on every device."""

from __future__ import annotations

from manygrad import Tensor, backend, nn
from manygrad.autograd import Function

from . import _regions
from .roi_align import _pair, _rois_of


class RoiPoolFn(Function):
    op_name = "RoiPool"

    def forward(self, x, rois, spatial_scale, ph, pw):
        n, c, h, w = x.shape
        k = rois.shape[0]
        self.tap, valid = _regions.pool_plan(rois, (n, h, w), spatial_scale, ph, pw, x.dtype)
        rows, self.which = _regions.gather_max(_regions.channels_last_rows(x), self.tap, valid)
        self.shape = x.shape
        return _regions.rows_to_nchw(rows, k, ph, pw)

    def backward(self, g):
        xp = backend.array_module(g)
        n, c, h, w = self.shape
        grows = _regions.channels_last_rows(g)  # (K * PH * PW, C)
        arg = _regions.max_rows(self.tap, self.which)
        hit = arg >= 0
        flat = (arg * c + xp.arange(c)[None, :])[hit]
        acc = xp.zeros(n * h * w * c, g.dtype)
        backend.index_add(acc, flat, grows[hit])
        return acc.reshape(n, h, w, c).transpose(0, 3, 1, 2), None, None, None, None


def roi_pool(
    input: Tensor,  # noqa: A002 - torchvision's name
    boxes: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
) -> Tensor:
    """RoIPool: for each box (corners rounded to the feature map's pixels), the maximum
    of each of ``output_size`` bins; an empty bin gives 0. The gradient goes to each
    bin's maximum.

    Args:
        input: ``Tensor[N, C, H, W]`` feature maps.
        boxes: ``Tensor[K, 5]`` as (batch_index, x1, y1, x2, y2), or a list of
            ``Tensor[L, 4]`` boxes, one per image.
        output_size: (height, width) of each box's output, or one int for both.
        spatial_scale: maps box coordinates to the feature map's. Default 1.0.

    Example: ``roi_pool(feats, rois, 7, spatial_scale=1 / 16)`` -> ``Tensor[K, C, 7, 7]``.
    """
    rois = _rois_of("roi_pool", input, boxes)
    ph, pw = _pair(output_size)
    return RoiPoolFn.apply(input, rois.detach(), float(spatial_scale), ph, pw)


class RoIPool(nn.Module):
    """See :func:`roi_pool`."""

    def __init__(self, output_size: int | tuple[int, int], spatial_scale: float):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale

    def forward(self, input: Tensor, rois: Tensor | list[Tensor]) -> Tensor:  # noqa: A002
        return roi_pool(input, rois, self.output_size, self.spatial_scale)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(output_size={self.output_size}, "
            f"spatial_scale={self.spatial_scale})"
        )


__all__ = ["roi_pool", "RoIPool"]
