"""``x.view(dtype)``: the same memory read as another dtype (no copy, no gradient)."""

from __future__ import annotations

from .. import backend
from .. import dtypes as D
from ..autograd import Function
from ..errors import ShapeError
from ..tensor import Tensor


class ViewDtype(Function):
    differentiable = False  # NOTE: as in PyTorch, the view never requires grad
    view = True
    complex_ok = True

    def forward(self, a, npdt):
        return a.view(npdt)


def view_dtype(x: Tensor, dtype) -> Tensor:
    """``x``'s bytes as ``dtype``, with PyTorch's rules: a dtype of another element size
    scales the last dim, which must be contiguous (and, to a wider type, divisible).

    Args:
        x: the tensor.
        dtype: the dtype to read its memory as.

    Example: ``mg.tensor([1.0]).view(mg.int32)`` gives ``tensor([1065353216], dtype=...)``
    """
    dt = D.from_any(dtype)
    if dt._f8 and x._device.type != "cpu":
        from .._float8 import device_error

        raise device_error(dt.name, x._device)
    a = x._data
    old, new = a.dtype.itemsize, dt.itemsize
    if old != new:
        what = f"to view {x.dtype.name} as {dt.name} (different element sizes)"
        if a.ndim == 0:
            raise ShapeError(f"view: self.dim() cannot be 0 {what}; reshape it first: x[None]")
        if a.strides[-1] != old and a.shape[-1] != 1:
            raise ShapeError(f"view: self.stride(-1) must be 1 {what}, but got "
                             f"{a.strides[-1] // old}; make it contiguous first")  # fmt: skip
        if new > old:
            k = new // old
            if a.shape[-1] % k:
                raise ShapeError(f"view: self.size(-1) must be divisible by {k} {what}, "
                                 f"but got {a.shape[-1]}")  # fmt: skip
            first, start = backend.address(a)
            if (first - start) % new:
                raise ShapeError(f"view: self.storage_offset() must be divisible by {k} "
                                 f"{what}, but got {(first - start) // old}")  # fmt: skip
            for i, s in enumerate(a.strides[:-1]):
                if s % new:
                    raise ShapeError(f"view: self.stride({i}) must be divisible by {k} "
                                     f"{what}, but got {s // old}")  # fmt: skip
    return ViewDtype.apply(x, dt.np)
