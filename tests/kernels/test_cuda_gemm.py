"""cuBLASLt GEMM plans (manygrad.cuda.gemm): what can be checked without a GPU, the plan
descriptions, Linear's mapping onto cuBLASLt, the epilogues' reference and the plan cache."""

import numpy as np
import pytest
import torch
import torch.nn.functional as tF

from manygrad import backend
from manygrad.cuda import gemm
from manygrad.kernels import fastpath
from manygrad.kernels.launch import UnsupportedCallError

HAVE_NVMATH = gemm.nvmath_missing() == ""
needs_nvmath = pytest.mark.skipif(not HAVE_NVMATH, reason="nvmath-python is not installed")


def test_compute_types_and_tf32_is_an_explicit_choice(monkeypatch):
    monkeypatch.delenv(gemm.TF32_ENV, raising=False)
    assert gemm.spec((4, 5), (5, 6), "bfloat16").compute_type == "COMPUTE_32F"
    assert gemm.spec((4, 5), (5, 6), "float16").compute_type == "COMPUTE_32F"
    assert gemm.spec((4, 5), (5, 6), "float32").compute_type == "COMPUTE_32F"
    assert gemm.spec((4, 5), (5, 6), "float32", tf32=True).compute_type == "COMPUTE_32F_FAST_TF32"
    monkeypatch.setenv(gemm.TF32_ENV, "1")
    assert gemm.spec((4, 5), (5, 6), "float32").compute_type == "COMPUTE_32F_FAST_TF32"


def test_spec_shapes_batches_and_refusals():
    s = gemm.spec((3, 4, 5), (3, 5, 6), "bfloat16")
    assert (s.batch, s.m, s.k, s.n, s.out_shape) == ((3,), 4, 5, 6, (3, 4, 6))
    assert gemm.spec((3, 4, 5), (5, 6), "float16").batch == (3,)  # b broadcast
    for args in [((4, 5), (5, 6), "float64"), ((4, 5), (4, 6), "float32"),
                 ((2, 4, 5), (3, 5, 6), "float32"), ((2, 4, 5), (5, 6), "float32", "GELU_AUX")]:  # fmt: skip
        with pytest.raises(UnsupportedCallError):
            gemm.spec(*args)
    with pytest.raises(ValueError, match="unknown epilog 'SWISH'"):
        gemm.spec((4, 5), (5, 6), "float32", "SWISH")


@pytest.mark.parametrize("act,training,bias,fwd", [
    (None, True, True, "BIAS"), (None, False, False, "DEFAULT"), ("gelu", True, True, "GELU_AUX_BIAS"),
    ("gelu", False, True, "GELU_BIAS"), ("relu", True, True, "RELU_AUX_BIAS"), ("relu", True, False, "RELU_AUX"),
])  # fmt: skip
def test_linear_maps_onto_cublaslt_with_bias_per_output_row(act, training, bias, fwd):
    sp = gemm.linear_specs((8, 16, 768), 3072, "bfloat16", act, bias, training)
    f, dg, wg = sp["forward"], sp["dgrad"], sp["wgrad"]
    assert (f.m, f.k, f.n, f.epilog) == (3072, 768, 128, fwd)  # y^T = W x^T
    assert (dg.m, dg.k, dg.n) == (128, 3072, 768)  # dx = gy W
    assert (wg.m, wg.k, wg.n, wg.epilog) == (3072, 128, 768, "BGRADA" if bias else "DEFAULT")
    assert ("gelu_aux" in f.outputs) == (act == "gelu" and training)


def test_reference_epilogues_match_torch(device):
    rng = np.random.default_rng(0)
    w, x = (
        rng.standard_normal((6, 5)).astype(np.float32),
        rng.standard_normal((7, 5)).astype(np.float32),
    )  # noqa: E501
    b, gy = (
        rng.standard_normal(6).astype(np.float32),
        rng.standard_normal((7, 6)).astype(np.float32),
    )  # noqa: E501
    d = backend.device(device)
    with backend.device_scope(d):
        W, XT, B, GYT, X = (backend.to_device(a, d) for a in (w, x.T.copy(), b, gy.T.copy(), x))
        tw, tx, tb = (torch.tensor(a) for a in (w, x, b))
        for epilog, want in [("DEFAULT", tx @ tw.T), ("BIAS", tx @ tw.T + tb),
                             ("RELU_BIAS", torch.relu(tx @ tw.T + tb)),
                             ("GELU_BIAS", tF.gelu(tx @ tw.T + tb, approximate="tanh"))]:  # fmt: skip
            got = backend.to_numpy(gemm.reference(W, XT, epilog, B))
            np.testing.assert_allclose(got.T, want.numpy(), rtol=1e-5, atol=1e-5)
        dw, db = gemm.reference(GYT, X, "BGRADA")  # wgrad: dW = gy^T x, db = sum of gy rows
        np.testing.assert_allclose(backend.to_numpy(dw), gy.T @ x, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(backend.to_numpy(db), gy.sum(0), rtol=1e-5, atol=1e-5)
        with pytest.raises(UnsupportedCallError, match="no reference outside cuBLASLt"):
            gemm.reference(W, XT, "GELU_AUX_BIAS", B)


def test_the_fast_path_is_registered_off_and_refuses_cpu_arrays():
    assert "cublaslt.matmul" in {p.name for p in fastpath.paths()}
    assert not fastpath.enabled("cublaslt.matmul")
    a = np.ones((2, 3), np.float32)
    with pytest.raises(UnsupportedCallError, match="cpu has no cuBLASLt"):
        gemm.matmul(a, a.T)
    np.testing.assert_array_equal(fastpath.call("cublaslt.matmul", a, a.T), a @ a.T)


@needs_nvmath
def test_epilog_names_and_compute_types_exist_in_nvmath():
    from nvmath.linalg import ComputeType
    from nvmath.linalg.advanced import MatmulEpilog

    assert set(gemm.EPILOGS) == {e.name for e in MatmulEpilog}
    for dt in gemm.DTYPES:
        for tf32 in (False, True):
            s = gemm.spec((4, 8), (8, 16), dt, "BIAS", tf32)
            assert gemm.options(s).compute_type == ComputeType[s.compute_type]


@needs_nvmath
def test_plan_cache_plans_once_per_spec_and_evicts(monkeypatch):
    import nvmath.linalg.advanced as adv
    from nvmath.linalg.advanced.matmulmod import EPILOG_INPUT_HANDLERS_MAP

    log = []

    class FakeMatmul:
        def __init__(self, a, b, options=None, stream=None):
            log.append(("new", a.shape))

        def plan(self, epilog=None, epilog_inputs=None, stream=None):
            # nvmath's own rule: an epilog given must be one it has input handlers for
            if epilog is not None:
                assert epilog in EPILOG_INPUT_HANDLERS_MAP, "Not supported."
            log.append(("plan", None if epilog is None else epilog.name))

        def reset_operands(self, a=None, b=None, epilog_inputs=None, stream=None):
            log.append(("reset", a.shape))

        def free(self):
            log.append(("free",))

    monkeypatch.setattr(adv, "Matmul", FakeMatmul)
    cache = gemm.PlanCache(maxsize=2)
    a, b = np.ones((4, 8), np.float32), np.ones((8, 16), np.float32)
    s1 = gemm.spec(a.shape, b.shape, "float32", "BIAS")
    cache.get(s1, a, b, {"bias": np.ones(4, np.float32)})
    cache.get(s1, a, b, {"bias": np.ones(4, np.float32)})
    assert cache.plans_built == 1 and log[-1] == ("reset", (4, 8))
    cache.get(gemm.spec((2, 8), b.shape, "float32"), a[:2], b)
    cache.get(gemm.spec((3, 8), b.shape, "float32"), a[:3], b)
    assert len(cache) == 2 and ("free",) in log and cache.plans_built == 3
    assert ("plan", None) in log and ("plan", "BIAS") in log  # a plain product: no epilog
    for name in gemm.EPILOGS:  # every epilogue manygrad plans is one nvmath accepts
        cache.get(gemm.spec(a.shape, b.shape, "float32", name), a, b, None)
