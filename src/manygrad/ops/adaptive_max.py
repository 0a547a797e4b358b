"""Adaptive max pooling (adaptive_max_pool1d/2d/3d): the maximum over PyTorch's adaptive
windows ``[floor(i * n / o), ceil((i + 1) * n / o))`` of each pooled dim.

Box maxima are separable, so each dim is pooled in turn: its windows are gathered
(``index_select``, short windows padded by repeating their last element, which leaves the
maximum and, summed back, its gradient unchanged) and reduced with ``amax``. Gradients, and
theirs, come from those ops.
"""

# ruff: noqa: A002  (`input` is PyTorch's argument name)
from __future__ import annotations

from .. import backend
from ..errors import ShapeError
from ..tensor import Tensor
from .elementwise import _tie
from .indexing import index_select
from .reduce import amax


def _windows(xp, n: int, o: int):
    i = xp.arange(o)
    start, end = (i * n) // o, ((i + 1) * n + o - 1) // o
    width = int((end - start).max())
    idx = start.reshape(-1, 1) + xp.arange(width).reshape(1, -1)
    return xp.minimum(idx, (end - 1).reshape(-1, 1)), width


def _pool_dim(x: Tensor, d: int, o: int, coords: list | None):
    """Pool dim ``d`` to ``o``; with ``coords`` (source positions per pooled dim, arrays of
    x's shape), also carry them to the output and append dim ``d``'s."""
    n = x.shape[d]
    xp = backend.array_module(x._data)
    idx, width = _windows(xp, n, o)
    g = index_select(x, d, Tensor._wrap(idx.reshape(-1), x._device))
    shape = tuple(g.shape[:d]) + (o, width) + tuple(g.shape[d + 1 :])
    g = g.reshape(shape)
    y = amax(g, d + 1)
    if coords is not None:
        # NOTE: the first maximum of each window, as PyTorch's indices
        sel = xp.expand_dims(g._data.argmax(axis=d + 1), d + 1)
        for i, c in enumerate(coords):
            cw = xp.take(c, idx.reshape(-1), axis=d).reshape(shape)
            coords[i] = xp.take_along_axis(cw, sel, axis=d + 1).squeeze(d + 1)
        pos = xp.broadcast_to(idx.reshape((1,) * d + (o, width) + (1,) * (x.ndim - d - 1)), shape)
        coords.append(xp.take_along_axis(pos, sel, axis=d + 1).squeeze(d + 1))
    return y


def _adaptive_max(op: str, nd: int, input: Tensor, output_size, return_indices: bool):
    if input.ndim not in (nd + 1, nd + 2):
        raise ShapeError(f"{op}: expected an input of {nd + 1} or {nd + 2} dims, got shape "
                         f"{tuple(input.shape)}")  # fmt: skip
    size = (output_size,) * nd if isinstance(output_size, int) or output_size is None else tuple(
        output_size)  # fmt: skip
    if len(size) != nd:
        raise ValueError(f"{op}: output_size must be an int or a tuple of {nd}, got {output_size}")
    spatial = input.shape[input.ndim - nd :]
    size = tuple(n if o is None else o for o, n in zip(size, spatial))
    if min(size) < 1 or min(spatial) < 1:
        raise ShapeError(f"{op}: cannot pool input of shape {tuple(input.shape)} to {size}")
    x = input
    coords = [] if return_indices else None
    for k in range(nd):
        x = _pool_dim(x, input.ndim - nd + k, size[k], coords)
    x = _tie(x, input)  # NOTE: in double backward the input gets zeros, as PyTorch's
    if not return_indices:
        return x
    flat = 0
    for c, stride in zip(coords, _strides(spatial)):
        flat = flat + c * stride
    return x, Tensor._wrap(flat.astype("int64"), x._device)


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
