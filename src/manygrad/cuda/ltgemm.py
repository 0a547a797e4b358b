"""Matrix products on cuBLASLt called directly (nvmath-python's low-level bindings), safe to
capture in a CUDA graph.

CuPy's cuBLAS wrappers refuse stream capture, and nvmath's ``Matmul`` object records and
queries CUDA events around each call (``CUDA_ERROR_CAPTURED_EVENT`` inside a capture, seen on
an H200). This path calls ``cublasLtMatmul`` with a handle and a workspace of its own, host
scalars and a plan cached per problem: no events, no synchronisation, and no allocation but
the result's. It serves every product (``backend.matmul``) while a CUDA graph captures.

Row-major arrays in a column-major library: cuBLASLt reads a matrix as columns. A row-major
``(r, c)`` array with row stride ``ld`` is, read as columns, its transpose ``(c, r)`` with
leading dimension ``ld``; so ``D = A @ B`` (row-major) is computed as ``Dᵀ = Bᵀ Aᵀ``: the
library's first operand is the caller's ``b``, its second the caller's ``a``, and ``Dᵀ`` read
as columns is ``D`` row-major. A transposed view (``w.T``) is column-major already and
becomes the operation ``T`` on its memory. The bias epilogue adds one value per row of
``Dᵀ``, i.e. per output column of ``D``: ``x @ w.T + b`` of ``Linear`` fuses as it is.

:func:`describe` (the plan as data) runs without a GPU; the tests run the whole path on
NumPy memory against a stand-in for the library that computes what ``cublasLtMatmul``
defines (``_lt_standin.FakeLt``: column-major reads, ``op``, leading dimensions, strided
batches, the bias epilogue), for every layout an array can have; NumPy and fake-GPU arrays
go to the stand-in only. The library itself runs only on a GPU.

UNVERIFIED: not run on a GPU yet. It serves every product inside real captures, which are
off unless ``MANYGRAD_CUDA_GRAPHS=1`` (``scripts/cuda_graphs_check.py`` checks it), and,
as the fast path ``cublaslt.direct`` (off until a GPU run verified it), eager bf16/fp16
products, which CuPy computes through float32 copies.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .. import backend
from ..fakegpu import FakeArray
from ..kernels.launch import UnsupportedCallError

INSTALL = "pip install 'manygrad[cuda12]' (or [cuda13]: CuPy, nvmath-python, cuDNN)"
WORKSPACE_BYTES = 32 << 20  # cuBLAS's advice for Hopper; smaller GPUs need less
OP_N, OP_T = 0, 1

# dtype -> (cudaDataType, cublasComputeType, scale type's NumPy dtype, cudaDataType of scale)
_TYPES = {
    "float32": (0, 68, np.float32, 0),  # CUDA_R_32F, CUBLAS_COMPUTE_32F
    "float64": (1, 70, np.float64, 1),  # CUDA_R_64F, CUBLAS_COMPUTE_64F
    "float16": (2, 68, np.float32, 0),  # CUDA_R_16F, fp32 accumulation
    "bfloat16": (14, 68, np.float32, 0),  # CUDA_R_16BF, fp32 accumulation
}
_COMPUTE_TF32 = 77  # CUBLAS_COMPUTE_32F_FAST_TF32, only when asked (MANYGRAD_TF32=1)


@dataclass(frozen=True)
class Operand:
    """One matrix as cuBLASLt reads it: column-major ``rows x cols`` with leading dimension
    ``ld``, ``op`` (N or T) applied, ``batch_stride`` elements between batches (0: one)."""

    op: int
    rows: int
    cols: int
    ld: int
    batch_stride: int


@dataclass(frozen=True)
class Problem:
    """A product ``D = A @ B`` (row-major, ``(batch, m, k) @ (batch, k, n)``) as one
    ``cublasLtMatmul``: ``lib_a`` is the caller's ``b``, ``lib_b`` the caller's ``a``."""

    m: int
    n: int
    k: int
    batch: int
    dtype: str
    lib_a: Operand
    lib_b: Operand
    lib_d: Operand
    bias: bool


def _as_columns(rows: int, cols: int, s_row: int, s_col: int):
    """How a row-major ``(rows, cols)`` matrix with element strides ``(s_row, s_col)`` reads
    as columns: ``("rowmajor", ld)``, ``("colmajor", ld)`` or None (needs a copy)."""
    # NOTE: the stride of a dimension of size 1 is never used: pick the one that fits
    if rows == 1:
        s_row = max(cols, 1) if s_col == 1 else 1
    if cols == 1:
        s_col = max(rows, 1) if s_row == 1 else 1
    if s_col == 1 and s_row >= max(cols, 1):
        return "rowmajor", max(s_row, 1)
    if s_row == 1 and s_col >= max(rows, 1):
        return "colmajor", max(s_col, 1)
    return None


def _batch_stride(shape, strides) -> int | None:
    """One element stride that walks all leading (batch) dims in order, else None."""
    dims = [(n, s) for n, s in zip(shape, strides, strict=True) if n != 1]
    if not dims:
        return 0
    for (_, s_outer), (n_inner, s_inner) in zip(dims, dims[1:], strict=False):
        if s_outer != s_inner * n_inner:
            return None
    return dims[-1][1]


def _operand(x_shape, x_strides, itemsize):
    """The ``Operand`` for a caller matrix used as the library's ``a`` (it must read as
    ``Bᵀ``) or ``b`` (``Aᵀ``); None when a copy is needed."""
    *bshape, r, c = x_shape
    es = [s // itemsize for s in x_strides]
    if any(s * itemsize != t for s, t in zip(es, x_strides, strict=True)) or min(es, default=0) < 0:
        return None
    how = _as_columns(r, c, es[-2], es[-1])
    bs = _batch_stride(bshape, es[:-2]) if bshape else 0
    if how is None or bs is None:
        return None
    kind, ld = how
    if bs == 0 and math.prod(bshape) > 1:
        return None  # NOTE: a broadcast batch (stride 0): materialised rather than trusted
    # the library needs op(X) = Xᵀ (r x c caller -> c x r): row-major memory is Xᵀ already
    if kind == "rowmajor":
        return Operand(OP_N, c, r, ld, bs)
    return Operand(OP_T, r, c, ld, bs)


def describe(a_shape, a_strides, b_shape, b_strides, dtype, itemsize, bias=False):
    """The ``Problem`` of ``a @ b`` for arrays of these shapes and byte strides, or
    ``(None, which)`` naming the operands ("a", "b") that need a contiguous copy first.

    Batch dims must be equal (:func:`plan_arrays` broadcasts them, and folds a batched a
    over a 2-D b into one product).
    """
    dtype = str(dtype)
    if dtype not in _TYPES:
        raise UnsupportedCallError(f"cuBLASLt products take {', '.join(_TYPES)}, not {dtype}")
    if len(a_shape) < 2 or len(b_shape) < 2 or a_shape[-1] != b_shape[-2]:
        raise UnsupportedCallError(f"shapes {tuple(a_shape)} @ {tuple(b_shape)} do not multiply")
    m, k, n = a_shape[-2], a_shape[-1], b_shape[-1]
    batch = math.prod(a_shape[:-2])
    lb = _operand(b_shape, b_strides, itemsize)
    la = _operand(a_shape, a_strides, itemsize)
    need = tuple(w for w, o in (("a", la), ("b", lb)) if o is None)
    if need:
        return None, need
    d = Operand(OP_N, n, m, n, m * n if batch > 1 else 0)
    return Problem(m, n, k, batch, dtype, lb, la, d, bool(bias)), ()


def plan_arrays(xp, a, b):
    """``(a, b, out_shape)``: the arrays the product reads (a contiguous
    copy only of an operand no stride describes; broadcast batch dims materialised), with a
    batched a over a 2-D b folded into one product when a's rows are contiguous."""
    out_shape = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2])) + (a.shape[-2], b.shape[-1])
    if b.ndim == 2 and a.ndim > 2:
        if not a.flags.c_contiguous:
            a = xp.ascontiguousarray(a)
        return a.reshape(-1, a.shape[-1]), b, out_shape  # NOTE: (B*M, K) @ (K, N), one GEMM
    if a.ndim > 2 or b.ndim > 2:
        bshape = out_shape[:-2]
        if a.shape[:-2] != bshape:
            a = xp.ascontiguousarray(xp.broadcast_to(a, bshape + a.shape[-2:]))
        if b.shape[:-2] != bshape:
            b = xp.ascontiguousarray(xp.broadcast_to(b, bshape + b.shape[-2:]))
    return a, b, out_shape


# ------------------------------------------------------------------------- the library


def nvmath_missing() -> str:
    """ "" when nvmath-python's cuBLASLt bindings import, else why not and what to install."""
    try:
        from nvmath.bindings import cublasLt  # noqa: F401
    except Exception as e:
        return f"nvmath-python is not usable ({type(e).__name__}: {e}); {INSTALL}"
    return ""


def _lib():
    from nvmath.bindings import cublasLt

    return cublasLt


def _ptr(a) -> int:
    t = type(a)
    if t is np.ndarray:
        return a.ctypes.data
    if t is FakeArray:  # NOTE: host memory, for the stand-in library only
        return a._a.ctypes.data
    return a.data.ptr


def _alignment(*offsets: int) -> int:
    """The largest power of two up to 256 dividing every address or byte offset (0: any)."""
    al = 256
    for x in offsets:
        while x % al:
            al //= 2
    return al


class _Plan:
    """A described product's descriptors and the algorithm cuBLASLt's heuristic picked."""

    def __init__(self, lib, handle, p: Problem, align: tuple[int, int, int], ws_bytes: int):
        dt, compute, scale_np, scale_type = _TYPES[p.dtype]
        if p.dtype == "float32" and os.environ.get("MANYGRAD_TF32", "") == "1":
            compute = _COMPUTE_TF32
        self.lib, self.problem = lib, p
        self.scale_np = scale_np
        self._keep: list = []  # host buffers whose addresses the library holds
        self.desc = lib.matmul_desc_create(compute, scale_type)
        self._set(lib.matmul_desc_set_attribute, self.desc, lib.MatmulDescAttribute.TRANSA,
                  np.int32(p.lib_a.op))  # fmt: skip
        self._set(lib.matmul_desc_set_attribute, self.desc, lib.MatmulDescAttribute.TRANSB,
                  np.int32(p.lib_b.op))  # fmt: skip
        if p.bias:
            self._set(lib.matmul_desc_set_attribute, self.desc, lib.MatmulDescAttribute.EPILOGUE,
                      np.uint32(lib.Epilogue.BIAS))  # fmt: skip
        self.layouts = []
        for o in (p.lib_a, p.lib_b, p.lib_d):
            lay = lib.matrix_layout_create(dt, o.rows, o.cols, o.ld)
            if p.batch > 1:
                self._set(lib.matrix_layout_set_attribute, lay,
                          lib.MatrixLayoutAttribute.BATCH_COUNT, np.int32(p.batch))  # fmt: skip
                self._set(lib.matrix_layout_set_attribute, lay,
                          lib.MatrixLayoutAttribute.STRIDED_BATCH_OFFSET,
                          np.int64(o.batch_stride))  # fmt: skip
            self.layouts.append(lay)
        pref = lib.matmul_preference_create()
        try:
            pa = lib.MatmulPreferenceAttribute
            self._set(lib.matmul_preference_set_attribute, pref, pa.MAX_WORKSPACE_BYTES,
                      np.uint64(ws_bytes))  # fmt: skip
            # NOTE: C is D (beta 0): both get D's alignment
            for attr, al in zip((pa.MIN_ALIGNMENT_A_BYTES, pa.MIN_ALIGNMENT_B_BYTES,
                                 pa.MIN_ALIGNMENT_C_BYTES, pa.MIN_ALIGNMENT_D_BYTES),
                                (*align, align[2]), strict=True):  # fmt: skip
                self._set(lib.matmul_preference_set_attribute, pref, attr, np.uint32(al))
            self.result = np.zeros(1, lib.matmul_heuristic_result_dtype)
            count = np.zeros(1, np.int32)
            la, lb, ld = self.layouts
            lib.matmul_algo_get_heuristic(handle, self.desc, la, lb, ld, ld, pref, 1,
                                          self.result.ctypes.data, count.ctypes.data)  # fmt: skip
        finally:
            lib.matmul_preference_destroy(pref)
        if int(count[0]) < 1:
            self.free()
            raise UnsupportedCallError(f"cuBLASLt has no algorithm for {p}")
        self.workspace_size = int(self.result["workspace_size"][0])
        self.alpha, self.beta = np.ones(1, scale_np), np.zeros(1, scale_np)
        self.bias_ptr = np.zeros(1, np.int64)  # NOTE: set per call: the address it holds

    def _set(self, setter, obj, attr, value):
        buf = np.asarray([value])
        self._keep.append(buf)
        setter(obj, attr, buf.ctypes.data, buf.nbytes)

    def run(self, handle, a_ptr, b_ptr, d_ptr, bias_ptr, ws_ptr, ws_bytes, stream_ptr):
        lib = self.lib
        if self.problem.bias:
            self.bias_ptr[0] = bias_ptr
            lib.matmul_desc_set_attribute(self.desc, lib.MatmulDescAttribute.BIAS_POINTER,
                                          self.bias_ptr.ctypes.data, 8)  # fmt: skip
        la, lb, ld = self.layouts
        # NOTE: the library's a is the caller's b (see the module's docstring); C = D, beta 0
        lib.matmul(handle, self.desc, self.alpha.ctypes.data, b_ptr, la, a_ptr, lb,
                   self.beta.ctypes.data, d_ptr, ld, d_ptr, ld, self.result.ctypes.data,
                   ws_ptr, ws_bytes, stream_ptr)  # fmt: skip

    def free(self):
        for lay in getattr(self, "layouts", []):
            self.lib.matrix_layout_destroy(lay)
        self.layouts = []
        if getattr(self, "desc", None):
            self.lib.matmul_desc_destroy(self.desc)
            self.desc = None


class LtContext:
    """Handles (per device), workspaces (per device and stream) and plans (least recently
    used out) of the direct cuBLASLt path."""

    def __init__(self, maxsize: int = 256, lib=None):
        self.maxsize = maxsize
        self._lib = lib
        self.handles: dict = {}
        self.workspaces: dict = {}
        self.plans: OrderedDict = OrderedDict()
        self.plans_built = 0

    @property
    def lib(self):
        if self._lib is None:
            self._lib = _lib()
        return self._lib

    def handle(self, dev):
        h = self.handles.get(dev)
        if h is None:
            h = self.handles[dev] = self.lib.create()
        return h

    def workspace(self, xp, dev, stream_ptr: int):
        """The workspace of (device, stream): made once, outside any capture in practice (a
        capture's warm-up runs first); graphs replayed later keep using its address."""
        key = (dev, stream_ptr)
        ws = self.workspaces.get(key)
        if ws is None:
            ws = self.workspaces[key] = xp.empty(WORKSPACE_BYTES, dtype=xp.uint8)
        return ws

    def plan(self, dev, p: Problem, align):
        key = (dev, p, align)
        pl = self.plans.get(key)
        if pl is None:
            pl = _Plan(self.lib, self.handle(dev), p, align, WORKSPACE_BYTES)
            self.plans_built += 1
            self.plans[key] = pl
            if len(self.plans) > self.maxsize:
                _, old = self.plans.popitem(last=False)
                old.free()
        else:
            self.plans.move_to_end(key)
        return pl


_CTX = LtContext()


def matmul(a, b, bias=None, *, ctx: LtContext | None = None, stream_ptr: int | None = None):
    """``a @ b`` (+ ``bias`` over the last dim) on cuBLASLt without events: capture-safe.

    Args:
        a, b: ``(..., M, K)`` and ``(..., K, N)`` arrays of one dtype (float32, float64,
            float16, bfloat16) on one GPU; batch dims broadcast as ``matmul``'s.
        bias: ``(N,)`` of the same dtype, fused as cuBLASLt's BIAS epilogue.
        ctx, stream_ptr: the handles/plans and stream to use (default: the module's own and
            CuPy's current stream).

    Raises ``UnsupportedCallError`` for dtypes, shapes or problems cuBLASLt has no
    algorithm for (the caller runs its reference instead, or reports it in a capture).
    """
    ctx = ctx or _CTX
    host = type(a) is np.ndarray or type(a) is FakeArray
    if host and not getattr(ctx._lib, "HOST_MEMORY", False):
        raise UnsupportedCallError(
            "cuBLASLt reads GPU memory: NumPy and fake-GPU arrays take a stand-in library, "
            "LtContext(lib=manygrad.cuda._lt_standin.FakeLt())"
        )
    if a.dtype != b.dtype or (bias is not None and bias.dtype != a.dtype):
        raise UnsupportedCallError(f"operands of dtypes {a.dtype} and {b.dtype} (cast first)")
    xp = backend.array_module(a)
    a2, b2, out_shape = plan_arrays(xp, a, b)
    out = xp.empty(out_shape, dtype=a.dtype)
    if 0 in out.shape:
        return out
    if a.shape[-1] == 0:
        out[...] = 0 if bias is None else bias
        return out
    has_bias = bias is not None
    p, need = describe(a2.shape, a2.strides, b2.shape, b2.strides, a.dtype, a.itemsize, has_bias)
    if p is None:
        a2 = xp.ascontiguousarray(a2) if "a" in need else a2
        b2 = xp.ascontiguousarray(b2) if "b" in need else b2
        p, _ = describe(a2.shape, a2.strides, b2.shape, b2.strides, a.dtype, a.itemsize, has_bias)
    if host:
        dev, stream_ptr = (a._dev if type(a) is FakeArray else 0), stream_ptr or 0
    else:
        cp = backend.cuda_module()
        dev = cp.cuda.Device().id
        if stream_ptr is None:
            stream_ptr = cp.cuda.get_current_stream().ptr
    ws = ctx.workspace(xp, dev, stream_ptr)
    bias_ptr = _ptr(bias) if bias is not None else 0
    align = tuple(
        _alignment(_ptr(x), o.batch_stride * a.itemsize)
        for x, o in ((b2, p.lib_a), (a2, p.lib_b), (out, p.lib_d))
    )
    pl = ctx.plan(dev, p, align)
    pl.run(ctx.handle(dev), _ptr(a2), _ptr(b2), _ptr(out), bias_ptr, _ptr(ws),
           min(int(ws.nbytes), WORKSPACE_BYTES), stream_ptr)  # fmt: skip
    return out


def reference(a, b, bias=None):
    """The reference of :func:`matmul`: the product in float32 (CuPy's or NumPy's), cast
    back to the operands' dtype (what ``backend.matmul`` gives 16-bit operands)."""
    xp = backend.array_module(a)
    f32 = xp.float32
    r = xp.matmul(a.astype(f32, copy=False), b.astype(f32, copy=False))
    if bias is not None:
        r += bias.astype(f32, copy=False)
    return r.astype(a.dtype, copy=False)


__all__ = ["Operand", "Problem", "describe", "plan_arrays", "matmul", "reference", "LtContext"]
