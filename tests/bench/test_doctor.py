"""manygrad doctor: each dependency made unavailable gives the right fix text."""

import types

import pytest

from manygrad.cli import doctor


def _without(monkeypatch, *names):
    real = doctor._import

    def fake(name):
        if name in names or name.split(".")[0] in names:
            raise ImportError(f"No module named '{name}'")
        return real(name)

    monkeypatch.setattr(doctor, "_import", fake)


@pytest.mark.parametrize("mod,extra", [(m, e) for m, _, e in doctor.OPTIONAL])
def test_missing_optional_dependency_names_its_extra(monkeypatch, mod, extra):
    _without(monkeypatch, mod)
    (c,) = [c for c in doctor.check_optional() if c.name == mod]
    assert c.status == "warn" and c.fix.startswith(f"pip install 'manygrad[{extra}]'")


def test_missing_mpi4py_suggests_the_mpi_extra(monkeypatch):
    _without(monkeypatch, "mpi4py")
    c = doctor.check_mpi()
    assert c.status == "warn" and "manygrad[mpi]" in c.fix


def test_missing_numpy_and_ml_dtypes_fail(monkeypatch):
    _without(monkeypatch, "numpy", "ml_dtypes")
    assert doctor.check_numpy()[0].status == "fail"
    assert doctor.check_ml_dtypes().fix == "pip install ml_dtypes"


def test_cuda_states_from_reports():
    no_cupy = doctor.check_cuda({"cupy": None, "import_error": "No module named 'cupy'"})
    assert no_cupy[0].status == "warn" and "manygrad[cuda12]" in no_cupy[0].fix
    no_driver = doctor.check_cuda({"cupy": "14.0", "driver_present": False, "gpus": []})
    assert no_driver[-1].name == "driver" and "nvidia-smi" in no_driver[-1].fix
    old = doctor.check_cuda({"cupy": "14.0", "driver_present": True, "runtime": 13000,
                             "driver": 12040, "gpus": []})  # fmt: skip
    drv = [c for c in old if c.name == "driver"][0]
    assert drv.status == "fail" and "CUDA 12.4" in drv.detail and "update" in drv.fix
    good = doctor.check_cuda({"cupy": "14.0", "driver_present": True, "runtime": 13000,
                              "driver": 13000, "nvrtc": "ok", "nccl": 22703, "gpus": [
                                  {"index": 0, "name": "NVIDIA H200", "memory_gb": 139.8,
                                   "compute_capability": "9.0", "clock_mhz": 1980,
                                   "memory_clock_mhz": 3201}]})  # fmt: skip
    assert all(c.status == "ok" for c in good)
    assert any("NVIDIA H200" in c.detail for c in good)
    broken_nvrtc = doctor.check_cuda({"cupy": "14.0", "runtime": 1, "driver": 1,
                                      "nvrtc_error": "libnvrtc.so missing",
                                      "gpus": [{"index": 0, "error": "x"}]})  # fmt: skip
    assert [c for c in broken_nvrtc if c.name == "nvrtc"][0].status == "fail"


def test_exit_code_only_for_requested_or_core_failures():
    checks = [doctor.Check("cupy", "warn", "not installed", group="cuda"),
              doctor.Check("numpy", "ok", "2.0")]  # fmt: skip
    assert doctor.exit_code(checks, set()) == 0
    assert doctor.exit_code(checks, {"cuda"}) == 1
    assert doctor.exit_code([doctor.Check("numpy", "fail", "x")], set()) == 1


def test_run_prints_every_check(capsys):
    code = doctor.run(types.SimpleNamespace(require="", json=False))
    out = capsys.readouterr().out
    for name in ("python", "numpy", "blas", "cupy", "mpi", "PIL"):
        assert name in out
    assert "GPU:" in out and code in (0, 1)
    assert doctor.run(types.SimpleNamespace(require="tpu", json=False)) == 2


def _blas_check():
    (c,) = [c for c in doctor.check_numpy() if c.name == "blas"]
    return c


def test_blas_kernel_forced_to_avx2_on_an_avx512_cpu_is_explained(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.delenv("OPENBLAS_L2_SIZE", raising=False)
    monkeypatch.setattr(doctor, "_blas_kernel", lambda: "Haswell")
    monkeypatch.setattr(doctor, "_cpu_flags", lambda: {"avx2", "avx512f"})
    c = _blas_check()
    assert c.status == "warn" and "Haswell kernels" in c.detail
    assert "OPENBLAS_CORETYPE=Haswell" in c.fix and "AVX-512 CPU" in c.fix
    assert "unset them" in c.fix
    monkeypatch.setattr(doctor, "_cpu_flags", lambda: {"avx2"})  # an AVX2 CPU: no speed claim
    assert "AVX-512" not in _blas_check().fix


def test_blas_detected_by_openblas_is_ok(monkeypatch):
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS",
              "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # fmt: skip
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(doctor, "_blas_kernel", lambda: "SkylakeX")
    c = _blas_check()
    assert c.status == "ok" and c.fix == "" and "SkylakeX kernels" in c.detail
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "512")
    c = _blas_check()
    assert c.status == "warn" and "OPENBLAS_L2_SIZE=512" in c.fix
