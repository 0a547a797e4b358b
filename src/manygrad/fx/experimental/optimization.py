"""``torch.fx.experimental.optimization``: inference passes over traced models.

``fuse(model)`` folds each BatchNorm that directly follows a convolution or linear layer
(and is that layer's only user) into the layer, for an ``eval()`` model; ``remove_dropout``
drops the Dropout layers; ``extract_subgraph`` makes a module of some nodes of a graph.

Example:
    >>> fast = fuse(model.eval())  # the same outputs, one layer per conv + bn pair
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from ... import nn
from ...nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval
from .. import Graph, GraphModule, Node, Transformer, symbolic_trace

__all__ = ["matches_module_pattern", "replace_node_module", "fuse", "remove_dropout",
           "extract_subgraph"]  # fmt: skip


def _parent_name(target: str) -> tuple[str, str]:
    """``"a.b.c"`` -> ``("a.b", "c")``; ``"c"`` -> ``("", "c")``."""
    *parent, name = target.rsplit(".", 1)
    return (parent[0] if parent else ""), name


def matches_module_pattern(pattern: Iterable[type], node: Node, modules: dict[str, Any]) -> bool:
    """Whether ``node`` and its first argument call modules of exactly the types of
    ``pattern`` (``(nn.Conv2d, nn.BatchNorm2d)``: the argument's type first).

    Args:
        pattern: two module classes.
        node: the node of the second module.
        modules: ``dict(graph_module.named_modules())``.
    """
    if len(node.args) == 0:
        return False
    for expected, current in zip(pattern, (node.args[0], node)):
        if not isinstance(current, Node) or current.op != "call_module":
            return False
        if not isinstance(current.target, str) or current.target not in modules:
            return False
        if type(modules[current.target]) is not expected:
            return False
    return True


def replace_node_module(node: Node, modules: dict[str, Any], new_module: Any) -> None:
    """Put ``new_module`` where ``node``'s module was (in its parent and in ``modules``)."""
    if not isinstance(node.target, str):
        raise AssertionError(f"Expected str target, got {type(node.target)}")
    parent, name = _parent_name(node.target)
    modules[node.target] = new_module
    setattr(modules[parent], name, new_module)


def fuse(model: Any, inplace: bool = False, no_trace: bool = False) -> GraphModule:
    """Fold conv + BatchNorm and linear + BatchNorm1d pairs of an ``eval()`` model into
    single layers (BatchNorm layers without running statistics stay).

    Args:
        model: the module (in eval mode: training mode raises, as in PyTorch).
        inplace: change ``model``'s layers instead of a deep copy's (default False).
        no_trace: take ``model`` as it is when it is already a ``GraphModule``.

    Example:
        >>> fused = fuse(model.eval())
    """
    patterns = [(nn.Conv1d, nn.BatchNorm1d), (nn.Conv2d, nn.BatchNorm2d),
                (nn.Conv3d, nn.BatchNorm3d), (nn.Linear, nn.BatchNorm1d)]  # fmt: skip
    if not inplace:
        model = copy.deepcopy(model)
    traced = model if no_trace and isinstance(model, GraphModule) else symbolic_trace(model)
    modules = dict(traced.named_modules())
    graph = copy.deepcopy(traced.graph)
    for pattern in patterns:
        for node in graph.nodes:
            if not matches_module_pattern(pattern, node, modules):
                continue
            if len(node.args[0].users) > 1:  # the layer's output is used elsewhere too
                continue
            first, bn = modules[node.args[0].target], modules[node.target]
            if not bn.track_running_stats:
                continue
            fold = fuse_linear_bn_eval if pattern[0] is nn.Linear else fuse_conv_bn_eval
            replace_node_module(node.args[0], modules, fold(first, bn))
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)
    return GraphModule(traced, graph)


def remove_dropout(model: Any) -> GraphModule:
    """``model`` traced, with its ``nn.Dropout`` layers left out."""

    class DropoutRemover(Transformer):
        def call_module(self, target, args, kwargs):
            if isinstance(self.submodules[target], nn.Dropout):
                if len(args) != 1:
                    raise AssertionError(f"Expected 1 arg for Dropout, got {len(args)}")
                return args[0]
            return super().call_module(target, args, kwargs)

    return DropoutRemover(symbolic_trace(model)).transform()


def extract_subgraph(orig_module: Any, nodes: list[Node], inputs: list[Node],
                     outputs: list[Node]) -> GraphModule:  # fmt: skip
    """A module computing ``outputs`` from ``inputs`` through ``nodes`` (in order), with
    ``orig_module``'s submodules and parameters."""
    graph = Graph()
    env: dict[Node, Node] = {}
    for node in inputs:
        env[node] = graph.placeholder(node.name)
    for node in nodes:
        env[node] = graph.node_copy(node, lambda x: env[x])
    graph.output([env[node] for node in outputs])
    graph.lint()
    return GraphModule(orig_module, graph)
