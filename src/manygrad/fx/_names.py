"""The public names of manygrad's functions and constants (``manygrad.relu``,
``manygrad.nn.functional.softmax``, ``manygrad.float32``): what generated code calls, what a
graph prints, and how a pickled graph refers to its functions."""

from __future__ import annotations

import builtins
import importlib
import operator
import types
from typing import Any

# the namespaces whose public functions symbolic tracing records, in the order in which a
# function found in several gets its name
NAMESPACES = (
    "manygrad",
    "manygrad.nn.functional",
    "manygrad.special",
    "manygrad.linalg",
    "manygrad.fft",
)

# NOTE: queries about the argument itself answer for a Proxy as PyTorch's do (a Proxy is
# no tensor), instead of becoming nodes whose truth value would stop the trace
NOT_RECORDED = frozenset({"is_tensor", "is_storage"})

# the kinds of constants that generated code names (``manygrad.float32``)
_CONSTANT_TYPES = ("dtype", "memory_format", "layout")

_by_id: dict[int, tuple[Any, str]] = {}
_misses: dict[int, Any] = {}  # objects no namespace held at the last look (kept alive: ids stay)


def unwrap(fn: Any) -> Any:
    """The original function behind a tracing wrapper (``fn`` itself otherwise)."""
    return getattr(fn, "_fx_orig", fn)


def namespaces() -> list[types.ModuleType]:
    """The modules of ``NAMESPACES``."""
    return [importlib.import_module(n) for n in NAMESPACES]


def is_recordable(name: str, value: Any) -> bool:
    """Whether the namespace entry ``name`` is a function that tracing records."""
    return (
        not name.startswith("_")
        and callable(value)
        and not isinstance(value, type)
        and name not in NOT_RECORDED
    )


def _name_of(v: Any) -> str | None:
    try:
        return getattr(unwrap(v), "__name__", None)
    except Exception:  # NOTE: objects whose attribute lookup itself fails
        return None


def _rebuild() -> None:
    _by_id.clear()
    _misses.clear()
    for mod in reversed(namespaces()):  # NOTE: reversed: the first namespace's name wins
        # NOTE: an alias (concatenate) goes before the function's own name (cat), which wins
        entries = sorted(vars(mod).items(), key=lambda kv: kv[0] == _name_of(kv[1]))
        for k, v in entries:
            if k.startswith("_") or isinstance(v, types.ModuleType):
                continue
            v = unwrap(v)
            if callable(v) or type(v).__name__ in _CONSTANT_TYPES:
                _by_id[id(v)] = (v, f"{mod.__name__}.{k}")
    import manygrad

    for v in list(vars(manygrad).values()):  # dtypes by their canonical name (float32, not float)
        if type(v).__name__ == "dtype" and getattr(manygrad, getattr(v, "name", ""), None) is v:
            _by_id[id(v)] = (v, f"manygrad.{v.name}")


def _resolve(qualname: str) -> Any:
    mod, _, name = qualname.rpartition(".")
    return unwrap(getattr(importlib.import_module(mod), name, None))


def public_name(obj: Any) -> str | None:
    """``"manygrad.relu"`` for ``manygrad.relu`` (the first of ``NAMESPACES`` that has the
    object), None for an object no namespace holds."""
    hit = _by_id.get(id(obj))
    if hit is not None and hit[0] is obj and _resolve(hit[1]) is obj:
        return hit[1]
    if id(obj) in _misses and _misses[id(obj)] is obj:
        return None
    _rebuild()  # NOTE: a namespace may have changed since (a module rebinding its functions)
    hit = _by_id.get(id(obj))
    if hit is not None and hit[0] is obj:
        return hit[1]
    _misses[id(obj)] = obj
    return None


def qualified_name(fn: Any) -> str:
    """A dotted name of ``fn`` to print: its manygrad name, ``getattr`` for builtins,
    ``module.name`` otherwise."""
    name = public_name(fn)
    if name is not None:
        return name
    fname = getattr(fn, "__name__", type(fn).__name__)
    if getattr(builtins, fname, None) is fn:
        return fname
    module = getattr(fn, "__module__", None) or "__main__"
    if module == "_operator":
        module = "operator"
    return f"{module}.{getattr(fn, '__qualname__', fname)}"


def pretty_target(target: Any) -> str:
    """A node target as a graph prints it (``operator.add``, ``builtins.getattr``,
    ``manygrad.relu``, or the string target itself)."""
    if isinstance(target, str):
        return target
    name = getattr(target, "__name__", None)
    module = getattr(target, "__module__", None)
    if name is not None and module == "builtins":
        return f"builtins.{name}"
    if name is not None and module == "_operator":
        return f"operator.{name}"
    return qualified_name(target)


def reference(fn: Any) -> tuple[str, str] | None:
    """``(module, attribute)`` that finds ``fn`` again after pickling, or None."""
    name = public_name(fn)
    if name is not None:
        mod, _, attr = name.rpartition(".")
        return mod, attr
    fname = getattr(fn, "__name__", None)
    if fname is None:
        return None
    for mod in (operator, builtins):
        if getattr(mod, fname, None) is fn:
            return mod.__name__, fname
    module = getattr(fn, "__module__", None)
    qual = getattr(fn, "__qualname__", fname)
    if module and "<" not in qual:
        try:
            obj = importlib.import_module(module)
            for part in qual.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError):
            return None
        if unwrap(obj) is fn:
            return module, qual
    return None


def dereference(ref: tuple[str, str]) -> Any:
    """The object that ``reference`` named."""
    obj = importlib.import_module(ref[0])
    for part in ref[1].split("."):
        obj = getattr(obj, part)
    return unwrap(obj)
