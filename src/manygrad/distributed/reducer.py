"""Gradient buckets of ``DistributedDataParallel``, all-reduced while backward still runs.

During a synchronised forward, every parameter is seen by the model through an identity
node (``_ParamReady``). Autograd calls a node's backward once all of its consumers are
done, so that call receives the parameter's complete gradient for this backward pass: the
node copies it (plus any gradient accumulated earlier, e.g. under ``no_sync``) into its
bucket's flat buffer, and when a bucket is full its non-blocking all-reduce starts, while
autograd goes on with the layers below. Buckets start strictly in index order, so every
rank issues the same collectives in the same order. ``finish`` starts what is left (with
the existing gradient, or zeros, for parameters that got none), waits, and writes the
averaged gradients to ``.grad``.
"""

from __future__ import annotations

from .. import backend
from ..autograd import Function
from ..tensor import Tensor
from .process_group import _meta, check_same

_WHAT = "DDP gradient all_reduce"


class _ParamReady(Function):
    """Identity on a parameter; its backward receives the parameter's whole gradient."""

    def forward(self, p, reducer=None, index=0):
        self.reducer, self.index = reducer, index
        return p

    def backward(self, g):
        r = self.reducer
        if not r.active:  # a backward that does not go through the DDP outputs: local grads
            return g
        r.mark_ready(self.index, g)
        return None


class Bucket:
    """Parameters of one device and dtype whose gradients travel in one flat buffer."""

    def __init__(self, params):
        self.params = params
        self.device = params[0]._device
        sizes = [p._data.size for p in params]
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes))]
        self.numel = sum(sizes)
        self.flat = backend.array_module(params[0]._data).empty(self.numel, params[0]._data.dtype)
        self.filled = [False] * len(params)
        self.count = 0

    def reset(self) -> None:
        self.filled = [False] * len(self.params)
        self.count = 0
        p = self.params[0]
        if p._device != self.device or p._data.dtype != self.flat.dtype:  # model moved/cast
            self.device = p._device
            self.flat = backend.array_module(p._data).empty(self.numel, p._data.dtype)

    @property
    def full(self) -> bool:
        return self.count == len(self.params)

    def put(self, slot: int, g) -> None:
        """This bucket's share of the local gradient: ``.grad`` so far plus ``g``."""
        p, o = self.params[slot], self.offsets[slot]
        seg = self.flat[o : o + p._data.size]
        if g is None:
            if p.grad is None:
                seg[...] = 0
            else:
                seg[...] = p.grad._data.reshape(-1)
        else:
            seg[...] = g.reshape(-1)
            if p.grad is not None:
                seg += p.grad._data.reshape(-1)
        self.filled[slot] = True
        self.count += 1

    def fill_missing(self) -> None:
        for slot, done in enumerate(self.filled):
            if not done:
                self.put(slot, None)

    def unpack(self, scale: float) -> None:
        flat = self.flat
        flat *= scale
        for p, o in zip(self.params, self.offsets):
            piece = flat[o : o + p._data.size].reshape(p._data.shape)
            if p.grad is None or p.grad._data.base is not None:
                p.grad = Tensor._wrap(piece.copy(), p._device)
            else:
                p.grad._data[...] = piece


class Reducer:
    """Buckets of the trainable parameters and the state of one synchronised backward."""

    def __init__(self, group, params, cap_bytes: float):
        self.group = group
        self.params = params
        self.buckets: list[Bucket] = []
        current, size, key = [], 0, None
        for p in reversed(params):  # reverse order: about the order backward finishes them
            k = (p._device, p._data.dtype)
            if current and (k != key or size + p._data.nbytes > cap_bytes):
                self.buckets.append(Bucket(current))
                current, size = [], 0
            current.append(p)
            size += p._data.nbytes
            key = k
        if current:
            self.buckets.append(Bucket(current))
        index = {id(p): i for i, p in enumerate(params)}  # NOTE: by identity; == is elementwise
        self.where = {}
        for bi, b in enumerate(self.buckets):
            for slot, p in enumerate(b.params):
                self.where[index[id(p)]] = (bi, slot)
        self.active = False
        self.launched_in_backward = 0  # buckets started before the model's backward ended
        self._next, self._waits, self._seq = 0, [], 0

    def ready_view(self, index: int, p: Tensor) -> Tensor:
        """The stand-in for parameter ``index`` that the model uses during a forward."""
        return _ParamReady.apply(p, reducer=self, index=index)

    def begin(self) -> None:
        """Start a synchronised backward (all ranks compare what they are about to reduce)."""
        if self.active:
            self.active = False
            raise RuntimeError(
                "DistributedDataParallel: a backward pass reached the module's outputs twice "
                "(an output was fed back into the same module); call the module once per "
                "backward, or run the extra calls under no_sync()"
            )
        g = self.group
        self._seq = g.next_seq()
        if g.check:
            total = sum(b.numel for b in self.buckets)
            check_same(g, "ddp", self._seq, _meta("ddp", self._seq, None, extra=total))
        for b in self.buckets:
            b.reset()
        self._next, self._waits = 0, []
        self.launched_in_backward = 0
        self.active = True

    def mark_ready(self, index: int, g) -> None:
        bi, slot = self.where[index]
        b = self.buckets[bi]
        if b.filled[slot]:  # NOTE: a second gradient for one parameter cannot be merged now
            raise RuntimeError(
                "DistributedDataParallel: a parameter received two gradients in one backward "
                "pass; run the module once per backward, or use no_sync() for the extra passes"
            )
        b.put(slot, g)
        if b.full:
            self._launch(in_backward=True)

    def _launch(self, in_backward: bool) -> None:
        while self._next < len(self.buckets) and self.buckets[self._next].full:
            b = self.buckets[self._next]
            eng = self.group.engine(b.device)
            self._waits.append((b, eng.start_all_reduce(b.flat, "sum", _WHAT, self._seq)))
            self._next += 1
            self.launched_in_backward += in_backward

    def finish(self) -> None:
        """Start the remaining buckets, wait for all, and write the averages to ``.grad``."""
        try:
            for b in self.buckets[self._next :]:
                b.fill_missing()
            self._launch(in_backward=False)
            scale = 1.0 / self.group.size
            for b, wait in self._waits:
                wait()
                b.unpack(scale)
        finally:
            self.active = False
            self._waits = []

    def reduce_now(self) -> None:
        """Average the current ``.grad`` of every parameter (no backward in flight)."""
        self.begin()
        self.finish()
