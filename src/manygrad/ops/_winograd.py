"""Winograd F(2x2, 3x3): 3x3, stride-1, ungrouped 2-d convolutions on the CPU.

Each 2x2 tile of the output comes from a 4x4 tile of the padded input. The input tiles and
the filters are transformed (``B^T d B`` and ``G g G^T``), multiplied elementwise and summed
over the input channels: 16 matrix products, one per position in the tile. The sums are
transformed back (``A^T m A``). The products make 16 multiplications per output tile where a
direct convolution makes 36, 2.25x fewer (Lavin and Gray, "Fast Algorithms for Convolutional
Neural Networks", CVPR 2016). The transforms only add, subtract and halve, so float32
results keep the accuracy of a direct convolution.

The backward runs the adjoints of the same steps. The output gradient is transformed once
(``A gy A^T``) and serves both gradients:
- the weight gradient: 16 products with the input's transform (recomputed block by block
  from the input), brought back by ``G^T . G``;
- the input gradient: 16 products with the filters' transform, brought back by ``B . B^T``
  and added into the overlapping input tiles.

Layout: a block of m images is held as (rows, columns, m, channels). The transforms' stride-2
slices then keep runs of m * C contiguous values, and the rows of the products are the
block's tiles, ordered (tile row, tile column, image). The blocks are cache-sized and shared
between the CPU threads as the im2col kernels' are (``_conv_kernels.run_blocks``).

For float32 NumPy arrays the transforms run in C (``_native.winograd_*``): from the NCHW
input straight to the products' (16, tiles, C) matrices and back, one pass each, with the
same operations in the same order as the NumPy formulas here (which other arrays take).
"""

from __future__ import annotations

from .. import _native, backend
from . import _conv_kernels as _ck

# NOTE: a switch for the tests, which also run the im2col kernels on these shapes
ENABLED = True

# NOTE: elements of the largest transformed array of a block, (16, tiles, max(C, O)): ~1 MB
# of float32, about a core's L2 cache. Forward + backward of 64x32x14x14 -> 64 on one
# thread measured 19.4 ms at 5 images a block, 23.7 at 2 and 21.8 at 10.
BLOCK_ELEMS = 1 << 18

# NOTE: with few output tiles over the batch the filters' transforms (16 * C * O values each
# way) outweigh the products saved: 8x256x4x4 -> 256 measured 20.9 ms against im2col's 11.6,
# 16x128x8x8 -> 128 (256 tiles) broke even, 64x32x14x14 -> 64 (3136 tiles) 21.0 against 24.6.
MIN_TILES = 512

# NOTE: the forward keeps the input's transform (4x the input) for the weight gradient up to
# this size a layer, instead of making it again in the backward from a copy of the input
# (which saves ~25% of forward + backward on 64x32x14x14 -> 64: 14.6-16.0 against 21.0 ms);
# larger layers keep only the copy, so that deep networks' memory stays near the input's
KEEP_BYTES = 1 << 26


def applies(x, g) -> bool:
    """Whether conv2d runs through Winograd: a CPU float32/float64 input, an ungrouped 3x3
    kernel at stride 1 without dilation, the channels-last path's channel counts and enough
    output tiles."""
    return (
        ENABLED
        and g.nhwc
        and g.kh == g.kw == 3
        and g.sh == g.sw == g.dh == g.dw == 1
        and backend.device_of(x).type == "cpu"
        and x.dtype.char in "fd"
        and _Tiles(g).count >= MIN_TILES
    )


class _Tiles:
    """Tile counts of one convolution: TH x TW output tiles; images per block."""

    def __init__(self, g):
        self.TH, self.TW = -(-g.Ho // 2), -(-g.Wo // 2)
        self.count = g.N * self.TH * self.TW  # over the batch
        per_image = 16 * self.TH * self.TW * max(g.C, g.O)
        self.step = max(1, min(g.N, BLOCK_ELEMS // max(1, per_image)))


def _parity(n: int, pad: int):
    """Where the rows of a dimension of size ``n``, placed at ``pad`` in the padded input,
    go in its (parity, row // 2) split: (parity, first source row, first target, count)."""
    for p in (0, 1):
        first = (p - pad) % 2
        yield p, first, (first + pad) // 2, len(range(first, n, 2))


def filter_transform(w):
    """(O, C, 3, 3) -> ``G w G^T`` as (16, C, O): one (C, O) matrix per tile position."""
    if (u := _native.winograd_filter(w)) is not None:
        return u
    xp = backend.array_module(w)
    rows = _g_rows(xp, w, 2)  # (O, C, 4, 3)
    u = _g_rows(xp, rows, 3)  # (O, C, 4, 4)
    o, c = w.shape[:2]
    return xp.ascontiguousarray(u.transpose(2, 3, 1, 0)).reshape(16, c, o)


def _g_rows(xp, w, axis: int):
    """``G`` along ``axis`` (3 -> 4): w0, (w0 + w1 + w2) / 2, (w0 - w1 + w2) / 2, w2."""
    w0, w1, w2 = (xp.take(w, k, axis=axis) for k in range(3))
    half = 0.5 * (w0 + w2)
    return xp.stack([w0, half + 0.5 * w1, half - 0.5 * w1, w2], axis=axis)


def _gt_rows(xp, u, axis: int):
    """``G^T`` along ``axis`` (4 -> 3), the adjoint of ``_g_rows``."""
    u0, u1, u2, u3 = (xp.take(u, k, axis=axis) for k in range(4))
    s, d = 0.5 * (u1 + u2), 0.5 * (u1 - u2)
    return xp.stack([u0 + s, d, s + u3], axis=axis)


def weight_from_transform(gu, g):
    """(16, C, O) summed products -> the weight gradient (O, C, 3, 3) by ``G^T . G``."""
    if (w := _native.winograd_filter_backward(gu)) is not None:
        return w
    xp = backend.array_module(gu)
    u = gu.reshape(4, 4, g.C, g.O)
    w = _gt_rows(xp, _gt_rows(xp, u, 0), 1)  # (3, 3, C, O)
    return xp.ascontiguousarray(w.transpose(3, 2, 0, 1))


# NOTE: the padded input, the output gradient and the input gradient are held split by the
# parity of their rows and of their columns, (2, rows // 2, 2, columns // 2, m, C): row 2t + k
# of tile t is then part k % 2, row t + k // 2, and each transform step reads and writes
# contiguous runs of whole tile rows. Stride-2 slices (runs of m * C values) measured 2-3x
# slower per element in NumPy.


def _bt(xp, s, axis: int, n: int, out) -> None:
    """``B^T`` along the parity-split ``axis`` (parts at ``axis``, rows at ``axis + 1``) of
    ``s`` over ``n`` tiles, into ``out[0..3]``: s0 - s2, s1 + s2, s2 - s1, s1 - s3, where sk
    is row 2t + k of tile t."""
    lead = (slice(None),) * axis
    a = [s[lead + (k % 2, slice(k // 2, k // 2 + n))] for k in range(4)]
    xp.subtract(a[0], a[2], out=out[0])
    xp.add(a[1], a[2], out=out[1])
    xp.subtract(a[2], a[1], out=out[2])
    xp.subtract(a[1], a[3], out=out[3])


class _Scratch:
    """One thread's buffers for blocks of ``m`` images. The zero borders of ``xin`` and
    ``gin`` are written once: each block fills only the inside."""

    def __init__(self, xp, t: _Tiles, g, m: int, dtype, forward: bool, redo: bool = True,
                 native: bool = False):  # fmt: skip
        th, tw = t.TH, t.TW
        tiles = (th, tw, m)
        self.wprod, self.acc, self.bias = None, None, None
        if native:  # NOTE: the C transforms read and write the NCHW arrays directly
            n = th * tw * m
            if forward or redo:
                self.v = _native.winograd_planes(n, g.C)
            if forward:
                self.prod = _native.winograd_planes(n, g.O)
                return
            self.gy, self.prod = _native.winograd_planes(n, g.O), _native.winograd_planes(n, g.C)
            self.wprod = xp.empty((16, g.C, g.O), dtype)
            return
        if forward or redo:  # the input's transform, made (again)
            self.xin = xp.zeros((2, th + 1, 2, tw + 1, m, g.C), dtype)
            self.rows = xp.empty((4, th, 2, tw + 1, m, g.C), dtype)
            self.v = xp.empty((4, 4) + tiles + (g.C,), dtype)
        if forward:
            self.prod = xp.empty((16, th * tw * m, g.O), dtype)
            self.half = xp.empty((2, 4) + tiles + (g.O,), dtype)
            self.out = xp.empty((2, 2) + tiles + (g.O,), dtype)
            return
        self.gin = xp.zeros((2, th, 2, tw, m, g.O), dtype)
        self.grows = xp.empty((4, th, 2, tw, m, g.O), dtype)
        self.gy = xp.empty((4, 4) + tiles + (g.O,), dtype)
        self.prod = xp.empty((16, th * tw * m, g.C), dtype)
        self.fold = xp.empty((2, 4, th + 1, tw, m, g.C), dtype)
        self.dx = xp.empty((2, th + 1, 2, tw + 1, m, g.C), dtype)
        self.wprod = xp.empty((16, g.C, g.O), dtype)


def _scratch(cache: dict, slot: int, m: int, make):
    key = (slot, m)
    if key not in cache:
        cache[key] = make(m)
    return cache[key]


def _input_tiles(x, g, t: _Tiles, n0: int, m: int, s: _Scratch, out=None, native=False):
    """The transform ``B^T d B`` of images n0..n0+m's input tiles, as (16, tiles, C), in
    ``out`` if given (else in the scratch buffers); ``native``: by the C loops."""
    xp = backend.array_module(x)
    out = s.v if out is None else out
    pt, _, pl, _ = g.pads
    if native:
        _native.winograd_input(x[n0 : n0 + m], out, (t.TH, t.TW), pt, pl)
        return out
    for p, h0, i0, ch in _parity(g.H, pt):
        for q, w0, j0, cw in _parity(g.W, pl):
            src = x[n0 : n0 + m, :, h0::2, w0::2]
            s.xin[p, i0 : i0 + ch, q, j0 : j0 + cw] = src.transpose(2, 3, 0, 1)
    _bt(xp, s.xin, 0, t.TH, s.rows)
    _bt(xp, s.rows, 2, t.TW, [out[:, k] for k in range(4)])
    return out.reshape(16, -1, g.C)


def keeps_tiles(x, g) -> bool:
    """Whether the forward keeps its transformed input for the weight gradient: when it
    takes at most ``KEEP_BYTES``."""
    return 16 * _Tiles(g).count * g.C * x.dtype.itemsize <= KEEP_BYTES


def forward(x, u, b, g, keep: bool = False):
    """Output (N, O, Ho, Wo) plus bias ``b``, from the input and ``filter_transform(w)``;
    with ``keep``, also the transformed input tiles of each block (for ``backward``)."""
    xp = backend.array_module(x)
    t = _Tiles(g)
    y = xp.empty((g.N, g.O, g.Ho, g.Wo), x.dtype)
    cache: dict = {}
    kept = {} if keep else None
    native = _native.takes(x, u, b)

    def block(n0, m, slot):
        s = _scratch(cache, slot, m, lambda m: _Scratch(xp, t, g, m, x.dtype, True, native=native))
        v = None
        if keep and native:
            v = kept[n0] = _native.winograd_planes(t.TH * t.TW * m, g.C)
        elif keep:
            v = kept[n0] = xp.empty((4, 4, t.TH, t.TW, m, g.C), x.dtype)
        xp.matmul(_input_tiles(x, g, t, n0, m, s, v, native), u, out=s.prod)
        if native:
            _native.winograd_output(s.prod, b, y[n0 : n0 + m], (t.TH, t.TW))
            return
        # A^T along the tile rows, then along the tile columns: out[a, b] holds the output
        # pixels (2t + a, 2s + b) of the tiles (t, s)
        o = s.out
        _at(xp, s.prod.reshape((4, 4, t.TH, t.TW, m, g.O)), 0, s.half)
        _at(xp, s.half, 1, [o[:, 0], o[:, 1]])
        for a, _, _, ca in _parity(g.Ho, 0):
            for c, _, _, cb in _parity(g.Wo, 0):
                dst = y[n0 : n0 + m, :, a::2, c::2].transpose(2, 3, 0, 1)
                _ck.copy_walking_source(o[a, c, :ca, :cb], dst, b)

    _ck.run_blocks(g, t.step, _ck.workers(g, t.step), block)
    return y, kept


def backward(gy, x, u, g, need_x: bool, need_w: bool, need_b: bool, kept=None):
    """Input gradient (N, C, H, W), weight gradient (O, C, 3, 3) and bias gradient (O,), each
    None unless needed, from the output gradient ``gy``, for the weight gradient the input's
    transformed tiles kept by ``forward`` or else the input ``x``, and for the input
    gradient ``filter_transform(w)``."""
    xp = backend.array_module(gy)
    t = _Tiles(g)
    pt, _, pl, _ = g.pads
    gy = _native.c_contiguous(gy)
    gx = xp.empty((g.N, g.C, g.H, g.W), gy.dtype) if need_x else None
    ut = xp.ascontiguousarray(u.transpose(0, 2, 1)) if need_x else None
    cache: dict = {}
    redo = need_w and kept is None
    native = _native.takes(gy, u, x if redo else None)
    ones = xp.ones(4 * t.TH * t.TW, gy.dtype) if need_b and not native else None

    def scratch(m):
        s = _Scratch(xp, t, g, m, gy.dtype, False, redo, native)
        s.bias = xp.zeros(g.O, gy.dtype) if native and need_b else None
        return s

    def block(n0, m, slot):
        s = _scratch(cache, slot, m, scratch)
        if native:
            _native.winograd_grad_output(gy[n0 : n0 + m], s.gy, s.bias, (t.TH, t.TW))
            return products(s, n0, m)
        for p, _, _, ch in _parity(g.Ho, 0):
            for q, _, _, cw in _parity(g.Wo, 0):
                src = gy[n0 : n0 + m, :, p::2, q::2]
                s.gin[p, :ch, q, :cw] = src.transpose(2, 3, 0, 1)
        if need_b:  # NOTE: column sums as a matrix-vector product (zeros in the padding)
            part = xp.matmul(ones, s.gin.reshape(-1, m * g.O)).reshape(m, g.O).sum(axis=0)
            s.bias = part if s.bias is None else xp.add(s.bias, part, out=s.bias)
        # A gy A^T: each 2x2 tile of the output gradient to a 4x4 one, rows then columns
        _a(xp, s.gin, 0, s.grows)
        _a(xp, s.grows, 2, [s.gy[:, k] for k in range(4)])
        products(s, n0, m)

    def products(s, n0, m):
        """The block's weight-gradient products and its input gradient."""
        gyt = s.gy.reshape(16, -1, g.O)
        if need_w:
            if redo:
                v = _input_tiles(x, g, t, n0, m, s, native=native)
            else:
                v = kept[n0].reshape(16, -1, g.C)
            xp.matmul(v.transpose(0, 2, 1), gyt, out=s.wprod)
            s.acc = s.wprod.copy() if s.acc is None else xp.add(s.acc, s.wprod, out=s.acc)
        if need_x:
            xp.matmul(gyt, ut, out=s.prod)
            if native:
                _native.winograd_fold(s.prod, gx[n0 : n0 + m], (t.TH, t.TW), pt, pl)
                return
            # B z B^T, added into the overlapping 4x4 input tiles: rows, then columns
            z = s.prod.reshape((4, 4, t.TH, t.TW, m, g.C))
            _b_fold(xp, list(z), s.fold[0], s.fold[1], 1)
            cols = [s.fold[:, k] for k in range(4)]
            _b_fold(xp, cols, s.dx[:, :, 0], s.dx[:, :, 1], 2)
            for p, h0, i0, ch in _parity(g.H, pt):
                for q, w0, j0, cw in _parity(g.W, pl):
                    src = s.dx[p, i0 : i0 + ch, q, j0 : j0 + cw]
                    dst = gx[n0 : n0 + m, :, h0::2, w0::2].transpose(2, 3, 0, 1)
                    _ck.copy_walking_source(src, dst)

    _ck.run_blocks(g, t.step, _ck.workers(g, t.step), block)
    gw = gb = None
    if need_w:
        gw = weight_from_transform(_total([s.acc for s in cache.values()]), g)
    if need_b:
        gb = _total([s.bias for s in cache.values()])
    return gx, gw, gb


def _total(parts):
    parts = [p for p in parts if p is not None]
    return sum(parts[1:], parts[0])


def _at(xp, s, axis: int, out) -> None:
    """``A^T`` along ``axis`` (4 -> 2 per tile), into ``out[0..1]``: s0 + s1 + s2 and
    s1 - s2 - s3."""
    lead = (slice(None),) * axis
    s0, s1, s2, s3 = (s[lead + (k,)] for k in range(4))
    xp.add(s0, s1, out=out[0])
    out[0] += s2
    xp.subtract(s1, s2, out=out[1])
    out[1] -= s3


def _a(xp, s, axis: int, out) -> None:
    """``A`` along the parity-split ``axis`` (2 -> 4 per tile): g0, g0 + g1, g0 - g1, -g1."""
    lead = (slice(None),) * axis
    g0, g1 = s[lead + (0,)], s[lead + (1,)]
    out[0][...] = g0
    xp.add(g0, g1, out=out[1])
    xp.subtract(g0, g1, out=out[2])
    xp.negative(g1, out=out[3])


def _b_fold(xp, z, even, odd, axis: int) -> None:
    """``B`` along the tile ``axis`` of z0..z3 (T tiles), the overlapping tiles added: row
    2t of the result is ``even[t] = z0[t] + (z1 + z2 - z0)[t - 1]`` and row 2t + 1 is
    ``odd[t] = (z1 - z2 + z3)[t] - z3[t - 1]``, for t in 0..T."""
    z0, z1, z2, z3 = z
    lead = (slice(None),) * axis
    first, rest, edge = lead + (slice(0, -1),), lead + (slice(1, None),), lead + (0,)
    xp.add(z1, z2, out=even[rest])
    xp.subtract(even[rest], z0, out=even[rest])
    even[edge] = 0
    even[first] += z0
    xp.negative(z3, out=odd[rest])
    odd[edge] = 0
    odd[first] += z1
    odd[first] -= z2
    odd[first] += z3
