"""Smaller PyTorch ops built on the others: ``isin``, ``unravel_index``, ``index_reduce``,
``sum_to_size``, ``gradient`` (finite differences), ``angle`` and ``nextafter`` of reals.

Example:
    >>> mg.isin(mg.tensor([1, 2, 3]), mg.tensor([2, 5]))   # [False, True, False]
"""

from __future__ import annotations

import math
import warnings

from .. import backend
from ..autograd import Function, no_grad
from ..errors import ShapeError
from ..tensor import Tensor
from ._common import public
from .indexing import _dim


def _as_tensor(x, like: Tensor | None = None) -> Tensor:
    if isinstance(x, Tensor):
        return x
    from ..creation import tensor

    return tensor(x, device=like.device if like is not None else None)


class Angle(Function):
    changes_dtype = True

    def forward(self, x):
        xp = backend.array_module(x)
        if x.dtype.kind not in "fV":
            x = x.astype("float32")
        out = xp.where(x < 0, x.dtype.type(math.pi), x.dtype.type(0))
        return xp.where(xp.isnan(x), x, out)

    def backward(self, g):
        return backend.array_module(g).zeros_like(g)


def angle(input: Tensor) -> Tensor:  # noqa: A002
    """The argument of each (real) element: 0 for values >= 0, pi for negative ones, NaN for
    NaN; integers give float32. Its gradient is 0. Complex elements give their argument."""
    if input.is_complex():
        from .complex_ops import complex_angle

        return complex_angle(input)
    return Angle.apply(input)


def nextafter(input: Tensor, other) -> Tensor:  # noqa: A002
    """The next floating-point value after ``input`` towards ``other`` (no gradient)."""
    from .elementwise import _float_pair

    input, other = _float_pair(input, _as_tensor(other, input))  # noqa: A001
    xp = backend.array_module(input._data)
    with no_grad(), backend.device_scope(input.device):
        return Tensor._wrap(xp.nextafter(input._data, other._data), input.device)


def isin(elements, test_elements=None, *, assume_unique: bool = False, invert: bool = False,
         test_element=None):  # fmt: skip
    """Whether each element of ``elements`` occurs in ``test_elements`` (bool, the shape of
    ``elements``; either may be a scalar). A scalar may be named ``test_element``, as in
    PyTorch's overload for one."""
    if (test_elements is None) == (test_element is None):
        raise TypeError(
            "isin: give test_elements (a tensor or a scalar), or test_element (a scalar)"
        )
    if test_elements is None:
        test_elements = test_element
    like = elements if isinstance(elements, Tensor) else test_elements
    e, t = _as_tensor(elements, like), _as_tensor(test_elements, like)
    xp = backend.array_module(e._data)
    with backend.device_scope(e.device):
        out = xp.isin(e._data, t._data.reshape(-1), assume_unique=assume_unique, invert=invert)
    return Tensor._wrap(out, e.device)


def unravel_index(indices, shape) -> tuple:
    """The coordinates in a tensor of ``shape`` of flat (C-order) ``indices``: a tuple of
    int64 tensors, one per dim, each of ``indices``' shape."""
    idx = _as_tensor(indices)
    if idx.is_floating_point() or idx.dtype.name == "bool":
        raise TypeError(f"unravel_index: expected integer indices, got {idx.dtype.name}")
    shape = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"unravel_index: sizes must be non-negative, got {list(shape)}")
    idx, out = idx.long(), []
    for s in reversed(shape):
        out.append(idx.remainder(s) if s else idx * 0)
        idx = idx.div(s, rounding_mode="floor") if s else idx
    return tuple(reversed(out))


_BETA_WARNED: list = []


def index_reduce(input: Tensor, dim: int, index, source: Tensor, reduce: str, *,  # noqa: A002
                 include_self: bool = True) -> Tensor:  # fmt: skip
    """A copy of ``input`` with the slices of ``source`` combined by ``reduce`` (``prod``,
    ``mean``, ``amax``, ``amin``) into the slices ``index`` names along ``dim``."""
    from .scatter import scatter_reduce

    if not _BETA_WARNED:
        _BETA_WARNED.append(True)  # NOTE: once per process, as PyTorch's TORCH_WARN_ONCE
        warnings.warn("index_reduce() is in beta and the API may change at any time.",
                      UserWarning, stacklevel=3)  # fmt: skip
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise ValueError(
            f"index_reduce: reduce must be one of prod, mean, amax, amin, got {reduce!r}"
        )
    d = _dim(dim, source.ndim, "index_reduce")
    index = _as_tensor(index, input)
    if index.ndim != 1 or index.shape[0] != source.shape[d]:
        raise ShapeError(
            f"index_reduce: index needs one entry per slice of source along dim {d} "
            f"({source.shape[d]}), got shape {tuple(index.shape)}"
        )
    shape = [1] * source.ndim
    shape[d] = -1
    full = index.reshape(*shape).expand(*source.shape)
    return scatter_reduce(input, d, full, source, reduce, include_self=include_self)


def sum_to_size(input: Tensor, *size) -> Tensor:  # noqa: A002
    """The sum of ``input`` down to ``size``, a shape that broadcasts to ``input``'s."""
    size = tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else size
    lead = input.ndim - len(size)
    bad = lead < 0 or any(s != 1 and s != n for s, n in zip(size, input.shape[lead:]))
    if bad:
        raise ShapeError(f"sum_to_size: size {list(size)} is not expandable to size "
                         f"{list(input.shape)}")  # fmt: skip
    out = input.sum(tuple(range(lead))) if lead else input
    dims = tuple(i for i, (s, n) in enumerate(zip(size, out.shape)) if s == 1 and n != 1)
    return out.sum(dims, keepdim=True) if dims else out


def _coords(spacing, dims: list[int], x: Tensor) -> list:
    """Per dim: a float step, or a 1-d tensor of coordinates."""
    if isinstance(spacing, (int, float)):
        return [float(spacing)] * len(dims)
    items = list(spacing)
    if len(items) == 1 and len(dims) > 1:
        items = items * len(dims)
    if len(items) != len(dims):
        raise ValueError(
            f"gradient: expected spacing to be unspecified, a scalar or a list of length "
            f"{len(dims)} (one per dim), got a list of length {len(items)}"
        )
    out = []
    for d, s in zip(dims, items):
        if isinstance(s, Tensor) and s.ndim == 1:
            if s.shape[0] != x.shape[d]:
                raise ShapeError(
                    f"gradient: the coordinates for dim {d} have {s.shape[0]} entries, the "
                    f"input has {x.shape[d]}"
                )
            out.append(s.to(x.device).to(x.dtype))
        else:
            out.append(float(s))
    return out


def _diff1(f: Tensor, d: int, h, order: int) -> Tensor:
    n = f.shape[d]

    def at(i, k=1):
        return f.narrow(d, i % n, k)

    if isinstance(h, float):
        mid = (f.narrow(d, 2, n - 2) - f.narrow(d, 0, n - 2)) / (2 * h)
        if order == 1:
            lo, hi = (at(1) - at(0)) / h, (at(-1) - at(-2)) / h
        else:
            lo = (-1.5 * at(0) + 2 * at(1) - 0.5 * at(2)) / h
            hi = (0.5 * at(-3) - 2 * at(-2) + 1.5 * at(-1)) / h
        return _cat([lo, mid, hi], d)
    shape = [1] * f.ndim
    shape[d] = -1
    dx = (h[1:] - h[:-1]).reshape(*shape)
    a, b = dx.narrow(d, 0, n - 2), dx.narrow(d, 1, n - 2)  # NOTE: h_s and h_d
    mid = (a**2 * f.narrow(d, 2, n - 2) + (b**2 - a**2) * f.narrow(d, 1, n - 2)
           - b**2 * f.narrow(d, 0, n - 2)) / (a * b * (a + b))  # fmt: skip
    if order == 1:
        lo = (at(1) - at(0)) / dx.narrow(d, 0, 1)
        hi = (at(-1) - at(-2)) / dx.narrow(d, n - 2, 1)
    else:
        d1, d2 = dx.narrow(d, 0, 1), dx.narrow(d, 1, 1)
        lo = (-(2 * d1 + d2) / (d1 * (d1 + d2)) * at(0) + (d1 + d2) / (d1 * d2) * at(1)
              - d1 / (d2 * (d1 + d2)) * at(2))  # fmt: skip
        d1, d2 = dx.narrow(d, n - 3, 1), dx.narrow(d, n - 2, 1)
        hi = (d2 / (d1 * (d1 + d2)) * at(-3) - (d1 + d2) / (d1 * d2) * at(-2)
              + (2 * d2 + d1) / (d2 * (d1 + d2)) * at(-1))  # fmt: skip
    return _cat([lo, mid, hi], d)


def _cat(parts, d):
    from .movement import cat

    return cat(parts, d)


def gradient(input: Tensor, *, spacing=1, dim=None, edge_order: int = 1) -> tuple:  # noqa: A002
    """Derivatives of ``input`` along each dim by central differences (one-sided at the
    edges, of ``edge_order`` 1 or 2), as a tuple of tensors of ``input``'s shape.

    Args:
        spacing: a step for every dim, one step per dim, or one 1-d tensor of coordinates
            per dim (default 1).
        dim: an int or a list of dims (default all).
        edge_order: 1 or 2.
    """
    if edge_order not in (1, 2):
        raise ValueError(f"gradient: edge_order must be 1 or 2, got {edge_order}")
    dims = list(range(input.ndim)) if dim is None else [dim] if isinstance(dim, int) else dim
    dims = [_dim(d, input.ndim, "gradient") for d in dims]
    x = input if input.is_floating_point() else input.float()
    out = []
    for d, h in zip(dims, _coords(spacing, dims, x)):
        if x.shape[d] < edge_order + 1:
            raise ValueError(
                f"gradient: each dim needs at least edge_order + 1 = {edge_order + 1} "
                f"points, dim {d} has {x.shape[d]}"
            )
        out.append(_diff1(x, d, h, edge_order))
    return tuple(out)


__all__ = public(globals())
