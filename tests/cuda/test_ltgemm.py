"""The capture-safe cuBLASLt product (``manygrad.cuda.ltgemm``) on NumPy memory.

``FakeLt`` stands in for nvmath's ``cublasLt`` bindings: it keeps descriptors as dicts,
reads attribute values from the host addresses it is given, and computes what
``cublasLtMatmul`` defines by reading raw memory at the operands' addresses as columns
(``op``, ``ld``, strided batches, the BIAS epilogue). So every layout ``ltgemm`` describes
(contiguous, transposed views, row slices, batches, folds, broadcasts) is checked against
``np.matmul`` without a GPU, together with the calls' order and arguments.
"""

from __future__ import annotations

import ctypes
import enum

import ml_dtypes
import numpy as np
import pytest

from manygrad.cuda import ltgemm
from manygrad.kernels.launch import UnsupportedCallError

_NP = {0: np.float32, 1: np.float64, 2: np.float16, 14: ml_dtypes.bfloat16}


def _read(addr: int, nbytes: int, dtype) -> np.ndarray:
    return np.frombuffer((ctypes.c_char * nbytes).from_address(addr), dtype=dtype)


class FakeLt:
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
        self.heuristic_results = results

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
        assert algo == self.heuristic_results and ws != 0 and 1024 <= ws_size
        assert c == d and cdesc == ddesc
        batch = la.get(5, 1)
        assert lb.get(5, 1) == batch and ld.get(5, 1) == batch
        ma, ia = self._matrix(a, la, batch)
        mb, ib = self._matrix(b, lb, batch)
        A, B = ma[ia].astype(np.float64), mb[ib].astype(np.float64)
        A = A if dsc.get(3, 0) == 0 else A.transpose(0, 2, 1)
        B = B if dsc.get(4, 0) == 0 else B.transpose(0, 2, 1)
        D = A @ B
        if dsc.get(7, 1) == self.Epilogue.BIAS:
            bias = _read(dsc[8], D.shape[1] * np.dtype(_NP[ld["dtype"]]).itemsize, _NP[ld["dtype"]])
            D = D + bias.astype(np.float64)[None, :, None]
        md, idd = self._matrix(d, ld, batch)
        out = np.ndarray(md.shape, md.dtype, buffer=(ctypes.c_char * md.nbytes).from_address(d))
        out[idd] = D.astype(md.dtype)


def _run(a, b, bias=None, lib=None):
    lib = lib or FakeLt()
    ctx = ltgemm.LtContext(lib=lib)
    return ltgemm.matmul(a, b, bias, ctx=ctx, stream_ptr=0), lib, ctx


def _r(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


LAYOUTS = {
    "contiguous": lambda: (_r((5, 7)), _r((7, 3), 1)),
    "b transposed view (Linear)": lambda: (_r((5, 7)), _r((3, 7), 1).T),
    "a transposed view": lambda: (_r((7, 5)).T, _r((7, 3), 1)),
    "both transposed": lambda: (_r((7, 5)).T, _r((3, 7), 1).T),
    "row slices (ld > cols)": lambda: (_r((5, 12))[:, 2:9], _r((7, 10), 1)[:, :3]),
    "column-major slices": lambda: (_r((9, 6)).T[:, 1:8], _r((4, 8), 1).T[1:8, :3]),
    "vector rows": lambda: (_r((1, 7)), _r((7, 1), 1)),
    "strided column (copy)": lambda: (_r((5, 14))[:, ::2], _r((7, 3), 1)),
    "negative stride (copy)": lambda: (_r((5, 7))[::-1], _r((7, 3), 1)),
    "batched": lambda: (_r((4, 5, 7)), _r((4, 7, 3), 1)),
    "batched, b transposed": lambda: (_r((4, 5, 7)), _r((4, 3, 7), 1).transpose(0, 2, 1)),
    "batched over 2-D b (folded)": lambda: (_r((2, 3, 5, 7)), _r((7, 3), 1)),
    "batched non-contiguous over 2-D b": lambda: (_r((5, 4, 7)).transpose(1, 0, 2), _r((7, 3), 1)),
    "2-D a over batched b (broadcast)": lambda: (_r((5, 7)), _r((4, 7, 3), 1)),
    "broadcast batch dims": lambda: (_r((2, 1, 5, 7)), _r((1, 3, 7, 4), 1)),
    "batch of heads (attention)": lambda: (_r((2, 3, 6, 4)), _r((2, 3, 6, 4), 1).swapaxes(-1, -2)),
    "expanded batch (stride 0)": lambda: (
        _r((5, 7))[None].repeat(1, 0).repeat(3, 0),
        np.broadcast_to(_r((7, 3), 1), (3, 7, 3)),
    ),
    "batch slice": lambda: (_r((6, 5, 7))[::2], _r((6, 7, 3), 1)[1::2]),
}


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_every_layout_equals_matmul(name):
    a, b = LAYOUTS[name]()
    out, lib, _ = _run(a, b)
    np.testing.assert_allclose(out, np.matmul(a, b), rtol=1e-5, atol=1e-5)
    assert out.shape == np.matmul(a, b).shape and lib.calls.count("matmul") == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, ml_dtypes.bfloat16])
def test_dtypes_and_bias_epilogue(dtype):
    x, w, b = _r((6, 8), dtype=dtype), _r((4, 8), 1, dtype), _r((4,), 2, dtype)
    out, lib, _ = _run(x, w.T, b)  # Linear: x @ w.T + b, the bias per output feature
    want = x.astype(np.float64) @ w.T.astype(np.float64) + b.astype(np.float64)
    tol = 1e-6 if dtype == np.float64 else 2e-2
    assert out.dtype == dtype
    np.testing.assert_allclose(out.astype(np.float64), want, rtol=tol, atol=tol)


def test_plans_are_cached_per_problem_and_the_handle_made_once():
    lib = FakeLt()
    ctx = ltgemm.LtContext(lib=lib)
    a, b = _r((5, 7)), _r((7, 3), 1)
    for _ in range(3):
        ltgemm.matmul(a, b, ctx=ctx, stream_ptr=0)
    ltgemm.matmul(_r((2, 5, 7)), _r((2, 7, 3)), ctx=ctx, stream_ptr=0)
    assert lib.calls.count("create") == 1 and lib.calls.count("heuristic") == 2
    assert ctx.plans_built == 2 and lib.calls.count("matmul") == 4


def test_refusals_name_the_reason():
    with pytest.raises(UnsupportedCallError, match="int64"):
        _run(np.ones((2, 2), np.int64), np.ones((2, 2), np.int64))
    with pytest.raises(UnsupportedCallError, match="dtypes"):
        _run(_r((2, 2)), _r((2, 2)).astype(np.float64))
    with pytest.raises(UnsupportedCallError, match="no algorithm"):
        _run(_r((2, 3)), _r((3, 2)), lib=FakeLt(algorithms=0))


def test_empty_and_k0_products():
    out, lib, _ = _run(_r((0, 4)), _r((4, 3)))
    assert out.shape == (0, 3) and "matmul" not in lib.calls
    out, _, _ = _run(_r((2, 0)), _r((0, 3)), _r((3,)))
    np.testing.assert_array_equal(out, np.broadcast_to(_r((3,)), (2, 3)))


def test_the_preference_carries_workspace_and_alignments():
    a = _r((8, 16))[:, 1:]  # starts 4 bytes into its buffer
    _, lib, _ = _run(a, _r((15, 8), 1))
    (pref,) = lib.prefs
    assert pref[1] == ltgemm.WORKSPACE_BYTES
    assert pref[6] == 4  # the library's B is the caller's a
    assert pref[5] >= 16 and pref[7] == pref[8] >= 16  # b and the fresh output


def test_alignment_of_addresses_and_offsets():
    assert ltgemm._alignment(4096, 0) == 256
    assert ltgemm._alignment(4096 + 4, 4096) == 4
    assert ltgemm._alignment(4096, 96) == 32


@pytest.fixture
def fake_ctx(monkeypatch):
    ctx = ltgemm.LtContext(lib=FakeLt())
    monkeypatch.setattr(ltgemm, "_CTX", ctx)
    monkeypatch.setattr(ltgemm, "nvmath_missing", lambda: "")
    return ctx


@pytest.mark.parametrize(
    "sa,sb", [((7,), (7,)), ((7,), (7, 3)), ((5, 7), (7,)), ((4, 5, 7), (7,)), ((7,), (4, 7, 3))]
)
def test_capture_products_take_vectors_as_matmul_does(fake_ctx, sa, sb):
    from manygrad.cuda import graphs

    a, b = _r(sa), _r(sb, 1)
    got = graphs.capture_matmul(a, b)
    np.testing.assert_allclose(got, np.matmul(a, b), rtol=1e-5, atol=1e-5)
    assert np.shape(got) == np.matmul(a, b).shape


def test_capture_product_refusal_names_the_product(fake_ctx):
    from manygrad.cuda import graphs
    from manygrad.errors import CaptureError

    with pytest.raises(CaptureError, match=r"\(2, 3\) @ \(3, 2\).*eagerly"):
        graphs.capture_matmul(np.ones((2, 3), np.int32), np.ones((3, 2), np.int32))


def test_capture_einsum_row_products():
    from manygrad.cuda import graphs
    from manygrad.errors import CaptureError

    x, y = _r((6, 5)), _r((6, 5), 1)
    np.testing.assert_allclose(
        graphs.capture_einsum(np, "ij,ij->i", x, y), np.einsum("ij,ij->i", x, y), rtol=1e-6
    )
    g, p = _r((2, 3, 4, 5)), _r((2, 3, 4, 5), 1)
    np.testing.assert_allclose(
        graphs.capture_einsum(np, "...ji,...ji->...i", g, p),
        np.einsum("...ji,...ji->...i", g, p),
        rtol=1e-5,
    )
    with pytest.raises(CaptureError, match="einsum.*mg.einsum"):
        graphs.capture_einsum(np, "ij,jk->ik", x, y.T)


def test_the_eager_16_bit_path_is_off_until_verified_and_never_in_plain_or_capture(monkeypatch):
    from manygrad import backend
    from manygrad.kernels import fastpath

    monkeypatch.delenv(fastpath.ENV, raising=False)
    assert "cublaslt.direct" in {p.name for p in fastpath.paths()}
    assert backend._lt16() == bool(fastpath.verified_on("cublaslt.direct"))
    monkeypatch.setenv(fastpath.ENV, "cublaslt.direct")
    assert backend._lt16()
    with fastpath.plain():
        assert not backend._lt16()
    monkeypatch.setattr(backend, "_graph_xp", object())  # a capture's namespace
    assert not backend._lt16()


def test_reference_is_the_float32_product_in_the_operands_dtype():
    a, b, bias = (_r(s, i, ml_dtypes.bfloat16) for i, s in enumerate(((3, 4, 5), (5, 2), (2,))))
    got = ltgemm.reference(a, b, bias)
    want = a.astype(np.float32) @ b.astype(np.float32) + bias.astype(np.float32)
    assert got.dtype == a.dtype
    np.testing.assert_array_equal(got, want.astype(ml_dtypes.bfloat16))
