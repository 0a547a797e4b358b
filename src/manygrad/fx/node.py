"""``torch.fx.Node``: one operation of a graph, and ``map_arg`` / ``map_aggregate`` over the
nested arguments that refer to other nodes."""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _names
from .immutable_collections import immutable_dict, immutable_list

if TYPE_CHECKING:
    from .graph import Graph

__all__ = ["Node", "map_arg", "map_aggregate", "has_side_effect", "Argument", "Target"]

Target = Callable[..., Any] | str
Argument = Any  # a Node, a base value, or a tuple/list/dict/slice of arguments

_LEGAL_OPS = ("placeholder", "call_method", "call_module", "call_function", "get_attr", "output")

_side_effectful_functions: set[Callable[..., Any]] = {operator.setitem}


def has_side_effect(fn: Callable) -> Callable:
    """Mark ``fn`` as having a side effect: ``Graph.eliminate_dead_code`` keeps its nodes.

    Example: ``fx.has_side_effect(log_value)``.
    """
    _side_effectful_functions.add(fn)
    return fn


def map_aggregate(a: Argument, fn: Callable[[Argument], Argument]) -> Argument:
    """``fn`` applied to every leaf of ``a`` (inside tuples, lists, dicts and slices);
    lists and dicts come back as ``immutable_list`` / ``immutable_dict``.

    Example: ``map_aggregate((1, [2, 3]), lambda v: v * 10)`` is ``(10, [20, 30])``.
    """
    if isinstance(a, tuple):
        t = tuple(map_aggregate(e, fn) for e in a)
        return type(a)(*t) if hasattr(a, "_fields") else t
    if isinstance(a, list):
        return immutable_list(map_aggregate(e, fn) for e in a)
    if isinstance(a, dict):
        return immutable_dict((k, map_aggregate(v, fn)) for k, v in a.items())
    if isinstance(a, slice):
        return slice(map_aggregate(a.start, fn), map_aggregate(a.stop, fn),
                     map_aggregate(a.step, fn))  # fmt: skip
    return fn(a)


def map_arg(a: Argument, fn: Callable[[Node], Argument]) -> Argument:
    """``fn`` applied to every ``Node`` in the nested argument ``a`` (other values stay).

    Example: ``map_arg(node.args, lambda n: env[n])``.
    """
    if not callable(fn):
        raise TypeError("torch.fx.map_arg(a, fn): fn must be a callable")
    return map_aggregate(a, lambda x: fn(x) if isinstance(x, Node) else x)


def _format_arg(arg: Any) -> str:
    if isinstance(arg, list):
        return "[" + ", ".join(_format_arg(a) for a in arg) + "]"
    if isinstance(arg, tuple):
        return "(" + ", ".join(_format_arg(a) for a in arg) + ("," if len(arg) == 1 else "") + ")"
    if isinstance(arg, dict):
        return "{" + ", ".join(f"{k}: {_format_arg(v)}" for k, v in arg.items()) + "}"
    if isinstance(arg, Node):
        return "%" + str(arg)
    return str(arg)


def _type_repr(t: Any) -> str:
    if isinstance(t, type):
        name = _names.public_name(t)
        if name is not None:
            return name
        return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    return repr(t)


class Node:
    """One operation of a ``Graph``.

    ``op`` is one of ``placeholder`` (an input), ``get_attr`` (a parameter, buffer or
    constant of the module), ``call_function``, ``call_method``, ``call_module`` and
    ``output``; ``target`` is what it calls or reads, ``args`` / ``kwargs`` its arguments
    (other nodes among them), ``users`` the nodes that use its value and ``meta`` a dict
    for passes (``ShapeProp`` stores ``tensor_meta`` there).

    Example:
        >>> for node in gm.graph.nodes:
        ...     print(node.op, node.target, node.args)
    """

    def __init__(self, graph: Graph, name: str, op: str, target: Target,
                 args: tuple, kwargs: dict, return_type: Any = None) -> None:  # fmt: skip
        if op == "call_function":
            if not callable(target):
                raise ValueError(
                    f"Node [graph = {graph}, name = '{name}'] target {target} has type "
                    f"{type(target).__name__} but a Callable is expected"
                )
        elif op != "root":
            if op not in _LEGAL_OPS:
                raise ValueError(f"Node {name}: unknown op {op!r}; one of {_LEGAL_OPS}")
            if not isinstance(target, str):
                raise ValueError(
                    f"Node [graph = {graph}, name = '{name}'] target {target} has type "
                    f"{type(target).__name__} but a str is expected"
                )
        self.graph, self.name, self.op, self.target = graph, name, op, target
        self.type = return_type
        self._prev = self._next = self
        self._erased = False
        self._repr_fn: Callable[[Node], str] | None = None
        self._input_nodes: dict[Node, None] = {}
        self.users: dict[Node, None] = {}
        self.meta: dict[str, Any] = {}
        self._args: tuple = ()
        self._kwargs: dict = immutable_dict()
        self._update_args_kwargs(args, kwargs)

    # ------------------------------------------------------------------ list position
    @property
    def next(self) -> Node:
        """The node after this one in the graph."""
        return self._next

    @property
    def prev(self) -> Node:
        """The node before this one in the graph."""
        return self._prev

    def _remove_from_list(self) -> None:
        p, n = self._prev, self._next
        p._next, n._prev = n, p

    def prepend(self, x: Node) -> None:
        """Move (or insert) node ``x`` to just before this node."""
        if x.graph is not self.graph:
            raise ValueError("Attempting to move a Node into a different Graph")
        if x is self:
            warnings.warn("Trying to prepend a node to itself. This behavior has no effect "
                          "on the graph.", stacklevel=2)  # fmt: skip
            return
        x._remove_from_list()
        p = self._prev
        p._next, x._prev = x, p
        x._next, self._prev = self, x

    def append(self, x: Node) -> None:
        """Move (or insert) node ``x`` to just after this node."""
        self._next.prepend(x)

    # ------------------------------------------------------------------ arguments
    @property
    def args(self) -> tuple:
        """The positional arguments (nodes among them); assign a new tuple to change them."""
        return self._args

    @args.setter
    def args(self, a: tuple) -> None:
        self._update_args_kwargs(a, self._kwargs)

    @property
    def kwargs(self) -> dict:
        """The keyword arguments; assign a new dict to change them."""
        return self._kwargs

    @kwargs.setter
    def kwargs(self, k: dict) -> None:
        self._update_args_kwargs(self._args, k)

    @property
    def all_input_nodes(self) -> list[Node]:
        """The nodes among ``args`` and ``kwargs``, in order of first appearance."""
        return list(self._input_nodes)

    def _update_args_kwargs(self, args: tuple, kwargs: dict) -> None:
        self._args = map_aggregate(args, lambda x: x)
        self._kwargs = map_aggregate(kwargs, lambda x: x)
        new: dict[Node, None] = {}
        map_arg((self._args, self._kwargs), new.setdefault)
        for n in self._input_nodes:
            if n not in new:
                n.users.pop(self, None)
        for n in new:
            n.users.setdefault(self)
        self._input_nodes = new

    def update_arg(self, idx: int, arg: Argument) -> None:
        """Set ``args[idx]`` to ``arg``."""
        args = list(self.args)
        args[idx] = arg
        self.args = tuple(args)

    def insert_arg(self, idx: int, arg: Argument) -> None:
        """Insert ``arg`` into ``args`` at position ``idx``."""
        if not 0 <= idx <= len(self.args):
            raise IndexError(f"insert_arg: index must be in [0, {len(self.args)}], got {idx}")
        self.args = self.args[:idx] + (arg,) + self.args[idx:]

    def update_kwarg(self, key: str, arg: Argument) -> None:
        """Set ``kwargs[key]`` to ``arg``."""
        self.kwargs = {**self.kwargs, key: arg}

    def _replace_input_with(self, old: Node, new: Node) -> None:
        fix = lambda n: new if n is old else n  # noqa: E731
        self._update_args_kwargs(map_arg(self._args, fix), map_arg(self._kwargs, fix))

    def replace_input_with(self, old_input: Node, new_input: Node) -> None:
        """Use ``new_input`` wherever this node's arguments use ``old_input``."""
        self._replace_input_with(old_input, new_input)

    def replace_all_uses_with(self, replace_with: Node,
                              delete_user_cb: Callable[[Node], bool] | None = None, *,
                              propagate_meta: bool = False) -> list[Node]:  # fmt: skip
        """Make every user of this node use ``replace_with`` instead.

        Args:
            replace_with: the node to use instead.
            delete_user_cb: a filter; users for which it returns False keep this node.
            propagate_meta: copy this node's ``meta`` onto ``replace_with`` (whose ``meta``
                must be empty).

        Returns the users that changed.

        Example: ``node.replace_all_uses_with(new_node)``.
        """
        if propagate_meta:
            if replace_with.meta:
                raise RuntimeError(
                    "Called node.replace_all_uses_with(replace_with, propagate_meta=True), "
                    "but replace_with already has .meta keys"
                )
            replace_with.meta.update(self.meta)
        changed = []
        for user in list(self.users):
            if delete_user_cb is not None and not delete_user_cb(user):
                continue
            changed.append(user)
            user._replace_input_with(self, replace_with)
        return changed

    # ------------------------------------------------------------------ properties
    @property
    def stack_trace(self) -> str | None:
        """Where in the user's code this node was recorded (when the tracer kept it)."""
        return self.meta.get("stack_trace")

    @stack_trace.setter
    def stack_trace(self, trace: str | None) -> None:
        self.meta["stack_trace"] = trace

    def is_impure(self, impure_random: bool = True) -> bool:
        """Whether the node has a side effect that dead-code elimination must keep: inputs,
        the output, modules marked ``_is_impure`` and functions marked ``has_side_effect``."""
        if self.op in ("placeholder", "output"):
            return True
        if self.op == "call_module":
            mod = self.graph.owning_module
            if mod is None:
                raise RuntimeError("self.graph.owning_module not set for purity check")
            return bool(getattr(mod.get_submodule(self.target), "_is_impure", False))
        if self.op == "call_function":
            return self.target in _side_effectful_functions
        return False

    def __repr__(self) -> str:
        if self._repr_fn is not None:
            return self._repr_fn(self)
        return self.name

    @staticmethod
    def _pretty_print_target(target: Target) -> str:
        return _names.pretty_target(target)

    def format_node(self, placeholder_names: list[str] | None = None,
                    maybe_return_typename: list[str] | None = None) -> str | None:  # fmt: skip
        """The node as one line of ``str(graph)``, e.g.
        ``%relu : [num_users=1] = call_function[target=manygrad.relu](args = (%x,), kwargs = {})``.
        """
        typename = f"{_type_repr(self.type)} " if self.type is not None else ""
        if self.op == "placeholder":
            arg_str = self.target + (f": {_type_repr(self.type)}" if self.type else "")
            if placeholder_names:
                placeholder_names.append(arg_str)
                return None
            default = f"(default={self.args[0]})" if self.args else ""
            return (f"%{self.name} : {typename}[num_users={len(self.users)}] = "
                    f"{self.op}[target={self.target}]{default}")  # fmt: skip
        if self.op == "get_attr":
            return (f"%{self.name} : {typename}[num_users={len(self.users)}] = "
                    f"{self.op}[target={self._pretty_print_target(self.target)}]")  # fmt: skip
        if self.op == "output":
            if self.type and maybe_return_typename:
                maybe_return_typename[0] = f" -> {_type_repr(self.type)}"
            return f"return {self.args[0]}"
        return (
            f"%{self.name} : {typename}[num_users={len(self.users)}] = "
            f"{self.op}[target={self._pretty_print_target(self.target)}]("
            f"args = {_format_arg(self.args)}, kwargs = {_format_arg(self.kwargs)})"
        )
