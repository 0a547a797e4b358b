"""manygrad's CPU kernels (``_native.c``): built on first use with the system C compiler,
cached on disk, called through ctypes.

Exact and tanh GELU, SiLU, sigmoid, ReLU, the piecewise-linear activations (hardtanh,
threshold, the shrinks, hardsigmoid, hardswish), ELU/SELU/CELU, softplus, layer norm, group
norm, batch norm, softmax, cross entropy (its gradient written by the forward pass), max and
average pooling, an LSTM step's gate maths and an embedding's gradient run there as one
vectorised pass per array (or per row, group or channel) where NumPy needs five to thirty
(a scatter-add or a one-hot product for the embedding); depthwise convolutions
(groups = channels, 1-d and 2-d) run as direct loops over (sample, channel) planes instead
of columns nine times the input, and the Winograd convolutions' transforms
(``ops/_winograd.py``) as one pass from the NCHW arrays to the products' matrices and back.
Each wrapper takes C-contiguous float32 NumPy arrays and returns None for anything else, so
that the caller keeps its NumPy formula (the reference the tests compare these with). The
sort / scan / scatter / bag family (topk, kthvalue, median, cummax, cumsum, cumprod, prod,
scatter_reduce, embedding_bag, pdist, logcumsumexp, index_add) takes several dtypes through
``cpu/_sortscan.py``.

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
_VERSION = 17  # NOTE: mg_native_version() of the source; a cached library must match
# NOTE: GNU C, not ISO: ISO modes turn off contraction into fused multiply-adds (2x slower).
# -fno-trapping-math (clang's default) lets GCC turn the selects of a loop body with
# divisions into vector blends; it changes no value (flags of FP exceptions only)
_FLAGS = ("-O3", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math", "-std=gnu11",
          "-shared", "-fPIC", "-fvisibility=hidden")  # fmt: skip


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
_F = ctypes.c_float
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
    "mg_avg_pool2d_f32": (_P, _P, _P, *([_I] * 11), ctypes.c_int, _I),
    "mg_avg_pool2d_bwd_f32": (_P, _P, _P, *([_I] * 11), ctypes.c_int, _I),
    "mg_layer_norm_f32": (_P, _P, _P, _P, _P, _P, _I, _I, ctypes.c_float),
    "mg_layer_norm_bwd_f32": (_P, _P, _P, _P, _P, _P, _P, _P, _I, _I),
    "mg_softmax_f32": (_P, _P, _I, _I, ctypes.c_int),
    "mg_softmax_bwd_f32": (_P, _P, _P, _I, _I, ctypes.c_int),
    "mg_expm1_f32": (_P, _P, _I),
    "mg_log1p_f32": (_P, _P, _I),
    "mg_piecewise_f32": (_P, _P, _I, ctypes.c_int, _F, _F),
    "mg_piecewise_bwd_f32": (_P, _P, _P, _I, ctypes.c_int, _F, _F),
    "mg_elu_f32": (_P, _P, _I, _F, _F, _F),
    "mg_elu_bwd_f32": (_P, _P, _P, _I, _F, _F, _F),
    "mg_softplus_f32": (_P, _P, _I, _F, _F),
    "mg_softplus_bwd_f32": (_P, _P, _P, _I, _F, _F),
    "mg_group_norm_f32": (_P, _P, _P, _P, _P, _P, _P, _I, _I, _I, _I, _I, _F),
    "mg_group_norm_bwd_f32": (_P, _P, _P, _P, _P, _P, _P, _P, *([_I] * 6)),
    "mg_batch_norm_f32": (*([_P] * 8), *([_I] * 5), _F),
    "mg_batch_norm_eval_f32": (*([_P] * 5), *([_I] * 5)),
    "mg_batch_norm_bwd_f32": (*([_P] * 9), *([_I] * 5), ctypes.c_int),
    "mg_wino_in_f32": (_P, _P, *([_I] * 9)),
    "mg_wino_out_f32": (_P, _I, _P, _P, *([_I] * 6)),
    "mg_wino_gy_f32": (_P, _P, _I, _P, *([_I] * 6)),
    "mg_wino_fold_f32": (_P, _I, _P, *([_I] * 8)),
    "mg_wino_filter_f32": (_P, _P, _I, _I),
    "mg_wino_filter_bwd_f32": (_P, _P, _I, _I),
    "mg_convt_fold_f32": (_P, _P, _P, _I, _P),
    "mg_convt_unfold_f32": (_P, _P, _P, _I, _P),
    "mg_cross_entropy_f32": (_P, _P, _P, _P, _P, _P, _I, _I, _I, _F, _P, _F, _F),
    "mg_cross_entropy_bwd_f32": (_P, _P, _P, _P, _P, _F, _P, _I, _I, _I, _F, _F),
    "mg_adam_f32": (_P, _P, _P, _P, _P, _I, *([_F] * 7), ctypes.c_int),
    "mg_sgd_f32": (_P, _P, _P, _I, *([_F] * 4), ctypes.c_int),
    "mg_dwconv2d_f32": (_P, _P, _P, _P, _I, _I, _P),
    "mg_dwconv2d_bwd_f32": (_P, _P, _P, _P, _P, _P, _I, _I, _P),
    "mg_lstm_cell_f32": (_P, _P, _P, _P, _P, _P, _P, _I, _I, _I, _I),
    "mg_lstm_cell_bwd_f32": (*([_P] * 9), *([_I] * 8)),
    "mg_embedding_bwd_f32": (_P, _P, _P, _I, _I, _I),
    "mg_lerp_last_f32": (_P, _P, _I, _I, _I, _P, _P, _P),
    "mg_outer_f32": (_P, _P, _P, _I, _I),
    # the sort / scan / scatter / bag family (cpu/_sortscan.py); the int is a dtype code
    "mg_topk": (_P, ctypes.c_int, _I, _I, _I, ctypes.c_int, ctypes.c_int, _P),
    "mg_select_rows": (_P, ctypes.c_int, _I, _I, _I, ctypes.c_int, _P),
    "mg_cumext": (_P, ctypes.c_int, _I, _I, _I, ctypes.c_int, _P, _P),
    "mg_scan": (_P, _P, ctypes.c_int, _I, _I, _I, ctypes.c_int, ctypes.c_int),
    "mg_prod_rows": (_P, ctypes.c_int, _I, _I, _P),
    "mg_scatter": (_P, _P, _P, ctypes.c_int, _I, _P, _P, _P, _I, ctypes.c_int),
    "mg_bag": (_P, ctypes.c_int, _I, _I, _P, _P, _I, _P, _I, ctypes.c_int, _P, _P, _P),
    "mg_bag_bwd": (_P, ctypes.c_int, _I, _P, _P, _I, _P, _I, ctypes.c_int, _P, _P, _P),
    "mg_take": (_P, _I, _I, _I, _I, _P, _I, _P),
    "mg_prod_others": (_P, ctypes.c_int, _I, _I, _I, _P),
    "mg_pdist2": (_P, ctypes.c_int, _I, _I, _P, _P, _P),
    "mg_pdistp": (_P, ctypes.c_int, _I, _I, ctypes.c_double, ctypes.c_int, _P, _P, _P),
    "mg_logcumsumexp": (_P, _P, ctypes.c_int, _I, _I, _I, ctypes.c_int),
    "mg_index_add": (_P, ctypes.c_int, _I, _I, _I, _P, _I, _P),
}
# NOTE: 0: out of memory
_RETURNS_INT = ("mg_dwconv2d_f32", "mg_dwconv2d_bwd_f32", "mg_batch_norm_f32",
                "mg_batch_norm_eval_f32", "mg_batch_norm_bwd_f32", "mg_wino_in_f32",
                "mg_wino_out_f32", "mg_wino_gy_f32", "mg_wino_fold_f32", "mg_convt_fold_f32",
                "mg_convt_unfold_f32", "mg_topk", "mg_select_rows", "mg_cumext", "mg_scan",
                "mg_scatter", "mg_bag", "mg_bag_bwd", "mg_take", "mg_prod_others",
                "mg_pdist2", "mg_pdistp", "mg_logcumsumexp", "mg_index_add")  # fmt: skip


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
        fn.argtypes, fn.restype = args, (ctypes.c_int if name in _RETURNS_INT else None)
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
                        "activations, norms, softmax, cross entropy, pooling, convolutions "
                        "and LSTM steps keep their slower NumPy formulas. "
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


_SMALL = 2048  # NOTE: below this, one NumPy call beats a kernel call's fixed host cost
_address = ctypes.addressof
_as_chars = ctypes.c_char.from_buffer


def _ptr(a):
    """The address of a C-contiguous array's data (None for None)."""
    if a is None:
        return None
    try:  # NOTE: a third of the time of a.ctypes.data, for writable arrays
        return _address(_as_chars(a))
    except (TypeError, ValueError):  # read-only or empty
        return a.ctypes.data


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
    if n < _PAR_MIN:
        fn(*ptrs, n, *scalars)
        return
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
    if g.size < _SMALL or not _ok(g, d) or g.shape != d.shape or (lib_ := lib()) is None:
        return None
    out = np.empty_like(g)
    _elementwise(lib_.mg_mul_f32, (g, d, out), g.size)
    return out


def unary(name: str, x):
    """``sigmoid``, ``silu``, ``expm1`` or ``log1p`` of ``x``, or None."""
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


_PIECES = {"hardtanh": 0, "threshold": 1, "hardshrink": 2, "softshrink": 3, "hardsigmoid": 4,
           "hardswish": 5}  # fmt: skip


def piecewise(name: str, x, a: float = 0.0, b: float = 0.0, strict: bool = False):
    """The piecewise-linear activation ``name`` (hardtanh, threshold, hardshrink, softshrink,
    hardsigmoid, hardswish) of ``x`` with its parameters ``a``, ``b`` (bounds; threshold
    and value; lambd), or None."""
    if not _ok(x) or name not in _PIECES or (lib_ := lib()) is None:
        return None
    y = np.empty_like(x)
    _elementwise(lib_.mg_piecewise_f32, (x, y), x.size, _PIECES[name], float(a), float(b))
    return y


def piecewise_backward(name: str, g, x, a: float = 0.0, b: float = 0.0, strict: bool = False):
    """The gradient of ``piecewise(name, x, a, b)`` for ``g`` (``strict``: hardtanh's
    in-place form, 0 for NaN), or None."""
    if not _ok(g, x) or g.shape != x.shape or name not in _PIECES or (lib_ := lib()) is None:
        return None
    kind = 6 if strict and name == "hardtanh" else _PIECES[name]
    dx = np.empty_like(g)
    _elementwise(lib_.mg_piecewise_bwd_f32, (g, x, dx), g.size, kind, float(a), float(b))
    return dx


def elu(x, alpha: float, scale: float = 1.0, input_scale: float = 1.0):
    """ELU of ``x`` with PyTorch's scales (SELU and CELU are ELUs), or None."""
    if not _ok(x) or (lib_ := lib()) is None:
        return None
    y = np.empty_like(x)
    _elementwise(lib_.mg_elu_f32, (x, y), x.size, float(alpha), float(scale), float(input_scale))
    return y


def elu_backward(g, x, alpha: float, scale: float = 1.0, input_scale: float = 1.0):
    """ELU's gradient from its input ``x``, or None."""
    if not _ok(g, x) or g.shape != x.shape or (lib_ := lib()) is None:
        return None
    dx = np.empty_like(g)
    _elementwise(lib_.mg_elu_bwd_f32, (g, x, dx), g.size, float(alpha), float(scale),
                 float(input_scale))  # fmt: skip
    return dx


def softplus(x, beta: float, threshold: float):
    """``log1p(exp(beta x)) / beta`` (``x`` above ``threshold / beta``) of ``x``, or None."""
    if not _ok(x) or (lib_ := lib()) is None:
        return None
    y = np.empty_like(x)
    _elementwise(lib_.mg_softplus_f32, (x, y), x.size, float(beta), float(threshold))
    return y


def softplus_backward(g, x, beta: float, threshold: float):
    """softplus's gradient from its input ``x``, or None."""
    if not _ok(g, x) or g.shape != x.shape or (lib_ := lib()) is None:
        return None
    dx = np.empty_like(g)
    _elementwise(lib_.mg_softplus_bwd_f32, (g, x, dx), g.size, float(beta), float(threshold))
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


def _gn_dims(x, groups: int):
    n, c = x.shape[:2]
    ell = x.size // (n * c) if n * c else 0
    return n, c, ell, n * groups, c // groups


def group_norm(x, groups: int, w, b, eps: float):
    """``(y, mean, rstd)``: the group norm of ``x`` (N, C, ...) with ``groups`` groups (w, b:
    (C,) or None); mean as (2, N * groups), a float32 value and what its rounding left out,
    and rstd as (N * groups,): the layout of ``ops/_group_norm_rows.forward``; or None."""
    if not _ok(x, w, b) or x.ndim < 2 or x.size == 0 or (lib_ := lib()) is None:
        return None
    n, c, ell, rows, cpg = _gn_dims(x, groups)
    y = np.empty_like(x)
    mean, rstd = np.empty((2, rows), np.float32), np.empty(rows, np.float32)
    m = cpg * ell
    px, py, pm, pr, fn = _ptr(x), _ptr(y), _ptr(mean), _ptr(rstd), lib_.mg_group_norm_f32
    _run([(fn, (px + 4 * i * m, _ptr(w), _ptr(b), py + 4 * i * m, pm + 4 * i,
                pm + 4 * (rows + i), pr + 4 * i, j - i, i, groups, cpg, ell, float(eps)))
          for i, j in _ranges(rows, _parts(x.size))])  # fmt: skip
    return y, mean, rstd


def group_norm_backward(g, x, mean, rstd, groups: int, w, need_x, need_w, need_b):
    """``(dx, dw, db)`` of the group norm of ``x`` from forward's ``mean`` (2, N * groups:
    a value and a correction) and ``rstd`` (each None unless asked for), or None."""
    if g.__class__ is _ND and g.dtype == _F32 and not g.flags.c_contiguous:
        g = np.ascontiguousarray(g)  # NOTE: e.g. y.sum().backward()'s broadcast gradient
    if not _ok(g, x, mean, rstd, w) or g.shape != x.shape or x.ndim < 2 or x.size == 0:
        return None
    if mean.shape != (2, rstd.size) or (lib_ := lib()) is None:
        return None
    n, c, ell, rows, cpg = _gn_dims(x, groups)
    m = cpg * ell
    dx = np.empty_like(x) if need_x else None
    sums = np.empty((2, rows * cpg), np.float32)  # per (n, c): sum g, sum g (x - mean)
    pg, px, pm, pr, pd, ps = _ptr(g), _ptr(x), _ptr(mean), _ptr(rstd), _ptr(dx), _ptr(sums)
    fn = lib_.mg_group_norm_bwd_f32
    _run([(fn, (pg + 4 * i * m, px + 4 * i * m, pm + 4 * i, pm + 4 * (rows + i), pr + 4 * i,
                _ptr(w), None if pd is None else pd + 4 * i * m, ps + 4 * i * cpg, rows * cpg,
                j - i, i, groups, cpg, ell))
          for i, j in _ranges(rows, _parts(x.size))])  # fmt: skip
    dw = db = None
    if need_w:
        dw = (sums[1].reshape(n, groups, cpg) * rstd.reshape(n, groups, 1)).sum(0).reshape(c)
    if need_b:
        db = sums[0].reshape(n, c).sum(0)
    return dx, dw, db


def _bn_run(fn, args, x) -> None:
    """``fn(*args, N, C, S, c0, c1, ...)`` over ranges of the channels of ``x`` (N, C, ...),
    split across threads (a channel never: its sums keep one order); MemoryError where a
    part could not allocate its column sums."""
    n, c = x.shape[:2]
    done = []
    dims = (n, c, x.size // (n * c))
    _run([(lambda i, j: done.append(fn(*args[0], *dims, i, j, *args[1])), (i, j))
          for i, j in _ranges(c, _parts(x.size))])  # fmt: skip
    if not all(done):
        raise MemoryError("batch_norm: out of memory for its column sums")


def batch_norm(x, w, b, eps: float):
    """``(y, mean, rstd, var)``: the batch norm of ``x`` (N, C, ...) with its own statistics
    (training; w, b: (C,) or None); mean as (2, C), a float32 value and what its rounding
    left out, rstd as (C,) and the biased variance as float64 (C,); or None."""
    if not _ok(x, w, b) or x.ndim < 2 or x.size == 0 or (lib_ := lib()) is None:
        return None
    c = x.shape[1]
    y = np.empty_like(x)
    mean, rstd, var = np.empty((2, c), np.float32), np.empty(c, np.float32), np.empty(c)
    pm = _ptr(mean)
    args = (_ptr(x), _ptr(w), _ptr(b), _ptr(y), pm, pm + 4 * c, _ptr(rstd), _ptr(var))
    _bn_run(lib_.mg_batch_norm_f32, (args, (float(eps),)), x)
    return y, mean, rstd, var


def batch_norm_eval(x, mean, a, shift):
    """``(x - mean[c]) * a[c] + shift[c]`` over the channels (dim 1) of ``x`` (batch norm
    with the running statistics: ``a = w * rstd``), or None."""
    if not _ok(x, mean, a, shift) or x.ndim < 2 or x.size == 0 or (lib_ := lib()) is None:
        return None
    y = np.empty_like(x)
    _bn_run(lib_.mg_batch_norm_eval_f32, ((_ptr(x), _ptr(mean), _ptr(a), _ptr(shift), _ptr(y)),
                                          ()), x)  # fmt: skip
    return y


def batch_norm_backward(g, x, mean, rstd, w, need_x: bool, training: bool):
    """``(dx, sg, sgx)`` of the batch norm of ``x``: the input gradient (None unless
    ``need_x``) and per channel the sums of g and of g (x - mean), from ``mean`` ((2, C) as
    ``batch_norm``'s, or the running mean (C,)) and ``rstd`` (C,); or None."""
    if g.__class__ is _ND and g.dtype == _F32 and not g.flags.c_contiguous:
        g = np.ascontiguousarray(g)  # NOTE: e.g. y.sum().backward()'s broadcast gradient
    if not _ok(g, x, mean, rstd, w) or g.shape != x.shape or x.ndim < 2 or x.size == 0:
        return None
    if (lib_ := lib()) is None:
        return None
    c = x.shape[1]
    dx = np.empty_like(x) if need_x else None
    sums = np.empty((2, c), np.float32)
    pm, ps = _ptr(mean), _ptr(sums)
    lo = pm + 4 * c if mean.ndim == 2 else None
    args = (_ptr(g), _ptr(x), pm, lo, _ptr(rstd), _ptr(w), _ptr(dx), ps, ps + 4 * c)
    _bn_run(lib_.mg_batch_norm_bwd_f32, (args, (int(training),)), x)
    return dx, sums[0], sums[1]


def softmax(x, log: bool):
    """(log-)softmax over the last axis of ``x``, or None."""
    if not _ok(x) or x.ndim == 0 or x.size == 0 or (lib_ := lib()) is None:
        return None
    n = x.shape[-1]
    y = np.empty_like(x)
    px, py, fn = _ptr(x), _ptr(y), lib_.mg_softmax_f32
    if x.size < _PAR_MIN:  # NOTE: one thread: no ranges (a tenth of a 32x10 step's time)
        fn(px, py, x.size // n, n, int(log))
        return y
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
    if y.size < _PAR_MIN:
        fn(pg, py, pd, y.size // n, n, int(log))
        return dx
    _run([(fn, (pg + 4 * i * n, py + 4 * i * n, pd + 4 * i * n, j - i, n, int(log)))
          for i, j in _row_ranges(y.size // n, n)])  # fmt: skip
    return dx


def _int64(t):
    """Class indices as C-contiguous int64, or None (not a NumPy integer array)."""
    if t.__class__ is not _ND or t.dtype.kind not in "iu":
        return None
    return t if t.dtype == np.int64 and t.flags.c_contiguous else np.ascontiguousarray(t, np.int64)


def cross_entropy(x, t, w, ignore_index: int, eps: float, grad: str | None = None):
    """``(loss, lse, wt)`` per row of logits ``x`` (N, C) for class indices ``t`` (N,), as
    PyTorch's ``F.cross_entropy`` with ``reduction="none"`` (w: (C,) class weights or None;
    ``eps``: label smoothing): the loss, the log-sum-exp kept for the backward, and the
    target's weight (0 where ignored), or None. With ``grad`` (the reduction: "none", "sum"
    or "mean"), also the gradient of the reduced loss for an upstream gradient of 1 (of
    each row's loss for "none"), written in the same pass: ``(loss, lse, wt, dx)``."""
    if not _ok(x, w) or x.ndim != 2 or x.size == 0 or (lib_ := lib()) is None:
        return None
    if (t := _int64(t)) is None or t.shape != x.shape[:1]:
        return None
    rows, n = x.shape
    out = np.empty((3, rows), np.float32)  # the loss, lse and wt of each row
    dx, gs, wsum = None, 1.0, 0.0
    if grad is not None:
        dx = np.empty_like(x)
        wsum = float(n) if w is None else float(w.sum())
        if grad == "mean":  # NOTE: 1 / the sum of the targets' weights, as forward's wt.sum()
            valid = (t != ignore_index) & (t >= 0) & (t < n)
            wt = valid.astype(np.float32) if w is None else np.where(valid, w[t.clip(0, n - 1)], 0)
            with np.errstate(divide="ignore"):
                gs = float(np.float32(1) / wt.astype(np.float32).sum())
    px, pt, po, pd, fn = _ptr(x), _ptr(t), _ptr(out), _ptr(dx), lib_.mg_cross_entropy_f32
    _run([(fn, (px + 4 * i * n, pt + 8 * i, _ptr(w), po + 4 * i, po + 4 * (rows + i),
                po + 4 * (2 * rows + i), j - i, n, int(ignore_index), float(eps),
                None if pd is None else pd + 4 * i * n, gs, wsum))
          for i, j in _row_ranges(rows, n)])  # fmt: skip
    return (out[0], out[1], out[2]) + (() if dx is None else (dx,))


def cross_entropy_scale(dx, t, ignore_index: int, a):
    """``dx`` of ``cross_entropy(..., grad=...)`` times the upstream gradient ``a`` (a
    float, or (N,) per row), in place, the rows of ignored targets left as they are (0, or
    NaN for NaN logits, whatever ``a``); None (nothing changed) for a non-finite ``a``,
    whose products PyTorch forms otherwise (the backward kernel then)."""
    if isinstance(a, np.ndarray) and a.ndim:
        a = np.ascontiguousarray(a, np.float32)
        if a.shape != dx.shape[:1] or not np.isfinite(a).all():
            return None
        a = a[:, None]
    elif not np.isfinite(a):
        return None
    elif a == 1.0:
        return dx
    t = _int64(t)
    valid = t != ignore_index
    if valid.all():
        np.multiply(dx, a, out=dx)
    else:
        np.multiply(dx, a, out=dx, where=valid[:, None])
    return dx


def cross_entropy_backward(x, t, w, lse, ga, gs: float, ignore_index: int, eps: float):
    """The gradient of ``cross_entropy``'s losses for the upstream gradient ``ga`` of each
    row (N,), or ``gs`` for every row where ``ga`` is None; or None."""
    if ga is not None and ga.__class__ is _ND and ga.dtype == _F32:
        ga = np.ascontiguousarray(ga)  # NOTE: e.g. loss.sum().backward()'s broadcast
    if not _ok(x, w, lse, ga) or x.ndim != 2 or (lib_ := lib()) is None:
        return None
    t = _int64(t)
    if t is None or t.shape != x.shape[:1] or (ga is not None and ga.shape != t.shape):
        return None
    rows, n = x.shape
    dx = np.empty_like(x)
    wsum = float(n) if w is None else float(w.sum())
    px, pt, pe, pg, pd = _ptr(x), _ptr(t), _ptr(lse), _ptr(ga), _ptr(dx)
    fn, gs = lib_.mg_cross_entropy_bwd_f32, float(gs)
    _run([(fn, (px + 4 * i * n, pt + 8 * i, _ptr(w), pe + 4 * i,
                None if pg is None else pg + 4 * i, gs, pd + 4 * i * n, j - i, n,
                int(ignore_index), float(eps), wsum)) for i, j in _row_ranges(rows, n)])  # fmt: skip
    return dx


def adam_step(tensors, steps, group: dict):
    """One Adam/AdamW step of each float32 CPU parameter, each in one pass over its arrays,
    with the operations of ``Adam.update`` (the same bits). ``tensors``: ``(param, grad,
    exp_avg, exp_avg_sq, max_exp_avg_sq or None)`` arrays; ``steps``: each one's new step
    count; ``group``: the hyperparameters (lr, betas, eps, weight_decay,
    decoupled_weight_decay, maximize). Returns the indices of those it updated (the others'
    arrays are not C-contiguous float32 NumPy ones of one shape), or None when the kernels
    are off."""
    if (lib_ := lib()) is None:
        return None
    import math

    lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
    decay, l2 = (1 - lr * wd, 0.0) if group["decoupled_weight_decay"] else (1.0, wd)
    flags = (decay != 1) | (2 if group["maximize"] else 0) | (4 if l2 != 0 else 0)
    fn, done = lib_.mg_adam_f32, []
    for k, ((p, g, m, v, vm), step) in enumerate(zip(tensors, steps)):
        if not _ok(p, g, m, v, vm) or not p.shape == g.shape == m.shape == v.shape:
            continue
        if vm is not None and vm.shape != p.shape:
            continue
        # NOTE: Adam.update's factors, in float64 then rounded to float32 as NumPy rounds
        # its Python-float operands
        c2 = math.sqrt(1 - beta2**step)
        _elementwise(fn, (p, g, m, v, vm), p.size, decay, l2, beta1, beta2, 1 - beta2,
                     eps * c2, -lr * c2 / (1 - beta1**step), int(flags))  # fmt: skip
        done.append(k)
    return done


def sgd_step(p, g, buf, group: dict):
    """One SGD step of a float32 CPU parameter ``p`` with gradient ``g`` and momentum
    buffer ``buf`` (None on the first step with momentum: a new one is made, holding
    ``g``), in one pass with the operations of ``SGD.update`` (the same bits). Returns
    ``(True, buf)``, or ``(False, None)`` with nothing written when the arrays are not
    C-contiguous float32 NumPy ones of one shape or the kernels are off."""
    if p.size < _SMALL or not _ok(p, g, buf) or p.shape != g.shape:
        return False, None
    if (buf is not None and buf.shape != p.shape) or (lib_ := lib()) is None:
        return False, None
    wd, momentum, dampening = group["weight_decay"], group["momentum"], group["dampening"]
    flags = (1 if wd != 0 else 0) | (2 if group["maximize"] else 0)
    if momentum != 0:
        flags |= 4 | (16 if dampening != 0 else 0) | (32 if group["nesterov"] else 0)
        if buf is None:
            flags |= 8
            buf = np.empty_like(p)
    _elementwise(lib_.mg_sgd_f32, (p, g, buf if momentum != 0 else None), p.size, wd,
                 momentum, 1 - dampening, -group["lr"], flags)  # fmt: skip
    return True, buf


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


def avg_pool2d(x, out_hw, k, s, p, count_include_pad: bool, divisor_override):
    """2-d average pooling of ``x`` (N, C, H, W) into (N, C, *out_hw) as PyTorch's
    (``divisor_override``: None or the divisor of every window), or None."""
    if not _ok(x) or x.ndim != 4 or (lib_ := lib()) is None:
        return None
    n, c, h, w = x.shape
    ho, wo = out_hw
    y = np.empty((n, c, ho, wo), np.float32)
    if y.size == 0 or x.size == 0:
        return None if y.size else y
    ranges = _ranges(n * c, _parts(x.size))
    acc = np.empty((len(ranges), wo), np.float32)
    px, py, pa, fn = _ptr(x), _ptr(y), _ptr(acc), lib_.mg_avg_pool2d_f32
    rest = (h, w, ho, wo, *k, *s, *p, int(count_include_pad), int(divisor_override or 0))
    _run([(fn, (px + 4 * i * h * w, py + 4 * i * ho * wo, pa + 4 * t * wo, j - i, *rest))
          for t, (i, j) in enumerate(ranges)])  # fmt: skip
    return y


def avg_pool2d_backward(g, in_hw, k, s, p, count_include_pad: bool, divisor_override):
    """The gradient (N, C, *in_hw) of ``avg_pool2d`` for ``g`` (N, C, Ho, Wo), or None."""
    if g.__class__ is _ND and g.dtype == _F32 and not g.flags.c_contiguous:
        g = np.ascontiguousarray(g)  # NOTE: e.g. y.sum().backward()'s broadcast gradient
    if not _ok(g) or g.ndim != 4 or g.size == 0 or (lib_ := lib()) is None:
        return None
    n, c, ho, wo = g.shape
    h, w = in_hw
    dx = np.empty((n, c, h, w), np.float32)
    if dx.size == 0:
        return dx
    ranges = _ranges(n * c, _parts(dx.size))
    scratch = np.empty((len(ranges), ho * wo), np.float32)
    pg, pd, ps, fn = _ptr(g), _ptr(dx), _ptr(scratch), lib_.mg_avg_pool2d_bwd_f32
    rest = (h, w, ho, wo, *k, *s, *p, int(count_include_pad), int(divisor_override or 0))
    _run([(fn, (pg + 4 * i * ho * wo, pd + 4 * i * h * w, ps + 4 * t * ho * wo, j - i, *rest))
          for t, (i, j) in enumerate(ranges)])  # fmt: skip
    return dx


def _dw_geo(x, w, stride, pads, dilation, out_hw):
    """The geometry array of ``mg_dwconv2d_f32`` (C, m, H, W, Ho, Wo, kh, kw, sh, sw, pad top,
    pad left, dh, dw), or None for a weight that is not (C m, 1, kh, kw)."""
    n, c, h, wd = x.shape
    if w.ndim != 4 or w.shape[1] != 1 or c == 0 or w.shape[0] % c:
        return None
    return np.array([c, w.shape[0] // c, h, wd, *out_hw, *w.shape[2:], *stride, pads[0],
                     pads[1], *dilation], np.int64)  # fmt: skip


def _dw_run(fn, unit_args, units: int, work: int, geo) -> None:
    """``fn(*pointers offset to the first unit of a range, count, first, geo)`` over
    ranges of the ``units`` (sample, channel) planes; ``unit_args``: (array or None,
    float32 values per unit) pairs. Raises MemoryError where a part could not allocate its
    scratch planes."""
    done = []
    pg = geo.ctypes.data
    ptrs = [(None if a is None else _ptr(a), per) for a, per in unit_args]

    def part(i, j):
        args = [None if p is None else p + 4 * per * i for p, per in ptrs]
        done.append(fn(*args, j - i, i, pg))

    _run([(part, (i, j)) for i, j in _ranges(units, _parts(work))])
    if not all(done):
        raise MemoryError("depthwise convolution: out of memory for its scratch planes")


def _f32c(a):
    """A float32 NumPy array as C-contiguous (copied if it is not), else ``a`` unchanged."""
    if a is not None and a.__class__ is _ND and a.dtype == _F32 and not a.flags.c_contiguous:
        return np.ascontiguousarray(a)
    return a


def depthwise_conv2d(x, w, b, stride, pads, dilation, out_hw, shape=None):
    """The depthwise convolution (groups = channels) of ``x`` (N, C, H, W) with ``w``
    (C m, 1, kh, kw) and bias ``b`` (C m,) or None: stride, dilation (h, w) pairs,
    ``pads`` (top, left) (the bottom and right padding only shape ``out_hw``, the output's
    (Ho, Wo)). Returns y (N, C m, Ho, Wo), as ``shape`` if given (e.g. conv1d's (N, C m,
    Wo)), or None when the kernels do not take these."""
    x, w = _f32c(x), _f32c(w)
    if not _ok(x, w, b) or x.ndim != 4 or (lib_ := lib()) is None:
        return None
    geo = _dw_geo(x, w, stride, pads, dilation, out_hw)
    if geo is None or (b is not None and b.shape != (w.shape[0],)):
        return None
    n, c = x.shape[:2]
    y = np.empty(shape or (n, w.shape[0], *out_hw), np.float32)
    if y.size == 0:
        return y
    per_y = int(geo[1]) * out_hw[0] * out_hw[1]
    _dw_run(lambda px, py, *rest: lib_.mg_dwconv2d_f32(px, _ptr(w), _ptr(b), py, *rest),
            [(x, x[0, 0].size), (y, per_y)], n * c, y.size * w[0].size // 8, geo)  # fmt: skip
    return y


def depthwise_conv2d_backward(g, x, w, stride, pads, dilation, need_x, need_w, need_b,
                              x_shape=None, w_shape=None):  # fmt: skip
    """``(gx, gw, gb)`` of ``depthwise_conv2d(x, w, b, ...)`` for the output gradient ``g``
    (each None unless needed; gx shaped as ``x_shape`` and gw as ``w_shape`` if given: new
    arrays, not views), or None."""
    g, x, w = _f32c(g), _f32c(x), _f32c(w)
    if not _ok(g, x, w) or x.ndim != 4 or g.ndim != 4 or (lib_ := lib()) is None:
        return None
    geo = _dw_geo(x, w, stride, pads, dilation, g.shape[2:])
    if geo is None or g.shape[:2] != (x.shape[0], w.shape[0]):
        return None
    n, c = x.shape[:2]
    units, m, taps = n * c, int(geo[1]), w[0].size
    gx = np.empty(x_shape or x.shape, np.float32) if need_x else None
    gw = np.empty((n, *(w_shape or w.shape)), np.float32) if need_w else None
    gb = np.empty((n, w.shape[0]), np.float32) if need_b else None
    if x.size and g.size:
        fn = lib_.mg_dwconv2d_bwd_f32
        _dw_run(lambda pg, px, pgx, pgw, pgb, *rest: fn(pg, px, _ptr(w), pgx, pgw, pgb, *rest),
                [(g, g[0].size // c), (x, x[0, 0].size), (gx, x[0, 0].size), (gw, m * taps),
                 (gb, m)], units, 2 * g.size * taps // 8, geo)  # fmt: skip
    elif gx is not None:
        gx[...] = 0
    # NOTE: per sample parts, summed here in one order whatever the split across threads
    gw = None if gw is None else (gw.sum(0) if g.size else np.zeros_like(gw[0]))
    gb = None if gb is None else (gb.sum(0) if g.size else np.zeros_like(gb[0]))
    return gx, gw, gb


def takes(*arrays) -> bool:
    """Whether the kernels are there and take these arrays (C-contiguous float32 NumPy
    arrays, or None)."""
    return _ok(*arrays) and lib() is not None


def c_contiguous(a):
    """A float32 NumPy array as C-contiguous (a copy if it is not), else ``a`` unchanged."""
    return _f32c(a)


def _wino(name: str, *args) -> None:
    if not getattr(lib(), name)(*args):
        raise MemoryError("conv2d: out of memory for the Winograd transforms' buffers")


# NOTE: the Winograd transforms below run on one block of images on the calling thread
# (ops/_winograd.py shares the blocks between threads); their arrays are checked by the
# caller once (``takes``): C-contiguous float32 images, and the 16 transformed matrices as
# ``winograd_planes`` makes them.


def winograd_planes(rows: int, cols: int):
    """An empty (16, rows, cols) float32 array for the transformed matrices: a view of a
    buffer aligned to 64 bytes, each matrix 32 values after the end of the one before.

    NOTE: the transforms write (or read) the 16 matrices at once, 16 streams of memory; with
    a gap their addresses do not all fall into the same cache sets (a power of two apart,
    they did: the input transform of 2x32x32x32 ran at 120 us, 80 so)."""
    n = rows * cols
    step = n + 32
    base = np.empty(16 * step + 16, np.float32)
    off = (-base.ctypes.data % 64) // 4
    return base[off : off + 16 * step].reshape(16, step)[:, :n].reshape(16, rows, cols)


def _plane_step(a) -> int:
    return a.strides[0] // 4


def winograd_input(x, v, tiles, pt: int, pl: int) -> None:
    """``v`` (16, TH TW m, C) = the transformed input tiles of ``x`` (m, C, H, W), padded
    by ``pt`` rows above and ``pl`` columns left; ``tiles``: (TH, TW)."""
    m, c, h, w = x.shape
    _wino("mg_wino_in_f32", _ptr(x), v.ctypes.data, _plane_step(v), m, c, h, w, *tiles, pt, pl)


def winograd_output(z, b, y, tiles) -> None:
    """``y`` (m, O, Ho, Wo) = the output transform of the products ``z`` (16, TH TW m, O),
    plus the bias ``b`` (O,) or None."""
    m, o, ho, wo = y.shape
    _wino("mg_wino_out_f32", z.ctypes.data, _plane_step(z), _ptr(b), _ptr(y), m, o, ho, wo,
          *tiles)  # fmt: skip


def winograd_grad_output(gy, gt, gb, tiles) -> None:
    """``gt`` (16, TH TW m, O) = the transformed output gradient ``gy`` (m, O, Ho, Wo);
    with ``gb`` (O,), each channel's sum of ``gy`` added to it."""
    m, o, ho, wo = gy.shape
    _wino("mg_wino_gy_f32", _ptr(gy), gt.ctypes.data, _plane_step(gt), _ptr(gb), m, o, ho, wo,
          *tiles)  # fmt: skip


def winograd_fold(z, gx, tiles, pt: int, pl: int) -> None:
    """``gx`` (m, C, H, W) = the input gradient from the products ``z`` (16, TH TW m, C):
    each tile's back-transform, overlapping tiles added, the padding dropped."""
    m, c, h, w = gx.shape
    _wino("mg_wino_fold_f32", z.ctypes.data, _plane_step(z), _ptr(gx), m, c, h, w, *tiles, pt,
          pl)  # fmt: skip


def winograd_filter(w):
    """The filters' transform of ``w`` (O, C, 3, 3) as (16, C, O), or None."""
    if not _ok(w) or w.ndim != 4 or w.shape[2:] != (3, 3) or (lib_ := lib()) is None:
        return None
    o, c = w.shape[:2]
    u = np.empty((16, c, o), np.float32)
    lib_.mg_wino_filter_f32(_ptr(w), _ptr(u), c, o)
    return u


def winograd_filter_backward(gu):
    """The weight gradient (O, C, 3, 3) from the summed products ``gu`` (16, C, O), or None."""
    if not _ok(gu) or gu.ndim != 3 or gu.shape[0] != 16 or (lib_ := lib()) is None:
        return None
    c, o = gu.shape[1:]
    gw = np.empty((o, c, 3, 3), np.float32)
    lib_.mg_wino_filter_bwd_f32(_ptr(gu), _ptr(gw), c, o)
    return gw


# NOTE: the transposed convolutions' column kernels below run on one block of images on the
# calling thread (ops/_convt_blocks.py shares the blocks between threads and checks the
# arrays once with ``takes``: C-contiguous float32); ``geo`` is ``convt_geometry``'s.


def convt_geometry(g):
    """The geometry array of the column kernels for a transposed convolution's ``_Geom``
    (its output is the geometry's input (N, C, H, W), its input the geometry's output)."""
    return np.array([g.C, g.H, g.W, g.Ho, g.Wo, g.kh, g.kw, g.sh, g.sw, g.pads[0], g.pads[2],
                     g.dh, g.dw], np.int64)  # fmt: skip


def convt_fold(cols, b, y, geo) -> None:
    """``y`` (m, C, H, W) = ``b`` (C,) (or 0) plus the columns ``cols`` (C kh kw, m, hi wi)
    added at their output pixels."""
    if not lib().mg_convt_fold_f32(cols.ctypes.data, _ptr(b), y.ctypes.data, y.shape[0],
                                   geo.ctypes.data):  # fmt: skip
        raise MemoryError("conv_transpose2d: out of memory for a plane of the output")


def convt_unfold(g, cols, gb, geo) -> None:
    """``cols`` (C kh kw, m, hi wi) = the values of ``g`` (m, C, H, W) at the columns' output
    pixels (0 outside); with ``gb`` (m, C), the sum of each plane of ``g``."""
    if not lib().mg_convt_unfold_f32(g.ctypes.data, cols.ctypes.data, None if gb is None else
                                     gb.ctypes.data, g.shape[0], geo.ctypes.data):  # fmt: skip
        raise MemoryError("conv_transpose2d: out of memory for a plane of the gradient")


def _stepper(fn, arrays, nd: int, hb: int):
    """``step(*indices)``: ``fn`` on the ``indices[j]``-th sub-array (along the first axis)
    of each of ``arrays`` (None: NULL, index ignored), over ``nd`` directions of ``hb``
    values a gate block, split across threads when large; or None when the kernels do not
    take the arrays. The addresses are computed once, so that a step costs one call."""
    if not _ok(*arrays) or (lib_ := lib()) is None:
        return None
    fn = getattr(lib_, fn)
    # NOTE: (base, stride) pairs; a NULL's stride 0 and base None + 0 is never computed
    pairs = [(None, 0) if a is None else (_ptr(a), a[0].nbytes) for a in arrays]
    parts = _ranges(hb, _parts(nd * hb * 8), 64)
    rest = [(nd, hb, lo, hi) for lo, hi in parts]

    def step(*idx):
        ptrs = [p if p is None else p + s * i for (p, s), i in zip(pairs, idx)]
        if len(rest) == 1:
            fn(*ptrs, *rest[0])
        else:
            _run([(fn, (*ptrs, *r)) for r in rest])

    step.arrays = tuple(arrays)  # NOTE: the arrays must outlive their addresses
    return step


def lstm_cell_steps(gs, gi, cs, tcs, hs, b=None):
    """The forward steps of a fused LSTM layer (``ops.rnn_fused.LSTMSeq``) in one pass each:
    ``step(i, k, cp, cc, i, j)`` adds ``gi[k]`` and the biases ``b`` (nd, 4H, B) (None:
    none) to the recurrent products ``gs[i]`` (nd, 4H, B) (gate blocks in PyTorch's order
    i, f, g, o), turns them into the gates, and writes ``cs[cc] = f cs[cp] + i c~``,
    ``tcs[i] = tanh(cs[cc])`` and ``hs[j] = o tcs[i]``. None when the kernels do not take
    these arrays."""
    if gs.ndim != 4 or gs.shape[2] % 4 or gi.shape[1:] != gs.shape[1:]:
        return None
    nd, h4, b_ = gs.shape[1:]
    if cs.shape[1:] != (nd, h4 // 4, b_) or tcs.shape[1:] != cs.shape[1:]:
        return None
    if hs.shape[1:] != cs.shape[1:] or (b is not None and b.shape != gs.shape[1:]):
        return None
    arrays = (gs, gi, None if b is None else b[None], cs, cs, tcs, hs)
    inner = _stepper("mg_lstm_cell_f32", arrays, nd, h4 // 4 * b_)
    if inner is None:
        return None

    def step(i, k, cp, cc, t, j):
        inner(i, k, 0, cp, cc, t, j)

    step.arrays = inner.arrays
    return step


def lstm_cell_backward_steps(dh, gy, dc, gs, tcs, cs, dgs, dg=None, db=None, rev=None):
    """The backward steps of ``lstm_cell_steps``: ``step(0, k, 0, k, k, k, j, 0, 0)`` reads
    the state gradient ``dh`` (nd, H, B) plus ``gy[k]`` (gy may be None) and the cell
    gradient ``dc`` (nd, H, B), with step k's gates ``gs[k]``, ``tcs[k]`` and previous cell
    ``cs[k]``; writes the pre-activations' gradients into columns ``[j B, (j + 1) B)`` of
    ``dgs`` (nd, 4H, T B) (``[(T - 1 - j) B, (T - j) B)`` for the directions that ``rev``
    marks, i.e. in time order) and, unless None, into ``dg`` (nd, 4H, B), adds their sums
    over B to ``db`` (nd, 4H) (None: to a scratch array), and writes the previous cell's
    gradient into ``dc``. None when the kernels do not take these arrays."""
    if gs.ndim != 4 or dh.shape != dc.shape or dgs.ndim != 3:
        return None
    nd, h4, b = gs.shape[1:]
    if dh.shape != (nd, h4 // 4, b) or tcs.shape[1:] != dh.shape or cs.shape[1:] != dh.shape:
        return None
    if gy is not None and gy.shape[1:] != dh.shape:
        return None
    if dgs.shape[:2] != (nd, h4) or b == 0 or dgs.shape[2] % b:
        return None
    if db is None:
        db = np.zeros((nd, h4), np.float32)
    if (dg is not None and dg.shape != gs.shape[1:]) or db.shape != (nd, h4) or nd > 2:
        return None
    rev = tuple(rev or (False,) * nd) + (False,)
    arrays = (dh[None], gy, dc[None], gs, tcs, cs)
    if not _ok(*arrays, dgs, dg, db) or (lib_ := lib()) is None:
        return None
    fn, h = lib_.mg_lstm_cell_bwd_f32, h4 // 4
    pairs = [(None, 0) if a is None else (_ptr(a), a[0].nbytes) for a in arrays]
    pairs += [(_ptr(dgs), 0), (_ptr(dg), 0), (_ptr(db), 0)]
    parts = _ranges(h, _parts(nd * h * b * 8))
    last = dgs.shape[2] // b - 1

    def step(*idx):
        ptrs = [p if p is None else p + s * i for (p, s), i in zip(pairs, idx)]
        j = idx[6]
        cols = [(last - j if r else j) * b for r in rev[:2]]  # NOTE: step j's columns
        if len(parts) == 1:
            fn(*ptrs, nd, h, b, dgs.shape[2], *cols, *parts[0])
        else:
            _run([(fn, (*ptrs, nd, h, b, dgs.shape[2], *cols, *r)) for r in parts])

    step.arrays = (*arrays, dgs, dg, db)  # NOTE: the arrays must outlive their addresses
    return step


def embedding_backward(g, idx, rows: int):
    """The gradient (rows, D) of an embedding table from the gradient ``g`` (n, D) of the
    rows ``idx`` (n,) looked up (int64): the rows of ``g`` added at their indices, in order.
    None when the kernels do not take these arrays."""
    if g.ndim != 2 or idx.shape != (g.shape[0],) or not _ok(g):
        return None
    if idx.__class__ is not _ND or idx.dtype != np.int64 or not idx.flags.c_contiguous:
        return None
    if (lib_ := lib()) is None:
        return None
    gw = np.zeros((rows, g.shape[1]), np.float32)
    lib_.mg_embedding_bwd_f32(_ptr(g), _ptr(idx), gw.ctypes.data, g.shape[0], g.shape[1], rows)
    return gw


def lerp_plan(i0, i1, w0, w1, n: int):
    """The arrays ``lerp_last`` takes for the taps ``(i0, w0), (i1, w1)`` (m,) of a linear
    resampling of ``n`` columns: indices (4, m) int32, weights (2, m) float32 and the first
    column of each 8 outputs that read 8 columns at most (-1 for the others)."""
    m = len(i0)
    nb = m // 8
    i0, i1 = np.asarray(i0, np.int64), np.asarray(i1, np.int64)
    lo = np.minimum(i0, i1)[: nb * 8].reshape(nb, 8).min(1)
    hi = np.maximum(i0, i1)[: nb * 8].reshape(nb, 8).max(1)
    base = np.minimum(lo, n - 8)
    base = np.where((n >= 8) & (hi - base < 8), base, -1)
    rel = np.repeat(np.maximum(base, 0), 8)
    rel = np.concatenate([rel, np.zeros(m - nb * 8, np.int64)])
    idx = np.stack([i0, i1, i0 - rel, i1 - rel]).astype(np.int32)
    wt = np.stack([w0, w1]).astype(np.float32)
    return idx, wt, np.ascontiguousarray(base, np.int32)


def lerp_last(x2, plan):
    """``x2`` (rows, n) resampled linearly along its last dim by ``plan`` (``lerp_plan``):
    (rows, m), each value fma(x0, w0, x1 w1) as PyTorch's kernel; None when the kernels do
    not take ``x2``."""
    if not _ok(x2) or x2.ndim != 2 or (lib_ := lib()) is None:
        return None
    idx, wt, base = plan
    rows, n = x2.shape
    m = idx.shape[1]
    y = np.empty((rows, m), np.float32)
    if y.size == 0:
        return y
    px, py, fn = _ptr(x2), _ptr(y), lib_.mg_lerp_last_f32
    pi, pw, pb = idx.ctypes.data, wt.ctypes.data, base.ctypes.data
    _run([(fn, (px + 4 * i * n, py + 4 * i * m, j - i, n, m, pi, pw, pb))
          for i, j in _row_ranges(rows, m)])  # fmt: skip
    return y


def outer(a, b):
    """``a @ b`` for float32 NumPy arrays ``a`` (m, 1) and ``b`` (1, n): each value
    ``a[i] * b[j]``, rows split across threads; None when the kernels do not take them."""
    if a.__class__ is not _ND or b.__class__ is not _ND or a.dtype != _F32 or b.dtype != _F32:
        return None
    m, n = a.shape[0], b.shape[1]
    if m * n < _SMALL or (lib_ := lib()) is None:
        return None
    a = np.ascontiguousarray(a.reshape(m))
    b = np.ascontiguousarray(b.reshape(n))
    y = np.empty((m, n), np.float32)
    pa, pb, py, fn = _ptr(a), _ptr(b), _ptr(y), lib_.mg_outer_f32
    _run([(fn, (pa + 4 * i, pb, py + 4 * i * n, j - i, n))
          for i, j in _ranges(m, _parts(m * n))])  # fmt: skip
    return y
