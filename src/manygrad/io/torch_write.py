"""Writing PyTorch's own checkpoint format (the zip archive ``torch.save`` writes), so that
PyTorch's ``torch.load`` reads what ``mg.save`` wrote, ``weights_only=True`` included.

The archive ``<name>.pt`` holds, under the folder ``<name>/`` (the file's stem, or
``archive`` for file objects): ``data.pkl``, a protocol-2 pickle of the object in which
each tensor is a call ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
requires_grad, hooks)`` (``_rebuild_tensor_v3`` for dtypes without a legacy storage class,
``_rebuild_qtensor`` for quantized ones, wrapped in ``_rebuild_parameter`` for Parameters)
and each storage a persistent id ``("storage", torch.FloatStorage, key, "cpu", numel)``;
``data/<key>``, the storage's raw little-endian bytes; and the small records ``version``,
``byteorder``, ``.format_version``, ``.storage_alignment`` and ``.data/serialization_id``.
Records are stored uncompressed, each one's bytes starting on a 64-byte boundary, laid out
as PyTorch's own writer lays them out (a data descriptor after each record, zip64 end
records), so PyTorch's offset arithmetic for memory-mapped loading holds too.

Tensors that view the same memory share one storage, with their own offsets and strides,
as in PyTorch. Only what ``torch.load(weights_only=True)`` accepts is written this way
(``torch_loadable`` says whether an object qualifies); ``mg.save`` stores anything else in
its safetensors format.

Example:
    >>> mg.save(model.state_dict(), "model.pt")      # torch.load("model.pt") reads it
"""

from __future__ import annotations

import collections
import os
import pickle
import random
import struct
import sys
import time
import zlib

import numpy as np

from .. import backend
from .. import dtypes as D
from ..ao import qtensor as Q
from ..tensor import Size, Tensor

ALIGNMENT = 64  # NOTE: PyTorch's storage alignment (torch.serialization's default)
_FULL = 0xFFFFFFFF  # a 32-bit field's "see the zip64 field" value
_ZIP64_FROM = _FULL  # NOTE: sizes and offsets from here on go into zip64 fields

# dtypes with a legacy storage class: tensors are rebuilt by _rebuild_tensor_v2
_STORAGE_CLASS = {
    "float32": "FloatStorage", "float64": "DoubleStorage", "float16": "HalfStorage",
    "bfloat16": "BFloat16Storage", "int64": "LongStorage", "int32": "IntStorage",
    "int16": "ShortStorage", "int8": "CharStorage", "uint8": "ByteStorage",
    "bool": "BoolStorage", "complex64": "ComplexFloatStorage",
    "complex128": "ComplexDoubleStorage", "qint8": "QInt8Storage", "quint8": "QUInt8Storage",
    "qint32": "QInt32Storage",
}  # fmt: skip
# dtypes PyTorch stores in an untyped storage, naming the dtype (_rebuild_tensor_v3)
_UNTYPED = ("uint16", "uint32", "uint64", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
            "float8_e5m2fnuz", "float8_e8m0fnu")  # fmt: skip
_QDTYPES = ("qint8", "quint8", "qint32")
_ATOMS = (type(None), bool, int, float, complex, str, bytes, bytearray)


class _Global:
    """A name the pickle refers to (``torch FloatStorage``), written as a GLOBAL opcode."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # NOTE: pickle requires reduce functions to be callable
        raise TypeError(f"{self.module}.{self.name} is a name in a checkpoint, not a function")


_GLOBALS: dict[tuple[str, str], _Global] = {}


def _g(module: str, name: str) -> _Global:
    return _GLOBALS.setdefault((module, name), _Global(module, name))


def _plain_type(t: Tensor) -> bool:
    from ..nn.parameter import Buffer, Parameter

    return type(t) in (Tensor, Parameter, Buffer) or type(t) is Q.QTensor


def _tensor_ok(t: Tensor) -> bool:
    if not _plain_type(t) or t._device.type == "meta" or getattr(t, "__dict__", None):
        return False  # NOTE: attributes set on a tensor need pickle (PyTorch's _rebuild_from_type)
    if t.is_quantized:
        return t.dtype.name in _QDTYPES
    return t.dtype.name in _STORAGE_CLASS or t.dtype.name in _UNTYPED


def torch_loadable(obj) -> bool:
    """Whether ``obj`` holds only what PyTorch's ``torch.load(weights_only=True)`` rebuilds:
    tensors and Parameters, dicts (plain, ordered, Counter), lists, tuples, sets, numbers,
    strings, bytes, None, sizes, dtypes, devices and quantization schemes."""
    seen: set[int] = set()
    stack = [obj]
    while stack:
        x = stack.pop()
        t = type(x)
        if t in _ATOMS or isinstance(x, (D.dtype, backend.Device, Q.qscheme)):
            continue
        if id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, Tensor):
            if not _tensor_ok(x):
                return False
        elif t is Size:
            continue
        elif t in (list, tuple, set):
            stack.extend(x)
        elif t in (dict, collections.OrderedDict, collections.Counter):
            stack.extend(x.keys())
            stack.extend(x.values())
        else:
            return False
    return True


# ---------------------------------------------------------------------------- storages


class _Storage:
    """One ``data/<key>`` record: the bytes of memory that one or more tensors view."""

    __slots__ = ("key", "kind", "numel", "data")

    def __init__(self, key: str, dtype: D.dtype, data: np.ndarray):
        self.key, self.data = key, data  # data: a 1-d uint8 array (the bytes)
        untyped = dtype.name in _UNTYPED
        self.kind = (
            _g("torch.storage", "UntypedStorage")
            if untyped
            else _g("torch", _STORAGE_CLASS[dtype.name])
        )
        self.numel = data.size if untyped else data.size // dtype.itemsize


def _bytes_of(a: np.ndarray) -> np.ndarray:
    """A C-contiguous host array's memory as a 1-d uint8 array (no copy)."""
    return a.reshape(-1).view(np.uint8)


class _Storages:
    def __init__(self):
        self.list: list[_Storage] = []
        self.by_memory: dict[tuple[int, str], _Storage] = {}

    def _new(self, dtype: D.dtype, data: np.ndarray) -> _Storage:
        s = _Storage(str(len(self.list)), dtype, data)
        self.list.append(s)
        return s

    def place(self, a, dtype: D.dtype):
        """``(storage, offset, size, stride)`` of array ``a`` (elements of ``dtype``)."""
        n = a.itemsize
        if (
            type(a) is np.ndarray
            and sys.byteorder == "little"
            and (root := backend._host_root(a)).flags.c_contiguous
            and a.dtype.byteorder in "=|<"
            and all(s >= 0 and s % n == 0 for s in a.strides)
        ):
            first, start = backend.address(a)
            if (first - start) % n == 0:
                key = (start, dtype.name)
                s = self.by_memory.get(key)
                if s is None:
                    raw = _bytes_of(root)
                    s = self.by_memory[key] = self._new(dtype, raw[: raw.size // n * n])
                stride = tuple(st // n for st in a.strides)
                if a.size == 0:  # NOTE: no data to address: PyTorch's row-major strides
                    stride = _row_major(a.shape)
                return s, (first - start) // n, tuple(a.shape), stride
        if type(a) is not np.ndarray and a.size and all(s >= 0 and s % n == 0 for s in a.strides):
            # NOTE: GPU memory: the span the tensor covers, copied to the host, strides kept
            # (tensors that share GPU memory get storages of their own)
            span = 1 + sum((d - 1) * (st // n) for d, st in zip(a.shape, a.strides))
            with backend.device_scope(backend.device_of(a)):
                flat = backend.array_module(a).lib.stride_tricks.as_strided(a, (span,), (n,))
                c = _little(np.ascontiguousarray(backend.to_numpy(flat)))
            stride = tuple(st // n for st in a.strides)
            return self._new(dtype, _bytes_of(c)), 0, tuple(a.shape), stride
        # NOTE: negative strides, odd offsets: a row-major copy of its own
        c = _little(np.ascontiguousarray(backend.to_numpy(a)))
        return self._new(dtype, _bytes_of(c)), 0, tuple(c.shape), _row_major(c.shape)


def _little(c: np.ndarray) -> np.ndarray:
    if c.dtype.byteorder == ">" or (c.dtype.byteorder == "=" and sys.byteorder == "big"):
        return c.astype(c.dtype.newbyteorder("<"))
    return c


def _row_major(shape) -> tuple:
    """PyTorch's contiguous strides (a dim of size 0 counts as 1, as there)."""
    stride, acc = [], 1
    for size in reversed(shape):
        stride.append(acc)
        acc *= max(int(size), 1)
    return tuple(reversed(stride))


# ---------------------------------------------------------------------------- the pickle


class _TensorData:
    """A Parameter's data: pickled as a plain tensor without requires_grad."""

    __slots__ = ("t",)

    def __init__(self, t: Tensor):
        self.t = t


class _Pickler(pickle._Pickler):
    """Protocol 2, as PyTorch writes it; tensors become rebuild calls on stored storages."""

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, f, storages: _Storages):
        super().__init__(f, protocol=2)
        self.storages = storages

    def _save_global(self, obj: _Global) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    def _save_torch_name(self, obj) -> None:  # a dtype or qscheme: torch.<name>
        self.save(_g("torch", obj.name))

    dispatch[_Global] = _save_global
    dispatch[D.dtype] = _save_torch_name
    dispatch[Q.qscheme] = _save_torch_name

    def persistent_id(self, obj):
        if type(obj) is _Storage:
            return ("storage", obj.kind, obj.key, "cpu", obj.numel)
        return None

    def reducer_override(self, obj):
        t = type(obj)
        if t is _TensorData:
            return self._tensor(obj.t, False)
        if t is Size:
            return _g("torch", "Size"), (tuple(int(s) for s in obj),)
        if t is backend.Device:
            args = (obj.type,) if obj.index is None else (obj.type, int(obj.index))
            return _g("torch", "device"), args
        if isinstance(obj, Tensor):
            from ..nn.parameter import Parameter

            if isinstance(obj, Parameter):
                hooks = collections.OrderedDict()
                return _g("torch._utils", "_rebuild_parameter"), (
                    _TensorData(obj), bool(obj.requires_grad), hooks)  # fmt: skip
            if obj.is_quantized:
                return self._qtensor(obj)
            return self._tensor(obj, bool(obj.requires_grad))
        return NotImplemented

    def _tensor(self, t: Tensor, requires_grad: bool):
        dt = t.dtype
        s, offset, size, stride = self.storages.place(t._data, dt)
        args = (s, offset, size, stride, requires_grad, collections.OrderedDict())
        if dt.name in _UNTYPED:
            return _g("torch._utils", "_rebuild_tensor_v3"), (*args, dt)
        return _g("torch._utils", "_rebuild_tensor_v2"), args

    def _qtensor(self, q):
        s, offset, size, stride = self.storages.place(q._data, q.dtype)
        if q._axis is None:
            qparams = (Q.per_tensor_affine, float(q._scale), int(q._zp))
        else:  # NOTE: float-qparams tensors too are written as per_channel_affine, as PyTorch
            scales = Tensor._wrap(q._scale, q._device)
            zps = Tensor._wrap(q._zp, q._device)
            qparams = (Q.per_channel_affine, scales, zps, int(q._axis))
        args = (s, offset, size, stride, qparams, False, collections.OrderedDict())
        return _g("torch._utils", "_rebuild_qtensor"), args


# ---------------------------------------------------------------------------- the zip


class _ZipWriter:
    """Stored (uncompressed) records with 64-byte aligned data, as PyTorch's writer."""

    def __init__(self, f, archive: str):
        self.f, self.prefix = f, archive + "/"
        self.pos = 0
        self.central: list[bytes] = []

    def _write(self, b) -> None:
        self.f.write(b)
        self.pos += len(b) if isinstance(b, bytes) else b.nbytes

    def record(self, name: str, data) -> None:
        raw = (self.prefix + name).encode("utf-8")
        data = data.encode("ascii") if isinstance(data, str) else data
        size = len(data) if isinstance(data, bytes) else int(data.nbytes)
        crc = zlib.crc32(data)
        at = self.pos
        big_size, big_at = size >= _ZIP64_FROM, at >= _ZIP64_FROM
        z64 = b""
        if big_size or big_at:  # NOTE: zip64 extended information, as PyTorch's writer
            fields = (struct.pack("<QQ", size, size) if big_size else b"") + (
                struct.pack("<Q", at) if big_at else b"")  # fmt: skip
            z64 = struct.pack("<HH", 1, len(fields)) + fields
        start = at + 30 + len(raw) + len(z64) + 4
        pad = -start % ALIGNMENT
        extra = z64 + b"FB" + struct.pack("<H", pad) + b"Z" * pad
        small = 0 if not big_size else _FULL
        self._write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45 if z64 else 0, 0x0808, 0, 0, 0,
                                0, small, small, len(raw), len(extra)))  # fmt: skip
        self._write(raw + extra)
        if size:
            self._write(data)
            if big_size or big_at:
                self._write(struct.pack("<IIQQ", 0x08074B50, crc, size, size))
            else:
                self._write(struct.pack("<IIII", 0x08074B50, crc, size, size))
        cfields = (struct.pack("<QQ", size, size) if big_size else b"") + (
            struct.pack("<Q", at) if big_at else b"")  # fmt: skip
        cextra = struct.pack("<HH", 1, len(cfields)) + cfields if cfields else b""
        n32 = _FULL if big_size else size
        head = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0, 45 if cextra else 0, 0x0808,
                           0, 0, 0, crc, n32, n32, len(raw), len(cextra), 0, 0, 0, 0,
                           _FULL if big_at else at)  # fmt: skip
        self.central.append(head + raw + cextra)

    def finish(self) -> None:
        cd_at = self.pos
        for entry in self.central:
            self._write(entry)
        cd_size, n = self.pos - cd_at, len(self.central)
        eocd64_at = self.pos
        self._write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 45, 0, 0, n, n, cd_size,
                                cd_at))  # fmt: skip
        self._write(struct.pack("<IIQI", 0x07064B50, 0, eocd64_at, 1))
        self._write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(n, 0xFFFF), min(n, 0xFFFF),
                                min(cd_size, _FULL), min(cd_at, _FULL), 0))  # fmt: skip


def archive_name(f) -> str:
    """The folder inside the zip: the file's name without its extension, as PyTorch names
    it (``archive`` for file objects and for names that are not plain ASCII)."""
    if hasattr(f, "write"):
        return "archive"
    name = os.fsdecode(os.fspath(f))
    if not name.isascii():
        return "archive"
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if "." in base:
        base = base[: base.rindex(".")]
    return base or "archive"


def write(obj, f, archive: str) -> None:
    """Write ``obj`` (see ``torch_loadable``) to the open binary file ``f`` in PyTorch's
    zip format, its records under ``archive/``."""
    import io

    storages = _Storages()
    buf = io.BytesIO()
    _Pickler(buf, storages).dump(obj)
    z = _ZipWriter(f, archive)
    z.record("data.pkl", buf.getvalue())
    z.record(".format_version", "1")
    z.record(".storage_alignment", str(ALIGNMENT))
    z.record("byteorder", "little")
    for s in storages.list:
        z.record(f"data/{s.key}", s.data)
    z.record("version", "3\n")
    ident = random.SystemRandom().getrandbits(64), time.time_ns() % 10**20
    z.record(".data/serialization_id", f"{ident[0]:020d}{ident[1]:020d}")
    z.finish()
