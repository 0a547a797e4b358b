"""3-d (video, volume) convolutions: conv3d and conv_transpose3d on (N, C, D, H, W).

Both reduce to one 2-d convolution each: conv3d stacks the ``kD`` depth-shifted views of
the input into channels (ordered per group as (kD, C/groups), matching the weight reshaped
to (O, kD * C/groups, kH, kW)) and runs conv2d over N * D_out images; conv_transpose3d runs
one conv_transpose2d whose output channels are (groups, kD, C_out/groups) and adds each
depth tap's slab at its strided place (``_DepthTaps``, one op that writes the cropped
(N, C, D, H, W) output and its bias). Gradients (and theirs) come from conv2d,
conv_transpose2d, pad, stack, reshape and the depth taps' gather (``_DepthGather``).
"""

# ruff: noqa: A002  (`input` is PyTorch's argument name)
from __future__ import annotations

from .. import backend
from ..autograd import Function
from ..errors import ShapeError
from ..tensor import Tensor
from ._common import check_same_dtype
from ._whole_op import whole_op
from .arrange import pad
from .conv import conv2d, conv_transpose2d
from .movement import stack


def _triple(v, op: str, name: str) -> tuple:
    v = (v,) * 3 if isinstance(v, int) else tuple(v)
    if len(v) != 3 or not all(isinstance(e, int) for e in v):
        raise ValueError(f"{op}: {name} must be an int or a tuple of 3 ints, got {v}")
    return v


def _batched(op: str, x: Tensor) -> tuple:
    if not isinstance(x, Tensor) or x.ndim not in (4, 5):
        raise ShapeError(f"{op}: expected an input of 4 dims (C, D, H, W) or 5 dims "
                         f"(N, C, D, H, W), got shape {tuple(getattr(x, 'shape', ()))}")  # fmt: skip
    return (x, True) if x.ndim == 5 else (x.unsqueeze(0), False)


def _pads(op, padding, k, d, s):
    """((front, back), (top, bottom), (left, right)) from an int, a tuple, "same", "valid"."""
    if padding == "valid":
        return ((0, 0),) * 3
    if padding == "same":
        if any(v != 1 for v in s):
            raise ValueError(f"{op}: padding='same' is not supported for strided convolutions")
        return tuple((dd * (kk - 1) // 2, dd * (kk - 1) - dd * (kk - 1) // 2)
                     for kk, dd in zip(k, d))  # fmt: skip
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be 'same', 'valid', an int or a tuple, got "
                         f"{padding!r}")  # fmt: skip
    p = _triple(padding, op, "padding")
    if min(p) < 0:
        raise ValueError(f"{op}: padding must be non-negative, got {padding}")
    return tuple((v, v) for v in p)


@whole_op("convolution")
def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:  # fmt: skip
    """3-d convolution (cross-correlation) over an (N, C, D, H, W) or (C, D, H, W) input.

    Args:
        input: (N, C_in, D, H, W). weight: (C_out, C_in / groups, kD, kH, kW).
        bias: (C_out,) or None. stride, padding ("same"/"valid" too), dilation: int or
        3-tuple. groups: default 1.

    Example: ``mg.nn.functional.conv3d(mg.randn(1, 3, 8, 16, 16), mg.randn(4, 3, 3, 3, 3))``
    """
    op = "conv3d"
    x, batched = _batched(op, input)
    if weight.ndim != 5 or x.shape[1] != weight.shape[1] * groups or weight.shape[0] % groups:
        raise ShapeError(
            f"{op}: input of shape {tuple(input.shape)} and weight of shape "
            f"{tuple(weight.shape)} with groups={groups} do not fit: weight must be (C_out, "
            "C_in / groups, kD, kH, kW) with C_out divisible by groups"
        )
    check_same_dtype(op, ("input", x), ("weight", weight), ("bias", bias))
    s, d = _triple(stride, op, "stride"), _triple(dilation, op, "dilation")
    k = tuple(weight.shape[2:])
    (pf, pb), (pt, pbo), (pl, pr) = _pads(op, padding, k, d, s)
    hw_pad = (pt, pl)
    if pt != pbo or pl != pr:
        x, hw_pad = pad(x, (pl, pr, pt, pbo)), (0, 0)
    if pf or pb:
        x = pad(x, (0, 0, 0, 0, pf, pb))
    n, c, dp, h, w = x.shape
    do = (dp - d[0] * (k[0] - 1) - 1) // s[0] + 1
    if do < 1:
        raise ShapeError(f"{op}: kernel depth {k[0]} (dilation {d[0]}) is larger than the "
                         f"padded input depth {dp}")  # fmt: skip
    g, cg, o = groups, c // groups, weight.shape[0]
    taps = [x[:, :, i * d[0] : i * d[0] + (do - 1) * s[0] + 1 : s[0]] for i in range(k[0])]
    cols = stack(taps, 2).reshape(n, g, cg, k[0], do, h, w)
    cols = cols.permute(0, 4, 1, 3, 2, 5, 6).reshape(n * do, g * k[0] * cg, h, w)
    w2 = weight.permute(0, 2, 1, 3, 4).reshape(o, k[0] * cg, k[1], k[2])
    y = conv2d(cols, w2, None, s[1:], hw_pad, d[1:], groups)
    y = y.reshape(n, do, o, y.shape[2], y.shape[3]).permute(0, 2, 1, 3, 4)
    if bias is not None:
        y = y + bias.reshape(1, o, 1, 1, 1)
    return y if batched else y.squeeze(0)


def _depth_taps(di, kd, stride, dilation, front, size):
    """(tap, input depths, output depths) slices: input depth j of tap i lands on output depth
    ``i * dilation + j * stride - front``; only the taps' depths inside [0, size) are kept."""
    taps = []
    for i in range(kd):
        lo = max(0, -((i * dilation - front) // stride))
        hi = min(di - 1, (size - 1 + front - i * dilation) // stride)
        if lo <= hi:
            o = i * dilation + lo * stride - front
            taps.append((i, slice(lo, hi + 1), slice(o, o + (hi - lo) * stride + 1, stride)))
    return taps


def _scatter_taps(xp, y, taps, size, bias):
    """(N, D, G, kD, C/G, Ho, Wo) -> (N, C, size, Ho, Wo): the taps summed, plus ``bias``."""
    n, _, g, _, cg, ho, wo = y.shape
    if bias is None:
        out = xp.zeros((n, g * cg, size, ho, wo), y.dtype)
    else:
        out = xp.empty((n, g * cg, size, ho, wo), y.dtype)
        out[...] = bias.reshape(1, -1, 1, 1, 1)
    out6 = out.reshape(n, g, cg, size, ho, wo)
    for i, js, os_ in taps:
        out6[:, :, :, os_] += y[:, js, :, i].transpose(0, 2, 3, 1, 4, 5)
    return out


def _gather_taps(xp, gout, shape, taps):
    """The adjoint of ``_scatter_taps`` (without bias): (N, C, size, Ho, Wo) -> ``shape``."""
    n, _, g, _, cg, ho, wo = shape
    g6 = gout.reshape(n, g, cg, gout.shape[2], ho, wo)
    gy = xp.zeros(shape, gout.dtype)
    for i, js, os_ in taps:
        gy[:, js, :, i] = g6[:, :, :, os_].transpose(0, 3, 1, 2, 4, 5)
    return gy


class _DepthTaps(Function):
    """conv_transpose3d's depth taps: the conv_transpose2d output (N, D, G, kD, C/G, Ho, Wo)
    summed into the cropped output (N, C, D_out, Ho, Wo), plus the bias.

    NOTE: one output and one strided add per tap, in place of the graph's depth dilation
    (a concatenation with zeros), one full-size pad per tap, their sum, the crop and the
    bias add: N=4, 16->8 channels, 8x16x16, k=3, stride 2, forward + backward on one
    thread: 4.8 against 7.4 ms (benchmarks/ops.py --only conv3d).
    """

    def forward(self, y, bias, taps, size):
        self.shape, self.taps, self.size = y.shape, taps, size
        return _scatter_taps(backend.array_module(y), y, taps, size, bias)

    def backward(self, g):
        gy = _gather_taps(backend.array_module(g), g, self.shape, self.taps)
        gb = g.sum(axis=(0, 2, 3, 4)) if self.needs_input_grad[1] else None
        return gy, gb

    def backward_graph(self, g):
        gy = _DepthGather.apply(g, shape=self.shape, taps=self.taps, size=self.size)
        gb = g.sum((0, 2, 3, 4)) if self.needs_input_grad[1] else None
        return gy, gb


class _DepthGather(Function):
    """The adjoint of ``_DepthTaps`` (double backward): (N, C, D_out, Ho, Wo) -> the taps."""

    def forward(self, g, shape, taps, size):
        self.shape, self.taps, self.size = shape, taps, size
        return _gather_taps(backend.array_module(g), g, shape, taps)

    def backward(self, gg):
        return _scatter_taps(backend.array_module(gg), gg, self.taps, self.size, None)

    def backward_graph(self, gg):
        return _DepthTaps.apply(gg, None, taps=self.taps, size=self.size)


@whole_op("conv_transpose")
def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:  # fmt: skip
    """3-d transposed convolution (the gradient of conv3d with respect to its input).

    Args:
        input: (N, C_in, D, H, W). weight: (C_in, C_out / groups, kD, kH, kW).
        bias: (C_out,) or None. stride, padding, output_padding, dilation: int or 3-tuple.

    Example: ``F.conv_transpose3d(mg.randn(1, 4, 3, 5, 5), mg.randn(4, 2, 2, 2, 2), stride=2)``
    """
    op = "conv_transpose3d"
    x, batched = _batched(op, input)
    if weight.ndim != 5 or x.shape[1] != weight.shape[0] or weight.shape[0] % groups:
        raise ShapeError(
            f"{op}: input of shape {tuple(input.shape)} and weight of shape "
            f"{tuple(weight.shape)} with groups={groups} do not fit: weight must be (C_in, "
            "C_out / groups, kD, kH, kW) with C_in divisible by groups"
        )
    check_same_dtype(op, ("input", x), ("weight", weight), ("bias", bias))
    s, d = _triple(stride, op, "stride"), _triple(dilation, op, "dilation")
    p, op_ = _triple(padding, op, "padding"), _triple(output_padding, op, "output_padding")
    if any(o >= max(a, b) or o < 0 for o, a, b in zip(op_, s, d)):
        raise ValueError(f"{op}: output_padding {op_} must be smaller than stride or dilation")
    n, cin, di, h, w = x.shape
    kd, kh, kw = weight.shape[2:]
    cg, g = weight.shape[1], groups
    # one conv_transpose2d over (N * D, C_in, H, W): output channels (groups, kD, C_out / g)
    w2 = weight.permute(0, 2, 1, 3, 4).reshape(cin, kd * cg, kh, kw)
    x2 = x.permute(0, 2, 1, 3, 4).reshape(n * di, cin, h, w)
    y = conv_transpose2d(x2, w2, None, s[1:], p[1:], op_[1:], g, d[1:])
    ho, wo = y.shape[2], y.shape[3]
    size = (di - 1) * s[0] + d[0] * (kd - 1) + 1 - 2 * p[0] + op_[0]
    if size < 1:
        raise ShapeError(f"{op}: output depth {size} is too small for input {tuple(x.shape)}")
    taps = _depth_taps(di, kd, s[0], d[0], p[0], size)
    out = _DepthTaps.apply(y.reshape(n, di, g, kd, cg, ho, wo), bias, taps=taps, size=size)
    return out if batched else out.squeeze(0)


from ._common import public  # noqa: E402

__all__ = public(globals())
