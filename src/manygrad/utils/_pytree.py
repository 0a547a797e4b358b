"""``torch.utils._pytree``: flatten nested containers (tuples, lists, dicts, namedtuples)
to a list of leaves and a spec that rebuilds them; ``tree_map`` applies a function to every
leaf.

Example:
    >>> leaves, spec = tree_flatten({"a": (1, 2), "b": [3]})
    >>> tree_unflatten([x * 10 for x in leaves], spec)
    {'a': (10, 20), 'b': [30]}
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict, deque
from typing import Any

__all__ = ["LeafSpec", "TreeSpec", "tree_flatten", "tree_leaves", "tree_map", "tree_map_",
           "tree_map_only", "tree_structure", "tree_unflatten"]  # fmt: skip


class TreeSpec:
    """The shape of a nested container: its type, its context (dict keys, namedtuple
    class) and the specs of its children."""

    def __init__(self, type_, context, children_specs):
        self.type, self.context, self.children_specs = type_, context, list(children_specs)
        self.num_leaves = sum(c.num_leaves for c in self.children_specs)
        self.num_nodes = 1 + sum(c.num_nodes for c in self.children_specs)

    def is_leaf(self) -> bool:
        return False

    def __eq__(self, other) -> bool:
        return (isinstance(other, TreeSpec) and type(other) is type(self)
                and self.type is other.type and self.context == other.context
                and self.children_specs == other.children_specs)  # fmt: skip

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        name = getattr(self.type, "__name__", str(self.type))
        kids = ", ".join(repr(c) for c in self.children_specs)
        return f"TreeSpec({name}, {self.context!r}, [{kids}])"


class LeafSpec(TreeSpec):
    def __init__(self):
        super().__init__(None, None, [])
        self.num_leaves, self.num_nodes = 1, 1

    def is_leaf(self) -> bool:
        return True

    def __repr__(self) -> str:
        return "*"


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _children(node) -> tuple[list, Any] | None:
    """``(children, context)`` of a container node, None for a leaf."""
    if _is_namedtuple(node):
        return list(node), type(node)
    if isinstance(node, (tuple, list, deque)):
        return list(node), None
    if isinstance(node, (dict, OrderedDict, defaultdict)):
        keys = list(node.keys())
        ctx = (keys, node.default_factory) if isinstance(node, defaultdict) else keys
        return [node[k] for k in keys], ctx
    return None


def _rebuild(spec: TreeSpec, children: list):
    t = spec.type
    if _is_namedtuple_type(t):
        return t(*children)
    if t in (tuple, list):
        return t(children)
    if t is deque:
        return deque(children)
    if t is defaultdict:
        keys, factory = spec.context
        return defaultdict(factory, zip(keys, children))
    if t in (dict, OrderedDict):
        return t(zip(spec.context, children))
    return t(children)


def _is_namedtuple_type(t) -> bool:
    return isinstance(t, type) and issubclass(t, tuple) and hasattr(t, "_fields")


def tree_flatten(tree, is_leaf=None) -> tuple[list, TreeSpec]:
    """``(leaves, spec)``: the leaves left to right and the spec that rebuilds the tree."""
    leaves: list = []

    def walk(node) -> TreeSpec:
        if is_leaf is not None and is_leaf(node):
            leaves.append(node)
            return LeafSpec()
        kids = _children(node)
        if kids is None:
            leaves.append(node)
            return LeafSpec()
        children, ctx = kids
        return TreeSpec(type(node), ctx, [walk(c) for c in children])

    spec = walk(tree)
    return leaves, spec


def tree_unflatten(leaves, treespec: TreeSpec):
    """The tree of ``treespec`` with ``leaves`` in its leaf positions."""
    leaves = list(leaves)
    if len(leaves) != treespec.num_leaves:
        raise ValueError(
            f"treespec.unflatten(leaves): `leaves` has length {len(leaves)} but the spec "
            f"refers to a pytree that holds {treespec.num_leaves} items ({treespec})."
        )
    it = iter(leaves)

    def build(spec: TreeSpec):
        if spec.is_leaf():
            return next(it)
        return _rebuild(spec, [build(c) for c in spec.children_specs])

    return build(treespec)


def tree_leaves(tree, is_leaf=None) -> list:
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree, is_leaf=None) -> TreeSpec:
    return tree_flatten(tree, is_leaf)[1]


def tree_map(func, tree, *rests, is_leaf=None):
    """``tree`` with ``func(leaf, *leaves of rests)`` at every leaf."""
    leaves, spec = tree_flatten(tree, is_leaf)
    others = [spec_leaves(r, spec, is_leaf) for r in rests]
    return tree_unflatten([func(*xs) for xs in zip(leaves, *others)], spec)


def spec_leaves(tree, spec: TreeSpec, is_leaf=None) -> list:
    leaves, other = tree_flatten(tree, is_leaf)
    if other != spec:
        raise ValueError(f"tree_map: the trees differ in structure: {spec} and {other}")
    return leaves


def tree_map_(func, tree, *rests, is_leaf=None):
    """Call ``func`` on every leaf for its effect; returns ``tree``."""
    leaves, spec = tree_flatten(tree, is_leaf)
    others = [spec_leaves(r, spec, is_leaf) for r in rests]
    for xs in zip(leaves, *others):
        func(*xs)
    return tree


def tree_map_only(type_or_types, func, tree, is_leaf=None):
    """``func`` on the leaves that are instances of ``type_or_types``, others unchanged."""
    return tree_map(lambda x: func(x) if isinstance(x, type_or_types) else x, tree,
                    is_leaf=is_leaf)  # fmt: skip
