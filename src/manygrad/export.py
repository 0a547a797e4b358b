"""``torch.export``: a model's forward recorded as a graph of manygrad ops.

``export(model, args)`` runs the forward once on the example arguments and records every
op it executes (as ``manygrad.onnx`` does) into a ``torch.fx`` graph: placeholders for the
tensor inputs, ``get_attr`` nodes for parameters, buffers and constants, one
``call_function`` node per op. ``ep.module()`` runs that graph; it shares the model's
parameters, so it can be fine-tuned too.

As PyTorch's, the graph is specialised to the example: Python control flow and shapes
are fixed. A dim declared dynamic (``dynamic_shapes={"x": {0: Dim("batch")}}``) may take
other sizes (within its ``min``/``max``): the model is traced again for each new size
(cached), since sizes computed in Python are constants of a graph. Other dims, and
non-tensor arguments, must equal the example's. In-place updates of traced tensors are
recorded as the op they compute; host reads of traced values warn (the graph keeps what
the example did), and a buffer that the forward changes in place (batch-norm statistics in
training mode) is not updated by the graph: export in ``eval()`` mode.
"""

from __future__ import annotations

import inspect
import warnings

from . import autograd, backend
from .fx.graph import Graph
from .fx.graph_module import GraphModule, _assign_attr
from .nn import Module
from .onnx.graph import UnsupportedOpError
from .onnx.trace import Tracer, TracerWarning, _HostReads, _InPlace
from .tensor import Tensor

__all__ = [
    "Dim",
    "GuardError",
    "ExportedProgram",
    "dims",
    "export",
    "export_for_training",
    "load",
    "save",
]

_PRIMITIVE = (int, float, bool, str, type(None))


def _primitive(v) -> bool:
    if isinstance(v, _PRIMITIVE):
        return True
    if isinstance(v, (list, tuple)):
        return all(_primitive(x) for x in v)
    return False


class _OpCall:
    """The target of one recorded op: calls ``cls.apply`` with the recorded constants that
    are not plain Python values (geometry objects, arrays) put back in place."""

    def __init__(self, cls, layout, hidden_kwargs):
        self.cls = cls
        self.layout = layout  # per positional argument: None (given by the node) or a constant
        self.hidden_kwargs = hidden_kwargs
        self.__name__ = self.__qualname__ = _snake(cls.op_name)
        self.__module__ = "manygrad_export"

    def __call__(self, *given, **kwargs):
        it = iter(given)
        args = [next(it) if slot is None else slot[0] for slot in self.layout]
        return self.cls.apply(*args, **kwargs, **self.hidden_kwargs)

    def __repr__(self) -> str:
        return f"manygrad.{self.__name__}"


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper()):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


class _Tracer(Tracer):
    """Maps traced tensors to graph nodes while the forward runs (ONNX's tracer, whose
    values are names, with fx nodes as the values)."""

    what = "torch.export"

    def __init__(self, graph: Graph, named: dict):
        self.g = graph
        self._named = named  # id(tensor or its array) -> qualified name in the model
        self._names: dict[int, object] = {}  # id(tensor or array) -> its node
        self._keep: list = []
        self.traced: set[int] = set()
        self.made_by: dict[int, str] = {}
        self.attrs: dict[str, Tensor] = {}  # get_attr name -> tensor
        self._consts = 0

    def name(self, t, op: str = ""):
        n = self._names.get(id(t))
        if n is None and isinstance(t, Tensor):
            n = self._names.get(id(t._data))
        if n is not None:
            return n
        if not isinstance(t, Tensor):
            t = Tensor._wrap(t)
        qual = self._named.get(id(t)) or self._named.get(id(t._data))
        if qual is None:
            qual = f"_tensor_constant{self._consts}"
            self._consts += 1
            # NOTE: a copy of the array, not t.clone(): an op here would be traced too
            with backend.device_scope(t._device):
                self.attrs[qual] = Tensor._wrap(t._data.copy(), t._device)
        else:
            self.attrs[qual] = t
        n = self.g.get_attr(qual)
        self.bind(t, n, traced=False)
        return n

    def __call__(self, fnode, args, kwargs, out) -> None:
        cls = type(fnode)
        self.made_by[id(out)] = cls.op_name
        layout, given = [], []
        for a in args:
            if isinstance(a, Tensor) or (hasattr(a, "dtype") and hasattr(a, "shape")):
                layout.append(None)
                given.append(self.name(a, cls.op_name))
            elif _primitive(a):
                layout.append(None)
                given.append(a)
            else:
                layout.append((a,))
        shown = {k: v for k, v in kwargs.items() if _primitive(v)}
        hidden = {k: v for k, v in kwargs.items() if k not in shown}
        node = self.g.call_function(_OpCall(cls, layout, hidden), tuple(given), shown)
        node.meta["val"] = (tuple(out.shape), out.dtype)
        self.bind(out, node)


# ---------------------------------------------------------------------------- dims


class Dim:
    """A dim that may change size: ``Dim("batch", min=1, max=1024)``."""

    AUTO: Dim
    STATIC: Dim
    DYNAMIC: Dim

    def __init__(self, name: str, *, min: int | None = None, max: int | None = None):  # noqa: A002
        self.__name__ = name
        self.min = 0 if min is None else int(min)
        self.max = max if max is None else int(max)
        if self.max is not None and self.max < self.min:
            raise ValueError(f"Dim {name!r}: max ({self.max}) is below min ({self.min})")

    def __repr__(self) -> str:
        bounds = f", min={self.min}" if self.min else ""
        bounds += f", max={self.max}" if self.max is not None else ""
        return f"Dim('{self.__name__}'{bounds})"


Dim.AUTO, Dim.DYNAMIC = Dim("AUTO"), Dim("DYNAMIC")
Dim.STATIC = Dim("STATIC")


def dims(*names: str, min: int | None = None, max: int | None = None) -> tuple:  # noqa: A002
    """One ``Dim`` per name, all with the same bounds."""
    return tuple(Dim(n, min=min, max=max) for n in names)


def _dynamic_dims(spec, names: list[str], n: int) -> list[dict]:
    """Per top-level argument, {dim: Dim} of the dims declared dynamic."""
    out = [{} for _ in range(n)]
    if spec is None:
        return out
    if isinstance(spec, dict):
        items = []
        for k, v in spec.items():
            if k not in names:
                raise ValueError(
                    f"export: dynamic_shapes names {k!r}, which is not an argument of the "
                    f"forward (its arguments: {names})"
                )
            items.append((names.index(k), v))
    elif isinstance(spec, (list, tuple)):
        items = list(enumerate(spec))
    else:
        raise TypeError("export: dynamic_shapes must be a dict by argument name, or a tuple")
    for i, v in items:
        if v is None:
            continue
        per = v.items() if isinstance(v, dict) else enumerate(v)
        for d, dim in per:
            if dim is not None and dim is not Dim.STATIC:
                out[i][int(d)] = dim if isinstance(dim, Dim) else Dim(f"dim{i}_{d}")
    return out


# ---------------------------------------------------------------------------- export


def _same_graph(a: GraphModule, b: GraphModule) -> bool:
    """Whether two traces recorded the same program: the same code, the same op classes
    with the same hidden constants, the same attributes (constants equal in value)."""
    import pickle

    if a.code != b.code:
        return False
    for x, y in zip(a.graph.nodes, b.graph.nodes):
        tx, ty = x.target, y.target
        if isinstance(tx, _OpCall) or isinstance(ty, _OpCall):
            if not (isinstance(tx, _OpCall) and isinstance(ty, _OpCall)) or tx.cls is not ty.cls:
                return False
            try:
                if pickle.dumps((tx.layout, tx.hidden_kwargs)) != pickle.dumps(
                    (ty.layout, ty.hidden_kwargs)
                ):
                    return False
            except Exception:  # noqa: BLE001 - constants that can't be compared: assume not
                return False
    ta = dict(a.named_parameters()) | dict(a.named_buffers())
    tb = dict(b.named_parameters()) | dict(b.named_buffers())
    if ta.keys() != tb.keys():
        return False
    for k, t in ta.items():
        u = tb[k]
        if t is u:
            continue
        if tuple(t.shape) != tuple(u.shape) or t.dtype != u.dtype:
            return False
        if not bool((backend.to_numpy(t._data) == backend.to_numpy(u._data)).all()):
            return False
    return True


class GuardError(RuntimeError, AssertionError):
    """An input of ``ep.module()`` does not match what the program was exported for (an
    ``AssertionError`` as PyTorch's guards raise, and a ``RuntimeError``)."""


class ExportedProgram:
    """What ``export`` returns: ``module()`` runs it; ``graph`` and ``graph_module`` show it."""

    def __init__(self, model, args, kwargs, spec):
        self._model = model
        self._names = _arg_names(model, len(args))
        self._dynamic = _dynamic_dims(spec, self._names, len(args))
        self.example_inputs = (args, kwargs)
        self._cache: dict = {}
        gm = self._trace(args, kwargs)
        self._cache[self._key(args, kwargs)] = gm
        self.graph_module = gm
        self._module = _ExportedModule(self)

    # ------------------------------------------------------------------ tracing
    def _trace(self, args, kwargs) -> GraphModule:
        model = self._model
        named = {}
        for qual, t in list(model.named_parameters()) + list(model.named_buffers()):
            named[id(t)] = named[id(t._data)] = qual
        before = {q: (t._data, t._data.copy()) for q, t in model.named_buffers()}
        graph = Graph()
        tracer = _Tracer(graph, named)
        for name, a in zip(self._names, args):
            if isinstance(a, Tensor):
                tracer.bind(a, graph.placeholder(name))
        for name, a in kwargs.items():
            if isinstance(a, Tensor):
                tracer.bind(a, graph.placeholder(name))
        if autograd._trace is not None:
            raise RuntimeError("torch.export: another export is tracing already (one at a time)")
        autograd._trace = tracer
        try:
            with _HostReads(tracer), _InPlace(tracer):
                out = model(*args, **kwargs)
        finally:
            autograd._trace = None
        changed = [q for q, t in model.named_buffers()
                   if q in before and (t._data is not before[q][0] or
                                       not bool((t._data == before[q][1]).all()))]  # fmt: skip
        if changed:
            warnings.warn(
                f"torch.export: the forward changed the buffers {changed} in place (training "
                "mode?); the exported program does not repeat that update: export the model "
                "in eval() mode",
                TracerWarning,
                stacklevel=4,
            )
        graph.output(_map_out(out, tracer))
        root = Module()
        for qual, t in tracer.attrs.items():
            _assign_attr(t, root, qual)
        return GraphModule(root, graph)

    def _is_generic(self) -> bool:
        """Whether the first graph serves every size of the dynamic dims: traced again with
        each dynamic dim one larger and one smaller (the example's rows repeated or dropped),
        the model gives the same graph (ops, constants, attributes). A loaded program, which
        has no model to trace again, runs it for sizes it holds no graph for."""
        cached = self.__dict__.get("_generic")
        if cached is not None or self._model is None:
            return bool(cached)
        self._generic = False
        if not any(self._dynamic):
            return False
        ex_args, ex_kwargs = self.example_inputs
        checked = 0
        for step in (1, -1):
            alt = self._resized(ex_args, step)
            if alt is None:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    gm = self._trace(alt, ex_kwargs)
            except Exception:  # noqa: BLE001 - a model that refuses that size: not generic
                return False
            if not _same_graph(self.graph_module, gm):
                return False
            checked += 1
        self._generic = checked > 0
        return self._generic

    def _resized(self, args, step: int):
        """``args`` with every dynamic dim ``step`` longer (the last row repeated) or
        shorter, or None where a dim's bounds forbid it."""
        out = list(args)
        with autograd.no_grad():
            for i, per in enumerate(self._dynamic):
                for d, dim in sorted(per.items()):
                    t = out[i]
                    n = t.shape[d]
                    new = n + step
                    if new < max(dim.min, 1) or (dim.max is not None and new > dim.max):
                        return None
                    rows = list(range(min(n, new))) + [n - 1] * max(0, new - n)
                    idx = Tensor._wrap(backend.array_module(t._data).asarray(rows), t._device)
                    out[i] = t.index_select(d, idx)
        return out

    def _key(self, args, kwargs):
        vals = list(args) + [kwargs[k] for k in sorted(kwargs)]
        return tuple(tuple(a.shape) if isinstance(a, Tensor) else repr(a) for a in vals)

    def _check(self, args, kwargs) -> GraphModule:
        ex_args, ex_kwargs = self.example_inputs
        if len(args) != len(ex_args):
            raise TypeError(
                f"the exported program takes {len(ex_args)} positional inputs, got {len(args)}"
            )
        if set(kwargs) != set(ex_kwargs):
            raise TypeError(
                f"the exported program takes the keyword inputs {sorted(ex_kwargs)}, got "
                f"{sorted(kwargs)}"
            )
        retrace = False
        for i, (a, e) in enumerate(zip(args, ex_args)):
            where = f"*args[{i}]"
            if isinstance(e, Tensor):
                if not isinstance(a, Tensor):
                    raise TypeError(
                        f"Expected input at {where} to be a Tensor, got {type(a).__name__}"
                    )
                if a.ndim != e.ndim or a.dtype != e.dtype:
                    raise GuardError(
                        f"Expected input at {where} to have {e.ndim} dims and dtype {e.dtype}, "
                        f"got {a.ndim} dims and {a.dtype}"
                    )
                for d, (x, y) in enumerate(zip(a.shape, e.shape)):
                    dim = self._dynamic[i].get(d)
                    if dim is None and x != y:
                        raise GuardError(
                            f"Expected input at {where}.shape[{d}] to be equal to {y}, but got "
                            f"{x} (declare the dim dynamic with dynamic_shapes to allow it)"
                        )
                    if dim is not None and (x < dim.min or (dim.max is not None and x > dim.max)):
                        raise GuardError(
                            f"Expected input at {where}.shape[{d}] to be within "
                            f"[{dim.min}, {dim.max}] ({dim!r}), but got {x}"
                        )
                    retrace |= x != y
            elif a != e:
                raise GuardError(
                    f"Expected input at {where} to be equal to {e!r}, but got {a!r} (non-tensor "
                    "inputs are fixed at export)"
                )
        for k, e in ex_kwargs.items():
            a = kwargs[k]
            if isinstance(e, Tensor) != isinstance(a, Tensor) or (
                isinstance(e, Tensor) and tuple(a.shape) != tuple(e.shape)
            ) or (not isinstance(e, Tensor) and a != e):  # fmt: skip
                raise GuardError(f"Expected input {k!r} to match the example's, got {a!r}")
        if not retrace:
            return self.graph_module
        key = self._key(args, kwargs)
        gm = self._cache.get(key)
        if gm is None:
            if self._model is None and self.__dict__.get("_generic"):
                return self.graph_module  # NOTE: checked at export: the same for all sizes
            if self._model is None:
                sizes = [k for k in self._cache]
                raise GuardError(
                    f"this exported program was loaded from a file, which holds graphs for the "
                    f"input sizes {sizes} only, not {list(key)} (a loaded program has no model "
                    "to trace again); run the original program on every size you need before "
                    "torch.export.save"
                )
            gm = self._cache[key] = self._trace(args, kwargs)
        return gm

    # ------------------------------------------------------------------ PyTorch's surface
    def module(self) -> Module:
        """The exported program as a module: call it like the model."""
        return self._module

    @property
    def graph(self) -> Graph:
        return self.graph_module.graph

    def _holder(self) -> Module:
        """The module holding the parameters: the model, or a loaded program's graph."""
        return self._model if self._model is not None else self.graph_module

    @property
    def state_dict(self) -> dict:
        if self._model is None:
            return dict(self._state_dict)
        return dict(self._model.state_dict(keep_vars=True))

    @property
    def constants(self) -> dict:
        return {
            k: v for k, v in self.graph_module.named_buffers() if k.startswith("_tensor_constant")
        }

    @property
    def range_constraints(self) -> dict:
        return {d.__name__: (d.min, d.max) for per in self._dynamic for d in per.values()}

    @property
    def graph_signature(self):
        from types import SimpleNamespace

        if self._model is None:
            params, buffers = self._signature
        else:
            params = [n for n, _ in self._model.named_parameters()]
            buffers = [n for n, _ in self._model.named_buffers()]
        inputs = [n.name for n in self.graph.nodes if n.op == "placeholder"]
        return SimpleNamespace(parameters=params, buffers=buffers, user_inputs=inputs)

    def run_decompositions(self, decomp_table=None, decompose_custom_triton_ops=False):
        """The graph already holds manygrad's own ops: returned as it is."""
        return self

    def validate(self) -> None:
        return None

    def __call__(self, *args, **kwargs):
        raise RuntimeError(
            "Unable to call ExportedProgram directly. You should use "
            "`exported_program.module()` instead."
        )

    def __str__(self) -> str:
        code = self.graph_module.code.strip("\n")
        body = "\n".join("    " + line for line in code.splitlines())
        return f"ExportedProgram:\n{body}\n"


class _ExportedModule(Module):
    """``ep.module()``: checks the inputs against the export, then runs the graph."""

    def __init__(self, ep: ExportedProgram):
        super().__init__()
        self.__dict__["_ep"] = ep

    @property
    def graph(self) -> Graph:
        return self._ep.graph

    @property
    def code(self) -> str:
        return self._ep.graph_module.code

    def forward(self, *args, **kwargs):
        ep = self.__dict__["_ep"]
        gm = ep._check(args, kwargs)
        tensors = [a for a in args if isinstance(a, Tensor)]
        tensors += [kwargs[k] for k, v in ep.example_inputs[1].items() if isinstance(v, Tensor)]
        return gm(*tensors)

    def parameters(self, recurse: bool = True):
        return self.__dict__["_ep"]._holder().parameters(recurse)

    def named_parameters(self, *args, **kwargs):
        return self.__dict__["_ep"]._holder().named_parameters(*args, **kwargs)

    def state_dict(self, *args, **kwargs):
        ep = self.__dict__["_ep"]
        if ep._model is None:
            return dict(ep.state_dict)
        return ep._model.state_dict(*args, **kwargs)


def _arg_names(model, n: int) -> list[str]:
    try:
        params = [p for p in inspect.signature(model.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]  # fmt: skip
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params[:n]]
    names += [f"arg{i}" for i in range(len(names), n)]
    return names


def _map_out(out, tracer: _Tracer):
    if isinstance(out, Tensor):
        return tracer.name(out)
    if isinstance(out, tuple) and hasattr(out, "_fields"):
        return type(out)(*(_map_out(o, tracer) for o in out))
    if isinstance(out, (list, tuple)):
        return type(out)(_map_out(o, tracer) for o in out)
    if isinstance(out, dict):
        return {k: _map_out(v, tracer) for k, v in out.items()}
    return out


def export(mod, args, kwargs=None, *, dynamic_shapes=None, strict: bool = False,
           preserve_module_call_signature=(), prefer_deferred_runtime_asserts_over_guards=False):  # fmt: skip
    """Record ``mod``'s forward on the example ``args`` as an ``ExportedProgram``.

    Example::

        ep = mg.export.export(model.eval(), (x,),
                              dynamic_shapes={"x": {0: mg.export.Dim("batch")}})
        y = ep.module()(x2)
    """
    if not isinstance(mod, Module):
        raise TypeError(f"export: expected an nn.Module, got {type(mod).__name__}")
    if not isinstance(args, tuple):
        raise TypeError(
            f"export: args must be a tuple of example inputs, got {type(args).__name__}; "
            "write (x,) for one input"
        )
    kwargs = dict(kwargs or {})
    try:
        return ExportedProgram(mod, args, kwargs, dynamic_shapes)
    except UnsupportedOpError as e:
        raise UnsupportedOpError(str(e).replace("onnx.export", "torch.export")) from None


export_for_training = export


def save(ep, f, *, extra_files=None, opset_version=None, pickle_protocol=2) -> None:
    """Write ``ep`` to a file (a path or a binary file object) that ``load`` reads back
    without the model's code: its graphs (one per input size traced so far), parameters,
    buffers and constants, and ``extra_files`` (``{name: str}``).

    The format is manygrad's (a safetensors file); PyTorch's ``.pt2`` archives, graphs of its
    aten ops, are not read or written.

    Example::

        mg.export.save(mg.export.export(model.eval(), (x,)), "model.pt2")
        y = mg.export.load("model.pt2").module()(x)
    """
    from . import _export_archive

    if not isinstance(ep, ExportedProgram):
        raise TypeError(f"torch.export.save: expected an ExportedProgram, got {type(ep).__name__}")
    _export_archive.save(ep, f, extra_files)


def load(f, *, extra_files=None, expected_opset_version=None):
    """Read an exported program that ``save`` wrote; ``extra_files`` (a dict of names) gets
    the saved strings filled in. Its ``module()`` runs the saved graphs with the same input
    checks. Other sizes of a dynamic dim run the first graph where ``save`` found it the same
    at the sizes next to the example's (no size appears in it as a constant); otherwise the
    sizes the file holds no graph for are refused (there is no model to trace again)."""
    from . import _export_archive

    return _export_archive.load(f, extra_files)
