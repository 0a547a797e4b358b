"""A stand-in for nvmath-python's ``cublasLt`` bindings that computes on host memory.

``ltgemm`` calls cuBLASLt with raw addresses. ``FakeLt`` takes the same calls: it keeps
descriptors as dicts, reads attribute values from the host addresses it is given, and
computes what ``cublasLtMatmul`` defines by reading raw memory at the operands' addresses as
columns (``op``, ``ld``, strided batches, the BIAS epilogue). So ``ltgemm`` runs end to end
without a GPU on NumPy or fake-GPU arrays, given ``LtContext(lib=FakeLt())``: the tests check
every layout with it (``tests/cuda/test_ltgemm.py``; ``test_ltgemm_conformance.py`` holds it
to the installed bindings' signatures, enums and attribute widths), and
``scripts/cuda_graphs_check.py --device fakegpu`` uses it for a dry run.

Example:
    >>> import numpy as np
    >>> from manygrad.cuda import ltgemm
    >>> a = np.ones((4, 3), np.float32)
    >>> float(ltgemm.matmul(a, a.T, ctx=ltgemm.LtContext(lib=FakeLt()))[0, 0])
    3.0
"""

from __future__ import annotations

import ctypes
import enum

import ml_dtypes
import numpy as np

_NP = {0: np.float32, 1: np.float64, 2: np.float16, 14: ml_dtypes.bfloat16}


def _read(addr: int, nbytes: int, dtype) -> np.ndarray:
    return np.frombuffer((ctypes.c_char * nbytes).from_address(addr), dtype=dtype)


class FakeLt:
    """The bindings' functions and enums that ``ltgemm`` uses, on host memory.

    Args:
        algorithms: how many algorithms the heuristic finds (0: none, a refusal).
    """

    HOST_MEMORY = True  # ltgemm gives host arrays (NumPy, fakegpu) to this library only

    class MatmulDescAttribute(enum.IntEnum):
        TRANSA = 3
        TRANSB = 4
        EPILOGUE = 7
        BIAS_POINTER = 8

    class MatrixLayoutAttribute(enum.IntEnum):
        BATCH_COUNT = 5
        STRIDED_BATCH_OFFSET = 6

    class MatmulPreferenceAttribute(enum.IntEnum):
        MAX_WORKSPACE_BYTES = 1
        MIN_ALIGNMENT_A_BYTES = 5
        MIN_ALIGNMENT_B_BYTES = 6
        MIN_ALIGNMENT_C_BYTES = 7
        MIN_ALIGNMENT_D_BYTES = 8

    class Epilogue(enum.IntEnum):
        DEFAULT = 1
        BIAS = 4

    matmul_heuristic_result_dtype = np.dtype(
        [("algo", "<u8", (8,)), ("workspace_size", "<u8"), ("state", "<i4"),
         ("waves_count", "<f4"), ("reserved", "<i4", (4,))]
    )  # fmt: skip
    _ATTR_DT = {("desc", 3): np.int32, ("desc", 4): np.int32, ("desc", 7): np.uint32,
                ("desc", 8): np.int64, ("layout", 5): np.int32, ("layout", 6): np.int64,
                ("pref", 1): np.uint64}  # fmt: skip

    def __init__(self, algorithms: int = 1):
        self.objs: dict[int, dict] = {}
        self.next = 100
        self.calls: list[str] = []
        self.prefs: list[dict] = []
        self.algos: set[int] = set()  # addresses of the heuristic's results
        self.algorithms = algorithms

    def _new(self, **kw) -> int:
        self.next += 1
        self.objs[self.next] = kw
        return self.next

    def _attr(self, obj, attr, buf, size):
        dt = self._ATTR_DT.get((self.objs[obj]["kind"], int(attr)), np.uint32)
        assert np.dtype(dt).itemsize == size, (attr, size)
        self.objs[obj][int(attr)] = _read(buf, size, dt)[0].item()

    def create(self):
        self.calls.append("create")
        return self._new(kind="handle")

    def matmul_desc_create(self, compute, scale):
        self.calls.append("desc")
        return self._new(kind="desc", compute=compute, scale=scale)

    matmul_desc_set_attribute = _attr
    matrix_layout_set_attribute = _attr
    matmul_preference_set_attribute = _attr

    def matrix_layout_create(self, dtype, rows, cols, ld):
        assert ld >= max(1, rows), "cuBLASLt requires ld >= rows"
        return self._new(kind="layout", dtype=dtype, rows=rows, cols=cols, ld=ld)

    def matmul_preference_create(self):
        return self._new(kind="pref")

    def matmul_preference_destroy(self, p):
        self.prefs.append(self.objs.pop(p))

    def matrix_layout_destroy(self, lay):
        self.objs.pop(lay)

    def matmul_desc_destroy(self, d):
        self.objs.pop(d)

    def matmul_algo_get_heuristic(self, h, desc, la, lb, lc, ld, pref, want, results, count):
        self.calls.append("heuristic")
        assert self.objs[h]["kind"] == "handle" and want == 1
        n = min(want, self.algorithms)
        res = _read(results, self.matmul_heuristic_result_dtype.itemsize,
                    self.matmul_heuristic_result_dtype)  # fmt: skip
        res = np.ndarray(1, self.matmul_heuristic_result_dtype, buffer=res.copy())
        res["workspace_size"] = 1024
        ctypes.memmove(results, res.ctypes.data, res.nbytes)
        ctypes.memmove(count, np.array([n], np.int32).ctypes.data, 4)
        self.algos.add(results)  # NOTE: a cached plan passes an earlier call's result

    def _matrix(self, addr, lay, batch):
        it = np.dtype(_NP[lay["dtype"]]).itemsize
        stride = lay.get(6, 0) if batch > 1 else 0
        last = (batch - 1) * stride + (lay["cols"] - 1) * lay["ld"] + lay["rows"]
        mem = _read(addr, last * it, _NP[lay["dtype"]])
        idx = (np.arange(batch)[:, None, None] * stride + np.arange(lay["rows"])[None, :, None]
               + np.arange(lay["cols"])[None, None, :] * lay["ld"])  # fmt: skip
        return mem, idx

    def matmul(self, h, desc, alpha, a, adesc, b, bdesc, beta, c, cdesc, d, ddesc, algo,
               ws, ws_size, stream):  # fmt: skip
        self.calls.append("matmul")
        dsc, la, lb, ld = (self.objs[x] for x in (desc, adesc, bdesc, ddesc))
        scale = np.float64 if dsc["scale"] == 1 else np.float32
        assert _read(alpha, np.dtype(scale).itemsize, scale)[0] == 1
        assert _read(beta, np.dtype(scale).itemsize, scale)[0] == 0
        assert algo in self.algos and ws != 0 and 1024 <= ws_size
        assert c == d and cdesc == ddesc
        batch = la.get(5, 1)
        assert lb.get(5, 1) == batch and ld.get(5, 1) == batch
        ma, ia = self._matrix(a, la, batch)
        mb, ib = self._matrix(b, lb, batch)
        x, y = ma[ia].astype(np.float64), mb[ib].astype(np.float64)
        x = x if dsc.get(3, 0) == 0 else x.transpose(0, 2, 1)  # op(A), op(B) as columns
        y = y if dsc.get(4, 0) == 0 else y.transpose(0, 2, 1)
        r = x @ y
        if dsc.get(7, 1) == self.Epilogue.BIAS:
            bdt = _NP[ld["dtype"]]
            bias = _read(dsc[8], r.shape[1] * np.dtype(bdt).itemsize, bdt)
            r = r + bias.astype(np.float64)[None, :, None]
        md, idd = self._matrix(d, ld, batch)
        out = np.ndarray(md.shape, md.dtype, buffer=(ctypes.c_char * md.nbytes).from_address(d))
        out[idd] = r.astype(md.dtype)
