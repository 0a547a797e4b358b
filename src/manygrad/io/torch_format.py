"""Reading checkpoints written by PyTorch's ``torch.save`` (its zip format) without running
pickled code: state dicts, optimizer states and nested containers of tensors, numbers and
strings, as ``torch.load(weights_only=True)`` reads them.

The file is a zip archive: ``<name>/data.pkl`` (a pickle whose tensors name their storage by
key), ``<name>/data/<key>`` (each storage's raw bytes) and ``<name>/byteorder``. The pickle is
read with an unpickler that resolves only the names below (tensors, parameters, storages,
dtypes, sizes, ordered dicts, NumPy scalars); any other object is refused, naming it.

Example:
    >>> sd = mg.load("resnet18.pt")          # a state dict saved by PyTorch
    >>> model.load_state_dict(sd)
"""

from __future__ import annotations

import collections
import pickle
import zipfile

import numpy as np

from .. import backend
from .. import dtypes as D
from ..ao import _qserial
from ..errors import CheckpointError
from ..tensor import Size, Tensor

_STORAGES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool", "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
}  # fmt: skip
_DTYPE_NAMES = {
    "float32": "float32", "float": "float32", "float64": "float64", "double": "float64",
    "float16": "float16", "half": "float16", "bfloat16": "bfloat16", "int64": "int64",
    "long": "int64", "int32": "int32", "int": "int32", "int16": "int16", "short": "int16",
    "int8": "int8", "uint8": "uint8", "bool": "bool", "complex64": "complex64",
    "cfloat": "complex64", "complex128": "complex128", "cdouble": "complex128",
    "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
    "float8_e4m3fn": "float8_e4m3fn", "float8_e5m2": "float8_e5m2",
    "float8_e4m3fnuz": "float8_e4m3fnuz", "float8_e5m2fnuz": "float8_e5m2fnuz",
    "float8_e8m0fnu": "float8_e8m0fnu", "qint8": "qint8", "quint8": "quint8",
    "qint32": "qint32", "quint4x2": "quint4x2",
}  # fmt: skip


def is_torch_zip(path) -> bool:
    """Whether ``path`` is a zip archive holding a ``data.pkl`` (PyTorch's format)."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("data.pkl") for n in z.namelist())
    except OSError:
        return False


def _read_record(zf: zipfile.ZipFile, name: str) -> bytearray:
    """A record's bytes, read into one writable buffer (no second copy)."""
    buf = bytearray(zf.getinfo(name).file_size)
    view, at = memoryview(buf), 0
    with zf.open(name) as f:
        while at < len(buf):
            got = f.readinto(view[at:])
            if not got:
                raise zipfile.BadZipFile(f"{name} is shorter than its header says")
            at += got
        f.read(1)  # NOTE: reaching the end checks the CRC
    return buf


class _StorageType:
    def __init__(self, dtype):
        self.dtype = dtype


class _Storage:
    def __init__(self, array: np.ndarray, dtype=None):
        self.array, self.dtype = array, dtype


def _numpy_scalar(dtype, data: bytes):
    return np.frombuffer(data, dtype=dtype)[0]


def _numpy_dtype(*args):
    return np.dtype(*args)


def _numpy_reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError("only plain NumPy arrays can be read")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


class _Unpickler(pickle.Unpickler):
    """Resolves only what a weights-only checkpoint holds; refuses everything else."""

    def __init__(self, f, zf: zipfile.ZipFile, prefix: str, device, name: str, big: bool):
        super().__init__(f)
        self.zf, self.prefix, self.device, self.name, self.big = zf, prefix, device, name, big
        self.storages: dict = {}

    def find_class(self, module, name):
        if module == "collections" and name in ("OrderedDict", "Counter"):
            return getattr(collections, name)
        if module == "torch._utils":
            if name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
                return self._rebuild_tensor
            if name == "_rebuild_tensor_v3":  # NOTE: untyped storage + dtype (float8, uint16..)
                return self._rebuild_tensor_v3
            if name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
                return self._rebuild_parameter
            if name == "_rebuild_qtensor":
                return self._rebuild_qtensor
        if module == "torch.storage" and name == "UntypedStorage":
            return _StorageType(D.uint8)  # raw bytes, read as a dtype by _rebuild_tensor_v3
        if module == "torch":
            if name in _STORAGES:
                return _StorageType(D.from_any(_STORAGES[name]))
            if name in _qserial.TORCH_STORAGES:
                return _StorageType(D.from_any(_qserial.TORCH_STORAGES[name]))
            if name in _qserial.QSCHEMES:
                return getattr(_qserial.Q, name)
            if name in _DTYPE_NAMES:
                return D.from_any(_DTYPE_NAMES[name])
            if name == "Size":
                return Size
            if name == "device":
                return backend.device
        if module in ("builtins", "__builtin__") and name in (
            "set",
            "frozenset",
            "complex",
            "slice",
            "bytearray",
        ):
            return {"set": set, "frozenset": frozenset, "complex": complex, "slice": slice,
                    "bytearray": bytearray}[name]  # fmt: skip
        if module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            if name == "scalar":
                return _numpy_scalar
            if name == "_reconstruct":
                return _numpy_reconstruct
        if module == "_codecs" and name == "encode":  # NOTE: bytes, in pickle protocol 2
            import codecs

            return codecs.encode
        if module == "numpy" and name == "dtype":
            return _numpy_dtype
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        raise CheckpointError(
            f"{self.name}: the PyTorch checkpoint holds a pickled {module}.{name}; manygrad "
            "reads tensors, numbers, strings and containers of them (what "
            "torch.load(weights_only=True) reads) and runs no pickled code. In PyTorch, save "
            "model.state_dict() (and plain values) instead of whole objects"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise CheckpointError(f"{self.name}: unknown persistent record {pid!r:.80}")
        stype, key = pid[1], str(pid[2])
        if not isinstance(stype, _StorageType):
            raise CheckpointError(f"{self.name}: storage {key} has an unknown type")
        hit = self.storages.get(key)
        if hit is None:
            try:
                raw = _read_record(self.zf, f"{self.prefix}/data/{key}")
            except KeyError:
                raise CheckpointError(f"{self.name}: storage data/{key} is missing from the "
                                      "archive (a truncated or damaged file)") from None  # fmt: skip
            except (zipfile.BadZipFile, EOFError, OSError) as e:
                raise CheckpointError(f"{self.name}: storage data/{key} is damaged ({e})"
                                      ) from None  # fmt: skip
            dt = stype.dtype.np
            if self.big:
                dt = dt.newbyteorder(">")
            if len(raw) % dt.itemsize:
                raise CheckpointError(f"{self.name}: storage data/{key} has {len(raw)} bytes, "
                                      f"not a whole number of {stype.dtype.name} values")  # fmt: skip
            arr = np.frombuffer(raw, dtype=dt)  # NOTE: writable: the tensors view it
            hit = _Storage(arr.astype(dt.newbyteorder("=")) if self.big else arr, stype.dtype)
            self.storages[key] = hit
        return hit

    def _rebuild_tensor(self, storage, offset, size, stride, requires_grad=False, *_, dt=None):
        a = storage.array
        size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
        if any(s < 0 for s in size) or any(s < 0 for s in stride) or offset < 0:
            raise CheckpointError(f"{self.name}: a tensor has a negative size or stride")
        last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else offset
        if all(size) and last >= a.size:
            raise CheckpointError(
                f"{self.name}: a tensor of size {size} reads past the end of its storage "
                f"({a.size} values): a damaged file"
            )
        if not all(size):
            arr = np.zeros(size, a.dtype)
        else:  # NOTE: a view of the storage: tensors that share one in the file share memory
            arr = np.ndarray(size, a.dtype, buffer=a, offset=offset * a.itemsize,
                             strides=tuple(s * a.itemsize for s in stride))  # fmt: skip
        if dt is not None:  # NOTE: the bits, read as unsigned ints of the dtype's size
            arr = arr.view(dt)
        t = Tensor._wrap(backend.to_device(arr, self.device), self.device)
        return t.requires_grad_() if requires_grad and t.dtype.is_floating_point else t

    def _rebuild_tensor_v3(self, storage, offset, size, stride, requires_grad, hooks, dtype, *_):
        if not isinstance(dtype, D.dtype):
            raise CheckpointError(f"{self.name}: a tensor has an unknown dtype {dtype!r:.40}")
        a, n = storage.array, dtype.itemsize
        if a.dtype.itemsize != n:
            if a.nbytes % n:
                raise CheckpointError(f"{self.name}: a storage of {a.nbytes} bytes is not a "
                                      f"whole number of {dtype.name} values")  # fmt: skip
            bits = np.dtype(f"u{n}")
            a = a.view(bits.newbyteorder(">")).astype(bits) if self.big else a.view(bits)
        return self._rebuild_tensor(_Storage(a), offset, size, stride, requires_grad, dt=dtype.np)

    def _rebuild_qtensor(self, storage, offset, size, stride, qparams, *_):
        codes = self._rebuild_tensor(storage, offset, size, stride)
        return _qserial.from_torch(codes, storage.dtype, qparams, self.name)

    def _rebuild_parameter(self, data, requires_grad=True, *_):
        from ..nn import Parameter

        return Parameter(data, requires_grad=requires_grad)


def load(path, device, name: str):
    """The object a ``torch.save`` zip archive holds, with tensors on ``device``."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{name}: not a readable PyTorch checkpoint ({e})") from None
    with zf:
        pkl = [n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pkl:
            raise CheckpointError(f"{name}: a zip archive without data.pkl is not a PyTorch "
                                  "checkpoint")  # fmt: skip
        prefix = pkl[0][: -len("/data.pkl")] if "/" in pkl[0] else ""
        order = f"{prefix}/byteorder" if prefix else "byteorder"
        big = order in zf.namelist() and zf.read(order).strip() == b"big"
        with zf.open(pkl[0]) as f:
            try:
                return _Unpickler(f, zf, prefix, device, name, big).load()
            except CheckpointError:
                raise
            except (pickle.UnpicklingError, EOFError, TypeError, ValueError) as e:
                raise CheckpointError(f"{name}: a damaged PyTorch checkpoint ({e})") from None
