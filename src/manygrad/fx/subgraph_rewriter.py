"""``replace_pattern``: find a pattern (a traced function) in a graph and put a replacement
(another traced function) in each place where it occurs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from ._symbolic_trace import symbolic_trace
from .graph import Graph
from .graph_module import GraphModule
from .node import Node

__all__ = ["Match", "replace_pattern", "replace_pattern_with_filters", "ReplacedPatterns"]


class Match(NamedTuple):
    """Where a pattern matched: the graph node that matched the pattern's output
    (``anchor``) and the map from pattern nodes to graph nodes."""

    anchor: Node
    nodes_map: dict[Node, Node]


@dataclass
class ReplacedPatterns:
    """A replaced match, with the nodes that replaced it."""

    anchor: Node
    nodes_map: dict[Node, Node]
    replacements: list[Node]


def replace_pattern(gm: GraphModule, pattern: Callable | GraphModule,
                    replacement: Callable | GraphModule) -> list[Match]:  # fmt: skip
    """Replace every non-overlapping occurrence of ``pattern`` in ``gm``'s graph by
    ``replacement``, and recompile ``gm``.

    Both are traced with ``symbolic_trace`` (or given as ``GraphModule`` s); their inputs
    stand for any value of the graph, and they must take the same number of inputs. A match
    is kept only where the pattern's inner values are used nowhere else.

    Returns:
        The matches, one ``Match`` each.

    Example:
        >>> def pattern(x, y):
        ...     return manygrad.relu(x + y)
        >>> def replacement(x, y):
        ...     return manygrad.nn.functional.gelu(x + y)
        >>> fx.replace_pattern(gm, pattern, replacement)
    """
    done = _replace_pattern(gm, pattern, replacement)
    return [Match(anchor=m.anchor, nodes_map=m.nodes_map) for m in done]


def replace_pattern_with_filters(gm: GraphModule, pattern: Callable | Graph | GraphModule,
                                 replacement: Callable | Graph | GraphModule,
                                 match_filters: list[Callable[..., bool]] | None = None,
                                 ignore_literals: bool = False) -> list[ReplacedPatterns]:  # fmt: skip
    """``replace_pattern`` that keeps only the matches every ``match_filters`` function
    accepts (``f(match, original_graph, pattern_graph) -> bool``), and can match literal
    arguments loosely (``ignore_literals``)."""
    return _replace_pattern(gm, pattern, replacement, match_filters, ignore_literals)


def _as_graph(obj: Any) -> Graph:
    if isinstance(obj, GraphModule):
        return obj.graph
    if isinstance(obj, Graph):
        return obj
    return symbolic_trace(obj).graph


def _replace_pattern(gm: GraphModule, pattern: Any, replacement: Any,
                     match_filters: list[Callable[..., bool]] | None = None,
                     ignore_literals: bool = False) -> list[ReplacedPatterns]:  # fmt: skip
    from .passes.utils.matcher_utils import SubgraphMatcher

    original = gm.graph
    pattern_graph = _as_graph(pattern)
    matcher = SubgraphMatcher(pattern_graph, ignore_literals=ignore_literals)
    matches = [m for m in matcher.match(original)
               if all(f(m, original, pattern_graph) for f in match_filters or [])]  # fmt: skip
    replacement_graph = _as_graph(replacement)
    changed: dict[Node, Node] = {}
    done: list[ReplacedPatterns] = []
    for match in matches:
        placeholders = [n for n in replacement_graph.nodes if n.op == "placeholder"]
        if len(match.placeholder_nodes) != len(placeholders):
            raise ValueError(
                f"replace_pattern: the pattern takes {len(match.placeholder_nodes)} inputs and "
                f"the replacement {len(placeholders)}; they must take the same inputs"
            )
        val_map: dict[Node, Any] = {}
        for rn, gn in zip(placeholders, match.placeholder_nodes):
            if isinstance(gn, Node):
                val_map[rn] = changed.get(gn, gn)
                if val_map[rn] is not gn:  # an input that an earlier replacement made
                    i = match.placeholder_nodes.index(gn)
                    match.placeholder_nodes[i] = val_map[rn]
                    for pn, v in match.nodes_map.items():
                        if v is gn:
                            match.nodes_map[pn] = val_map[rn]
            else:
                val_map[rn] = gn
        insert_point = _insert_point(original, match)
        with original.inserting_before(insert_point):
            copied = original.graph_copy(replacement_graph, val_map)
        if isinstance(copied, Node):
            copied = (copied,)
        new_nodes = [v for v in val_map.values() if v not in match.placeholder_nodes]
        if len(match.returning_nodes) != len(copied):
            raise ValueError(
                f"replace_pattern: the pattern returns {len(match.returning_nodes)} values and "
                f"the replacement {len(copied)}; they must return as many"
            )
        for gn, new in zip(match.returning_nodes, copied):
            gn.replace_all_uses_with(new)
            changed[gn] = new
        for node in reversed(pattern_graph.nodes):
            if node.op not in ("placeholder", "output"):
                original.erase_node(match.nodes_map[node])
        done.append(ReplacedPatterns(match.anchors[0], match.nodes_map, new_nodes))
    gm.recompile()
    if isinstance(replacement, GraphModule):
        _replace_attributes(gm, replacement)
    return done


def _insert_point(graph: Graph, match: Any) -> Node:
    # NOTE: before the first user of the match's results, so that the replacement's inputs
    # are all defined there and its results before every use
    users: set[Node] = set()
    for n in match.returning_nodes:
        users.update(n.users)
    for n in graph.nodes:
        if n in users:
            return n
    nxt = None
    for n in reversed(graph.nodes):
        if n in match.returning_nodes:
            return nxt
        nxt = n
    raise RuntimeError("replace_pattern: no place to insert the replacement")


def _replace_attributes(gm: GraphModule, replacement: GraphModule) -> None:
    from ..nn import Module

    gm.delete_all_unused_submodules()
    replacement.graph.lint()

    def try_get(mod: Module, target: str) -> Any:
        path, _, name = target.rpartition(".")
        try:
            sub = mod.get_submodule(path)
        except AttributeError:
            return None
        return getattr(sub, name, None)

    for node in gm.graph.nodes:
        if node.op in ("call_module", "get_attr"):
            if try_get(gm, node.target) is not None:
                continue
            attr = try_get(replacement, node.target)
            if attr is None:
                raise RuntimeError(f"Attempted to create a {node.op!r} node during subgraph "
                                   f"rewriting with target {node.target}, but the referenced "
                                   "attribute does not exist in the replacement GraphModule")  # fmt: skip
            new = copy.deepcopy(attr)
            if isinstance(attr, Module):
                gm.add_submodule(node.target, new)
            else:
                setattr(gm, node.target, new)
    gm.graph.lint()
