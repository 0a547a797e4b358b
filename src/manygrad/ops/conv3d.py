"""3-d (video, volume) convolutions: conv3d and conv_transpose3d on (N, C, D, H, W).

Both reduce to one 2-d convolution each: conv3d stacks the ``kD`` depth-shifted views of
the input into channels (ordered per group as (kD, C/groups), matching the weight reshaped
to (O, kD * C/groups, kH, kW)) and runs conv2d over N * D_out images; conv_transpose3d runs
one conv_transpose2d whose output channels are (groups, kD, C_out/groups) and adds each
depth tap's slab at its strided place. Gradients (and theirs) come from conv2d,
conv_transpose2d, pad, stack and reshape.
"""

# ruff: noqa: A002  (`input` is PyTorch's argument name)
from __future__ import annotations

from ..errors import ShapeError
from ..tensor import Tensor
from ._common import check_same_dtype
from .arrange import pad
from .conv import conv2d, conv_transpose2d
from .movement import cat, stack


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


def _dilate(z: Tensor, dim: int, step: int) -> Tensor:
    """Insert ``step - 1`` zeros between the entries of dim ``dim``."""
    if step == 1 or z.shape[dim] == 0:
        return z
    shape = list(z.shape)
    zeros = _zeros_like(z, shape[: dim + 1] + [step - 1] + shape[dim + 1 :])
    both = cat([z.unsqueeze(dim + 1), zeros], dim + 1)
    shape[dim] *= step
    out = both.reshape(shape)
    return out.narrow(dim, 0, (z.shape[dim] - 1) * step + 1)


def _zeros_like(z: Tensor, shape) -> Tensor:
    from .. import creation

    return creation.zeros(*shape, dtype=z.dtype, device=z.device)


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
    y = _dilate(y.reshape(n, di, g, kd, cg, ho, wo), 1, s[0])  # (N, D', g, kD, C/g, Ho, Wo)
    full = (di - 1) * s[0] + d[0] * (kd - 1) + 1
    out = None
    for i in range(kd):
        tap = pad(y[:, :, :, i], (0, 0, 0, 0, 0, 0, 0, 0, i * d[0], full - y.shape[1] - i * d[0]))
        out = tap if out is None else out + tap
    size = full - 2 * p[0] + op_[0]
    if size < 1:
        raise ShapeError(f"{op}: output depth {size} is too small for input {tuple(x.shape)}")
    out = pad(out, (0, 0, 0, 0, 0, 0, 0, 0, -p[0], size - (full - p[0])))
    out = out.reshape(n, size, g * cg, ho, wo).permute(0, 2, 1, 3, 4)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1, 1)
    return out if batched else out.squeeze(0)


from ._common import public  # noqa: E402

__all__ = public(globals())
