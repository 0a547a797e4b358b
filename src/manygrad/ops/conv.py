"""Convolutions and pooling on NCHW tensors: conv1d/2d, conv_transpose1d/2d, max/avg pooling.

Convolutions are matrix products (BLAS on the CPU, cuBLAS on the GPU): the input is padded,
unfolded into columns (im2col, from strided views) and multiplied by the weight, per group;
the input gradient folds the product of the transposed weight back (col2im). The same code
serves NumPy, CuPy and the fake GPU through ``xp``. Pooling works on strided views, one per
kernel offset.
"""

# ruff: noqa: A002  (`input` is PyTorch's argument name)
from __future__ import annotations

from .. import backend
from ..autograd import Function, autocast_args, is_grad_enabled
from ..errors import ShapeError
from ..tensor import Tensor
from .elementwise import _promote

# ---------------------------------------------------------------------------- geometry


class _Geom:
    """Shapes of one 2-d convolution: input (N, C, H, W), weight (O, C/G, kh, kw)."""

    __slots__ = ("N", "C", "H", "W", "O", "G", "kh", "kw", "sh", "sw", "dh", "dw", "pads",
                 "Ho", "Wo", "Wp", "Hb", "grid", "Wg", "K", "per_image")  # fmt: skip

    def __init__(self, xshape, wshape, stride, pads, dilation, groups, out_hw=None):
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
        self.per_image = self.K <= 96
        self.grid = (
            not self.per_image and self.sh == self.sw == 1 and 4 * (self.Wp - self.Wo) <= self.Wo
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


# ---------------------------------------------------------------------------- Functions


class Conv(Function):
    def forward(self, x, w, b, geom, shape4, keep_cols):
        self.w, self.geom, self.xshape = w, geom, x.shape
        y, cols = _conv(x.reshape(shape4[0]), w.reshape(shape4[1]), b, geom)
        self.cols = cols if keep_cols else None
        return _same_dtype(y, x).reshape(shape4[2])

    def backward(self, gy):
        nx, nw, nb = self.needs_input_grad
        g, w = self.geom, self.w
        gy2 = _to_grid(gy.reshape(g.N, g.O, g.Ho, g.Wo), g)
        gx = _conv_grad_input(gy2, w.reshape(g.O, -1, g.kh, g.kw), g) if nx else None
        gw = _conv_grad_weight(self.cols, gy2, w.shape) if nw else None
        gb = _bias_grad(gy2, g) if nb else None
        return (None if gx is None else gx.reshape(self.xshape)), gw, gb


class ConvTranspose(Function):
    """The adjoint of Conv: forward is Conv's input gradient, backward its forward."""

    def forward(self, x, w, b, geom, shape4, keep_x):
        self.w, self.geom, self.xshape = w, geom, x.shape
        x2 = _to_grid(x.reshape(geom.N, geom.O, geom.Ho, geom.Wo), geom)
        self.x2 = x2 if keep_x else None
        y = _conv_grad_input(x2, w.reshape(shape4[1]), geom, b)
        return _same_dtype(y, x).reshape(shape4[2])

    def backward(self, gy):
        nx, nw, nb = self.needs_input_grad
        g, w = self.geom, self.w
        gy = gy.reshape(g.N, g.C, g.H, g.W)
        gx = gw = None
        if nx or nw:
            gx, cols = _conv(gy, w.reshape(g.O, -1, g.kh, g.kw), None, g)
            gx = gx.reshape(self.xshape) if nx else None
            gw = _conv_grad_weight(cols, self.x2, w.shape) if nw else None
        gb = gy.sum(axis=(0, 2, 3)) if nb else None
        return gx, gw, gb


# ---------------------------------------------------------------------------- argument checks


def _tuple(v, n: int, op: str, name: str) -> tuple:
    if isinstance(v, int):
        return (v,) * n
    v = tuple(v)
    if len(v) != n or not all(isinstance(e, int) for e in v):
        raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints, got {v}")
    return v


def _check_input(op: str, x: Tensor, nd: int) -> bool:
    """True when the input carries a batch dim; raise on a wrong number of dims."""
    names = "(C, L)" if nd == 1 else "(C, H, W)"
    full = "(N, C, L)" if nd == 1 else "(N, C, H, W)"
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim not in (nd + 1, nd + 2):
        raise ShapeError(f"{op}: expected input of {nd + 1} dims {names} or {nd + 2} dims "
                         f"{full}, got shape {tuple(x.shape)}")  # fmt: skip
    return x.ndim == nd + 2


def _prep(op, x, weight, bias, nd, transposed, groups):
    """Check shapes, apply autocast and a common dtype; return tensors and 4-d shapes."""
    batched = _check_input(op, x, nd)
    if not isinstance(weight, Tensor) or weight.ndim != nd + 2:
        kdims = "kL" if nd == 1 else "kH, kW"
        raise ShapeError(f"{op}: expected weight of {nd + 2} dims (out, in/groups, {kdims}), "
                         f"got shape {tuple(getattr(weight, 'shape', ()))}")  # fmt: skip
    if groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups}")
    xs = tuple(x.shape) if batched else (1,) + tuple(x.shape)
    ws = tuple(weight.shape)
    cin = ws[0] if transposed else ws[1] * groups
    if xs[1] != cin or ws[0] % groups:
        need = "weight.shape[0]" if transposed else "weight.shape[1] * groups"
        raise ShapeError(
            f"{op}: input of shape {tuple(x.shape)} has {xs[1]} channels but weight of shape "
            f"{ws} with groups={groups} expects {cin} ({need}); weight.shape[0] must also be "
            f"divisible by groups"
        )
    cout = ws[1] * groups if transposed else ws[0]
    if bias is not None and tuple(bias.shape) != (cout,):
        raise ShapeError(f"{op}: bias must have shape ({cout},), got {tuple(bias.shape)}")
    x, weight, bias = autocast_args(x, weight, bias)
    if x.dtype is not weight.dtype:
        x, weight = _promote(x, weight)
    if bias is not None and bias.dtype is not weight.dtype:
        bias = bias.to(weight.dtype)
    if nd == 1:
        xs, ws = xs[:2] + (1,) + xs[2:], ws[:2] + (1,) + ws[2:]
    return x, weight, bias, batched, xs, ws


def _padding(op, padding, nd, ksize, dilation, stride):
    """(top, bottom, left, right) from an int, a tuple, "same" or "valid"."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ValueError(f"{op}: padding must be 'same', 'valid', an int or a tuple, "
                             f"got {padding!r}")  # fmt: skip
        if any(s != 1 for s in stride):
            raise ValueError(f"{op}: padding='same' is not supported for strided convolutions; "
                             "use stride=1 or give the padding as numbers")  # fmt: skip
        total = [d * (k - 1) for d, k in zip(dilation, ksize)]
        return (total[0] // 2, total[0] - total[0] // 2, total[1] // 2, total[1] - total[1] // 2)
    p = _tuple(padding, nd, op, "padding")
    if any(v < 0 for v in p):
        raise ValueError(f"{op}: padding must be non-negative, got {padding}")
    return (0, 0, p[0], p[0]) if nd == 1 else (p[0], p[0], p[1], p[1])


def _spatial(op, nd, stride, dilation):
    s = _tuple(stride, nd, op, "stride")
    d = _tuple(dilation, nd, op, "dilation")
    if any(v < 1 for v in s + d):
        raise ValueError(f"{op}: stride and dilation must be positive, got {s} and {d}")
    return ((1,) + s, (1,) + d) if nd == 1 else (s, d)


def _convnd(op, nd, x, weight, bias, stride, padding, dilation, groups):
    x, weight, bias, batched, xs, ws = _prep(op, x, weight, bias, nd, False, groups)
    stride, dilation = _spatial(op, nd, stride, dilation)
    pads = _padding(op, padding, nd, ws[2:], dilation, stride)
    geom = _Geom(xs, ws, stride, pads, dilation, groups)
    if geom.Ho < 1 or geom.Wo < 1:
        raise ShapeError(f"{op}: kernel {tuple(weight.shape[2:])} with dilation "
                         f"{dilation[2 - nd:]} is larger than the padded input of shape "
                         f"{tuple(x.shape)}")  # fmt: skip
    yshape = (xs[0], ws[0]) + ((geom.Ho, geom.Wo) if nd == 2 else (geom.Wo,))
    yshape = yshape if batched else yshape[1:]
    keep = weight.requires_grad and is_grad_enabled()
    return Conv.apply(x, weight, bias, geom=geom, shape4=(xs, ws, yshape), keep_cols=keep)


def _conv_transposend(op, nd, x, weight, bias, stride, padding, out_pad, groups, dilation):
    x, weight, bias, batched, xs, ws = _prep(op, x, weight, bias, nd, True, groups)
    stride, dilation = _spatial(op, nd, stride, dilation)
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a tuple, got {padding!r}")
    pads = _padding(op, padding, nd, ws[2:], dilation, stride)
    extra = (0,) * (2 - nd) + _tuple(out_pad, nd, op, "output_padding")
    if any(o >= max(s, d) or o < 0 for o, s, d in zip(extra, stride, dilation)):
        raise ValueError(f"{op}: output_padding {out_pad} must be smaller than stride or "
                         f"dilation ({stride[2 - nd:]}, {dilation[2 - nd:]})")  # fmt: skip
    size = [
        (n - 1) * s - pa - pb + d * (k - 1) + o + 1
        for n, s, pa, pb, d, k, o in zip(
            xs[2:], stride, pads[::2], pads[1::2], dilation, ws[2:], extra
        )  # fmt: skip
    ]
    if min(size) < 1:
        raise ShapeError(f"{op}: output size {size} is too small for input {tuple(x.shape)}")
    ys = (xs[0], ws[1] * groups, size[0], size[1])
    geom = _Geom(ys, ws, stride, pads, dilation, groups, out_hw=xs[2:])
    yshape = ys if nd == 2 else (ys[0], ys[1], ys[3])
    yshape = yshape if batched else yshape[1:]
    keep = weight.requires_grad and is_grad_enabled()
    return ConvTranspose.apply(x, weight, bias, geom=geom, shape4=(ys, ws, yshape), keep_x=keep)


# ---------------------------------------------------------------------------- public API


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:  # fmt: skip
    """1-d convolution (cross-correlation) over an (N, C, L) or (C, L) input.

    Args:
        input: (N, C_in, L). weight: (C_out, C_in / groups, kL). bias: (C_out,) or None.
        stride, padding, dilation: int or 1-tuple; padding may be "same" or "valid".
        groups: split channels into this many independent groups (default 1).

    Example: ``mg.conv1d(mg.randn(8, 3, 50), mg.randn(16, 3, 5), padding=2)``
    """
    return _convnd("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:  # fmt: skip
    """2-d convolution (cross-correlation) over an (N, C, H, W) or (C, H, W) input.

    Args:
        input: (N, C_in, H, W). weight: (C_out, C_in / groups, kH, kW). bias: (C_out,) or None.
        stride, padding, dilation: int or (h, w) pair; padding may be "same" or "valid".
        groups: split channels into this many independent groups (default 1).

    Example: ``mg.conv2d(mg.randn(8, 3, 28, 28), mg.randn(16, 3, 3, 3), padding=1)``
    """
    return _convnd("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv_transpose1d(
    input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
    output_padding=0, groups: int = 1, dilation=1,
) -> Tensor:  # fmt: skip
    """1-d transposed convolution (the gradient of conv1d w.r.t. its input).

    Args:
        input: (N, C_in, L). weight: (C_in, C_out / groups, kL). bias: (C_out,) or None.
        stride, padding, output_padding, dilation: int or 1-tuple. groups: default 1.

    Example: ``mg.conv_transpose1d(mg.randn(2, 4, 9), mg.randn(4, 2, 3), stride=2)``
    """
    return _conv_transposend("conv_transpose1d", 1, input, weight, bias, stride, padding,
                             output_padding, groups, dilation)  # fmt: skip


def conv_transpose2d(
    input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
    output_padding=0, groups: int = 1, dilation=1,
) -> Tensor:  # fmt: skip
    """2-d transposed convolution (the gradient of conv2d w.r.t. its input), for upsampling.

    Args:
        input: (N, C_in, H, W). weight: (C_in, C_out / groups, kH, kW). bias: (C_out,) or None.
        stride, padding, output_padding, dilation: int or (h, w) pair. groups: default 1.

    Example: ``mg.conv_transpose2d(mg.randn(2, 8, 7, 7), mg.randn(8, 4, 4, 4), stride=2)``
    """
    return _conv_transposend("conv_transpose2d", 2, input, weight, bias, stride, padding,
                             output_padding, groups, dilation)  # fmt: skip


# ---------------------------------------------------------------------------- pooling


class _PoolGeom:
    """Windows of a 2-d pooling over (N, C, H, W): kernel, stride, padding, dilation."""

    __slots__ = ("shape", "k", "s", "p", "d", "out", "padded")

    def __init__(self, shape, k, s, p, d, ceil_mode):
        self.shape, self.k, self.s, self.p, self.d = shape, k, s, p, d
        self.out = tuple(_pool_len(n, *a, ceil_mode) for n, *a in zip(shape[2:], k, s, p, d))
        # rows/cols the windows reach, incl. the padding and the ceil_mode overhang
        reach = [(o - 1) * s_ + d_ * (k_ - 1) + 1 for o, s_, d_, k_ in zip(self.out, s, d, k)]
        self.padded = tuple(max(r, n + p_) for r, n, p_ in zip(reach, shape[2:], p))

    def pad(self, x, value):
        """x inside a buffer filled with ``value``; x itself when no padding is needed."""
        if self.padded == tuple(x.shape[2:]):
            return x
        xp = backend.array_module(x)
        buf = xp.full(tuple(x.shape[:2]) + self.padded, value, x.dtype)
        (ph, pw), (h, w) = self.p, x.shape[2:]
        buf[:, :, ph : ph + h, pw : pw + w] = x
        return buf

    def crop(self, buf):
        (ph, pw), (h, w) = self.p, self.shape[2:]
        return buf[:, :, ph : ph + h, pw : pw + w]

    def windows(self, buf):
        """Strided views of ``buf`` (N, C, Ho, Wo), one per kernel offset."""
        (kh, kw), (sh, sw), (dh, dw), (ho, wo) = self.k, self.s, self.d, self.out
        for i in range(kh):
            for j in range(kw):
                h0, w0 = i * dh, j * dw
                yield buf[:, :, h0 : h0 + sh * (ho - 1) + 1 : sh, w0 : w0 + sw * (wo - 1) + 1 : sw]


def _pool_len(n, k, s, p, d, ceil_mode):
    span = n + 2 * p - d * (k - 1) - 1
    o = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= n + p:  # NOTE: the last window must start inside
        o -= 1
    return o


class MaxPool(Function):
    def forward(self, x, geom, yshape):
        xp = backend.array_module(x)
        self.geom, self.xshape = geom, x.shape
        low = xp.iinfo(x.dtype).min if xp.issubdtype(x.dtype, xp.integer) else float("-inf")
        self.buf = geom.pad(x.reshape(geom.shape), low)
        best = None
        for s in geom.windows(self.buf):  # NOTE: maximum propagates NaN, as PyTorch does
            best = s.copy() if best is None else xp.maximum(best, s, out=best)
        self.best = best
        return best.reshape(yshape)

    def _firsts(self):
        """Per kernel offset, where that offset holds its window's first maximum."""
        xp, taken = backend.array_module(self.best), None
        for s in self.geom.windows(self.buf):
            m = xp.greater_equal(s, self.best)  # NOTE: a NaN window gets no gradient
            if taken is None:
                taken = m.copy()
            else:
                xp.greater(m, taken, out=m)  # m and not taken: ties go to the first
                taken |= m
            yield m

    def backward(self, g):
        xp = backend.array_module(g)
        geom = self.geom
        g = g.reshape(self.best.shape)
        buf = xp.zeros(tuple(geom.shape[:2]) + geom.padded, g.dtype)
        disjoint = all(s >= d * (k - 1) + 1 for s, d, k in zip(geom.s, geom.d, geom.k))
        for m, view in zip(self._firsts(), geom.windows(buf)):
            if disjoint:
                xp.multiply(g, m, out=view)
            else:
                view += g * m
        return xp.ascontiguousarray(geom.crop(buf)).reshape(self.xshape)

    def indices(self):
        """Flat index into each (H, W) plane of the maximum, as PyTorch's return_indices."""
        xp, geom = backend.array_module(self.best), self.geom
        (ho, wo), (_, kw), (sh, sw), (ph, pw), (dh, dw) = geom.out, geom.k, geom.s, geom.p, geom.d
        rows = xp.arange(ho).reshape(-1, 1) * sh - ph
        cols = xp.arange(wo) * sw - pw
        idx = xp.zeros(self.best.shape, xp.int64)
        for k, m in enumerate(self._firsts()):
            idx += m * ((rows + (k // kw) * dh) * geom.shape[3] + cols + (k % kw) * dw)
        return idx


class AvgPool(Function):
    def forward(self, x, geom, yshape, count_include_pad, divisor_override):
        xp = backend.array_module(x)
        self.geom, self.xshape = geom, x.shape
        acc = None
        for s in geom.windows(geom.pad(x.reshape(geom.shape), 0)):
            acc = s.copy() if acc is None else xp.add(acc, s, out=acc)
        self.div = divisor_override or _pool_counts(xp, geom, count_include_pad, x.dtype)
        acc /= self.div
        return acc.reshape(yshape)

    def backward(self, g):
        xp = backend.array_module(g)
        geom = self.geom
        g = g.reshape(geom.shape[:2] + geom.out) / self.div
        buf = xp.zeros(tuple(geom.shape[:2]) + geom.padded, g.dtype)
        for view in geom.windows(buf):
            view += g
        return xp.ascontiguousarray(geom.crop(buf)).reshape(self.xshape)


def _pool_counts(xp, geom, count_include_pad, dtype):
    """Divisor of each output position (Ho, Wo), from shapes only (no host sync)."""
    sizes = []
    for n, o, k, s, p in zip(geom.shape[2:], geom.out, geom.k, geom.s, geom.p):
        start = xp.arange(o) * s - p
        end = xp.minimum(start + k, n + p)
        if not count_include_pad:
            start, end = xp.maximum(start, 0), xp.minimum(end, n)
        sizes.append((end - start).astype(dtype))
    return sizes[0].reshape(-1, 1) * sizes[1]


def _adaptive_matrix(xp, n: int, o: int, dtype):
    """(o, n) averaging matrix of adaptive pooling: row i averages [i*n//o, ceil((i+1)*n/o))."""
    i = xp.arange(o)
    start, end = (i * n) // o, ((i + 1) * n + o - 1) // o
    j = xp.arange(n)
    m = (j >= start.reshape(-1, 1)) & (j < end.reshape(-1, 1))
    return m.astype(dtype) / (end - start).astype(dtype).reshape(-1, 1)


class AdaptiveAvgPool(Function):
    def forward(self, x, shape4, out, yshape):
        xp = backend.array_module(x)
        (n, c, h, w), (ho, wo) = shape4, out
        self.shape4, self.out, self.xshape = shape4, out, x.shape
        if h % ho == 0 and w % wo == 0:  # equal windows: a plain mean over blocks
            return x.reshape(n, c, ho, h // ho, wo, w // wo).mean(axis=(3, 5)).reshape(yshape)
        self.ph, self.pw = (
            _adaptive_matrix(xp, h, ho, x.dtype),
            _adaptive_matrix(xp, w, wo, x.dtype),
        )
        t = backend.matmul(x.reshape(-1, w), self.pw.T).reshape(n * c, h, wo)  # (NC, H, Wo)
        t = backend.matmul(xp.ascontiguousarray(t.swapaxes(1, 2)).reshape(-1, h), self.ph.T)
        y = xp.ascontiguousarray(t.reshape(n, c, wo, ho).swapaxes(2, 3))
        return _same_dtype(y, x).reshape(yshape)

    def backward(self, g):
        xp = backend.array_module(g)
        (n, c, h, w), (ho, wo) = self.shape4, self.out
        if h % ho == 0 and w % wo == 0:
            g = g.reshape(n, c, ho, 1, wo, 1) / ((h // ho) * (w // wo))
            return xp.broadcast_to(g, (n, c, ho, h // ho, wo, w // wo)).reshape(self.xshape)
        g = xp.ascontiguousarray(g.reshape(n * c, ho, wo).swapaxes(1, 2))
        t = backend.matmul(g.reshape(-1, ho), self.ph).reshape(n * c, wo, h)
        t = backend.matmul(xp.ascontiguousarray(t.swapaxes(1, 2)).reshape(-1, wo), self.pw)
        return t.reshape(self.xshape)


def _pool_args(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode):
    batched = _check_input(op, input, nd)
    k = _tuple(kernel_size, nd, op, "kernel_size")
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) else _tuple(
        stride, nd, op, "stride")  # fmt: skip
    p, d = _tuple(padding, nd, op, "padding"), _tuple(dilation, nd, op, "dilation")
    if min(k + s + d) < 1 or min(p) < 0:
        raise ValueError(f"{op}: kernel_size, stride and dilation must be positive and padding "
                         f"non-negative, got {k}, {s}, {d}, {p}")  # fmt: skip
    if any(2 * p_ > k_ for p_, k_ in zip(p, k)):  # NOTE: PyTorch's rule, with or without dilation
        raise ValueError(f"{op}: padding {p} must be at most half of the kernel size {k}")
    xs = tuple(input.shape) if batched else (1,) + tuple(input.shape)
    if nd == 1:
        xs, k, s, p, d = xs[:2] + (1,) + xs[2:], (1,) + k, (1,) + s, (0,) + p, (1,) + d
    geom = _PoolGeom(xs, k, s, p, d, ceil_mode)
    if min(geom.out) < 1:
        raise ShapeError(f"{op}: kernel {k[2 - nd:]} is larger than the padded input of shape "
                         f"{tuple(input.shape)}")  # fmt: skip
    yshape = xs[:2] + geom.out[2 - nd :]
    return geom, yshape if batched else yshape[1:]


def _max_pool(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    geom, yshape = _pool_args(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode)
    y = MaxPool.apply(input, geom=geom, yshape=yshape)
    if not return_indices:
        return y
    node = y.grad_fn
    if node is None:  # no graph recorded: run the op again for its argmax
        node = MaxPool()
        node.forward(input._data, geom, yshape)
    return y, Tensor._wrap(node.indices().reshape(yshape), input._device)


def _avg_pool(op, nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):  # fmt: skip
    geom, yshape = _pool_args(op, nd, input, kernel_size, stride, padding, 1, ceil_mode)
    if not input.is_floating_point():
        raise TypeError(f"{op}: expected a floating point input, got {input.dtype}")
    return AvgPool.apply(input, geom=geom, yshape=yshape, count_include_pad=count_include_pad,
                         divisor_override=divisor_override)  # fmt: skip


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):  # fmt: skip
    """Max over sliding windows of an (N, C, L) input; gradient flows to each argmax.

    Args: kernel_size; stride (default kernel_size); padding (implicit -inf, default 0);
    dilation (default 1); ceil_mode; return_indices (also return flat argmax indices).

    Example: ``mg.max_pool1d(mg.randn(2, 3, 10), 2)``
    """
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)  # fmt: skip


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):  # fmt: skip
    """Max over sliding windows of an (N, C, H, W) input; gradient flows to each argmax.

    Args: kernel_size; stride (default kernel_size); padding (implicit -inf, default 0);
    dilation (default 1); ceil_mode (round the output size up); return_indices.

    Example: ``mg.max_pool2d(mg.randn(2, 3, 28, 28), 2)``
    """
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)  # fmt: skip


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:  # fmt: skip
    """Mean over sliding windows of an (N, C, L) input.

    Args: kernel_size; stride (default kernel_size); padding (zeros, default 0); ceil_mode;
    count_include_pad (padding zeros count in the divisor, default True).

    Example: ``mg.avg_pool1d(mg.randn(2, 3, 10), 2)``
    """
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, None)  # fmt: skip


def avg_pool2d(
    input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
    count_include_pad: bool = True, divisor_override: int | None = None,
) -> Tensor:  # fmt: skip
    """Mean over sliding windows of an (N, C, H, W) input.

    Args: kernel_size; stride (default kernel_size); padding (zeros, default 0); ceil_mode;
    count_include_pad (default True); divisor_override (divide by this instead).

    Example: ``mg.avg_pool2d(mg.randn(2, 3, 28, 28), 2)``
    """
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)  # fmt: skip


def _adaptive(op, nd, input, output_size):
    batched = _check_input(op, input, nd)
    size = (output_size,) * nd if isinstance(output_size, int) else tuple(output_size)
    if len(size) != nd:
        raise ValueError(f"{op}: output_size must be an int or a tuple of {nd}, got {output_size}")
    xs = tuple(input.shape) if batched else (1,) + tuple(input.shape)
    xs4 = xs[:2] + (1,) + xs[2:] if nd == 1 else xs
    size = tuple(n if o is None else o for o, n in zip(size, xs[2:]))
    if min(size) < 1 or (min(xs[2:]) < 1 and xs[0] * xs[1] > 0):
        raise ShapeError(f"{op}: cannot pool input of shape {tuple(input.shape)} to {size}")
    out = (1,) + size if nd == 1 else size
    yshape = xs[:2] + size
    return AdaptiveAvgPool.apply(input, shape4=xs4, out=out,
                                 yshape=yshape if batched else yshape[1:])  # fmt: skip


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """Average pooling of (N, C, L) to a fixed length, windows chosen as in PyTorch.

    Example: ``mg.adaptive_avg_pool1d(mg.randn(2, 3, 10), 4)``
    """
    return _adaptive("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling of (N, C, H, W) to a fixed (Ho, Wo); None keeps that size.

    Args: output_size: int or (Ho, Wo).

    Example: ``mg.adaptive_avg_pool2d(mg.randn(2, 3, 7, 7), 1)``
    """
    return _adaptive("adaptive_avg_pool2d", 2, input, output_size)


from ._common import public  # noqa: E402

__all__ = public(globals())
