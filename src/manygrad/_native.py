"""manygrad's CPU kernels (``_native.c``): built on first use with the system C compiler,
cached on disk, called through ctypes.

Exact and tanh GELU, SiLU, sigmoid, layer norm and softmax run there as one vectorised pass
per array (or per row) where NumPy needs five to thirty. Each wrapper takes C-contiguous
float32 NumPy arrays and returns None for anything else, so that the caller keeps its NumPy
formula (the reference the tests compare these with).

The library is built for the CPU it runs on (``-march=native``) into
``$MANYGRAD_CACHE_DIR`` (default ``~/.cache/manygrad``) under a name made from the
source, the compiler, the flags and the CPU, written to a temporary file and renamed, so
that processes starting together never load a half-written file. ``MANYGRAD_CPU_KERNELS=0``
turns the kernels off; ``CC`` picks the compiler. Without a compiler, or when the build
fails, manygrad warns once and keeps its NumPy formulas.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import warnings

import numpy as np

_SOURCE = os.path.join(os.path.dirname(__file__), "_native.c")
_VERSION = 3  # NOTE: mg_native_version() of the source; a cached library must match
# NOTE: GNU C, not ISO: ISO modes turn off contraction into fused multiply-adds (2x slower)
_FLAGS = ("-O3", "-fopenmp-simd", "-fno-math-errno", "-std=gnu11", "-shared", "-fPIC",
          "-fvisibility=hidden")  # fmt: skip


def _arch_flags() -> list[list[str]]:
    """Flag sets to try in turn: tuned for this CPU first, then portable."""
    import platform

    native = ["-march=native"]
    if platform.machine().lower() in ("x86_64", "amd64"):
        native.append("-mprefer-vector-width=512")  # NOTE: 512-bit vectors where AVX-512 is
    return [native, []]


_LOCK = threading.Lock()
_STATE: dict = {"tried": False, "lib": None, "error": None, "path": None}

_P = ctypes.c_void_p
_I = ctypes.c_int64
_SIGNATURES = {
    "mg_gelu_erf_f32": (_P, _P, _P, _I),
    "mg_gelu_tanh_f32": (_P, _P, _P, _I),
    "mg_mul_f32": (_P, _P, _P, _I),
    "mg_sigmoid_f32": (_P, _P, _I),
    "mg_silu_f32": (_P, _P, _I),
    "mg_silu_bwd_f32": (_P, _P, _P, _I),
    "mg_sigmoid_bwd_f32": (_P, _P, _P, _I),
    "mg_relu_f32": (_P, _P, _I),
    "mg_relu_bwd_f32": (_P, _P, _P, _I),
    "mg_leaky_relu_f32": (_P, _P, _I, ctypes.c_float),
    "mg_leaky_relu_bwd_f32": (_P, _P, _P, _I, ctypes.c_float),
    "mg_max_pool2d_f32": (_P, _P, _P, *([_I] * 13)),
    "mg_max_pool2d_bwd_f32": (_P, _P, _P, _I, _I, _I),
    "mg_layer_norm_f32": (_P, _P, _P, _P, _P, _P, _I, _I, ctypes.c_float),
    "mg_layer_norm_bwd_f32": (_P, _P, _P, _P, _P, _P, _P, _P, _I, _I),
    "mg_softmax_f32": (_P, _P, _I, _I, ctypes.c_int),
    "mg_softmax_bwd_f32": (_P, _P, _P, _I, _I, ctypes.c_int),
}


def _compiler() -> str | None:
    cc = os.environ.get("CC")
    if cc:
        return shutil.which(cc) or (cc if os.path.isfile(cc) else None)
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _cpu_signature() -> str:
    """What ``-march=native`` depends on: the CPU model and its feature flags."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = [ln for ln in f.read().splitlines()[:64]
                     if ln.startswith(("model name", "flags", "Features", "CPU part"))]  # fmt: skip
        return "\n".join(lines[:3])
    except OSError:
        import platform

        return platform.processor() + platform.machine()


def cache_dir() -> str:
    """Where built libraries are kept (created on demand)."""
    base = os.environ.get("MANYGRAD_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "manygrad")
    return os.path.join(base, "cpu-kernels")


def _build(cc: str) -> str:
    """The path of the library for this source, compiler and CPU, built if missing."""
    with open(_SOURCE, "rb") as f:
        src = f.read()
    ver = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    key = hashlib.sha256(
        b"\0".join([src, ver.encode(), " ".join(_FLAGS).encode(), _cpu_signature().encode()])
    ).hexdigest()[:20]
    dirs = [cache_dir(), os.path.join(tempfile.gettempdir(), f"manygrad-{os.getuid()}")]
    name = f"native-{key}.so"
    for d in dirs:
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    last: Exception | None = None
    for d in dirs:
        try:
            os.makedirs(d, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".native-", suffix=".so", dir=d)
        except OSError as e:
            last = e
            continue
        os.close(fd)
        try:
            errors = []
            for arch in _arch_flags():
                r = subprocess.run([cc, *_FLAGS, *arch, _SOURCE, "-o", tmp, "-lm"],
                                   capture_output=True, text=True, timeout=120)  # fmt: skip
                if r.returncode == 0:
                    os.replace(tmp, os.path.join(d, name))  # NOTE: atomic: no half-written file
                    return os.path.join(d, name)
                errors.append(r.stderr.strip()[-400:])
            raise RuntimeError(f"{os.path.basename(cc)} failed: {errors[-1]}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise OSError(f"no writable cache directory ({dirs[0]}: {last})")


def _load():
    cc = _compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (install gcc or clang, or set CC)")
    path = _build(cc)
    lib = ctypes.CDLL(path)
    if lib.mg_native_version() != _VERSION:
        raise RuntimeError(f"{path} is from another version of manygrad; delete it")
    for name, args in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, None
    _STATE["path"] = path
    return lib


def lib():
    """The loaded library, or None (turned off, no compiler, build failed: warned once)."""
    if _STATE["tried"]:
        return _STATE["lib"]
    with _LOCK:
        if not _STATE["tried"]:
            if os.environ.get("MANYGRAD_CPU_KERNELS", "1").strip().lower() in ("0", "off", "false"):
                _STATE["error"] = "turned off by MANYGRAD_CPU_KERNELS=0"
            else:
                try:
                    _STATE["lib"] = _load()
                except Exception as e:  # noqa: BLE001 - any failure means the NumPy path
                    _STATE["error"] = f"{type(e).__name__}: {e}"
                    warnings.warn(
                        f"manygrad: the CPU kernels could not be built ({_STATE['error']}); "
                        "GELU, SiLU, layer norm and softmax keep their slower NumPy formulas. "
                        "Install a C compiler (gcc) or set MANYGRAD_CPU_KERNELS=0 to silence "
                        "this.",
                        RuntimeWarning,
                        stacklevel=3,
                    )
            _STATE["tried"] = True
    return _STATE["lib"]


def status() -> dict:
    """``{"available", "path", "error"}`` for ``manygrad doctor`` (builds if not tried)."""
    lib()
    return {"available": _STATE["lib"] is not None, "path": _STATE["path"],
            "error": _STATE["error"]}  # fmt: skip


def _reset_for_tests() -> None:
    _STATE.update(tried=False, lib=None, error=None, path=None)


_F32 = np.dtype(np.float32)
_ND = np.ndarray
_PAR_MIN = 1 << 17  # NOTE: values below which one thread beats handing work to others
_POOL: list = []


def _ok(*arrays) -> bool:
    for a in arrays:
        if a is not None and (
            a.__class__ is not _ND or a.dtype != _F32 or not a.flags.c_contiguous
        ):
            return False
    return True


def _ptr(a):
    return None if a is None else a.ctypes.data


def _parts(work: int) -> int:
    """How many threads share ``work`` values: manygrad's thread count (``set_num_threads``)
    for large arrays, else one."""
    if work < _PAR_MIN:
        return 1
    from .threads import get_num_threads

    return max(1, min(get_num_threads(), work // (_PAR_MIN // 2), 64))


def _run(calls) -> None:
    """Run ``(fn, args)`` pairs, the first on this thread, the others on a pool (ctypes
    releases the GIL while a kernel runs)."""
    if len(calls) == 1:
        fn, args = calls[0]
        fn(*args)
        return
    if not _POOL:
        with _LOCK:
            if not _POOL:
                from concurrent.futures import ThreadPoolExecutor

                _POOL.append(ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                                                thread_name_prefix="manygrad-cpu"))  # fmt: skip
    futures = [_POOL[0].submit(fn, *args) for fn, args in calls[1:]]
    fn, args = calls[0]
    fn(*args)
    for f in futures:
        f.result()


def _ranges(total: int, parts: int, align: int = 1):
    if total <= 0:
        return [(0, 0)]
    step = -(-total // parts)
    step = -(-step // align) * align
    return [(i, min(i + step, total)) for i in range(0, total, step)]


def _elementwise(fn, arrays, n: int, *scalars) -> None:
    """``fn(*pointers, n, *scalars)`` over arrays of ``n`` float32 values each (None: NULL),
    split into contiguous ranges across threads."""
    ptrs = [_ptr(a) for a in arrays]
    calls = []
    for i, j in _ranges(n, _parts(n), 64):
        calls.append((fn, [None if p is None else p + 4 * i for p in ptrs] + [j - i, *scalars]))
    _run(calls)


def gelu(x, tanh: bool, slope: bool):
    """``(y, d)``: GELU of ``x`` and, with ``slope``, its derivative (else None); None when
    the kernels do not take ``x``."""
    if not _ok(x) or (lib_ := lib()) is None:
        return None
    y = np.empty_like(x)
    d = np.empty_like(x) if slope else None
    _elementwise(lib_.mg_gelu_tanh_f32 if tanh else lib_.mg_gelu_erf_f32, (x, y, d), x.size)
    return y, d


def mul(g, d):
    """``g * d`` of two arrays of one shape, or None."""
    if not _ok(g, d) or g.shape != d.shape or (lib_ := lib()) is None:
        return None
    out = np.empty_like(g)
    _elementwise(lib_.mg_mul_f32, (g, d, out), g.size)
    return out


def unary(name: str, x):
    """``sigmoid`` or ``silu`` of ``x``, or None."""
    if not _ok(x) or (lib_ := lib()) is None:
        return None
    y = np.empty_like(x)
    _elementwise(getattr(lib_, f"mg_{name}_f32"), (x, y), x.size)
    return y


def unary_backward(name: str, g, saved):
    """The gradient of ``sigmoid`` (``saved`` its output) or ``silu`` (``saved`` its input),
    or None."""
    if not _ok(g, saved) or g.shape != saved.shape or (lib_ := lib()) is None:
        return None
    dx = np.empty_like(g)
    _elementwise(getattr(lib_, f"mg_{name}_bwd_f32"), (g, saved, dx), g.size)
    return dx


def relu(x, out=None, slope=None):
    """ReLU of ``x`` (leaky with ``slope``) into ``out`` (new if None; may be ``x``), or None."""
    if not _ok(x, out) or (lib_ := lib()) is None:
        return None
    y = np.empty_like(x) if out is None else out
    if slope is None:
        _elementwise(lib_.mg_relu_f32, (x, y), x.size)
    else:
        _elementwise(lib_.mg_leaky_relu_f32, (x, y), x.size, float(slope))
    return y


def relu_backward(g, a, slope=None):
    """ReLU's gradient from its output ``a`` (leaky: ``a > 0 ? g : g * slope``), or None."""
    if not _ok(g, a) or g.shape != a.shape or (lib_ := lib()) is None:
        return None
    dx = np.empty_like(g)
    if slope is None:
        _elementwise(lib_.mg_relu_bwd_f32, (g, a, dx), g.size)
    else:
        _elementwise(lib_.mg_leaky_relu_bwd_f32, (g, a, dx), g.size, float(slope))
    return dx


def _row_ranges(rows: int, n: int):
    return _ranges(rows, _parts(rows * n))


def layer_norm(x2, w, b, eps: float):
    """``(y, mean, rstd)`` of the rows of ``x2`` (rows, n); w, b: (n,) or None."""
    if not _ok(x2, w, b) or x2.ndim != 2 or (lib_ := lib()) is None:
        return None
    rows, n = x2.shape
    y = np.empty_like(x2)
    mean, rstd = np.empty(rows, np.float32), np.empty(rows, np.float32)
    px, py, pm, pr = _ptr(x2), _ptr(y), _ptr(mean), _ptr(rstd)
    fn, eps = lib_.mg_layer_norm_f32, float(eps)
    _run([(fn, (px + 4 * i * n, _ptr(w), _ptr(b), py + 4 * i * n, pm + 4 * i, pr + 4 * i,
                j - i, n, eps)) for i, j in _row_ranges(rows, n)])  # fmt: skip
    return y, mean, rstd


def layer_norm_backward(g2, x2, mean, rstd, w, need_w: bool, need_b: bool):
    """``(dx, dw, db)`` of layer norm's rows (dw, db None unless asked for), or None."""
    if not _ok(g2, x2, mean, rstd, w) or g2.shape != x2.shape or (lib_ := lib()) is None:
        return None
    rows, n = x2.shape
    dx = np.empty_like(g2)
    ranges = _row_ranges(rows, n)
    # NOTE: one weight/bias gradient buffer per thread, summed after
    dw = np.zeros((len(ranges), n), np.float32) if need_w else None
    db = np.zeros((len(ranges), n), np.float32) if need_b else None
    pg, px, pd, pm, pr = _ptr(g2), _ptr(x2), _ptr(dx), _ptr(mean), _ptr(rstd)
    calls = []
    for k, (i, j) in enumerate(ranges):
        o = 4 * i * n
        calls.append((lib_.mg_layer_norm_bwd_f32, (
            pg + o, px + o, pm + 4 * i, pr + 4 * i, _ptr(w), pd + o,
            None if dw is None else _ptr(dw) + 4 * k * n,
            None if db is None else _ptr(db) + 4 * k * n, j - i, n)))  # fmt: skip
    _run(calls)
    if len(ranges) > 1:
        dw = None if dw is None else dw.sum(0)
        db = None if db is None else db.sum(0)
    else:
        dw = None if dw is None else dw[0]
        db = None if db is None else db[0]
    return dx, dw, db


def softmax(x, log: bool):
    """(log-)softmax over the last axis of ``x``, or None."""
    if not _ok(x) or x.ndim == 0 or x.size == 0 or (lib_ := lib()) is None:
        return None
    n = x.shape[-1]
    y = np.empty_like(x)
    px, py, fn = _ptr(x), _ptr(y), lib_.mg_softmax_f32
    _run([(fn, (px + 4 * i * n, py + 4 * i * n, j - i, n, int(log)))
          for i, j in _row_ranges(x.size // n, n)])  # fmt: skip
    return y


def softmax_backward(g, y, log: bool):
    """The gradient of (log-)softmax over the last axis from its output ``y``, or None."""
    if not _ok(g, y) or g.shape != y.shape or y.ndim == 0 or y.size == 0 or (lib_ := lib()) is None:
        return None
    n = y.shape[-1]
    dx = np.empty_like(g)
    pg, py, pd, fn = _ptr(g), _ptr(y), _ptr(dx), lib_.mg_softmax_bwd_f32
    _run([(fn, (pg + 4 * i * n, py + 4 * i * n, pd + 4 * i * n, j - i, n, int(log)))
          for i, j in _row_ranges(y.size // n, n)])  # fmt: skip
    return dx


def max_pool2d(x, out_hw, k, s, p, d):
    """``(y, idx)``: 2-d max pooling of ``x`` (N, C, H, W) into (N, C, *out_hw) with the
    int64 flat index in its (H, W) plane of each maximum, or None."""
    if not _ok(x) or x.ndim != 4 or (lib_ := lib()) is None:
        return None
    n, c, h, w = x.shape
    ho, wo = out_hw
    planes = n * c
    y = np.empty((n, c, ho, wo), np.float32)
    idx = np.empty((n, c, ho, wo), np.int64)
    if y.size == 0:
        return y, idx
    px, py, pi, fn = _ptr(x), _ptr(y), _ptr(idx), lib_.mg_max_pool2d_f32
    geo = (h, w, ho, wo, *k, *s, *p, *d)
    _run([(fn, (px + 4 * i * h * w, py + 4 * i * ho * wo, pi + 8 * i * ho * wo, j - i, *geo))
          for i, j in _ranges(planes, _parts(x.size))])  # fmt: skip
    return y, idx


def max_pool2d_backward(g, idx, in_hw):
    """The gradient of 2-d max pooling: ``g`` (N, C, Ho, Wo) added at ``idx`` into
    zeros of (N, C, *in_hw), or None."""
    if not _ok(g) or idx.dtype != np.int64 or not idx.flags.c_contiguous or g.shape != idx.shape:
        return None
    if (lib_ := lib()) is None:
        return None
    n, c, ho, wo = g.shape
    h, w = in_hw
    dx = np.zeros((n, c, h, w), np.float32)
    if g.size == 0:
        return dx
    pg, pi, pd, fn = _ptr(g), _ptr(idx), _ptr(dx), lib_.mg_max_pool2d_bwd_f32
    _run([(fn, (pg + 4 * i * ho * wo, pi + 8 * i * ho * wo, pd + 4 * i * h * w, j - i, h * w,
                ho * wo)) for i, j in _ranges(n * c, _parts(g.size))])  # fmt: skip
    return dx
