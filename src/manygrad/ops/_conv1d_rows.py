"""1-d convolution on the CPU in the input's own (N, C, L) layout.

The 2-d paths build channels-last columns, so a 1-d input pays two full transposes per
pass (NCL -> NLC, and the product back to NCL), about a third of a conv1d's time. Here
the columns of a block of ``m`` images are laid out (C * k, m, Lo): row (c, j) holds, image
after image, the input samples that kernel tap ``j`` of channel ``c`` meets, which are
contiguous runs of the padded input at stride 1. Then

- forward: ``W (O, C*k) @ cols (C*k, m*Lo)`` is (O, m, Lo): each output row is a contiguous
  run of an image's output, copied to (m, O, Lo) with the bias added;
- weight gradient: ``G (O, m*Lo) @ cols^T``, ``G`` the output gradient rows in the same
  (O, m, Lo) order (contiguous-run copies again);
- input gradient: ``W^T @ G`` is (C, k, m, Lo); each tap's slice is added into the padded
  input gradient at its offset (strided adds over contiguous runs), then cropped.

Blocks of images keep the columns in cache and spread over the CPU threads as the 2-d
paths do (``_conv_kernels.run_blocks``).
"""

from __future__ import annotations

import numpy as np  # host-ok: this path runs on NumPy inputs only (applies() checks)

from . import _conv_kernels as _ck

_BLOCK_BYTES = 1 << 20  # columns per block: about the size of a core's L2 cache


class _Blocks:
    """What ``_conv_kernels.run_blocks`` reads of a geometry: the number of images."""

    __slots__ = ("N",)

    def __init__(self, n: int):
        self.N = n


def applies(x, g) -> bool:
    """A float32/float64 NumPy input, one group, a 1-d geometry (one row, no row padding:
    conv1d, or conv2d on (N, C, 1, W) with a 1 x k kernel)."""
    return (
        type(x) is np.ndarray
        and x.dtype in (np.float32, np.float64)
        and g.G == 1
        and g.H == 1
        and g.kh == 1
        and g.pads[0] == g.pads[1] == 0
    )


def _step(g, itemsize: int) -> int:
    return max(1, _BLOCK_BYTES // max(1, g.C * g.kw * g.Wo * itemsize))


def _cols(xpad, g, n0: int, m: int, out):
    """The (C * k, m * Lo) columns of images n0..n0+m of the padded (N, C, Lp) input."""
    sn, sc, sl = xpad.strides
    view = np.lib.stride_tricks.as_strided(
        xpad[n0:], (g.C, g.kw, m, g.Wo), (sc, g.dw * sl, sn, g.sw * sl)
    )
    cols = out[: g.C * g.kw * m * g.Wo].reshape(g.C, g.kw, m, g.Wo)
    cols[...] = view
    return cols.reshape(g.C * g.kw, m * g.Wo)


def forward(x3, w2, b, g):
    """Output (N, O, Lo) (plus bias) and the padded input kept for the backward."""
    n, lo = g.N, g.Wo
    pl = g.pads[2]
    xpad = np.zeros((n, g.C, g.Wp), x3.dtype)
    xpad[:, :, pl : pl + g.W] = x3
    y = np.empty((n, g.O, lo), x3.dtype)
    step = _step(g, x3.dtype.itemsize)
    nw = _ck.workers(_Blocks(n), step)
    cols = [np.empty(g.C * g.kw * step * lo, x3.dtype) for _ in range(nw)]
    prods = [np.empty(g.O * step * lo, x3.dtype) for _ in range(nw)]
    bias = None if b is None else b.reshape(1, -1, 1)

    def block(n0, m, slot):
        c = _cols(xpad, g, n0, m, cols[slot])
        p = np.matmul(w2, c, out=prods[slot][: g.O * m * lo].reshape(g.O, m * lo))
        src = p.reshape(g.O, m, lo).transpose(1, 0, 2)
        if bias is None:
            np.positive(src, out=y[n0 : n0 + m])
        else:
            np.add(src, bias, out=y[n0 : n0 + m])

    _ck.run_blocks(_Blocks(n), step, nw, fn=block)
    return y, xpad


def backward(gy3, w2, xpad, g, need_x: bool, need_w: bool, need_b: bool):
    """Input gradient (N, C, L), weight gradient (O, C * k) and bias gradient (O,), each
    None unless asked for."""
    n, lo, dt = g.N, g.Wo, gy3.dtype
    pl = g.pads[2]
    step = _step(g, dt.itemsize)
    nw = _ck.workers(_Blocks(n), step)
    gx = np.empty((n, g.C, g.W), dt) if need_x else None
    grows = [np.empty(g.O * step * lo, dt) for _ in range(nw)]
    cols = [np.empty(g.C * g.kw * step * lo, dt) for _ in range(nw)] if need_w else None
    gcols = [np.empty(g.C * g.kw * step * lo, dt) for _ in range(nw)] if need_x else None
    gpad = [np.empty((step, g.C, g.Wp), dt) for _ in range(nw)] if need_x else None
    gw = [None] * nw
    gb = [None] * nw
    span = g.sw * (lo - 1) + 1

    def block(n0, m, slot):
        rows = grows[slot][: g.O * m * lo].reshape(g.O, m, lo)
        rows[...] = gy3[n0 : n0 + m].transpose(1, 0, 2)
        r2 = rows.reshape(g.O, m * lo)
        if need_b:
            s = r2.sum(axis=1)
            gb[slot] = s if gb[slot] is None else gb[slot] + s
        if need_w:
            part = r2 @ _cols(xpad, g, n0, m, cols[slot]).T
            gw[slot] = part if gw[slot] is None else gw[slot] + part
        if need_x:
            gc = gcols[slot][: g.C * g.kw * m * lo].reshape(g.C * g.kw, m * lo)
            np.matmul(w2.T, r2, out=gc)
            taps = gc.reshape(g.C, g.kw, m, lo)
            dst = gpad[slot][:m]
            dst[...] = 0
            for j in range(g.kw):
                o = j * g.dw
                dst[:, :, o : o + span : g.sw] += taps[:, j].transpose(1, 0, 2)
            gx[n0 : n0 + m] = dst[:, :, pl : pl + g.W]

    _ck.run_blocks(_Blocks(n), step, nw, fn=block)
    # NOTE: started at zeros: an empty batch runs no block
    w_grad = (
        sum((p for p in gw if p is not None), np.zeros((g.O, g.C * g.kw), dt)) if need_w else None
    )
    b_grad = sum((p for p in gb if p is not None), np.zeros(g.O, dt)) if need_b else None
    return gx, w_grad, b_grad
