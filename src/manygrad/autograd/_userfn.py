"""User-defined ``autograd.Function`` with PyTorch's contract.

    class Exp(mg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * y

    y = Exp.apply(x)

``forward`` runs on Tensors with gradient recording off; ``backward`` gets one gradient per
output and returns one per ``forward`` argument (None for non-tensors). ``backward`` runs
with recording on under ``create_graph=True``, so it is differentiable when written with
manygrad ops (unless decorated with ``once_differentiable``).
"""

from __future__ import annotations

import functools

from .. import backend
from ..errors import AutogradError
from ..tensor import Tensor
from . import Function


def _ag():
    from .. import autograd

    return autograd


class FunctionCtx:
    """What ``ctx`` offers in a user Function (the node of the graph is the ctx)."""

    def save_for_backward(self, *tensors) -> None:
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(
                    f"save_for_backward can only save tensors (or None), got "
                    f"{type(t).__name__}; store other values as ctx attributes"
                )
        from ._saved_hooks import current

        hooks = current()
        if hooks is not None and hooks[0] != "disabled":
            from ..tensor import _version_counter

            pack, unpack = hooks
            # NOTE: kept packed; unpacked when backward reads ctx.saved_tensors
            self._to_save = [None if t is None else
                             ("hooked", pack(t), unpack, _version_counter(t), t._version)
                             for t in tensors]  # fmt: skip
            return
        self._to_save = [(t, t._version) if t is not None else None for t in tensors]

    @property
    def saved_tensors(self) -> tuple:
        saved = self.__dict__.get("_to_save")
        if saved is None:
            if self.__dict__.get("_released"):
                raise AutogradError(
                    "trying to backward through the graph a second time, or to access saved "
                    "tensors after they were freed; pass retain_graph=True to backward()"
                )
            return ()
        out = []
        for i, s in enumerate(saved):
            if s is None:
                out.append(None)
                continue
            if len(s) == 5:  # NOTE: packed by saved_tensors_hooks
                _, payload, unpack, vc, ver = s
                if vc[0] != ver:
                    raise AutogradError(
                        "one of the variables needed for gradient computation has been "
                        f"modified by an inplace operation: saved tensor {i} of "
                        f"{type(self).__name__} is at version {vc[0]}; expected "
                        f"version {ver} instead. Fix: save a .clone() or make the change out "
                        "of place"
                    )
                t = unpack(payload)
                if not isinstance(t, Tensor):
                    raise TypeError(
                        f"saved_tensors_hooks: unpack_hook must return a Tensor, got "
                        f"{type(t).__name__}"
                    )
                out.append(t)
                continue
            t, ver = s
            if t._version != ver:
                raise AutogradError(
                    "one of the variables needed for gradient computation has been modified "
                    f"by an inplace operation: [{t.dtype} {list(t.shape)}], saved tensor {i} "
                    f"of {type(self).__name__}, is at version {t._version}; "
                    f"expected version {ver} instead. Fix: save a .clone() or make the "
                    "change out of place"
                )
            out.append(t)
        return tuple(out)

    saved_variables = saved_tensors

    def mark_dirty(self, *tensors) -> None:
        self._dirty = tensors

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_diff = tensors

    def set_materialize_grads(self, value: bool) -> None:
        self._materialize = bool(value)


def install(cls) -> None:
    """Give ``cls`` (a user Function) PyTorch's ``apply`` and the ctx methods."""
    cls._user = True
    for name in ("save_for_backward", "mark_dirty", "mark_non_differentiable",
                 "set_materialize_grads"):  # fmt: skip
        if name not in vars(cls):
            setattr(cls, name, getattr(FunctionCtx, name))
    cls.saved_tensors = FunctionCtx.saved_tensors
    cls.saved_variables = FunctionCtx.saved_tensors
    cls.apply = classmethod(_apply)
    cls._run_backward = _run_backward
    cls._release = _release
    if "vjp" in vars(cls) and "backward" not in vars(cls):
        cls.backward = cls.vjp


def node_class(cls) -> type:
    """The class of ``cls``'s graph nodes (``ctx`` in its forward), ``FooBackward`` for a
    Function ``Foo``, as PyTorch names them; ``_forward_cls`` leads back to ``Foo``."""
    nc = cls.__dict__.get("_node_cls")
    if nc is None:
        name = f"{cls.__name__}Backward"
        # NOTE: the module PyTorch gives these classes, with manygrad's package name
        nc = type(cls)(name, (cls,), {"__slots__": (), "__qualname__": name,
                                      "__module__": "manygrad.autograd.function",
                                      "_forward_cls": cls, "_node_cls": None})  # fmt: skip
        type.__setattr__(cls, "_node_cls", nc)
    return nc


def _apply(cls, *args, **kwargs):
    ag = _ag()
    nc = cls.__dict__.get("_node_cls")
    node = (nc if nc is not None else node_class(cls))()
    needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
    record = ag._grad_enabled and any(needs)
    node.needs_input_grad = needs
    node._edges = [ag._edge(a) if n else None for a, n in zip(args, needs)]
    # NOTE: next_functions lists the tensor arguments only (PyTorch's edges of a Function)
    node._skip = sum(1 << i for i, a in enumerate(args) if not isinstance(a, Tensor))
    node._saved = ()
    node._args_meta = [
        (a._data.shape, a._data.dtype) if isinstance(a, Tensor) else None for a in args
    ]
    with ag.no_grad():
        if "setup_context" in _mro_dict(cls):
            out = cls.forward(*args, **kwargs)
            cls.setup_context(node, args, out)
        else:
            out = cls.forward(node, *args, **kwargs)
    if record and node.__dict__.get("_to_save"):
        ag._inference.check_user_saved(node)
    single = not isinstance(out, tuple)
    outs = (out,) if single else out
    dirty = node.__dict__.pop("_dirty", ())
    non_diff = node.__dict__.pop("_non_diff", ())
    ins = {id(a) for a in args if isinstance(a, Tensor)}
    result = []
    node._nout = len(outs)
    node._out_meta = []
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            result.append(o)
            node._out_meta.append(None)
            continue
        node._out_meta.append((o._data.shape, o._data.dtype, o._device))
        is_dirty = any(o is d for d in dirty)
        if id(o) in ins and not is_dirty:
            o = _alias(o)  # NOTE: an input returned as it is: a new tensor on its memory
        differentiable = record and o.is_floating_point() and not any(o is n for n in non_diff)
        if is_dirty:
            if differentiable:
                r = Tensor._wrap(o._data, o._device)
                r.requires_grad, r.grad_fn = True, node
                if i:
                    r._meta = {"oi": i}
                _ag()._inplace.check_target(o, cls.__name__)
                _ag()._inplace.rebase(o, r, cls.__name__)
            result.append(o)
            continue
        if differentiable:
            if o.grad_fn is not None or o.requires_grad:
                o = _alias(o)
            o.requires_grad = True
            o.grad_fn = node
            if i:
                o._meta = dict(o._meta or {}, oi=i)
        result.append(o)
    if not record:
        node._edges = None
    return result[0] if single else tuple(result)


def _mro_dict(cls):
    names = set()
    for k in cls.__mro__:
        names.update(vars(k))
    return names


def _alias(t: Tensor) -> Tensor:
    a = Tensor._wrap(t._data, t._device)
    a._vc = t._vc or _ag()._vc(t)
    return a


def _zeros(meta):
    shape, dtype, dev = meta
    with backend.device_scope(dev):
        return backend.xp_of(dev).zeros(shape, dtype)


def _run_backward(self, gs, create_graph):
    """Call the user's ``backward`` on Tensors and check what it returns."""
    ag = _ag()
    cls = type(self)
    materialize = self.__dict__.get("_materialize", True)
    grads = []
    for g, meta in zip(gs, self._out_meta):
        if g is None and materialize and meta is not None:
            g = _zeros(meta)
        if g is not None and not isinstance(g, Tensor):
            g = Tensor._wrap(g)
        grads.append(g)
    once = getattr(cls.backward, "_once_differentiable", False)
    with ag.set_grad_enabled(create_graph and not once):
        res = cls.backward(self, *grads)
    res = res if isinstance(res, tuple) else (res,)
    n = len(self._args_meta)
    if len(res) > n and all(r is None for r in res[n:]):
        res = res[:n]
    if len(res) != n:
        raise AutogradError(
            f"function {cls.__name__} returned an incorrect number of gradients "
            f"(expected {n}, got {len(res)}): return one per argument of forward, None for "
            "those that are not tensors or need no gradient"
        )
    out = []
    for i, (r, meta) in enumerate(zip(res, self._args_meta)):
        if r is None:
            out.append(None)
            continue
        if meta is None:
            raise AutogradError(
                f"function {cls.__name__} returned a gradient different than None at "
                f"position {i}, but the corresponding forward input was not a Tensor"
            )
        if not isinstance(r, Tensor):
            raise TypeError(
                f"function {cls.__name__} returned a {type(r).__name__} at position "
                f"{i}; gradients must be Tensors (or None)"
            )
        if not _expandable(meta[0], tuple(r.shape)):
            raise AutogradError(
                f"Function {cls.__name__} returned an invalid gradient at index {i} - "
                f"got {list(r.shape)} but expected shape compatible with {list(meta[0])}"
            )
        if create_graph:
            out.append(_once_wrap(r, cls) if once else r)
        else:
            out.append(r._data)
    return tuple(out)


def _once_wrap(r, cls):
    return NotTwiceDifferentiable.wrap(r._data, cls.__name__)


def _expandable(shape, gshape) -> bool:
    """Whether a gradient of ``gshape`` sums back to ``shape`` (PyTorch's is_expandable_to)."""
    if len(shape) > len(gshape):
        return False
    return all(s == g or s == 1 for s, g in zip(reversed(shape), reversed(gshape)))


def _release(self) -> None:
    self.__dict__.pop("_to_save", None)
    self._released = True


def once_differentiable(fn):
    """Mark a user Function's ``backward`` as not differentiable: under ``create_graph``
    its results carry an error for anyone who differentiates them again."""

    @functools.wraps(fn)
    def wrapped(ctx, *grads):
        with _ag().no_grad():
            return fn(ctx, *grads)

    wrapped._once_differentiable = True
    return wrapped


class NotTwiceDifferentiable:
    """The node behind gradients that can't be differentiated again."""

    @staticmethod
    def wrap(arr, what: str) -> Tensor:
        t = Tensor._wrap(arr)
        node = _ag()._inplace._node(_Refuse, [], what=what)
        t.requires_grad = True
        t.grad_fn = node
        return t


class _Refuse(Function):
    _always = True  # NOTE: reached by a gradient, it raises (never pruned away as unused)
    node_name = "NotTwiceDifferentiableBackward"

    def backward(self, g):
        raise AutogradError(
            f"{self.what} is not differentiable twice in manygrad: the gradient it gave "
            "under create_graph=True can't be differentiated again (use ops that support "
            "double backward, or create_graph=False)"
        )
