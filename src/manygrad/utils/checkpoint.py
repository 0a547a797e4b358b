"""Activation checkpointing: keep a segment's inputs, drop its activations, and run its
forward again during backward (``torch.utils.checkpoint``, non-reentrant semantics).

Gradients reach everything the segment uses (inputs, parameters, tensors from outside)
through the outer backward, so ``autograd.grad``, hooks and DDP see them as without
checkpointing; the random state (dropout) and the autocast state are restored for the
second forward. ``context_fn`` gives the forward and the recomputation their own context
managers, e.g. selective checkpointing's (``create_selective_checkpoint_contexts``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from .. import autograd, backend
from ..autograd import Function
from ..errors import AutogradError
from ..tensor import Tensor
from ._checkpoint_legacy import (
    CheckpointFunction,
    DefaultDeviceType,
    autocast_as,
    autocast_state,
    check_backward_validity,
    detach_variable,
    get_device_states,
    set_device_states,
)
from ._checkpoint_sac import (
    SAC_IGNORED_OPS,
    CheckpointError,
    CheckpointPolicy,
    OpLog,
    SelectiveCheckpointContext,
    create_selective_checkpoint_contexts,
)

_debug_enabled: bool | None = None
_early_stop: bool | None = None
_CHECKS = ("default", "none")


@contextlib.contextmanager
def set_checkpoint_debug_enabled(enabled: bool | None):
    """Turn checkpoint's debug mode on or off inside the block, whatever ``debug=`` says
    (None: defer to it). In debug mode a recomputation that does not match the forward
    raises a CheckpointError listing the ops of both runs.

    Example:
        >>> with set_checkpoint_debug_enabled(True):
        ...     y = checkpoint(fn, x, use_reentrant=False)
    """
    global _debug_enabled
    prev, _debug_enabled = _debug_enabled, enabled
    try:
        yield
    finally:
        _debug_enabled = prev


@contextlib.contextmanager
def set_checkpoint_early_stop(enable: bool):
    """Whether checkpoints made inside the block may stop recomputing once every needed
    tensor is back (PyTorch's default). NOTE: manygrad always runs the whole function
    again, so this setting is accepted and has no effect.
    """
    global _early_stop
    prev, _early_stop = _early_stop, enable
    try:
        yield
    finally:
        _early_stop = prev


def noop_context_fn():
    """The default ``context_fn``: two null contexts."""
    return contextlib.nullcontext(), contextlib.nullcontext()


def _flat(out):
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for v in out for t in _flat(v)]
    if isinstance(out, dict):
        return [t for v in out.values() for t in _flat(v)]
    return []


def _rebuild(out, it):
    if isinstance(out, Tensor):
        return next(it)
    if isinstance(out, (tuple, list)):
        return type(out)(_rebuild(v, it) for v in out)
    if isinstance(out, dict):
        return {k: _rebuild(v, it) for k, v in out.items()}
    return out


def _rng_devices(args):
    devs = {backend.CPU}
    devs.update(a._device for a in args if isinstance(a, Tensor))
    return devs


def _get_rng(devs):
    return {d: backend.generator(d).get_state() for d in devs}


def _set_rng(states):
    for d, s in states.items():
        backend.generator(d).set_state(s)


def _key(e):
    return id(e[1]) if e[0] is None else (id(e[0]), e[4])


class _Checkpoint(Function):
    """The segment as one node: its backward runs the segment's forward again."""

    def backward(self, gs):
        return self._recompute(gs, False)

    def backward_graph(self, gs):
        return self._recompute(gs, True)

    def _recompute(self, gs, create_graph):
        gs = gs if isinstance(gs, list) else [gs]
        rng = None
        if self.rng is not None:
            rng = _get_rng(self.rng)
            _set_rng(self.rng)
        try:
            args = []
            for a, ver in self.args:
                if isinstance(a, Tensor):
                    if a._version != ver:
                        raise AutogradError(
                            "checkpoint: an input of the checkpointed function was modified in "
                            "place after the forward; checkpoint a .clone() of it"
                        )
                    a = a.detach().requires_grad_(a.requires_grad)
                args.append(a)
            log = OpLog() if self.debug else contextlib.nullcontext()
            with autograd.enable_grad(), autocast_as(self.autocast), self.ctx, log:
                out = self.fn(*args, **self.kwargs)
        finally:
            if rng is not None:
                _set_rng(rng)
        outs = _flat(out)
        self._check(outs, log)
        roots, grads = [], []
        for o, g in zip(outs, gs):
            if g is not None and o.requires_grad:
                roots.append(o)
                grads.append(g if create_graph else (g._data if isinstance(g, Tensor) else g))
        # NOTE: where each input edge's gradient lands in the new graph: an input of the
        # segment is a fresh leaf there; parameters and outside tensors are the same objects
        keys = [id(args[k]) if kind == "arg" else k for kind, k in self.sources]
        if not roots:
            return (None,) * len(self._edges)
        res = autograd._run(roots, grads, False, dict.fromkeys(keys), create_graph)
        out_grads = [res.get(k) for k in keys]
        return tuple(out_grads)

    def _check(self, outs, log) -> None:
        """The recomputed outputs against the forward's (PyTorch's default determinism
        check: count, shapes, dtypes and devices)."""
        trace = ""
        if self.debug:
            trace = (f"\nOps of the original forward: {self.fwd_ops}\nOps of the "
                     f"recomputation: {log.names}")  # fmt: skip
        if len(outs) != len(self.meta):
            raise CheckpointError(
                "checkpoint: the function gave a different number of outputs when run again "
                "in backward; its outputs must not depend on data-dependent control flow" + trace
            )
        if self.determinism == "none":
            return
        bad = [
            f"output {i}:\nsaved metadata: {m}\nrecomputed metadata: {_meta(o)}\n"
            for i, (o, m) in enumerate(zip(outs, self.meta))
            if _meta(o) != m
        ]
        if bad:
            raise CheckpointError(
                "torch.utils.checkpoint: Recomputed values for the following tensors have "
                "different metadata than during the forward pass.\n" + "".join(bad) + trace
            )


def _meta(t: Tensor) -> dict:
    return {"shape": tuple(t.shape), "dtype": t.dtype, "device": t.device}


def checkpoint(function, *args, use_reentrant: bool | None = None,
               context_fn: Callable = noop_context_fn, determinism_check: str = "default",
               debug: bool = False, early_stop: bool = True, **kwargs):  # fmt: skip
    """Run ``function(*args, **kwargs)`` keeping none of its activations; backward runs it
    again (same random and autocast state) to get them. Trades compute for memory.

    Args:
        function: the segment (a module or function).
        args: its inputs.
        use_reentrant: PyTorch's choice of implementation; manygrad's checkpoint always
            has the non-reentrant semantics (gradients reach every tensor the segment
            uses). With True, ``context_fn``, ``debug`` and keyword arguments for
            ``function`` are refused, as in PyTorch.
        context_fn: returns two context managers, the forward's and the recomputation's
            (default: none), e.g. ``functools.partial(create_selective_checkpoint_contexts,
            policy)``.
        determinism_check: ``"default"`` compares the recomputed outputs' shapes, dtypes
            and devices with the forward's (CheckpointError if they differ); ``"none"``.
        debug: name the ops of both runs in such errors (see ``set_checkpoint_debug_enabled``).
        early_stop: accepted; manygrad always recomputes the whole function.
        preserve_rng_state: restore the random state for the second forward (default True).

    Example: ``h = checkpoint(block, h, use_reentrant=False)``
    """
    preserve_rng_state = kwargs.pop("preserve_rng_state", True)
    if use_reentrant:
        if context_fn is not noop_context_fn or debug is not False:
            raise ValueError(
                "Passing `context_fn` or `debug` is only supported when use_reentrant=False."
            )
        if kwargs:
            raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    debug = _debug_enabled if _debug_enabled is not None else debug
    if debug and context_fn is not noop_context_fn:
        raise ValueError("debug=True is incompatible with non-default context_fn")
    if determinism_check not in _CHECKS:
        raise ValueError(
            f"determinism_check should be one of {list(_CHECKS)}, but got {determinism_check}"
        )
    fwd_ctx, rec_ctx = context_fn() if not debug else (OpLog(), contextlib.nullcontext())
    if not autograd.is_grad_enabled():
        return function(*args, **kwargs)
    rng = _get_rng(_rng_devices(args)) if preserve_rng_state else None
    autocast = autocast_state()
    inner_args = [a.detach().requires_grad_(a.requires_grad) if isinstance(a, Tensor) else a
                  for a in args]  # fmt: skip
    rec = []
    prev = autograd._recorders
    autograd._recorders = (prev or []) + [rec]
    try:
        with fwd_ctx:
            out = function(*inner_args, **kwargs)
    finally:
        autograd._recorders = prev
    outs = _flat(out)
    live = [o for o in outs if o.requires_grad]
    if not live:
        return out
    inner = {id(n) for n in rec}
    arg_ids = {id(a): i for i, a in enumerate(inner_args) if isinstance(a, Tensor)}
    edges, sources, seen = [], [], set()
    arg_edges = [autograd._edge(a) if isinstance(a, Tensor) and a.requires_grad else None
                 for a in args]  # fmt: skip
    for n in rec:
        for e in n._edges:
            if e is None or (e[0] is not None and id(e[0]) in inner):
                continue
            if e[0] is None and id(e[1]) in arg_ids:
                i = arg_ids[id(e[1])]
                src, e = ("arg", i), arg_edges[i]
            else:
                src = ("key", _key(e))
            if src in seen:
                continue
            seen.add(src)
            edges.append(e)
            sources.append(src)
    for o in live:  # NOTE: an output that is an input (or outer tensor) as it is
        e = autograd._edge(o)
        if e[0] is None or id(e[0]) not in inner:
            raise AutogradError(
                "checkpoint: the function returned a tensor it did not compute (an input or "
                "an outside tensor as it is); return a copy, e.g. x.clone()"
            )
    for n in rec:  # the activations go: only the graph's shape stays
        for k in [k for k in n.__dict__ if not k.startswith("_")]:
            del n.__dict__[k]
    node = _Checkpoint()
    node._edges = edges
    node.needs_input_grad = tuple(True for _ in edges)
    node._saved = ()
    node._nout = len(outs)
    node.fn, node.kwargs, node.rng = function, kwargs, rng
    node.autocast, node.ctx, node.determinism = autocast, rec_ctx, determinism_check
    node.debug, node.fwd_ops = debug, (fwd_ctx.names if debug else None)
    node.meta = [_meta(o) for o in outs]
    node.args = [(a, a._version) if isinstance(a, Tensor) else (a, None) for a in inner_args]
    node.sources = sources
    fresh = []
    for i, o in enumerate(outs):
        t = Tensor._wrap(o._data, o._device)
        if o.requires_grad:
            t.requires_grad = True
            t.grad_fn = node
            if i:
                t._meta = {"oi": i}
        fresh.append(t)
    return _rebuild(out, iter(fresh))


def checkpoint_sequential(functions, segments: int, input, use_reentrant=None, **kwargs):  # noqa: A002
    """Run ``functions`` (a Sequential or a list of modules) in ``segments`` parts, each
    but the last checkpointed.

    Example: ``out = checkpoint_sequential(model, 2, x)``
    """
    fns = list(functions.children()) if hasattr(functions, "children") else list(functions)
    if segments < 1:
        raise ValueError(f"checkpoint_sequential: segments must be >= 1, got {segments}")
    size = max(len(fns) // segments, 1)

    def run(start, end):
        def forward(x):
            for f in fns[start:end]:
                x = f(x)
            return x

        return forward

    end = -1
    x = input
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        x = checkpoint(run(start, end + 1), x, use_reentrant=use_reentrant, **kwargs)
    return run(end + 1, len(fns))(x)


__all__ = [
    "checkpoint",
    "checkpoint_sequential",
    "CheckpointError",
    "CheckpointFunction",
    "check_backward_validity",
    "detach_variable",
    "get_device_states",
    "set_device_states",
    "noop_context_fn",
    "set_checkpoint_early_stop",
    "DefaultDeviceType",
    "set_checkpoint_debug_enabled",
    "CheckpointPolicy",
    "SelectiveCheckpointContext",
    "create_selective_checkpoint_contexts",
    "SAC_IGNORED_OPS",
]
