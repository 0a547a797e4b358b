"""The sort, scan, scatter and bag family's C kernels (``_native.c``) for NumPy arrays.

topk, kthvalue, median and nanmedian pick indices row by row as PyTorch's CPU kernels do
(its libstdc++ partial sort / introselect and its quickselect, replayed on (value, index)
pairs, so equal values give PyTorch's indices with no budget); cummax / cummin, cumsum /
cumprod (float32 carried in double, as PyTorch's and NumPy's ``dtype=float64`` scans),
products along a contiguous last dim, scatter_reduce's combining and embedding_bag's sums,
means and maxima, pdist for every p >= 0, logcumsumexp (PyTorch's double-carried scan, its
bits) and index_add by whole rows run as one pass each.

Each function returns None (or False) where its kernel does not apply (another dtype, no
compiler, ``MANYGRAD_CPU_KERNELS=0``): the caller keeps its NumPy formula, the reference
that tests/test_native_kernels.py compares these with. Results are bit for bit those of the
NumPy formulas (the same operations in the same order).
"""

from __future__ import annotations

import ctypes

import numpy as np

from .. import _native

# NOTE: dtype codes of the C side; 16-bit floats and small integers are widened exactly
_CODES = {np.dtype(np.float32): 0, np.dtype(np.float64): 1, np.dtype(np.int64): 2,
          np.dtype(np.int32): 3}  # fmt: skip
_WIDEN = {"f": np.float32, "i": np.int64, "u": np.int64}


def _lib():
    return _native.lib()


def available() -> bool:
    """Whether the kernels are built (``bag`` and ``take`` then take every float32/float64
    or any-dtype input their callers check for)."""
    return _lib() is not None


_ptr = _native._ptr  # NOTE: a third of the time of a.ctypes.data (writable arrays)


def _over_rows(fn, rows: int, work: int, args) -> bool:
    """``fn(*args(r0, r1))`` over ranges of ``rows`` independent rows: one call, or one per
    thread of manygrad's (``set_num_threads``) when ``work`` (values) is large; False if a
    call returned 0 (out of memory). Each row's values do not depend on the split."""
    parts = min(_native._parts(work), rows)
    if parts <= 1:
        return bool(fn(*args(0, rows)))
    done: list = []

    def call(a):
        done.append(fn(*a))

    _native._run([(call, (args(i, j),)) for i, j in _native._ranges(rows, parts, 8)])
    return all(done)


def keyed(a, bools: bool = False):
    """``(array, code)``: ``a`` C-contiguous in a dtype the order kernels take (16-bit
    floats as float32, other integers as int64, bools as int32 with ``bools``), or
    ``(None, None)`` (complex, uint64, ...)."""
    if a.__class__ is not np.ndarray:
        return None, None
    dt = a.dtype
    code = _CODES.get(dt)
    if code is None:
        kind = dt.kind
        if kind == "V" and dt.itemsize == 2 and dt.name == "bfloat16":
            kind = "f"
        if (kind == "f" and dt.itemsize == 2) or (kind in "iu" and dt.itemsize < 8):
            a, code = a.astype(_WIDEN[kind]), 0 if kind == "f" else 2
        elif kind == "b" and bools:
            a, code = a.astype(np.int32), 3
        else:
            return None, None
    return np.ascontiguousarray(a), code


def topk(rows, k: int, largest: bool, sorted: bool):  # noqa: A002
    """The indices (r, k) PyTorch's CPU topk gives for each row of ``rows`` (r, n), or
    None."""
    a, code = keyed(rows)
    if a is None or (lib := _lib()) is None:
        return None
    r, n = a.shape
    out = np.empty((r, k), np.int64)
    px, po, sz = _ptr(a), _ptr(out), a.itemsize

    def args(i, j):
        return px + i * n * sz, code, j - i, n, k, int(largest), int(sorted), po + i * k * 8

    if not _over_rows(lib.mg_topk, r, r * n, args):
        raise MemoryError(f"topk: no memory for a row of {n} values")
    return out


_SELECT = {"kthvalue": 0, "median": 1, "nanmedian": 2}


def select(rows, op: str, k: int = 0):
    """The index (r,) PyTorch's CPU ``op`` (kthvalue with the 0-based ``k``, median,
    nanmedian) reports for each row of ``rows`` (r, n), or None."""
    a, code = keyed(rows)
    if a is None or (lib := _lib()) is None:
        return None
    r, n = a.shape
    out = np.empty(r, np.int64)
    px, po, sz, mode = _ptr(a), _ptr(out), a.itemsize, _SELECT[op]

    def args(i, j):
        return px + i * n * sz, code, j - i, n, k, mode, po + i * 8

    if not _over_rows(lib.mg_select_rows, r, r * n, args):
        raise MemoryError(f"{op}: no memory for a row of {n} values")
    return out


def _split(shape, axis: int):
    """``(outer, n, inner)`` of a C-contiguous array of ``shape`` around ``axis``."""
    return int(np.prod(shape[:axis])), shape[axis], int(np.prod(shape[axis + 1 :]))


def cumext(x, axis: int, is_max: bool, values: bool = False):
    """The indices (x's shape, int64) of cummax (``is_max``) or cummin along ``axis``, by
    PyTorch's rule, or None; with ``values``, ``(indices, running values)``."""
    a, code = keyed(x, bools=True)
    if a is None or (lib := _lib()) is None:
        return None
    idx = np.empty(a.shape, np.int64)
    vals = np.empty(a.shape, a.dtype) if values else None
    outer, n, inner = _split(a.shape, axis)
    px, pi, pv, step = _ptr(a), _ptr(idx), _ptr(vals), n * inner

    def args(i, j):
        pvi = None if pv is None else pv + i * step * a.itemsize
        return px + i * step * a.itemsize, code, j - i, n, inner, int(is_max), pi + i * step * 8, pvi  # fmt: skip

    if not _over_rows(lib.mg_cumext, outer, a.size, args):
        raise MemoryError("cummax: no memory for a row of running values")
    if not values:
        return idx
    return idx, (vals if vals.dtype == x.dtype else vals.astype(x.dtype))  # NOTE: exact


_SCAN = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64))


def scan(x, axis: int, reverse: bool = False, prod: bool = False):
    """Running sums (or products) of ``x`` along ``axis`` (from the end with ``reverse``),
    float32 carried in double, as NumPy's ``cumsum(x, dtype=float64)`` (float64 and int64
    in their own dtype), or None."""
    if x.__class__ is not np.ndarray or x.dtype not in _SCAN or (lib := _lib()) is None:
        return None
    a = np.ascontiguousarray(x)
    y = np.empty(a.shape, a.dtype)
    code = _CODES[a.dtype]
    outer, n, inner = _split(a.shape, axis)
    px, py, step = _ptr(a), _ptr(y), n * inner * a.itemsize

    def args(i, j):
        return px + i * step, py + i * step, code, j - i, n, inner, int(reverse), int(prod)

    if not _over_rows(lib.mg_scan, outer, a.size, args):
        raise MemoryError("cumsum: no memory for the running values")
    return y


def prod_last(x):
    """Products of a C-contiguous ``x`` along its last dim, left to right (NumPy's order:
    its bits), or None."""
    if (
        x.__class__ is not np.ndarray
        or x.dtype not in _SCAN
        or not x.flags.c_contiguous
        or x.ndim == 0
        or (lib := _lib()) is None
    ):
        return None
    n = x.shape[-1]
    out = np.empty(x.shape[:-1], x.dtype)
    px, po, sz, code = _ptr(x), _ptr(out), x.itemsize, _CODES[x.dtype]

    def args(i, j):
        return px + i * n * sz, code, j - i, n, po + i * sz

    _over_rows(lambda *a: lib.mg_prod_rows(*a) or 1, out.size, x.size, args)
    return out


def prod_others(x, axis: int):
    """For each value of ``x``, the product of the others along ``axis`` (the exclusive
    products from both sides, in ``x``'s dtype and NumPy's order), or None."""
    if x.__class__ is not np.ndarray or x.dtype not in _SCAN or (lib := _lib()) is None:
        return None
    a = np.ascontiguousarray(x)
    out = np.empty(a.shape, a.dtype)
    outer, n, inner = _split(a.shape, axis)
    px, po, step, code = _ptr(a), _ptr(out), n * inner * a.itemsize, _CODES[a.dtype]

    def args(i, j):
        return px + i * step, code, j - i, n, inner, po + i * step

    if not _over_rows(lib.mg_prod_others, outer, a.size, args):
        raise MemoryError("prod: no memory for the running products")
    return out


_OPS = {"sum": 0, "prod": 1, "amax": 2, "amin": 3, "set": 4}


def _strides(a):
    return (ctypes.c_int64 * a.ndim)(*(s // a.itemsize for s in a.strides))


def scatter(out, index, src, dim: int, op: str) -> bool:
    """``out[target] op= src`` for every position of ``index`` along ``dim`` (scatter's
    positions, in index order; ``op``: sum, prod, amax, amin as NumPy's ufunc.at, or set),
    in place; False where the kernel does not apply. ``src`` may be strided or a Python
    number; ``out`` is C-contiguous; the index is in range (checked by the caller)."""
    if (
        out.__class__ is not np.ndarray
        or out.dtype not in _SCAN
        or not out.flags.c_contiguous
        or not 1 <= out.ndim <= 16
        or (lib := _lib()) is None
    ):
        return False
    if not isinstance(src, np.ndarray):
        src = np.broadcast_to(np.asarray(src, out.dtype), index.shape)
    elif src.dtype != out.dtype or src.ndim != out.ndim:
        return False
    idx = np.ascontiguousarray(index, np.int64)
    shape = (ctypes.c_int64 * idx.ndim)(*idx.shape)
    ok = lib.mg_scatter(_ptr(out), _ptr(idx), _ptr(src), _CODES[out.dtype], out.ndim, shape,
                        _strides(out), _strides(src), dim, _OPS[op])  # fmt: skip
    return bool(ok)


_BAG = {"sum": 0, "mean": 1, "max": 2}


def bag(w, ids, starts, psw, pad: int, mode: str):
    """embedding_bag of table ``w`` (V, D): ``(out (B, D), count (B,), arg (B, D) or
    None)`` for the bags ``ids[starts[b]:starts[b + 1]]`` less the ids equal to ``pad``
    (-1: none), or None (another dtype, an id outside the table)."""
    if w.__class__ is not np.ndarray or w.dtype not in _SCAN[:2] or (lib := _lib()) is None:
        return None
    if psw is not None and (psw.dtype != w.dtype or psw.__class__ is not np.ndarray):
        return None
    w = np.ascontiguousarray(w)
    psw = None if psw is None else np.ascontiguousarray(psw.reshape(-1))
    b, d = starts.shape[0] - 1, w.shape[1]
    out = np.empty((b, d), w.dtype)
    count = np.empty(b, np.int64)
    arg = np.empty((b, d), np.int64) if mode == "max" else None
    pw, pids, pst, pp = _ptr(w), _ptr(ids), _ptr(starts), None if psw is None else _ptr(psw)
    po, pa, pc, sz = _ptr(out), None if arg is None else _ptr(arg), _ptr(count), w.itemsize

    code, rows, bmode = _CODES[w.dtype], w.shape[0], _BAG[mode]

    def args(i, j):  # NOTE: bags [i, j): their starts from i; the ids stay where they are
        pai = None if pa is None else pa + i * d * 8
        return (pw, code, rows, d, pids, pst + i * 8, j - i, pp, pad, bmode, po + i * d * sz,
                pai, pc + i * 8)  # fmt: skip

    work = (int(starts[-1]) - int(starts[0])) * d
    return (out, count, arg) if _over_rows(lib.mg_bag, b, work, args) else None


def bag_backward(g, rows: int, ids, starts, psw, pad: int, mode: str, arg, count):
    """The table's gradient (rows, D) of ``bag`` for the gradient ``g`` (B, D) of its
    output, or None."""
    if g.__class__ is not np.ndarray or g.dtype not in _SCAN[:2] or (lib := _lib()) is None:
        return None
    g = np.ascontiguousarray(g)
    psw = None if psw is None else np.ascontiguousarray(psw.reshape(-1), g.dtype)
    gw = np.zeros((rows, g.shape[1]), g.dtype)
    ok = lib.mg_bag_bwd(_ptr(g), _CODES[g.dtype], g.shape[1], _ptr(ids), _ptr(starts),
                        starts.shape[0] - 1, None if psw is None else _ptr(psw), pad,
                        _BAG[mode], None if arg is None else _ptr(arg), _ptr(count),
                        _ptr(gw))  # fmt: skip
    if not ok:
        raise MemoryError("embedding_bag: no memory for a gradient row")
    return gw


def take(x, idx, axis: int):
    """``take_along_axis(x, idx, axis)`` for an ``idx`` of x's shape but along ``axis``
    (indices in range), in one C pass (NumPy's builds index arrays first), or None."""
    if x.__class__ is not np.ndarray or x.dtype.hasobject or (lib := _lib()) is None:
        return None
    a = np.ascontiguousarray(x)
    i = np.ascontiguousarray(idx, np.int64)
    out = np.empty(i.shape, a.dtype)
    outer, n, inner = _split(a.shape, axis)
    m, sz = i.shape[axis], a.itemsize
    pa, pi, po = _ptr(a), _ptr(i), _ptr(out)

    def args(r0, r1):
        return (pa + r0 * n * inner * sz, sz, r1 - r0, n, inner, pi + r0 * m * inner * 8, m,
                po + r0 * m * inner * sz)  # fmt: skip

    return out if _over_rows(lib.mg_take, outer, out.size, args) else None


def pdist2(x, g=None, d=None):
    """pdist with p = 2 of the rows of ``x`` (N, M): the distances (N (N - 1) / 2,) as
    manygrad's tensor formula rounds them; with ``g`` (their gradient) and ``d`` (them),
    the gradient of ``x``. None where the kernel does not apply."""
    if (
        x.__class__ is not np.ndarray
        or x.dtype not in _SCAN[:2]
        or x.ndim != 2
        or (lib := _lib()) is None
    ):
        return None
    a = np.ascontiguousarray(x)
    n, m = a.shape
    if g is None:
        d = np.empty(n * (n - 1) // 2, a.dtype)
        ok = lib.mg_pdist2(_ptr(a), _CODES[a.dtype], n, m, _ptr(d), None, None)
        out = d
    else:
        g = np.ascontiguousarray(g, a.dtype)
        out = np.zeros(a.shape, a.dtype)
        ok = lib.mg_pdist2(_ptr(a), _CODES[a.dtype], n, m, _ptr(d), _ptr(g), _ptr(out))
    if not ok:
        raise MemoryError(f"pdist: no memory for the gradient of {n} rows of {m}")
    return out


def logcumsumexp(x, axis: int, reverse: bool = False):
    """Running ``log(sum(exp))`` of a float32/float64 ``x`` along ``axis`` (from the end
    with ``reverse``), one value after the other in double as PyTorch's CPU kernel (its
    bits), or None."""
    if x.__class__ is not np.ndarray or x.dtype not in _SCAN[:2] or (lib := _lib()) is None:
        return None
    a = np.ascontiguousarray(x)
    y = np.empty(a.shape, a.dtype)
    outer, n, inner = _split(a.shape, axis)
    px, py, step, code = _ptr(a), _ptr(y), n * inner * a.itemsize, _CODES[a.dtype]

    def args(i, j):
        return px + i * step, py + i * step, code, j - i, n, inner, int(reverse)

    if not _over_rows(lib.mg_logcumsumexp, outer, a.size * 16, args):
        raise MemoryError("logcumsumexp: no memory for the running values")
    return y


def index_add(target, dim: int, index, values) -> bool:
    """``target[(slice(None),) * dim + (index,)] += values`` for a C-contiguous
    float32/float64/int64/int32 ``target``, a 1-d integer ``index`` and ``values`` of the
    picked shape and target's dtype, in index order (``np.add.at``'s: its bits), in place;
    False where the kernel does not apply (an index out of range included)."""
    if (
        target.__class__ is not np.ndarray
        or values.__class__ is not np.ndarray
        or values.dtype != target.dtype
        or not target.flags.c_contiguous
        or index.__class__ is not np.ndarray
        or index.ndim != 1
        or index.dtype.kind not in "iu"
        or not 0 <= dim < target.ndim
        or (code := _CODES.get(target.dtype)) is None
        or (lib := _lib()) is None
    ):
        return False
    outer, n, inner = _split(target.shape, dim)
    m = index.shape[0]
    if values.shape != target.shape[:dim] + (m,) + target.shape[dim + 1 :]:
        return False
    if m and (int(index.min()) < 0 or int(index.max()) >= n):
        return False
    idx = np.ascontiguousarray(index, np.int64)
    src = np.ascontiguousarray(values)
    pt, ps, sz = _ptr(target), _ptr(src), target.itemsize

    def args(i, j):
        return pt + i * n * inner * sz, code, j - i, n, inner, _ptr(idx), m, ps + i * m * inner * sz

    return _over_rows(lib.mg_index_add, outer, src.size, args)


_PMODE = {0.0: 0, 1.0: 1, float("inf"): 3}


def pdist(x, p: float, g=None, d=None):
    """pdist of the rows of ``x`` (N, M) for a ``p`` >= 0 other than 2 (``pdist2``'s
    counterpart, as the tensor formula rounds each distance), or with ``g`` and ``d`` the
    gradient of ``x``; None where the kernel does not apply."""
    if (
        x.__class__ is not np.ndarray
        or x.dtype not in _SCAN[:2]
        or x.ndim != 2
        or not p >= 0
        or (lib := _lib()) is None
    ):
        return None
    a = np.ascontiguousarray(x)
    n, m = a.shape
    mode = _PMODE.get(float(p), 2)
    if g is None:
        d = np.empty(n * (n - 1) // 2, a.dtype)
        ok = lib.mg_pdistp(_ptr(a), _CODES[a.dtype], n, m, float(p), mode, _ptr(d), None, None)
        out = d
    else:
        g = np.ascontiguousarray(g, a.dtype)
        out = np.zeros(a.shape, a.dtype)
        if mode == 0:
            return out
        ok = lib.mg_pdistp(_ptr(a), _CODES[a.dtype], n, m, float(p), mode, _ptr(d), _ptr(g),
                           _ptr(out))  # fmt: skip
    if not ok:
        raise MemoryError(f"pdist: no memory for the gradient of {n} rows of {m}")
    return out
