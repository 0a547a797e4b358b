"""Graph inspection and hooks: ``Node`` (the class of every ``grad_fn``), removable handles,
and ``register_multi_grad_hook``."""

from __future__ import annotations

import itertools

from . import Function as Node  # noqa: F401  (PyTorch's name for a graph node)

_ids = itertools.count()


class RemovableHandle:
    """Returned by every ``register_*hook``; ``handle.remove()`` takes the hook away.

    Also a context manager: the hook is removed when the ``with`` block ends.
    """

    __slots__ = ("_dict", "id")

    def __init__(self, hooks: dict):
        self._dict = hooks
        self.id = next(_ids)

    def remove(self) -> None:
        self._dict.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


def node_hooks(node) -> dict:
    """The hooks of a graph node (one dict, so that backward checks one key per node)."""
    return node.__dict__.setdefault("_h", {})


def add_hook(node, key: str, hook) -> RemovableHandle:
    hooks = node_hooks(node).setdefault(key, {})
    h = RemovableHandle(hooks)
    hooks[h.id] = hook
    return h


def add_tensor_hook(node, oi: int, hook) -> RemovableHandle:
    per = node_hooks(node).setdefault("pre", {})
    hooks = per.setdefault(oi, {})
    h = RemovableHandle(hooks)
    hooks[h.id] = hook
    return h


def register_multi_grad_hook(tensors, fn, *, mode: str = "all"):
    """Call ``fn(grads)`` once the gradients of all ``tensors`` are computed in a backward
    (``mode="all"``; None for those that got none), or ``fn(grad)`` at the first one
    (``mode="any"``)."""
    tensors = list(tensors)
    state = {"grads": [None] * len(tensors), "count": 0}
    handles = []

    def make(i):
        def hook(g):
            if mode == "any":
                fn(g)
                return None
            state["grads"][i] = g
            state["count"] += 1
            if state["count"] == sum(t.requires_grad for t in tensors):
                grads, state["grads"], state["count"] = state["grads"], [None] * len(tensors), 0
                fn(tuple(grads))
            return None

        return hook

    for i, t in enumerate(tensors):
        if t.requires_grad:
            handles.append(t.register_hook(make(i)))

    class _Multi:
        def remove(self):
            for h in handles:
                h.remove()

    return _Multi()


from ._saved_hooks import (  # noqa: E402, F401
    disable_saved_tensors_hooks,
    save_on_cpu,
    saved_tensors_hooks,
)
