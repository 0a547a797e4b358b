"""Reverse-mode autograd: the ``Function`` base that every op derives from, and the
iterative graph walk behind ``Tensor.backward`` and ``mg.autograd.grad``.

Two kinds of ``Function``:

- manygrad's own ops (``forward(self, *arrays)`` / ``backward(self, grad)`` on raw arrays,
  plus ``backward_graph(self, grad)`` on Tensors where the op is differentiable twice);
- user Functions with PyTorch's contract (``@staticmethod forward(ctx, ...)``,
  ``@staticmethod backward(ctx, *grads)``, ``F.apply(...)``), see ``_userfn``.

Every tensor has a version counter (``t._version``), shared with its views; an in-place
op bumps it, and backward refuses values that were overwritten after an op saved them.
"""

from __future__ import annotations

import copyreg
import importlib
import itertools
import pickle
import sys
import weakref

import numpy as _np

from .. import _float8, backend
from .._inference_mark import InferenceMark as _InferenceMark
from ..errors import DeviceError, DTypeError, ShapeError
from ..tensor import Tensor

_grad_enabled = True
_anomaly = False
_np_generic = _np.generic
_BF16 = None  # NOTE: ml_dtypes' bfloat16, looked up on first use (keeps imports fast)
_F32 = _np.dtype(_np.float32)
_PLAIN = "?bhilqBHILQefd"  # NOTE: the chars of NumPy's own real dtypes (not ml_dtypes')
_ndarray = _np.ndarray
_META = backend.META
_MetaArray = backend.MetaArray
_NULL_SCOPE = backend._NULL_SCOPE
# device type -> dtype that matmul-like ops compute in (set by mg.autocast)
autocast_dtypes: dict = {}
# NOTE: while a model is traced (ONNX export), a callable(node, args, kwargs, out) that sees
# every op that runs; None otherwise (one global read per op)
_trace = None
_profile = None  # a profiler's recorder (manygrad.profiler), None when none is open
_saved_tensor_hooks = None  # (pack, unpack) of saved_tensors_hooks, None when none is set
# NOTE: lists that collect every node made while they are open (checkpoint); None when none
_recorders = None


def _out_of_memory(op: str, dev, err: MemoryError):
    """PyTorch's ``OutOfMemoryError`` (a RuntimeError and a MemoryError) for an op whose
    arrays did not fit, saying what to try."""
    from ..errors import OutOfMemoryError

    if isinstance(err, OutOfMemoryError):
        return err
    where = "the CPU" if dev is None or dev.type == "cpu" else str(dev)
    hint = (
        "free tensors you no longer need and call mg.cuda.empty_cache(), or use a smaller "
        "batch or mixed precision (mg.autocast)"
        if where != "the CPU"
        else "use a smaller batch or free tensors you no longer need"
    )
    return OutOfMemoryError(f"{op}: out of memory on {where} ({err}); {hint}")


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


_HALF = ("float16", "bfloat16")


def _autocast_wrap(fn, to, devices):
    """``fn`` with its tensor arguments cast while autocast is on for their device: to the
    autocast dtype (``to`` None) or to ``to`` (float32 for ops PyTorch runs in full
    precision under autocast); ``devices``: the device types the rule applies on."""
    import functools

    def cast(v):
        if isinstance(v, Tensor) and v._device.type in devices:
            dt = autocast_dtypes.get(v._device.type)
            if dt is not None and v.is_floating_point():
                want = dt if to is None else to
                if v.dtype is not want and (to is None or v.dtype.name in _HALF):
                    return v.to(want)
        return v

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not autocast_dtypes:
            return fn(*args, **kwargs)
        args, kwargs = [cast(a) for a in args], {k: cast(v) for k, v in kwargs.items()}
        # NOTE: the ops inside see no autocast, as PyTorch excludes it within an autocast
        # op (cdist's products stay float32, attention's softmax stays in bf16)
        saved = dict(autocast_dtypes)
        autocast_dtypes.clear()
        try:
            return fn(*args, **kwargs)
        finally:
            autocast_dtypes.update(saved)

    wrapper._autocast_policy = to
    return wrapper


def autocast_lower(devices=("cpu", "cuda", "fakegpu")):
    """Decorator: ``fn``'s floating tensor arguments take the autocast dtype (PyTorch's
    lower-precision list: ``addmm``, ``baddbmm``, attention, ...)."""
    return lambda fn: _autocast_wrap(fn, None, devices)


def autocast_fp32(devices=("cpu", "cuda", "fakegpu")):
    """Decorator: ``fn``'s 16-bit float tensor arguments become float32 under autocast
    (PyTorch's full-precision list: losses, ``prod``, ``cdist``; on GPUs also softmax,
    normalisations and sums)."""
    from .. import dtypes

    return lambda fn: _autocast_wrap(fn, dtypes.float32, devices)


# PyTorch's CUDA autocast list of ops that run in float32 (beyond the losses and products
# that run in float32 on every device, decorated where they are defined)
AUTOCAST_FP32_GPU = frozenset({
    "acos", "asin", "cosh", "sinh", "tan", "erfinv", "exp", "expm1", "log", "log10", "log2",
    "log1p", "reciprocal", "rsqrt", "pow", "softplus", "sum", "cumsum", "cumprod", "norm",
    "vector_norm", "matrix_norm", "logsumexp", "cosine_similarity", "dist", "pdist", "renorm",
    "normalize", "softmin", "softmax", "log_softmax", "layer_norm", "group_norm",
})  # fmt: skip


def autocast_fp32_public(namespace: dict, names=AUTOCAST_FP32_GPU) -> None:
    """Wrap the public functions ``names`` of ``namespace`` (a module's globals) so that
    they run in float32 under autocast on GPUs. Only the public names are wrapped: ops
    that use them internally (``mean`` through ``sum``) keep their own dtype, as PyTorch's
    native kernels do."""
    from .. import dtypes

    for name in names:
        fn = namespace.get(name)
        if callable(fn) and not hasattr(fn, "_autocast_policy"):
            wrapped = _autocast_wrap(fn, dtypes.float32, ("cuda", "fakegpu"))
            wrapped.__module__ = namespace["__name__"]  # NOTE: pickled by reference from here
            namespace[name] = wrapped


def is_grad_enabled() -> bool:
    return _grad_enabled


class set_grad_enabled:  # noqa: N801 - PyTorch's name
    """Turns gradient recording on or off: as a context manager, a decorator, or, as in
    PyTorch, by the call itself (``mg.set_grad_enabled(False)`` as a statement)."""

    def __init__(self, mode: bool = True):
        global _grad_enabled
        self.mode = bool(mode)
        self._eager = type(self) is set_grad_enabled
        if self._eager:  # NOTE: PyTorch sets the mode here; with/exit restore the previous
            self.prev, _grad_enabled = _grad_enabled, self.mode

    def __enter__(self):
        global _grad_enabled
        if not self._eager:
            self.prev = _grad_enabled
        _grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.prev
        return False

    def _fresh(self):
        """A new context of the same setting (one per call of a decorated function)."""
        return set_grad_enabled(self.mode)

    def __call__(self, fn):
        global _grad_enabled
        if self._eager:  # NOTE: as a decorator the construction changes nothing
            _grad_enabled = self.prev

        def wrapped(*args, **kwargs):
            with self._fresh():
                return fn(*args, **kwargs)

        wrapped.__name__, wrapped.__doc__ = fn.__name__, fn.__doc__
        wrapped.__wrapped__ = fn
        return wrapped


class no_grad(set_grad_enabled):  # noqa: N801
    """``with mg.no_grad():`` records no graph (inference, optimizer updates)."""

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):  # noqa: N801
    def __init__(self):
        super().__init__(True)


class inference_mode(set_grad_enabled):  # noqa: N801
    """``with mg.inference_mode():`` records no graph, as ``no_grad``, and the tensors made
    inside are inference tensors (``t.is_inference()``), views of normal tensors excepted."""

    def __init__(self, mode: bool = True):
        super().__init__(not mode)

    def __enter__(self):
        _INFERENCE.append(not self.mode)
        _mark_new_tensors()
        return super().__enter__()

    def __exit__(self, *exc):
        _INFERENCE.pop()
        _mark_new_tensors()
        return super().__exit__(*exc)

    def _fresh(self):
        return inference_mode(not self.mode)


_INFERENCE: list[bool] = []  # the modes of the open inference_mode blocks


def _mark_new_tensors() -> None:
    """Tensors made from now on are inference tensors (``is_inference()``) exactly when the
    innermost open ``inference_mode`` block is enabled."""
    from ..tensor import _NEW_META, INFERENCE_META

    _NEW_META[0] = INFERENCE_META if is_inference_mode_enabled() else None


def is_inference_mode_enabled() -> bool:
    """True inside ``mg.inference_mode()`` (and not inside ``inference_mode(False)``)."""
    return bool(_INFERENCE) and _INFERENCE[-1]


_NO_NEEDS = tuple((False,) * n for n in range(8))  # needs_input_grad without a graph
# NOTE: a node's creation number: its edges lead to older nodes only, so grad() stops its
# graph walk at nodes older than every input's (PyTorch's engine prunes by topological_nr)
_next_seq = itertools.count(1).__next__


def _vc(t: Tensor) -> list:
    """The version counter of ``t``: ``[version, name of the last in-place op]``."""
    vc = t._vc
    if vc is None:
        vc = t._vc = [0, None]
    return vc


def _edge(a: Tensor) -> tuple:
    """Where the gradient of ``a`` goes: ``(node, leaf, shape, dtype, output index)``."""
    fn = a.grad_fn
    if a._base is not None:
        fn = _inplace.view_grad_fn(a)
    if fn is None:
        return (None, a, a._data.shape, a._data.dtype, 0)
    oi = a._meta.get("oi", 0) if fn._nout != 1 and a._meta else 0
    return (fn, None, a._data.shape, a._data.dtype, oi)


def _broadcast_error(op: str, raw) -> ShapeError:
    """PyTorch's message for operands whose shapes do not broadcast, naming the dim."""
    shapes = [tuple(a.shape) for a in raw if hasattr(a, "shape") and hasattr(a, "dtype")]
    if len(shapes) >= 2:
        a, b = shapes[0], shapes[1]
        n = max(len(a), len(b))
        pa, pb = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
        for d in range(n - 1, -1, -1):
            if pa[d] != pb[d] and 1 not in (pa[d], pb[d]):
                return ShapeError(
                    f"{op.lower()}: the size of tensor a ({pa[d]}) must match the size of "
                    f"tensor b ({pb[d]}) at non-singleton dimension {d}; shapes {a} and {b} "
                    "do not broadcast"
                )
    return ShapeError(f"{op.lower()}: operand shapes {shapes} do not broadcast together")


def _mixed_devices(cls, args, kwargs, dev, other):
    """An op whose tensors are on two devices: as in PyTorch, 0-d CPU tensors (scalars) go
    along with tensors of another device (copied there, differentiably); anything else is
    refused."""
    devs = {a._device for a in args if isinstance(a, Tensor) and not _cpu_scalar(a)}
    if len(devs) == 1 and any(_cpu_scalar(a) for a in args if isinstance(a, Tensor)):
        (target,) = devs
        moved = [a.to(target) if isinstance(a, Tensor) and _cpu_scalar(a) else a for a in args]
        return cls.apply(*moved, **kwargs)
    raise DeviceError(
        f"{cls.op_name.lower()}: expected all tensors on one device, got {dev} and {other}; "
        f"move them with .to(device) first, e.g. x = x.to('{dev if dev.type != 'cpu' else other}')"
        " (only 0-d CPU tensors may go along with tensors of another device)"
    )


def _quantized_op(cls, args, kwargs):
    """An op given a quantized tensor: the few PyTorch runs on them, else a clear error."""
    from ..ao._qdispatch import run

    return run(cls, args, kwargs)


def _cpu_scalar(a) -> bool:
    return a._device.type == "cpu" and a._data.ndim == 0


class _OpType(type):
    """The type of manygrad's op classes: an op class is also the class of the graph nodes
    it makes, so its ``__name__`` and ``__qualname__`` are the node's name, as PyTorch
    names them (``SumBackward0``; ``type(y.grad_fn).__name__``). ``op_name`` keeps the op's
    own name (``Sum``) for messages, the profiler and export. A class states its node name
    with ``node_name`` where PyTorch's differs from ``f"{op_name}Backward0"``. Renaming a
    class after its creation (``Op.__name__ = "Exp"``) renames the op, and so the node."""

    def __init__(cls, name, bases, ns, **kwargs):
        super().__init__(name, bases, ns, **kwargs)
        if bases:  # NOTE: Function itself keeps its name (graph.Node is Function)
            cls._rename(ns.get("__qualname__", name))

    def __setattr__(cls, key, value):
        if key in ("__name__", "__qualname__") and cls.__dict__.get("_named"):
            cls._rename(value)
            return
        super().__setattr__(key, value)

    def _rename(cls, name: str) -> None:
        if cls._user:  # NOTE: a user Function keeps its name; its nodes are FooBackward
            if "_forward_cls" not in cls.__dict__:
                super().__setattr__("op_name", name.rpartition(".")[2])
            return
        set_ = super().__setattr__
        op = name.rpartition(".")[2]
        if cls.__dict__.get("_named") and op == cls.__name__:
            return  # NOTE: the node name given back (copy.copy, functools.wraps)
        node = cls.__dict__.get("node_name") or f"{op}Backward0"
        set_("op_name", op)
        set_("_ref_name", name)
        key = (cls.__module__, name)
        # NOTE: None marks a name two classes of one module share (factory defaults)
        _BY_REF[key] = cls if _BY_REF.get(key, cls) is cls else None
        set_("__name__", node)
        set_("__qualname__", node)
        set_("_named", True)


_BY_REF: dict = {}  # (module, op class name) -> the class (None where the name is shared)


def _pickle_op(cls):
    # NOTE: a class is pickled by the name its module knows it by (the op's name); an op
    # class that a factory made (``_unary("Tanh", ...)``) is no attribute of its module, and
    # is found again by its module and name among the op classes made at import
    ref = cls.__dict__.get("_ref_name") or cls.__qualname__
    obj = sys.modules.get(cls.__module__)
    for part in ref.split("."):
        obj = getattr(obj, part, None)
    if obj is not cls and _BY_REF.get((cls.__module__, ref)) is cls:
        return (_op_by_ref, (cls.__module__, ref))
    return ref


def _op_by_ref(module: str, ref: str):
    """The op class ``ref`` that importing ``module`` makes (an unpickled graph's target).
    Only manygrad's own modules are imported (a weights-only load allows this function)."""
    if module != "manygrad" and not module.startswith("manygrad."):
        raise pickle.UnpicklingError(f"op class {module}.{ref}: not one of manygrad's ops")
    importlib.import_module(module)
    cls = _BY_REF.get((module, ref))
    if cls is None:
        raise pickle.UnpicklingError(
            f"op class {module}.{ref} is not made by this manygrad (it was pickled by a "
            "version that has it); load the file with the manygrad that wrote it"
        )
    return cls


copyreg.pickle(_OpType, _pickle_op)


class Function(metaclass=_OpType):
    """One differentiable op.

    manygrad's ops define ``forward(self, *args, **kwargs)`` on raw arrays (tensor arguments
    arrive as arrays, others as they are) and ``backward(self, grad)`` returning one gradient
    per positional argument (None where there is none); ``self`` is the graph node: store
    what backward needs as attributes. Gradients whose shape differs from the input's
    (broadcasting) are summed back by the engine. ``backward_graph(self, grad)`` is the same
    formula on Tensors (``self.saved_input(i, raw)`` / ``self.saved_output(raw)`` give the
    saved values as graph tensors); it runs under ``create_graph=True``, so gradients of
    gradients work. Subclasses with PyTorch's contract (a ``@staticmethod forward(ctx, ...)``)
    are user Functions: see ``manygrad.autograd._userfn``.
    """

    # NOTE: _seq, the creation number (see _next_seq), is a slot: it outlives the release
    # of a node's saved values; unset (a node made by hand) it is unknown, never pruned
    # NOTE: _skip: a bit per positional argument that PyTorch's node has no edge for (Python
    # numbers and other non-tensors, integer and bool tensors); see next_functions
    __slots__ = ("_edges", "needs_input_grad", "_saved", "_seq", "_skip", "__dict__",
                 "__weakref__")  # fmt: skip
    op_name = "Function"
    node_name = None  # the node's name where PyTorch's is not f"{op_name}Backward0"
    # the positional arguments that next_functions lists, in order, tensors or not (None:
    # the tensor arguments that are not integer or bool); e.g. (0, 1) for ops whose Python
    # number operand PyTorch wraps in a tensor (x * 2 lists (None, 0) for the 2)
    graph_inputs = None
    differentiable = True
    moves_device = False  # True for ops whose output lives on another device
    changes_dtype = False  # True for casts: their output dtype is meant to differ
    view = False  # True: the output is a view of input 0 (shares its memory and version)
    complex_ok = False  # True: forward and backward are right for complex tensors too
    # True: backward reads no array the node keeps (shapes, dims and dtypes only), so the
    # node stays usable after a backward without retain_graph, as PyTorch's nodes that save
    # no tensors (view, cat, add, sum, ...)
    keeps_nothing = False
    _nout = 1  # number of outputs (user Functions may have several)
    _user = False  # PyTorch's contract (staticmethod forward/backward)
    takes_sparse_grad = False  # True: backward takes a SparseCooTensor gradient as is

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if isinstance(cls.__dict__.get("forward"), staticmethod) or "setup_context" in vars(cls):
            from . import _userfn

            _userfn.install(cls)

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
                if a.__class__ is not Tensor and a.is_quantized:
                    return _quantized_op(cls, args, kwargs)
                d = a._data
                raw[i] = d
                if dev is None:
                    dev = a._device
                    dt0 = d.dtype
                elif a._device is not dev and a._device != dev:
                    return _mixed_devices(cls, args, kwargs, dev, a._device)
                if a.requires_grad:
                    record = True
        record = record and _grad_enabled and cls.differentiable
        if dev is _META:  # NOTE: ops run on meta storage as plain arrays (zero strides)
            raw = [r.view(_ndarray) if r.__class__ is _MetaArray else r for r in raw]
        if dt0 is not None and dt0.char not in _PLAIN and not cls.view:  # complex, bf16, float8
            if dt0.kind == "c" and not cls.complex_ok:
                raise DTypeError(
                    f"{cls.op_name.lower()}: complex tensors are not supported by this op yet; "
                    "take .real / .imag (or mg.view_as_real(x)) and apply it to those"
                )
            if dt0.itemsize == 1:  # float8: PyTorch's few CPU ops, in float32; others refused
                _float8.gate(cls, args, raw, dt0)
        ctx = cls()
        if record:
            needs, edges, saved = [], [], []
            inference = False
            skip = 0
            for i, a in enumerate(args):
                if isinstance(a, Tensor):
                    d = raw[i]
                    vc = a._vc
                    if vc is None:
                        vc = a._vc = [0, None]
                    saved.append((id(d), vc, vc[0], i))
                    if a._meta.__class__ is _InferenceMark:
                        inference = True
                    if a.requires_grad:
                        needs.append(True)
                        fn = a.grad_fn
                        if a._base is None and (fn is None or fn._nout == 1):  # NOTE: inlined _edge
                            edges.append((fn, a if fn is None else None, d.shape, d.dtype, 0))
                        else:
                            edges.append(_edge(a))
                        continue
                    if d.dtype.kind in "biu":  # indices and masks: not an input of the node
                        skip |= 1 << i
                else:
                    skip |= 1 << i
                needs.append(False)
                edges.append(None)
            ctx._edges = edges
            ctx._skip = skip
            ctx._seq = _next_seq()
        else:
            # NOTE: nothing needs a gradient: no graph, and no per-argument lists to build
            needs = _NO_NEEDS[len(args)] if len(args) < 8 else [False] * len(args)
        ctx.needs_input_grad = needs
        # NOTE: CuPy runs kernels on the current GPU and refuses (or corrupts) arrays of
        # another one: the inputs' GPU is made current for the op
        scope = backend.device_scope(dev) if dev is not None and dev.type != "cpu" else None
        prof = _profile
        if prof is not None:
            t0 = prof.clock()
        try:
            if scope is None or scope is _NULL_SCOPE:
                out = ctx.forward(*raw, **kwargs)
            else:
                with scope:
                    out = ctx.forward(*raw, **kwargs)
        except ValueError as e:
            if "could not be broadcast" not in str(e):
                raise
            raise _broadcast_error(cls.op_name, raw) from None
        except MemoryError as e:
            raise _out_of_memory(cls.op_name, dev, e) from e
        if prof is not None:
            prof.op(cls.op_name, t0, raw)
        if out.__class__ is not _ndarray and isinstance(out, _np_generic):
            out = _np.asarray(out)  # NOTE: NumPy gives scalars for 0-d results
        if dt0 is not None and dt0.num >= 256 and out.dtype is _F32 and not cls.changes_dtype:
            # NOTE: ml_dtypes promotes bfloat16 with a Python float to float32; an op on
            # bfloat16 tensors gives bfloat16, as in PyTorch (float8: rounded as PyTorch)
            out = out.astype(dt0) if dt0.itemsize != 1 else _float8.to_float8(out, dt0)
        t = Tensor._wrap(out, None if cls.moves_device else dev)
        if cls.view and not ctx.__dict__.get("copied"):
            _inplace.make_view(t, args[0], record)
        if record:
            if inference:  # NOTE: an inference tensor in the graph: refused if the node keeps it
                _inference.check_saved(ctx, args, raw)
            vc = t._vc
            if vc is None:
                vc = t._vc = [0, None]
            saved.append((id(out), vc, vc[0], -1))
            ctx._saved = saved
            if _saved_tensor_hooks is not None:
                from ._saved_hooks import pack_node

                pack_node(ctx, _saved_tensor_hooks)
            t.requires_grad = True
            t.grad_fn = ctx
            if _anomaly:
                _anomaly_mode.remember(ctx)
            if _recorders is not None:
                for r in _recorders:
                    r.append(ctx)
        if _trace is not None:
            _trace(ctx, args, kwargs, t)
        return t

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, g):  # pragma: no cover - abstract
        raise NotImplementedError

    # ---------------------------------------------------------------- double backward
    def backward_graph(self, g):
        """Double backward through ``reference`` (the op written with differentiable ops,
        on the tensors of ``self.inputs``, the raw arrays of forward's positional
        arguments); ops without one give gradients that can't be differentiated again."""
        ref = getattr(type(self), "reference", None)
        raws = self.__dict__.get("inputs")
        if ref is None or raws is None:
            return NotImplemented
        ins = [self.saved_input(i, r) if backend.is_array(r) else r for i, r in enumerate(raws)]
        # NOTE: a view per argument: one tensor given twice gets a gradient per position
        ins = [t.view_as(t) if isinstance(t, Tensor) and t.requires_grad else t for t in ins]
        with set_grad_enabled(True):
            out = ref(self, *ins)
        if out is NotImplemented:
            return NotImplemented
        want = [i for i, t in enumerate(ins) if isinstance(t, Tensor) and t.requires_grad
                and self.needs_input_grad[i]]  # fmt: skip
        res = [None] * len(self._edges)
        if want:
            gs = grad(out, [ins[i] for i in want], g, create_graph=True, allow_unused=True)
            for i, gi in zip(want, gs):
                res[i] = gi
        return tuple(res)

    def backward_of_linear(self, g):
        """``backward_graph`` of an op linear in its first input (pooling, padding): its
        gradient is the op's adjoint applied to ``g``, an op whose own gradient is the op
        again (``self.args`` holds the op's other arguments)."""
        return (_inplace.Adjoint.apply(g, self),)

    def saved_input(self, i: int, raw) -> Tensor:
        """In ``backward_graph``: the raw array that forward saved for input ``i``, as a
        tensor connected to the graph (a constant when input ``i`` needs no gradient)."""
        if not backend.is_array(raw):
            return raw  # a Python number argument
        e = self._edges[i] if i < len(self._edges) else None
        if e is None:
            return Tensor._wrap(raw)
        if e[1] is not None:
            return e[1]
        t = Tensor._wrap(raw)
        t.requires_grad = True
        t.grad_fn = e[0]
        if e[4]:
            t._meta = {"oi": e[4]}
        return t

    def saved_output(self, raw, i: int = 0) -> Tensor:
        """In ``backward_graph``: the op's output ``raw`` as a tensor of the graph."""
        t = Tensor._wrap(raw)
        t.requires_grad = True
        t.grad_fn = self
        if i:
            t._meta = {"oi": i}
        return t

    # ---------------------------------------------------------------- graph inspection
    def name(self) -> str:
        """The node's name, PyTorch's where the op is PyTorch's (``SumBackward0``)."""
        return type(self).__name__

    def __repr__(self) -> str:
        cls = type(self)
        where = f"{cls.__module__}." if cls._user else ""  # NOTE: as PyTorch's reprs
        return f"<{where}{cls.__qualname__} object at {id(self):#x}>"

    @property
    def next_functions(self) -> tuple:
        """``(node, output index)`` per input of the node, as PyTorch lists them: one per
        tensor argument, ``(None, 0)`` where it needs no gradient; an ``AccumulateGrad``
        node for a leaf tensor that requires one."""
        edges = self._graph_edges()
        out = []
        for i in self._listed_slots():
            e = edges[i] if i < len(edges) else None
            if e is None:
                out.append((None, 0))
            elif e[0] is not None:
                out.append((e[0], e[4]))
            else:
                out.append((AccumulateGrad.of(e[1]), 0))
        return tuple(out)

    def _graph_edges(self) -> list:
        return self.__dict__.get("_edges_kept") or getattr(self, "_edges", None) or ()

    def _listed_slots(self) -> list:
        """The positional arguments that ``next_functions`` lists, in order."""
        slots = type(self).graph_inputs
        if slots is None:
            skip = getattr(self, "_skip", 0)
            slots = [i for i in range(len(self._graph_edges())) if not skip >> i & 1]
        return slots

    @property
    def metadata(self) -> dict:
        """A dict of the user's own, kept with the node (PyTorch's ``Node.metadata``)."""
        return self.__dict__.setdefault("_metadata", {})

    def register_hook(self, hook):
        """``hook(grad_inputs, grad_outputs)`` after this node's backward; a tuple it returns
        replaces ``grad_inputs`` (PyTorch's ``Node.register_hook``). Returns a handle."""
        from .graph import add_hook

        return add_hook(self, "post", hook)

    def register_prehook(self, hook):
        """``hook(grad_outputs)`` before this node's backward; a tuple it returns replaces
        ``grad_outputs``. Returns a handle."""
        from .graph import add_hook

        return add_hook(self, "prenode", hook)


class AccumulateGrad(Function):
    """The node a leaf tensor's gradient lands in (``variable``), as ``next_functions``
    shows it: one per leaf, living as long as the leaf does."""

    node_name = "AccumulateGrad"
    differentiable = False
    keeps_nothing = True
    _of: dict = {}  # id(leaf) -> its node, dropped when the leaf goes

    @classmethod
    def of(cls, t: Tensor) -> AccumulateGrad:
        node = cls._of.get(id(t))
        if node is None or node._var() is not t:
            node = cls()
            # NOTE: the node holds its leaf weakly (the leaf keeps it), so neither outlives
            # the leaf; PyTorch's graph keeps it while the graph lives
            node._var, node._edges = weakref.ref(t), []
            cls._of[id(t)] = node
            weakref.finalize(t, cls._of.pop, id(t), None)
        return node

    @property
    def variable(self) -> Tensor | None:
        return self._var()

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"  # NOTE: PyTorch's name() for this node

    def register_hook(self, hook):
        """``hook(grad_inputs, grad_outputs)`` once the gradient is accumulated into the
        leaf (``grad_inputs`` is empty, ``grad_outputs`` holds the leaf's ``.grad``)."""

        def post(t):
            hook((), (t.grad,))  # NOTE: what it returns replaces nothing (no grad_inputs)

        return self.variable.register_post_accumulate_grad_hook(post)


# isort: off
# NOTE: the submodules build on Function, and functional on grad: this order matters
from . import _anomaly_mode, _inference, _inplace  # noqa: E402
from ._anomaly_mode import detect_anomaly, set_detect_anomaly  # noqa: E402,F401
from ._engine import _run, backward, grad, retain  # noqa: E402,F401
from ._userfn import FunctionCtx, once_differentiable  # noqa: E402,F401
from . import forward_ad, functional, graph  # noqa: E402,F401
from .gradcheck import GradcheckError, gradcheck, gradgradcheck  # noqa: E402,F401
# isort: on

Variable = Tensor  # NOTE: PyTorch's old name; a Variable is a Tensor
