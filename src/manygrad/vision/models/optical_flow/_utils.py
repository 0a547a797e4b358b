"""RAFT's helpers: sampling at pixel coordinates, the pixel grid, and the flow's
upsampling (bilinear, or the convex combination of RAFT's learned mask)."""

from __future__ import annotations

import manygrad as mg

from ....nn import functional as F


def grid_sample(img, absolute_grid, mode: str = "bilinear", align_corners: bool | None = None):
    """``F.grid_sample`` at absolute pixel coordinates (x, y) in place of [-1, 1] ones (a
    one-pixel-high ``img`` keeps its y as given)."""
    h, w = img.shape[-2:]
    xgrid, ygrid = absolute_grid.split([1, 1], dim=-1)
    xgrid = 2 * xgrid / (w - 1) - 1
    if h > 1:
        ygrid = 2 * ygrid / (h - 1) - 1
    normalized_grid = mg.cat([xgrid, ygrid], dim=-1)
    return F.grid_sample(img, normalized_grid, mode=mode, align_corners=align_corners)


def make_coords_grid(batch_size: int, h: int, w: int, device: str = "cpu"):
    """(batch_size, 2, h, w) float pixel coordinates: channel 0 the x (column), 1 the y."""
    ys, xs = mg.meshgrid(mg.arange(h, device=device), mg.arange(w, device=device), indexing="ij")
    coords = mg.stack([xs, ys], dim=0).float()
    return coords[None].repeat(batch_size, 1, 1, 1)


def upsample_flow(flow, up_mask=None, factor: int = 8):
    """Flow ``(N, 2, h, w)`` at ``factor`` times the size, its values scaled alike.

    Without ``up_mask``: bilinear interpolation. With ``up_mask`` ``(N, 9 * factor**2, h,
    w)``: each fine pixel a convex combination (softmax weights) of its coarse pixel's 3x3
    neighbourhood (RAFT, section 3.3 and appendix B).
    """
    batch_size, num_channels, h, w = flow.shape
    new_h, new_w = h * factor, w * factor
    if up_mask is None:
        up = F.interpolate(flow, size=(new_h, new_w), mode="bilinear", align_corners=True)
        return factor * up
    up_mask = up_mask.view(batch_size, 1, 9, factor, factor, h, w).softmax(dim=2)
    neighbours = F.unfold(factor * flow, kernel_size=3, padding=1)
    neighbours = neighbours.view(batch_size, num_channels, 9, 1, 1, h, w)
    upsampled = (up_mask * neighbours).sum(dim=2)  # (N, C, factor, factor, h, w)
    upsampled = upsampled.permute(0, 1, 4, 2, 5, 3)
    return upsampled.reshape(batch_size, num_channels, new_h, new_w)
