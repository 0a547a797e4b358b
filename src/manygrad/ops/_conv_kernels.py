"""Channels-last (NHWC) im2col kernels for ungrouped 2-d convolutions with many input rows.

The columns are (N * Ho * Wo, kh * kw * C), one row per output pixel, built from a padded
NHWC copy of the input with runs of C (often kw * C) contiguous values. With this layout the
forward product ``cols @ w2.T`` has its summed dimension contiguous in both operands, the
form BLAS runs fastest (about 1.5x the channels-first ``w @ cols`` on the CPU).

On the CPU the work goes in blocks of images whose columns stay in the cache: the forward
pads, builds and multiplies them block by block, and the backward rebuilds them from the
padded input for the weight gradient instead of keeping all of them (9x the input's
memory). With several CPU threads the blocks are shared out between them, each block's
copies and single-threaded products on one thread (``run_blocks``). On a GPU each product
covers the whole batch.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading

from .. import backend, threads

# NOTE: elements of columns per block of images (~1 MB of float32): small enough to stay in
# a CPU core's L2 cache between building, multiplying and folding them (about 15% of a
# 64x32x14x14 conv2d's forward + backward on one thread).
BLOCK_ELEMS = 1 << 18


def _blas_threads() -> int:
    """OpenBLAS's thread count now; 0 if unknown."""
    return threads.get_blas_threads() or 0


# NOTE: rows of the columns per block at the least: small images with many channels (few
# rows, long columns) otherwise leave the weight gradient's products a short summed
# dimension. 8x256x4x4 -> 256, forward + backward: 7.6-7.9 ms in one block against 9.2 in
# blocks of 7 images (112 rows).
MIN_BLOCK_ROWS = 256


def block_images(x, g) -> int:
    """Images per block: the whole batch on a GPU, cache-sized blocks on the CPU."""
    if backend.device_of(x).type != "cpu":
        return max(1, g.N)
    hw = g.Ho * g.Wo
    return max(1, BLOCK_ELEMS // (hw * g.K), -(-MIN_BLOCK_ROWS // hw))


# ---------------------------------------------------------------- blocks over CPU threads

_POOL: list = [None, 0, 0]  # the executor, its size and its process id, made on first use
_POOL_LOCK = threading.Lock()


def _pool(n: int):
    with _POOL_LOCK:
        # NOTE: a forked child (e.g. a data worker) inherits the pool but not its threads
        if _POOL[1] < n or _POOL[2] != os.getpid():
            if _POOL[0] is not None and _POOL[2] == os.getpid():
                _POOL[0].shutdown(wait=False)
            _POOL[:] = [concurrent.futures.ThreadPoolExecutor(n, "manygrad-conv"), n, os.getpid()]
        return _POOL[0]


def workers(g, step: int) -> int:
    """Threads that share the blocks: as many as the BLAS would use, at most one a block."""
    return max(1, min(_blas_threads(), -(-g.N // step)))


def run_blocks(g, step: int, n: int, fn) -> None:
    """``fn(n0, m, slot)`` for every block of images, spread over ``n`` threads (slot is
    the thread's index, for its scratch buffers).

    NOTE: with several CPU threads each runs whole blocks (columns, products with a
    single-threaded BLAS, folds and layout copies) instead of sharing every small product:
    the copies run in parallel too (NumPy releases the GIL in them) and the products keep
    their cache-sized shape. OpenBLAS is set to one thread meanwhile.
    """
    blocks = _blocks(g, step)
    if n <= 1:
        for n0, m in blocks:
            fn(n0, m, 0)
        return
    per = -(-len(blocks) // n)

    def chunk(slot):
        for n0, m in blocks[slot * per : (slot + 1) * per]:
            fn(n0, m, slot)

    _single_blas(True)
    try:
        for f in [_pool(n).submit(chunk, k) for k in range(n)]:
            f.result()
    finally:
        _single_blas(False)


_SINGLE = [0, 0]  # callers inside run_blocks, and the BLAS thread count to give back


def _single_blas(enter: bool) -> None:
    """One BLAS thread while any caller runs blocks; the count is given back when the last
    one leaves (callers on several Python threads would otherwise restore each other's 1)."""
    with _POOL_LOCK:
        if enter:
            if _SINGLE[0] == 0:
                _SINGLE[1] = _blas_threads()
                threads.set_blas_threads(1)
            _SINGLE[0] += 1
        else:
            _SINGLE[0] -= 1
            if _SINGLE[0] == 0:
                threads.set_blas_threads(_SINGLE[1])


def _blocks(g, step: int):
    """(first image, images) of each block."""
    return [(n0, min(step, g.N - n0)) for n0 in range(0, g.N, step)]


def copy_walking_source(src, dst, bias=None) -> None:
    """``dst[...] = src``, plus ``bias`` along the last axis if given, for a channels-last
    ``src`` and a ``dst`` view of the same shape into a channels-first array.

    NOTE: a ufunc with ``out=`` walks the source's memory order here (channels innermost)
    where an assignment walks the destination's, reading every value from another cache
    line: 47 against 110 us for a block of 5x64x7x7 values, and 145 us with a bias broadcast
    over the destination's rows.
    """
    xp = backend.array_module(src)
    if bias is None:
        xp.positive(src, out=dst)
    else:
        xp.add(src, bias, out=dst)


def pad_nhwc(x, g):
    """(N, C, H, W) -> zero-padded channels-last (N, H + pt + pb, W + pl + pr, C)."""
    xp = backend.array_module(x)
    pt, pb, pl, _ = g.pads
    out = xp.zeros((g.N, g.H + pt + pb, g.Wp, g.C), x.dtype)
    out[:, pt : pt + g.H, pl : pl + g.W, :] = x.transpose(0, 2, 3, 1)
    return out


def cols_nhwc(xpad, g, n0: int = 0, m: int | None = None, out=None):
    """Columns (m * Ho * Wo, kh * kw * C) of images n0..n0+m of a padded NHWC input, written
    to ``out`` if given (a reused buffer of that shape)."""
    xp = backend.array_module(xpad)
    m = g.N - n0 if m is None else m
    sn, sh, sw, sc = xpad.strides
    shape = (m, g.Ho, g.Wo, g.kh, g.kw, g.C)
    strides = (sn, g.sh * sh, g.sw * sw, g.dh * sh, g.dw * sw, sc)
    view = xp.lib.stride_tricks.as_strided(xpad[n0:], shape, strides)
    if out is not None:
        out.reshape(shape)[...] = view
        return out
    return xp.ascontiguousarray(view).reshape(m * g.Ho * g.Wo, g.K)


def weight_rows(w):
    """(O, C, kh, kw) -> (O, kh * kw * C), matching the order of ``cols_nhwc``'s rows."""
    xp = backend.array_module(w)
    return xp.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(w.shape[0], -1)


def forward(xpad, w2, b, g):
    """Output (N, O, Ho, Wo) plus bias ``b``, and the columns, over the whole batch (GPU)."""
    xp = backend.array_module(xpad)
    cols = cols_nhwc(xpad, g)
    y = backend.matmul(cols, w2.T).reshape(g.N, g.Ho, g.Wo, g.O).transpose(0, 3, 1, 2)
    if b is None:
        return xp.ascontiguousarray(y), cols
    out = xp.empty(y.shape, y.dtype)
    return xp.add(y, b.reshape(1, -1, 1, 1), out=out), cols  # NOTE: bias fused into the copy


def grad_out_rows(gy, g):
    """Output gradient (N, O, Ho, Wo) -> (N * Ho * Wo, O), rows matching the columns'."""
    xp = backend.array_module(gy)
    return xp.ascontiguousarray(gy.transpose(0, 2, 3, 1)).reshape(-1, g.O)


def grad_weight(cols, gyr, g):
    """Weight gradient (O, C, kh, kw): ``cols.T @ gyr`` over the whole batch."""
    xp = backend.array_module(gyr)
    gw = backend.matmul(cols.T, gyr).T.reshape(g.O, g.kh, g.kw, g.C).transpose(0, 3, 1, 2)
    return xp.ascontiguousarray(gw)


def offset_weights(w):
    """(O, C, kh, kw) -> (kh * kw, O, C): one (O, C) matrix per kernel offset."""
    xp = backend.array_module(w)
    o, c, kh, kw = w.shape
    return xp.ascontiguousarray(w.transpose(2, 3, 0, 1)).reshape(kh * kw, o, c)


def _fold(dst, prods, g, m: int) -> None:
    """Add each kernel offset's product (kh * kw, m * Ho * Wo, C) into the padded NHWC
    gradient ``dst`` (m, Hp, Wp, C) at its offset (col2im).

    NOTE: a product per offset (C columns each) instead of one ``gyr @ w2`` (kh * kw * C
    columns) costs ~20% more in BLAS, but each offset's slice is then contiguous, and these
    adds, which otherwise read runs of only C values, take half the time: 64x32x14x14 -> 64
    measured 5.7-6.0 against 6.7-6.8 ms for the input gradient on one thread.
    """
    hs, ws = g.sh * (g.Ho - 1) + 1, g.sw * (g.Wo - 1) + 1
    for i in range(g.kh):
        for j in range(g.kw):
            h0, w0 = i * g.dh, j * g.dw
            piece = prods[i * g.kw + j].reshape(m, g.Ho, g.Wo, g.C)
            dst[:, h0 : h0 + hs : g.sh, w0 : w0 + ws : g.sw] += piece


def grad_input(gyr, w9, g):
    """Input gradient (N, C, H, W) over the whole batch: one product ``gyr @ w9[k]`` per
    kernel offset k, folded back (``_fold``)."""
    xp = backend.array_module(gyr)
    pt, pb, pl, _ = g.pads
    out = xp.zeros((g.N, g.H + pt + pb, g.Wp, g.C), gyr.dtype)
    _fold(out, backend.matmul(gyr, w9), g, g.N)
    gx = out[:, pt : pt + g.H, pl : pl + g.W].transpose(0, 3, 1, 2)
    return xp.ascontiguousarray(gx)


# ---------------------------------------------------------------- NumPy: blocks of images


def forward_blocks(x, w2, b, g, step: int):
    """Output (N, O, Ho, Wo) plus bias, and the padded NHWC input (for the backward), block
    by block: pad, build the columns, multiply, write NCHW rows while they are in cache."""
    xp = backend.array_module(x)
    pt, pb, pl, _ = g.pads
    hw, n = g.Ho * g.Wo, workers(g, step)
    xpad = xp.zeros((g.N, g.H + pt + pb, g.Wp, g.C), x.dtype)
    y = xp.empty((g.N, g.O, g.Ho, g.Wo), x.dtype)
    cols = [xp.empty((step * hw, g.K), x.dtype) for _ in range(n)]
    rows = [xp.empty((step * hw, g.O), x.dtype) for _ in range(n)]

    def block(n0, m, slot):
        xpad[n0 : n0 + m, pt : pt + g.H, pl : pl + g.W] = x[n0 : n0 + m].transpose(0, 2, 3, 1)
        c = cols_nhwc(xpad, g, n0, m, out=cols[slot][: m * hw])
        r = xp.matmul(c, w2.T, out=rows[slot][: m * hw])
        copy_walking_source(r.reshape(m, g.Ho, g.Wo, g.O), y[n0 : n0 + m].transpose(0, 2, 3, 1), b)

    run_blocks(g, step, n, block)
    return y, xpad


def backward_blocks(gy, w9, xpad, g, step: int, need_x: bool, need_w: bool, need_b: bool):
    """Input gradient (N, C, H, W), weight gradient (O, C, kh, kw) and bias gradient (O,)
    (each None unless needed), block by block: the output gradient's rows, one product per
    kernel offset folded back (``_fold``), the NCHW copy; then the weight gradient
    from rebuilt columns."""
    xp = backend.array_module(gy)
    pt, pb, pl, _ = g.pads
    hw, n = g.Ho * g.Wo, workers(g, step)
    gyr = xp.empty((g.N * hw, g.O), gy.dtype)
    gx = out = None
    if need_x:
        out = xp.zeros((g.N, g.H + pt + pb, g.Wp, g.C), gy.dtype)
        gx = xp.empty((g.N, g.C, g.H, g.W), gy.dtype)
        prods = [xp.empty((g.kh * g.kw, step * hw, g.C), gy.dtype) for _ in range(n)]

    def input_block(n0, m, slot):
        rows = gyr[n0 * hw : (n0 + m) * hw]
        rows.reshape(m, g.Ho, g.Wo, g.O)[...] = gy[n0 : n0 + m].transpose(0, 2, 3, 1)
        if not need_x:
            return
        dst = out[n0 : n0 + m]
        _fold(dst, xp.matmul(rows, w9, out=prods[slot][:, : m * hw]), g, m)
        inside = dst[:, pt : pt + g.H, pl : pl + g.W]
        copy_walking_source(inside, gx[n0 : n0 + m].transpose(0, 2, 3, 1))

    run_blocks(g, step, n, input_block)
    # NOTE: the column sums of the rows as a matrix-vector product: ~2.5x the speed of
    # summing the NCHW gradient over (0, 2, 3)
    gb = xp.matmul(xp.ones(g.N * hw, gy.dtype), gyr) if need_b else None
    if not need_w:
        return gx, None, gb
    cols = [xp.empty((step * hw, g.K), xpad.dtype) for _ in range(n)]
    acc = [None] * n

    def weight_block(n0, m, slot):
        c = cols_nhwc(xpad, g, n0, m, out=cols[slot][: m * hw])
        part = xp.matmul(c.T, gyr[n0 * hw : (n0 + m) * hw])
        acc[slot] = part if acc[slot] is None else acc[slot] + part

    run_blocks(g, step, n, weight_block)
    gw = sum(a for a in acc if a is not None)
    gw = gw.T.reshape(g.O, g.kh, g.kw, g.C).transpose(0, 3, 1, 2)
    return gx, xp.ascontiguousarray(gw), gb
