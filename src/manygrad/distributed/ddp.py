"""``DistributedDataParallel``: one model replica per rank, gradients averaged in backward.

How it hooks into autograd (which has no per-parameter hooks): during a synchronised
forward the model sees each parameter through an identity node (see ``reducer.py``), whose
backward starts the bucket all-reduces while backward still runs, and the outputs are
wrapped in one more node, ``_SyncNode``, over all of them. Backward reaches ``_SyncNode``
first; it runs the model's backward itself (with the same parameter stand-ins in place, so
that checkpointed segments recomputed in backward report to the reducer too) and then
waits for the buckets and writes the averaged ``.grad``, so when ``loss.backward()``
returns the gradients are synchronised.
"""

from __future__ import annotations

import contextlib
import warnings
import zlib

from .. import autograd, backend
from ..autograd import Function
from ..nn.module import Module
from ..tensor import Tensor
from .algorithms.join import Join
from .ddp_join import DDPJoin
from .grad_bucket import check_comm_hook
from .mpi_backend import DistributedError
from .process_group import _meta, _pg, check_same
from .reducer import Reducer


class _SyncNode(Function):
    """Graph node over a DDP forward's outputs: runs the model's backward, then averages."""

    def backward(self, gs):
        gs = gs if isinstance(gs, list) else [gs]
        outs = [o for o, g in zip(self.outs, gs) if g is not None]
        grads = [g for g in gs if g is not None]
        ddp = self.ddp
        reducer = ddp._reducer
        reducer.begin(self.div)
        try:
            # NOTE: retain_graph=True costs nothing here: once the outer pass is done, this
            # node's attributes are cleared and the model's graph is freed with them.
            with ddp._params_as(self.views):
                autograd._run(outs, grads, retain_graph=True)
        except BaseException:
            reducer.active = False
            raise
        reducer.finish()
        return ()


def _wrap_outputs(obj, node, outs):
    """``obj`` with each tensor that requires grad replaced by an output of ``node`` (the
    originals are appended to ``outs``, in order)."""
    if isinstance(obj, Tensor):
        if not obj.requires_grad:
            return obj
        t = Tensor._wrap(obj._data, obj._device)
        t.requires_grad = True
        t.grad_fn = node
        if outs:
            t._meta = {"oi": len(outs)}
        outs.append(obj)
        return t
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
        return type(obj)(*(_wrap_outputs(v, node, outs) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_wrap_outputs(v, node, outs) for v in obj)
    if isinstance(obj, dict):
        return type(obj)((k, _wrap_outputs(v, node, outs)) for k, v in obj.items())
    return obj


class DistributedDataParallel(Module, DDPJoin):
    """Train one replica of ``module`` per rank; gradients are averaged across the ranks of
    ``process_group``.

    Group rank 0's parameters and buffers are broadcast at construction; each backward
    through the wrapped outputs averages the gradients over the group, so
    ``optimizer.step()`` then makes the same update on every rank of it. Give each rank a
    different part of the data (DistributedSampler).

    Args:
        module: the model, already on this rank's device (``dist.get_device()``).
        device_ids: None, or ``[local GPU index]`` (checked against the module's device).
        broadcast_buffers: copy group rank 0's buffers (batch-norm statistics) at each
            forward (default True; PyTorch 2.13 warns that it is deprecated for
            ``forward_sync_buffers``, and so does manygrad).
        init_sync: check the models match and broadcast them at construction (default True).
        process_group: the group to average over (default: every rank), e.g. from
            ``dist.new_group`` or ``dist.new_subgroups``; every rank of it wraps its model.
        bucket_cap_mb: size of a gradient all-reduce bucket in MB (default 25).
        find_unused_parameters: parameters that no rank used in a backward keep their
            ``.grad`` (one more small all-reduce per backward). Without it, a parameter
            with no gradient makes the next forward raise.
        gradient_as_bucket_view: ``.grad`` tensors become views of the buckets (no copy).
        static_graph: the same parameters are used in every iteration; unused ones are
            found in the first and keep their ``.grad`` after.
        forward_sync_buffers: PyTorch 2.13's name for ``broadcast_buffers``.
        skip_all_reduce_unused_params, bucket_cap_mb_list, batched_grad_copy,
            output_device, dim: accepted (performance options of PyTorch's reducer).

    ``no_sync()`` skips averaging for gradient accumulation, ``join()`` handles ranks with
    different numbers of batches, ``register_comm_hook(state, hook)`` replaces the average
    (see ``algorithms.ddp_comm_hooks``).

    Example:
        >>> model = mg.nn.parallel.DistributedDataParallel(model)
        >>> loss_fn(model(x), y).backward()      # gradients are now averaged
        >>> opt.step()
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool | None = None, init_sync: bool = True,
                 process_group=None, bucket_cap_mb: float | None = None,
                 find_unused_parameters: bool = False, check_reduction: bool = False,
                 gradient_as_bucket_view: bool = False, static_graph: bool = False,
                 delay_all_reduce_named_params=None, param_to_hook_all_reduce=None,
                 mixed_precision=None, device_mesh=None,
                 skip_all_reduce_unused_params: bool = False, bucket_cap_mb_list=None,
                 batched_grad_copy: bool = False,
                 forward_sync_buffers: bool | None = None):  # fmt: skip
        super().__init__()
        DDPJoin.__init__(self)
        if not isinstance(module, Module):
            raise TypeError(
                f"DistributedDataParallel: expected an nn.Module, got {type(module).__name__}"
            )
        for name, value in (("delay_all_reduce_named_params", delay_all_reduce_named_params),
                            ("param_to_hook_all_reduce", param_to_hook_all_reduce),
                            ("mixed_precision", mixed_precision)):  # fmt: skip
            if value is not None:
                raise NotImplementedError(
                    f"DistributedDataParallel: {name} is not supported by manygrad; cast the "
                    "model yourself (mixed precision)"
                )
        if device_mesh is not None:
            if process_group is not None:
                raise RuntimeError("Cannot specify both process_group and device_mesh arguments.")
            if device_mesh.ndim != 1:
                raise RuntimeError(
                    f"Only 1D device mesh is supported, but got {device_mesh}; pass the 1-D "
                    'slice DDP should average over, e.g. device_mesh=mesh["dp"]'
                )
            process_group = device_mesh.get_group(mesh_dim=0)
        g = _pg("DistributedDataParallel", process_group)
        params = [p for p in module.parameters() if p.requires_grad]
        if not params:
            raise RuntimeError(
                "DistributedDataParallel is not needed when a module doesn't have any "
                "parameter that requires a gradient."
            )
        if device_ids is not None and len(device_ids) > 1:
            raise ValueError("device_ids can only be None or contain a single element.")
        devices = {p._device for p in module.parameters()}
        if len(devices) > 1:
            raise DistributedError(
                f"DistributedDataParallel: the module's parameters are on {sorted(map(str, devices))}; "
                "move the whole model to this rank's device first: model.to(dist.get_device())"
            )
        if device_ids:
            want = backend.device(device_ids[0])
            if want not in devices:
                raise DistributedError(
                    f"DistributedDataParallel: device_ids={device_ids} but the module is on "
                    f"{next(iter(devices))}; call model.to('{want}') first"
                )
        if broadcast_buffers is not None:
            warnings.warn(
                "Both `broadcast_buffers` and `forward_sync_buffers` were specified. "
                "`broadcast_buffers` is deprecated and its value is ignored when "
                "`forward_sync_buffers` is provided." if forward_sync_buffers is not None else
                "`broadcast_buffers` is deprecated. Use `forward_sync_buffers` instead.",
                FutureWarning,
                stacklevel=2,
            )  # fmt: skip
        if forward_sync_buffers is not None:
            sync_buffers, init_buffers = bool(forward_sync_buffers), True
        else:
            sync_buffers = init_buffers = (
                True if broadcast_buffers is None else bool(broadcast_buffers)
            )
        if check_reduction:
            warnings.warn(
                "The `check_reduction` argument in `DistributedDataParallel` module is "
                "deprecated. Please avoid using it.",
                FutureWarning,
                stacklevel=2,
            )
        self.module = module
        cap = 25.0 if bucket_cap_mb is None else float(bucket_cap_mb)
        d = self.__dict__
        d.update(process_group=g.handle, _group=g, device_ids=device_ids, device_mesh=device_mesh,
                 output_device=output_device, dim=dim, forward_sync_buffers=sync_buffers,
                 find_unused_parameters=find_unused_parameters,
                 gradient_as_bucket_view=gradient_as_bucket_view, static_graph=False,
                 require_backward_grad_sync=True, require_forward_param_sync=True,
                 bucket_bytes_cap=int(cap * 1024 * 1024), device=params[0]._device,
                 _divide_by_initial_world_size=True, _comm_hooks=[])  # fmt: skip
        # NOTE: as PyTorch's DDP: the tables of Embedding/EmbeddingBag(sparse=True) get
        # sparse gradients, reduced sparse outside the buckets
        sparse = [m.weight for m in module.modules()
                  if getattr(m, "sparse", False) is True and isinstance(getattr(m, "weight", None), Tensor)]  # fmt: skip
        names = {id(p): n for n, p in module.named_parameters()}
        d["_reducer"] = Reducer(g, params, cap * 1024 * 1024, sparse,
                                [names.get(id(p), "?") for p in params], find_unused_parameters,
                                gradient_as_bucket_view)  # fmt: skip
        index = {id(p): i for i, p in enumerate(params)}
        d["_param_slots"] = [
            (m, name, index[id(p)])
            for m in module.modules()
            for name, p in m._parameters.items()
            if p is not None and id(p) in index
        ]
        if init_sync:
            self._sync_module_states(init_buffers)
        if static_graph:
            self._set_static_graph()

    # ------------------------------------------------------------------ set-up
    @property
    def broadcast_buffers(self) -> bool:
        return self.forward_sync_buffers

    @broadcast_buffers.setter
    def broadcast_buffers(self, value: bool) -> None:
        self.__dict__["forward_sync_buffers"] = value

    def _buffers_list(self) -> list:
        return [b for b in self.module.buffers() if b is not None]

    def _sync_module_states(self, buffers: bool = True) -> None:
        """Check every rank holds the same architecture, then broadcast group rank 0's state."""
        g = self._group
        tensors = list(self.module.parameters()) + self._buffers_list()
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
            self._broadcast(tensors if buffers else list(self.module.parameters()))

    def _broadcast(self, tensors, src: int = 0, cap_bytes: int = 32 << 20) -> None:
        """Copy group rank ``src``'s ``tensors`` to every rank, packed into a few messages."""
        g = self._group
        g.next_seq()
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
                g.engine(dev).broadcast(flat, src, "DistributedDataParallel broadcast", g.seq)
                if g.rank == src:
                    continue
                o = 0
                for t in ts:
                    n = t._data.size
                    t._data[...] = flat[o : o + n].reshape(t._data.shape)
                    o += n

    def _will_sync_buffers(self) -> bool:
        return (self.require_forward_param_sync and self.forward_sync_buffers
                and self._group.size > 1 and bool(self._buffers_list()))  # fmt: skip

    # ------------------------------------------------------------------ forward
    def forward(self, *inputs, **kwargs):
        g, r = self._group, self._reducer
        grad_on = autograd.is_grad_enabled()
        if grad_on:
            r.check_finished()
        joining = self._join_config.enable
        work = Join.notify_join_context(self)
        if self._will_sync_buffers():
            src = self._find_common_rank(g.rank, True) if joining else 0
            self._broadcast(self._buffers_list(), src)
        sync = grad_on and self.require_backward_grad_sync and (g.size > 1 or r.hook is not None)
        if joining:
            self._check_global_requires_backward_grad_sync(False, sync)
        div = None
        if work is not None:
            work.wait()
            if not self._divide_by_initial_world_size:
                div = int(work.result()[0].item())  # NOTE: the ranks still training
        self.require_forward_param_sync = grad_on and self.require_backward_grad_sync
        # NOTE: under no_sync with find_unused_parameters the stand-ins record which
        # parameters get gradients, for the next synchronised backward
        if not (sync or (grad_on and g.size > 1 and (r.find_unused or r.static))):
            return self.module(*inputs, **kwargs)
        # the model reads each parameter through an identity node that reports its gradient
        views = {}
        for m, name, i in self._param_slots:
            if m._parameters[name] is not r.params[i]:
                raise DistributedError(
                    f"DistributedDataParallel: parameter '{name}' of {type(m).__name__} was "
                    "replaced after the model was wrapped; load weights in place "
                    "(load_state_dict without assign=True) or wrap the model afterwards"
                )
            if i not in views:
                views[i] = r.ready_view(i, r.params[i])
        with self._params_as(views):
            out = self.module(*inputs, **kwargs)
        if not sync:
            return out
        node = _SyncNode()
        node.ddp, node.views, node.div = self, views, div
        node.needs_input_grad = ()
        node._edges = ()
        outs: list = []
        out = _wrap_outputs(out, node, outs)
        node.outs, node._nout = outs, max(len(outs), 1)
        return out

    @contextlib.contextmanager
    def _params_as(self, views):
        """The module's parameters replaced by ``views`` (index -> tensor) meanwhile."""
        slots, params = self._param_slots, self._reducer.params
        try:
            for m, name, i in slots:
                m._parameters[name] = views[i]
            yield
        finally:
            for m, name, i in slots:
                m._parameters[name] = params[i]

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
        if self._group.size > 1 or self._reducer.hook is not None:
            self._reducer.reduce_now()

    def register_comm_hook(self, state: object, hook) -> None:
        """Reduce each gradient bucket with ``hook(state, bucket)`` instead of the built-in
        average; it returns a ``Future`` of the reduced bucket (see ``GradBucket``; the
        gradients are not divided by the group size first). Register it once, on every rank.

        Example:
            >>> from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
            >>> ddp.register_comm_hook(process_group, default_hooks.fp16_compress_hook)
        """
        self._check_comm_hook(hook)
        r = self._reducer
        if r.hook is not None:
            raise RuntimeError(
                "register_comm_hook or register_builtin_comm_hook can only be called once."
            )
        r.hook, r.hook_state = hook, state
        self._comm_hooks.append((hook, state))

    _check_comm_hook = staticmethod(check_comm_hook)

    def _set_static_graph(self) -> None:
        """Declare the graph static (as ``static_graph=True`` at construction)."""
        if self.static_graph:
            warnings.warn("You've set static_graph to be True, no need to set it again.",
                          stacklevel=2)  # fmt: skip
            return
        self.__dict__["static_graph"] = True
        self._reducer.static = True
        if self.find_unused_parameters:
            warnings.warn(
                "You passed find_unused_parameters=true to DistributedDataParallel, "
                "`_set_static_graph` will detect unused parameters automatically, so you do "
                "not need to set find_unused_parameters=true, just be sure these unused "
                "parameters will not change during training loop while calling "
                "`_set_static_graph`.",
                stacklevel=2,
            )

    # ------------------------------------------------------------------ state
    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False):
        """The wrapped module's state dict (no ``module.`` prefix), so checkpoints load anywhere."""
        return self.module.state_dict(destination=destination, prefix=prefix, keep_vars=keep_vars)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Load into the wrapped module; keys with a ``module.`` prefix are accepted too."""
        if state_dict and all(k.startswith("module.") for k in state_dict):
            state_dict = {k[len("module.") :]: v for k, v in state_dict.items()}
        return self.module.load_state_dict(state_dict, strict=strict, assign=assign)
