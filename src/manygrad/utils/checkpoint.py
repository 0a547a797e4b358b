"""Activation checkpointing: keep a segment's inputs, drop its activations, and run its
forward again during backward (``torch.utils.checkpoint``, non-reentrant semantics).

Gradients reach everything the segment uses (inputs, parameters, tensors from outside)
through the outer backward, so ``autograd.grad``, hooks and DDP see them as without
checkpointing; the random state (dropout) is restored for the second forward.
"""

from __future__ import annotations

from .. import autograd, backend
from ..autograd import Function
from ..errors import AutogradError
from ..tensor import Tensor


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
            with autograd.enable_grad():
                out = self.fn(*args, **self.kwargs)
        finally:
            if rng is not None:
                _set_rng(rng)
        outs = _flat(out)
        roots, grads = [], []
        for o, g in zip(outs, gs):
            if g is not None and o.requires_grad:
                roots.append(o)
                grads.append(g if create_graph else (g._data if isinstance(g, Tensor) else g))
        if len(outs) != len(gs):
            raise AutogradError(
                "checkpoint: the function gave a different number of outputs when run again "
                "in backward; its outputs must not depend on data-dependent control flow"
            )
        # NOTE: where each input edge's gradient lands in the new graph: an input of the
        # segment is a fresh leaf there; parameters and outside tensors are the same objects
        keys = [id(args[k]) if kind == "arg" else k for kind, k in self.sources]
        if not roots:
            return (None,) * len(self._edges)
        res = autograd._run(roots, grads, False, dict.fromkeys(keys), create_graph)
        out_grads = [res.get(k) for k in keys]
        return tuple(out_grads)


def checkpoint(function, *args, use_reentrant: bool | None = None, context_fn=None,
               determinism_check: str = "default", debug: bool = False,
               preserve_rng_state: bool = True, **kwargs):  # fmt: skip
    """Run ``function(*args, **kwargs)`` keeping none of its activations; backward runs it
    again (same random state) to get them. Trades compute for memory.

    Args:
        function: the segment (a module or function).
        args: its inputs.
        use_reentrant: accepted for PyTorch compatibility; manygrad's checkpoint always has
            the non-reentrant semantics (gradients reach every tensor the segment uses).
        preserve_rng_state: restore the random state for the second forward (default True).

    Example: ``h = checkpoint(block, h)``
    """
    if not autograd.is_grad_enabled():
        return function(*args, **kwargs)
    rng = _get_rng(_rng_devices(args)) if preserve_rng_state else None
    inner_args = [a.detach().requires_grad_(a.requires_grad) if isinstance(a, Tensor) else a
                  for a in args]  # fmt: skip
    rec = []
    prev = autograd._recorders
    autograd._recorders = (prev or []) + [rec]
    try:
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
        x = checkpoint(run(start, end + 1), x, **kwargs)
    return run(end + 1, len(fns))(x)
