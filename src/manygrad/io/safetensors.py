"""Reader and writer of the safetensors format, on NumPy and ml_dtypes only.

Layout: 8 bytes (little-endian u64) giving the header's length N; N bytes of JSON
``{name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__":
{str: str}}``, padded with spaces to a multiple of 8; then the tensors' raw little-endian
bytes, ``data_offsets`` counting from the end of the header. Files written here load with
the ``safetensors`` package (and PyTorch through it) and the other way round.

Loading checks the whole header before reading data, and a damaged file raises
``CheckpointError`` that names the file and what is wrong with it. Writes are atomic: the
data goes to a temporary file in the same folder, is flushed to disk, and only then
replaces the target, so an interrupted save leaves any previous file intact.
"""

from __future__ import annotations

import contextlib
import json
import math
import mmap
import os
import stat
import struct
import tempfile
from collections.abc import Callable, Mapping

import numpy as np

from .. import backend
from ..errors import CheckpointError
from ..tensor import Tensor

DTYPES = {
    "F64": np.dtype(np.float64),
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "I64": np.dtype(np.int64),
    "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16),
    "I8": np.dtype(np.int8),
    "U8": np.dtype(np.uint8),
    "U16": np.dtype(np.uint16),
    "U32": np.dtype(np.uint32),
    "U64": np.dtype(np.uint64),
    "BOOL": np.dtype(np.bool_),
    "C64": np.dtype(np.complex64),  # NOTE: the format has no complex128
}
_NAMES = {v: k for k, v in DTYPES.items()}
# NOTE: bfloat16 and the float8 types come from ml_dtypes, imported only when a file or
# array has one (it costs most of the time of `import manygrad`); an array can only have
# one of them once it is loaded. The float8 codes are the safetensors package's.
_ML = {"BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
       "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz",
       "F8_E8M0": "float8_e8m0fnu"}  # fmt: skip
SUPPORTED = [*DTYPES, *_ML]


def _load_ml() -> None:
    if "BF16" not in DTYPES:
        import ml_dtypes

        for code, name in _ML.items():
            DTYPES[code] = np.dtype(getattr(ml_dtypes, name))
            _NAMES[DTYPES[code]] = code


def _dtype_of(code) -> np.dtype | None:
    if isinstance(code, str) and code in _ML:
        _load_ml()
    return DTYPES.get(code)


def _is_ml(dt: np.dtype) -> bool:
    return dt.name in _ML.values()


_MAX_HEADER = 100_000_000  # the safetensors package refuses larger headers too
_MAGIC = [  # what a file that is not safetensors often is
    (b"PK\x03\x04", "a zip archive (torch.save writes these)"),
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"\x89HDF", "an HDF5 file"),
    (b"\x80", "a pickle (torch.save's legacy format)"),
]


def _le(dt: np.dtype) -> np.dtype:
    """The little-endian on-disk form of ``dt`` (bfloat16 goes through uint16, float8
    through uint8)."""
    if _is_ml(dt):
        return np.dtype("<u2") if dt.itemsize == 2 else np.dtype(np.uint8)
    return dt.newbyteorder("<") if dt.itemsize > 1 else dt


# ---------------------------------------------------------------------------- writing


def atomic_write(path, write: Callable) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it, then rename it
    over ``path``; on any error the temporary file is removed and ``path`` is untouched."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    prefix = f".{os.path.basename(path)}."
    _clean_stale(folder, prefix)
    try:  # NOTE: a rewrite keeps the file's permissions; a new file gets the umask's
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX)
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _clean_stale(folder: str, prefix: str) -> None:
    """Remove temporary files that a save killed midway left beside its target: those
    named ``<prefix><pid>-*.tmp`` whose process no longer runs."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(".tmp")]
    except OSError:
        return
    for n in names:
        pid = n[len(prefix) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, n))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or unknown: leave its file alone
    return True


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_file(tensors: Mapping, filename, metadata: Mapping[str, str] | None = None) -> None:
    """Write ``{name: Tensor or array}`` to ``filename`` in the safetensors format.

    Args:
        tensors: names to tensors (any device) or NumPy arrays.
        filename: the file to write (replaced atomically).
        metadata: optional ``{str: str}`` stored in the header's ``__metadata__``.

    Example:
        >>> mg.io.safetensors.save_file(model.state_dict(), "model.safetensors")
    """
    header: dict = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(
                    f"safetensors metadata must map str to str, got {k!r}: {type(v).__name__}"
                )
        header["__metadata__"] = dict(metadata)
    arrays = []
    for name, t in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(
                f"save_file: invalid tensor name {name!r} (a str other than '__metadata__')"
            )
        a = t._data if isinstance(t, Tensor) else t
        if not backend.is_array(a):
            raise TypeError(f"save_file: {name!r} is a {type(t).__name__}, not a tensor or array")
        if _is_ml(a.dtype):
            _load_ml()
        if a.dtype not in _NAMES:
            raise CheckpointError(
                f"save_file: {name!r} has dtype {a.dtype}, which safetensors can't store"
            )
        arrays.append((name, a))
    # NOTE: data laid out widest dtype first, so every tensor is aligned to its item size
    # (the header is padded to 8); the header keeps the caller's order.
    offsets, pos = {}, 0
    for name, a in sorted(arrays, key=lambda na: -na[1].dtype.itemsize):
        offsets[name] = (pos, pos + a.size * a.dtype.itemsize)
        pos += a.size * a.dtype.itemsize
    for name, a in arrays:
        header[name] = {
            "dtype": _NAMES[a.dtype],
            "shape": [int(s) for s in a.shape],
            "data_offsets": list(offsets[name]),
        }
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * (-len(hb) % 8)
    order = sorted(arrays, key=lambda na: offsets[na[0]][0])

    def write(f):
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for _, a in order:
            if a.size:
                host = np.ascontiguousarray(backend.to_numpy(a)).reshape(-1)
                if _is_ml(host.dtype):
                    host = host.view(_le(host.dtype))  # NOTE: the bits, not a conversion
                host = host.astype(host.dtype.newbyteorder("<"), copy=False)
                f.write(host.view(np.uint8).data)

    atomic_write(filename, write)


# ---------------------------------------------------------------------------- reading


def _fail(path, what: str):
    raise CheckpointError(f"{os.fspath(path)}: {what}")


def read_header(path) -> tuple[dict, dict[str, str], int]:
    """Parse and check the header: ``(entries, metadata, data_start)``.

    ``entries`` maps each name to ``(numpy dtype, shape, begin, end)`` with absolute
    byte positions. Raises CheckpointError for anything that is not a sound file.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else None
            raw = f.read(n) if n is not None and n <= min(size - 8, _MAX_HEADER) else b""
    except FileNotFoundError:
        _fail(path, "no such file")
    except IsADirectoryError:
        _fail(path, "is a folder, not a safetensors file")
    if n is None:
        _fail(
            path, f"not a safetensors file: only {size} bytes, less than the 8-byte header length"
        )
    if n > size - 8 or n > _MAX_HEADER:
        kind = next((what for magic, what in _MAGIC if head.startswith(magic)), None)
        if kind:
            _fail(path, f"not a safetensors file: it looks like {kind}; manygrad loads "
                        "safetensors files only (no pickle)")  # fmt: skip
        _fail(path, f"bad header length {n} for a file of {size} bytes: not a safetensors "
                    "file, or truncated")  # fmt: skip
    try:
        header = json.loads(raw.decode("utf-8"))
    except RecursionError:
        _fail(path, "not a safetensors file (or a corrupt one): its header nests too deeply")
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        _fail(path, f"not a safetensors file (or a corrupt one): its header is not JSON ({e})")
    if not isinstance(header, dict):
        _fail(path, f"corrupt header: expected a JSON object, got {type(header).__name__}")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        _fail(path, "corrupt header: __metadata__ must map strings to strings")
    start = 8 + n
    data_len = size - start
    entries = {}
    for name, info in header.items():
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
            _fail(path, f"corrupt header: entry {name!r} needs dtype, shape and data_offsets")
        dt = _dtype_of(info["dtype"])
        if dt is None:
            _fail(path, f"tensor {name!r} has dtype {info['dtype']!r}, which manygrad can't "
                        f"load (supported: {', '.join(SUPPORTED)})")  # fmt: skip
        shape, offs = info["shape"], info["data_offsets"]
        if not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape):
            _fail(path, f"corrupt header: tensor {name!r} has shape {shape!r}")
        ok = isinstance(offs, list) and len(offs) == 2 and all(type(o) is int for o in offs)
        if not ok or not 0 <= offs[0] <= offs[1]:
            _fail(path, f"corrupt header: tensor {name!r} has data_offsets {offs!r}")
        need = math.prod(shape) * dt.itemsize
        if offs[1] - offs[0] != need:
            _fail(path, f"corrupt header: tensor {name!r} of shape {shape} and dtype "
                        f"{info['dtype']} needs {need} bytes but data_offsets {offs} hold "
                        f"{offs[1] - offs[0]}")  # fmt: skip
        entries[name] = (dt, tuple(shape), offs[0], offs[1])
    prev = None
    for name, (_, _, b, e) in sorted(entries.items(), key=lambda kv: (kv[1][2], kv[1][3])):
        if e > data_len:
            _fail(path, f"truncated: tensor {name!r} ends at byte {e} of the data, but the "
                        f"file holds only {data_len} bytes of data ({size} bytes in all); "
                        "the file was cut short (interrupted copy or download?)")  # fmt: skip
        if prev is not None and b < prev[1] and b < e:
            _fail(path, f"corrupt header: tensors {prev[0]!r} and {name!r} overlap "
                        f"(data_offsets end at {prev[1]}, next begins at {b})")  # fmt: skip
        if prev is None or e > prev[1]:
            prev = (name, e)
    return {k: (dt, s, start + b, start + e) for k, (dt, s, b, e) in entries.items()}, meta, start


def read_arrays(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """All tensors of a safetensors file as host NumPy arrays, plus its metadata."""
    entries, meta, _ = read_header(path)
    out: dict[str, np.ndarray] = {}
    if not any(e > b for _, _, b, e in entries.values()):
        return {k: np.zeros(s, dt) for k, (dt, s, _, _) in entries.items()}, meta
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        for name, (dt, shape, b, e) in entries.items():
            if e == b:
                out[name] = np.zeros(shape, dt)
                continue
            disk = _le(dt)
            a = np.frombuffer(mm, disk, (e - b) // dt.itemsize, b).astype(disk.newbyteorder("="))
            out[name] = a.view(dt).reshape(shape)
    return out, meta


def read_metadata(filename) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file (without reading the tensors)."""
    return read_header(filename)[1]


def load_file(filename, device="cpu") -> dict[str, Tensor]:
    """Read a safetensors file into ``{name: Tensor}`` on ``device``.

    Args:
        filename: the file.
        device: where the tensors go (default "cpu").

    Example:
        >>> sd = mg.io.safetensors.load_file("model.safetensors")
    """
    dev = backend.device(device)
    arrays, _ = read_arrays(filename)
    return {k: Tensor._wrap(backend.to_device(a, dev), dev) for k, a in arrays.items()}
