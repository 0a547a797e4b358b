"""Devices and array modules: the only module of manygrad that imports CuPy.

Every op receives raw arrays and asks ``array_module(a)`` (``xp``) for the functions it
needs, so one implementation serves NumPy (``cpu``), CuPy (``cuda:N``) and the fake GPU
(``fakegpu``), a NumPy-backed stand-in that behaves like CuPy where it matters for
testing: it refuses implicit conversion to NumPy and counts host syncs and transfers.
"""

from __future__ import annotations

import functools
import math
from _thread import get_ident as _get_ident

import numpy as np

from . import _erf, _meta, _native
from . import fakegpu as _fakegpu
from ._meta import MetaArray
from .errors import DeviceError
from .fakegpu import (  # noqa: F401  (re-exported)
    ATOMIC_ADD_DTYPES,
    FakeArray,
    _unwrap,
    fake_scatter_add,
    fake_stats,
    fake_xp,
)

# NOTE: CuPy is optional and imported on first need (asking about CUDA, or meeting a CuPy
# array): importing it costs ~0.7 s that CPU-only runs should not pay. A missing or broken
# install only disables the cuda device.
_cupy = None
_cupyx = None
_CUPY_IMPORT_ERROR: BaseException | None = None
_cupy_tried = False


def _load_cupy():
    global _cupy, _cupyx, _CUPY_IMPORT_ERROR, _cupy_tried
    if not _cupy_tried:
        _cupy_tried = True
        try:
            import cupy
            import cupyx

            _cupy, _cupyx = cupy, cupyx
        except Exception as e:  # ImportError, or a CUDA library missing at import
            _CUPY_IMPORT_ERROR = e
    return _cupy


def _is_cupy_array(a) -> bool:
    """True for a CuPy array (loads CuPy if such an array shows up before it was needed)."""
    if _cupy is None:
        if not type(a).__module__.startswith("cupy") or _load_cupy() is None:
            return False
    return isinstance(a, _cupy.ndarray)


# ---------------------------------------------------------------------------- host memory


def _tune_malloc() -> None:
    """Keep freed large blocks in glibc's heap instead of unmapping them.

    NOTE: a training step frees and reallocates the same large temporaries every step; by
    default glibc returns blocks over 128 KiB to the OS and faults them back in, which on
    the char-GPT step cost ~6,400 page faults and 13-16 ms of kernel time per step (PyTorch,
    with its own caching allocator: ~340 and 0.9 ms). Up to 256 MiB of freed memory then
    stays with the process. ``MANYGRAD_MALLOC_TUNE=0`` (or setting glibc's own
    ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``) leaves malloc alone.
    """
    import ctypes
    import os
    import sys

    if not sys.platform.startswith("linux") or os.environ.get("MANYGRAD_MALLOC_TUNE") == "0":
        return
    if any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return
    mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
    mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD


_tune_malloc()

# ---------------------------------------------------------------------------- devices


class Device:
    """A place where tensors live: ``cpu``, ``cuda:N``, ``meta`` (shapes, no data) or
    ``fakegpu`` (tests).

    Example: ``mg.device("cuda:1")``; ``with mg.device("meta"): ...`` makes it the default
    device of the tensors and modules created inside (as ``mg.set_default_device``).
    """

    __slots__ = ("type", "index")

    def __init__(self, type: str, index: int | None = None):  # noqa: A002 - PyTorch name
        self.type = type
        self.index = index

    def __repr__(self) -> str:
        return f"device(type='{self.type}'" + (
            f", index={self.index})" if self.index is not None else ")"
        )

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, Device) and self.type == other.type and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __enter__(self) -> Device:
        _DEVICE_STACK.append(_DEFAULT_DEVICE[0])
        set_default_device(self)
        return self

    def __exit__(self, *exc) -> None:
        _DEFAULT_DEVICE[0] = _DEVICE_STACK.pop()


DEVICE_TYPES = ("cpu", "cuda", "fakegpu", "meta")
CPU = Device("cpu")
META = Device("meta")
FAKEGPU = Device("fakegpu")
_FAKEGPU1 = Device("fakegpu", 1)


def fake_device(index: int) -> Device:
    """The fake GPU of that index: ``fakegpu`` (0) or ``fakegpu:1`` (tests)."""
    return FAKEGPU if not index else _FAKEGPU1


@functools.lru_cache(maxsize=64)
def _parse(spec: str) -> Device:
    name, _, idx = spec.strip().partition(":")
    if name not in DEVICE_TYPES:
        raise DeviceError(
            f"unknown device {spec!r}: expected one of 'cpu', 'cuda', 'cuda:N' (N a GPU "
            "index), 'meta' or 'fakegpu'"
        )
    if name == "cpu":
        return CPU
    if name == "meta":
        if idx:
            raise DeviceError(f"bad device {spec!r}: the meta device has no index; write 'meta'")
        return META
    if name == "fakegpu":
        if idx and (not idx.isdigit() or int(idx) >= _fakegpu.COUNT):
            raise DeviceError(f"bad device {spec!r}: the fake GPUs are 'fakegpu' and 'fakegpu:1'")
        return fake_device(int(idx) if idx else 0)
    if idx and not idx.isdigit():
        raise DeviceError(f"bad device index in {spec!r}: write 'cuda:0', 'cuda:1', ...")
    return Device("cuda", int(idx) if idx else 0)


_DEFAULT_DEVICE = [CPU]
_DEVICE_STACK: list[Device] = []  # the defaults that ``with mg.device(...)`` blocks replaced


def default_device() -> Device:
    """Where factory functions put tensors when no device is given (``cpu`` unless
    ``mg.set_default_device`` changed it)."""
    return _DEFAULT_DEVICE[0]


def set_default_device(spec) -> None:
    """``mg.set_default_device("cuda")``: factory functions without ``device=`` use it."""
    _DEFAULT_DEVICE[0] = CPU if spec is None else check_device(device(spec))


def device(spec: str | Device | int | None = None, index: int | None = None) -> Device:
    """Canonical Device for ``"cpu"``, ``"cuda"``, ``"cuda:1"``, an int GPU index or a Device."""
    if spec is None:
        return CPU
    if isinstance(spec, Device):
        return spec
    if isinstance(spec, int):
        return Device("cuda", spec)
    if not isinstance(spec, str):
        raise DeviceError(f"expected a device name or Device, got {type(spec).__name__}")
    d = _parse(spec)
    if index is not None:
        d = Device(d.type, index)
    return d


# ---------------------------------------------------------------------------- CUDA status


@functools.lru_cache(maxsize=1)
def cuda_status() -> tuple[bool, str]:
    """(True, summary) when CuPy can run kernels on a GPU, else (False, why and fix)."""
    if _load_cupy() is None:
        if isinstance(_CUPY_IMPORT_ERROR, ImportError) and "cupy" in str(_CUPY_IMPORT_ERROR):
            return False, (
                "CuPy is not installed. Install the build matching your CUDA driver: "
                "pip install 'manygrad[cuda12]' (or 'manygrad[cuda13]')"
            )
        return False, (
            f"CuPy failed to import ({_CUPY_IMPORT_ERROR}). Reinstall the CuPy wheel that "
            "matches your CUDA driver: pip install 'manygrad[cuda12]' or 'manygrad[cuda13]'"
        )
    if not _driver_present():
        return False, (
            "CuPy is installed but no NVIDIA driver was found (libcuda is missing): this "
            "machine has no usable NVIDIA GPU, or the driver is not installed (check "
            "`nvidia-smi`). See `manygrad doctor`."
        )
    try:
        n = _cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDARuntimeError: no driver, or driver too old
        msg = str(e)
        if "insufficient" in msg.lower():
            why = "the NVIDIA driver is older than the CUDA runtime CuPy was built for"
            fix = "update the NVIDIA driver, or install manygrad[cuda12] for older drivers"
        else:
            why = "no NVIDIA driver was found"
            fix = "install the NVIDIA driver (check with `nvidia-smi`)"
        return False, f"CuPy is installed but {why} ({msg}); {fix}. See `manygrad doctor`."
    if n == 0:
        return (
            False,
            "CuPy and the driver work, but no GPU is visible (check CUDA_VISIBLE_DEVICES).",
        )
    try:  # a real kernel launch: catches missing NVRTC or a broken toolkit early
        _cupy.arange(4, dtype=_cupy.float32).sum().item()
    except Exception as e:
        return False, f"a GPU was found but a test kernel failed to run: {e}"
    return True, f"{n} GPU(s)"


def _driver_present() -> bool:
    import ctypes

    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def cuda_available() -> bool:
    return cuda_status()[0]


def cuda_device_count() -> int:
    return _cupy.cuda.runtime.getDeviceCount() if cuda_available() else 0


def check_device(d: Device) -> Device:
    """Raise a clear error when ``d`` cannot hold tensors on this machine."""
    if d.type == "cuda":
        ok, why = cuda_status()
        if not ok:
            raise DeviceError(f"CUDA was requested ({d}) but is not usable: {why}")
        n = cuda_device_count()
        if d.index >= n:
            raise DeviceError(
                f"{d} does not exist: this machine has {n} GPU(s), cuda:0..cuda:{n - 1}"
            )
    return d


# ---------------------------------------------------------------------------- array modules


_graph_xp = None  # CuPy's namespace as a CUDA graph capture needs it (cuda/graphs.py)


def set_graph_xp(xp) -> None:
    """While a CUDA graph captures on a GPU, ops on CuPy arrays get ``xp`` (None: CuPy)."""
    global _graph_xp
    _graph_xp = xp


def array_module(a):
    """``xp`` for an array: numpy, cupy or the fake GPU's namespace."""
    t = type(a)
    if t is np.ndarray:
        return np
    if t is FakeArray:
        return fake_xp
    if _is_cupy_array(a):
        return _cupy if _graph_xp is None else _graph_xp
    return np


def xp_of(d: Device):
    if d.type == "cpu":
        return np
    if d.type == "fakegpu":
        return fake_xp
    if d.type == "meta":
        return np
    check_device(d)
    return _cupy


def device_of(a) -> Device:
    t = type(a)
    if t is np.ndarray:
        return CPU
    if t is FakeArray:
        return fake_device(a._dev)
    if t is MetaArray:
        return META
    if _is_cupy_array(a):
        return _cuda_device(a.device.id)
    return CPU


@functools.cache
def _cuda_device(i: int) -> Device:
    return Device("cuda", i)


def is_array(a) -> bool:
    t = type(a)
    return t is np.ndarray or t is FakeArray or t is MetaArray or _is_cupy_array(a)


def data_ptr(a) -> int:
    """Address of the first element of an array (host or device memory)."""
    if type(a) is FakeArray:
        a = a._a
    if type(a) is np.ndarray:
        return a.__array_interface__["data"][0]
    return a.data.ptr


def shares_memory(a, b) -> bool:
    """Whether two arrays may overlap in memory (bounds check, as NumPy's)."""
    if type(a) is FakeArray:
        a, b = a._a, b._a
    if type(a) is np.ndarray:
        return np.may_share_memory(a, b)
    return _load_cupy().may_share_memory(a, b)


def view_positions(base, view):
    """Flat (C-order) index in ``base`` of each element of ``view``, an array on the same
    memory (any chain of views: slices, transposes, reshapes); an int64 array of view's shape.
    """
    xp = array_module(base)
    s = base.itemsize
    lo = sum(min(0, st * (n - 1)) for st, n in zip(base.strides, base.shape))
    hi = sum(max(0, st * (n - 1)) for st, n in zip(base.strides, base.shape))
    buf = xp.full((hi - lo) // s + 1, -1, dtype=np.int64)
    st = xp.lib.stride_tricks

    def at(offset_bytes, shape, strides):
        return st.as_strided(buf[offset_bytes // s :], shape, tuple(x // s * 8 for x in strides))

    at(-lo, base.shape, base.strides)[...] = xp.arange(base.size).reshape(base.shape)
    off = data_ptr(view) - data_ptr(base) - lo
    return at(off, view.shape, view.strides).copy()


def to_numpy(a) -> np.ndarray:
    """Copy device data to a host NumPy array (a sync on GPUs)."""
    t = type(a)
    if t is np.ndarray:
        return a
    if t is FakeArray:
        return a.get()
    if t is MetaArray:
        raise _meta.no_data(False)
    if isinstance(a, (np.generic, np.ndarray)):  # NOTE: NumPy scalars (a sum of a 1-d array)
        return np.asarray(a)
    return _cupy.asnumpy(a)


def _host_root(a):
    """A host array's outermost base (the array that owns the memory), or None for device
    arrays; fake-GPU arrays are seen through."""
    if type(a) is FakeArray:
        a = a._a
    if not isinstance(a, np.ndarray):
        return None
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def address(a) -> tuple[int, int]:
    """``(first element, start of its allocation)`` addresses of an array (no sync)."""
    root = _host_root(a)
    if root is not None:
        first = (a._a if type(a) is FakeArray else a).__array_interface__["data"][0]
        return first, root.__array_interface__["data"][0]
    return a.data.ptr, a.data.mem.ptr


def allocation_nbytes(a) -> int:
    """Bytes of the allocation an array views (its root array's, or the device buffer's)."""
    root = _host_root(a)
    return int(root.nbytes) if root is not None else int(a.data.mem.size)


def shared_host_copy(a: np.ndarray) -> np.ndarray:
    """A copy of host array ``a`` in anonymous shared memory, which forked processes share."""
    import mmap

    buf = mmap.mmap(-1, max(a.nbytes, 1))
    out = np.frombuffer(buf, a.dtype, a.size).reshape(a.shape)
    out[...] = a
    return out


def is_shared_host(a) -> bool:
    """True for an array made by ``shared_host_copy`` (or a view of one)."""
    import mmap

    while isinstance(a, np.ndarray):
        a = a.base
    return isinstance(a.obj if isinstance(a, memoryview) else a, mmap.mmap)


def to_device(a, d: Device):
    """Move an array to device ``d`` (no copy when it is already there)."""
    src = device_of(a)
    if src == d:
        return a
    if d is META:
        return _meta.empty(a.shape, a.dtype)
    if src is META:
        raise _meta.no_data()
    host = to_numpy(a)
    if d.type == "cpu":
        return host
    if host.dtype.itemsize == 1 and host.dtype.kind in "fV":  # NOTE: CuPy has no float8 dtype
        from ._float8 import device_error

        raise device_error(host.dtype.name, d)
    if d.type == "fakegpu":
        return _fakegpu.upload(host, d.index or 0)
    check_device(d)
    with _cupy.cuda.Device(d.index):
        return _cupy.asarray(host)


def synchronize(d: Device | None = None) -> None:
    """Wait for queued GPU work on ``d`` (all GPUs when None); no-op on the CPU."""
    if d is not None and d.type != "cuda":
        return
    if d is None and not cuda_available():
        return
    if d is None:
        for i in range(cuda_device_count()):
            _cupy.cuda.Device(i).synchronize()
    else:
        with _cupy.cuda.Device(d.index):
            _cupy.cuda.Device(d.index).synchronize()


_ONE_GPU: list[bool] = []  # [True] once CuPy reported exactly one visible GPU


def device_scope(d: Device):
    """Context manager making ``d`` current for CuPy allocations (no-op off CUDA, and on a
    machine with one GPU, which is always the current one)."""
    if d.type == "cuda":
        if not _ONE_GPU:
            _ONE_GPU.append(cuda_device_count() == 1)
        # NOTE: entering a cupy Device costs host time on every op; with one GPU it
        # changes nothing
        return _NULL_SCOPE if _ONE_GPU[0] else _cupy.cuda.Device(d.index)
    if d.type == "fakegpu":
        return _fakegpu.Scope(d.index or 0)
    if d is META:
        return np.errstate(all="ignore")  # NOTE: ops run on zeros: 0/0 is no one's concern
    return _NULL_SCOPE


def empty_on(d: Device, shape, dtype):
    """Uninitialised storage of ``shape`` and ``dtype`` on device ``d``."""
    if d is META:
        return _meta.empty(shape, dtype)
    with device_scope(d):
        return xp_of(d).empty(shape, dtype)


def on_tensor_device(fn):
    """Decorator: run ``fn(x, ...)`` with the GPU of its first argument ``x`` (a Tensor)
    current, as CuPy allocates and runs kernels on the current GPU, which need not be x's.
    For work outside ``Function.apply`` (which scopes itself): in-place methods, index and
    random arrays, initialisers. No scope for CPU tensors or other first arguments, which
    may come by keyword (``mg.max(input=x, dim=1)``)."""
    import inspect

    first = next(iter(inspect.signature(fn).parameters), None)

    @functools.wraps(fn)
    def run(*args, **kwargs):
        dev = getattr(args[0] if args else kwargs.get(first), "_device", None)
        if dev is None or dev.type == "cpu":
            return fn(*args, **kwargs)
        with device_scope(dev):
            return fn(*args, **kwargs)

    return run


class _NullScope:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_NULL_SCOPE = _NullScope()


def index_add(target, indices, values) -> None:
    """``target[indices] += values`` with repeated indices accumulated (scatter-add)."""
    if type(target) is np.ndarray:
        from .cpu._index_add import flat_index_add

        if not flat_index_add(target, indices, values):
            np.add.at(target, indices, values)
        return
    # NOTE: on the GPU, scatter-add is CUDA's atomicAdd, which exists for a few dtypes
    # only (ATOMIC_ADD_DTYPES); the others go through a type that has it.
    scatter = fake_scatter_add if type(target) is FakeArray else _cupyx.scatter_add
    dt = target.dtype
    if dt in ATOMIC_ADD_DTYPES:
        scatter(target, indices, values.astype(dt, copy=False) if is_array(values) else values)
    elif dt == np.int64:  # two's-complement sums have the same bits as uint64 sums
        v = array_module(target).asarray(values, dtype=dt)
        scatter(target.view(np.uint64), indices, v.view(np.uint64))
    else:  # bool, 8/16-bit ints, bfloat16: accumulate in a wider type, then write back
        wide = np.int32 if dt.kind in "biu" else np.float32
        acc = target.astype(wide)
        scatter(acc, indices, values.astype(wide) if is_array(values) else values)
        target[...] = acc.astype(dt)


def _blas_rows(x):
    """``x`` with unit-stride rows, copied if need be (NumPy arrays).

    NOTE: NumPy's batched (> 2-d) matmul calls BLAS only for matrices whose rows are
    contiguous; a transposed operand (a ``swapaxes`` view) falls back to its own loop, 8x
    slower: (1, 990, 16) @ (1, 16, 202000) in float32 took 1.9 s against 0.33 s with the
    first operand copied (conv_transpose3d's product). 2-d products handle transposes."""
    if x.ndim > 2 and x.strides[-1] != x.itemsize and x.shape[-1] > 1 and 0 not in x.strides:
        return np.ascontiguousarray(x)  # NOTE: not broadcast operands, whose copy is larger
    return x


def _np_thin_matmul(a, b, m, k, n):
    """``a @ b`` for 2-d NumPy float arrays of which one side is thin (1-3 rows of ``a``,
    1-3 columns of ``b``, or one column of ``a`` against one row of ``b``).

    NOTE: OpenBLAS's GEMM is slow on these shapes and NumPy calls no BLAS at all for an
    inner size of 1 (a (512, 1) @ (1, 784) weight gradient of a batch of one took 1.2 ms
    in NumPy's own loop, against 0.1 ms as a broadcast product). Thin products run as one
    GEMV per row or column of the result, 2-5x faster than the GEMM from 2 x 256 x 256 on;
    an inner size of 1 is the products themselves (PyTorch's values, -0.0 included), in a
    C loop for float32 (``_native.outer``)."""
    if k == 1:
        if m * n < 64:
            return np.matmul(a, b)
        from . import _native

        out = _native.outer(a, b)  # NOTE: the C loop; NumPy's broadcast product is 3x slower
        if out is not None:
            return out
        with np.errstate(all="ignore"):  # NOTE: inf * 0 is NaN silently, as in a product
            return np.multiply(a, b)
    if m <= 3 and k * n >= 16384:
        out = np.empty((m, n), a.dtype)
        for i in range(m):
            np.matmul(a[i], b, out=out[i])
        return out
    if n <= 3 and m * k >= 16384 and m > 3:
        out = np.empty((n, m), a.dtype)
        for j in range(n):
            np.matmul(a, b[:, j], out=out[j])
        return np.ascontiguousarray(out.T)
    return np.matmul(a, b)


def matmul(a, b):
    """``xp.matmul(a, b)``, with bfloat16 on the GPU computed in float32.

    NOTE: CuPy 14 fails on batched (>2-d) bfloat16 products, and its 2-d path looks up a
    cuBLAS compute type by dtype code that has no entry for bfloat16 in some versions, so
    device bfloat16 products go through float32, as NumPy's do; the result is float32 then
    (callers cast back). With the fast path ``cublaslt.direct`` switched on, 16-bit matrix
    products on a GPU run on cuBLASLt instead (fp32 accumulation, 16-bit result). NumPy
    arrays take ``np.matmul`` unchanged.
    """
    t = type(a)
    if t is np.ndarray:
        if a.ndim == 2 and b.ndim == 2:
            m, k = a.shape
            n = b.shape[1]
            if (m <= 3 or n <= 3 or k == 1) and a.dtype == b.dtype and a.dtype.char in "fd":
                return _np_thin_matmul(a, b, m, k, n)
        elif a.ndim > 2 or b.ndim > 2:  # NOTE: batched: see _blas_rows
            a, b = _blas_rows(a), _blas_rows(b)
        return np.matmul(a, b)
    if (t is not FakeArray and a.dtype.itemsize == 2 and a.dtype == b.dtype and a.ndim > 1
            and b.ndim > 1 and _lt16()):  # fmt: skip
        from .kernels import fastpath

        return fastpath.call("cublaslt.direct", a, b)  # NOTE: 16-bit in, 16-bit out
    if a.dtype.name == "bfloat16" or b.dtype.name == "bfloat16":
        a, b = a.astype(np.float32), b.astype(np.float32)
    if t is FakeArray:
        return fake_xp.matmul(a, b)
    return (_cupy if _graph_xp is None else _graph_xp).matmul(a, b)  # NOTE: capture-safe path


def matmul_bias(a, b, bias):
    """``a @ b + bias`` (bias over the last dim) in ``a``'s dtype; where 16-bit products on a
    GPU take cuBLASLt (``cublaslt.direct``), the bias is its epilogue, one kernel."""
    t = type(a)
    if (t is not np.ndarray and t is not FakeArray and a.dtype.itemsize == 2
            and a.dtype == b.dtype == bias.dtype and a.ndim > 1 and b.ndim > 1
            and _lt16()):  # fmt: skip
        from .kernels import fastpath

        return fastpath.call("cublaslt.direct", a, b, bias)
    out = matmul(a, b)
    out += bias
    if out.dtype != a.dtype:  # NOTE: bfloat16 computes in float32: round once, as PyTorch
        out = out.astype(a.dtype)
    return out


def _lt16() -> bool:
    """Whether 16-bit products on a GPU take cuBLASLt directly (``cublaslt.direct``; off
    until a GPU run verified it); inside a capture the capture's own product serves them."""
    if _graph_xp is not None:
        return False
    from .kernels import fastpath

    return fastpath.enabled("cublaslt.direct") and not fastpath._PLAIN[0]


def erf(x):
    """The error function elementwise (for exact GELU)."""
    t = type(x)
    if t is FakeArray:
        return _fakegpu.kernel(_erf.np_erf_same, x)
    if t is np.ndarray:
        return _erf.np_erf_same(x)
    if isinstance(x, np.generic):  # NOTE: NumPy's scalar result of an op on a 0-d array
        return _erf.np_erf_same(np.asarray(x))
    import cupyx.scipy.special

    # NOTE: CuPy's erf maps float16 to float64 and has no bfloat16 loop: compute 16-bit
    # floats in float32 and return the input's dtype, as the NumPy path does.
    a = x if x.dtype.itemsize >= 4 else x.astype(np.float32)
    return cupyx.scipy.special.erf(a).astype(x.dtype, copy=False)


def normal_cdf(x):
    """The standard normal CDF ``(1 + erf(x / sqrt(2))) / 2`` elementwise (exact GELU)."""
    t = type(x)
    if (t is np.ndarray or t is FakeArray) and x.dtype == np.float32:
        return (
            _fakegpu.kernel(_erf.np_normal_cdf32, x) if t is FakeArray else _erf.np_normal_cdf32(x)
        )
    c = erf(x * (1 / math.sqrt(2)))
    c += 1
    c *= 0.5
    return c


def gelu_exact(x, slope: bool):
    """Exact GELU ``x * Phi(x)`` of a float32 CPU array and, with ``slope``, its derivative
    ``Phi(x) + x phi(x)`` (else None), as a pair, in one pass of the CPU kernels
    (``_native``) or, without them, in cache-sized NumPy blocks; None for other arrays (the
    caller takes ``normal_cdf``). A 16-bit float CPU array computes in
    float32 and gets its output rounded once, as PyTorch's CPU kernel; the derivative stays
    float32 so that ``g * slope`` is rounded once too (the engine casts it to ``x``'s dtype).

    Args:
        x: the input array. slope: whether to compute the derivative too.

    Example: ``y, d = backend.gelu_exact(np.ones(4, np.float32), True)``
    """
    if type(x) is np.ndarray:
        if x.dtype == np.float32:
            fast = _native.gelu(x, False, slope) if x.flags.c_contiguous else None
            return fast if fast is not None else _erf.np_gelu32(x, slope)
        if x.dtype == np.float16 or x.dtype.name == "bfloat16":
            y, d = gelu_exact(x.astype(np.float32), slope)
            return y.astype(x.dtype), d
    return None


class _UfuncBuffer:
    __slots__ = ("size", "old")

    def __init__(self, size):
        self.size = size

    def __enter__(self):
        self.old = np.setbufsize(self.size) if self.size else None

    def __exit__(self, *exc):
        if self.size:
            np.setbufsize(self.old)


def row_loops(n: int):
    """A ``with`` context for NumPy ops that broadcast one value per row (``z - m[:, None]``,
    ``z * s[:, None]``) over rows of ``n`` contiguous values: NumPy's ufunc buffer no longer
    than a row, for rows of 256 to 8191 values (elsewhere it changes nothing).

    NOTE: when whole rows fit in its buffer (8192 values), NumPy's iterator buffers several
    rows at a time and copies the per-row operand out to the buffer's length; with a buffer
    no longer than a row it loops over the rows in place: 512x1000 float32 ``x - m``: 45
    against 87 us (rows of 17 to 100 values are faster buffered, hence the lower bound).
    The setting is NumPy's per-thread one, restored on exit.

    Args:
        n: the row length.

    Example: ``with backend.row_loops(1000): z = x - x.max(axis=1, keepdims=True)``
    """
    return _UfuncBuffer(n // 16 * 16 if 256 <= n < 8192 else 0)


_SELECT_INT = {2: np.int16, 4: np.int32, 8: np.int64}


def where(cond, a, b):
    """``xp.where(cond, a, b)``; on the CPU, large float selections run branch-free.

    NOTE: NumPy's ``where`` branches once per element, so a random condition (the sign of
    activations: sigmoid, SiLU, softplus, ELU, leaky ReLU) runs ~10x slower than a sorted
    one: 786k float32 values, 2.9 ms against 0.27 ms for selecting the bits as integers,
    ``((a ^ b) & -cond) ^ b``, which gives the same values bit for bit (NaN, -0.0, inf).

    Args:
        cond: a boolean array. a, b: arrays or scalars, broadcast with ``cond``.

    Example: ``backend.where(x >= 0, x, 0.1 * x)``
    """
    if type(cond) is np.ndarray and cond.size >= 1 << 14 and cond.dtype == np.bool_:
        dt = np.result_type(a, b)
        it = _SELECT_INT.get(dt.itemsize) if dt.kind == "f" else None
        if it is not None:
            ai, bi = np.asarray(a, dt).view(it), np.asarray(b, dt).view(it)
            m = cond.view(np.int8).astype(it)
            np.negative(m, out=m)
            r = np.bitwise_and(np.bitwise_xor(ai, bi), m)  # NOTE: the broadcast shape
            r ^= bi
            return r.view(dt)
    return array_module(cond).where(cond, a, b)


def quiet_float_errors():
    """A context in which NumPy does not warn about overflow, NaN or division by zero.

    NOTE: PyTorch's kernels (and CuPy's) produce inf/NaN silently; training loops that
    check the loss themselves run under this so that a diverging run reports once, with
    a hint, instead of a stream of NumPy RuntimeWarnings.
    """
    return np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore")


def pinned_empty(shape, dtype) -> np.ndarray:
    """A host array in page-locked memory (plain NumPy off CUDA) for fast async copies."""
    count = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if count == 0 or not cuda_available():
        return np.empty(shape, dtype)
    return _cupyx.empty_pinned(shape, dtype)


def is_out_of_memory(e: BaseException) -> bool:
    """True for host or device out-of-memory errors (NumPy's MemoryError, CuPy's)."""
    if isinstance(e, MemoryError):
        return True
    return _cupy is not None and isinstance(e, _cupy.cuda.memory.OutOfMemoryError)


def cuda_module():
    """The cupy module itself, for the few subsystems (NCCL, streams) that need it."""
    check_device(Device("cuda", 0))
    return _cupy


# ---------------------------------------------------------------------------- random numbers


class Generator:
    """Per-device random stream; ``mg.manual_seed`` reseeds them all."""

    def __init__(self, d: Device, seed: int | None = None):
        self.device = d
        self.seed(seed)

    def seed(self, seed: int | None):
        self.initial_seed = seed
        # NOTE: the (seed, offset) counter of counter-based kernels (the fused dropout):
        # kept on the host, so drawing it never waits for the GPU
        self._counter = [np.random.SeedSequence(seed).generate_state(1, np.uint64)[0].item(), 0]
        if self.device.type == "cuda":
            with _cupy.cuda.Device(self.device.index):
                self._g = _cupy.random.default_rng(seed)
        else:
            self._g = np.random.default_rng(seed)

    def counter(self, n: int) -> tuple[int, int]:
        """``(seed, offset)`` for a counter-based kernel drawing ``n`` numbers; the next
        call's offset starts after them (``mg.manual_seed`` makes the sequence repeat)."""
        seed, offset = self._counter
        self._counter[1] = offset + n
        return seed, offset

    def _draw(self, fn):
        """``fn()`` of the NumPy generator; a recorded kernel on the fake GPU."""
        if self.device.type == "fakegpu":
            return _fakegpu.kernel(fn)
        return fn()

    def _scope(self):
        # NOTE: a CuPy generator only draws with its own GPU current (it raises otherwise)
        return device_scope(self.device) if self.device.type != "cpu" else _NULL_SCOPE

    def random(self, shape, dtype):
        """Uniform [0, 1) (complex: real and imaginary parts each)."""
        dt = np.dtype(dtype)
        if self.device is META:  # NOTE: no data, no draw (the stream does not move)
            return _meta.empty(shape, dt)
        if dt.kind == "c":
            part = np.float32 if dt == np.complex64 else np.float64
            return self.random(shape, part) + 1j * self.random(shape, part)
        with self._scope():
            if dt in (np.float32, np.float64):
                return self._draw(lambda: self._g.random(shape, dtype=dt))
            return self._draw(lambda: self._g.random(shape, dtype=np.float32).astype(dt))

    def normal(self, shape, dtype):
        """Standard normal (complex: variance 1 split evenly between the two parts)."""
        dt = np.dtype(dtype)
        if self.device is META:
            return _meta.empty(shape, dt)
        if dt.kind == "c":
            part = np.float32 if dt == np.complex64 else np.float64
            z = self.normal(shape, part) + 1j * self.normal(shape, part)
            return (z * np.sqrt(0.5)).astype(dt)
        with self._scope():
            if dt in (np.float32, np.float64):
                return self._draw(lambda: self._g.standard_normal(shape, dtype=dt))
            return self._draw(lambda: self._g.standard_normal(shape, dtype=np.float32).astype(dt))

    def integers(self, low, high, shape, dtype):
        if self.device is META:
            return _meta.empty(shape, dtype)
        with self._scope():
            return self._draw(
                lambda: self._g.integers(low, high, size=shape).astype(dtype, copy=False)
            )

    def poisson(self, lam):
        """Poisson counts with rates ``lam`` (an array of this generator's device)."""
        with self._scope():
            if self.device.type == "fakegpu":
                return _fakegpu.kernel(lambda a: self._g.poisson(a).astype(a.dtype), lam)
            return self._g.poisson(lam).astype(lam.dtype)

    def gamma(self, shape_param):
        """Standard gamma samples of shape parameters ``shape_param`` (an array of this
        generator's device)."""
        with self._scope():
            if self.device.type == "fakegpu":
                return _fakegpu.kernel(lambda a: self._g.standard_gamma(a), shape_param)
            return self._g.standard_gamma(shape_param)

    def permutation(self, n: int):
        """A random ordering of ``0..n-1`` (int64)."""
        if self.device.type == "cpu":
            return self._g.permutation(n)
        # NOTE: CuPy's Generator has no permutation(): order uniform float64 keys instead
        # (ties have probability ~n**2 / 2**54). The fake GPU takes the same path.
        with self._scope():
            keys = self._draw(lambda: self._g.random(n, dtype=np.float64))
            return array_module(keys).argsort(keys)

    def _curand_state(self):
        # NOTE: CuPy's Generator has no public state: its cuRAND bit generator keeps the
        # per-thread states in a device int8 array, ``_state`` (None if that ever changes).
        return getattr(self._g.bit_generator, "_state", None)

    def get_state(self) -> dict:
        """The generator's position, to continue exactly from it (a host copy on GPUs)."""
        if self.device.type == "cuda":
            st = self._curand_state()
            out = {"seed": self.initial_seed, "counter": list(self._counter)}
            if st is not None:
                out["curand"] = _cupy.asnumpy(st)
            return out
        return self._g.bit_generator.state

    def set_state(self, state: dict):
        if self.device.type == "cuda" or "bit_generator" not in state:
            self.seed(state.get("seed"))
            if "counter" in state:
                self._counter = list(state["counter"])
            saved = state.get("curand")
            st = self._curand_state() if self.device.type == "cuda" else None
            if saved is not None and st is not None and st.nbytes == saved.nbytes:
                with _cupy.cuda.Device(self.device.index):
                    st[...] = _cupy.asarray(np.ascontiguousarray(saved).view(st.dtype))
        else:
            self._g.bit_generator.state = state


_generators: dict[Device, Generator] = {}
_base_seed: int | None = None
# NOTE: DataLoader thread workers' own CPU generators, by thread id (data/_worker_rng.py), as
# each of PyTorch's process workers has its own
thread_cpu_generators: dict[int, Generator] = {}


def generator(d: Device) -> Generator:
    if thread_cpu_generators and d.type == "cpu":
        g = thread_cpu_generators.get(_get_ident())
        if g is not None:
            return g
    g = _generators.get(d)
    if g is None:
        offset = 0 if d.index is None else d.index + 1
        g = _generators[d] = Generator(d, None if _base_seed is None else _base_seed + offset)
    return g


def manual_seed(seed: int) -> None:
    """Seed every device's generator (``mg.manual_seed``); in a DataLoader thread worker,
    that worker's own CPU generator only."""
    global _base_seed
    if thread_cpu_generators and _get_ident() in thread_cpu_generators:
        thread_cpu_generators[_get_ident()].seed(int(seed))
        return
    _base_seed = int(seed)
    for d, g in _generators.items():
        g.seed(_base_seed + (0 if d.index is None else d.index + 1))
