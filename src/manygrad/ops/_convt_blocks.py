"""Ungrouped transposed 2-d convolutions of float32 CPU arrays, block by block of images.

The forward multiplies a block of m images' inputs, side by side as (C_in, m * hi * wi),
by the transposed weight into columns (C_out * kh * kw, m * hi * wi) and adds every column
value at its output pixel (col2im, ``_native.convt_fold``: in C, straight into the NCHW
output with the bias). The backward gathers the output gradient's columns of the same shape
(im2col, ``_native.convt_unfold``, which also sums the planes for the bias gradient); the
input gradient is the weight times them, written back into the NCHW gradient, and the
weight gradient the block's inputs times their transpose.

One product per block, not per image: the inputs' side-by-side copy (and the input
gradient's copy back) is C_out * kh * kw / C_in times smaller than the columns, and BLAS
runs its wider products faster (32x128x8x8 -> 64 at k4 s2, 4 images a block, on an AVX2
Zen 3: 6.0 against 6.8 ms of forward products, 5.8 against 6.2 and 6.0 against 7.4 for the
input and weight gradients). The columns of a block stay in the cache between their product
and their fold (the columns of the whole batch are kh * kw times the output: 64 MB for
32x64x16x16 -> 32 at k4). The blocks are shared between the CPU threads as the im2col
kernels' are (``_conv_kernels.run_blocks``).
"""

from __future__ import annotations

from .. import _native, backend
from . import _conv_kernels as _ck

# NOTE: a switch for the tests, which compare this path with the columns path
ENABLED = True

# NOTE: float32 values of columns per block (~1 MB). Forward + backward of 32x64x16x16 -> 32
# and 32x128x8x8 -> 64 at k4 s2 measured within noise from 1/8 to 1x this size; the whole
# batch's columns (64 MB) would leave the caches between product and fold.
BLOCK_ELEMS = 1 << 18


def applies(x, w, b, g) -> bool:
    """Whether the transposed convolution runs here: float32 NumPy arrays, one group, and
    the CPU kernels built."""
    return (
        ENABLED
        and g.G == 1
        and g.N > 0
        and backend.device_of(x).type == "cpu"
        and _native.takes(w, b)
        and x.dtype == w.dtype
        and x.size > 0
    )


def _step(g) -> int:
    return max(1, min(g.N, BLOCK_ELEMS // max(1, g.K * g.Ho * g.Wo)))


def _side_by_side(xp, a):
    """(C, m * L) of the images ``a`` (m, C, L): each row the m images' rows of a channel."""
    m, c, ell = a.shape
    if m == 1:
        return a.reshape(c, ell)
    return xp.ascontiguousarray(a.transpose(1, 0, 2)).reshape(c, m * ell)


def forward(x, w, b, g):
    """Output (N, C_out, H, W) of ``x`` (N, C_in, hi, wi) with ``w`` (C_in, C_out, kh, kw)
    and bias ``b`` (C_out,) or None."""
    xp = backend.array_module(x)
    hw, step = g.Ho * g.Wo, _step(g)
    n, geo = _ck.workers(g, step), _native.convt_geometry(g)
    x3 = xp.ascontiguousarray(x).reshape(g.N, g.O, hw)
    wt = w.reshape(g.O, g.K).T  # NOTE: a transposed view: BLAS reads it as it is
    y = xp.empty((g.N, g.C, g.H, g.W), x.dtype)
    cols = [xp.empty(step * g.K * hw, x.dtype) for _ in range(n)]

    def block(n0, m, slot):
        c = cols[slot][: m * g.K * hw].reshape(g.K, m * hw)
        xp.matmul(wt, _side_by_side(xp, x3[n0 : n0 + m]), out=c)
        _native.convt_fold(c, b, y[n0 : n0 + m], geo)

    _ck.run_blocks(g, step, n, block)
    return y


def backward(gy, x, w, g, need_x: bool, need_w: bool, need_b: bool):
    """``(gx, gw, gb)`` of ``forward(x, w, b, g)`` for the output gradient ``gy`` (each None
    unless needed)."""
    xp = backend.array_module(gy)
    if not (need_x or need_w):
        return None, None, gy.sum(axis=(0, 2, 3)) if need_b else None
    hw, step = g.Ho * g.Wo, _step(g)
    n, geo = _ck.workers(g, step), _native.convt_geometry(g)
    gy = xp.ascontiguousarray(gy)
    w2 = w.reshape(g.O, g.K)
    x3 = xp.ascontiguousarray(x).reshape(g.N, g.O, hw) if need_w else None
    gx = xp.empty((g.N, g.O, hw), gy.dtype) if need_x else None
    sums = xp.empty((g.N, g.C), gy.dtype) if need_b else None
    cols = [xp.empty(step * g.K * hw, gy.dtype) for _ in range(n)]
    acc = [None] * n

    def block(n0, m, slot):
        c = cols[slot][: m * g.K * hw].reshape(g.K, m * hw)
        _native.convt_unfold(gy[n0 : n0 + m], c, None if sums is None else sums[n0 : n0 + m],
                             geo)  # fmt: skip
        if need_x:
            if m == 1:
                xp.matmul(w2, c, out=gx[n0])
            else:
                gx[n0 : n0 + m] = xp.matmul(w2, c).reshape(g.O, m, hw).transpose(1, 0, 2)
        if need_w:
            part = xp.matmul(_side_by_side(xp, x3[n0 : n0 + m]), c.T)
            acc[slot] = part if acc[slot] is None else acc[slot] + part

    _ck.run_blocks(g, step, n, block)
    gw = sum(a for a in acc if a is not None).reshape(w.shape) if need_w else None
    gb = sums.sum(axis=0) if need_b else None
    return (None if gx is None else gx.reshape(x.shape)), gw, gb
