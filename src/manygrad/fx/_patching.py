"""The temporary patches of a trace. manygrad has no ``__torch_function__`` dispatch, so a
manygrad function cannot see that it was handed a ``Proxy``; instead, while ``Tracer.trace``
runs, the public functions of manygrad's namespaces (and of ``math``, of ``fx.wrap``'s
functions and of ``autowrap_functions``) are replaced by wrappers that record a node when an
argument is a Proxy and call through otherwise. Tensor methods get the same wrapper, for a
constant tensor used with a Proxy (``self.scale * x``, ``self.table[:, :n]``). Every patch is
undone when the trace ends, also when it fails."""

from __future__ import annotations

import builtins
import functools
import math
from collections.abc import Callable
from typing import Any

from . import _names

# what PyTorch records for ``tensor <op> proxy``: the method that the operator dispatches to
_TENSOR_OPERATORS = {
    "__add__": "add", "__sub__": "sub", "__mul__": "mul", "__truediv__": "div",
    "__floordiv__": "__floordiv__", "__mod__": "remainder", "__pow__": "pow",
    "__matmul__": "matmul", "__and__": "__and__", "__or__": "__or__", "__xor__": "__xor__",
    "__lshift__": "__lshift__", "__rshift__": "__rshift__", "__eq__": "eq", "__ne__": "ne",
    "__lt__": "lt", "__le__": "le", "__gt__": "gt", "__ge__": "ge",
    "__getitem__": "__getitem__",
}  # fmt: skip


def find_proxy(*objects: Any) -> Any:
    """The first ``Proxy`` inside ``objects`` (nested in tuples, lists, dicts, slices)."""
    from .proxy import Proxy

    stack = list(objects)
    while stack:
        x = stack.pop(0)
        if isinstance(x, Proxy):
            return x
        if isinstance(x, (tuple, list)):
            stack[:0] = x
        elif isinstance(x, dict):
            stack[:0] = x.values()
        elif isinstance(x, slice):
            stack[:0] = (x.start, x.stop, x.step)
    return None


class _Recorder:
    """A function that records a ``call_function`` node of ``orig`` when handed a Proxy and
    calls ``orig`` otherwise; it compares (``==``) and hashes as ``orig`` does, so that
    ``target == torch.relu`` holds for a recorded target while the patch is in place."""

    def __init__(self, orig: Callable, mark_wrapped: bool) -> None:
        functools.update_wrapper(self, orig)
        self._fx_orig, self._mark_wrapped = orig, mark_wrapped

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        proxy = find_proxy(args, kwargs)
        if proxy is None:
            return self._fx_orig(*args, **kwargs)
        out = proxy.tracer.create_proxy("call_function", self._fx_orig, args, kwargs)
        if self._mark_wrapped:
            out.node.meta["is_wrapped"] = True
        return out

    def __eq__(self, other: Any) -> bool:
        return _names.unwrap(other) is self._fx_orig

    def __hash__(self) -> int:
        return hash(self._fx_orig)

    def __repr__(self) -> str:
        return repr(self._fx_orig)


def wrapped_func(orig_fn: Callable, mark_wrapped: bool = True) -> Callable:
    """``orig_fn`` recording a ``call_function`` node when handed a Proxy."""
    return _Recorder(orig_fn, mark_wrapped)


def _wrapped_method(orig_fn: Callable, record_as: str) -> Callable:
    @functools.wraps(orig_fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        proxy = find_proxy(args, kwargs)
        if proxy is not None:
            return proxy.tracer.create_proxy("call_method", record_as, args, kwargs)
        return orig_fn(*args, **kwargs)

    wrapped._fx_orig = orig_fn
    return wrapped


class _Patch:
    def __init__(self, owner: Any, name: str, new: Any, is_dict: bool) -> None:
        self.owner, self.name, self.new, self.is_dict = owner, name, new, is_dict
        store = owner if is_dict else vars(owner)
        self.had = name in store
        self.orig = store.get(name)

    def apply(self) -> None:
        if self.is_dict:
            self.owner[self.name] = self.new
        else:
            setattr(self.owner, self.name, self.new)

    def revert(self) -> None:
        if self.had:
            self.apply_value(self.orig)
        elif self.is_dict:
            self.owner.pop(self.name, None)
        else:
            delattr(self.owner, self.name)

    def apply_value(self, value: Any) -> None:
        if self.is_dict:
            self.owner[self.name] = value
        else:
            setattr(self.owner, self.name, value)


class Patcher:
    """The patches of one trace, undone in reverse order on exit."""

    def __init__(self) -> None:
        self.patches_made: list[_Patch] = []
        self.visited: set[int] = set()

    def patch(self, frame_dict: dict, name: str, new_fn: Callable, deduplicate: bool = True
              ) -> None:  # fmt: skip
        """Replace ``frame_dict[name]`` (a module's globals) by ``new_fn``."""
        new_fn._fx_already_patched = deduplicate
        if name in frame_dict and getattr(frame_dict[name], "_fx_already_patched", False):
            return
        if name not in frame_dict and not hasattr(builtins, name):
            return
        self.patches_made.append(_Patch(frame_dict, name, new_fn, True))
        self.patches_made[-1].apply()

    def patch_method(self, cls: type, name: str, new_fn: Callable, deduplicate: bool = True
                     ) -> None:  # fmt: skip
        """Replace the method ``cls.name`` by ``new_fn``."""
        new_fn._fx_already_patched = deduplicate
        if getattr(getattr(cls, name), "_fx_already_patched", False):
            return
        self.patches_made.append(_Patch(cls, name, new_fn, False))
        self.patches_made[-1].apply()

    def visit_once(self, thing: Any) -> bool:
        """True the first time ``thing`` is seen."""
        if id(thing) in self.visited:
            return False
        self.visited.add(id(thing))
        return True

    def revert_all_patches(self) -> None:
        for p in reversed(self.patches_made):
            p.revert()

    def __enter__(self) -> Patcher:
        return self

    def __exit__(self, *exc: Any) -> None:
        while self.patches_made:
            self.patches_made.pop().revert()
        self.visited.clear()


# functions registered by ``fx.wrap``: (id of the module's globals, name) -> globals
wrapped_fns_to_patch: dict[tuple[int, str], dict[str, Any]] = {}


def patch_wrapped_functions(patcher: Patcher) -> None:
    """Patch the functions that ``fx.wrap`` registered, in the modules that registered them."""
    for (_, name), frame_dict in list(wrapped_fns_to_patch.items()):
        orig = frame_dict[name] if name in frame_dict else getattr(builtins, name)
        patcher.patch(frame_dict, name, wrapped_func(_names.unwrap(orig)))


def autowrap_check(patcher: Patcher, frame_dict: dict, function_ids: set[int],
                   manygrad_ids: set[int]) -> None:  # fmt: skip
    """Patch the entries of ``frame_dict`` (a namespace or a module's globals) that are
    functions to record (their ids in ``function_ids``)."""
    if not patcher.visit_once(frame_dict):
        return
    for name, value in list(frame_dict.items()):
        if name.startswith("_") or not callable(value) or isinstance(value, type):
            continue
        orig = _names.unwrap(value)
        if id(orig) in function_ids:
            patcher.patch(frame_dict, name, wrapped_func(orig, id(orig) not in manygrad_ids))


def _tensor_methods() -> dict[str, tuple[Callable, str]]:
    from ..tensor import Tensor

    out: dict[str, tuple[Callable, str]] = {}
    for klass in Tensor.__mro__[:-1]:
        for name, value in vars(klass).items():
            if name in out or not callable(value) or isinstance(value, (type, staticmethod)):
                continue
            if name in _TENSOR_OPERATORS:
                out[name] = (value, _TENSOR_OPERATORS[name])
            elif not name.startswith("_") and type(value).__name__ == "function":
                out[name] = (value, name)
    return out


def patch_tensor_methods(patcher: Patcher) -> None:
    """Wrap the public methods and operators of ``Tensor`` (see the module docstring)."""
    from ..tensor import Tensor

    for name, (orig, record_as) in _tensor_methods().items():
        patcher.patch_method(Tensor, name, _wrapped_method(_names.unwrap(orig), record_as))


def patch_for_recording(patcher: Patcher, frame_dicts: list[dict] = ()) -> None:
    """Make calls on proxies record nodes outside ``Tracer.trace`` too (as in
    ``Transformer.transform``): manygrad's namespaces, ``math``, ``Tensor`` and the globals
    in ``frame_dicts`` are patched."""
    ids = manygrad_function_ids()
    math_ids = {id(v) for k, v in vars(math).items() if not k.startswith("_") and callable(v)}
    for d in [*(vars(m) for m in _names.namespaces()), *frame_dicts]:
        autowrap_check(patcher, d, ids | math_ids, ids)
    autowrap_check(patcher, vars(math), math_ids, set())
    patch_tensor_methods(patcher)


def manygrad_function_ids() -> set[int]:
    """The ids of the functions in manygrad's namespaces that tracing records, and of the
    functions they wrap (``__wrapped__``: a name bound before ``manygrad.nested`` wrapped
    the namespace's function holds the function underneath)."""
    ids = set()
    for mod in _names.namespaces():
        for k, v in list(vars(mod).items()):
            if _names.is_recordable(k, v):
                fn = _names.unwrap(v)
                while fn is not None and id(fn) not in ids:
                    ids.add(id(fn))
                    fn = getattr(fn, "__wrapped__", None)
    return ids
