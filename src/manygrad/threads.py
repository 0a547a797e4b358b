"""CPU thread count of the BLAS library NumPy uses (OpenBLAS), set at run time.

NOTE: on a small CPU shared with other work, a multi-threaded BLAS on small matrices spends
most of its time waiting for its threads: a 64x256 MLP step measured 5.5 ms with one
OpenBLAS thread and 186 ms with two on a busy 2-core machine (PyTorch: 8 ms and 155 ms).
Small models therefore train with one thread; ``OPENBLAS_NUM_THREADS`` can only be set before
NumPy loads, so the count is changed through OpenBLAS's own C function instead.
"""

from __future__ import annotations

import ctypes
import os

_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)
_GETTERS = tuple(s.replace("set_", "get_") for s in _SETTERS)


def _openblas_libs() -> list[str]:
    import numpy  # noqa: F401  (loads the BLAS library)

    paths = []
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            for line in f:
                p = line.split()[-1]
                if "openblas" in os.path.basename(p).lower() and p not in paths:
                    paths.append(p)
    except OSError:
        pass
    return paths


_FUNCS: dict = {}  # names -> the OpenBLAS function found (or None), looked up once


def _call(names: tuple[str, ...], *args):
    # NOTE: cached: reading /proc/self/maps costs milliseconds with large libraries loaded,
    # and convolutions ask for the thread count on every forward
    if names not in _FUNCS:
        _FUNCS[names] = None
        for path in _openblas_libs():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            fn = next((f for f in (getattr(lib, n, None) for n in names) if f is not None), None)
            if fn is not None:
                _FUNCS[names] = fn
                break
    fn = _FUNCS[names]
    return None if fn is None else fn(*args)


_CORENAME = (
    "scipy_openblas_get_corename64_",
    "scipy_openblas_get_corename",
    "openblas_get_corename64_",
    "openblas_get_corename",
)


def blas_kernel() -> str | None:
    """The CPU kernel family OpenBLAS picked (e.g. "SkylakeX", "Haswell"); None if unknown."""
    _call(_CORENAME)  # NOTE: looks the function up once; its result type is set below
    fn = _FUNCS.get(_CORENAME)
    if fn is None:
        return None
    fn.restype = ctypes.c_char_p
    name = fn()
    return name.decode(errors="replace") if name else None


def get_blas_threads() -> int | None:
    """Threads OpenBLAS uses now (None if NumPy's BLAS isn't OpenBLAS)."""
    return _call(_GETTERS)


def set_blas_threads(n: int) -> bool:
    """Make OpenBLAS use ``n`` threads; returns False if it couldn't be found.

    Args:
        n: thread count (>= 1).

    Example:
        >>> set_blas_threads(1)
        True
    """
    n = max(1, int(n))
    _call(_SETTERS, ctypes.c_int(n))
    return get_blas_threads() == n


_REQUESTED: list = [None]  # the count set_num_threads was given (None: never called)


def set_num_threads(n: int) -> None:
    """CPU threads for manygrad's ops (the BLAS behind matmul and conv, the CPU kernels),
    as PyTorch's ``torch.set_num_threads``.

    Example: ``mg.set_num_threads(1)``
    """
    n = max(1, int(n))
    _REQUESTED[0] = n
    set_blas_threads(n)


def get_num_threads() -> int:
    """The count given to ``set_num_threads``; before any, the threads the BLAS uses (the
    CPU count when it can't be asked).

    NOTE: the count asked for, not the BLAS's: a BLAS that could not be found or set (or
    that another library reset) does not change what manygrad's own threads use."""
    if _REQUESTED[0] is not None:
        return _REQUESTED[0]
    return get_blas_threads() or os.cpu_count() or 1
