"""``mg.save`` / ``mg.load``: state dicts and checkpoints, in PyTorch's format or as
safetensors files.

``save`` writes PyTorch's own zip format (see ``manygrad.io.torch_write``) when the object
holds only what ``torch.load(weights_only=True)`` reads (tensors, Parameters, dicts, lists,
tuples, numbers, strings, None, sizes, dtypes, devices), so PyTorch loads the file, and
writes a safetensors file for a path ending in ``.safetensors``, when ``metadata=`` is
given, or for other objects. There a flat ``{str: Tensor}`` state dict is stored under
exactly those names, so that any safetensors reader loads it. Anything else (an optimizer's
state dict, a checkpoint ``{"model": ..., "optim": ..., "epoch": 3}``) is flattened: its
tensors are stored under dotted names (``optim.state.0.exp_avg``), and the nested
structure with the non-tensor values (ints, floats, strings, bools, None, lists, tuples,
dicts with str or int keys, NumPy arrays) goes as JSON into the header's
``__metadata__``, so ``load`` returns the same nested object. Other objects (a whole
model) are pickled, as PyTorch does, and ``load`` unpickles them only when asked with
``weights_only=False``. ``load`` reads all of these.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import backend
from .. import dtypes as D
from ..errors import CheckpointError
from ..tensor import Tensor
from . import safetensors as st

STRUCTURE_KEY = "manygrad.structure"
PICKLE_KEY = "manygrad.pickle"  # the same key as manygrad.serialization.PICKLE_KEY


def _is_state_dict(obj) -> bool:
    return isinstance(obj, Mapping) and all(
        type(k) is str and isinstance(v, Tensor) and not v.is_quantized for k, v in obj.items()
    )


class _Flattener:
    def __init__(self):
        self.arrays: dict[str, Any] = {}
        self.seen: dict[int, str] = {}  # id of a tensor/array -> its name (tied weights)

    def _store(self, path: str, obj, arr) -> str:
        name = self.seen.get(id(obj))
        if name is None:
            name = self.seen[id(obj)] = self._name(path)
            self.arrays[name] = arr
        return name

    def _name(self, path: str) -> str:
        name, i = path or "tensor", 1
        while name in self.arrays or name == "__metadata__":
            name, i = f"{path}#{i}", i + 1
        return name

    def encode(self, obj, path: str):
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            return float(obj) if math.isfinite(obj) else {"float": repr(float(obj))}
        if isinstance(obj, Tensor) and obj.is_quantized:
            from ..ao import _qserial

            return {
                "qtensor": _qserial.encode(obj, lambda sfx, o, a: self._store(path + sfx, o, a))
            }
        if isinstance(obj, Tensor):
            return {"tensor": self._store(path, obj, obj._data)}
        if isinstance(obj, D.dtype):
            return {"dtype": obj.name}
        if isinstance(obj, np.ndarray):
            return {"ndarray": self._store(path, obj, obj)}
        if isinstance(obj, np.generic):
            return self.encode(obj.item(), path)
        join = (path + ".") if path else ""
        if isinstance(obj, list):
            return [self.encode(v, f"{join}{i}") for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            return {"tuple": [self.encode(v, f"{join}{i}") for i, v in enumerate(obj)]}
        if isinstance(obj, Mapping):
            items = []
            for k, v in obj.items():
                if isinstance(k, bool) or not isinstance(k, (str, int)):
                    raise TypeError(
                        f"save: dict keys must be str or int, got {k!r} at {path or 'the top'}"
                    )
                items.append([k if isinstance(k, str) else int(k), self.encode(v, f"{join}{k}")])
            return {"dict": items}
        raise TypeError(
            f"save: can't store a {type(obj).__name__} at {path or 'the top level'}: "
            "checkpoints hold tensors, NumPy arrays, numbers, strings, None, lists, tuples and "
            "dicts (nothing is pickled); convert it first, e.g. to a tensor or a string"
        )


class _Builder:
    def __init__(self, arrays: dict, dev, path: str):
        self.arrays, self.dev, self.path = arrays, dev, path
        self.made: dict[str, Tensor] = {}

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if isinstance(node, dict) and len(node) == 1:
            ((tag, val),) = node.items()
            if tag in ("tensor", "ndarray"):
                return self._tensor(val) if tag == "tensor" else self._array(val)
            if tag == "tuple":
                return tuple(self.decode(v) for v in val)
            if tag == "dict":
                return {k: self.decode(v) for k, v in val}
            if tag == "float":
                return float(val)
            if tag == "dtype":
                return D.from_any(val)
            if tag == "qtensor":
                from ..ao import _qserial

                return _qserial.decode(val, self._array, self.dev, self.path)
        raise CheckpointError(f"{self.path}: corrupt structure metadata near {str(node)[:80]!r}")

    def _array(self, name):
        if name not in self.arrays:
            raise CheckpointError(
                f"{self.path}: the structure metadata names tensor {name!r}, which the file lacks"
            )
        return self.arrays[name]

    def _tensor(self, name) -> Tensor:
        t = self.made.get(name)
        if t is None:
            arr = backend.to_device(self._array(name), self.dev)
            t = self.made[name] = Tensor._wrap(arr, self.dev)
        return t


def _is_file(f) -> bool:
    return hasattr(f, "write") or hasattr(f, "read")


@contextlib.contextmanager
def _path_for_write(f):
    """A path to write to: ``f`` itself, or a temporary file copied into the file object."""
    if not _is_file(f):
        yield f
        return
    with tempfile.TemporaryDirectory(prefix="manygrad-save-") as d:
        tmp = os.path.join(d, "obj.safetensors")
        yield tmp
        with open(tmp, "rb") as src:
            shutil.copyfileobj(src, f)


@contextlib.contextmanager
def _path_for_read(f):
    if not _is_file(f):
        yield f
        return
    with tempfile.TemporaryDirectory(prefix="manygrad-load-") as d:
        tmp = os.path.join(d, "obj.safetensors")
        with open(tmp, "wb") as dst:
            shutil.copyfileobj(f, dst)
        yield tmp


def _wants_safetensors(f) -> bool:
    if _is_file(f):
        return False
    return os.fsdecode(os.fspath(f)).lower().endswith(".safetensors")


def _name_of(f) -> str:
    return os.fspath(f) if not _is_file(f) else str(getattr(f, "name", "<file object>"))


def save(obj, f, metadata: Mapping[str, str] | None = None, pickle_module=None,
         pickle_protocol: int = 2, _use_new_zipfile_serialization: bool = True) -> None:  # fmt: skip
    """Save tensors, a checkpoint or (pickled) any other object, to a path or file object.

    State dicts, optimizer and scheduler states and nested dicts/lists/tuples of tensors,
    numbers, strings and None are written in PyTorch's zip format, which PyTorch's
    ``torch.load`` reads (``weights_only=True`` too), views and shared storage kept. A
    path ending in ``.safetensors``, or ``metadata=``, gives a safetensors file instead.
    Objects PyTorch's weights-only loader refuses (a whole model, NumPy arrays) go into a
    safetensors file, whole objects pickled as PyTorch does: ``load`` then needs
    ``weights_only=False``. Writes to a path are atomic: on any error an existing file
    stays as it was. Tensors on a GPU are copied to the host.

    Args:
        obj: what to save.
        f: a path (``*.pt``, ``*.pth``: PyTorch's format; ``*.safetensors``) or a binary
            file object.
        metadata: extra ``{str: str}`` to store in a safetensors header (implies that
            format).
        pickle_module, pickle_protocol: as in PyTorch (the protocol of pickled objects).

    Example:
        >>> mg.save({"model": model.state_dict(), "optim": opt.state_dict(), "epoch": 3},
        ...         "ckpt.pt")          # torch.load("ckpt.pt") reads it
    """
    meta = dict(metadata or {})
    for key in (STRUCTURE_KEY, PICKLE_KEY):
        if key in meta:
            raise ValueError(f"save: the metadata key {key!r} is reserved")
    from . import torch_write

    if metadata is None and not _wants_safetensors(f) and torch_write.torch_loadable(obj):
        archive = torch_write.archive_name(f)
        with _path_for_write(f) as path:
            st.atomic_write(path, lambda fh: torch_write.write(obj, fh, archive))
        return
    if _is_state_dict(obj):
        arrays = {k: v._data for k, v in obj.items()}
    else:
        fl = _Flattener()
        try:
            structure = fl.encode(obj, "")
        except TypeError:
            from ..serialization import dumps

            meta[PICKLE_KEY], arrays = dumps(obj, pickle_protocol)
        else:
            arrays = fl.arrays
            meta[STRUCTURE_KEY] = json.dumps(structure, separators=(",", ":"), allow_nan=False)
    with _path_for_write(f) as path:
        st.save_file(arrays, path, meta or None)


def _map_location(map_location):
    if map_location is None or callable(map_location) or isinstance(map_location, dict):
        return "cpu"  # NOTE: files hold no device; PyTorch's remapping forms all mean "here"
    return map_location


def load(f, map_location=None, pickle_module=None, *, weights_only: bool = True, mmap=None,
         **pickle_load_args):  # fmt: skip
    """Load what ``save`` wrote (or any safetensors file, or a checkpoint PyTorch's
    ``torch.save`` wrote, read as ``weights_only``) with tensors on ``map_location``.

    Args:
        f: a path or a binary file object.
        map_location: device for the tensors ("cpu" when None, "cuda", "cuda:1", ...).
        weights_only: True (default) loads tensors, numbers, strings and containers, and
            refuses pickled objects (they could run code); pass False only for files you
            trust that hold whole objects, e.g. ``save(model)``.

    Returns:
        The saved object: ``{name: Tensor}`` for a plain safetensors file.

    Example:
        >>> ckpt = mg.load("ckpt.safetensors", map_location="cuda")
    """
    dev = backend.device(_map_location(map_location))
    backend.check_device(dev)
    name = _name_of(f)
    with _path_for_read(f) as path:
        from . import torch_format

        if torch_format.is_torch_zip(path):  # NOTE: written by PyTorch's torch.save
            return torch_format.load(path, dev, name)
        arrays, meta = st.read_arrays(path)
    if PICKLE_KEY in meta:
        from ..serialization import loads

        return loads(meta[PICKLE_KEY], arrays, dev, name, weights_only)
    structure = meta.get(STRUCTURE_KEY)
    if structure is None:
        return {k: Tensor._wrap(backend.to_device(a, dev), dev) for k, a in arrays.items()}
    try:
        node = json.loads(structure)
        return _Builder(arrays, dev, name).decode(node)
    except RecursionError:
        raise CheckpointError(f"{name}: corrupt structure metadata (nested too deeply)") from None
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{name}: corrupt structure metadata ({e})") from None
