"""Whole Python objects in checkpoint files (``torch.serialization``): ``save(model)`` as
PyTorch does it, and ``load``'s ``weights_only`` guard.

``mg.save`` stores tensors, numbers, strings and containers in PyTorch's zip format or a
safetensors file, neither needing a pickled class (see ``manygrad.io.serialization``).
Anything else, a whole model for instance, is pickled into a safetensors file: the
tensors still go into the safetensors body (any device, no pickle), and the pickle stream,
which refers to them by name, goes into the header's metadata. ``mg.load`` refuses such a
file unless ``weights_only=False`` (unpickling can run code), except where every class the
pickle names is one of a small allowed set or was allowed with ``add_safe_globals``.

Example:
    >>> mg.save(model, "model.pt")
    >>> model = mg.load("model.pt", weights_only=False)   # only for files you trust
"""

from __future__ import annotations

import base64
import collections
import contextlib
import io
import pickle
from typing import Any

from . import backend
from .errors import ManygradError
from .tensor import Tensor

PICKLE_KEY = "manygrad.pickle"
_SAFE: dict[tuple[str, str], Any] = {}


class WeightsOnlyError(ManygradError, pickle.UnpicklingError):
    """``load(..., weights_only=True)`` met a pickled object it may not rebuild."""


def _builtin_safe() -> dict[tuple[str, str], Any]:
    from .dtypes import dtype
    from .tensor import Size

    safe = {("collections", "OrderedDict"): collections.OrderedDict,
            ("builtins", "set"): set, ("builtins", "frozenset"): frozenset,
            ("builtins", "slice"): slice, ("builtins", "complex"): complex,
            ("manygrad.tensor", "Size"): Size}  # fmt: skip
    safe[(dtype.__module__, dtype.__qualname__)] = dtype
    return safe


def add_safe_globals(safe_globals: list) -> None:
    """Allow ``load(..., weights_only=True)`` to rebuild these classes or functions.

    Example: ``mg.serialization.add_safe_globals([argparse.Namespace])``
    """
    for obj in safe_globals:
        if isinstance(obj, tuple):
            obj = obj[0]
        _SAFE[(obj.__module__, obj.__qualname__)] = obj


def clear_safe_globals() -> None:
    _SAFE.clear()


def get_safe_globals() -> list:
    return list(_SAFE.values())


@contextlib.contextmanager
def safe_globals(globals_list: list):
    """``with mg.serialization.safe_globals([MyConfig]): mg.load(path)``."""
    before = dict(_SAFE)
    add_safe_globals(globals_list)
    try:
        yield
    finally:
        _SAFE.clear()
        _SAFE.update(before)


def _kind(t: Tensor) -> str:
    from .nn.parameter import Buffer, Parameter

    if isinstance(t, Parameter):
        return "parameter"
    return "buffer" if isinstance(t, Buffer) else "tensor"


class _Pickler(pickle.Pickler):
    """Pickles ``obj`` with every tensor replaced by a reference to a stored array."""

    def __init__(self, f, protocol: int):
        super().__init__(f, protocol)
        self.arrays: dict[str, Any] = {}
        self.names: dict[int, str] = {}

    def persistent_id(self, obj):
        if not isinstance(obj, Tensor):
            return None
        name = self.names.get(id(obj))
        if name is None:
            name = self.names[id(obj)] = f"pickled.{len(self.names)}"
            self.arrays[name] = obj._data
        if obj.is_quantized:  # NOTE: codes (and per-channel qparams) stored as arrays
            from .ao import _qserial

            def store(sfx, o, a):
                self.arrays[name + sfx] = a
                return name + sfx

            return ("tensor", name, "qtensor", False, _qserial.encode(obj, store))
        extra = getattr(obj, "persistent", True) if _kind(obj) == "buffer" else None
        return ("tensor", name, _kind(obj), bool(obj.requires_grad), extra)


def dumps(obj, protocol: int = pickle.DEFAULT_PROTOCOL) -> tuple[str, dict[str, Any]]:
    """``obj`` as ``(pickle stream in base64, {name: array})`` (tensors kept out of it)."""
    buf = io.BytesIO()
    p = _Pickler(buf, protocol)
    try:
        p.dump(obj)
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        raise TypeError(
            f"save: can't pickle this {type(obj).__name__} ({e}); objects stored whole must "
            "be picklable: no lambdas or local functions in them. Save model.state_dict() "
            "instead, which needs no pickle"
        ) from None
    return base64.b64encode(buf.getvalue()).decode("ascii"), p.arrays


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, arrays: dict, dev, path: str, weights_only: bool):
        super().__init__(f)
        self.arrays, self.dev, self.path, self.weights_only = arrays, dev, path, weights_only
        self.made: dict[str, Tensor] = {}
        self.safe = {**_builtin_safe(), **_SAFE}

    def find_class(self, module: str, name: str):
        if not self.weights_only:
            return super().find_class(module, name)
        module = "builtins" if module == "__builtin__" else module  # protocol 2's spelling
        obj = self.safe.get((module, name))
        if obj is None:
            raise WeightsOnlyError(
                f"{self.path}: weights_only=True (the default) refuses to rebuild "
                f"{module}.{name}: the file holds pickled Python objects (e.g. a whole model "
                "saved with save(model)), and unpickling can run code. If you trust the file, "
                "pass weights_only=False; or allow this class with "
                "mg.serialization.add_safe_globals([...]); or save model.state_dict() instead"
            )
        return obj

    def persistent_load(self, pid):
        from .nn.parameter import Buffer, Parameter

        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "tensor"):
            raise pickle.UnpicklingError(f"{self.path}: unknown persistent id {pid!r}")
        _, name, kind, requires_grad, extra = pid
        t = self.made.get(name)
        if t is not None:
            return t
        if name not in self.arrays:
            raise WeightsOnlyError(f"{self.path}: the pickle refers to tensor {name!r}, which "
                                   "the file lacks (a corrupt file)")  # fmt: skip
        if kind == "qtensor":
            from .ao import _qserial

            t = self.made[name] = _qserial.decode(extra, self.arrays.__getitem__, self.dev,
                                                  self.path)  # fmt: skip
            return t
        t = Tensor._wrap(backend.to_device(self.arrays[name], self.dev), self.dev)
        if kind == "parameter":
            t = Parameter(t, requires_grad)
        elif kind == "buffer":
            t = Buffer(t, persistent=bool(extra))
        elif requires_grad:
            t.requires_grad_(True)
        self.made[name] = t
        return t


def loads(data: str, arrays: dict, dev, path: str, weights_only: bool):
    """Rebuild what ``dumps`` wrote, with tensors on ``dev``."""
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except ValueError:
        raise WeightsOnlyError(f"{path}: corrupt pickled-object metadata") from None
    return _Unpickler(io.BytesIO(raw), arrays, dev, path, weights_only).load()


def __getattr__(name: str):
    if name in ("save", "load"):  # torch.serialization.save / load
        from .io import serialization

        return getattr(serialization, name)
    raise AttributeError(f"module 'manygrad.serialization' has no attribute {name!r}")
