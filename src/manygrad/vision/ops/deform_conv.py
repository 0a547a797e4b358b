"""Deformable convolution (Dai et al., 2017; v2 with a mask: Zhu et al., 2019;
torchvision.ops.deform_conv2d), written with manygrad's tensor ops: every kernel tap
reads the input bilinearly at its own learned offset, so gradients reach the input,
offsets, mask, weight and bias through autograd."""

from __future__ import annotations

import math

import manygrad as mg
from manygrad import Tensor, nn
from manygrad.nn import init

from .roi_align import _pair


def _taps(xf: Tensor, y: Tensor, x: Tensor, h: int, w: int) -> Tensor:
    """Bilinear reads of ``xf`` [B, G, Cg, H * W] at (y, x) [B, G, T], zero outside the
    map, as torchvision's kernel: [B, G, Cg, T]."""
    y0, x0 = mg.floor(y.detach()), mg.floor(x.detach())
    ly, lx = y - y0, x - x0
    out = None
    for dy, wy in ((0, 1 - ly), (1, ly)):
        for dx, wx in ((0, 1 - lx), (1, lx)):
            yy, xx = y0 + dy, x0 + dx
            inside = (yy >= 0) & (yy <= h - 1) & (xx >= 0) & (xx <= w - 1)
            idx = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).long()
            idx = idx[:, :, None, :].expand(-1, -1, xf.shape[2], -1)
            v = mg.gather(xf, 3, idx) * (wy * wx * inside.to(xf.dtype))[:, :, None, :]
            out = v if out is None else out + v
    return out


def deform_conv2d(
    input: Tensor,  # noqa: A002 - torchvision's name
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = (1, 1),
    padding: int | tuple[int, int] = (0, 0),
    dilation: int | tuple[int, int] = (1, 1),
    mask: Tensor | None = None,
) -> Tensor:
    """Deformable convolution: kernel tap k of output pixel p reads the input at
    ``p * stride - padding + k * dilation + offset`` (bilinear, zero outside), scaled by
    ``mask`` when given (v2).

    Args:
        input: ``Tensor[B, C_in, H, W]``.
        offset: ``Tensor[B, 2 * G * KH * KW, H_out, W_out]``, (dy, dx) per tap and offset
            group G.
        weight: ``Tensor[C_out, C_in / groups, KH, KW]``.
        bias: ``Tensor[C_out]`` or None.
        stride, padding, dilation: as conv2d's. Defaults 1, 0, 1.
        mask: ``Tensor[B, G * KH * KW, H_out, W_out]`` or None.

    Example: ``deform_conv2d(x, offset, weight, mask=mask)``.
    """
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    b, c_in, h, w = input.shape
    c_out, c_per_group, kh, kw = weight.shape
    k = kh * kw
    groups = c_in // c_per_group if c_per_group else 0
    off_groups = offset.shape[1] // (2 * k)
    if off_groups == 0 or offset.shape[1] % (2 * k) or c_in % off_groups:
        raise RuntimeError(
            "deform_conv2d: the shape of the offset tensor at dimension 1 is not valid: it "
            f"should be a multiple of 2 * weight.size[2] * weight.size[3] = {2 * k} that "
            f"divides the input channels into groups, got offset.shape[1]={offset.shape[1]}"
        )
    if groups == 0 or c_in % c_per_group or c_out % groups:
        raise RuntimeError(
            f"deform_conv2d: weight of shape {tuple(weight.shape)} does not fit an input of "
            f"{c_in} channels: C_in must be a multiple of weight.size[1], and C_out of groups"
        )
    oh = (h + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    ow = (w + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    if tuple(offset.shape[2:]) != (oh, ow) or offset.shape[0] != b:
        raise RuntimeError(
            f"deform_conv2d: offset must have shape [{b}, {offset.shape[1]}, {oh}, {ow}] "
            f"(the output's batch and size), got {tuple(offset.shape)}"
        )
    dev, dt = input.device, input.dtype
    # each tap's base position: [K, OH, 1] rows and [K, 1, OW] columns
    ki = mg.arange(k, device=dev)
    base_y = (mg.arange(oh, device=dev) * sh - ph)[None, :, None] + ((ki // kw) * dh)[:, None, None]
    base_x = (mg.arange(ow, device=dev) * sw - pw)[None, None, :] + ((ki % kw) * dw)[:, None, None]
    off = offset.reshape(b, off_groups, k, 2, oh, ow)
    y = (base_y.to(dt) + off[:, :, :, 0]).reshape(b, off_groups, k * oh * ow)
    x = (base_x.to(dt) + off[:, :, :, 1]).reshape(b, off_groups, k * oh * ow)
    xf = input.reshape(b, off_groups, c_in // off_groups, h * w)
    cols = _taps(xf, y, x, h, w)  # [B, G, Cg, K * OH * OW]
    if mask is not None:
        cols = cols * mask.reshape(b, off_groups, 1, k * oh * ow)
    # [B, groups, C_in / groups * K, OH * OW], channel-major then tap, as the weight
    cols = cols.reshape(b, groups, c_per_group * k, oh * ow)
    wg = weight.reshape(groups, c_out // groups, c_per_group * k)
    out = mg.matmul(wg[None], cols).reshape(b, c_out, oh, ow)
    if bias is not None:
        out = out + bias.reshape(1, c_out, 1, 1)
    return out


class DeformConv2d(nn.Module):
    """See :func:`deform_conv2d`; ``forward(input, offset, mask=None)``.

    Example: ``DeformConv2d(8, 16, 3, padding=1)(x, offset)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
    ):
        super().__init__()
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.weight = nn.Parameter(mg.empty(out_channels, in_channels // groups, *self.kernel_size))
        if bias:
            self.bias = nn.Parameter(mg.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor, offset: Tensor, mask: Tensor | None = None) -> Tensor:  # noqa: A002
        return deform_conv2d(
            input, offset, self.weight, self.bias, self.stride, self.padding, self.dilation,
            mask,
        )  # fmt: skip

    def __repr__(self) -> str:
        s = (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"kernel_size={self.kernel_size}, stride={self.stride}"
        )
        s += f", padding={self.padding}" if self.padding != (0, 0) else ""
        s += f", dilation={self.dilation}" if self.dilation != (1, 1) else ""
        s += f", groups={self.groups}" if self.groups != 1 else ""
        s += ", bias=False" if self.bias is None else ""
        return s + ")"
