"""The graph walk: ``backward``, ``grad`` and the gradient bookkeeping between nodes.

Gradients travel as raw arrays, or as Tensors of a new graph under ``create_graph=True``
(then each node runs ``backward_graph``, the same formula written with Tensor ops)."""

from __future__ import annotations

import sys
import weakref

import numpy as _np

from .. import backend
from .._float8 import cast_any
from ..errors import AutogradError, DeviceError
from ..sparse import SparseCooTensor
from ..tensor import Tensor
from . import _anomaly_mode, _sparse_grad

_ndarray = _np.ndarray
# node attributes that outlive a backward pass (hooks, retain_grad, the graph's shape)


_AG = None


def _ag_mod():
    global _AG
    if _AG is None:
        from .. import autograd

        _AG = autograd
    return _AG


def _reduce_to(g, shape):
    """Sum a broadcast gradient back to ``shape`` (arrays or graph tensors)."""
    if g.shape == shape:
        return g
    if isinstance(g, Tensor):
        extra = g.ndim - len(shape)
        if extra:
            g = g.sum(tuple(range(extra)))
        axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
        if axes:
            g = g.sum(axes, keepdim=True)
        return g if tuple(g.shape) == tuple(shape) else g.expand(*shape)
    xp = backend.array_module(g)
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    if g.shape != shape:
        g = xp.broadcast_to(g, shape)
    return g


def _cast(g, dt):
    """``g`` in the dtype ``dt`` of its input: a complex gradient of a real input keeps its
    real part (the input moved along the real axis only)."""
    if isinstance(g, Tensor):
        if g._data.dtype == dt:
            return g
        return (g.real if g.is_complex() and dt.kind != "c" else g).to(dt)
    if g.dtype == dt:
        return g
    # NOTE: cast_any: float8 gradients are rounded as PyTorch rounds (e4m3fn saturates)
    return cast_any(g.real if g.dtype.kind == "c" and dt.kind != "c" else g, dt)


def _key(t: Tensor):
    """Identity of ``t`` in the graph: its node and output index, or the leaf itself."""
    e = _ag_mod()._edge(t) if t.requires_grad else (None, t, None, None, 0)
    return (id(e[0]), e[4]) if e[0] is not None else id(e[1])


def _topo(roots, floor=None, sinks=()):
    """Nodes reachable from ``roots`` in an order where each node precedes its inputs;
    with ``floor``, not through nodes created before it (see ``_floor``). Nodes in
    ``sinks`` (ids of nodes whose output gradients are captured) whose saved values were
    freed end the walk there: their gradient is wanted, not their backward."""
    order, seen = [], set()
    stack = [(r, False) for r in roots]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        edges = getattr(node, "_edges", None)
        if edges is None and id(node) in sinks:
            continue
        if edges is None:
            raise AutogradError(
                "trying to backward through the graph a second time (its saved values were "
                "freed); pass retain_graph=True to the first backward() if you need to"
            )
        for e in edges:
            if e is not None and e[0] is not None and id(e[0]) not in seen:
                if floor is not None and getattr(e[0], "_seq", floor) < floor:
                    continue
                stack.append((e[0], False))
    order.reverse()
    return order


def _floor(inputs):
    """The creation number of the oldest input's node, None if an input is a leaf or its
    node's number is unknown: older nodes cannot lead to an input (edges lead to older
    nodes), so ``grad`` need not walk them. A transform's graph hung on a long outer graph
    (a Jacobian inside a training step) is walked only down to its own inputs."""
    ag = _ag_mod()
    seqs = []
    for t in inputs:
        fn = ag._edge(t)[0]
        s = getattr(fn, "_seq", None)
        if s is None:
            return None
        seqs.append(s)
    return min(seqs, default=None)


def _needed(order, targets):
    """Ids of the nodes from which a target (node output key or leaf id) is reachable."""
    need = set()
    for node in reversed(order):
        if getattr(node, "_always", False):
            need.add(id(node))
            continue
        for e in node._edges or ():
            if e is None:
                continue
            if e[0] is None:
                if id(e[1]) in targets:
                    need.add(id(node))
                    break
            elif id(e[0]) in need or (id(e[0]), e[4]) in targets:
                need.add(id(node))
                break
    return need


def _check_versions(node) -> None:
    for rid, vc, ver, i in getattr(node, "_saved", ()):
        if vc[0] == ver:
            continue
        d = node.__dict__
        # NOTE: kept as an attribute, or in ``inputs`` (the raw arguments an op's backward
        # or reference re-reads)
        kept = [v for v in (*d.values(), *d.get("inputs", ())) if id(v) == rid]
        if not kept and rid not in node.__dict__.get("_packed_ids", ()):
            continue  # NOTE: the op does not keep this input: changing it is harmless
        what = "output 0" if i < 0 else f"input {i}"
        by = f" by {vc[1]}()" if vc[1] else ""
        desc = f"[{kept[0].dtype} {list(kept[0].shape)}], which is " if kept else ""
        raise AutogradError(
            "one of the variables needed for gradient computation has been modified "
            f"by an inplace operation{by}: {desc}{what} of {node.name()}, is at version "
            f"{vc[0]}; expected version {ver} instead. Fix: make the in-place change out of "
            "place (x = x * 2 instead of x.mul_(2)) or change a .clone() of the tensor"
        )


def _add(grads, key, g):
    prev = grads.get(key)
    grads[key] = g if prev is None else prev + g


def _run(roots, root_grads, retain_graph, capture=None, create_graph=False, inputs=None,
         floor=None):  # fmt: skip
    """Propagate ``root_grads`` from ``roots`` (tensors). With ``capture`` (a dict of graph
    keys, see ``_key``), return the gradients reaching those keys instead of accumulating
    into ``.grad``; with ``inputs`` (a set of keys), accumulate only into those leaves."""
    ag = _ag_mod()
    grads = {}  # (id(node), output index) -> gradient
    leaves = []
    # NOTE: ids of arrays already handed to a .grad (or owned by the caller): those are
    # copied before another .grad may take them, since optimizers update .grad in place
    handed = {id(g) for g in root_grads}
    start = []
    captured = {}
    for t, g in zip(roots, root_grads):
        e = ag._edge(t)
        if e[0] is None:
            leaves.append((e[1], g))
        else:
            _add(grads, (id(e[0]), e[4]), g)
            start.append(e[0])
    sinks = {k[0] for k in capture if k.__class__ is tuple} if capture else ()
    nodes = _topo(start, floor, sinks)
    targets = capture if capture is not None else inputs
    need = _needed(nodes, targets) if targets is not None else None
    gpu = _GpuScope()
    anomaly = ag._anomaly
    with ag.set_grad_enabled(create_graph), gpu:
        for node in nodes:
            nid = id(node)
            if need is not None and nid not in need and not _is_target(node, targets):
                continue
            n = node._nout
            if n == 1:
                g = grads.pop((nid, 0), None)
                if g is None:
                    continue
                gs = [g]
            else:
                gs = [grads.pop((nid, i), None) for i in range(n)]
                if all(g is None for g in gs):
                    continue
            g0 = gs[0] if gs[0] is not None else next(g for g in gs if g is not None)
            if isinstance(g0, Tensor):  # NOTE: create_graph: graph formulas read raw arrays too
                gpu.use(g0._device)
            elif g0.__class__ is not _ndarray:
                gpu.use(
                    g0._vals._device if g0.__class__ is SparseCooTensor else backend.device_of(g0)
                )
            d = node.__dict__
            hooks = d.get("_h")
            if hooks:
                gs = _node_hooks(hooks, gs, handed, create_graph)
            if capture is not None:
                for i, g in enumerate(gs):
                    if (nid, i) in capture and g is not None:
                        captured[(nid, i)] = g
                if need is not None and nid not in need:
                    continue
            if "_packed" in d:
                from ._saved_hooks import unpack_node

                unpack_node(node)
            for s in getattr(node, "_saved", ()):
                if s[1][0] != s[2]:
                    _check_versions(node)
                    break
            if create_graph or node._user or ag._profile is not None:
                in_grads = _call(node, gs, create_graph)
            else:
                in_grads = node.backward(gs[0] if n == 1 else gs)
                if in_grads.__class__ is not tuple:
                    in_grads = (in_grads,)
            if anomaly:
                _anomaly_mode.check(node, in_grads)
            if hooks and hooks.get("post"):
                in_grads = _post_hooks(node, hooks["post"], in_grads, gs, create_graph)
            edges = node._edges
            if not retain_graph and not node.keeps_nothing:
                if node._user:
                    node._release()
                    d["_edges_kept"] = edges  # NOTE: next_functions outlive the backward
                else:  # NOTE: the saved values go; the hooks, metadata and graph's shape stay
                    meta = d.get("_metadata")
                    d.clear()
                    d["_edges_kept"] = edges
                    if hooks:
                        d["_h"] = hooks
                    if meta is not None:
                        d["_metadata"] = meta
                node._edges = None
            if len(in_grads) < len(edges):
                in_grads = tuple(in_grads) + (None,) * (len(edges) - len(in_grads))
            for e, ig in zip(edges, in_grads):
                if e is None or ig is None:
                    continue
                fn, leaf, shape, dt, oi = e
                if ig.__class__ is SparseCooTensor:  # NOTE: a sparse row gradient (embedding)
                    if fn is None:
                        leaves.append((leaf, ig))
                        continue
                    if fn.takes_sparse_grad:  # NOTE: DDP's parameter node reduces it sparse
                        k = (id(fn), oi)
                        prev = grads.get(k)
                        grads[k] = ig if prev is None else _sparse_grad.add(prev, ig)
                        continue
                    ig = _sparse_grad.dense(ig)
                if ig.shape != shape:
                    ig = _reduce_to(ig, shape)
                if ig.dtype is not dt and ig.dtype != dt:
                    ig = _cast(ig, dt)
                if fn is not None:
                    k = (id(fn), oi)
                    prev = grads.get(k)
                    if prev is None:
                        grads[k] = ig
                    elif prev.__class__ is SparseCooTensor:
                        grads[k] = _sparse_grad.add(prev, ig)
                    else:
                        grads[k] = prev + ig
                else:
                    leaves.append((leaf, ig))
    # NOTE: leaf hooks and post-accumulate hooks run with recording off too, as PyTorch's
    # engine runs them (an optimizer step inside a post-accumulate hook updates in place)
    with ag.set_grad_enabled(create_graph), gpu:
        if capture is not None:
            for t, g in leaves:
                if id(t) in capture:
                    gpu.use(t._device)
                    g = _leaf_hooks(t, g)
                    prev = captured.get(id(t))
                    if prev is not None and SparseCooTensor in (prev.__class__, g.__class__):
                        g, prev = _sparse_grad.add(prev, g), None
                    captured[id(t)] = g if prev is None else prev + g
            return captured
        for t, g in leaves:
            if inputs is not None and id(t) not in inputs:
                continue
            gpu.use(t._device)
            g = _leaf_hooks(t, g)
            if SparseCooTensor in (g.__class__, t.grad.__class__):
                t.grad = _sparse_grad.accumulate(t.grad, g, t)
            elif create_graph:
                g = g if isinstance(g, Tensor) else Tensor._wrap(g, t._device)
                t.grad = g if t.grad is None else t.grad + g
            else:
                if isinstance(g, Tensor):
                    g = g._data
                t.grad = _accumulate(t.grad, g, t, handed)
            post = t._meta.get("post") if t._meta else None
            if post:
                for h in list(post.values()):
                    r = h(t)
                    if r is not None and r is not t:  # NOTE: t itself (t.add_(...)) passes
                        raise AutogradError(
                            "Tensor post accumulate grad hooks should return None. (they "
                            "may change t.grad in place, e.g. t.grad.mul_(2))"
                        )
    return None


def _is_target(node, targets) -> bool:
    return any((id(node), i) in targets for i in range(node._nout))


def _call(node, gs, create_graph):
    """Run one node's backward; a tuple of gradients, one per input edge."""
    if node._user:
        return node._run_backward(gs, create_graph)
    if create_graph:
        gs = [g if g is None or isinstance(g, Tensor) else Tensor._wrap(g) for g in gs]
        fn = getattr(node, "backward_graph", None)
        # NOTE: the graph formulas are written for reals: complex gradients get their
        # values, and a second derivative through them is refused by name
        if fn is None or any(g is not None and g.is_complex() for g in gs):
            return _once(node, gs)
        out = fn(gs[0] if node._nout == 1 else gs)
        if out is NotImplemented:  # NOTE: a case the op's graph formula doesn't cover
            return _once(node, gs)
    else:
        prof = _ag_mod()._profile
        if prof is None:
            out = node.backward(gs[0] if node._nout == 1 else gs)
        else:
            t0 = prof.clock()
            out = node.backward(gs[0] if node._nout == 1 else gs)
            prof.op(node.name(), t0, gs)
    return out if isinstance(out, tuple) else (out,)


def _once(node, gs):
    """Gradients of an op without ``backward_graph``: right values whose own gradient is an
    error naming the op (never a silently wrong second derivative)."""
    from ._userfn import NotTwiceDifferentiable

    raw = [None if g is None else g._data for g in gs]
    with _ag_mod().no_grad():
        out = node.backward(raw[0] if node._nout == 1 else raw)
    out = out if isinstance(out, tuple) else (out,)
    return tuple(
        o
        if o is None or o.__class__ is SparseCooTensor
        else NotTwiceDifferentiable.wrap(o, node.name())
        for o in out
    )


def _node_hooks(d, gs, handed, create_graph):
    pre = d.get("pre")
    if pre:  # Tensor.register_hook on a non-leaf: may replace the gradient
        for i, hooks in pre.items():
            if gs[i] is None:
                continue
            for h in list(hooks.values()):
                g = gs[i] if isinstance(gs[i], Tensor) else Tensor._wrap(gs[i])
                r = h(g)
                if r is not None:
                    gs[i] = r if create_graph else r._data
    retain = d.get("retain")
    if retain:
        for i, ref in retain.items():
            t = ref()
            if t is not None and gs[i] is not None:
                g = gs[i]
                if isinstance(g, Tensor):
                    t.grad = g if t.grad is None else t.grad + g
                else:
                    t.grad = _accumulate(t.grad, g, t, handed)
    prenode = d.get("prenode")
    if prenode:
        for h in list(prenode.values()):
            r = h(tuple(_as_tensor(g) for g in gs))
            if r is not None:
                gs = [_as_grad(g, create_graph) for g in r]
    return gs


def _as_tensor(g):
    """A gradient as hooks see it: a Tensor (or None, or a sparse gradient as is)."""
    return g if g is None or isinstance(g, (Tensor, SparseCooTensor)) else Tensor._wrap(g)


def _as_grad(g, create_graph):
    """A gradient a hook gave, as the engine carries it (raw arrays unless create_graph)."""
    if create_graph or not isinstance(g, Tensor):
        return g
    return g._data


def _post_hooks(node, hooks, in_grads, gs, create_graph):
    """``Node.register_hook`` hooks: ``hook(grad_inputs, grad_outputs)``, one gradient per
    entry of ``next_functions``; a tuple one returns replaces ``grad_inputs``."""
    slots = node._listed_slots()
    gi = tuple(_as_tensor(in_grads[i]) if i < len(in_grads) else None for i in slots)
    go = tuple(_as_tensor(g) for g in gs)
    changed = False
    for h in list(hooks.values()):
        r = h(gi, go)
        if r is not None:
            if len(r) != len(gi):
                raise AutogradError(
                    f"hook of {node.name()} returned {len(r)} gradients, expected {len(gi)} "
                    "(one per entry of next_functions)"
                )
            gi, changed = tuple(r), True
    if not changed:
        return in_grads
    out = list(in_grads) + [None] * (max(slots, default=-1) + 1 - len(in_grads))
    for i, g in zip(slots, gi):
        out[i] = _as_grad(g, create_graph)
    return tuple(out)


def _leaf_hooks(t, g):
    hooks = t._meta.get("hooks") if t._meta else None
    if not hooks:
        return g
    for h in list(hooks.values()):
        kept = isinstance(g, (Tensor, SparseCooTensor))  # NOTE: hooks see sparse ones as is
        r = h(g if kept else Tensor._wrap(g, t._device))
        if r is not None:
            g = r if kept or not isinstance(r, Tensor) else r._data
    return g


class _GpuScope:
    """Keeps the GPU of the arrays at hand current while the engine works on them.

    NOTE: CuPy runs kernels on the current GPU and refuses (or corrupts) arrays of another
    one; ``use(device)`` switches only when the device changes, ``with`` restores at exit.
    """

    __slots__ = ("dev", "scope")

    def __init__(self):
        self.dev = self.scope = None

    def use(self, dev) -> None:
        if dev is self.dev:
            return
        self.__exit__()
        self.dev = dev
        if dev.type != "cpu":
            self.scope = backend.device_scope(dev)
            self.scope.__enter__()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.scope is not None:
            self.scope.__exit__(None, None, None)
        self.dev = self.scope = None
        return False


_refs = sys.getrefcount  # NOTE: 2 for an object only the argument and one owner hold


def _accumulate(prev, g, t, handed):
    if prev is None:
        # NOTE: one array may flow to several tensors (x + y gives both the same gradient)
        # and broadcast gradients are read-only views: copy those; own the rest. A NumPy
        # view whose base only it references (a reshape of a new array) is owned as well
        # when it is C-contiguous (a transposed one is copied into the row-major layout
        # gradients keep): copying it cost a full pass per convolution gradient.
        if g.__class__ is _ndarray:
            if id(g) in handed or (
                g.base is not None
                and (not g.flags.c_contiguous or not g.flags.writeable or _refs(g.base) > 2)
            ):
                g = g.copy()
        elif backend.is_array(g):
            if id(g) in handed or g.base is not None:
                g = g.copy()
        else:
            g = backend.array_module(t._data).asarray(g)
        handed.add(id(g))
        return Tensor._wrap(g, t._device)
    if prev.grad_fn is not None or prev._data.base is not None:
        return Tensor._wrap(prev._data + g, t._device)
    prev._data += g
    return prev


def _root_grads(outputs, grad_outputs, create_graph=False):
    out = []
    for k, (t, g) in enumerate(zip(outputs, grad_outputs)):
        if not isinstance(t, Tensor):
            raise TypeError(f"backward: outputs must be Tensors, got {type(t).__name__}")
        if not t.requires_grad:
            raise AutogradError(
                f"element {k} of tensors does not require grad and does not have a grad_fn: "
                "call .requires_grad_() on the inputs (or create them with requires_grad=True) "
                "before the ops whose gradient you want"
            )
        if g is None:
            if t.numel() != 1:
                raise AutogradError(
                    f"grad can be implicitly created only for scalar outputs, got shape "
                    f"{tuple(t.shape)}; reduce it first (loss.sum() / loss.mean()) or pass "
                    "gradient=a tensor of that shape"
                )
        elif isinstance(g, Tensor) and g._device != t._device:
            raise DeviceError(
                f"backward: the gradient is on {g._device} but the output is on {t._device}; "
                f"move it with gradient.to('{t._device}')"
            )
        # NOTE: made on the output's GPU (CuPy allocates on the current one)
        with backend.device_scope(t._device):
            if g is None:
                g = backend.array_module(t._data).ones_like(t._data)
            elif isinstance(g, Tensor) and create_graph and g.requires_grad:
                if tuple(g.shape) != tuple(t.shape):
                    raise AutogradError(
                        f"gradient has shape {tuple(g.shape)} but the output has shape "
                        f"{tuple(t.shape)}; they must match"
                    )
                out.append(_cast(g, t._data.dtype))
                continue
            else:
                xp = backend.array_module(t._data)
                g = g._data if isinstance(g, Tensor) else xp.asarray(g)
                if g.shape != t._data.shape:
                    raise AutogradError(
                        f"gradient has shape {tuple(g.shape)} but the output has shape "
                        f"{tuple(t.shape)}; they must match"
                    )
            g = g.astype(t._data.dtype, copy=False)
            out.append(Tensor._wrap(g, t._device) if create_graph else g)
    return out


def _as_list(x):
    if x is None:
        return None
    return [x] if isinstance(x, Tensor) else list(x)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate d(tensors)/d(leaf) into each leaf's ``.grad``.

    Args:
        tensors: a tensor or a sequence of them.
        grad_tensors: the gradient of each (None for scalars).
        retain_graph: keep the graph for another backward (default: ``create_graph``).
        create_graph: record the backward pass, so that gradients can be differentiated.
        inputs: accumulate only into these tensors' ``.grad``.

    Example: ``mg.autograd.backward([loss1, loss2])``
    """
    tensors = _as_list(tensors)
    if grad_tensors is None or isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors] * len(tensors) if grad_tensors is None else [grad_tensors]
    grad_tensors = list(grad_tensors)
    if len(grad_tensors) != len(tensors):
        raise AutogradError(
            f"backward: got {len(grad_tensors)} gradients for {len(tensors)} tensors"
        )
    if retain_graph is None:
        retain_graph = create_graph
    keys = floor = None
    if inputs is not None:
        ins = _as_list(inputs)
        if not ins:
            raise AutogradError("backward: inputs= was given but is empty")
        keys = {_key(t) for t in ins}
        for t in ins:  # NOTE: a non-leaf input gets its gradient through retain_grad
            if t.grad_fn is not None:
                retain(t)
        floor = _floor(ins)  # NOTE: non-leaf inputs only: nodes older than them are skipped
    _run(tensors, _root_grads(tensors, grad_tensors, create_graph), retain_graph,
         create_graph=create_graph, inputs=keys, floor=floor)  # fmt: skip


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False, materialize_grads=False):  # fmt: skip
    """Gradients of ``outputs`` with respect to ``inputs``, returned (``.grad`` untouched).

    Args:
        outputs: a tensor or sequence of tensors to differentiate.
        inputs: the tensors to differentiate with respect to.
        grad_outputs: the vector of the vector-Jacobian product (None for scalars).
        retain_graph: keep the graph (default: ``create_graph``).
        create_graph: record the gradient computation, for higher-order derivatives.
        allow_unused: give None (instead of an error) for inputs the outputs don't use.
        materialize_grads: give zeros instead of None for unused inputs.

    Example: ``(dx,) = mg.autograd.grad(y.sum(), [x], create_graph=True)``
    """
    outputs = _as_list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    if allow_unused is None:
        allow_unused = materialize_grads
    if retain_graph is None:
        retain_graph = create_graph
    for t in inputs:
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise AutogradError(
                "grad: one of the inputs does not require grad; create it with "
                "requires_grad=True (or call .requires_grad_()) before using it"
            )
    if is_grads_batched:
        return _batched_grad(outputs, inputs, grad_outputs, retain_graph, create_graph,
                             allow_unused)  # fmt: skip
    capture = {_key(t): None for t in inputs}
    res = _run(outputs, _root_grads(outputs, grad_outputs, create_graph), retain_graph,
               capture, create_graph, floor=_floor(inputs))  # fmt: skip
    result = []
    for t in inputs:
        g = res.get(_key(t))
        if g is None:
            if not allow_unused:
                raise AutogradError(
                    "one of the differentiated Tensors appears to not have been used in the "
                    "graph; pass allow_unused=True to get None for it"
                )
            if materialize_grads:
                g = backend.array_module(t._data).zeros_like(t._data)
        if g is not None and not isinstance(g, (Tensor, SparseCooTensor)):
            g = Tensor._wrap(g, t._device)
        result.append(g)
    return tuple(result)


def _batched_grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused):
    from ..ops import stack

    n = grad_outputs[0].shape[0]
    rows = [
        grad(
            outputs,
            inputs,
            [g[i] for g in grad_outputs],
            retain_graph=True,
            create_graph=create_graph,
            allow_unused=allow_unused,
        )  # fmt: skip
        for i in range(n)
    ]
    return tuple(
        None if rows[0][j] is None else stack([r[j] for r in rows]) for j in range(len(inputs))
    )


def retain(t: Tensor) -> None:
    """Make backward keep ``t.grad`` for the non-leaf tensor ``t``."""
    e = _ag_mod()._edge(t)
    if e[0] is not None:
        e[0].__dict__.setdefault("_h", {}).setdefault("retain", {})[e[4]] = weakref.ref(t)
