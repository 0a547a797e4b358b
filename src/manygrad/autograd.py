"""Reverse-mode autograd: the ``Function`` base that every op derives from, and the
iterative graph walk behind ``Tensor.backward`` and ``mg.autograd.grad``."""

from __future__ import annotations

import weakref

import ml_dtypes
import numpy as _np

from . import backend
from .errors import AutogradError, DeviceError
from .tensor import Tensor

_grad_enabled = True
_np_generic = _np.generic
_BF16 = _np.dtype(ml_dtypes.bfloat16)
_F32 = _np.dtype(_np.float32)
_ndarray = _np.ndarray
# device type -> dtype that matmul-like ops compute in (set by mg.autocast)
autocast_dtypes: dict = {}
# NOTE: while a model is traced (ONNX export), a callable(node, args, kwargs, out) that sees
# every op that runs; None otherwise (one global read per op)
_trace = None


def autocast_args(*tensors):
    """Cast floating tensors to the autocast dtype of their device, when one is active."""
    if not autocast_dtypes:
        return tensors
    out = []
    for t in tensors:
        dt = autocast_dtypes.get(t._device.type) if isinstance(t, Tensor) else None
        if dt is not None and t.is_floating_point() and t.dtype is not dt:
            t = t.to(dt)
        out.append(t)
    return tuple(out)


def is_grad_enabled() -> bool:
    return _grad_enabled


class set_grad_enabled:  # noqa: N801 - PyTorch's name
    """Context manager (and decorator) that turns gradient recording on or off."""

    def __init__(self, mode: bool = True):
        self.mode = mode

    def __enter__(self):
        global _grad_enabled
        self.prev, _grad_enabled = _grad_enabled, self.mode
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.prev
        return False

    def __call__(self, fn):
        def wrapped(*args, **kwargs):
            with set_grad_enabled(self.mode):
                return fn(*args, **kwargs)

        wrapped.__name__, wrapped.__doc__ = fn.__name__, fn.__doc__
        return wrapped


class no_grad(set_grad_enabled):  # noqa: N801
    """``with mg.no_grad():`` records no graph (inference, optimizer updates)."""

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):  # noqa: N801
    def __init__(self):
        super().__init__(True)


class inference_mode(no_grad):  # noqa: N801
    pass


_NO_NEEDS = tuple((False,) * n for n in range(8))  # needs_input_grad without a graph


class Function:
    """One differentiable op.

    Subclasses define ``forward(ctx, *args, **kwargs)`` on raw arrays (tensor arguments
    arrive as arrays, others as they are) and ``backward(ctx, grad)`` returning one
    gradient per positional argument (None where there is none). ``ctx`` is the node
    itself: store what backward needs as attributes. Gradients whose shape differs from
    the input's (broadcasting) are summed back by the engine.
    """

    __slots__ = ("_edges", "needs_input_grad", "_out", "__dict__", "__weakref__")
    differentiable = True
    moves_device = False  # True for ops whose output lives on another device
    changes_dtype = False  # True for casts: their output dtype is meant to differ

    @classmethod
    def apply(cls, *args, **kwargs):
        # NOTE: the hot path of every op; one pass over the arguments builds the raw
        # arrays and, when a gradient is needed, the graph edges.
        raw = list(args)
        dev = None
        dt0 = None
        record = False
        for i, a in enumerate(args):
            if a.__class__ is Tensor or isinstance(a, Tensor):
                d = a._data
                raw[i] = d
                if dev is None:
                    dev = a._device
                    dt0 = d.dtype
                elif a._device is not dev and a._device != dev:
                    raise DeviceError(
                        f"{cls.__name__.lower()}: expected all tensors on one device, got "
                        f"{dev} and {a._device}; move them with .to(device) first, e.g. "
                        f"x = x.to('{dev}')"
                    )
                if a.requires_grad:
                    record = True
        record = record and _grad_enabled and cls.differentiable
        if record:
            needs, edges = [], []
            for a in args:
                if isinstance(a, Tensor) and a.requires_grad:
                    fn = a.grad_fn
                    needs.append(True)
                    edges.append((fn, a if fn is None else None, a._data.shape, a._data.dtype))
                else:
                    needs.append(False)
                    edges.append(None)
        else:
            # NOTE: nothing needs a gradient: no graph, and no per-argument lists to build
            needs = _NO_NEEDS[len(args)] if len(args) < 8 else [False] * len(args)
        ctx = cls()
        ctx.needs_input_grad = needs
        # NOTE: CuPy runs kernels on the current GPU and refuses (or corrupts) arrays of
        # another one: the inputs' GPU is made current for the op
        scope = backend.device_scope(dev) if dev is not None and dev.type != "cpu" else None
        if scope is None:
            out = ctx.forward(*raw, **kwargs)
        else:
            with scope:
                out = ctx.forward(*raw, **kwargs)
        if out.__class__ is not _ndarray and isinstance(out, _np_generic):
            out = _np.asarray(out)  # NOTE: NumPy gives scalars for 0-d results
        if dt0 is _BF16 and out.dtype is _F32 and not cls.changes_dtype:
            # NOTE: ml_dtypes promotes bfloat16 with a Python float to float32; an op on
            # bfloat16 tensors gives bfloat16, as in PyTorch
            out = out.astype(_BF16)
        t = Tensor._wrap(out, None if cls.moves_device else dev)
        if record:
            ctx._edges = edges
            t.requires_grad = True
            t.grad_fn = ctx
        if _trace is not None:
            _trace(ctx, args, kwargs, t)
        return t

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - abstract
        raise NotImplementedError

    def name(self) -> str:
        return f"{type(self).__name__}Backward"

    def __repr__(self) -> str:
        return f"<{self.name()}>"

    @property
    def next_functions(self):
        return tuple((e[0], 0) if e is not None else (None, 0) for e in (self._edges or ()))


def _reduce_to(g, shape):
    """Sum a broadcast gradient back to ``shape``."""
    if g.shape == shape:
        return g
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


def _topo(roots):
    """Nodes reachable from ``roots`` in an order where each node precedes its inputs."""
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
        if node._edges is None:
            raise AutogradError(
                "trying to backward through the graph a second time (its saved values were "
                "freed); pass retain_graph=True to the first backward() if you need to"
            )
        for e in node._edges:
            if e is not None and e[0] is not None and id(e[0]) not in seen:
                stack.append((e[0], False))
    order.reverse()
    return order


def _run(roots, root_grads, retain_graph, capture=None):
    """Propagate ``root_grads`` from ``roots`` (tensors). With ``capture`` (a dict id->None
    of input tensors), return their gradients instead of accumulating into ``.grad``."""
    grads = {}
    leaves = []
    # ids of arrays already handed to a .grad (or owned by the caller): those are copied
    # before another .grad may take them, since optimizers update .grad in place
    handed = {id(g) for g in root_grads}
    for t, g in zip(roots, root_grads):
        if t.grad_fn is None:
            leaves.append((t, g))
        else:
            k = id(t.grad_fn)
            grads[k] = g if k not in grads else grads[k] + g
    captured = {}
    nodes = _topo([t.grad_fn for t in roots if t.grad_fn is not None])
    gpu = _GpuScope()
    with set_grad_enabled(False), gpu:
        for node in nodes:
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if g.__class__ is not _ndarray:
                gpu.use(backend.device_of(g))
            out = node._out() if node.__dict__.get("_retain") else None
            if out is not None:
                out.grad = _accumulate(out.grad, g, out, handed)
            if capture is not None and id(node) in capture:
                captured[id(node)] = g
            in_grads = node.backward(g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            edges = node._edges
            if not retain_graph:
                node._edges = None
                node.__dict__.clear()
            for e, ig in zip(edges, in_grads):
                if e is None or ig is None:
                    continue
                fn, leaf, shape, dt = e
                if ig.shape != shape:
                    ig = _reduce_to(ig, shape)
                if ig.dtype != dt:
                    ig = ig.astype(dt)
                if fn is not None:
                    k = id(fn)
                    grads[k] = ig if k not in grads else grads[k] + ig
                else:
                    leaves.append((leaf, ig))
    with gpu:
        if capture is not None:
            for t, g in leaves:
                if id(t) in capture:
                    gpu.use(t._device)
                    prev = captured.get(id(t))
                    captured[id(t)] = g if prev is None else prev + g
            return captured
        for t, g in leaves:
            gpu.use(t._device)
            t.grad = _accumulate(t.grad, g, t, handed)
    return None


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


def _accumulate(prev, g, t, handed):
    if prev is None:
        # NOTE: one array may flow to several tensors (x + y gives both the same gradient)
        # and broadcast gradients are read-only views: copy those; own the rest.
        if g.__class__ is _ndarray or backend.is_array(g):
            if id(g) in handed or g.base is not None:
                g = g.copy()
        else:
            g = backend.array_module(t._data).asarray(g)
        handed.add(id(g))
        return Tensor._wrap(g, t._device)
    if prev._data.base is not None:
        prev._data = prev._data + g
    else:
        prev._data += g
    return prev


def _root_grads(outputs, grad_outputs):
    out = []
    for t, g in zip(outputs, grad_outputs):
        if not t.requires_grad:
            raise AutogradError(
                "element 0 of tensors does not require grad and does not have a grad_fn: "
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
            else:
                xp = backend.array_module(t._data)
                g = g._data if isinstance(g, Tensor) else xp.asarray(g)
                if g.shape != t._data.shape:
                    raise AutogradError(
                        f"gradient has shape {tuple(g.shape)} but the output has shape "
                        f"{tuple(t.shape)}; they must match"
                    )
            out.append(g.astype(t._data.dtype, copy=False))
    return out


def backward(tensors, grad_tensors=None, retain_graph: bool = False) -> None:
    """Accumulate d(tensors)/d(leaf) into each leaf's ``.grad``."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
        grad_tensors = [grad_tensors]
    grad_tensors = grad_tensors or [None] * len(tensors)
    _run(tensors, _root_grads(tensors, grad_tensors), retain_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned (``.grad`` untouched).

    Example: ``(dx,) = mg.autograd.grad(y.sum(), [x])``.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs)
    capture = {}
    for t in inputs:
        capture[id(t.grad_fn) if t.grad_fn is not None else id(t)] = None
    res = _run(outputs, _root_grads(outputs, grad_outputs), bool(retain_graph), capture)
    result = []
    for t in inputs:
        g = res.get(id(t.grad_fn) if t.grad_fn is not None else id(t))
        if g is None and not allow_unused:
            raise AutogradError(
                "one of the inputs was not used to compute the outputs; pass allow_unused=True"
                " to get None for it"
            )
        result.append(None if g is None else Tensor._wrap(g, t._device))
    return tuple(result)


def retain(t: Tensor) -> None:
    """Make backward keep ``t.grad`` for the non-leaf tensor ``t``."""
    if t.grad_fn is not None:
        t.grad_fn._retain = True
        t.grad_fn._out = weakref.ref(t)
