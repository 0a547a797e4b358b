"""In-place ops and views in the graph, as PyTorch has them.

An in-place op on a tensor of the graph is computed as its out-of-place op, written back
into the tensor's memory (so aliases and views see it), and the tensor's ``grad_fn`` is
moved to the new node ("rebase"). The version counter, shared by a tensor and its views,
is bumped; backward refuses a saved value that changed since it was saved.

On a view of a base tensor, the base's history becomes ``CopySlicesBackward``: the
gradient of the base flows around the written region and, inside it, through the op's node.
A view whose base changed in place gets its ``grad_fn`` anew on next use (``ViewOf``).
"""

from __future__ import annotations

from .. import backend
from .._inference_mark import INFERENCE_META, InferenceMark
from ..errors import AutogradError, DTypeError
from ..tensor import Tensor
from . import Function


def _ag():
    from .. import autograd

    return autograd


def _node(cls, edges, **attrs):
    """A graph node made by hand (no forward): its input edges and attributes."""
    n = cls()
    n._edges = list(edges)
    n.needs_input_grad = tuple(e is not None for e in edges)
    n._saved = ()
    n.__dict__.update(attrs)
    return n


class Overwrite(Function):
    """``s``'s shape and dtype holding ``v`` (broadcast): what ``fill_``, ``zero_`` and the
    random fills write. The old values get a zero gradient (not ``0 * s``, which is NaN
    where ``s`` held inf or NaN); a tensor ``v`` gets the gradient summed to its shape."""

    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, s, v):
        xp = backend.array_module(s)
        self.vdt = getattr(v, "dtype", None)
        if self.vdt is None:
            return xp.full(s.shape, v, dtype=s.dtype)
        return xp.broadcast_to(v.astype(s.dtype, copy=False), s.shape).copy()

    def backward(self, g):
        xp = backend.array_module(g)
        gv = g.astype(self.vdt, copy=False) if self.vdt is not None else None
        return xp.zeros_like(g), gv


def overwrite(s: Tensor, v) -> Tensor:
    """``Overwrite``: ``v`` in place of ``s``'s values, as an out-of-place op."""
    return Overwrite.apply(s, v)


# ---------------------------------------------------------------------------- views


def make_view(t: Tensor, src: Tensor, record: bool) -> None:
    """``t`` (output of a view op on ``src``) shares ``src``'s memory and version counter."""
    t._base = src._base if src._base is not None else src
    vc = t._vc = src._vc or _ag()._vc(src)
    if record:
        t._meta = {"gv": vc[0]}
    elif src._meta.__class__ is InferenceMark:
        t._meta = INFERENCE_META  # NOTE: a view of an inference tensor is one, as in PyTorch
    elif t._meta is INFERENCE_META:
        t._meta = None  # NOTE: a view of a normal tensor stays normal, as in PyTorch


def view_grad_fn(a: Tensor):
    """``a.grad_fn``, made anew when ``a``'s base was changed in place since it was set."""
    fn, m = a.grad_fn, a._meta
    if m is None or "gv" not in m or m["gv"] == a._vc[0]:
        return fn
    base = a._base
    m["gv"] = a._vc[0]
    if not base.requires_grad:
        return fn
    node = _view_of(base, a)
    a.grad_fn = node
    a.requires_grad = True
    return node


def _positions(base: Tensor, view: Tensor):
    with backend.device_scope(base._device):
        return backend.view_positions(base._data, view._data)


def _view_of(base: Tensor, view: Tensor):
    e = _ag()._edge(base)
    return _node(ViewOf, [e], pos=_positions(base, view), shape=base._data.shape)


def _put(g, pos, shape):
    xp = backend.array_module(g)
    out = xp.zeros(shape, g.dtype)
    out.reshape(-1)[pos.reshape(-1)] = g.reshape(-1)
    return out


class _Take(Function):
    """``flat[pos]`` for a view's positions (unique): a differentiable gather."""

    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, flat, pos, shape):
        self.pos, self.n = pos, flat.shape
        return flat[pos.reshape(-1)].reshape(pos.shape)

    def backward(self, g):
        return _put(g, self.pos, self.n)

    def backward_graph(self, g):
        return _Put.apply(g, self.pos, self.n)


class _Put(Function):
    """Zeros of ``shape`` with ``g`` written at ``pos``: a differentiable scatter."""

    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, g, pos, shape):
        self.pos = pos
        return _put(g, pos, shape)

    def backward(self, g):
        return g.reshape(-1)[self.pos.reshape(-1)].reshape(self.pos.shape)

    def backward_graph(self, g):
        return _Take.apply(g.reshape(-1), self.pos, None)


class ViewOf(Function):
    """A view's value taken from its base: the gradient goes to the view's region."""

    complex_ok = True  # moves or picks values: right for complex ones too
    node_name = "AsStridedBackward0"

    def backward(self, g):
        return _put(g, self.pos, self.shape)

    def backward_graph(self, g):
        return _Put.apply(g, self.pos, self.shape)


class Adjoint(Function):
    """The gradient of a linear op (``node``) as an op: its gradient is the op again."""

    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, g, node):
        self.node = node
        out = node.backward(g)
        return out[0] if isinstance(out, tuple) else out

    def backward(self, gg):
        with _ag().no_grad():
            return type(self.node).apply(Tensor._wrap(gg), *self.node.args)._data

    def backward_graph(self, gg):
        return type(self.node).apply(gg, *self.node.args)


class CopySlices(Function):
    """The base after an in-place op on one of its views."""

    complex_ok = True  # moves or picks values: right for complex ones too
    node_name = "CopySlices"  # NOTE: PyTorch's name for this node has no "Backward0"

    def backward(self, g):
        xp = backend.array_module(g)
        gb = xp.array(g, copy=True, order="C")
        flat = gb.reshape(-1)
        p = self.pos.reshape(-1)
        gv = flat[p].reshape(self.pos.shape) if self.needs_input_grad[1] else None
        flat[p] = 0
        return gb, gv

    def backward_graph(self, g):
        xp = backend.array_module(g._data)
        keep = xp.ones(g._data.size, g._data.dtype)
        keep[self.pos.reshape(-1)] = 0
        flat = g.reshape(-1)
        gb = (flat * Tensor._wrap(keep)).reshape(tuple(g.shape))
        gv = _Take.apply(flat, self.pos, None) if self.needs_input_grad[1] else None
        return gb, gv


# ---------------------------------------------------------------------------- in place


def check_target(t: Tensor, name: str) -> None:
    """Refuse in-place changes that would make backward wrong (PyTorch's rules)."""
    if not _ag()._grad_enabled:
        return
    if t.requires_grad and t.grad_fn is None and t._base is None:
        raise AutogradError(
            f"{name}: a leaf Variable that requires grad (shape {tuple(t.shape)}) is being "
            "used in an in-place operation; wrap the update in `with mg.no_grad():` (as an "
            "optimizer does), or work on a copy: y = x.clone()"
        )
    b = t._base
    if b is not None and b.requires_grad and b.grad_fn is None:
        raise AutogradError(
            f"{name}: a view of a leaf Variable that requires grad is being used in an "
            "in-place operation; wrap it in `with mg.no_grad():` or change a .clone()"
        )


def bump(t: Tensor, name: str) -> int:
    vc = t._vc or _ag()._vc(t)
    vc[0] += 1
    vc[1] = name
    return vc[0]


def _write(t: Tensor, arr, name: str, scoped: bool = True) -> None:
    """Copy ``arr`` into ``t``'s memory after the checks (``scoped=False``: the caller made
    ``t``'s device current already)."""
    d = t._data
    if arr.shape != d.shape:
        raise AutogradError(
            f"{name}: the result has shape {tuple(arr.shape)} but the tensor written in place "
            f"has shape {tuple(d.shape)}; an in-place op can't change the shape"
        )
    if (d.dtype.kind in "biu" and arr.dtype.kind not in "biu") or (
        d.dtype.kind == "b" and arr.dtype.kind != "b") or (
        d.dtype.kind != "c" and arr.dtype.kind == "c"
    ):  # fmt: skip
        raise DTypeError(  # NOTE: also a RuntimeError, as PyTorch's
            f"{name}: result type {arr.dtype} can't be cast to the desired output type "
            f"{d.dtype}; use the out-of-place op: x = x.{name.rstrip('_')}(...)"
        )
    if d.__class__ is backend.MetaArray:
        return  # NOTE: a meta tensor has no data to write
    if not scoped:
        backend.array_module(d).copyto(d, arr, casting="unsafe")
        return
    with backend.device_scope(t._device):
        backend.array_module(d).copyto(d, arr, casting="unsafe")


def inplace(t: Tensor, name: str, fn, *args, **kwargs) -> Tensor:
    """Run ``fn(t, *args, **kwargs)`` (an out-of-place op) and make it ``t``'s new value."""
    ag = _ag()
    check_target(t, name)
    rec = ag._grad_enabled and (
        t.requires_grad
        or (t._base is not None and t._base.requires_grad)
        or any(isinstance(a, Tensor) and a.requires_grad for a in args)
    )
    if not rec:
        with ag.no_grad():
            r = fn(t.detach(), *args, **kwargs)
        _write(t, r._data, name)
        bump(t, name)
        return t
    return rebase(t, fn(t, *args, **kwargs), name)


def rebase(t: Tensor, r: Tensor, name: str) -> Tensor:
    """Make ``r`` (the result of an op on ``t``) the value and history of ``t``, in place."""
    node = r.grad_fn if r.requires_grad else None
    old = t._data
    if r._data is not old:
        if node is not None:
            _protect(node, old)
        _write(t, r._data, name)
    ver = bump(t, name)
    if node is not None and r._data is not old:
        _redirect(node, r._data, old, t._vc, ver)
    base = t._base
    if base is not None and (node is not None or base.requires_grad):
        edge_r = None
        if node is not None:
            oi = r._meta["oi"] if r._meta and "oi" in r._meta else 0
            edge_r = (node, None, old.shape, old.dtype, oi)
        pos = _positions(base, t)
        e_base = _ag()._edge(base) if base.requires_grad else None
        base.grad_fn = _node(CopySlices, [e_base, edge_r], pos=pos)
        base.requires_grad = True
        t.grad_fn = _node(ViewOf, [_ag()._edge(base)], pos=pos, shape=base._data.shape)
        t.requires_grad = True
        if t._meta is None:
            t._meta = {}
        t._meta["gv"] = ver
        return t
    if node is not None:
        t.grad_fn = node
        t.requires_grad = True
        if r._meta and "oi" in r._meta:
            t._meta = dict(t._meta or {}, oi=r._meta["oi"])
    elif t.grad_fn is not None:
        # NOTE: the new value depends on nothing that needs a gradient
        t.grad_fn = None
        t.requires_grad = False
    return t


def _protect(node, old) -> None:
    """``node`` saved ``old``, which is about to be overwritten: it keeps a copy instead."""
    d = node.__dict__
    hit = [k for k, v in d.items() if v is old]
    if hit:
        c = old.copy()
        for k in hit:
            d[k] = c
    # NOTE: also when the node kept no reference (an op that reads only its output): the
    # old memory becomes the node's output next, and must not be checked as its input
    node._saved = [s for s in node._saved if not (s[0] == id(old) and s[3] >= 0)]


def _redirect(node, new, old, vc, ver) -> None:
    """The node's saved output is now ``old`` (the tensor's memory), at version ``ver``."""
    d = node.__dict__
    for k, v in list(d.items()):
        if v is new:
            d[k] = old
    node._saved = [s for s in node._saved if s[3] >= 0] + [(id(old), vc, ver, -1)]
