"""``SubgraphMatcher``: find the places in a graph where a pattern graph occurs."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ...graph import Graph
from ...node import Node

__all__ = ["SubgraphMatcher", "InternalMatch"]


@dataclass
class InternalMatch:
    """One occurrence of a pattern: ``nodes_map`` from pattern nodes to graph nodes, the
    graph nodes that fill the pattern's inputs (``placeholder_nodes``) and those that give
    its outputs (``returning_nodes``)."""

    anchors: list[Node]
    nodes_map: dict[Node, Node] = field(default_factory=dict)
    placeholder_nodes: list[Node] = field(default_factory=list)
    returning_nodes: list[Node] = field(default_factory=list)
    name_node_map: dict[str, Node] = field(default_factory=dict)

    def __copy__(self) -> InternalMatch:
        return InternalMatch(anchors=self.anchors, nodes_map=self.nodes_map.copy(),
                             placeholder_nodes=self.placeholder_nodes.copy(),
                             returning_nodes=self.returning_nodes.copy())  # fmt: skip


class SubgraphMatcher:
    """Matches ``pattern`` against graphs: nodes match by op and target (placeholders match
    anything), arguments pairwise, and a match's inner nodes must have no users outside it.

    Args:
        pattern: the pattern graph (no dead code).
        match_output: the output node must match an output too.
        match_placeholder: placeholders must match placeholders.
        remove_overlapping_matches: keep only the first of overlapping matches.
        ignore_literals: literal arguments (numbers, ...) match any literal.
    """

    def __init__(self, pattern: Graph, match_output: bool = False,
                 match_placeholder: bool = False, remove_overlapping_matches: bool = True,
                 ignore_literals: bool = False) -> None:  # fmt: skip
        self.pattern = pattern
        self.match_output, self.match_placeholder = match_output, match_placeholder
        self.remove_overlapping_matches = remove_overlapping_matches
        self.ignore_literals = ignore_literals
        if len(pattern.nodes) == 0:
            raise ValueError("SubgraphMatcher cannot be initialized with an empty pattern")
        for node in pattern.nodes:
            if node.op not in ("output", "placeholder") and not node.users:
                raise ValueError("SubgraphMatcher cannot be initialized with an pattern with "
                                 "dead code")  # fmt: skip
        self.pattern_placeholder_nodes = [n for n in pattern.nodes if n.op == "placeholder"]
        output_node = next(iter(reversed(pattern.nodes)))
        self.pattern_returning_nodes = output_node.all_input_nodes
        if match_output:
            self.pattern_anchors = [output_node]
        else:
            self.pattern_anchors = [n for n in output_node.all_input_nodes if len(n.users) == 1]

    def _nodes_are_equal(self, pn: Node, gn: Node) -> bool:
        if not self.match_placeholder and pn.op == "placeholder":
            return True
        if pn.op != gn.op:
            return False
        if pn.op in ("placeholder", "output"):
            return True
        if pn.op == "get_attr":
            return self._match_attributes(pn, gn)
        return pn.target == gn.target

    def _match_attributes(self, pn: Node, gn: Node) -> bool:
        from ....tensor import Tensor

        pv = _get_attr(pn.graph.owning_module, pn.target)
        gv = _get_attr(gn.graph.owning_module, gn.target)
        if type(pv) is not type(gv):
            return False
        if isinstance(pv, Tensor):
            return True
        raise RuntimeError(f"Unsupported type {pv} when matching attributes")

    def _is_contained(self, nodes_map: dict[Node, Node]) -> bool:
        lookup = {gn: pn for pn, gn in nodes_map.items() if pn.op != "placeholder"}
        for gn, pn in lookup.items():
            if pn in self.pattern_returning_nodes:
                continue
            if any(user not in lookup for user in gn.users):
                return False
        return True

    def _match_literals(self, pn: Any, gn: Any, match: InternalMatch) -> bool:
        if isinstance(pn, Node) and not isinstance(gn, Node):
            if pn.op == "placeholder":
                if pn in match.nodes_map:
                    return match.nodes_map[pn] == gn
                match.nodes_map[pn] = gn
                return True
            return False
        if not isinstance(pn, Node) and isinstance(gn, Node):
            return False
        return type(gn) is type(pn) and gn == pn

    def _match_nodes(self, pn: Node, gn: Node, match: InternalMatch) -> bool:
        if pn in match.nodes_map:
            return match.nodes_map[pn] is gn
        if any(v is gn for v in match.nodes_map.values()):
            return False
        if not self._nodes_are_equal(pn, gn):
            return False
        match.nodes_map[pn] = gn
        if pn.op == "placeholder":
            return True

        def match_args(a1: Any, a2: Any) -> bool:
            if len(a1) != len(a2):
                return False
            for x, y in zip(a1, a2):
                if isinstance(x, Node) and isinstance(y, Node):
                    ok = self._match_nodes(x, y, match)
                elif isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
                    ok = match_args(x, y)
                else:
                    ok = self._match_literals(x, y, match) or self.ignore_literals
                if not ok:
                    return False
            return True

        if len(pn.args) != len(gn.args) or list(pn.kwargs) != list(gn.kwargs):
            return False
        return match_args([*pn.args, *pn.kwargs.values()], [*gn.args, *gn.kwargs.values()])

    def _remove_overlapping(self, matches: list[InternalMatch]) -> list[InternalMatch]:
        kept: list[InternalMatch] = []
        taken: set[Node] = set()
        for m in matches:
            inner = [gn for pn, gn in m.nodes_map.items() if pn.op not in ("placeholder", "output")]
            if any(gn in taken for gn in inner):
                continue
            kept.append(m)
            taken.update(inner)
        return kept

    def match(self, graph: Graph) -> list[InternalMatch]:
        """The matches of the pattern in ``graph``, in graph order."""
        candidates = [
            (anchor, [n for n in graph.nodes if self._nodes_are_equal(anchor, n)])
            for anchor in self.pattern_anchors
        ]
        matches: list[InternalMatch] = []

        def backtrack(i: int, match: InternalMatch) -> None:
            if i == len(candidates):
                match.placeholder_nodes = [
                    match.nodes_map[p] for p in self.pattern_placeholder_nodes
                ]
                match.returning_nodes = [match.nodes_map[p] for p in self.pattern_returning_nodes]
                matches.append(match)
                return
            anchor, nodes = candidates[i]
            saved = copy.copy(match)
            for node in nodes:
                if self._match_nodes(anchor, node, match):
                    backtrack(i + 1, match)
                match = copy.copy(saved)

        if candidates:
            backtrack(0, InternalMatch(anchors=self.pattern_anchors))
        matches = [m for m in matches if self._is_contained(m.nodes_map)]
        if self.remove_overlapping_matches:
            matches = self._remove_overlapping(matches)
        return matches


def _get_attr(module: Any, target: str) -> Any:
    obj = module
    for atom in target.split("."):
        obj = getattr(obj, atom)
    return obj
