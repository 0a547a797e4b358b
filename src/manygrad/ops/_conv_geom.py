"""The geometry of a convolution and its three products on raw arrays: padding, im2col and
col2im (from strided views), the forward product per group, and the products for the input
and weight gradients. ``conv.py`` builds the ``Function``s on these; ``_conv_kernels`` and
``_winograd`` are the faster channels-last and 3x3 variants.
"""

from __future__ import annotations

from .. import backend


class _Geom:
    """Shapes of one 2-d convolution: input (N, C, H, W), weight (O, C/G, kh, kw)."""

    __slots__ = ("N", "C", "H", "W", "O", "G", "kh", "kw", "sh", "sw", "dh", "dw", "pads",
                 "Ho", "Wo", "Wp", "Hb", "grid", "Wg", "K", "per_image", "nhwc")  # fmt: skip

    def __init__(self, xshape, wshape, stride, pads, dilation, groups, out_hw=None, nhwc=False):
        self.N, self.C, self.H, self.W = xshape
        self.O, _, self.kh, self.kw = wshape
        self.K = self.C // groups * self.kh * self.kw  # rows of the columns, per group
        (self.sh, self.sw), (self.dh, self.dw), self.G = stride, dilation, groups
        pt, pb, pl, pr = self.pads = pads
        hp, self.Wp = self.H + pt + pb, self.W + pl + pr
        self.Ho = (hp - self.dh * (self.kh - 1) - 1) // self.sh + 1
        self.Wo = (self.Wp - self.dw * (self.kw - 1) - 1) // self.sw + 1
        if out_hw is not None:  # conv_transpose: output_padding may leave rows unused
            self.Ho, self.Wo = out_hw
        # NOTE: with stride 1 each kernel offset reads whole padded rows, so the columns are
        # built from long contiguous runs over an (Ho, Wp) grid (cheap copies); the Wp - Wo
        # extra columns per row are computed and dropped, so narrow images use exact columns.
        # NOTE: with few rows per column (K), per-image products keep NCHW and skip the
        # channels-first transposes, which then cost more than the small matrix products.
        # NOTE: with more rows, one group, >= 32 channels (runs of >= 128 bytes) and a
        # kernel larger than 1x1, conv2d uses channels-last columns (_conv_kernels): faster
        # products; measured equal or faster at 7x7 to 56x56, slower with 16 channels or 1x1.
        self.per_image = self.K <= 96
        self.nhwc = (
            nhwc and groups == 1 and not self.per_image and self.C >= 32 and self.kh * self.kw > 1
        )
        self.grid = (
            not self.per_image
            and not self.nhwc
            and self.sh == self.sw == 1
            and 4 * (self.Wp - self.Wo) <= self.Wo
        )
        self.Wg = self.Wp if self.grid else self.Wo
        extra = -(-(self.kw - 1) * self.dw // self.Wp) if self.grid else 0
        self.Hb = hp + extra  # rows per padded image, incl. slack read by the last windows


def _pad(x, g: _Geom):
    """(N, C, H, W) -> zero-padded (N, C, Hb, Wp), channels-first (C, N, ...) unless per_image."""
    xp = backend.array_module(x)
    pt, _, pl, _ = g.pads
    lead = (g.N, g.C) if g.per_image else (g.C, g.N)
    out = xp.zeros(lead + (g.Hb, g.Wp), x.dtype)
    out[:, :, pt : pt + g.H, pl : pl + g.W] = x if g.per_image else x.transpose(1, 0, 2, 3)
    return out


def _im2col(x, g: _Geom):
    """Columns (G, K, N * Ho * Wg) of the padded input, or (N, G, K, Ho * Wo) per image."""
    xp = backend.array_module(x)
    xpt = _pad(x, g)
    sc, sn, sh, sw = xpt.strides
    if g.per_image:
        sn, sc = sc, sn
        shape = (g.N, g.C, g.kh, g.kw, g.Ho, g.Wo)
        strides = (sn, sc, g.dh * sh, g.dw * sw, g.sh * sh, g.sw * sw)
        view = xp.lib.stride_tricks.as_strided(xpt, shape, strides)
        return xp.ascontiguousarray(view).reshape(g.N, g.G, g.K, g.Ho * g.Wo)
    if g.grid:
        shape = (g.C, g.kh, g.kw, g.N, g.Ho * g.Wp)
        strides = (sc, g.dh * sh, g.dw * sw, sn, sw)
    else:
        shape = (g.C, g.kh, g.kw, g.N, g.Ho, g.Wo)
        strides = (sc, g.dh * sh, g.dw * sw, sn, g.sh * sh, g.sw * sw)
    view = xp.lib.stride_tricks.as_strided(xpt, shape, strides)
    return xp.ascontiguousarray(view).reshape(g.G, g.K, g.N * g.Ho * g.Wg)


def _col2im(cols, g: _Geom, b=None):
    """Adjoint of ``_im2col``: sum columns (G, K, M) back into (N, C, H, W), plus bias ``b``."""
    xp = backend.array_module(cols)
    pt, _, pl, _ = g.pads
    out = xp.zeros(((g.N, g.C) if g.per_image else (g.C, g.N)) + (g.Hb, g.Wp), cols.dtype)
    if g.grid:
        cols = cols.reshape(g.C, g.kh, g.kw, g.N, g.Ho * g.Wp)
        flat = out.reshape(g.C, g.N, g.Hb * g.Wp)
        n = g.Ho * g.Wp
        for i in range(g.kh):
            for j in range(g.kw):
                off = i * g.dh * g.Wp + j * g.dw
                flat[:, :, off : off + n] += cols[:, i, j]
    else:
        lead = (g.N, g.C) if g.per_image else (g.C,)
        cols = cols.reshape(
            lead + (g.kh, g.kw) + ((g.Ho, g.Wo) if g.per_image else (g.N, g.Ho, g.Wo))
        )
        hs, ws = g.sh * (g.Ho - 1) + 1, g.sw * (g.Wo - 1) + 1
        for i in range(g.kh):
            for j in range(g.kw):
                h0, w0 = i * g.dh, j * g.dw
                piece = cols[:, :, i, j] if g.per_image else cols[:, i, j]
                out[:, :, h0 : h0 + hs : g.sh, w0 : w0 + ws : g.sw] += piece
    return _nchw(out[:, :, pt : pt + g.H, pl : pl + g.W], b, not g.per_image)


def _nchw(y, b, channels_first=True):
    """Contiguous (N, C, H, W) copy of a (C, N, H, W) (or NCHW) view, plus bias ``b``."""
    xp = backend.array_module(y)
    y = y.transpose(1, 0, 2, 3) if channels_first else y
    if b is None:
        return xp.ascontiguousarray(y)
    out = xp.empty(y.shape, y.dtype)
    return xp.add(y, b.reshape(1, -1, 1, 1), out=out)  # NOTE: bias fused into the copy


def _to_grid(y, g: _Geom):
    """(N, O, Ho, Wo) -> (G, O/G, N * Ho * Wg), zero in the dropped grid columns."""
    xp = backend.array_module(y)
    if g.per_image:
        return y.reshape(g.N, g.G, g.O // g.G, g.Ho * g.Wo)
    if g.Wg == g.Wo:
        out = xp.ascontiguousarray(y.transpose(1, 0, 2, 3))
    else:
        out = xp.empty((g.O, g.N, g.Ho, g.Wg), y.dtype)
        out[..., : g.Wo] = y.transpose(1, 0, 2, 3)
        out[..., g.Wo :] = 0
    return out.reshape(g.G, g.O // g.G, g.N * g.Ho * g.Wg)


def _conv(x, w, b, g: _Geom):
    """Forward convolution (N, C, H, W) -> (N, O, Ho, Wo) plus bias; also returns the columns."""
    cols = _im2col(x, g)
    y = backend.matmul(w.reshape(g.G, g.O // g.G, g.K), cols)
    if g.per_image:
        y = y.reshape(g.N, g.O, g.Ho, g.Wo)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y, cols
    return _nchw(y.reshape(g.O, g.N, g.Ho, g.Wg)[..., : g.Wo], b), cols


def _conv_grad_input(gy2, w, g: _Geom, b=None):
    """Gradient w.r.t. the input (N, C, H, W) from the output gradient in grid form."""
    wt = w.reshape(g.G, g.O // g.G, g.K).swapaxes(-1, -2)
    # NOTE: one output channel per group (depthwise): an outer product, cheaper broadcast
    cols = wt * gy2 if g.O == g.G else backend.matmul(wt, gy2)
    return _col2im(cols, g, b)


def _conv_grad_weight(cols, gy2, wshape):
    """Gradient w.r.t. the weight from the input's columns and the grid-form gradient."""
    xp = backend.array_module(gy2)
    if gy2.ndim == 4:  # per image: (N, G, O/G, Ho*Wo) x (N, G, K, Ho*Wo), summed over N
        return backend.matmul(gy2, cols.swapaxes(-1, -2)).sum(axis=0).reshape(wshape)
    gw = backend.matmul(cols, gy2.swapaxes(-1, -2))  # (G, K, O/G)
    return xp.ascontiguousarray(gw.swapaxes(-1, -2)).reshape(wshape)


def _same_dtype(y, x):
    """NOTE: bfloat16 products come back float32 (backend.matmul); outputs keep x's dtype."""
    return y if y.dtype == x.dtype else y.astype(x.dtype)


def _bias_grad(gy2, g: _Geom):
    gb = gy2.sum(axis=-1)  # NOTE: zeros in the grid's extra columns
    return (gb.sum(axis=0) if g.per_image else gb).reshape(g.O)
