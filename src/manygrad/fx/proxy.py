"""``torch.fx.Proxy``: the stand-in value that flows through a traced ``forward`` and
records, as graph nodes, what is done with it."""

from __future__ import annotations

import collections
import copy
import dis
import enum
import functools
import inspect
import operator
from collections.abc import Callable, Iterator
from dataclasses import fields, is_dataclass
from typing import Any

from ..errors import ManygradError
from ._codegen import magic_methods, reflectable_magic_methods
from .graph import Graph
from .node import Argument, Node, Target, map_arg

__all__ = ["TracerBase", "GraphAppendingTracer", "TraceError", "Proxy", "Attribute",
           "ParameterProxy", "Scope", "ScopeContextManager"]  # fmt: skip


class TraceError(ManygradError, ValueError):
    """Symbolic tracing met Python control flow that depends on a traced value."""


class Scope:
    """The module whose ``forward`` is being traced (its path and type)."""

    def __init__(self, module_path: str, module_type: Any) -> None:
        self.module_path, self.module_type = module_path, module_type


class ScopeContextManager:
    """Sets a ``Scope`` for the duration of a ``with`` block."""

    def __init__(self, scope: Scope, current_scope: Scope) -> None:
        self._prev = copy.copy(scope)
        scope.module_path, scope.module_type = current_scope.module_path, current_scope.module_type
        self._scope = scope

    def __enter__(self) -> Scope:
        return self._scope

    def __exit__(self, *exc: Any) -> None:
        self._scope.module_path = self._prev.module_path
        self._scope.module_type = self._prev.module_type


@functools.cache
def _base_types() -> tuple[type, ...]:
    from ..backend import Device
    from ..dtypes import dtype
    from ..memory_format import memory_format

    return (str, int, float, bool, complex, dtype, Device, memory_format)


class TracerBase:
    """What every tracer has: making nodes and proxies, and turning Python values into node
    arguments (``create_arg``)."""

    graph: Graph
    record_stack_traces: bool = False
    check_mutable_operations: bool = False
    trace_asserts: bool = False
    proxy_buffer_attributes: bool = False
    traced_func_name: str = "forward"
    scope: Scope
    module_stack: collections.OrderedDict
    node_name_to_scope: dict[str, tuple[str, type]]

    def create_node(self, kind: str, target: Target, args: tuple, kwargs: dict,
                    name: str | None = None, type_expr: Any = None) -> Node:  # fmt: skip
        """Add a node to ``self.graph`` (with the module stack in ``meta``)."""
        node = self.graph.create_node(kind, target, args, kwargs, name, type_expr)
        self.node_name_to_scope[node.name] = (self.scope.module_path, self.scope.module_type)
        if self.module_stack:
            node.meta["nn_module_stack"] = copy.copy(self.module_stack)
        return node

    def proxy(self, node: Node) -> Proxy:
        """The ``Proxy`` for ``node``."""
        return Proxy(node, self)

    def create_proxy(self, kind: str, target: Target, args: tuple, kwargs: dict,
                     name: str | None = None, type_expr: Any = None,
                     proxy_factory_fn: Callable[[Node], Proxy] | None = None) -> Proxy:  # fmt: skip
        """A new node from Python arguments (proxies among them), wrapped as a ``Proxy``."""
        args_ = self.create_arg(args)
        kwargs_ = self.create_arg(kwargs)
        node = self.create_node(kind, target, args_, kwargs_, name, type_expr)
        return proxy_factory_fn(node) if proxy_factory_fn else self.proxy(node)

    def create_arg(self, a: Any) -> Argument:
        """``a`` as a node argument: proxies become their nodes, containers are converted
        element by element, base values (numbers, strings, dtypes, devices) stay."""
        if isinstance(a, Proxy):
            return a.node
        if hasattr(type(a), "__fx_create_arg__"):
            return a.__fx_create_arg__(self)
        if isinstance(a, tuple):
            if hasattr(a, "_fields"):
                return type(a)(*[self.create_arg(e) for e in a])
            return tuple(self.create_arg(e) for e in a)
        if isinstance(a, list):
            return [self.create_arg(e) for e in a]
        if isinstance(a, dict):
            out = {}
            for k, v in a.items():
                if not isinstance(k, str):
                    k = self.create_arg(k)
                    map_arg(k, _no_nodes_error)
                out[k] = self.create_arg(v)
            return out
        if isinstance(a, slice):
            return slice(self.create_arg(a.start), self.create_arg(a.stop),
                         self.create_arg(a.step))  # fmt: skip
        if isinstance(a, range):
            return range(self.create_arg(a.start), self.create_arg(a.stop),
                         self.create_arg(a.step))  # fmt: skip
        if is_dataclass(a) and not isinstance(a, type):
            kwargs = {f.name: self.create_arg(getattr(a, f.name)) for f in fields(a)}
            return self.create_node("call_function", a.__class__, (), kwargs)
        if isinstance(a, (*_base_types(), enum.Enum)) or a is None or a is ...:
            return a
        raise NotImplementedError(f"argument of type: {type(a)}")

    def to_bool(self, obj: Proxy) -> bool:
        """``bool(proxy)``: refused (the trace cannot follow both branches)."""
        raise TraceError("symbolically traced variables cannot be used as inputs to control flow")

    def iter(self, obj: Proxy) -> Iterator:
        """``iter(proxy)`` of unknown length: refused."""
        raise TraceError(
            "Proxy object cannot be iterated. This can be attempted when the Proxy is used in "
            "a loop or as a *args or **kwargs function argument. See the torch.fx docs on "
            "pytorch.org for a more detailed explanation of what types of control flow can be "
            "traced, and check out the Proxy docstring for help troubleshooting Proxy "
            "iteration errors"
        )

    def keys(self, obj: Proxy) -> Proxy:
        """``proxy.keys()`` (for ``**proxy``): a ``keys`` method call."""
        return Attribute(obj, "keys")()


def _no_nodes_error(arg: Node) -> None:
    raise RuntimeError(f"Keys for dictionaries used as an argument cannot contain a Node. "
                       f"Got key: {arg}")  # fmt: skip


class GraphAppendingTracer(TracerBase):
    """A tracer that appends to an existing ``graph`` (for proxies made by hand)."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.scope = Scope("", None)
        self.module_stack = collections.OrderedDict()
        self.node_name_to_scope = {}


class Proxy:
    """A traced value. Operations on it (operators, tensor methods, attributes, and the
    manygrad functions the tracer patched) add nodes to the graph instead of computing.

    Python control flow on a Proxy (``if x.sum() > 0:``, ``for row in x:``) raises
    ``TraceError``: keep it out of ``forward``, make it depend on ``concrete_args``, or
    wrap the function that contains it with ``fx.wrap``.

    Example:
        >>> g = Graph()
        >>> x = Proxy(g.placeholder("x"))
        >>> g.output((x.relu() + 1).node)
    """

    def __init__(self, node: Node, tracer: TracerBase | None = None) -> None:
        if tracer is None:
            tracer = GraphAppendingTracer(node.graph)
        self.tracer = tracer
        self.node = node

    def __repr__(self) -> str:
        return f"Proxy({self.node.name})"

    def __getattr__(self, k: str) -> Attribute:
        # NOTE: private and special names are no tensor API: refusing them lets library code
        # that probes its arguments (``getattr(x, "_device", None)``) treat a Proxy as the
        # non-tensor it is, instead of recording nodes
        if k.startswith("_"):
            raise AttributeError(
                f"'Proxy' object has no attribute {k!r}: symbolic tracing records the public "
                "attributes and methods of a traced tensor only"
            )
        return Attribute(self, k)

    def __getstate__(self) -> dict:
        return self.__dict__

    def __setstate__(self, d: dict) -> None:
        self.__dict__ = d

    def __deepcopy__(self, memo: dict) -> Proxy:
        new = Proxy.__new__(type(self))
        for k, v in self.__dict__.items():
            try:
                new.__dict__[k] = copy.deepcopy(v, memo)
            except Exception:
                new.__dict__[k] = copy.copy(v)
        return new

    def __call__(self, *args: Any, **kwargs: Any) -> Proxy:
        return self.tracer.create_proxy("call_method", "__call__", (self,) + args, kwargs)

    def __iter__(self) -> Iterator[Proxy]:
        # NOTE: ``a, b = proxy`` unpacks a known number of values: the calling bytecode says
        # how many, so that case becomes that many getitem nodes
        frame = inspect.currentframe()
        calling = frame.f_back if frame is not None else None
        if calling is not None:
            for inst in dis.get_instructions(calling.f_code):
                if inst.offset == calling.f_lasti:
                    if inst.opname == "UNPACK_SEQUENCE":
                        return (self[i] for i in range(inst.argval))
                    break
        return self.tracer.iter(self)

    def __abs__(self) -> Proxy:
        return self.tracer.create_proxy("call_function", operator.abs, (self,), {})

    def __bool__(self) -> bool:
        return self.tracer.to_bool(self)

    def keys(self) -> Proxy:
        return self.tracer.keys(self)

    def __len__(self) -> int:
        raise RuntimeError(
            "'len' is not supported in symbolic tracing by default. If you want this call to "
            "be recorded, please call torch.fx.wrap('len') at module scope"
        )


class Attribute(Proxy):
    """``proxy.name``: a ``getattr`` node when used as a value, a ``call_method`` node when
    called."""

    def __init__(self, root: Proxy, attr: str) -> None:
        self.root, self.attr, self.tracer = root, attr, root.tracer
        self._node: Node | None = None

    @property
    def node(self) -> Node:
        # NOTE: made on first use, so that a method call records no getattr node
        if self._node is None:
            self._node = self.tracer.create_proxy("call_function", getattr,
                                                  (self.root, self.attr), {}).node  # fmt: skip
        return self._node

    def __call__(self, *args: Any, **kwargs: Any) -> Proxy:
        return self.tracer.create_proxy("call_method", self.attr, (self.root,) + args, kwargs)


class ParameterProxy(Proxy):
    """A proxy for a parameter whose shape is known while tracing (``param_shapes_constant``):
    ``shape``, ``size()``, ``dim()`` and ``numel()`` answer with numbers."""

    def __init__(self, tracer: TracerBase, node: Node, name: str, param: Any) -> None:
        super().__init__(node, tracer)
        self.param, self.name = param, name

    def __repr__(self) -> str:
        return f"ParameterProxy({self.name})"

    @property
    def shape(self):
        return self.param.shape

    def size(self, dim: int | None = None):
        return self.param.size() if dim is None else self.param.size(dim)

    def dim(self) -> int:
        return self.param.dim()

    @property
    def ndim(self) -> int:
        return self.param.ndim

    def numel(self) -> int:
        return self.param.numel()

    def nelement(self) -> int:
        return self.param.numel()


def _define_magic(method: str) -> None:
    def impl(*args: Any, **kwargs: Any) -> Proxy:
        return args[0].tracer.create_proxy("call_function", getattr(operator, method), args,
                                           kwargs)  # fmt: skip

    impl.__name__ = f"__{method.strip('_')}__"
    setattr(Proxy, impl.__name__, impl)


def _define_reflectable(method: str) -> None:
    def impl(self: Proxy, lhs: Any) -> Proxy:
        return self.tracer.create_proxy("call_function", getattr(operator, method), (lhs, self),
                                        {})  # fmt: skip

    impl.__name__ = f"__r{method.strip('_')}__"
    setattr(Proxy, impl.__name__, impl)


for _m in magic_methods:
    if hasattr(operator, _m):  # NOTE: "div" is Python 2's name, kept in the table for printing
        _define_magic(_m)
for _m in reflectable_magic_methods:
    if hasattr(operator, _m):
        _define_reflectable(_m)
