"""Custom operators with PyTorch's ``torch.library`` API.

A function becomes an operator that the rest of manygrad treats as one opaque step::

    @mg.library.custom_op("mylib::scale", mutates_args=())
    def scale(x: mg.Tensor, s: float) -> mg.Tensor:
        return x * s                       # runs without recording a graph

    @scale.register_fake                   # shapes and dtypes only: used on ``meta``
    def _(x, s):
        return mg.empty_like(x)

    def backward(ctx, g):
        return g * ctx.s, None

    def setup_context(ctx, inputs, output):
        ctx.s = inputs[1]

    scale.register_autograd(backward, setup_context=setup_context)
    mg.library.ops.mylib.scale(x, 2.0)     # ``torch.ops.mylib.scale`` under the import hook

What PyTorch's operators do, these do: the kernel runs with gradient recording off, so
backward goes through the registered formula (or raises, naming ``register_autograd``,
when there is none); per-device kernels (``register_kernel("cpu")``); outputs may not
alias inputs; arguments named in ``mutates_args`` get their version bumped, so autograd
sees the change. ``Library(ns, "DEF")`` with schema strings (``lib.define``,
``lib.impl(name, fn, "CPU")``) and the function forms (``define``, ``impl``,
``register_fake``, ...) are the older API over the same operators. ``opcheck`` tests an
operator's registrations. ``vmap`` calls an operator once per sample, so
``register_vmap`` rules are kept and not needed.
"""

from __future__ import annotations

import functools
import inspect
import re
import types
import typing

from . import autograd as _autograd
from .tensor import Tensor

__all__ = [
    "CustomOpDef",
    "Library",
    "custom_op",
    "define",
    "impl",
    "infer_schema",
    "opcheck",
    "ops",
    "register_autograd",
    "register_fake",
    "register_kernel",
    "register_vmap",
]

_OPS: dict[str, CustomOpDef] = {}  # "ns::name" -> operator
_DEF_LIBS: dict[str, Library] = {}  # namespace -> the Library(ns, "DEF") that owns it
_DEVICE_TYPES = ("cpu", "cuda", "meta", "fakegpu")


def _split(qualname: str, what: str = "custom_op") -> tuple[str, str]:
    if not isinstance(qualname, str) or qualname.count("::") != 1:
        raise ValueError(
            f"{what}: expected a name of the form 'namespace::name' (e.g. 'mylib::scale'), "
            f"got {qualname!r}"
        )
    ns, name = qualname.split("::")
    if not ns.isidentifier() or not name.isidentifier():
        raise ValueError(f"{what}: {qualname!r}: the namespace and the name must be identifiers")
    return ns, name


def _tensors(values):
    """The tensors among argument values (lists and tuples of tensors included)."""
    for v in values:
        if isinstance(v, Tensor):
            yield v
        elif isinstance(v, (list, tuple)):
            yield from (x for x in v if isinstance(x, Tensor))


# ---------------------------------------------------------------------------- schemas

_SCHEMA_TYPES = {
    Tensor: "Tensor",
    int: "SymInt",
    float: "float",
    bool: "bool",
    str: "str",
    complex: "complex",
}


def _type_name(ann, where: str) -> str:
    if ann in _SCHEMA_TYPES:
        return _SCHEMA_TYPES[ann]
    if ann is None or ann is type(None):
        return "()"
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        inner = args[0] if args[1] is type(None) else args[1]
        return _type_name(inner, where) + "?"
    if origin in (list, tuple, typing.Sequence) or str(origin) == "collections.abc.Sequence":
        if args and args[0] in _SCHEMA_TYPES and (origin is not tuple or args[-1] is Ellipsis):
            return _SCHEMA_TYPES[args[0]] + "[]"
        if origin is tuple and args and all(a is Tensor for a in args):
            return "(" + ", ".join("Tensor" for _ in args) + ")"
    import numbers

    if ann is numbers.Number:
        return "Scalar"
    raise ValueError(f"infer_schema(func): {where} has unsupported type {ann!r}")


def infer_schema(prototype_function, /, *, mutates_args, op_name=None) -> str:
    """The operator schema of a type-annotated function, as PyTorch writes it:
    ``infer_schema(f, mutates_args={"out"})`` -> ``"(Tensor a, Tensor(a1!) out) -> ()"``."""
    sig = inspect.signature(prototype_function)
    hints = typing.get_type_hints(prototype_function)
    mutated = _mutated_names(mutates_args, sig, "infer_schema")
    parts, kw_marked = [], False
    for index, (name, p) in enumerate(sig.parameters.items()):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ValueError(f"infer_schema(func): *args and **kwargs are not supported ({name})")
        if name not in hints:
            raise ValueError(
                f"infer_schema(func): Parameter {name} must have a type annotation. "
                f"Got func with signature {sig})"
            )
        if p.kind is p.KEYWORD_ONLY and not kw_marked:
            parts.append("*")
            kw_marked = True
        ty = _type_name(hints[name], f"parameter {name}")
        if mutated is not None and name in mutated:
            ty = ty.replace("Tensor", f"Tensor(a{index}!)", 1)  # NOTE: numbered by position
        text = f"{ty} {name}"
        if p.default is not p.empty:
            text += f"={p.default!r}" if not isinstance(p.default, str) else f'="{p.default}"'
        parts.append(text)
    ret = _type_name(hints.get("return", type(None)), "the return value")
    head = op_name or ""
    return f"{head}({', '.join(parts)}) -> {ret}"


def _mutated_names(mutates_args, sig, what):
    if mutates_args == "unknown":
        return None
    if isinstance(mutates_args, str):
        mutates_args = (mutates_args,)
    names = set(mutates_args)
    bad = names - set(sig.parameters)
    if bad:
        raise ValueError(
            f"{what}: mutates_args names {sorted(bad)}, which the function does not take "
            f"(its parameters: {list(sig.parameters)})"
        )
    return names


_ARG = re.compile(
    r"^\s*(?P<type>[\w\[\]?]+(?:\([\w!]*\))?[\[\]?]*)\s+(?P<name>\w+)\s*(?:=\s*(?P<default>.+?))?\s*$"
)


def _parse_schema(schema: str, what: str):
    """(name or None, signature, mutated names) of a schema ``name(Tensor x, *, int k=1) -> T``."""
    m = re.match(r"^\s*([\w.]*)\s*\((.*)\)\s*->\s*(.+)$", schema)
    if m is None:
        raise ValueError(
            f"{what}: can't parse the schema {schema!r}; write e.g. "
            "'scale(Tensor x, float s=1.0) -> Tensor'"
        )
    name, body = m.group(1) or None, m.group(2)
    params, mutated, kw_only, depth, start = [], set(), False, 0, 0
    pieces = []
    for i, ch in enumerate(body):
        depth += ch in "([" and 1 or (ch in ")]" and -1 or 0)
        if ch == "," and depth == 0:
            pieces.append(body[start:i])
            start = i + 1
    if body.strip():
        pieces.append(body[start:])
    for piece in pieces:
        if piece.strip() == "*":
            kw_only = True
            continue
        a = _ARG.match(piece)
        if a is None:
            raise ValueError(f"{what}: can't parse the argument {piece.strip()!r} of {schema!r}")
        if "!" in a.group("type"):
            mutated.add(a.group("name"))
        default = inspect.Parameter.empty
        if a.group("default") is not None:
            default = _schema_default(a.group("default"))
        kind = (
            inspect.Parameter.KEYWORD_ONLY if kw_only else inspect.Parameter.POSITIONAL_OR_KEYWORD
        )
        params.append(inspect.Parameter(a.group("name"), kind, default=default))
    if name is not None:
        name = name.split(".")[0]
    return name, inspect.Signature(params), mutated


def _schema_default(text: str):
    text = text.strip()
    table = {"None": None, "True": True, "False": False, "[]": []}
    if text in table:
        return table[text]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text.strip("\"'")


# ---------------------------------------------------------------------------- operators


class CustomOpDef:
    """One custom operator (what ``custom_op`` returns): call it like the function."""

    def __init__(self, namespace: str, name: str, sig, mutated, fn=None, device_types=None):
        self._namespace, self._name = namespace, name
        self._sig = sig
        self._mutated = mutated  # names of mutated arguments (None: "unknown")
        self._kernels: dict = {}  # device type (None: any) -> function
        self._composite = None  # a kernel of differentiable ops (CompositeImplicitAutograd)
        self._autograd_kernel = None  # a kernel that records its own graph (Autograd key)
        self._fake = None
        self._backward = self._setup_context = None
        self._vmap = None
        self._fn_class = None
        self._owner = None  # the Library that defined it, if any
        if fn is not None:
            for d in _device_list(device_types):
                self._kernels[d] = fn
            functools.update_wrapper(self, fn, updated=())
        self.__name__ = name
        self.__qualname__ = name

    # PyTorch's overload packets: torch.ops.ns.name.default is the operator itself
    @property
    def default(self) -> CustomOpDef:
        return self

    @property
    def _qualname(self) -> str:
        return f"{self._namespace}::{self._name}"

    def __repr__(self) -> str:
        return f"<CustomOpDef({self._qualname})>"

    # ------------------------------------------------------------------ registration
    def register_fake(self, fn):
        """``fn`` gives the outputs' shapes and dtypes (empty tensors) without computing:
        what the operator does on ``meta`` tensors."""
        self._fake = fn
        return fn

    abstract = register_fake

    def register_autograd(self, backward, /, *, setup_context=None) -> None:
        """Make the operator differentiable: ``setup_context(ctx, inputs, output)`` saves
        what ``backward(ctx, *grads)`` needs; backward returns one gradient per input."""
        if not callable(backward):
            raise TypeError(f"register_autograd: backward must be callable, got {backward!r}")
        if setup_context is not None and not callable(setup_context):
            raise TypeError("register_autograd: setup_context must be callable or None")
        if self._mutated:
            raise RuntimeError(
                f"register_autograd: {self._qualname} mutates {sorted(self._mutated)}; "
                "operators that mutate their inputs have no autograd formula (return a new "
                "tensor instead)"
            )
        self._backward, self._setup_context = backward, setup_context
        self._fn_class = None

    def register_kernel(self, device_types, fn=None, /):
        """A kernel for ``device_types`` (``"cpu"``, ``"cuda"``, or a list), used instead of
        the default one on those devices; a decorator without ``fn``."""

        def register(f):
            for d in _device_list(device_types):
                self._kernels[d] = f
            return f

        return register if fn is None else register(fn)

    def register_vmap(self, fn=None, /):
        """Accepted for PyTorch programs; manygrad's ``vmap`` calls the operator once per
        sample, which needs no rule."""

        def register(f):
            self._vmap = f
            return f

        return register if fn is None else register(fn)

    def register_torch_dispatch(self, torch_dispatch_class, fn=None, /):
        raise NotImplementedError(
            f"{self._qualname}.register_torch_dispatch: manygrad has no __torch_dispatch__ "
            "modes; register a kernel per device with register_kernel instead"
        )

    # ------------------------------------------------------------------ calls
    def __call__(self, *args, **kwargs):
        try:
            bound = self._sig.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{self._qualname}: {e} (signature {self._sig})") from None
        bound.apply_defaults()
        values = list(bound.arguments.values())
        tensors = list(_tensors(values))
        dev = tensors[0]._device.type if tensors else "cpu"
        if dev == "meta":
            if self._fake is None:
                raise RuntimeError(
                    f"There was no fake impl registered for {self!r}: on meta tensors an "
                    f"operator runs its fake implementation; add one with "
                    f"@{self._name}.register_fake (it returns empty tensors of the outputs' "
                    "shapes and dtypes)"
                )
            return self._fake(*args, **kwargs)
        if self._composite is not None and not (dev in self._kernels or None in self._kernels):
            return self._composite(*args, **kwargs)
        if self._autograd_kernel is not None:
            return self._autograd_kernel(*args, **kwargs)
        kernel = self._kernels.get(dev, self._kernels.get(None))
        if kernel is None:
            raise NotImplementedError(
                f"{self._qualname} has no kernel for device '{dev}'; register one with "
                f"{self._name}.register_kernel('{dev}') (or torch.library.impl)"
            )
        needs_grad = _autograd.is_grad_enabled() and any(t.requires_grad for t in tensors)
        if not needs_grad:
            with _autograd.no_grad():
                out = kernel(*args, **kwargs)
            self._after(out, tensors, values)
            return out
        return self._function_class().apply(self, kernel, bound, *values)

    def _after(self, out, tensors, values) -> None:
        """PyTorch's checks and effects after a kernel ran: outputs that alias inputs are
        refused; mutated arguments get a new version."""
        from . import backend

        for o in _outputs(out):
            for t in tensors:
                if o is t or backend.shares_memory(o._data, t._data):
                    raise RuntimeError(
                        f"{self._name}: the output of this custom operator (1) must not also be "
                        "an input to this custom operator and (2) may not alias any inputs to "
                        "this custom operator or other returns; return a copy instead: "
                        "y = x.clone()"
                    )
        if self._mutated:
            names = list(self._sig.parameters)
            for name, v in zip(names, values):
                if name in self._mutated:
                    for t in _tensors([v]):
                        _autograd._inplace.bump(t, self._qualname)

    def _function_class(self):
        if self._fn_class is None:
            self._fn_class = _make_function(self)
        return self._fn_class


def _outputs(out):
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [o for o in out if isinstance(o, Tensor)]
    return []


def _make_function(op: CustomOpDef):
    """The autograd Function of an operator called on inputs that require grad."""

    class _Op(_autograd.Function):
        @staticmethod
        def forward(op_, kernel, bound, *values):
            out = kernel(*bound.args, **bound.kwargs)
            op_._after(out, list(_tensors(values)), values)
            if isinstance(out, list):
                out = tuple(out)
            return out

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx._n_values = len(inputs) - 3
            if op._setup_context is not None:
                op._setup_context(ctx=ctx, inputs=tuple(inputs[3:]), output=output)

        @staticmethod
        def backward(ctx, *grads):
            if op._backward is None:
                raise RuntimeError(
                    f"Trying to backward through {op._namespace}.{op._name}.default but no "
                    "autograd formula was registered. Please use register_autograd to add one."
                )
            r = op._backward(ctx, *grads)
            r = tuple(r) if isinstance(r, (tuple, list)) else (r,)
            if len(r) != ctx._n_values:
                raise RuntimeError(
                    f"{op._qualname}: backward returned {len(r)} gradients but the operator "
                    f"has {ctx._n_values} inputs; return one per input (None for those "
                    "without a gradient)"
                )
            return (None, None, None, *r)

    _Op.__name__ = _Op.__qualname__ = f"{op._namespace}_{op._name}"
    return _Op


def _device_list(device_types):
    if device_types is None:
        return [None]
    if isinstance(device_types, str):
        device_types = [device_types]
    out = []
    for d in device_types:
        d = {"default": None, "cpu": "cpu", "cuda": "cuda"}.get(d, d)
        if d is not None and d not in _DEVICE_TYPES:
            raise ValueError(
                f"unknown device type {d!r}: expected 'cpu', 'cuda' (or a list of them)"
            )
        out.append(d)
    return out


def custom_op(name, fn=None, /, *, mutates_args, device_types=None, schema=None):
    """Make ``fn`` (type-annotated) the operator ``name`` ("namespace::name"); a decorator
    without ``fn``. ``mutates_args``: the names of the arguments it writes to (``()`` for
    none, ``"unknown"`` when unsure)."""
    ns, opname = _split(name)

    def make(f):
        sig = inspect.signature(f)
        if schema is not None:  # NOTE: the schema names what is mutated; f binds the call
            mutated = _parse_schema(f"{opname}{schema}", "custom_op")[2]
        else:
            infer_schema(f, mutates_args=mutates_args)  # PyTorch's checks of the annotations
            mutated = _mutated_names(mutates_args, sig, "custom_op")
        qual = f"{ns}::{opname}"
        if qual in _OPS:
            raise RuntimeError(
                f"custom_op: an operator {qual!r} is already defined; pick another name"
            )
        op = CustomOpDef(ns, opname, sig, mutated, f, device_types)
        _OPS[qual] = op
        return op

    return make if fn is None else make(fn)


def _lookup(op, what: str) -> CustomOpDef:
    if isinstance(op, CustomOpDef):
        return op
    if isinstance(op, _OpPacket):  # torch.ops.mylib.scale or its .default, as PyTorch takes
        return op._op
    ns, name = _split(op, what)
    found = _OPS.get(f"{ns}::{name}")
    if found is None:
        raise RuntimeError(
            f"{what}: no operator {op!r} is defined; define it first with "
            "torch.library.custom_op or torch.library.define"
        )
    return found


def register_fake(op, fn=None, /, *, lib=None, _stacklevel: int = 1):
    """``register_fake("mylib::scale")(fn)``: the operator's shape function."""
    target = _lookup(op, "register_fake")

    def register(f):
        return target.register_fake(f)

    return register if fn is None else register(fn)


impl_abstract = register_fake


def register_autograd(op, backward, /, *, setup_context=None, lib=None) -> None:
    """``CustomOpDef.register_autograd`` of the operator named ``op`` ("ns::name")."""
    _lookup(op, "register_autograd").register_autograd(backward, setup_context=setup_context)


def register_kernel(op, device_types, fn=None, /, *, lib=None):
    """``CustomOpDef.register_kernel`` of the operator named ``op``; a decorator without fn."""
    return _lookup(op, "register_kernel").register_kernel(device_types, fn)


def register_vmap(op, fn=None, /, *, lib=None):
    """Accepted for PyTorch programs: ``vmap`` calls an operator once per sample."""
    return _lookup(op, "register_vmap").register_vmap(fn)


def define(qualname, schema, *, lib=None, tags=()) -> None:
    """Declare an operator from a schema (``define("mylib::f", "(Tensor x) -> Tensor")``);
    kernels come with ``impl`` or ``register_kernel``."""
    ns, name = _split(qualname, "define")
    _define(ns, f"{name}{schema}", "define", lib)


def _define(ns: str, schema: str, what: str, lib) -> str:
    name, sig, mutated = _parse_schema(schema, what)
    if name is None:
        raise ValueError(f"{what}: the schema {schema!r} names no operator")
    qual = f"{ns}::{name}"
    if qual in _OPS:
        raise RuntimeError(f"{what}: an operator {qual!r} is already defined")
    op = CustomOpDef(ns, name, sig, mutated)
    op._owner = lib
    _OPS[qual] = op
    return name


def impl(qualname, types, func=None, *, lib=None):
    """``impl("mylib::f", "cpu")(fn)``: a kernel of a defined operator for those device
    types (``"default"``: any device)."""
    op = _lookup(qualname, "impl")

    def register(f):
        for d in _device_list(types):
            op._kernels[d] = f
        return f

    return register if func is None else register(func)


class Library:
    """PyTorch's ``torch.library.Library(ns, kind)``: ``"DEF"`` owns namespace ``ns`` and
    defines operators from schema strings; ``"IMPL"`` and ``"FRAGMENT"`` add to it."""

    def __init__(self, ns: str, kind: str, dispatch_key: str = ""):
        if kind not in ("DEF", "IMPL", "FRAGMENT"):
            raise ValueError(f"Library: kind must be 'DEF', 'IMPL' or 'FRAGMENT', got {kind!r}")
        if not isinstance(ns, str) or not ns.isidentifier():
            raise ValueError(f"Library: the namespace must be an identifier, got {ns!r}")
        if kind == "DEF":
            if ns in _DEF_LIBS or ns in ("aten", "prim", "prims"):
                raise RuntimeError(
                    f"Only a single TORCH_LIBRARY can be used to register the namespace {ns}; "
                    "use Library(ns, 'FRAGMENT') to add operators to it"
                )
            _DEF_LIBS[ns] = self
        self.ns, self.kind, self.dispatch_key = ns, kind, dispatch_key
        self._defined: list[str] = []

    def __repr__(self) -> str:
        return f"Library(kind={self.kind}, ns={self.ns}, dispatch_key={self.dispatch_key})>"

    def define(self, schema: str, alias_analysis: str = "", *, tags=()) -> str:
        if self.kind == "IMPL":
            raise RuntimeError("Library.define: an 'IMPL' library can't define operators")
        name = _define(self.ns, schema, "Library.define", self)
        self._defined.append(name)
        return name

    def impl(self, op_name, fn, dispatch_key: str = "", *, with_keyset: bool = False) -> None:
        """A kernel of operator ``op_name`` for a dispatch key: ``"CPU"``, ``"CUDA"``,
        ``"Meta"`` (the shape function), ``"CompositeImplicitAutograd"`` (made of
        differentiable ops: autograd sees inside), ``"Autograd"`` (records its own graph,
        e.g. through an autograd.Function) or ``"CompositeExplicitAutograd"`` (any device)."""
        if with_keyset:
            raise NotImplementedError("Library.impl: with_keyset=True is not supported")
        if isinstance(op_name, CustomOpDef):
            op = op_name
        else:
            op = _lookup(op_name if "::" in op_name else f"{self.ns}::{op_name.split('.')[0]}",
                         "Library.impl")  # fmt: skip
        key = dispatch_key or self.dispatch_key or "CompositeImplicitAutograd"
        if key in ("CPU", "CUDA"):
            op._kernels[key.lower()] = fn
        elif key in ("CompositeExplicitAutograd", "Default"):
            op._kernels[None] = fn
        elif key == "Meta":
            op._fake = fn
        elif key == "CompositeImplicitAutograd":
            op._composite = fn
        elif key in ("Autograd", "AutogradCPU", "AutogradCUDA"):
            op._autograd_kernel = fn
        else:
            raise ValueError(
                f"Library.impl: dispatch key {key!r} is not supported; use 'CPU', 'CUDA', "
                "'Meta', 'CompositeImplicitAutograd', 'CompositeExplicitAutograd' or 'Autograd'"
            )

    def _destroy(self) -> None:
        for name in self._defined:
            _OPS.pop(f"{self.ns}::{name}", None)
        self._defined.clear()
        if _DEF_LIBS.get(self.ns) is self:
            del _DEF_LIBS[self.ns]


# ---------------------------------------------------------------------------- opcheck


def opcheck(op, args, kwargs=None, *, test_utils=None, raise_exception: bool = True) -> dict:
    """Check an operator's registrations on example arguments, as PyTorch's ``opcheck``:
    the declared mutations match what the kernel writes (``test_schema``), inputs that
    require grad get a registered formula (``test_autograd_registration``), and the fake
    implementation gives the kernel's shapes and dtypes on ``meta`` copies
    (``test_faketensor``). Returns ``{test: "SUCCESS" or the error}``."""
    op = _lookup(op if isinstance(op, _OpPacket) else getattr(op, "_qualname", op), "opcheck")
    kwargs = kwargs or {}
    tests = test_utils or (
        "test_schema",
        "test_autograd_registration",
        "test_faketensor",
        "test_aot_dispatch_dynamic",
    )
    if isinstance(tests, str):
        tests = (tests,)
    result = {}
    for name in tests:
        try:
            _CHECKS.get(name, _check_nothing)(op, args, kwargs)
            result[name] = "SUCCESS"
        except Exception as e:
            if raise_exception:
                raise OpCheckError(f"opcheck(op, ...): {name} failed with {e}") from e
            result[name] = e
    return result


class OpCheckError(Exception):
    """An ``opcheck`` test failed."""


def _clone_args(values):
    def one(v):
        if isinstance(v, Tensor):
            return v.detach().clone().requires_grad_(v.requires_grad)
        if isinstance(v, (list, tuple)):
            return type(v)(one(x) for x in v)
        return v

    return [one(v) for v in values]


def _check_schema(op, args, kwargs):
    from . import ops

    args2 = _clone_args(args)
    kw2 = dict(zip(kwargs, _clone_args(kwargs.values())))
    bound = op._sig.bind(*args2, **kw2)
    before = {n: [t.detach().clone() for t in _tensors([v])] for n, v in bound.arguments.items()}
    with _autograd.no_grad():
        op(*args2, **kw2)
    for n, v in bound.arguments.items():
        for old, new in zip(before[n], _tensors([v])):
            changed = not bool(ops.equal(old, new.detach())) and not (
                new.is_floating_point() and bool(ops.isnan(old).any())
            )
            if changed and op._mutated is not None and n not in op._mutated:
                raise RuntimeError(
                    f"{op._qualname} writes to its argument '{n}', which mutates_args does "
                    "not name; add it: mutates_args={'" + n + "'}"
                )


def _check_autograd(op, args, kwargs):
    if any(t.requires_grad for t in _tensors(list(args) + list(kwargs.values()))):
        if op._backward is None and op._composite is None and op._autograd_kernel is None:
            raise RuntimeError(
                f"{op._qualname}: its inputs require grad but it has no autograd formula; "
                "add one with register_autograd"
            )


def _check_fake(op, args, kwargs):
    def meta(v):
        if isinstance(v, Tensor):
            return v.detach().to("meta")
        if isinstance(v, (list, tuple)):
            return type(v)(meta(x) for x in v)
        return v

    with _autograd.no_grad():
        real = op(*_clone_args(args), **dict(zip(kwargs, _clone_args(kwargs.values()))))
        fake = op(*[meta(a) for a in args], **{k: meta(v) for k, v in kwargs.items()})
    reals, fakes = _outputs(real), _outputs(fake)
    if len(reals) != len(fakes):
        raise RuntimeError(
            f"{op._qualname}: the fake implementation returns {len(fakes)} tensors, the "
            f"kernel {len(reals)}"
        )
    for i, (r, f) in enumerate(zip(reals, fakes)):
        if tuple(r.shape) != tuple(f.shape) or r.dtype != f.dtype:
            raise RuntimeError(
                f"{op._qualname}: output {i} of the fake implementation has shape "
                f"{tuple(f.shape)} and dtype {f.dtype}, the kernel's {tuple(r.shape)} and "
                f"{r.dtype}"
            )


def _check_nothing(op, args, kwargs):
    return None


_CHECKS = {
    "test_schema": _check_schema,
    "test_autograd_registration": _check_autograd,
    "test_faketensor": _check_fake,
    # NOTE: manygrad compiles nothing ahead of time: no traced graph to compare
    "test_aot_dispatch_dynamic": _check_nothing,
}


# ---------------------------------------------------------------------------- torch.ops


class _OpNamespace(types.ModuleType):
    """``ops.<ns>``: the operators of one namespace (``ops.mylib.scale``)."""

    def __init__(self, ns: str):
        super().__init__(f"torch.ops.{ns}")
        self._ns = ns

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        op = _OPS.get(f"{self._ns}::{name}")
        if op is None:
            raise AttributeError(
                f"'_OpNamespace' '{self._ns}' object has no attribute '{name}': no operator "
                f"{self._ns}::{name} is defined (torch.library.custom_op defines one)"
            )
        return _OpPacket(op, f"{self._ns}.{name}")


class _OpPacket:
    """``ops.<ns>.<name>`` (PyTorch's overload packet) and its overloads
    (``.default``): each calls the operator."""

    __slots__ = ("_op", "_text", "_overload")

    def __init__(self, op: CustomOpDef, text: str, overload: str | None = None):
        self._op, self._text, self._overload = op, text, overload

    def __call__(self, *args, **kwargs):
        return self._op(*args, **kwargs)

    def __getattr__(self, overload: str):
        if overload.startswith("__") or self._overload is not None:
            raise AttributeError(overload)
        return _OpPacket(self._op, self._text, overload)

    def __str__(self) -> str:
        return self._text if self._overload is None else f"{self._text}.{self._overload}"

    def __repr__(self) -> str:
        if self._overload is None:
            return f"<OpOverloadPacket(op='{self._text}')>"
        return f"<OpOverload(op='{self._text}', overload='{self._overload}')>"

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, _OpPacket)
            and other._op is self._op
            and other._overload == self._overload
        )

    def __hash__(self) -> int:
        return hash((id(self._op), self._overload))


class _AtenOp:
    """``ops.aten.<name>``: manygrad's function of that name; every overload
    (``.default``, ``.Tensor``, ``.dim``, ...) is the same function."""

    def __init__(self, name: str, fn):
        self._name, self._fn = name, fn

    def __call__(self, *args, **kwargs):
        return self._fn(*args, **kwargs)

    def __getattr__(self, overload: str):
        if overload.startswith("__"):
            raise AttributeError(overload)
        return self

    def __repr__(self) -> str:
        return f"aten.{self._name}"

    # NOTE: equal by name, as PyTorch's op packets are one object per name: a dict keyed by
    # ops (FlopCounterMode's counts) is read with torch.ops.aten.mm
    def __eq__(self, other) -> bool:
        return isinstance(other, _AtenOp) and other._name == self._name

    def __hash__(self) -> int:
        return hash(("aten", self._name))


class _Aten(types.ModuleType):
    def __init__(self):
        super().__init__("torch.ops.aten")

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        import manygrad as mg
        from manygrad.nn import functional as F  # noqa: N812 - PyTorch's name

        base = name[:-1] if name.endswith("_") and not name.endswith("__") else name
        for place in (mg, F):
            fn = getattr(place, name, None)
            if callable(fn):
                return _AtenOp(name, fn)
        if base != name and hasattr(Tensor, name):  # in-place forms: aten.add_(x, y)
            return _AtenOp(name, getattr(Tensor, name))
        if hasattr(Tensor, name):
            return _AtenOp(name, getattr(Tensor, name))
        raise AttributeError(
            f"torch.ops.aten.{name}: manygrad has no function {name}; call the Python API "
            "(torch.<name> or Tensor.<name>) instead"
        )


class _Ops(types.ModuleType):
    """``torch.ops``: ``ops.<namespace>.<operator>`` for custom operators, and
    ``ops.aten.<name>`` for manygrad's own functions."""

    def __init__(self):
        super().__init__("torch.ops")
        self._spaces: dict[str, types.ModuleType] = {"aten": _Aten()}

    def __getattr__(self, ns: str):
        if ns.startswith("__"):
            raise AttributeError(ns)
        space = self._spaces.get(ns)
        if space is None:
            space = self._spaces[ns] = _OpNamespace(ns)
        return space

    def load_library(self, path) -> None:
        raise NotImplementedError(
            f"torch.ops.load_library({path!r}): manygrad can't load PyTorch C++ extensions; "
            "define the operator in Python with torch.library.custom_op"
        )


ops = _Ops()
