"""1x1 convolutions (ungrouped, unpadded) on the CPU as plain matrix products.

A 1x1 convolution multiplies every pixel's channel vector by the (O, C) weight, so over an
image held as (C, H * W) it is one product, and over a batch a stack of them read straight
from the NCHW input: no columns, no channels-first copies. A stride first picks the
sampled pixels (one copy of 1/s^2 of the input). The backward is two more products: the
input gradient ``W^T . gy`` per image, and the weight gradient ``sum_n gy[n] . x[n]^T``,
accumulated image by image so that BLAS reads both operands in place.

The shortcut convolutions of residual networks and the expansion and projection layers of
MobileNet-style blocks are of this kind.
"""

from __future__ import annotations

from .. import backend

# NOTE: pixels an image from which the weight gradient runs one product per image (7x7
# images, 256 channels, batch 256: 22.9 against 24.8 ms for the copies); below it the
# per-product cost wins (2x2 images, 512 channels: 0.82 against 0.26 ms)
_LOOP_MIN = 32


def applies(x, g) -> bool:
    """Whether conv2d of CPU float32/float64 ``x`` with geometry ``g`` is a 1x1, ungrouped,
    unpadded convolution."""
    return (
        g.kh == g.kw == 1
        and g.G == 1
        and not any(g.pads)
        and backend.device_of(x).type == "cpu"
        and x.dtype.char in "fd"
    )


def _sampled(x4, g):
    """The pixels the kernel reads, as (N, C, Ho * Wo): ``x4`` itself at stride 1."""
    if g.sh == g.sw == 1:
        return x4.reshape(g.N, g.C, g.H * g.W)
    xp = backend.array_module(x4)
    picked = x4[:, :, : g.sh * (g.Ho - 1) + 1 : g.sh, : g.sw * (g.Wo - 1) + 1 : g.sw]
    return xp.ascontiguousarray(picked).reshape(g.N, g.C, g.Ho * g.Wo)


def forward(x4, w4, b, g):
    """``(y, xs)``: the output (N, O, Ho, Wo) and the sampled input the weight gradient
    reads."""
    xs = _sampled(x4, g)
    y = backend.matmul(w4.reshape(g.O, g.C), xs)  # NOTE: (O, C) @ (N, C, P): N products
    if b is not None:
        y += b.reshape(1, g.O, 1)
    return y.reshape(g.N, g.O, g.Ho, g.Wo), xs


def backward(gy, w4, xs, g, nx, nw, nb):
    """``(gx, gw, gb)`` of the 1x1 convolution (None where not needed)."""
    xp = backend.array_module(gy)
    gy3 = gy.reshape(g.N, g.O, g.Ho * g.Wo)
    gx = gw = gb = None
    if nx:
        wt = xp.ascontiguousarray(w4.reshape(g.O, g.C).T)
        part = backend.matmul(wt, gy3)  # (N, C, P)
        if g.sh == g.sw == 1:
            gx = part.reshape(g.N, g.C, g.H, g.W)
        else:
            gx = xp.zeros((g.N, g.C, g.H, g.W), gy.dtype)
            gx[:, :, : g.sh * (g.Ho - 1) + 1 : g.sh, : g.sw * (g.Wo - 1) + 1 : g.sw] = part.reshape(
                g.N, g.C, g.Ho, g.Wo
            )
    if nw:
        p = g.Ho * g.Wo
        if p >= _LOOP_MIN and g.N:
            # NOTE: image by image, so that each product reads x[n]^T as BLAS's transposed
            # operand in place (a batched product with a transposed operand copies it first)
            gw = xp.matmul(gy3[0], xs[0].T)
            for n in range(1, g.N):
                gw += xp.matmul(gy3[n], xs[n].T)
        else:  # NOTE: few pixels an image: one product over channels-first copies
            gw = xp.matmul(
                gy3.transpose(1, 0, 2).reshape(g.O, g.N * p),
                xs.transpose(1, 0, 2).reshape(g.C, g.N * p).T,
            )
        gw = gw.reshape(w4.shape)
    if nb:
        gb = gy3.sum(axis=(0, 2))
    return gx, gw, gb
