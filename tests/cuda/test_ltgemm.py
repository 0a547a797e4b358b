"""The capture-safe cuBLASLt product (``manygrad.cuda.ltgemm``) on NumPy memory.

``FakeLt`` (``manygrad.cuda._lt_standin``) stands in for nvmath's ``cublasLt`` bindings: it
keeps descriptors as dicts, reads attribute values from the host addresses it is given, and
computes what ``cublasLtMatmul`` defines by reading raw memory at the operands' addresses as
columns (``op``, ``ld``, strided batches, the BIAS epilogue). So every layout ``ltgemm``
describes (contiguous, transposed views, row slices, batches, folds, broadcasts) is checked
against ``np.matmul`` without a GPU, together with the calls' order and arguments.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from manygrad.cuda import ltgemm
from manygrad.cuda._lt_standin import FakeLt
from manygrad.kernels.launch import UnsupportedCallError

__all__ = ["FakeLt", "LAYOUTS"]  # test_ltgemm_conformance.py holds the stand-in to the bindings


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


def test_a_cached_plan_runs_with_its_own_algorithm_after_other_plans(monkeypatch):
    monkeypatch.setattr(ltgemm, "_alignment", lambda *offsets: 16)  # one plan per problem
    ctx = ltgemm.LtContext(lib=FakeLt())
    a, b = _r((5, 7)), _r((7, 3), 1)
    first = ltgemm.matmul(a, b, ctx=ctx, stream_ptr=0)
    ltgemm.matmul(_r((2, 5, 7)), _r((2, 7, 3)), ctx=ctx, stream_ptr=0)
    again = ltgemm.matmul(a, b, ctx=ctx, stream_ptr=0)  # the first plan, not the latest
    np.testing.assert_array_equal(again, first)
    assert ctx.plans_built == 2


@pytest.mark.parametrize("dev", ["fakegpu", "fakegpu:1"])
def test_fake_gpu_arrays_run_on_the_stand_in(dev):
    from manygrad import backend

    d = backend.device(dev)
    a, w, bias = _r((6, 8)), _r((4, 8), 1), _r((4,), 2)
    with backend.device_scope(d):
        fa, fw, fb = (backend.to_device(x, d) for x in (a, w, bias))
        ctx = ltgemm.LtContext(lib=FakeLt())
        out = ltgemm.matmul(fa, fw.T, fb, ctx=ctx)
    assert backend.device_of(out) == d
    assert [key[0] for key in ctx.plans] == [d.index or 0]  # plans are kept per device
    np.testing.assert_allclose(backend.to_numpy(out), a @ w.T + bias, rtol=1e-5, atol=1e-5)


def test_host_memory_never_reaches_the_library():
    with pytest.raises(UnsupportedCallError, match="stand-in"):
        ltgemm.matmul(_r((2, 3)), _r((3, 2)), ctx=ltgemm.LtContext(lib=object()))


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
