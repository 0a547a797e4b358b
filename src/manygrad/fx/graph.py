"""``torch.fx.Graph``: the nodes of a traced program in order, with the methods that build,
edit, check and print them."""

from __future__ import annotations

import copy
import inspect
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from . import _names
from ._codegen import (
    CodeGen,
    PythonCode,
    _Namespace,
    inplace_methods,
    magic_methods,
    reflectable_magic_methods,
    snake_case,
)
from .node import _LEGAL_OPS, Argument, Node, Target, map_arg

if TYPE_CHECKING:
    from .graph_module import GraphModule

__all__ = ["Graph", "CodeGen", "PythonCode", "magic_methods", "reflectable_magic_methods",
           "inplace_methods"]  # fmt: skip


class _node_list:  # noqa: N801 - PyTorch's name
    """The live list of a graph's nodes (erasing the current node while iterating is safe)."""

    def __init__(self, graph: Graph, reverse: bool = False) -> None:
        self.graph, self.reverse = graph, reverse

    def __len__(self) -> int:
        return self.graph._len

    def _walk(self, backwards: bool) -> Iterator[Node]:
        root = self.graph._root
        cur = root._prev if backwards else root._next
        while cur is not root:
            if not cur._erased:
                yield cur
            cur = cur._prev if backwards else cur._next

    def __iter__(self) -> Iterator[Node]:
        return self._walk(self.reverse)

    def __reversed__(self) -> Iterator[Node]:
        return self._walk(not self.reverse)

    def __repr__(self) -> str:
        return repr(list(self))


class _InsertPoint:
    def __init__(self, graph: Graph, new_insert: Callable[[Node], None]) -> None:
        self.graph = graph
        self.orig_insert, graph._insert = graph._insert, new_insert

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: Any) -> None:
        self.graph._insert = self.orig_insert


class Graph:
    """A program as a list of ``Node`` s: inputs (``placeholder``), operations, ``output``.

    Args:
        owning_module: the ``GraphModule`` that runs the graph (set by it).
        tracer_cls: the tracer class that made the graph.

    Example:
        >>> g = Graph()
        >>> x = g.placeholder("x")
        >>> g.output(g.call_function(manygrad.relu, (x,)))
        >>> gm = GraphModule(manygrad.nn.Module(), g)
    """

    def __init__(self, owning_module: GraphModule | None = None, tracer_cls: type | None = None,
                 tracer_extras: dict[str, Any] | None = None) -> None:  # fmt: skip
        self._root = Node(self, "", "root", "", (), {})
        self._insert = self._root.prepend
        self._len = 0
        self._graph_namespace = _Namespace()
        self._owning_module = owning_module
        self._tracer_cls = tracer_cls
        self._tracer_extras = tracer_extras
        self._codegen = CodeGen()
        self._co_fields: dict[str, Any] = {}

    @property
    def owning_module(self) -> GraphModule | None:
        """The ``GraphModule`` this graph belongs to (None for a free graph)."""
        return self._owning_module

    @owning_module.setter
    def owning_module(self, mod: GraphModule | None) -> None:
        self._owning_module = mod

    @property
    def nodes(self) -> _node_list:
        """The nodes in order (a live view: edits show at once)."""
        return _node_list(self)

    def output_node(self) -> Node:
        """The ``output`` node (the last)."""
        node = next(iter(reversed(self.nodes)))
        if node.op != "output":
            raise RuntimeError(f"the graph's last node is {node.op} {node.name}, not output")
        return node

    def find_nodes(self, *, op: str, target: Target | None = None, sort: bool = True) -> list:
        """The nodes with ``op`` (and ``target``, when given), in graph order."""
        return [n for n in self.nodes if n.op == op and (target is None or n.target == target)]

    # ------------------------------------------------------------------ building
    def create_node(self, op: str, target: Target, args: tuple | None = None,
                    kwargs: dict | None = None, name: str | None = None,
                    type_expr: Any = None) -> Node:  # fmt: skip
        """Add a node at the current insert point (the end, unless ``inserting_before`` /
        ``inserting_after`` says otherwise).

        Args:
            op: ``placeholder``, ``get_attr``, ``call_function``, ``call_module``,
                ``call_method`` or ``output``.
            target: the function, or the name of the attribute, module or method.
            args, kwargs: the arguments (nodes among them).
            name: the node's name (default: made from the target, unique in the graph).
            type_expr: an annotation for the value.
        """
        args = () if not args else args
        if not isinstance(args, tuple):
            raise TypeError(f"create_node: args must be a tuple, got {type(args).__name__}")
        kwargs = {} if not kwargs else kwargs
        if not isinstance(kwargs, dict):
            raise TypeError(f"create_node: kwargs must be a dict, got {type(kwargs).__name__}")
        if op == "call_function":
            target = _names.unwrap(target)  # NOTE: a tracing wrapper stands for its function
        candidate = name if name is not None else self._target_to_str(target)
        name = self._graph_namespace.create_name(candidate, None)
        n = Node(self, name, op, target, args, kwargs, type_expr)
        self._graph_namespace.associate_name_with_obj(name, n)
        self._insert(n)
        self._len += 1
        return n

    def placeholder(self, name: str, type_expr: Any = None,
                    default_value: Any = inspect.Signature.empty) -> Node:  # fmt: skip
        """An input of the graph (a parameter of ``forward``), with an optional default."""
        args = () if default_value is inspect.Signature.empty else (default_value,)
        return self.create_node("placeholder", name, args=args, type_expr=type_expr)

    def get_attr(self, qualified_name: str, type_expr: Any = None) -> Node:
        """A read of the owning module's attribute ``qualified_name`` (``"layer.weight"``)."""
        mod = self.owning_module
        if mod is not None and not _attr_exists(mod, qualified_name):
            warnings.warn(
                "Attempted to insert a get_attr Node with no underlying reference in the "
                "owning GraphModule! Call GraphModule.add_submodule to add the necessary "
                "submodule, GraphModule.add_parameter to add the necessary Parameter, or "
                "nn.Module.register_buffer to add the necessary buffer", stacklevel=2)  # fmt: skip
        return self.create_node("get_attr", qualified_name, type_expr=type_expr)

    def call_module(self, module_name: str, args: tuple | None = None,
                    kwargs: dict | None = None, type_expr: Any = None) -> Node:  # fmt: skip
        """A call of the owning module's submodule ``module_name``."""
        if self.owning_module is not None:
            self.owning_module.get_submodule(module_name)  # NOTE: raises for a missing one
        return self.create_node("call_module", module_name, args, kwargs, type_expr=type_expr)

    def call_method(self, method_name: str, args: tuple | None = None,
                    kwargs: dict | None = None, type_expr: Any = None) -> Node:  # fmt: skip
        """A call of method ``method_name`` on ``args[0]``."""
        return self.create_node("call_method", method_name, args, kwargs, type_expr=type_expr)

    def call_function(self, the_function: Callable, args: tuple | None = None,
                      kwargs: dict | None = None, type_expr: Any = None,
                      name: str | None = None) -> Node:  # fmt: skip
        """A call of ``the_function`` (``manygrad.relu``, ``operator.add``, ...)."""
        return self.create_node("call_function", the_function, args, kwargs, name=name,
                                type_expr=type_expr)  # fmt: skip

    def output(self, result: Argument, type_expr: Any = None) -> Node:
        """The graph's result (what ``forward`` returns)."""
        return self.create_node("output", "output", (result,), type_expr=type_expr)

    def node_copy(self, node: Node, arg_transform: Callable[[Node], Argument] = lambda x: x
                  ) -> Node:  # fmt: skip
        """A copy of ``node`` (from any graph) added here; ``arg_transform`` maps the nodes
        among its arguments to this graph's."""
        args = map_arg(node.args, arg_transform)
        kwargs = map_arg(node.kwargs, arg_transform)
        new = self.create_node(node.op, node.target, args, kwargs, node.name, node.type)
        new.meta = copy.copy(node.meta)
        return new

    def graph_copy(self, g: Graph, val_map: dict[Node, Node], return_output_node: bool = False
                   ) -> Any:  # fmt: skip
        """Copy the nodes of ``g`` (but its output) here; ``val_map`` maps ``g``'s nodes to
        the copies (pre-fill it to substitute inputs). Returns the copied output value."""
        for node in g.nodes:
            if node in val_map:
                continue
            if node.op == "output":
                rv = map_arg(node.args[0], lambda n: val_map[n])
                return (rv, node) if return_output_node else rv
            val_map[node] = self.node_copy(node, lambda n: val_map[n])
        return None

    def __deepcopy__(self, memo: dict | None = None) -> Graph:
        g = Graph(tracer_cls=self._tracer_cls)
        out = g.graph_copy(self, val_map={}, return_output_node=True)
        g._codegen = copy.deepcopy(self._codegen)
        if out is not None:
            value, old_output = out
            new_output = g.output(value, type_expr=getattr(old_output, "type", None))
            new_output.meta = copy.copy(old_output.meta)
        return g

    # ------------------------------------------------------------------ editing
    def erase_node(self, to_erase: Node) -> None:
        """Remove ``to_erase``, which must have no users left."""
        if to_erase.users:
            raise RuntimeError(f"Tried to erase Node {to_erase} but it still had "
                               f"{len(to_erase.users)} users in the graph: {to_erase.users}!")  # fmt: skip
        if to_erase.graph is not self:
            raise RuntimeError(f"Attempting to remove {to_erase} from wrong graph!")
        if to_erase._erased:
            warnings.warn(f"erase_node({to_erase}) on an already erased node", stacklevel=2)
            return
        to_erase._remove_from_list()
        to_erase._erased = True
        self._len -= 1
        to_erase._update_args_kwargs(map_arg(to_erase.args, lambda n: None),
                                     map_arg(to_erase.kwargs, lambda n: None))  # fmt: skip

    def inserting_before(self, n: Node | None = None) -> _InsertPoint:
        """``with graph.inserting_before(node):`` new nodes go just before ``node`` (the
        graph's start when None)."""
        if n is None:
            return self.inserting_after(self._root)
        if n.graph is not self:
            raise ValueError("Node to insert before is not in graph.")
        return _InsertPoint(self, n.prepend)

    def inserting_after(self, n: Node | None = None) -> _InsertPoint:
        """``with graph.inserting_after(node):`` each new node goes just after ``node`` (so
        a later one before an earlier one); the graph's end when None."""
        if n is None:
            return self.inserting_before(self._root)
        if n.graph is not self:
            raise ValueError("Node to insert after is not in graph.")
        return _InsertPoint(self, n.append)

    def _target_to_str(self, target: Target) -> str:
        if callable(target):
            op = target.__name__
        else:
            op = target
            if op.startswith("__") and op.endswith("__"):
                op = op[2:-2]
        return snake_case(op)

    # ------------------------------------------------------------------ checks
    def lint(self) -> None:
        """Check the graph: known ops, unique names, every argument defined before its use
        and in this graph, and (with an owning module) targets that exist."""
        seen_names: set[str] = set()
        seen: set[Node] = set()
        for node in self.nodes:
            if node.op not in _LEGAL_OPS:
                raise RuntimeError(f"Node {node} had unknown opcode {node.op}!")
            if node.graph is not self:
                raise RuntimeError(f"Node '{node}' does not belong to this Graph!")
            for arg in node._input_nodes:
                if arg.graph is not self:
                    raise RuntimeError(
                        f"Argument '{arg}' of Node '{node}' does not belong to this Graph, but "
                        "was used as an argument! If you are copying nodes from another graph, "
                        f"make sure to use ``arg_transform`` on node_copy() to remap values\n{self}"
                    )
                if arg not in seen:
                    raise RuntimeError(
                        f"Argument '{arg}' of Node '{node}' was used before it has been "
                        "defined! Please check that Nodes in the graph are topologically "
                        f"ordered\n{self}"
                    )
            seen.add(node)
            if node.name in seen_names:
                raise RuntimeError(f"Node redefined name {node.name}!")
            seen_names.add(node.name)
        if self.owning_module is None:
            return
        for node in self.nodes:
            if node.op == "call_function" and not callable(node.target):
                raise ValueError(f"Node {node} target {node.target} has type "
                                 f"{type(node.target).__name__} but a Callable is expected")  # fmt: skip
            if node.op != "call_function" and not isinstance(node.target, str):
                raise ValueError(f"Node {node} target {node.target} has type "
                                 f"{type(node.target).__name__} but a str is expected")  # fmt: skip
            if node.op in ("get_attr", "call_module"):
                _check_target(self.owning_module, node)

    def eliminate_dead_code(self, is_impure_node: Callable[[Node], bool] | None = None) -> bool:
        """Remove the nodes whose value nothing uses and that have no side effect
        (``Node.is_impure``, or ``is_impure_node`` when given). Returns whether any went.

        Example: ``if gm.graph.eliminate_dead_code(): gm.recompile()``.
        """
        self.lint()
        impure = is_impure_node if is_impure_node is not None else (lambda n: n.is_impure())
        changed = False
        for node in reversed(self.nodes):
            if not node.users and not impure(node):
                self.erase_node(node)
                changed = True
        return changed

    # ------------------------------------------------------------------ printing
    def python_code(self, root_module: str, *, verbose: bool = False,
                    include_stride: bool = False, include_device: bool = False,
                    colored: bool = False) -> PythonCode:  # fmt: skip
        """The source of ``forward`` for this graph, with ``root_module`` the name that the
        module's attributes are read from (``"self"``); ``verbose`` notes each value's dtype
        and shape where ``ShapeProp`` recorded them (the other options are accepted as
        PyTorch's and change nothing)."""
        namespace = _Namespace()
        saved = {}
        for node in self.nodes:
            saved[node] = node._repr_fn
            node._repr_fn = lambda n: namespace.create_name(n.name, n)
        try:
            return self._codegen._gen_python_code(self.nodes, root_module, namespace,
                                                  verbose=verbose)  # fmt: skip
        finally:
            for node, fn in saved.items():
                node._repr_fn = fn

    def set_codegen(self, codegen: CodeGen) -> None:
        """Use ``codegen`` to write this graph's code."""
        self._codegen = codegen

    def process_inputs(self, *args: Any) -> Any:
        return self._codegen.process_inputs(*args)

    def process_outputs(self, out: Any) -> Any:
        return self._codegen.process_outputs(out)

    def __str__(self) -> str:
        names: list[str] = []
        ret: list[str] = [""]
        lines = [node.format_node(names, ret) for node in self.nodes]
        s = f"graph({', '.join(names)}){ret[0]}:"
        for line in lines:
            if line:
                s += "\n    " + line
        return s

    def print_tabular(self) -> None:
        """Print the nodes as a table (opcode, name, target, args, kwargs); needs the
        ``tabulate`` package, as in PyTorch."""
        try:
            from tabulate import tabulate
        except ImportError:
            print("`print_tabular` relies on the library `tabulate`, which could not be found "
                  "on this machine. Run `pip install tabulate` to install the library.")  # fmt: skip
            raise
        rows = [[n.op, n.name, n.target, n.args, n.kwargs] for n in self.nodes]
        print(tabulate(rows, headers=["opcode", "name", "target", "args", "kwargs"]))


def _attr_exists(mod: Any, qualified_name: str) -> bool:
    from ..nn import Module, Parameter

    path, _, name = qualified_name.rpartition(".")
    try:
        sub = mod.get_submodule(path)
    except AttributeError:
        warnings.warn(f"Failed to fetch module {path}!", stacklevel=3)
        return False
    if not hasattr(sub, name):
        return False
    res = getattr(sub, name)
    return isinstance(res, (Module, Parameter)) or name in sub._buffers


def _check_target(owner: Any, node: Node) -> None:
    from ..nn import Module

    atoms = node.target.split(".")
    m = owner
    for i, atom in enumerate(atoms):
        nxt = getattr(m, atom, None)
        seen = ".".join(atoms[:i])
        if nxt is None:
            raise RuntimeError(f"Node {node} target {node.target} references nonexistent "
                               f"attribute {atom} of {seen}")  # fmt: skip
        if node.op == "call_module" and not isinstance(nxt, Module):
            raise RuntimeError(f"Node {node} target {node.target} {atom} of {seen} does not "
                               "reference an nn.Module")  # fmt: skip
        m = nxt
