"""Intermediate features of a model by name (``torchvision.models.feature_extraction``):
``create_feature_extractor`` rewrites a model's traced graph (``manygrad.fx``) to return
the nodes asked for, as a dict; ``get_graph_node_names`` lists the names to ask for.

A node's name is the dotted path of the module it ran in plus, for a function or method
call, the call's own name: ``"layer1.0.relu"``, ``"layer1.0.add"``, ``"flatten"``. A name met
again in the same place gets ``_1``, ``_2``, ... (``"layer1.0.relu_1"``). A query names a
node or any prefix of names ending at a dot (``"layer1"`` is the last node under layer1).
The layers of ``manygrad.vision.ops`` (``Conv2dNormActivation``, ``StochasticDepth``, ...)
are leaves, as torchvision's are: one node each.

Example:
    >>> import manygrad as mg
    >>> from manygrad.vision.models import resnet18
    >>> from manygrad.vision.models.feature_extraction import create_feature_extractor
    >>> body = create_feature_extractor(resnet18(), {"layer1": "c2", "layer4": "c5"})
    >>> out = body(mg.rand(1, 3, 64, 64))
    >>> [(k, tuple(v.shape)) for k, v in out.items()]
    [('c2', (1, 64, 16, 16)), ('c5', (1, 512, 2, 2))]
"""

from __future__ import annotations

import copy
import inspect
import math
import re
import warnings
from collections import OrderedDict
from itertools import chain
from typing import Any

from ... import fx, nn
from ...fx.graph_module import _CodeOnlyModule, _copy_attr

__all__ = ["create_feature_extractor", "get_graph_node_names"]


class LeafModuleAwareTracer(fx.Tracer):
    """An ``fx.Tracer`` that also keeps instances of ``leaf_modules`` (a list of classes)
    as single ``call_module`` nodes instead of tracing through them."""

    def __init__(self, *args: Any, leaf_modules: Any = None, **kwargs: Any) -> None:
        self.leaf_modules = list(leaf_modules or ())
        super().__init__(*args, **kwargs)

    def is_leaf_module(self, m: nn.Module, module_qualname: str) -> bool:
        if self.leaf_modules and isinstance(m, tuple(self.leaf_modules)):
            return True
        return super().is_leaf_module(m, module_qualname)


class NodePathTracer(LeafModuleAwareTracer):
    """A tracer that names every node it records by its place in the module tree
    (``node_to_qualname``, in execution order; see the module's docstring for the rules)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.current_module_qualname = ""
        self.node_to_qualname: OrderedDict = OrderedDict()

    def call_module(self, m: nn.Module, forward: Any, args: tuple, kwargs: dict) -> Any:
        outer = self.current_module_qualname
        self.current_module_qualname = self.path_of_module(m)
        try:
            return super().call_module(m, forward, args, kwargs)
        finally:
            self.current_module_qualname = outer

    def create_proxy(self, kind: str, target: Any, args: tuple, kwargs: dict,
                     name: str | None = None, type_expr: Any = None, *rest: Any) -> Any:  # fmt: skip
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, *rest)
        node = proxy.node
        self.node_to_qualname[node] = self._get_node_qualname(self.current_module_qualname, node)
        return proxy

    def _get_node_qualname(self, module_qualname: str, node: fx.Node) -> str:
        qualname = module_qualname
        if node.op != "call_module":  # NOTE: a call inside the module: its name is appended
            qualname = f"{qualname}.{node.name}" if qualname else node.name
        # NOTE: fx numbers repeated names across the whole graph; these names number them
        # within their place instead, so fx's ``_<n>`` ending goes (any such ending, as
        # torchvision's names do: a module named ``conv_1`` is listed as ``conv``)
        if re.match(r".+_[0-9]+$", qualname) is not None:
            qualname = qualname.rsplit("_", 1)[0]
        for seen in reversed(self.node_to_qualname.values()):
            if re.match(rf"{qualname}(_[0-9]+)?$", seen) is not None:
                tail = seen[len(qualname) :]
                return f"{qualname}_{int(tail[1:]) + 1 if tail else 1}"
        return qualname


def _is_subseq(seq: list, sub: list) -> bool:
    it = iter(seq)
    return all(any(a == b for a in it) for b in sub)


def _warn_graph_differences(train: NodePathTracer, eval_: NodePathTracer) -> None:
    tn, en = list(train.node_to_qualname.values()), list(eval_.node_to_qualname.values())
    if tn == en:
        return
    if _is_subseq(tn, en):
        msg = "NOTE: the nodes traced in eval mode are a subsequence of those in train mode. "
    elif _is_subseq(en, tn):
        msg = "NOTE: the nodes traced in train mode are a subsequence of those in eval mode. "
    else:
        msg = "The nodes traced in train mode differ from those traced in eval mode. "
    warnings.warn(
        msg + "When choosing nodes for feature extraction, you may need to name the output "
        "nodes of train and eval mode separately (train_return_nodes= and eval_return_nodes=).",
        stacklevel=3,
    )


def _vision_ops_leaves() -> list[type]:
    from ... import vision

    return [
        obj
        for _, obj in inspect.getmembers(vision.ops)
        if inspect.isclass(obj) and issubclass(obj, nn.Module)
    ]


def _set_default_tracer_kwargs(given: dict[str, Any] | None) -> dict[str, Any]:
    """``given`` (updated in place, as torchvision does) plus the defaults: ``math`` and
    ``vision.ops`` autowrapped, ``vision.ops``' layers as leaves."""
    from ... import vision

    kw = {} if given is None else given
    mods = (math, vision.ops)
    if "autowrap_modules" in kw:
        mods = tuple(set(tuple(kw["autowrap_modules"]) + mods))
    leaves = _vision_ops_leaves()
    if "leaf_modules" in kw:
        leaves = list(set(list(kw["leaf_modules"]) + leaves))
    kw["autowrap_modules"], kw["leaf_modules"] = mods, leaves
    return kw


def get_graph_node_names(
    model: nn.Module,
    tracer_kwargs: dict[str, Any] | None = None,
    suppress_diff_warning: bool = False,
    concrete_args: dict[str, Any] | None = None,
) -> tuple[list[str], list[str]]:
    """The names ``create_feature_extractor`` accepts, in execution order, as traced in
    train mode and in eval mode (a warning says when the two differ).

    Args:
        model: the model (traced twice; its train/eval mode is restored).
        tracer_kwargs: keyword arguments of the tracer (``leaf_modules``,
            ``autowrap_modules``, ``autowrap_functions``), added to the defaults.
        suppress_diff_warning: no warning when the train and eval graphs differ.
        concrete_args: inputs fixed during tracing (``fx.Tracer.trace``'s argument).

    Example:
        >>> train_nodes, eval_nodes = get_graph_node_names(resnet18())
        >>> train_nodes[:3]
        ['x', 'conv1', 'bn1']
    """
    tracer_kwargs = _set_default_tracer_kwargs(tracer_kwargs)
    was_training = model.training
    try:
        train = NodePathTracer(**tracer_kwargs)
        train.trace(model.train(), concrete_args=concrete_args)
        eval_ = NodePathTracer(**tracer_kwargs)
        eval_.trace(model.eval(), concrete_args=concrete_args)
    finally:
        model.train(was_training)
    if not suppress_diff_warning:
        _warn_graph_differences(train, eval_)
    return list(train.node_to_qualname.values()), list(eval_.node_to_qualname.values())


class DualGraphModule(fx.GraphModule):
    """A ``GraphModule`` with a graph per mode: ``train()`` runs ``train_graph``,
    ``eval()`` runs ``eval_graph``; it holds the submodules and attributes of both."""

    def __init__(self, root: nn.Module, train_graph: fx.Graph, eval_graph: fx.Graph,
                 class_name: str = "GraphModule") -> None:  # fmt: skip
        super().__init__(root, train_graph, class_name)
        for node in chain(train_graph.nodes, eval_graph.nodes):
            if node.op in ("get_attr", "call_module"):
                if not isinstance(node.target, str):
                    raise TypeError(f"node.target should be a str, got {type(node.target)}")
                _copy_attr(root, self, node.target)
        if eval_graph._tracer_cls is not train_graph._tracer_cls:
            raise TypeError(
                "Train mode and eval mode should use the same tracer class, got "
                f"{eval_graph._tracer_cls} for eval and {train_graph._tracer_cls} for train"
            )
        self.train_graph = train_graph
        self.eval_graph = eval_graph
        self.training = True
        self.train()

    def train(self, mode: bool = True) -> DualGraphModule:
        """Select the graph of ``mode`` (recompiling only when it changes) and set the
        mode of every submodule."""
        want = self.train_graph if mode else self.eval_graph
        if self.__dict__.get("_graph") is not want:
            self.graph = want
        return super().train(mode)

    def __deepcopy__(self, memo: dict) -> DualGraphModule:
        res = type(self).__new__(type(self))
        memo[id(self)] = res
        fake = _CodeOnlyModule(copy.deepcopy(self.__dict__, memo))
        DualGraphModule.__init__(
            res, fake, fake.__dict__["train_graph"], fake.__dict__["eval_graph"],
            class_name=type(self).__name__,
        )  # fmt: skip
        res.train(self.training)
        res.meta = copy.deepcopy(getattr(self, "meta", {}), memo)
        return res


def _as_strdict(nodes: list | dict) -> dict[str, str]:
    if isinstance(nodes, list):
        return {str(n): str(n) for n in nodes}
    return {str(k): str(v) for k, v in nodes.items()}


def create_feature_extractor(
    model: nn.Module,
    return_nodes: list[str] | dict[str, str] | None = None,
    train_return_nodes: list[str] | dict[str, str] | None = None,
    eval_return_nodes: list[str] | dict[str, str] | None = None,
    tracer_kwargs: dict[str, Any] | None = None,
    suppress_diff_warning: bool = False,
    concrete_args: dict[str, Any] | None = None,
) -> fx.GraphModule:
    """A module that runs ``model`` up to the nodes asked for and returns them as a dict
    (unused layers and parameters dropped; the parameters it keeps are ``model``'s own).

    Args:
        model: the model to trace.
        return_nodes: node names (or prefixes up to a dot), a list, or a dict from node
            names to the keys of the returned dict.
        train_return_nodes, eval_return_nodes: the same, separately for each mode (both or
            neither; then not ``return_nodes``).
        tracer_kwargs: keyword arguments of the tracer (``leaf_modules``,
            ``autowrap_modules``, ``autowrap_functions``), added to the defaults.
        suppress_diff_warning: no warning when the train and eval graphs differ.
        concrete_args: inputs fixed during tracing.

    Example:
        >>> body = create_feature_extractor(resnet18(), return_nodes=["layer2", "layer3"])
        >>> list(body(mg.rand(1, 3, 64, 64)))
        ['layer2', 'layer3']
    """
    tracer_kwargs = _set_default_tracer_kwargs(tracer_kwargs)
    if return_nodes is None and train_return_nodes is None and eval_return_nodes is None:
        raise ValueError(
            "create_feature_extractor: give return_nodes, or train_return_nodes and "
            "eval_return_nodes together"
        )
    if (train_return_nodes is None) != (eval_return_nodes is None):
        raise ValueError(
            "create_feature_extractor: train_return_nodes and eval_return_nodes go together: "
            "give both or neither"
        )
    if (return_nodes is None) == (train_return_nodes is None):
        raise ValueError(
            "create_feature_extractor: give either return_nodes or train_return_nodes and "
            "eval_return_nodes, not both"
        )
    if train_return_nodes is None:
        wanted = {"train": _as_strdict(return_nodes), "eval": _as_strdict(return_nodes)}
    else:
        wanted = {"train": _as_strdict(train_return_nodes),
                  "eval": _as_strdict(eval_return_nodes)}  # fmt: skip
    was_training = model.training
    name = type(model).__name__ if isinstance(model, nn.Module) else model.__name__
    tracers: dict[str, NodePathTracer] = {}
    graphs: dict[str, fx.Graph] = {}
    try:
        for mode in ("train", "eval"):
            model.train(mode == "train")
            tracer = NodePathTracer(**tracer_kwargs)
            graph = tracer.trace(model, concrete_args=concrete_args)
            gm = fx.GraphModule(tracer.root, graph, name)
            names = list(tracer.node_to_qualname.values())
            if len(set(names)) != len(names):  # NOTE: the naming rules make this impossible
                raise ValueError(f"create_feature_extractor: duplicate node names in {name}")
            queries = dict(wanted[mode])
            for q in queries:
                if not any(re.match(rf"^{q}(\.|$)", n) is not None for n in names):
                    raise ValueError(
                        f"node: '{q}' is not present in model. Hint: use "
                        "`get_graph_node_names` to make sure the `return_nodes` you specified "
                        "are present. It may even be that you need to specify "
                        "`train_return_nodes` and `eval_return_nodes` separately."
                    )
            nodes = list(gm.graph.nodes)
            for n in reversed(nodes):
                if n.op == "output":
                    gm.graph.erase_node(n)
            nodes = list(gm.graph.nodes)
            found: OrderedDict = OrderedDict()
            # NOTE: from the last node back: a prefix query takes the last node under it
            for n in reversed(nodes):
                qual = tracer.node_to_qualname.get(n)
                if qual is None:  # constants made while tracing, namedtuple packing
                    continue
                for q in queries:
                    if ".".join(qual.split(".")[: q.count(".") + 1]) == q:
                        found[queries.pop(q)] = n
                        break
            with gm.graph.inserting_after(nodes[-1]):
                gm.graph.output(OrderedDict(reversed(list(found.items()))))
            gm.graph.eliminate_dead_code()
            gm.recompile()
            tracers[mode], graphs[mode] = tracer, graph
    finally:
        model.train(was_training)
    if not suppress_diff_warning:
        _warn_graph_differences(tracers["train"], tracers["eval"])
    out = DualGraphModule(model, graphs["train"], graphs["eval"], class_name=name)
    out.train(was_training)
    return out
