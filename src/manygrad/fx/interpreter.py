"""``Interpreter`` runs a graph node by node (override a method per op to change what a
node does); ``Transformer`` runs it on proxies to write a new graph."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from typing import Any

from . import _patching
from ._symbolic_trace import Tracer
from .graph import Graph
from .graph_module import GraphModule
from .node import Argument, Node, Target, map_aggregate, map_arg
from .proxy import Proxy

__all__ = ["Interpreter", "Transformer"]


class Interpreter:
    """Runs a ``GraphModule``'s graph one node at a time: ``run_node`` calls the method named
    by the node's op (``placeholder``, ``get_attr``, ``call_function``, ``call_method``,
    ``call_module``, ``output``), which a subclass may override.

    Args:
        module: the module whose graph runs (its submodules and attributes are used).
        garbage_collect_values: drop each value after its last use (default True).
        graph: run this graph instead of ``module.graph``.

    Example:
        >>> class NegSigmoid(fx.Interpreter):
        ...     def call_function(self, target, args, kwargs):
        ...         if target == manygrad.sigmoid:
        ...             return -super().call_function(target, args, kwargs)
        ...         return super().call_function(target, args, kwargs)
        >>> NegSigmoid(gm).run(x)
    """

    def __init__(self, module: Any, garbage_collect_values: bool = True,
                 graph: Graph | None = None) -> None:  # fmt: skip
        self.module = module
        self.submodules = dict(module.named_modules())
        self.graph = graph if graph is not None else module.graph
        self.env: dict[Node, Any] = {}
        self.name = "Interpreter"
        self.garbage_collect_values = garbage_collect_values
        self.extra_traceback = True
        if garbage_collect_values:
            seen: set[Node] = set()
            self.user_to_last_uses: dict[Node, list[Node]] = {}
            for node in reversed(self.graph.nodes):
                for n in node._input_nodes:
                    if n not in seen:
                        seen.add(n)
                        self.user_to_last_uses.setdefault(node, []).append(n)

    def run(self, *args: Any, initial_env: dict[Node, Any] | None = None,
            enable_io_processing: bool = True) -> Any:  # fmt: skip
        """Run the graph on ``args`` (one per placeholder) and return its output.

        Args:
            initial_env: values for some nodes, which then do not run.
            enable_io_processing: pass inputs and outputs through the graph's codegen.
        """
        self.env = initial_env if initial_env is not None else {}
        if enable_io_processing:
            args = self.graph.process_inputs(*args)
        self.args_iter: Iterator[Any] = iter(args)
        for node in self.graph.nodes:
            if node in self.env:
                continue
            try:
                self.env[node] = self.run_node(node)
            except Exception as e:
                if self.extra_traceback:
                    msg = f"While executing {node.format_node()}"
                    msg = f"{e.args[0]}\n\n{msg}" if e.args else msg
                    e.args = (msg,) + e.args[1:]
                    if isinstance(e, KeyError):
                        raise RuntimeError(*e.args) from e
                raise
            if self.garbage_collect_values:
                for dead in self.user_to_last_uses.get(node, []):
                    del self.env[dead]
            if node.op == "output":
                out = self.env[node]
                return self.graph.process_outputs(out) if enable_io_processing else out
        return None

    def boxed_run(self, args_list: list[Any]) -> Any:
        """``run`` on a list of inputs, which it empties (so they can be freed early)."""
        placeholders = [n for n in self.graph.nodes if n.op == "placeholder"]
        if len(args_list) != len(placeholders):
            detail = (
                "extra arguments" if len(args_list) > len(placeholders) else "missing arguments"
            )
            raise RuntimeError(f"Interpreter.boxed_run expected {len(placeholders)} arguments "
                               f"for placeholders but received {len(args_list)} ({detail})")  # fmt: skip
        env = dict(zip(placeholders, args_list))
        args_list.clear()
        return self.run(initial_env=env)

    def run_node(self, n: Node) -> Any:
        """Run node ``n``: its arguments from the values so far, then its op's method."""
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        return getattr(self, n.op)(n.target, args, kwargs)

    # ------------------------------------------------------------------ one method per op
    def placeholder(self, target: Target, args: tuple, kwargs: dict) -> Any:
        """The next input (the default value when the inputs ran out)."""
        if target.startswith("*"):
            return list(self.args_iter)
        try:
            return next(self.args_iter)
        except StopIteration as si:
            if args:
                return args[0]
            raise RuntimeError(f"Expected positional argument for parameter {target}, but one "
                               "was not passed in!") from si  # fmt: skip

    def get_attr(self, target: Target, args: tuple, kwargs: dict) -> Any:
        """The module's attribute ``target``."""
        return self.fetch_attr(target)

    def call_function(self, target: Target, args: tuple, kwargs: dict) -> Any:
        """``target(*args, **kwargs)``."""
        return target(*args, **kwargs)

    def call_method(self, target: Target, args: tuple, kwargs: dict) -> Any:
        """``args[0].target(*args[1:], **kwargs)``."""
        self_obj, *rest = args
        return getattr(self_obj, target)(*rest, **kwargs)

    def call_module(self, target: Target, args: tuple, kwargs: dict) -> Any:
        """The submodule ``target`` called on the arguments."""
        return self.fetch_attr(target)(*args, **kwargs)

    def output(self, target: Target, args: tuple, kwargs: dict) -> Any:
        """The graph's result."""
        return args[0]

    # ------------------------------------------------------------------ helpers
    def fetch_attr(self, target: str) -> Any:
        """The attribute at the dotted path ``target`` of the module."""
        atoms = target.split(".")
        obj = self.module
        for i, atom in enumerate(atoms):
            if not hasattr(obj, atom):
                raise RuntimeError(f"Node referenced nonexistent target {'.'.join(atoms[: i + 1])}")
            obj = getattr(obj, atom)
        return obj

    def fetch_args_kwargs_from_env(self, n: Node) -> tuple[tuple, dict]:
        """Node ``n``'s arguments with their nodes replaced by the values computed so far."""
        return self.map_nodes_to_values(n.args, n), self.map_nodes_to_values(n.kwargs, n)

    def map_nodes_to_values(self, args: Argument, n: Node) -> Argument:
        """``args`` with each node replaced by its value."""

        def load(a: Node) -> Any:
            if a not in self.env:
                raise RuntimeError(f"Node {n} referenced nonexistent value {a}! Run "
                                   "Graph.lint() to diagnose such issues")  # fmt: skip
            return self.env[a]

        return map_arg(args, load)


class _TransformerTracer(Tracer):
    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.graph = graph
        self.tensor_attrs = {}

    def is_leaf_module(self, m: Any, module_qualified_name: str) -> bool:
        return True


class Transformer(Interpreter):
    """An ``Interpreter`` whose run writes a new graph: each op's method returns a ``Proxy``
    (override them to emit other nodes); ``transform`` returns the new ``GraphModule``.
    While it runs, manygrad functions called on proxies (``torch.neg(*args)`` in an
    override) record nodes, as in tracing.

    Example:
        >>> class ReluToGelu(fx.Transformer):
        ...     def call_function(self, target, args, kwargs):
        ...         if target == manygrad.relu:
        ...             target = manygrad.nn.functional.gelu
        ...         return super().call_function(target, args, kwargs)
        >>> new_gm = ReluToGelu(gm).transform()
    """

    def __init__(self, module: GraphModule) -> None:
        super().__init__(module)
        self.new_graph = Graph()
        self.new_graph.set_codegen(module.graph._codegen)
        self.tracer = _TransformerTracer(self.new_graph)
        self.tracer.root = module

    def placeholder(self, target: Target, args: tuple, kwargs: dict) -> Proxy:
        default = next(iter(args)) if args else inspect.Signature.empty
        return Proxy(self.new_graph.placeholder(target, default_value=default), self.tracer)

    def get_attr(self, target: Target, args: tuple, kwargs: dict) -> Proxy:
        return self.tracer.create_proxy("get_attr", target, args, kwargs)

    def call_module(self, target: Target, args: tuple, kwargs: dict) -> Any:
        submod = self.fetch_attr(target)
        return self.tracer.call_module(submod, submod.forward, args, kwargs)

    def call_function(self, target: Target, args: tuple, kwargs: dict) -> Any:
        return self.tracer.create_proxy("call_function", target, args, kwargs)

    def transform(self) -> GraphModule:
        """Run the transformation and return the new module."""
        frames = [vars(sys.modules[c.__module__]) for c in type(self).__mro__
                  if c.__module__ in sys.modules and not c.__module__.startswith("manygrad.fx")]  # fmt: skip
        with _patching.Patcher() as patcher:
            _patching.patch_for_recording(patcher, frames)
            result = super().run(enable_io_processing=False)
        if result is not None:
            out = self.new_graph.output(map_aggregate(
                result, lambda a: a.node if isinstance(a, Proxy) else a))  # fmt: skip
            old = self.graph.output_node()
            out.meta.update(old.meta)
        return GraphModule(self.module, self.new_graph)
