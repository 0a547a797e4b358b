"""The flat gradient buckets of ``DistributedDataParallel`` (see ``reducer.py``)."""

from __future__ import annotations

from .. import backend
from ..autograd import _sparse_grad
from ..tensor import Tensor


class Bucket:
    """Parameters of one device and dtype whose gradients travel in one flat buffer."""

    def __init__(self, params, indices):
        self.params, self.indices = params, indices
        self.device = params[0]._device
        sizes = [p._data.size for p in params]
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes))]
        self.numel = sum(sizes)
        self.flat = backend.array_module(params[0]._data).empty(self.numel, params[0]._data.dtype)
        self.filled = [False] * len(params)
        self.views: list = [None] * len(params)  # the .grad views (gradient_as_bucket_view)
        self.count = 0

    def reset(self) -> None:
        self.filled = [False] * len(self.params)
        self.count = 0
        p = self.params[0]
        if p._device != self.device or p._data.dtype != self.flat.dtype:  # model moved/cast
            self.device = p._device
            self.flat = backend.array_module(p._data).empty(self.numel, p._data.dtype)
            self.views = [None] * len(self.params)

    @property
    def full(self) -> bool:
        return self.count == len(self.params)

    def put(self, slot: int, g) -> None:
        """This bucket's share of the local gradient: ``.grad`` so far plus ``g``."""
        p, o = self.params[slot], self.offsets[slot]
        seg = self.flat[o : o + p._data.size]
        if p.grad is not None and p.grad is self.views[slot]:  # NOTE: .grad is `seg` itself
            if g is not None:
                seg += _dense(g).reshape(-1)
        else:
            prev = None if p.grad is None else _dense(p.grad)
            if g is None:
                if prev is None:
                    seg[...] = 0
                else:
                    seg[...] = prev.reshape(-1)
            else:
                seg[...] = _dense(g).reshape(-1)
                if prev is not None:
                    seg += prev.reshape(-1)
        self.filled[slot] = True
        self.count += 1

    def fill_missing(self) -> list[int]:
        """Fill the slots that got no gradient; returns their parameter indices."""
        missing = [self.indices[s] for s, done in enumerate(self.filled) if not done]
        for slot, done in enumerate(self.filled):
            if not done:
                self.put(slot, None)
        return missing

    def give_view(self, slot: int) -> None:
        """Make the parameter's ``.grad`` a view of its segment of the buffer."""
        p, o = self.params[slot], self.offsets[slot]
        if p.grad is None or p.grad is not self.views[slot]:
            piece = self.flat[o : o + p._data.size].reshape(p._data.shape)
            self.views[slot] = p.grad = Tensor._wrap(piece, p._device)

    def unpack(self, skip, as_view: bool) -> None:
        """Write the reduced buffer to the parameters' ``.grad`` (those in ``skip`` keep
        theirs); with ``as_view`` the gradients become views of the buffer."""
        flat = self.flat
        for slot, (p, o) in enumerate(zip(self.params, self.offsets)):
            if self.indices[slot] in skip:
                continue
            if as_view:
                self.give_view(slot)
                continue
            piece = flat[o : o + p._data.size].reshape(p._data.shape)
            if p.grad is None or p.grad.__class__ is not Tensor or p.grad._data.base is not None:
                p.grad = Tensor._wrap(piece.copy(), p._device)
            else:
                p.grad._data[...] = piece


def _dense(g):
    """A gradient (Tensor, raw array or sparse) as a dense raw array."""
    return _sparse_grad.dense(g._data if isinstance(g, Tensor) else g)
