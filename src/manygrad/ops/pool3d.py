"""3-d pooling on (N, C, D, H, W): max_pool3d, avg_pool3d, adaptive_avg_pool3d.

Box pooling is separable: the window of a 3-d pool is the product of its per-dim windows,
so each op pools (H, W) with the 2-d op and then D with a 1-d pass. For max the maximum of
maxima is the maximum (the gradient reaches the same element); for averages the divisor
(with or without padding, with ceil_mode) is the product of the per-dim counts, as PyTorch
computes it. Gradients (and theirs) come from the 2-d ops and reshapes.
"""

# ruff: noqa: A002  (`input` is PyTorch's argument name)
from __future__ import annotations

from .. import backend
from ..errors import ShapeError
from ..tensor import Tensor
from .pool import adaptive_avg_pool1d, adaptive_avg_pool2d, avg_pool2d, max_pool1d, max_pool2d


def _triple(v, op: str, name: str) -> tuple:
    v = (v,) * 3 if isinstance(v, int) else tuple(v)
    if len(v) != 3:
        raise ValueError(f"{op}: {name} must be an int or a tuple of 3 ints, got {v}")
    return v


def _batched(op: str, x: Tensor):
    if x.ndim not in (4, 5):
        raise ShapeError(f"{op}: expected an input of 4 dims (C, D, H, W) or 5 dims "
                         f"(N, C, D, H, W), got shape {tuple(x.shape)}")  # fmt: skip
    return (x, True) if x.ndim == 5 else (x.unsqueeze(0), False)


def _over_depth(y: Tensor, fn):
    """Apply a 1-d pool ``fn`` on (N, C', L) over the depth of (N, C, D, H, W)."""
    n, c, d, h, w = y.shape
    z = fn(y.permute(0, 1, 3, 4, 2).reshape(n, c * h * w, d))
    return z.reshape(n, c, h, w, z.shape[-1]).permute(0, 1, 4, 2, 3)


def _over_planes(x: Tensor, fn):
    n, c, d, h, w = x.shape
    y = fn(x.reshape(n, c * d, h, w))
    return y.reshape(n, c, d, y.shape[-2], y.shape[-1])


def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False) -> Tensor:  # fmt: skip
    """Max over sliding windows of an (N, C, D, H, W) input.

    Args: kernel_size; stride (default kernel_size); padding (implicit -inf); dilation;
    ceil_mode; return_indices (also return flat indices into D * H * W).

    Example: ``F.max_pool3d(mg.randn(1, 2, 8, 8, 8), 2)``
    """
    op = "max_pool3d"
    x, batched = _batched(op, input)
    k = _triple(kernel_size, op, "kernel_size")
    s = k if stride is None or stride == () else _triple(stride, op, "stride")
    p, d = _triple(padding, op, "padding"), _triple(dilation, op, "dilation")
    if not return_indices:
        y = _over_planes(x, lambda t: max_pool2d(t, k[1:], s[1:], p[1:], d[1:], ceil_mode))
        y = _over_depth(y, lambda t: max_pool1d(t, k[0], s[0], p[0], d[0], ceil_mode))
        return y if batched else y.squeeze(0)
    n, c, dd, h, w = x.shape
    y1, i1 = max_pool2d(x.reshape(n, c * dd, h, w), k[1:], s[1:], p[1:], d[1:], ceil_mode, True)
    ho, wo = y1.shape[-2:]
    y1 = y1.reshape(n, c, dd, ho, wo)
    y2, i2 = max_pool1d(y1.permute(0, 1, 3, 4, 2).reshape(n, c * ho * wo, dd), k[0], s[0],
                        p[0], d[0], ceil_mode, True)  # fmt: skip
    do = y2.shape[-1]
    y = y2.reshape(n, c, ho, wo, do).permute(0, 1, 4, 2, 3)
    xp = backend.array_module(i1._data)
    with backend.device_scope(x._device):
        depth = i2._data.reshape(n, c, ho, wo, do).transpose(0, 1, 4, 2, 3)  # chosen planes
        plane = xp.take_along_axis(i1._data.reshape(n, c, dd, ho, wo), depth, axis=2)
        idx = xp.ascontiguousarray(depth * (h * w) + plane)
    idx = Tensor._wrap(idx, x._device)
    return (y, idx) if batched else (y.squeeze(0), idx.squeeze(0))


def max_pool3d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = True):  # fmt: skip
    """``max_pool3d(..., return_indices=True)``: (values, indices)."""
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:  # fmt: skip
    """Mean over sliding windows of an (N, C, D, H, W) input.

    Args: kernel_size; stride (default kernel_size); padding (zeros); ceil_mode;
    count_include_pad (default True); divisor_override (divide the sums by this instead).

    Example: ``F.avg_pool3d(mg.randn(1, 2, 8, 8, 8), 2)``
    """
    op = "avg_pool3d"
    if getattr(input, "is_quantized", False):  # NOTE: PyTorch's quantized kernel
        from ..ao import _qops

        return _qops.avg_pool3d(input, kernel_size, stride, padding, ceil_mode,
                                count_include_pad, divisor_override)  # fmt: skip
    x, batched = _batched(op, input)
    k = _triple(kernel_size, op, "kernel_size")
    s = k if stride is None or stride == () else _triple(stride, op, "stride")
    p = _triple(padding, op, "padding")
    one = 1 if divisor_override else None  # sums per stage, divided once at the end
    y = _over_planes(x, lambda t: avg_pool2d(t, k[1:], s[1:], p[1:], ceil_mode,
                                             count_include_pad, one))  # fmt: skip

    def depth(t):  # a (1, kD) 2-d pool over (N, C', 1, D)
        r = avg_pool2d(t.unsqueeze(2), (1, k[0]), (1, s[0]), (0, p[0]), ceil_mode,
                       count_include_pad, one)  # fmt: skip
        return r.squeeze(2)

    y = _over_depth(y, depth)
    if divisor_override:
        y = y / divisor_override
    return y if batched else y.squeeze(0)


def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor:
    """Average pooling of (N, C, D, H, W) to a fixed (Do, Ho, Wo); None keeps that size.

    Example: ``F.adaptive_avg_pool3d(mg.randn(1, 2, 5, 7, 7), 1)``
    """
    op = "adaptive_avg_pool3d"
    if getattr(input, "is_quantized", False):  # NOTE: PyTorch's quantized kernel
        from ..ao import _qops

        return _qops.adaptive_avg_pool(input, output_size, 3)
    x, batched = _batched(op, input)
    size = _triple(output_size, op, "output_size")
    size = tuple(n if o is None else o for o, n in zip(size, x.shape[2:]))
    y = _over_planes(x, lambda t: adaptive_avg_pool2d(t, size[1:]))
    y = _over_depth(y, lambda t: adaptive_avg_pool1d(t, size[0]))
    return y if batched else y.squeeze(0)


from ._common import public  # noqa: E402

__all__ = public(globals())
