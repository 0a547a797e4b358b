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

Sparse gradients (``nn.Embedding(sparse=True)``, ``EmbeddingBag(sparse=True)``) stay
sparse, as in PyTorch: those parameters sit outside the buckets; ``finish`` gathers every
rank's rows and values (one small all-gather of the entry counts, then one of the padded
indices and one of the values per parameter) and writes the concatenation, scaled by
1/world size, as an uncoalesced sparse ``.grad``. A rank whose gradient for such a
parameter came out dense makes every rank reduce that one densely.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function, _sparse_grad
from ..sparse import SparseCooTensor
from ..tensor import Tensor
from .process_group import _meta, check_same

_WHAT = "DDP gradient all_reduce"


class _ParamReady(Function):
    """Identity on a parameter; its backward receives the parameter's whole gradient."""

    takes_sparse_grad = True

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

    def fill_missing(self) -> None:
        for slot, done in enumerate(self.filled):
            if not done:
                self.put(slot, None)

    def unpack(self, scale: float) -> None:
        flat = self.flat
        flat *= scale
        for p, o in zip(self.params, self.offsets):
            piece = flat[o : o + p._data.size].reshape(p._data.shape)
            if p.grad is None or p.grad.__class__ is not Tensor or p.grad._data.base is not None:
                p.grad = Tensor._wrap(piece.copy(), p._device)
            else:
                p.grad._data[...] = piece


class Reducer:
    """Buckets of the trainable parameters and the state of one synchronised backward."""

    def __init__(self, group, params, cap_bytes: float, sparse=()):
        self.group = group
        self.params = params
        index = {id(p): i for i, p in enumerate(params)}  # NOTE: by identity; == is elementwise
        # parameters whose gradients are expected sparse: index -> gradient of this pass
        self.sparse = {index[id(p)]: None for p in sparse if id(p) in index}
        self.buckets: list[Bucket] = []
        current, size, key = [], 0, None
        for i in reversed(range(len(params))):  # NOTE: about the order backward ends them
            if i in self.sparse:
                continue
            p = params[i]
            k = (p._device, p._data.dtype)
            if current and (k != key or size + p._data.nbytes > cap_bytes):
                self.buckets.append(Bucket(current))
                current, size = [], 0
            current.append(p)
            size += p._data.nbytes
            key = k
        if current:
            self.buckets.append(Bucket(current))
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
        self.sparse = dict.fromkeys(self.sparse)
        self._next, self._waits = 0, []
        self.launched_in_backward = 0
        self.active = True

    def mark_ready(self, index: int, g) -> None:
        if index in self.sparse:
            if self.sparse[index] is not None:
                _twice()
            self.sparse[index] = g
            return
        bi, slot = self.where[index]
        b = self.buckets[bi]
        if b.filled[slot]:  # NOTE: a second gradient for one parameter cannot be merged now
            _twice()
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
            if self.sparse:  # NOTE: while the buckets' all-reduces run
                self._reduce_sparse(scale)
            for b, wait in self._waits:
                wait()
                b.unpack(scale)
        finally:
            self.active = False
            self._waits = []

    def _reduce_sparse(self, scale: float) -> None:
        """Average the expected-sparse gradients: gathered rows where every rank has a
        sparse (or no) gradient, an all-reduce of dense ones where any rank's is dense."""
        order = sorted(self.sparse)
        local = []
        for i in order:
            p, g = self.params[i], self.sparse[i]
            if g is None:
                g = p.grad
            elif p.grad is not None:  # NOTE: accumulated earlier (under no_sync)
                both = p.grad.__class__ is SparseCooTensor and g.__class__ is SparseCooTensor
                g = p.grad + g if both else _dense(p.grad) + _dense(g)
            local.append(g)
        meta = np.array(
            [[0 if g is None else 1 if g.__class__ is SparseCooTensor else 2,
              g._vals.shape[0] if g.__class__ is SparseCooTensor else 0] for g in local],
            dtype=np.int64,
        ).reshape(len(order), 2)  # fmt: skip
        cpu = self.group.engine(backend.CPU)
        every = np.empty((self.group.size,) + meta.shape, np.int64)
        cpu.all_gather(meta, every, _WHAT + " (sparse sizes)", self._seq)
        for j, i in enumerate(order):
            p, g, kinds = self.params[i], local[j], every[:, j, 0]
            if not kinds.any():
                continue  # NOTE: no rank has a gradient for it: .grad stays None
            if (kinds == 2).any() or (kinds == 0).any() and not (kinds == 1).any():
                self._reduce_dense(p, g, scale)
            else:
                self._gather_rows(p, g, int(every[:, j, 1].max()), every[:, j, 1], scale)

    def _reduce_dense(self, p: Tensor, g, scale: float) -> None:
        xp = backend.array_module(p._data)
        with backend.device_scope(p._device):
            flat = xp.zeros(p._data.shape, p._data.dtype) if g is None else _dense(g).copy()
            flat = xp.ascontiguousarray(flat.astype(p._data.dtype, copy=False))
            self.group.engine(p._device).all_reduce(flat, "sum", _WHAT, self._seq)
            flat *= scale
        p.grad = Tensor._wrap(flat, p._device)

    def _gather_rows(self, p: Tensor, g, most: int, counts, scale: float) -> None:
        """Every rank's entries of a sparse gradient, padded to ``most`` for the gather."""
        xp = backend.array_module(p._data)
        n, dense_shape = self.group.size, tuple(p._data.shape[1:])
        eng = self.group.engine(p._device)
        with backend.device_scope(p._device):
            idx = xp.zeros((1, most), np.int64)
            vals = xp.zeros((most,) + dense_shape, p._data.dtype)
            if g is not None:
                k = g._vals.shape[0]
                idx[:, :k] = g._idx._data.reshape(1, k)
                vals[:k] = g._vals._data
            all_idx = xp.empty((n, 1, most), np.int64)
            all_vals = xp.empty((n, most) + dense_shape, p._data.dtype)
            eng.all_gather(idx, all_idx, _WHAT + " (sparse indices)", self._seq)
            eng.all_gather(vals, all_vals, _WHAT + " (sparse values)", self._seq)
            keep = [int(c) for c in counts]
            idx = xp.concatenate([all_idx[r, :, : keep[r]] for r in range(n)], axis=1)
            vals = xp.concatenate([all_vals[r, : keep[r]] for r in range(n)]) * scale
        p.grad = SparseCooTensor(Tensor._wrap(idx, p._device),
                                 Tensor._wrap(vals.astype(p._data.dtype, copy=False), p._device),
                                 tuple(p._data.shape))  # fmt: skip

    def reduce_now(self) -> None:
        """Average the current ``.grad`` of every parameter (no backward in flight)."""
        self.begin()
        self.finish()


def _dense(g):
    """A gradient (Tensor, raw array or sparse) as a dense raw array."""
    return _sparse_grad.dense(g._data if isinstance(g, Tensor) else g)


def _twice():
    raise RuntimeError(
        "DistributedDataParallel: a parameter received two gradients in one backward "
        "pass; run the module once per backward, or use no_sync() for the extra passes"
    )
