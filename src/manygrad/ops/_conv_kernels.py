"""Channels-last (NHWC) im2col kernels for ungrouped 2-d convolutions with many input rows.

The columns are (N * Ho * Wo, kh * kw * C), one row per output pixel, built from a padded
NHWC copy of the input with runs of C (often kw * C) contiguous values. With this layout the
forward product ``cols @ w2.T`` has its summed dimension contiguous in both operands, the
form BLAS runs fastest (about 1.5x the channels-first ``w @ cols`` on the CPU), and the
weight gradient reuses the forward's columns. The input gradient is folded back per block
of images, so that its columns stay in the CPU cache while they are summed.
"""

from __future__ import annotations

from .. import backend
from ..threads import get_num_threads

# NOTE: elements of input-gradient columns per block of images (~1 MB of float32): small
# enough to stay in a CPU core's L2 cache between the product and the fold (about 10% of a
# 64x32x14x14 conv2d's forward + backward on one thread). Only with a single-threaded BLAS:
# a multi-threaded one on a busy CPU loses more waiting for its threads in each of the
# smaller products (measured 0.85x instead of 1.45x PyTorch's 2-thread throughput).
BLOCK_ELEMS = 1 << 18


def _block_images(xp, g, ncols: int) -> int:
    """Images per block of the input gradient: the whole batch on a GPU or threaded BLAS."""
    if xp.__name__ != "numpy" or get_num_threads() != 1:
        return max(1, g.N)
    return max(1, BLOCK_ELEMS // (g.Ho * g.Wo * ncols))


def pad_nhwc(x, g):
    """(N, C, H, W) -> zero-padded channels-last (N, H + pt + pb, W + pl + pr, C)."""
    xp = backend.array_module(x)
    pt, pb, pl, _ = g.pads
    out = xp.zeros((g.N, g.H + pt + pb, g.Wp, g.C), x.dtype)
    out[:, pt : pt + g.H, pl : pl + g.W, :] = x.transpose(0, 2, 3, 1)
    return out


def cols_nhwc(xpad, g):
    """Columns (N * Ho * Wo, kh * kw * C) of a padded NHWC input, (i, j, c) along a row."""
    xp = backend.array_module(xpad)
    sn, sh, sw, sc = xpad.strides
    shape = (g.N, g.Ho, g.Wo, g.kh, g.kw, g.C)
    strides = (sn, g.sh * sh, g.sw * sw, g.dh * sh, g.dw * sw, sc)
    view = xp.lib.stride_tricks.as_strided(xpad, shape, strides)
    return xp.ascontiguousarray(view).reshape(g.N * g.Ho * g.Wo, g.kh * g.kw * g.C)


def weight_rows(w):
    """(O, C, kh, kw) -> (O, kh * kw * C), matching the order of ``cols_nhwc``'s rows."""
    xp = backend.array_module(w)
    return xp.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(w.shape[0], -1)


def forward(cols, w2, b, g):
    """(N, O, Ho, Wo) output (plus bias ``b``) from the columns and the weight rows."""
    xp = backend.array_module(cols)
    y = backend.matmul(cols, w2.T).reshape(g.N, g.Ho, g.Wo, g.O).transpose(0, 3, 1, 2)
    if b is None:
        return xp.ascontiguousarray(y)
    out = xp.empty(y.shape, y.dtype)
    return xp.add(y, b.reshape(1, -1, 1, 1), out=out)  # NOTE: bias fused into the copy


def grad_out_rows(gy, g):
    """Output gradient (N, O, Ho, Wo) -> (N * Ho * Wo, O), rows matching the columns'."""
    xp = backend.array_module(gy)
    return xp.ascontiguousarray(gy.transpose(0, 2, 3, 1)).reshape(-1, g.O)


def grad_weight(cols, gyr, wshape):
    """Weight gradient (O, C, kh, kw): one product over the whole batch, ``cols.T @ gyr``."""
    xp = backend.array_module(gyr)
    o, c, kh, kw = wshape
    gw = backend.matmul(cols.T, gyr).T.reshape(o, kh, kw, c).transpose(0, 3, 1, 2)
    return xp.ascontiguousarray(gw)


def grad_input(gyr, w2, g):
    """Input gradient (N, C, H, W): per block of images, ``gyr @ w2`` folded back (col2im)."""
    xp = backend.array_module(gyr)
    pt, pb, pl, _ = g.pads
    out = xp.zeros((g.N, g.H + pt + pb, g.Wp, g.C), gyr.dtype)
    hw = g.Ho * g.Wo
    step = _block_images(xp, g, w2.shape[1])
    hs, ws = g.sh * (g.Ho - 1) + 1, g.sw * (g.Wo - 1) + 1
    for n0 in range(0, g.N, step):
        m = min(step, g.N - n0)
        cols = backend.matmul(gyr[n0 * hw : (n0 + m) * hw], w2)
        cols = cols.reshape(m, g.Ho, g.Wo, g.kh, g.kw, g.C)
        dst = out[n0 : n0 + m]
        for i in range(g.kh):
            for j in range(g.kw):
                h0, w0 = i * g.dh, j * g.dw
                dst[:, h0 : h0 + hs : g.sh, w0 : w0 + ws : g.sw] += cols[:, :, :, i, j]
    gx = out[:, pt : pt + g.H, pl : pl + g.W].transpose(0, 3, 1, 2)
    return xp.ascontiguousarray(gx)
