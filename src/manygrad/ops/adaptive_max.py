"""Adaptive max pooling (adaptive_max_pool1d/2d/3d): the maximum over PyTorch's adaptive
windows ``[floor(i * n / o), ceil((i + 1) * n / o))`` of each pooled dim.

The flat positions of every window's elements are laid out as one (outputs, window) table
(short windows padded by repeating their last position, after the original in raster order);
``argmax`` over the window picks the first maximum in raster order, as PyTorch's kernel
does (ties included), and the output is a ``gather`` of those positions, so gradients, and
theirs, come from that op.
"""

# ruff: noqa: A002  (`input` is PyTorch's argument name)
from __future__ import annotations

from .. import backend
from ..errors import ShapeError
from ..tensor import Tensor
from .elementwise import _tie
from .indexing import gather


def _windows(xp, n: int, o: int):
    """(o, width) positions along one dim of each window (short ones repeat their last)."""
    i = xp.arange(o)
    start, end = (i * n) // o, ((i + 1) * n + o - 1) // o
    width = max(-(-((k + 1) * n) // o) - (k * n) // o for k in range(o))
    idx = start.reshape(-1, 1) + xp.arange(width).reshape(1, -1)
    return xp.minimum(idx, (end - 1).reshape(-1, 1))


def _positions(xp, spatial, size):
    """(prod(size), window) flat positions into ``spatial`` of each output's window,
    each window in raster order."""
    nd = len(spatial)
    table = 0
    for k, (n, o, stride) in enumerate(zip(spatial, size, _strides(spatial))):
        idx = _windows(xp, n, o)  # (o, width): dims k and nd + k of the table
        shape = [1] * (2 * nd)
        shape[k], shape[nd + k] = idx.shape
        table = table + idx.reshape(shape) * stride
    n_out = 1
    for o in size:
        n_out *= o
    return table.reshape(n_out, -1)


def _adaptive_max(op: str, nd: int, input: Tensor, output_size, return_indices: bool):
    if input.ndim not in (nd + 1, nd + 2):
        raise ShapeError(f"{op}: expected an input of {nd + 1} or {nd + 2} dims, got shape "
                         f"{tuple(input.shape)}")  # fmt: skip
    size = (output_size,) * nd if isinstance(output_size, int) or output_size is None else tuple(
        output_size)  # fmt: skip
    if len(size) != nd:
        raise ValueError(f"{op}: output_size must be an int or a tuple of {nd}, got {output_size}")
    spatial = tuple(input.shape[input.ndim - nd :])
    size = tuple(n if o is None else o for o, n in zip(size, spatial))
    if min(size) < 1 or min(spatial) < 1:
        raise ShapeError(f"{op}: cannot pool input of shape {tuple(input.shape)} to {size}")
    xp = backend.array_module(input._data)
    lead = tuple(input.shape[: input.ndim - nd])
    pos = _positions(xp, spatial, size)  # (O, W)
    flat = input.reshape(*lead, -1)
    vals = xp.take(flat._data, pos, axis=-1)  # (..., O, W)
    # NOTE: the first maximum in the window's raster order, as PyTorch's kernel; a window
    # holding NaN picks its last NaN, as that kernel does
    first = vals.argmax(axis=-1)
    if vals.dtype.kind == "f":
        nan = xp.isnan(vals)
        last_nan = vals.shape[-1] - 1 - nan[..., ::-1].argmax(axis=-1)
        first = xp.where(nan.any(axis=-1), last_nan, first)
    first = xp.expand_dims(first, -1)
    picked = xp.take_along_axis(xp.broadcast_to(pos, vals.shape), first, axis=-1)[..., 0]
    idx = Tensor._wrap(picked.astype("int64"), input._device)
    y = gather(flat, flat.ndim - 1, idx).reshape(*lead, *size)
    y = _tie(y, input)  # NOTE: in double backward the input gets zeros, as PyTorch's
    if not return_indices:
        return y
    return y, idx.reshape(*lead, *size)


def _strides(sizes) -> list:
    out, acc = [], 1
    for v in reversed(sizes):
        out.append(acc)
        acc *= v
    return out[::-1]


@backend.on_tensor_device
def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False) -> Tensor:
    """Max pooling of (N, C, L) to a fixed length; ``return_indices`` also gives the flat
    positions of the maxima. Example: ``F.adaptive_max_pool1d(x, 4)``"""
    return _adaptive_max("adaptive_max_pool1d", 1, input, output_size, return_indices)


@backend.on_tensor_device
def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False) -> Tensor:
    """Max pooling of (N, C, H, W) to a fixed (Ho, Wo); None keeps that size.

    Example: ``F.adaptive_max_pool2d(mg.randn(2, 3, 7, 9), (2, 3))``
    """
    return _adaptive_max("adaptive_max_pool2d", 2, input, output_size, return_indices)


@backend.on_tensor_device
def adaptive_max_pool3d(input: Tensor, output_size, return_indices: bool = False) -> Tensor:
    """Max pooling of (N, C, D, H, W) to a fixed (Do, Ho, Wo)."""
    return _adaptive_max("adaptive_max_pool3d", 3, input, output_size, return_indices)


def adaptive_max_pool1d_with_indices(input: Tensor, output_size, return_indices: bool = True):
    """``adaptive_max_pool1d(..., return_indices=True)``: (values, indices)."""
    return adaptive_max_pool1d(input, output_size, True)


def adaptive_max_pool2d_with_indices(input: Tensor, output_size, return_indices: bool = True):
    """``adaptive_max_pool2d(..., return_indices=True)``: (values, indices)."""
    return adaptive_max_pool2d(input, output_size, True)


def adaptive_max_pool3d_with_indices(input: Tensor, output_size, return_indices: bool = True):
    """``adaptive_max_pool3d(..., return_indices=True)``: (values, indices)."""
    return adaptive_max_pool3d(input, output_size, True)


from ._common import public  # noqa: E402

__all__ = public(globals())
