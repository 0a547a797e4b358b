"""Fractional max pooling (Graham, 2014): ``F.fractional_max_pool2d`` / ``3d``.

Each pooling window starts at a pseudo-random offset, so that an output size that is not a
divisor of the input size (a ratio such as 0.7) still covers the input: along a dim of
``n_in`` inputs, ``n_out`` outputs and windows of ``k``, window ``i`` starts at
``int((i + u) * a) - int(u * a)`` with ``a = (n_in - k) / (n_out - 1)``, the last at
``n_in - k``, for one ``u`` in [0, 1) per sample, channel and dim (``_random_samples``).
The starts are computed in the input's dtype, as PyTorch does, so that given the same
samples the windows are PyTorch's. The maximum of each window is the first of equals in
row-major order; gradients reach it.
"""

from __future__ import annotations

from .. import backend
from .. import creation as C
from ..errors import ShapeError
from ..tensor import Tensor

__all__ = ["fractional_max_pool2d", "fractional_max_pool3d"]


def _tuple(v, n: int, name: str):
    if v is None:
        return None
    t = (v,) * n if isinstance(v, (int, float)) else tuple(v)
    if len(t) != n:
        raise ValueError(f"fractional_max_pool{n}d: {name} must have {n} values, got {v}")
    return t


def _starts(xp, u, n_in: int, n_out: int, k: int, dtype):
    """Window starts ``(N, C, n_out)`` from samples ``u`` ``(N, C)``, in ``dtype``."""
    out = xp.empty(u.shape + (n_out,), dtype=xp.int64)
    if n_out > 1:
        alpha = dtype.type(n_in - k) / dtype.type(n_out - 1)
        i = xp.arange(n_out - 1, dtype=dtype)
        u = u.astype(dtype)
        first = ((i + u[..., None]) * alpha).astype(xp.int64)
        out[..., :-1] = first - (u * alpha).astype(xp.int64)[..., None]
    out[..., -1] = n_in - k
    return out


def _fractional(x: Tensor, nd: int, kernel_size, output_size, output_ratio, return_indices,
                samples):  # fmt: skip
    op = f"fractional_max_pool{nd}d"
    if x.ndim not in (nd + 1, nd + 2):
        raise ShapeError(f"{op}: expected an input of {nd + 1} or {nd + 2} dims, got shape "
                         f"{tuple(x.shape)}")  # fmt: skip
    batched = x.ndim == nd + 2
    if not batched:
        x = x.unsqueeze(0)
    k = _tuple(kernel_size, nd, "kernel_size")
    spatial = tuple(x.shape[2:])
    if output_size is None and output_ratio is None:
        raise ValueError(f"{op} requires specifying either an output_size or an output_ratio")
    if output_size is None:
        ratio = _tuple(output_ratio, nd, "output_ratio")
        out = tuple(int(s * r) for s, r in zip(spatial, ratio))
    else:
        out = _tuple(output_size, nd, "output_size")
    # NOTE: PyTorch's checks, in its order; its 3-d kernel wants output + kernel - 1 strictly
    # below the input size (a depth-1 volume cannot be pooled), its 2-d kernel at most equal
    dims = ((0, "height"), (1, "width")) if nd == 2 else ((0, "time"), (2, "width"), (1, "height"))
    for d, name in dims:
        excess = out[d] + k[d] - 1 - spatial[d]
        if excess > 0 or (nd == 3 and excess == 0):
            where = op if nd == 2 else f"{op}_out"
            raise ShapeError(f"{where}(): pool {name} {k[d]} too large relative to input "
                             f"{name} {spatial[d]}")  # fmt: skip
    n, c = x.shape[0], x.shape[1]
    xp = backend.array_module(x._data)
    dtype = xp.dtype(x._data.dtype)
    if samples is None:
        samples = C.rand(n, c, nd, dtype=x.dtype, device=x.device)
    if tuple(samples.shape) != (n, c, nd):
        raise ShapeError(f"{op}: _random_samples must have shape {(n, c, nd)}, got "
                         f"{tuple(samples.shape)}")  # fmt: skip
    u = samples.detach()._data
    # NOTE: PyTorch's sample order: (W, H) in 2-d, (T, H, W) in 3-d
    order = (1, 0) if nd == 2 else (0, 1, 2)
    with backend.device_scope(x._device):
        starts = [_starts(xp, u[..., order[d]], spatial[d], out[d], k[d], dtype) for d in range(nd)]
        # the flat input index of every (output position, window offset) pair
        strides = [1] * nd
        for d in range(nd - 2, -1, -1):
            strides[d] = strides[d + 1] * spatial[d + 1]
        idx = xp.zeros((n, c) + out + k, dtype=xp.int64)
        for d in range(nd):
            shape_o = [n, c] + [1] * nd + [1] * nd
            shape_o[2 + d] = out[d]
            shape_k = [1, 1] + [1] * nd + [1] * nd
            shape_k[2 + nd + d] = k[d]
            pos = starts[d].reshape(shape_o) + xp.arange(k[d]).reshape(shape_k)
            idx = idx + pos * strides[d]
    flat = x.reshape(n, c, -1)
    m = 1
    for o in out:
        m *= o
    kk = 1
    for v in k:
        kk *= v
    idx_t = Tensor._wrap(idx.reshape(n, c, m * kk), x._device)
    windows = flat.gather(2, idx_t).reshape(n, c, m, kk)
    values, arg = windows.max(-1)
    values = values.reshape((n, c) + out)
    if not batched:
        values = values.squeeze(0)
    if not return_indices:
        return values
    with backend.device_scope(x._device):
        where = xp.take_along_axis(idx.reshape(n, c, m, kk), arg._data[..., None], -1)[..., 0]
    indices = Tensor._wrap(where.reshape((n, c) + out), x._device)
    return values, (indices if batched else indices.squeeze(0))


def fractional_max_pool2d(input: Tensor, kernel_size, output_size=None, output_ratio=None,  # noqa: A002
                          return_indices: bool = False, _random_samples=None):  # fmt: skip
    """Max pooling over pseudo-randomly placed ``kernel_size`` windows to ``output_size``
    (or ``output_ratio`` of the input); ``return_indices`` gives flat ``H * W`` indices."""
    return _fractional(input, 2, kernel_size, output_size, output_ratio, return_indices,
                       _random_samples)  # fmt: skip


def fractional_max_pool3d(input: Tensor, kernel_size, output_size=None, output_ratio=None,  # noqa: A002
                          return_indices: bool = False, _random_samples=None):  # fmt: skip
    """``fractional_max_pool2d`` over ``(D, H, W)``."""
    return _fractional(input, 3, kernel_size, output_size, output_ratio, return_indices,
                       _random_samples)  # fmt: skip
