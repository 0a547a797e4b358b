"""Convolutions on NCHW tensors: conv1d/2d, conv_transpose1d/2d (pooling is in pool.py).

Convolutions are matrix products (BLAS on the CPU, cuBLAS on the GPU): the input is padded,
unfolded into columns (im2col, from strided views) and multiplied by the weight, per group;
the input gradient folds the product of the transposed weight back (col2im). Ungrouped
2-d convolutions with >= 32 input channels and a kernel larger than 1x1 use channels-last
columns instead (``_conv_kernels``: faster products, cache-sized blocks of images); among
them, 3x3 kernels at stride 1 on the CPU use Winograd's F(2x2, 3x3) (``_winograd``: 2.25x
fewer multiplications). On the CPU, unpadded, ungrouped 1x1 kernels are plain products on
the NCHW input (``_conv_pointwise``). Ungrouped 1-d convolutions on the CPU build their columns in the
input's own NCL layout (``_conv1d_rows``: no channels-last transposes). Depthwise
convolutions (groups = channels) of float32 CPU arrays run as direct loops in C
(``_native.depthwise_conv2d``: no columns). Ungrouped transposed convolutions run at stride 1
on the CPU as conv2d with the flipped weight, and otherwise, for float32 CPU arrays, as
per-image products with col2im and im2col in C (``_convt_blocks``). The same code serves
NumPy, CuPy and the fake GPU through ``xp``.
"""

# ruff: noqa: A002  (`input` is PyTorch's argument name)
from __future__ import annotations

from .. import _native
from ..autograd import Function, autocast_args, is_grad_enabled
from ..errors import ShapeError
from ..tensor import Tensor
from . import _conv1d_rows as _c1
from . import _conv_kernels as _ck
from . import _conv_pointwise as _pw
from . import _convt_blocks as _ctb
from . import _winograd as _wg
from ._common import check_same_dtype
from ._conv_geom import (  # noqa: F401  (tests and pool.py reach them here)
    _bias_grad,
    _col2im,
    _conv,
    _conv_grad_input,
    _conv_grad_weight,
    _Geom,
    _im2col,
    _nchw,
    _pad,
    _same_dtype,
    _to_grid,
)
from ._whole_op import whole_op

# ---------------------------------------------------------------------------- Functions


class Conv(Function):
    node_name = "ConvolutionBackward0"  # NOTE: PyTorch's one node for every convolution
    graph_inputs = (0, 1, 2)  # input, weight, bias (None, 0) when there is none

    def forward(self, x, w, b, geom, shape4, keep_cols):
        self.w, self.geom, self.xshape, self.x, self.shape4 = w, geom, x.shape, x, shape4
        x4, w4 = x.reshape(shape4[0]), w.reshape(shape4[1])
        # NOTE: depthwise (groups = channels) float32 on the CPU: direct loops in C, no columns;
        # one input channel is the same loops (64x1x28x28 -> 32, 3x3: 1.3 against 1.8 ms)
        self.dwise = geom.G == geom.C and (y := _native.depthwise_conv2d(
            x4, w4, b, (geom.sh, geom.sw), geom.pads[::2], (geom.dh, geom.dw),
            (geom.Ho, geom.Wo), shape4[2])) is not None  # fmt: skip
        if self.dwise:
            return y
        self.pointwise = _pw.applies(x4, geom)
        if self.pointwise:  # NOTE: 1x1 on the CPU: plain products on the NCHW input
            self.rows1d = self.wino = False
            y, xs = _pw.forward(x4, w4, b, geom)
            self.xs = xs if keep_cols else None
            return y.reshape(shape4[2])
        self.rows1d = _c1.applies(x4, geom)
        if self.rows1d:  # NOTE: 1-d on the CPU: columns in the input's own NCL layout
            self.wino = False
            self.w2 = w4.reshape(geom.O, -1)
            y, xpad = _c1.forward(x4.reshape(geom.N, geom.C, geom.W), self.w2, b, geom)
            self.xpad = xpad if keep_cols else None
            return y.reshape(shape4[2])
        self.wino = _wg.applies(x4, geom)
        if self.wino:  # NOTE: 3x3 at stride 1 on the CPU: Winograd, 2.25x fewer products
            self.u = _wg.filter_transform(w4)
            keep = keep_cols and _wg.keeps_tiles(x4, geom)
            y, self.tiles = _wg.forward(x4, self.u, b, geom, keep)
            # NOTE: a copy: the caller may change its input in place before the backward
            self.x4 = x4.copy() if keep_cols and not keep else None
            return y.reshape(shape4[2])
        if geom.nhwc:
            self.w2, self.step = _ck.weight_rows(w4), _ck.block_images(x4, geom)
            if self.step < geom.N:  # NOTE: NumPy: blocks of images, over the CPU threads
                y, xpad = _ck.forward_blocks(x4, self.w2, b, geom, self.step)
                cols = None
            else:
                xpad = _ck.pad_nhwc(x4, geom)
                y, cols = _ck.forward(xpad, self.w2, b, geom)
            self.xpad = xpad if keep_cols and cols is None else None  # columns rebuilt
        else:
            y, cols = _conv(x4, w4, b, geom)
        self.cols = cols if keep_cols else None
        return _same_dtype(y, x).reshape(shape4[2])

    def backward(self, gy):
        nx, nw, nb = self.needs_input_grad
        g, w = self.geom, self.w
        if self.dwise and (got := self._dwise_backward(gy, nx, nw, nb)) is not None:
            return got
        if self.pointwise:
            gy4 = gy.reshape(g.N, g.O, g.Ho, g.Wo)
            gx, gw, gb = _pw.backward(gy4, w.reshape(g.O, g.C, 1, 1), self.xs, g, nx, nw, nb)
            gx = None if gx is None else gx.reshape(self.xshape)
            return gx, (None if gw is None else gw.reshape(w.shape)), gb
        if self.rows1d:
            gy3 = gy.reshape(g.N, g.O, g.Wo)
            gx, gw, gb = _c1.backward(gy3, self.w2, self.xpad, g, nx, nw, nb)
            gx = None if gx is None else gx.reshape(self.xshape)
            return gx, (None if gw is None else gw.reshape(w.shape)), gb
        if self.wino:
            gy4 = gy.reshape(g.N, g.O, g.Ho, g.Wo)
            gx, gw, gb = _wg.backward(gy4, self.x4, self.u, g, nx, nw, nb, self.tiles)
            gx = None if gx is None else gx.reshape(self.xshape)
            return gx, (None if gw is None else gw.reshape(w.shape)), gb
        if g.nhwc:
            gy4 = gy.reshape(g.N, g.O, g.Ho, g.Wo)
            w9 = _ck.offset_weights(w.reshape(g.O, g.C, g.kh, g.kw)) if nx else None
            if self.step < g.N:  # NOTE: NumPy: blocks of images
                gx, gw, gb = _ck.backward_blocks(gy4, w9, self.xpad, g, self.step, nx, nw, nb)
                gx = None if gx is None else gx.reshape(self.xshape)
                gw = None if gw is None else gw.reshape(w.shape)
                return gx, gw, gb
            gyr = _ck.grad_out_rows(gy4, g)
            gx = _ck.grad_input(gyr, w9, g) if nx else None
            gx = None if gx is None else gx.reshape(self.xshape)
            gw = _ck.grad_weight(self.cols, gyr, g) if nw else None
            gw = None if gw is None else gw.reshape(w.shape)
            gb = gy4.sum(axis=(0, 2, 3)) if nb else None
            return gx, gw, gb
        gy2 = _to_grid(gy.reshape(g.N, g.O, g.Ho, g.Wo), g)
        gx = _conv_grad_input(gy2, w.reshape(g.O, -1, g.kh, g.kw), g) if nx else None
        gw = _conv_grad_weight(self.cols, gy2, w.shape) if nw else None
        gb = _bias_grad(gy2, g) if nb else None
        return (None if gx is None else gx.reshape(self.xshape)), gw, gb

    def _dwise_backward(self, gy, nx, nw, nb):
        """The depthwise gradients from the C loops; or None, after setting up the columns
        path (e.g. for a gradient of another dtype)."""
        g = self.geom
        x4, w4 = self.x.reshape(self.shape4[0]), self.w.reshape(self.shape4[1])
        gy4 = gy.reshape(g.N, g.O, g.Ho, g.Wo)
        spec = ((g.sh, g.sw), g.pads[::2], (g.dh, g.dw))
        shapes = (self.xshape, self.w.shape)  # NOTE: new arrays, not views (not copied)
        got = _native.depthwise_conv2d_backward(gy4, x4, w4, *spec, nx, nw, nb, *shapes)
        if got is None:  # NOTE: depthwise is never 1x1-only, 1-d-rows or Winograd
            self.dwise = self.pointwise = self.rows1d = self.wino = False
            self.cols = _conv(x4, w4, None, g)[1] if nw else None
            return None
        return got

    def backward_graph(self, gy):
        g = self.geom
        x = self.saved_input(0, self.x).reshape(g.N, g.C, g.H, g.W)
        w = self.saved_input(1, self.w)
        return _conv_graph(self, x, gy.reshape(g.N, g.O, g.Ho, g.Wo), w, self.xshape, False)


class ConvTranspose(Function):
    """The adjoint of Conv: forward is Conv's input gradient, backward its forward."""

    node_name = "ConvolutionBackward0"
    graph_inputs = (0, 1, 2)

    def forward(self, x, w, b, geom, shape4, keep_x):
        self.w, self.geom, self.xshape, self.x, self.shape4 = w, geom, x.shape, x, shape4
        x4 = x.reshape(geom.N, geom.O, geom.Ho, geom.Wo)
        self.blocks = _ctb.applies(x4, w, b, geom)
        if self.blocks:  # NOTE: float32 on the CPU: per-image products, col2im in C
            return _ctb.forward(x4, w, b, geom).reshape(shape4[2])
        x2 = _to_grid(x4, geom)
        self.x2 = x2 if keep_x else None
        y = _conv_grad_input(x2, w.reshape(shape4[1]), geom, b)
        return _same_dtype(y, x).reshape(shape4[2])

    def backward(self, gy):
        nx, nw, nb = self.needs_input_grad
        g, w = self.geom, self.w
        gy = gy.reshape(g.N, g.C, g.H, g.W)
        if self.blocks and _ctb.applies(gy, w, None, g):
            x4 = self.x.reshape(g.N, g.O, g.Ho, g.Wo)
            gx, gw, gb = _ctb.backward(gy, x4, w, g, nx, nw, nb)
            return (None if gx is None else gx.reshape(self.xshape)), gw, gb
        if self.blocks and nw:  # NOTE: e.g. a gradient of another dtype: the columns path
            self.x2 = _to_grid(self.x.reshape(g.N, g.O, g.Ho, g.Wo), g)
        gx = gw = None
        if nx or nw:
            gx, cols = _conv(gy, w.reshape(g.O, -1, g.kh, g.kw), None, g)
            gx = gx.reshape(self.xshape) if nx else None
            gw = _conv_grad_weight(cols, self.x2, w.shape) if nw else None
        gb = gy.sum(axis=(0, 2, 3)) if nb else None
        return gx, gw, gb

    def backward_graph(self, gy):
        g = self.geom
        x = self.saved_input(0, self.x).reshape(g.N, g.O, g.Ho, g.Wo)
        w = self.saved_input(1, self.w)
        return _conv_graph(self, gy.reshape(g.N, g.C, g.H, g.W), x, w, self.xshape, True)


def _conv_graph(node, xin, gout, w, xshape, transposed):
    """Conv's gradients as conv ops of the graph (double backward): for ``y = conv(x, w)``
    ``dx = conv_transpose(dy, w)``, ``dw = conv(x^T, dy^T)`` with stride and dilation
    swapped (per group); ConvTranspose is the same pair with ``x`` its output gradient and
    ``dy`` its input. Padding is explicit (pad, then crop), so uneven pads work too."""
    from .arrange import pad
    from .movement import cat

    g = node.geom
    pt, pb, pl, pr = g.pads
    nx, nw, nb = node.needs_input_grad[:3]
    w4 = w.reshape(g.O, g.C // g.G, g.kh, g.kw)
    s, d = (g.sh, g.sw), (g.dh, g.dw)
    x, dy = xin, gout
    padded = pad(x, (pl, pr, pt, pb)) if any(g.pads) else x
    gx = gw = gb = None
    if nx:
        if transposed:  # the input of ConvTranspose plays dy: its gradient is a conv
            gx = conv2d(padded, w4, None, s, 0, d, g.G)[:, :, : g.Ho, : g.Wo]
        else:
            hp, wp = g.H + pt + pb, g.W + pl + pr
            oh = hp - ((g.Ho - 1) * g.sh + g.dh * (g.kh - 1) + 1)
            ow = wp - ((g.Wo - 1) * g.sw + g.dw * (g.kw - 1) + 1)
            full = conv_transpose2d(dy, w4, None, s, 0, (oh, ow), g.G, d)
            gx = full[:, :, pt : pt + g.H, pl : pl + g.W]
        gx = gx.reshape(*xshape)
    if nw:
        ci, co = g.C // g.G, g.O // g.G
        parts = []
        for k in range(g.G):
            xk = padded[:, k * ci : (k + 1) * ci] if g.G > 1 else padded
            dk = dy[:, k * co : (k + 1) * co] if g.G > 1 else dy
            part = conv2d(xk.transpose(0, 1), dk.transpose(0, 1), None, d, 0, s)
            parts.append(part[:, :, : g.kh, : g.kw].transpose(0, 1))
        gw = (parts[0] if g.G == 1 else cat(parts, 0)).reshape(*w.shape)
    if nb:
        gb = (x if transposed else dy).sum((0, 2, 3))
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
    if x._data.dtype != weight._data.dtype or (
        bias is not None and bias._data.dtype != weight._data.dtype
    ):
        check_same_dtype(op, ("input", x), ("weight", weight), ("bias", bias))
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
    geom = _Geom(xs, ws, stride, pads, dilation, groups, nhwc=True)
    if geom.Ho < 1 or geom.Wo < 1:
        raise ShapeError(f"{op}: kernel {tuple(weight.shape[2:])} with dilation "
                         f"{dilation[2 - nd:]} is larger than the padded input of shape "
                         f"{tuple(x.shape)}")  # fmt: skip
    yshape = (xs[0], ws[0]) + ((geom.Ho, geom.Wo) if nd == 2 else (geom.Wo,))
    yshape = yshape if batched else yshape[1:]
    keep = weight.requires_grad and is_grad_enabled()
    shape4 = (xs, ws, yshape)
    if nd == 2 and x._device.type != "cpu":
        from . import _conv_cudnn as cu

        if cu.takes(x._data, geom):
            return cu.CudnnConv2d.apply(x, weight, bias, geom=geom, shape4=shape4, keep_cols=keep)
    return Conv.apply(x, weight, bias, geom=geom, shape4=shape4, keep_cols=keep)


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
    spatial = tuple(range(2, nd + 2))
    reach = [d * (k - 1) for d, k in zip(dilation[2 - nd :], weight.shape[2:])]
    if (
        groups == 1
        and all(v == 1 for v in stride)
        and not any(extra)
        and all(p <= r for p, r in zip(pads[4 - 2 * nd :: 2], reach))
        and x._device.type == "cpu"
    ):
        # NOTE: at stride 1 a transposed convolution is the convolution with the flipped
        # weight, its two channel dims swapped, and padding d (k - 1) - p: conv2d's faster
        # paths (Winograd for 3x3) then serve it, forward and backward
        w = weight.flip(spatial).transpose(0, 1).contiguous()
        pad = tuple(r - p for p, r in zip(pads[4 - 2 * nd :: 2], reach))
        return _convnd(op, nd, x, w, bias, 1, pad, dilation[2 - nd :], 1)
    ys = (xs[0], ws[1] * groups, size[0], size[1])
    geom = _Geom(ys, ws, stride, pads, dilation, groups, out_hw=xs[2:])
    yshape = ys if nd == 2 else (ys[0], ys[1], ys[3])
    yshape = yshape if batched else yshape[1:]
    keep = weight.requires_grad and is_grad_enabled()
    return ConvTranspose.apply(x, weight, bias, geom=geom, shape4=(ys, ws, yshape), keep_x=keep)


# ---------------------------------------------------------------------------- public API


@whole_op("convolution")
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


@whole_op("convolution")
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


@whole_op("conv_transpose")
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


@whole_op("conv_transpose")
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


from ._common import public  # noqa: E402

__all__ = public(globals())
