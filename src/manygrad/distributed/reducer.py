"""Gradient buckets of ``DistributedDataParallel``, all-reduced while backward still runs.

During a synchronised forward, every parameter is seen by the model through an identity
node (``_ParamReady``). Autograd calls a node's backward once all of its consumers are
done, so that call receives the parameter's complete gradient for this backward pass: the
node copies it (plus any gradient accumulated earlier, e.g. under ``no_sync``) into its
bucket's flat buffer, and when a bucket is full its reduction starts (divided by the
number of ranks, then a non-blocking all-reduce, or the registered communication hook),
while autograd goes on with the layers below. Buckets start strictly in index order, so
every rank issues the same collectives in the same order. ``finish`` starts what is left
(with the existing gradient, or zeros, for parameters that got none), waits, and writes the
averages to ``.grad``.

Parameters without a gradient follow PyTorch: with ``find_unused_parameters`` (or
``static_graph``) one more all-reduce tells which parameters some rank used; the others
keep their ``.grad`` untouched. Without it, the backward is left unfinished and the next
forward raises, naming the parameters (PyTorch's "Expected to have finished reduction").

Sparse gradients stay sparse, as in PyTorch (see ``sparse_grads.py``).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..tensor import Tensor
from . import sparse_grads
from .buckets import Bucket
from .grad_bucket import GradBucket
from .mpi_backend import DistributedError
from .process_group import _meta, check_same
from .work import Future

_WHAT = "DDP gradient all_reduce"


class _ParamReady(Function):
    """Identity on a parameter; its backward receives the parameter's whole gradient."""

    takes_sparse_grad = True

    def forward(self, p, reducer=None, index=0):
        self.reducer, self.index = reducer, index
        return p

    def backward(self, g):
        r = self.reducer
        if not r.active:  # no_sync, or a backward that misses the DDP outputs: local grads
            r.used[self.index] = 1
            return g
        return r.mark_ready(self.index, g)


class Reducer:
    """Buckets of the trainable parameters and the state of one synchronised backward.

    Args:
        group: the process group state (``process_group._Group``) to average over.
        params: the trainable parameters, in ``module.parameters()`` order.
        cap_bytes: the largest bucket, in bytes.
        sparse: parameters whose gradients are expected sparse (reduced outside buckets).
        names: the parameters' qualified names (for error messages).
        find_unused: leave the ``.grad`` of parameters no rank used untouched (one more
            all-reduce per backward); otherwise a parameter without a gradient leaves the
            backward unfinished and the next forward raises.
        as_view: the ``.grad`` of bucketed parameters are views of the buckets.
    """

    def __init__(self, group, params, cap_bytes: float, sparse=(), names=None,
                 find_unused: bool = False, as_view: bool = False):  # fmt: skip
        self.group = group
        self.params = params
        self.names = names or [f"parameter {i}" for i in range(len(params))]
        index = {id(p): i for i, p in enumerate(params)}  # NOTE: by identity; == is elementwise
        # parameters whose gradients are expected sparse: index -> gradient of this pass
        self.sparse = {index[id(p)]: None for p in sparse if id(p) in index}
        self.buckets: list[Bucket] = []
        current, idx, size, key = [], [], 0, None
        for i in reversed(range(len(params))):  # NOTE: about the order backward ends them
            if i in self.sparse:
                continue
            p = params[i]
            k = (p._device, p._data.dtype)
            if current and (k != key or size + p._data.nbytes > cap_bytes):
                self.buckets.append(Bucket(current, idx))
                current, idx, size = [], [], 0
            current.append(p)
            idx.append(i)
            size += p._data.nbytes
            key = k
        if current:
            self.buckets.append(Bucket(current, idx))
        self.where = {}
        for bi, b in enumerate(self.buckets):
            for slot, i in enumerate(b.indices):
                self.where[i] = (bi, slot)
        self.find_unused, self.static, self.as_view = find_unused, False, as_view
        self.hook, self.hook_state = None, None
        # NOTE: which parameters got a gradient since the last synchronised backward
        # (no_sync passes included), as PyTorch's local_used_map
        self.used = np.zeros(len(params), np.int32)
        self.static_used = None  # static_graph: global use counts of the first iteration
        self.static_local = None  # static_graph: this rank's use in the first iteration
        self.last_used = np.zeros(len(params), np.int32)  # the last all-reduced use counts
        self.unfinished: str | None = None  # the error the next forward raises
        self.div = group.size  # what gradients are divided by in this backward
        self.active = False
        self.launched_in_backward = 0  # buckets started before the model's backward ended
        self._next, self._waits, self._seq = 0, [], 0

    def ready_view(self, index: int, p: Tensor) -> Tensor:
        """The stand-in for parameter ``index`` that the model uses during a forward."""
        return _ParamReady.apply(p, reducer=self, index=index)

    @property
    def _dynamic_unused(self) -> bool:
        return self.find_unused and not self.static

    @property
    def _tracks_use(self) -> bool:
        """Whether this backward all-reduces the used-parameter map."""
        return self._dynamic_unused or (self.static and self.static_used is None)

    def check_finished(self) -> None:
        """Raise the error left by a backward that did not reach every parameter."""
        if self.unfinished is not None:
            raise RuntimeError(self.unfinished)

    # ------------------------------------------------------------------ one backward
    def begin(self, div: int | None = None) -> None:
        """Start a synchronised backward (all ranks compare what they are about to reduce).

        Args:
            div: what the gradients are divided by (default: the group size).
        """
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
            mode = self.find_unused + 2 * self.static + 4 * (self.hook is not None)
            try:
                check_same(g, "ddp", self._seq, _meta("ddp", self._seq, None, src=mode - 1,
                                                      extra=total))  # fmt: skip
            except DistributedError as e:
                raise DistributedError(
                    "DistributedDataParallel: the ranks' models or settings differ (gradient "
                    "elements, find_unused_parameters, static_graph, or a comm hook registered "
                    f"on some ranks only); construct DDP alike on every rank. ({e})"
                ) from None
        for b in self.buckets:
            b.reset()
        self.sparse = dict.fromkeys(self.sparse)
        self._next, self._waits = 0, []
        self.launched_in_backward = 0
        self.div = g.size if div is None else div
        self.active = True

    def mark_ready(self, index: int, g):
        """Take parameter ``index``'s gradient ``g`` of this backward into its bucket.

        Returns:
            What autograd accumulates into ``.grad`` meanwhile: ``g`` itself (the local
            gradient, which stays if the backward ends unfinished, as in PyTorch, and is
            overwritten by the average otherwise), or None for sparse and bucket-view
            gradients, which the reducer writes itself.
        """
        self.used[index] = 1
        if self.static_local is not None and not self.static_local[index]:
            self.active = False
            raise RuntimeError(
                f"DistributedDataParallel(static_graph=True): {self.names[index]} (parameter "
                f"index {index}) got a gradient, but it was unused in the first iteration; a "
                "static graph must use the same parameters in every iteration (construct DDP "
                "with find_unused_parameters=True instead)"
            )
        if index in self.sparse:
            if self.sparse[index] is not None:
                _twice()
            self.sparse[index] = g
            return None
        bi, slot = self.where[index]
        b = self.buckets[bi]
        if b.filled[slot]:  # NOTE: a second gradient for one parameter cannot be merged now
            _twice()
        b.put(slot, g)
        if self.as_view:  # NOTE: as PyTorch, .grad is the bucket's view from now on
            b.give_view(slot)
        if b.full:
            self._launch(in_backward=True)
        return None if self.as_view else g

    def _launch(self, in_backward: bool) -> None:
        while self._next < len(self.buckets) and self.buckets[self._next].full:
            b = self.buckets[self._next]
            self._waits.append((b, self._start(self._next, b, b.flat)))
            self._next += 1
            self.launched_in_backward += in_backward

    def _start(self, bi: int, b: Bucket, arr):
        """Start reducing bucket ``bi`` held in ``arr``; returns what ``_result`` waits on."""
        if self.hook is None:
            if self.div != 1:  # NOTE: divided before the sum, as PyTorch: no float16 overflow
                arr *= 1.0 / self.div
            return self.group.engine(b.device).start_all_reduce(arr, "sum", _WHAT, self._seq)
        bucket = GradBucket(bi, len(self.buckets), Tensor._wrap(arr, b.device), b.params,
                            b.offsets)  # fmt: skip
        fut = self.hook(self.hook_state, bucket)
        if not isinstance(fut, Future):
            raise RuntimeError(
                "DDP communication hook's callback must return a torch.futures.Future object, "
                f"but got {type(fut).__name__}: end the hook with e.g. "
                "dist.all_reduce(buf, async_op=True).get_future().then(lambda f: f.value()[0])"
            )
        return fut

    def _result(self, b: Bucket, pending, arr) -> None:
        """Wait for a bucket's reduction and leave the result in ``arr``."""
        if not isinstance(pending, Future):
            pending()
            return
        value = pending.wait()
        if not isinstance(value, Tensor):
            raise RuntimeError(
                f"DDP communication hook: its future's value is a {type(value).__name__}, "
                "expected one Tensor holding the reduced bucket (e.g. "
                ".then(lambda fut: fut.value()[0]) after an all_reduce future)"
            )
        if value.numel() != b.numel or value._device != b.device:
            raise RuntimeError(
                f"DDP communication hook: its result has {value.numel()} elements on "
                f"{value.device}, expected the bucket's {b.numel} on {b.device}"
            )
        if value._data is not arr:
            arr[...] = value._data.reshape(-1).astype(arr.dtype, copy=False)

    def finish(self, explicit: bool = False) -> None:
        """Start the remaining buckets, wait for all, and write the averages to ``.grad``.

        Args:
            explicit: an average asked for outside backward (``reduce_now``): parameters
                without a gradient are no error.
        """
        try:
            missing = []
            for b in self.buckets[self._next :]:
                missing += b.fill_missing()
            self._launch(in_backward=False)
            first_static = self.static and self.static_used is None
            used, wait_used = None, None
            if self._tracks_use:
                used = self.used.copy()
                cpu = self.group.engine(backend.CPU)
                wait_used = cpu.start_all_reduce(used, "sum", _WHAT + " (used parameters)",
                                                 self._seq)  # fmt: skip
            if self.sparse:  # NOTE: while the buckets' all-reduces run
                sparse_grads.reduce_sparse(self, 1.0 / self.div)
            if wait_used is not None:
                wait_used()
                self.last_used = used
            if first_static:
                self.static_used, self.static_local = used, self.used.astype(bool)
            skip = set()  # NOTE: parameters no rank used keep their .grad
            if self._dynamic_unused:
                skip = set(np.flatnonzero(used == 0).tolist())
            elif self.static:
                skip = set(np.flatnonzero(self.static_used == 0).tolist())
            broken = not explicit and self._note_unfinished(missing, first_static)
            for b, pending in self._waits:
                self._result(b, pending, b.flat)
                if not broken:  # NOTE: an unfinished backward leaves the local gradients
                    b.unpack(skip, self.as_view)
        finally:
            self.active = False
            self._waits = []
            self.used[:] = 0

    def _note_unfinished(self, missing: list, first_static: bool) -> bool:
        """Remember, for the next forward, the parameters PyTorch's reducer would wait for;
        True when there are some (the backward stays unfinished)."""
        if self.static:
            if first_static:
                return False
            missing = [i for i in missing if self.static_local[i]]
        elif self.find_unused:
            return False
        if not missing:
            return False
        missing = sorted(missing)
        head = (
            "Expected to have finished reduction in the prior iteration before starting a new one. "
        )
        if self.static:
            why = (
                "This error indicates that your training graph has changed in this iteration, "
                "e.g., one parameter is used in first iteration, but then got unused in the "
                "second iteration. this is not compatible with static_graph set to True."
            )
        else:
            why = (
                "This error indicates that your module has parameters that were not used in "
                "producing loss. You can enable unused parameter detection by passing the "
                "keyword argument `find_unused_parameters=True` to "
                "`torch.nn.parallel.DistributedDataParallel`, and by making sure all `forward` "
                "function outputs participate in calculating loss."
            )
        names = ", ".join(self.names[i] for i in missing)
        self.unfinished = (
            f"{head}{why}\nParameter indices which did not receive grad for rank "
            f"{self.group.rank}: {' '.join(map(str, missing))} ({names})"
        )
        return True

    def shadow(self) -> None:
        """The collectives of one synchronised backward, with zero gradients and no change to
        any ``.grad`` (what a rank that has joined runs, see ``Join``)."""
        self.begin()
        try:
            started = []
            for bi, b in enumerate(self.buckets):
                with backend.device_scope(b.device):
                    z = backend.array_module(b.flat).zeros(b.numel, b.flat.dtype)
                started.append((b, z, self._start(bi, b, z)))
            if self._tracks_use:
                # NOTE: as PyTorch, a joined rank contributes the last use counts it reduced,
                # so parameters used in its last iteration count as used while it shadows
                used = self.last_used.copy()
                self.group.engine(backend.CPU).all_reduce(used, "sum", _WHAT, self._seq)
                self.last_used = used
                if self.static and self.static_used is None:
                    self.static_used, self.static_local = used, np.zeros(used.shape, bool)
            if self.sparse:
                sparse_grads.reduce_sparse(self, 1.0, shadow=True)
            for b, z, pending in started:
                self._result(b, pending, z)
        finally:
            self.active = False
            self.used[:] = 0

    def reduce_now(self) -> None:
        """Average the current ``.grad`` of every parameter (no backward in flight)."""
        self.begin()
        if self._tracks_use:
            self.used[:] = [p.grad is not None for p in self.params]
        self.finish(explicit=True)


def _twice():
    raise RuntimeError(
        "DistributedDataParallel: a parameter received two gradients in one backward "
        "pass; run the module once per backward, or use no_sync() for the extra passes"
    )
