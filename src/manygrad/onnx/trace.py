"""Tracing: run a model's forward once and record every op it executes into an ONNX graph.

The autograd engine calls a hook (``autograd._trace``) for each op that runs; the hook looks
up the op's export rule (:mod:`.rules`, :mod:`.rules_nn`) by the op's class name, and the rule
adds ONNX nodes for it. Each traced tensor is remembered with the ONNX value that holds it;
tensors that no traced op produced become initializers: the model's parameters and buffers
under their own names, anything else (a tensor built inside ``forward`` from Python values)
as a constant.

NOTE: Python control flow is fixed at trace time: an ``if`` or a loop runs once, with the
example input, and the graph holds the ops of the branch that ran. Reading a traced value
on the host (``.item()``, ``bool(t)``, ``float(t)``, ``.tolist()``, ``.numpy()``) warns,
since whatever the code decided from it is baked into the graph. Sizes read from
``x.shape`` are Python ints, fixed too: reshapes keep dims that keep their size free (so
``x.view(x.shape[0], -1)`` follows the batch), and a reshape size or an ``mg.arange(n)``
whose ``n`` equals the example's length of a dynamic axis other than the first (a sequence
length) is read from the input at run time; so give such axes example lengths that no
other size of the model has. Other uses stay fixed: ``loss / x.shape[0]`` divides by the
example's batch size, and other constants of a dynamic axis' size warn.
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import autograd
from ..tensor import Tensor
from .graph import Graph, UnsupportedOpError

RULES: dict = {}  # op class name -> rule(tracer, node, args, kwargs, out) -> value name(s)


class TracerWarning(UserWarning):
    """The traced graph may not generalise: a host read or a constant depended on the input."""


def rule(*names: str):
    """Register an export rule for the ops (Function classes) called ``names``."""

    def deco(fn):
        for n in names:
            RULES[n] = fn
        return fn

    return deco


def host_array(a) -> np.ndarray:
    """A tensor's (or raw array's) values on the host, as a contiguous NumPy array."""
    from .. import backend

    if isinstance(a, Tensor):
        a = a._data
    a = np.asarray(backend.to_numpy(a))
    return a if a.flags.c_contiguous else a.copy(order="C")  # NOTE: keeps 0-d arrays 0-d


class Tracer:
    """Maps traced tensors to ONNX value names while the model runs."""

    what = "onnx.export"  # NOTE: names the caller in the messages of the shared patches

    def __init__(self, g: Graph, named: dict, dynamic_sizes: set, seq_axes: dict | None = None):
        self.g = g
        self._named = named  # id(parameter or buffer) -> its name in the model
        self._dynamic_sizes = dynamic_sizes
        # NOTE: trace-time size -> (input name, axis) of the dynamic axes after the first
        # (sequence lengths, image sizes): sizes fixed in the code that equal one of them
        # are read from that input's shape at run time (the batch has the prefix rules)
        self._seq_axes = dict(seq_axes or {})
        self._sym: dict[int, str] = {}
        self._names: dict[int, str] = {}  # id(tensor or array) -> value name
        self._keep: list = []  # NOTE: keeps every mapped object alive, so ids stay unique
        self.traced: set[int] = set()  # ids of tensors that depend on the inputs
        self.made_by: dict[int, str] = {}  # id(tensor) -> the op that produced it

    # ------------------------------------------------------------------ values
    def bind(self, t, name: str, traced: bool = True) -> None:
        self._keep.append(t)
        self._names[id(t)] = name
        if isinstance(t, Tensor):
            self._keep.append(t._data)
            self._names.setdefault(id(t._data), name)
            if traced:
                self.traced.add(id(t))
                self.traced.add(id(t._data))

    def name(self, t, op: str = "") -> str:
        """The value name of a tensor (or raw array) argument; a new initializer if unseen."""
        n = self._names.get(id(t))
        if n is None and isinstance(t, Tensor):
            n = self._names.get(id(t._data))
        if n is not None:
            return n
        pname = self._named.get(id(t))
        a = host_array(t)
        if pname is None and self._is_positions(a):  # arange(T) of a dynamic length T
            g = self.g
            limit = g.op("Squeeze", [self.sym_dim(a.size), g.ints([0])])
            n = g.op("Range", [g.scalar(0, np.int64), limit, g.scalar(1, np.int64)], "positions")
            if a.dtype != np.int64:
                from .graph import onnx_dtype

                n = g.op("Cast", [n], "positions", to=onnx_dtype(a.dtype))
            self.bind(t, n, traced=False)
            return n
        if pname is None:
            if a.size > 1 and self._dynamic_sizes.intersection(a.shape):
                warnings.warn(
                    f"onnx.export: {op or 'an op'} uses a tensor of shape {a.shape} that no "
                    "traced op produced; it is stored as a constant of that size, so the graph "
                    "won't follow the dynamic axes there. Build it from the input with manygrad "
                    "ops (e.g. mg.ones_like(x)) to keep it dynamic",
                    TracerWarning,
                    stacklevel=4,
                )
            hint = "const"
        else:
            hint = pname
        n = self.g.const(a, hint)
        self.bind(t, n, traced=False)
        return n

    def sym_dim(self, size: int) -> str | None:
        """A 1-element int64 value holding, at run time, the length of the dynamic axis (not
        the first) whose example size is ``size``; None if there is none."""
        if size == 1 or size not in self._seq_axes:
            return None
        if size not in self._sym:
            inp, axis = self._seq_axes[size]
            shape = self.g.op("Shape", [inp], f"{inp}.shape")
            self._sym[size] = self.g.op("Gather", [shape, self.g.ints([axis])], f"{inp}.dim{axis}")
        return self._sym[size]

    def _is_positions(self, a: np.ndarray) -> bool:
        return (a.ndim == 1 and a.dtype.kind in "iu" and a.size in self._seq_axes
                and a.size > 1 and bool((a == np.arange(a.size)).all()))  # fmt: skip

    def value(self, v, like, op: str = "") -> str:
        """A tensor's name, or a Python scalar as a 0-d constant of ``like``'s dtype."""
        if isinstance(v, Tensor) or (hasattr(v, "dtype") and not isinstance(v, np.generic)):
            return self.name(v, op)
        return self.g.scalar(v, like._data.dtype if isinstance(like, Tensor) else like)

    def rebind(self, t, name: str) -> None:
        """``t`` now holds the value ``name`` (after an in-place update)."""
        self._keep += [t, t._data]
        for k in (id(t), id(t._data)):
            self._names[k] = name
            self.traced.add(k)

    def unbind(self, t) -> None:
        """Forget ``t``'s value (changed in place by untraced code): a constant next time."""
        for k in (id(t), id(t._data)):
            self._names.pop(k, None)
            self.traced.discard(k)

    def is_traced(self, t) -> bool:
        return id(t) in self.traced or (isinstance(t, Tensor) and id(t._data) in self.traced)

    # ------------------------------------------------------------------ the hook
    def __call__(self, node, args, kwargs, out) -> None:
        op = type(node).op_name
        self.made_by[id(out)] = op
        fn = RULES.get(op)
        if fn is None:
            raise UnsupportedOpError(
                f"onnx.export: the op {op} has no ONNX export rule (supported: "
                f"{', '.join(sorted(RULES))}); compute it outside the exported model or "
                "replace it with supported ops"
            )
        names = fn(self, node, args, kwargs, out)
        self.bind(out, names)


_HOST_READS = (
    "item",
    "tolist",
    "numpy",
    "__bool__",
    "__float__",
    "__int__",
    "__index__",
    "__iter__",
)


class _HostReads:
    """While tracing, warn when Python code reads a traced tensor's value on the host."""

    def __init__(self, tracer: Tracer):
        self.tracer = tracer
        self.saved: dict = {}

    def __enter__(self):
        tracer = self.tracer
        for name in _HOST_READS:
            orig = getattr(Tensor, name)
            self.saved[name] = (orig, name in Tensor.__dict__)

            def read(t, *a, _orig=orig, _name=name, **k):
                if tracer.is_traced(t):
                    warnings.warn(
                        f"{tracer.what}: {_name}() read a traced tensor of shape "
                        f"{tuple(t.shape)} on the host during tracing; Python code that "
                        "branches or loops on it is fixed to what it did for the example "
                        "input, so the exported graph may not follow other inputs",
                        TracerWarning,
                        stacklevel=2,
                    )
                return _orig(t, *a, **k)

            setattr(Tensor, name, read)
        return self

    def __exit__(self, *exc):
        for name, (orig, own) in self.saved.items():
            if own:
                setattr(Tensor, name, orig)
            else:
                delattr(Tensor, name)
        return False


def _in_place_ops():
    """In-place Tensor methods -> the traced out-of-place op computing the new value."""
    from ..ops import arrange as A
    from ..ops import elementwise as E

    def copy(t, src):
        src = src if isinstance(src, Tensor) else Tensor(src)
        src = src if src.dtype is t.dtype else E.cast(src, t.dtype)
        return src if tuple(src.shape) == tuple(t.shape) else src.expand(*t.shape)

    return {
        "add_": lambda t, o, alpha=1: E.add(t, o, alpha=alpha),
        "sub_": lambda t, o, alpha=1: E.sub(t, o, alpha=alpha),
        "mul_": E.mul,
        "div_": E.div,
        "clamp_": lambda t, min=None, max=None: E.clamp(t, min, max),  # noqa: A002
        "masked_fill_": A.masked_fill,
        "copy_": copy,
    }


class _InPlace:
    """While tracing, in-place updates (``x += y``, ``x.add_(y)``, ``x.clamp_(0)``...) of
    traced tensors are recorded as the out-of-place op; the tensor then stands for the
    result. Updates that can't be followed (a slice of a traced tensor updated in place,
    ``x[idx] = v`` on one) raise instead of giving a wrong graph."""

    _UNTRACEABLE = ("__setitem__", "fill_", "zero_", "uniform_", "normal_")

    def __init__(self, tracer: Tracer):
        self.tracer = tracer
        self.saved: dict = {}
        self._inside = 0

    def _involves(self, t, args) -> bool:
        tr = self.tracer
        return tr.is_traced(t) or any(isinstance(a, Tensor) and tr.is_traced(a) for a in args)

    def __enter__(self):
        ctx = self

        def patch(name, make):
            orig = getattr(Tensor, name)
            self.saved[name] = (orig, name in Tensor.__dict__)
            setattr(Tensor, name, make(orig, name))

        def recorded(orig, name):
            fn = ops[name]

            def method(t, *a, **k):
                if not ctx._involves(t, list(a) + list(k.values())):
                    out = orig(t, *a, **k)
                    ctx.tracer.unbind(t)
                    return out
                ctx._refuse_views(t, name)
                before = Tensor._wrap(t._data.copy(), t._device)
                if ctx.tracer.is_traced(t):  # NOTE: else `before` is a constant if it is used
                    ctx.tracer.bind(before, ctx.tracer.name(t))
                r = fn(before, *a, **k)
                if r.dtype is not t.dtype:
                    from ..ops.elementwise import cast

                    r = cast(r, t.dtype)
                ctx._inside += 1  # NOTE: the write of the recorded op itself
                try:
                    orig(t, *a, **k)
                finally:
                    ctx._inside -= 1
                ctx.tracer.rebind(t, ctx.tracer.name(r))
                return t

            return method

        def refused(orig, name):
            def method(t, *a, **k):
                if ctx._involves(t, list(a) + list(k.values())):
                    raise UnsupportedOpError(
                        f"{ctx.tracer.what}: {name} on a traced tensor of shape "
                        f"{tuple(t.shape)} changes it in place, which the traced graph can't "
                        "express; build the new value "
                        "out of place (mg.where, masked_fill, cat) instead"
                    )
                out = orig(t, *a, **k)
                ctx.tracer.unbind(t)
                return out

            return method

        def getitem(orig, name):
            def method(t, idx):
                items = idx if isinstance(idx, tuple) else (idx,)
                for it in items:
                    if isinstance(it, Tensor) and it.dtype.name == "bool" and it.ndim > 0 and (
                        ctx.tracer.is_traced(it)
                    ):  # fmt: skip
                        raise UnsupportedOpError(
                            f"{ctx.tracer.what}: x[mask] with a traced boolean mask has a shape that "
                            "depends on the data, which the traced graph can't follow; use "
                            "mg.where(mask, x, other) or masked_fill instead"
                        )
                return orig(t, idx)

            return method

        ops = _in_place_ops()
        for name in ops:
            patch(name, recorded)
        for name in self._UNTRACEABLE:
            patch(name, refused)
        patch("__getitem__", getitem)
        self._patch_writes()
        return self

    def _patch_writes(self) -> None:
        """In-place ops written as an op then a copy into the tensor (``relu_``,
        ``F.relu(x, inplace=True)``, ``exp_``, ...): the tensor stands for the op's result
        afterwards. The activations that compute straight into their input when no graph
        is needed take that path while tracing."""
        from ..autograd import _inplace
        from ..ops import elementwise as E

        tracer = self.tracer
        write, rectify = _inplace._write, E._rectify_in_place

        def traced_write(t, arr, name, scoped=True):
            write(t, arr, name, scoped)
            if self._inside:
                return
            if tracer.is_traced(arr):
                tracer.rebind(t, tracer.name(arr))
            elif tracer.is_traced(t):
                raise UnsupportedOpError(
                    f"{tracer.what}: {name} changes a traced tensor of shape {tuple(t.shape)} in "
                    "place with values the trace can't follow; compute the new value out of "
                    "place instead (y = x.op() rather than x.op_())"
                )

        _inplace._write = traced_write
        E._rectify_in_place = lambda t, name, slope=None: False
        self._writes = (write, rectify)

    def _refuse_views(self, t, name: str) -> None:
        if self.tracer.made_by.get(id(t)) in ("Slice", "Index"):
            raise UnsupportedOpError(
                f"{self.tracer.what}: {name} updates a slice (x[...]) of a traced tensor in "
                "place, which changes the tensor it was sliced from; the traced graph can't "
                "express that: compute "
                "the new tensor out of place (e.g. with mg.cat or mg.where)"
            )

    def __exit__(self, *exc):
        for name, (orig, own) in self.saved.items():
            if own:
                setattr(Tensor, name, orig)
            else:
                delattr(Tensor, name)
        from ..autograd import _inplace
        from ..ops import elementwise as E

        _inplace._write, E._rectify_in_place = self._writes
        return False


def run_traced(tracer: Tracer, fn, *args):
    """Call ``fn(*args)`` with every op recorded by ``tracer``."""
    if autograd._trace is not None:
        raise RuntimeError(f"{tracer.what}: another export is tracing already (one at a time)")
    autograd._trace = tracer
    try:
        with _HostReads(tracer), _InPlace(tracer):
            return fn(*args)
    finally:
        autograd._trace = None


__all__ = ["RULES", "Tracer", "TracerWarning", "UnsupportedOpError", "rule", "run_traced"]
