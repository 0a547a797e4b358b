"""GPU fast paths: off by default while unverified, listed by doctor with their state,
and a path that cannot serve a call falls back to its reference with one warning."""

import types
import warnings

import numpy as np
import pytest

import manygrad as mg
from manygrad import backend, kernels
from manygrad.cli import doctor
from manygrad.errors import DeviceError, DTypeError, ShapeError
from manygrad.kernels import _common, fastpath, launch


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.delenv(fastpath.ENV, raising=False)
    fastpath.reset_warnings()
    yield
    fastpath.reset_warnings()


def _fake(a, index=0):
    return backend.to_device(a, backend.device(f"fakegpu:{index}"))


def test_every_kernel_path_is_registered_and_off_until_verified():
    names = {p.name for p in fastpath.paths()}
    for n in ("bias_gelu", "cross_entropy", "layer_norm", "rms_norm", "softmax", "dropout",
              "adam_step", "sgd_step", "layer_norm_backward", "bias_gelu_backward"):  # fmt: skip
        assert f"kernels.{n}" in names
    for p in fastpath.paths():
        # on only where a GPU run verified it (fastpath.VERIFIED, with RESULTS.md's figures)
        assert fastpath.enabled(p.name) == (p.name in fastpath.VERIFIED)
        st, why = fastpath.state(p.name)
        assert why and st in (fastpath.UNAVAILABLE, fastpath.UNVERIFIED, fastpath.VERIFIED_STATE)
    assert "kernels.layer_norm_backward" not in fastpath.VERIFIED  # it missed its bound


def test_the_environment_switches_paths_on_and_off(monkeypatch):
    off = "kernels.bias_gelu_backward"  # not verified: off unless named
    monkeypatch.setenv(fastpath.ENV, "kernels.softmax, kernels.dropout")
    assert fastpath.enabled("kernels.softmax") and not fastpath.enabled(off)
    monkeypatch.setenv(fastpath.ENV, "all")
    assert fastpath.enabled(off)
    monkeypatch.setenv(fastpath.ENV, "none")
    assert not fastpath.enabled(off) and not fastpath.enabled("kernels.softmax")


def test_without_a_gpu_every_path_is_unavailable_with_the_reason(monkeypatch):
    monkeypatch.setattr(backend, "cuda_status", lambda: (False, "no NVIDIA driver"))
    for r in fastpath.report():
        assert r["state"] == "unavailable" and r["enabled"] is False
        if r["name"].startswith("kernels."):  # library paths name their missing package first
            assert r["reason"] == "no NVIDIA driver"
    monkeypatch.setattr(backend, "cuda_status", lambda: (True, ""))
    kernel_rows = [r for r in fastpath.report() if r["name"].startswith("kernels.")]
    for r in kernel_rows:
        assert r["state"] == ("verified" if r["name"] in fastpath.VERIFIED else "unverified")


def test_a_path_listed_as_verified_is_on_by_default(monkeypatch):
    monkeypatch.setitem(fastpath.VERIFIED, "kernels.softmax", "NVIDIA H200, 2026-12-04")
    monkeypatch.setattr(backend, "cuda_status", lambda: (True, ""))
    assert fastpath.enabled("kernels.softmax")
    assert fastpath.state("kernels.softmax") == ("verified", "verified on NVIDIA H200, 2026-12-04")
    monkeypatch.setenv(fastpath.ENV, "none")
    assert not fastpath.enabled("kernels.softmax")


def test_a_verified_path_is_on_by_default(monkeypatch):
    p = fastpath.FastPath("test.verified", "x", lambda a: a, lambda a: a, verified_on="H200")
    fastpath.register(p)
    try:
        monkeypatch.setattr(backend, "cuda_status", lambda: (True, ""))
        assert fastpath.enabled(p.name) and fastpath.state(p.name)[0] == "verified"
    finally:
        fastpath._PATHS.pop(p.name)


def test_cpu_calls_run_the_twin_without_a_warning(monkeypatch):
    monkeypatch.setenv(fastpath.ENV, "all")
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = kernels.bias_gelu(x, None, "tanh")
    np.testing.assert_array_equal(y, kernels.gelu.bias_gelu_forward(x, None, "tanh"))


def test_a_path_that_cannot_serve_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setenv(fastpath.ENV, "all")
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    fx = _fake(x)
    with pytest.warns(kernels.FastPathFallback, match=r"kernels\.softmax .*fakegpu runs no CUDA"):
        y = kernels.softmax(fx, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second call is quiet
        y2 = kernels.softmax(fx, 0.5)
    want = kernels.row_softmax.softmax_forward(x, 0.5)
    np.testing.assert_array_equal(backend.to_numpy(y), want)
    np.testing.assert_array_equal(backend.to_numpy(y2), want)


def test_a_failing_launch_falls_back_and_names_the_reason(monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("NVRTC_ERROR_COMPILATION in mg_ln_fwd")

    p = fastpath._PATHS["kernels.layer_norm"]
    monkeypatch.setitem(fastpath._PATHS, "kernels.layer_norm", fastpath.FastPath(
        p.name, p.what, broken, p.ref))  # fmt: skip
    monkeypatch.setenv(fastpath.ENV, "kernels.layer_norm")
    x = _fake(np.ones((2, 8), np.float32))
    with pytest.warns(kernels.FastPathFallback, match="RuntimeError: NVRTC_ERROR_COMPILATION"):
        y, mean, rstd = kernels.layer_norm(x)
    np.testing.assert_array_equal(backend.to_numpy(y), np.zeros((2, 8), np.float32))


def test_argument_errors_are_raised_not_hidden_by_the_fallback(monkeypatch):
    monkeypatch.setenv(fastpath.ENV, "all")
    x = np.ones((2, 4), np.float32)
    with pytest.raises(DeviceError, match=r"'bias' is on cpu but 'x' is on fakegpu"):
        kernels.bias_gelu(_fake(x), np.ones(4, np.float32))
    with pytest.raises(DTypeError, match="float64.*cast it first"):
        kernels.bias_gelu(x.astype(np.float64))
    with pytest.raises(DTypeError, match="share one dtype"):
        kernels.bias_gelu(x, np.ones(4, np.float16))
    with pytest.raises(ShapeError, match=r"bias must have shape \(4,\)"):
        kernels.bias_gelu(x, np.ones(3, np.float32))


def test_launch_checks_contiguity_and_device():
    x = np.ones((4, 6), np.float32)
    with pytest.raises(ShapeError, match="'x' .* not C-contiguous; pass a contiguous copy"):
        launch.require_contiguous("softmax_forward", x=x.T)
    with pytest.raises(launch.UnsupportedCallError, match="cpu runs no CUDA kernels"):
        launch.require_contiguous("softmax_forward", x=x)
    with pytest.raises(DeviceError, match="fakegpu:1"):
        _common.check_args("k", a=_fake(x, 0), b=_fake(x, 1))


def test_non_contiguous_input_falls_back_on_a_gpu_path(monkeypatch):
    monkeypatch.setenv(fastpath.ENV, "all")
    monkeypatch.setattr(backend, "device_of", lambda a: mg.device("cuda:0"))
    x = np.random.default_rng(2).standard_normal((6, 4)).astype(np.float32).T
    with pytest.warns(kernels.FastPathFallback, match="not C-contiguous"):
        y = kernels.softmax(x)
    np.testing.assert_allclose(y.sum(-1), 1, rtol=1e-6)


def test_doctor_lists_each_fast_path_with_its_state(capsys):
    doctor.run(types.SimpleNamespace(require="", json=False))
    out = capsys.readouterr().out
    assert "GPU fast paths" in out
    for p in fastpath.paths():
        assert p.name in out
    import json

    doctor.run(types.SimpleNamespace(require="", json=True))
    rows = [c for c in json.loads(capsys.readouterr().out) if c["group"] == "fastpath"]
    assert {r["name"] for r in rows} == {p.name for p in fastpath.paths()}
    assert all(r["detail"].split(":")[0] in ("verified", "unverified", "unavailable") for r in rows)
