"""``DistributedDataParallel``: one model replica per rank, gradients averaged in backward.

How it hooks into autograd (which has no per-parameter hooks): during a synchronised
forward the model sees each parameter through an identity node (see ``reducer.py``), whose
backward starts the bucket all-reduces while backward still runs, and the outputs are
wrapped in one more node, ``_SyncNode``. Backward reaches ``_SyncNode`` first; it runs the
model's backward itself and then waits for the buckets and writes the averaged ``.grad``,
so when ``loss.backward()`` returns the gradients are synchronised.
"""

from __future__ import annotations

import contextlib
import zlib

from .. import autograd, backend
from ..autograd import Function
from ..nn.module import Module
from ..tensor import Tensor
from .mpi_backend import DistributedError
from .process_group import _meta, _pg, check_same
from .reducer import Reducer


class _SyncNode(Function):
    """Graph node over a DDP output: runs the model's backward, then averages gradients."""

    def backward(self, g):
        reducer = self.ddp._reducer
        reducer.begin()
        try:
            # NOTE: retain_graph=True costs nothing here: once the outer pass is done, this
            # node's attributes are cleared and the model's graph is freed with them.
            autograd._run([self.out], [g], retain_graph=True)
        except BaseException:
            reducer.active = False
            raise
        reducer.finish()
        return None


def _wrap_outputs(obj, ddp):
    if isinstance(obj, Tensor):
        if not obj.requires_grad:
            return obj
        t = Tensor._wrap(obj._data, obj._device)
        node = _SyncNode()
        node.out, node.ddp = obj, ddp
        node.needs_input_grad = ()
        node._edges = ()
        t.requires_grad = True
        t.grad_fn = node
        return t
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
        return type(obj)(*(_wrap_outputs(v, ddp) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_wrap_outputs(v, ddp) for v in obj)
    if isinstance(obj, dict):
        return type(obj)((k, _wrap_outputs(v, ddp)) for k, v in obj.items())
    return obj


class DistributedDataParallel(Module):
    """Train one replica of ``module`` per rank; gradients are averaged across ranks.

    Rank 0's parameters and buffers are broadcast at construction; each backward through
    the wrapped outputs averages the gradients, so ``optimizer.step()`` then makes the same
    update on every rank. Give each rank a different part of the data (DistributedSampler).

    Args:
        module: the model, already on this rank's device (``dist.get_device()``).
        device_ids: None, or ``[local GPU index]`` (checked against the module's device).
        bucket_cap_mb: size of a gradient all-reduce bucket in MB (default 25).
        broadcast_buffers: copy rank 0's buffers (batch-norm statistics) at every forward.

    Example:
        >>> model = mg.nn.parallel.DistributedDataParallel(model)
        >>> loss_fn(model(x), y).backward()      # gradients are now averaged
        >>> opt.step()
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group=None, bucket_cap_mb: float = 25,
                 find_unused_parameters: bool = False, **kwargs):  # fmt: skip
        super().__init__()
        g = _pg("DistributedDataParallel")
        if not isinstance(module, Module):
            raise TypeError(
                f"DistributedDataParallel: expected an nn.Module, got {type(module).__name__}"
            )
        self.module = module
        d = self.__dict__
        d["broadcast_buffers"] = broadcast_buffers
        d["require_backward_grad_sync"] = True
        d["_group"] = g
        params = [p for p in module.parameters() if p.requires_grad]
        devices = {p._device for p in module.parameters()}
        if len(devices) > 1:
            raise DistributedError(
                f"DistributedDataParallel: the module's parameters are on {sorted(map(str, devices))}; "
                "move the whole model to this rank's device first: model.to(dist.get_device())"
            )
        if device_ids and devices:
            want = backend.device(device_ids[0])
            if want not in devices:
                raise DistributedError(
                    f"DistributedDataParallel: device_ids={device_ids} but the module is on "
                    f"{devices.pop()}; call model.to('{want}') first"
                )
        # NOTE: as PyTorch's DDP: the tables of Embedding/EmbeddingBag(sparse=True) get
        # sparse gradients, reduced sparse outside the buckets
        sparse = [m.weight for m in module.modules()
                  if getattr(m, "sparse", False) is True and isinstance(getattr(m, "weight", None), Tensor)]  # fmt: skip
        d["_reducer"] = Reducer(g, params, bucket_cap_mb * 1024 * 1024, sparse)
        index = {id(p): i for i, p in enumerate(params)}
        d["_param_slots"] = [
            (m, name, index[id(p)])
            for m in module.modules()
            for name, p in m._parameters.items()
            if p is not None and id(p) in index
        ]
        self._sync_module_states()

    # ------------------------------------------------------------------ set-up
    def _sync_module_states(self) -> None:
        """Check every rank holds the same architecture, then broadcast rank 0's state."""
        g = self._group
        tensors = list(self.module.parameters()) + list(self.module.buffers())
        shapes = [tuple(t.shape) for t in tensors]
        sig = zlib.crc32(repr([(s, t.dtype.name) for s, t in zip(shapes, tensors)]).encode())
        seq = g.next_seq()
        meta = _meta("ddp", seq, None, src=sig, extra=len(tensors))
        try:
            check_same(g, "ddp", seq, meta)
        except DistributedError as e:
            raise DistributedError(
                "DistributedDataParallel: the models differ across ranks (number, shapes or "
                f"dtypes of parameters and buffers; this rank has {len(tensors)} tensors). Build "
                f"the same model on every rank. ({e})"
            ) from None
        if g.size > 1:
            self._broadcast(tensors)

    def _broadcast(self, tensors, cap_bytes: int = 32 << 20) -> None:
        """Copy rank 0's ``tensors`` to every rank, packed into a few flat messages."""
        g = self._group
        groups: dict = {}
        for t in tensors:
            chunks = groups.setdefault((t._device, t._data.dtype), [[]])
            if sum(c._data.nbytes for c in chunks[-1]) + t._data.nbytes > cap_bytes:
                chunks.append([])
            chunks[-1].append(t)
        for (dev, _), chunks in groups.items():
            for ts in chunks:
                if not ts:
                    continue
                xp = backend.array_module(ts[0]._data)
                flat = xp.concatenate([t._data.reshape(-1) for t in ts])
                g.engine(dev).broadcast(flat, 0, "DistributedDataParallel broadcast", g.seq)
                if g.rank == 0:
                    continue
                o = 0
                for t in ts:
                    n = t._data.size
                    t._data[...] = flat[o : o + n].reshape(t._data.shape)
                    o += n

    # ------------------------------------------------------------------ forward
    def forward(self, *inputs, **kwargs):
        g = self._group
        if self.broadcast_buffers and self.training and g.size > 1:
            bufs = list(self.module.buffers())
            if bufs:
                g.next_seq()
                self._broadcast(bufs)
        if not (autograd.is_grad_enabled() and self.require_backward_grad_sync and g.size > 1):
            return self.module(*inputs, **kwargs)
        # the model reads each parameter through an identity node that reports its gradient
        r, views = self._reducer, {}
        slots = self._param_slots
        for m, name, i in slots:
            if m._parameters[name] is not r.params[i]:
                raise DistributedError(
                    f"DistributedDataParallel: parameter '{name}' of {type(m).__name__} was "
                    "replaced after the model was wrapped; load weights in place "
                    "(load_state_dict without assign=True) or wrap the model afterwards"
                )
        try:
            for m, name, i in slots:
                if i not in views:
                    views[i] = r.ready_view(i, r.params[i])
                m._parameters[name] = views[i]
            out = self.module(*inputs, **kwargs)
        finally:
            for m, name, i in slots:
                m._parameters[name] = r.params[i]
        return _wrap_outputs(out, self)

    @contextlib.contextmanager
    def no_sync(self):
        """Skip the all-reduce for backward passes of forwards run inside this block.

        Gradients accumulate locally; the first backward outside the block averages the sum.

        Example:
            >>> with ddp.no_sync():
            ...     loss_fn(ddp(x1), y1).backward()
            >>> loss_fn(ddp(x2), y2).backward()  # averages both micro-batches' gradients
        """
        old = self.require_backward_grad_sync
        self.__dict__["require_backward_grad_sync"] = False
        try:
            yield
        finally:
            self.__dict__["require_backward_grad_sync"] = old

    # ------------------------------------------------------------------ gradients
    def finish_gradient_synchronization(self) -> None:
        """Average the gradients now (for a loss that did not come from this module's outputs)."""
        if self._group.size > 1:
            self._reducer.reduce_now()

    # ------------------------------------------------------------------ state
    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False):
        """The wrapped module's state dict (no ``module.`` prefix), so checkpoints load anywhere."""
        return self.module.state_dict(destination=destination, prefix=prefix, keep_vars=keep_vars)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Load into the wrapped module; keys with a ``module.`` prefix are accepted too."""
        if state_dict and all(k.startswith("module.") for k in state_dict):
            state_dict = {k[len("module.") :]: v for k, v in state_dict.items()}
        return self.module.load_state_dict(state_dict, strict=strict, assign=assign)
