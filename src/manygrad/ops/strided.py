"""``as_strided``: a view of a tensor's memory with sizes and strides given in elements.

The positions are taken in the input's own memory (a contiguous tensor), so
``x.as_strided((n - k + 1, k), (1, 1))`` gives the sliding windows of length ``k`` of a 1-d
``x`` without copying. Windows may overlap: the gradient adds up every use of an element.

Example:
    >>> x = mg.arange(5.0)
    >>> x.as_strided((4, 2), (1, 1))      # [[0, 1], [1, 2], [2, 3], [3, 4]]
"""

from __future__ import annotations

from .. import backend
from ..autograd import Function
from ..errors import ShapeError
from ..tensor import Tensor


def _positions(xp, size, stride, offset):
    """Flat index of each element of the strided view (int64, of shape ``size``)."""
    pos = xp.full(tuple(size), offset, dtype="int64")
    for d, (n, s) in enumerate(zip(size, stride)):
        shape = [1] * len(size)
        shape[d] = n
        pos = pos + (xp.arange(n, dtype="int64") * s).reshape(shape)
    return pos


class AsStrided(Function):
    view = True

    def forward(self, x, size, stride, offset):
        self.shape, self.args = x.shape, (size, stride, offset)
        st = backend.array_module(x).lib.stride_tricks
        flat = x.reshape(-1)
        return st.as_strided(flat[offset:], size, tuple(s * x.itemsize for s in stride))

    def backward(self, g):
        xp = backend.array_module(g)
        pos = _positions(xp, *self.args)
        out = xp.zeros(_numel(self.shape), g.dtype)
        backend.index_add(out, pos.reshape(-1), g.reshape(-1))
        return out.reshape(self.shape)


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def as_strided(input: Tensor, size, stride, storage_offset=None) -> Tensor:
    """A view of ``input``'s memory: ``size`` and ``stride`` in elements, from ``storage_offset``.

    Args:
        size, stride: sequences of the same length (strides >= 0).
        storage_offset: elements from the start of ``input``'s memory (default ``input``'s own, 0).

    The input must be contiguous (``input.contiguous()`` first otherwise), and every position
    must lie inside it.
    """
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride):
        raise ShapeError(
            f"as_strided: size {list(size)} and stride {list(stride)} need the same length"
        )
    if not input.is_contiguous():
        raise ShapeError(
            "as_strided: manygrad takes positions in the input's own memory, which needs a "
            "contiguous tensor; call x.contiguous().as_strided(...)"
        )
    off = 0 if storage_offset is None else int(storage_offset)
    last = off + sum((n - 1) * s for n, s in zip(size, stride)) if min(size, default=1) else 0
    if min(stride, default=0) < 0 or off < 0 or last >= max(input.numel(), 1) and input.numel():
        raise ShapeError(
            f"as_strided: size {list(size)}, stride {list(stride)} and offset {off} reach "
            f"element {last}, outside the input's {input.numel()} elements (strides and offset "
            "must be >= 0)"
        )
    return AsStrided.apply(input, size, stride, off)


def as_strided_scatter(input: Tensor, src: Tensor, size, stride, storage_offset=None) -> Tensor:
    """A copy of ``input`` with ``src`` written where ``input.as_strided(size, stride,
    offset)`` lies."""
    from .misc import index_put

    xp = backend.array_module(input._data)
    off = 0 if storage_offset is None else int(storage_offset)
    with backend.device_scope(input.device):
        pos = Tensor._wrap(
            _positions(xp, tuple(size), tuple(stride), off).reshape(-1), input.device
        )
    flat = index_put(input.reshape(-1), (pos,), src.reshape(-1))
    return flat.reshape(*input.shape)


__all__ = ["as_strided", "as_strided_scatter"]
