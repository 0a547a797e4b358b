"""Block rearrangements: unfold (im2col) and fold (col2im), pixel_shuffle and
pixel_unshuffle, as in ``torch.nn.functional``.

unfold is a grouped convolution with one-hot kernels (one output channel per input channel
and kernel position) and fold is its transpose, so both run on the convolution kernels and
are differentiable (twice, through conv2d and conv_transpose2d). The shuffles are reshapes
and permutations.
"""

# ruff: noqa: A002  (`input` is PyTorch's argument name)
from __future__ import annotations

from .. import backend
from ..errors import ShapeError
from ..tensor import Tensor
from .conv import conv2d, conv_transpose2d
from .elementwise import _float_input


def _pair(v, name: str, op: str) -> tuple:
    v = (v, v) if isinstance(v, int) else tuple(v)
    if len(v) != 2 or not all(isinstance(e, int) for e in v):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {v}")
    return v


def _one_hot_kernels(x: Tensor, c: int, kh: int, kw: int) -> Tensor:
    """(C * kh * kw, 1, kh, kw): kernel ``c * K + k`` is 1 at position k, 0 elsewhere."""
    xp = backend.array_module(x._data)
    k = kh * kw
    with backend.device_scope(x._device):
        eye = xp.eye(k, dtype=x._data.dtype).reshape(1, k, 1, kh, kw)
        w = xp.ascontiguousarray(xp.broadcast_to(eye, (c, k, 1, kh, kw))).reshape(c * k, 1, kh, kw)
    return Tensor._wrap(w, x._device)


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sliding blocks of (N, C, H, W) as columns: (N, C * kh * kw, L).

    Example: ``F.unfold(mg.randn(2, 3, 8, 8), kernel_size=3, padding=1).shape``  # (2, 27, 64)
    """
    op = "unfold"
    if input.ndim not in (3, 4):
        raise ShapeError(f"{op}: expected an input of 3 or 4 dims ((N,) C, H, W), got shape "
                         f"{tuple(input.shape)}")  # fmt: skip
    kh, kw = _pair(kernel_size, "kernel_size", op)
    batched = input.ndim == 4
    x = _float_input(input if batched else input.unsqueeze(0))
    c = x.shape[1]
    w = _one_hot_kernels(x, c, kh, kw)
    cols = conv2d(x, w, None, _pair(stride, "stride", op), _pair(padding, "padding", op),
                  _pair(dilation, "dilation", op), groups=c)  # fmt: skip
    cols = cols.reshape(cols.shape[0], cols.shape[1], -1)
    return cols if batched else cols.squeeze(0)


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sum columns (N, C * kh * kw, L) back into an (N, C, H, W) image (unfold's adjoint).

    Example: ``F.fold(cols, output_size=(8, 8), kernel_size=3, padding=1)``
    """
    op = "fold"
    if input.ndim not in (2, 3):
        raise ShapeError(f"{op}: expected an input of 2 or 3 dims ((N,) C * kh * kw, L), got "
                         f"shape {tuple(input.shape)}")  # fmt: skip
    (h, w), (kh, kw) = _pair(output_size, "output_size", op), _pair(kernel_size, "kernel_size", op)
    (dh, dw), (ph, pw) = _pair(dilation, "dilation", op), _pair(padding, "padding", op)
    sh, sw = _pair(stride, "stride", op)
    batched = input.ndim == 3
    x = _float_input(input if batched else input.unsqueeze(0))
    k = kh * kw
    blocks_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    blocks_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if x.shape[1] % k or blocks_h * blocks_w != x.shape[2] or min(blocks_h, blocks_w) < 1:
        raise ShapeError(
            f"{op}: input of shape {tuple(input.shape)} does not fit output_size {(h, w)} and "
            f"kernel_size {(kh, kw)}: dim -2 must be divisible by {k} and dim -1 must be "
            f"{max(blocks_h, 0) * max(blocks_w, 0)} (the number of blocks)"
        )
    c = x.shape[1] // k
    cols = x.reshape(x.shape[0], c * k, blocks_h, blocks_w)
    full_h = (blocks_h - 1) * sh - 2 * ph + dh * (kh - 1) + 1
    full_w = (blocks_w - 1) * sw - 2 * pw + dw * (kw - 1) + 1
    out = conv_transpose2d(cols, _one_hot_kernels(x, c, kh, kw), None, (sh, sw), (ph, pw),
                           (h - full_h, w - full_w), c, (dh, dw))  # fmt: skip
    return out if batched else out.squeeze(0)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C * r^2, H, W) -> (*, C, H * r, W * r) (Shi et al., 2016).

    Example: ``F.pixel_shuffle(mg.randn(1, 8, 3, 3), 2).shape``  # (1, 2, 6, 6)
    """
    r = upscale_factor
    if input.ndim < 3 or input.shape[-3] % (r * r):
        raise ShapeError(f"pixel_shuffle: expected (*, C * {r * r}, H, W), got shape "
                         f"{tuple(input.shape)}")  # fmt: skip
    *lead, c, h, w = input.shape
    b = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(b), b, b + 3, b + 1, b + 4, b + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H * r, W * r) -> (*, C * r^2, H, W), the inverse of pixel_shuffle."""
    r = downscale_factor
    if input.ndim < 3 or input.shape[-1] % r or input.shape[-2] % r:
        raise ShapeError(f"pixel_unshuffle: expected (*, C, H * {r}, W * {r}), got shape "
                         f"{tuple(input.shape)}")  # fmt: skip
    *lead, c, h, w = input.shape
    b = len(lead)
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(b), b, b + 2, b + 4, b + 1, b + 3)
    return x.reshape(*lead, c * r * r, h // r, w // r)


def conv_tbc(input: Tensor, weight: Tensor, bias: Tensor, pad: int = 0) -> Tensor:  # noqa: A002
    """A 1-d convolution over time of ``(T, B, C_in)`` inputs with a ``(K, C_in, C_out)``
    weight (``pad`` steps of zeros at both ends); returns ``(T', B, C_out)``."""
    from .conv import conv1d

    if input.dim() != 3 or weight.dim() != 3:
        raise ShapeError(
            f"conv_tbc: expected a (T, B, C) input and a (K, C_in, C_out) weight, got "
            f"{tuple(input.shape)} and {tuple(weight.shape)}"
        )
    out = conv1d(input.permute(1, 2, 0), weight.permute(2, 1, 0), bias, padding=pad)
    return out.permute(2, 0, 1)


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """(N, g * k, *) -> channels reordered as k groups of g (Zhang et al., 2017: ShuffleNet).

    Example: ``F.channel_shuffle(mg.randn(1, 6, 2, 2), 3)``
    """
    if input.ndim < 3 or input.shape[1] % groups:
        raise ShapeError(f"channel_shuffle: expected (N, C, *) with C divisible by groups="
                         f"{groups}, got shape {tuple(input.shape)}")  # fmt: skip
    n, c, *rest = input.shape
    x = input.reshape(n, groups, c // groups, *rest).transpose(1, 2)
    return x.reshape(n, c, *rest)


from ._common import public  # noqa: E402

native_channel_shuffle = channel_shuffle

__all__ = public(globals())
