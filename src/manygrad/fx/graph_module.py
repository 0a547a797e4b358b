"""``torch.fx.GraphModule``: an ``nn.Module`` built from a ``Graph``, whose ``forward`` is
Python code generated from the graph (``gm.code``)."""

from __future__ import annotations

import copy
import itertools
import linecache
from typing import Any

from ..nn import Module
from . import _names
from ._codegen import PythonCode
from .graph import Graph
from .node import map_arg

__all__ = ["GraphModule"]

_next_key = itertools.count()


def _forward_from_src(src: str, globals_: dict[str, Any]) -> Any:
    # NOTE: the source goes into linecache under its key, so that tracebacks through the
    # generated forward show its lines
    key = f"<eval_with_key>.{next(_next_key)}"
    linecache.cache[key] = (len(src), None, src.splitlines(True), key)
    scope = dict(globals_)
    exec(compile(src, key, "exec", dont_inherit=True), scope)
    return scope["forward"]


def _copy_attr(from_module: Module, to_module: Module, target: str) -> None:
    from ..nn import Parameter
    from ..tensor import Tensor

    *prefix, field = target.split(".")
    for item in prefix:
        f = getattr(from_module, item)
        t = getattr(to_module, item, None)
        if f is t:
            return  # the whole submodule is already there
        if t is None:
            t = Module()
            setattr(to_module, item, t)
        from_module, to_module = f, t
    orig = getattr(from_module, field)
    if isinstance(orig, Tensor) and not isinstance(orig, Parameter):
        to_module.register_buffer(field, orig)
    else:
        setattr(to_module, field, orig)


def _assign_attr(from_obj: Any, to_module: Module, target: str) -> None:
    from ..nn import Parameter
    from ..tensor import Tensor

    *prefix, field = target.split(".")
    for item in prefix:
        t = getattr(to_module, item, None)
        if t is None:
            t = Module()
            setattr(to_module, item, t)
        to_module = t
    if isinstance(from_obj, Tensor) and not isinstance(from_obj, Parameter):
        to_module.register_buffer(field, from_obj)
    else:
        setattr(to_module, field, from_obj)


def _addindent(s: str, n: int) -> str:
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    return "\n".join([lines[0]] + [" " * n + line for line in lines[1:]])


class _CodeOnlyModule(Module):
    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__()
        self.__dict__ = body


class GraphModule(Module):
    """A module that runs a ``Graph``: its ``forward`` is generated from the graph, and it
    holds the submodules, parameters and buffers that the graph's nodes name.

    Args:
        root: the module whose attributes the nodes name (they are copied, submodules and
            parameters shared), or a dict from qualified names to the objects.
        graph: the graph.
        class_name: the class name shown by ``repr`` (default ``"GraphModule"``).

    Example:
        >>> gm = fx.symbolic_trace(model)
        >>> gm.graph.eliminate_dead_code(); gm.recompile()
        >>> print(gm.code)
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> GraphModule:
        # NOTE: each instance gets its own class, whose ``forward`` is its generated code
        for t in cls.__mro__:
            if t.__qualname__.split(".")[-1] != "GraphModuleImpl":
                cls = t
                break

        class GraphModuleImpl(cls):  # type: ignore[misc, valid-type]
            pass

        return super().__new__(GraphModuleImpl)

    def __init__(self, root: Module | dict[str, Any], graph: Graph,
                 class_name: str = "GraphModule") -> None:  # fmt: skip
        super().__init__()
        self.__class__.__name__ = class_name
        if isinstance(root, Module):
            if hasattr(root, "training"):
                self.training = root.training
            if isinstance(root, _CodeOnlyModule):
                for k, _ in root.named_children():
                    _copy_attr(root, self, k)
                for k, _ in root.named_buffers():
                    _copy_attr(root, self, k)
                for k, _ in root.named_parameters():
                    _copy_attr(root, self, k)
            for node in graph.nodes:
                if node.op in ("get_attr", "call_module"):
                    _copy_attr(root, self, node.target)
        elif isinstance(root, dict):
            targets = []
            for node in graph.nodes:
                if node.op in ("get_attr", "call_module"):
                    if node.target not in root:
                        raise RuntimeError(f"Node {node} referenced target {node.target} but "
                                           "that target was not provided in ``root``!")  # fmt: skip
                    targets.append(node.target)
            for target in sorted(targets, key=lambda t: t.count(".")):
                _assign_attr(root[target], self, target)
        else:
            raise RuntimeError(f"Unsupported type {root} passed for root!")
        self.graph = graph
        tracer_cls = graph._tracer_cls
        self._tracer_cls = (tracer_cls if tracer_cls and "<locals>" not in tracer_cls.__qualname__
                            else None)  # fmt: skip
        self._tracer_extras = graph._tracer_extras or {}
        self.meta: dict[str, Any] = {}
        self._replace_hooks: list = []
        self._create_node_hooks: list = []
        self._erase_node_hooks: list = []
        self._deepcopy_hooks: list = []

    @property
    def graph(self) -> Graph:
        """The graph; assigning a new one recompiles ``forward``."""
        return self._graph

    @graph.setter
    def graph(self, g: Graph) -> None:
        if not isinstance(g, Graph):
            raise TypeError(f"Expected a Graph instance, but got {type(g)}")
        self._graph = g
        g.owning_module = self
        self.recompile()

    @property
    def code(self) -> str:
        """The Python source of the generated ``forward``."""
        if not hasattr(self, "_code"):
            raise RuntimeError("Code has not been generated! Call recompile()")
        return self._code

    def recompile(self) -> PythonCode:
        """Generate ``forward`` again from ``self.graph`` (call after editing the graph)."""
        python_code = self._graph.python_code(root_module="self")
        self._code = python_code.src
        type(self).forward = _forward_from_src(self._code, python_code.globals)
        for _, mod in self.named_children():
            if isinstance(mod, GraphModule):
                mod.recompile()
        return python_code

    def print_readable(self, print_output: bool = True, include_stride: bool = False,
                       include_device: bool = False, colored: bool = False) -> str:  # fmt: skip
        """The module as a class with its ``forward`` (shapes and dtypes noted where
        ``ShapeProp`` ran), printed and returned."""
        return _print_readable(self, self._get_name(), print_output)

    def __str__(self) -> str:
        return "\n".join([super().__str__(), self._code,
                          "# To see more debug info, please use `graph_module.print_readable()`"])  # fmt: skip

    # ------------------------------------------------------------------ submodules
    def add_submodule(self, target: str, m: Module) -> bool:
        """Add ``m`` under the dotted ``target``, making empty modules on the way. Returns
        False where a name on the way is not a module."""
        *prefix, field = target.split(".")
        mod: Module = self
        for item in prefix:
            sub = getattr(mod, item, None)
            if sub is None:
                sub = Module()
                setattr(mod, item, sub)
            if not isinstance(sub, Module):
                return False
            mod = sub
        mod.add_module(field, m)
        return True

    def delete_submodule(self, target: str) -> bool:
        """Remove the submodule at ``target``; False when there is none."""
        *path, name = target.split(".")
        mod: Any = self
        for item in path:
            if not hasattr(mod, item):
                return False
            mod = getattr(mod, item)
            if not isinstance(mod, Module):
                return False
        if not hasattr(mod, name) or not isinstance(getattr(mod, name), Module):
            return False
        delattr(mod, name)
        return True

    def delete_all_unused_submodules(self) -> None:
        """Remove the submodules that no ``call_module`` / ``get_attr`` node uses."""
        used: set[str] = set()
        for node in self.graph.nodes:
            if node.op in ("call_module", "get_attr") and isinstance(node.target, str):
                atoms = node.target.split(".")
                used.update(".".join(atoms[: i + 1]) for i in range(len(atoms)))
                if node.op == "call_module":
                    try:
                        sub = self.get_submodule(node.target)
                    except AttributeError:
                        continue
                    used.update(f"{node.target}.{n}" for n, _ in sub.named_modules() if n)
        for name in [n for n, _ in self.named_modules() if n and n not in used]:
            self.delete_submodule(name)

    # ------------------------------------------------------------------ copies
    def __reduce__(self):
        # NOTE: the graph goes into the pickle as a flat list of nodes whose functions are
        # named by module and attribute (``manygrad.relu``), not as linked Node objects
        body = self.__dict__.copy()
        del body["_graph"]
        return (_reduce_graph_module, (body, _graph_to_state(self._graph)))

    def __deepcopy__(self, memo: dict) -> GraphModule:
        res = type(self).__new__(type(self))
        memo[id(self)] = res
        fake = _CodeOnlyModule(copy.deepcopy(self.__dict__, memo))
        # NOTE: copies are named "GraphModule", as PyTorch's are
        GraphModule.__init__(res, fake, fake.__dict__["_graph"])
        for attr in ("_replace_hooks", "_create_node_hooks", "_erase_node_hooks",
                     "_deepcopy_hooks"):  # fmt: skip
            if attr in self.__dict__:
                setattr(res, attr, copy.deepcopy(self.__dict__[attr], memo))
        res.meta = copy.deepcopy(getattr(self, "meta", {}), memo)
        for hook in getattr(self, "_deepcopy_hooks", []):
            hook(res)
        return res

    def __copy__(self) -> GraphModule:
        res = GraphModule(self, self.graph)
        res.meta = getattr(self, "meta", {})
        return res


def _print_readable(module: GraphModule, name: str, print_output: bool) -> str:
    src = module.graph.python_code(root_module="self", verbose=True).src.lstrip("\n")
    out = _addindent(f"class {name}(torch.nn.Module):\n" + src, 4)
    subs = [""]
    for sub_name, sub in module.named_children():
        if isinstance(sub, GraphModule):
            subs.append(_print_readable(sub, sub_name, False))
    out += _addindent("\n".join(subs), 4)
    if print_output:
        print(out)
    return out


class _NodeRef:
    """A node named in a pickled graph (by its name)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __reduce__(self):
        return (_NodeRef, (self.name,))


class _TargetRef(tuple):
    """A function named in a pickled graph: (module, attribute)."""


def _graph_to_state(graph: Graph) -> list[tuple]:
    nodes = []
    for n in graph.nodes:
        target = n.target
        if n.op == "call_function":
            ref = _names.reference(target)
            if ref is not None:
                target = _TargetRef(ref)
        args = map_arg(n.args, lambda a: _NodeRef(a.name))
        kwargs = map_arg(n.kwargs, lambda a: _NodeRef(a.name))
        meta = {k: v for k, v in n.meta.items() if k in ("stack_trace", "is_wrapped")}
        nodes.append((n.name, n.op, target, args, kwargs, n.type, meta))
    return nodes


def _graph_from_state(state: list[tuple]) -> Graph:
    from .node import map_aggregate

    graph = Graph()
    env: dict[str, Any] = {}
    fix = lambda a: env[a.name] if isinstance(a, _NodeRef) else a  # noqa: E731
    for name, op, target, args, kwargs, type_expr, meta in state:
        if isinstance(target, _TargetRef):
            target = _names.dereference(target)
        node = graph.create_node(op, target, map_aggregate(args, fix),
                                 map_aggregate(kwargs, fix), name, type_expr)  # fmt: skip
        node.meta.update(meta)
        env[name] = node
    return graph


def _reduce_graph_module(body: dict[str, Any], state: list[tuple]) -> Module:
    graph = _graph_from_state(state)
    graph._tracer_cls = body.get("_tracer_cls")
    root = _CodeOnlyModule(body)
    gm = GraphModule(root, graph)
    for k, v in body.items():
        if not hasattr(gm, k):
            setattr(gm, k, v)
    return gm
