"""Softmax and log_softmax over the last axis of CPU arrays, block of rows by block of rows
(``ops/nn.py``'s Softmax takes these for NumPy float32/float64 arrays; other arrays, GPU
ones included, take its plain formulas)."""

from __future__ import annotations

from .. import backend

# NOTE: values per block of rows on CPUs: max, subtract, exp, sum and scale each pass over
# a block still in L2 (1 MiB of float32). Arrays past the last-level cache gain most
# (4096x4096 float32, one thread, both under row_loops: softmax forward 12.1 against 15.8
# ms, log_softmax forward 12.0 against 21.3, its backward 10.4 against 20.1); arrays that
# fit in it gain little, but the block temporaries spare allocating whole-array ones
_ROWS_BLOCK = 1 << 18


def rows_path(a, axis):
    """Whether softmax over ``axis`` of ``a`` takes the CPU row loop: a C-contiguous float32
    or float64 NumPy array of 32k values and more, over its last axis of >= 16 values."""
    return (
        axis == a.ndim - 1
        and a.size >= 1 << 15
        and a.shape[-1] >= 16
        and backend.device_of(a).type == "cpu"
        and a.dtype.char in "fd"
        and a.flags.c_contiguous
    )


def _row_blocks(rows, n):
    step = max(1, _ROWS_BLOCK // n)
    return [slice(i, i + step) for i in range(0, rows, step)]


def rows_forward(xp, x, log):
    """(log-)softmax over the last axis of a CPU array, block of rows by block of rows (the
    plain path's formulas: sums as products with a vector of ones, as ``axis_sum``)."""
    n = x.shape[-1]
    x2 = x.reshape(-1, n)
    res = xp.empty_like(x)  # NOTE: the result owns its memory (not a view): no copy later
    out = res.reshape(-1, n)
    ones = xp.ones(n, x.dtype)
    blocks = _row_blocks(x2.shape[0], n)
    tmp = xp.empty((min(blocks[0].stop, x2.shape[0]), n), x.dtype) if log else None
    with backend.row_loops(n):
        for b in blocks:
            xb, z = x2[b], out[b]
            xp.subtract(xb, xb.max(axis=1, keepdims=True), out=z)
            if log:
                e = xp.exp(z, out=tmp[: z.shape[0]])
                z -= xp.log(xp.matmul(e, ones))[:, None]
            else:
                xp.exp(z, out=z)
                z *= (1 / xp.matmul(z, ones))[:, None]
    return res


def rows_backward(xp, g, y, log):
    """Softmax's backward over the last axis of a CPU array, block of rows by block of rows:
    ``g - exp(y) * sum(g)`` for log_softmax, ``(g - sum(g * y)) * y`` for softmax."""
    n = y.shape[-1]
    g2, y2 = g.reshape(-1, n), y.reshape(-1, n)
    res = xp.empty_like(y)
    out = res.reshape(-1, n)
    ones = xp.ones(n, y.dtype) if log else None
    with backend.row_loops(n):
        for b in _row_blocks(y2.shape[0], n):
            gb, yb, gx = g2[b], y2[b], out[b]
            if log:
                xp.exp(yb, out=gx)
                gx *= xp.matmul(gb, ones)[:, None]
                xp.subtract(gb, gx, out=gx)
            else:
                dot = xp.matmul(gb[:, None, :], yb[:, :, None])[:, :, 0]
                xp.subtract(gb, dot, out=gx)
                gx *= yb
    return res
