"""The kernel sources compile with NVRTC for sm_80 and sm_90, without a GPU or a driver
(the gpu-compile extra: cuda-bindings + nvidia-cuda-nvrtc-cu12)."""

import json
import subprocess
import sys
import types

import pytest

from manygrad.cli import doctor
from manygrad.kernels import nvrtc, registry

try:
    nvrtc.version()
    HAVE_NVRTC = True
except nvrtc.CompilerMissingError:
    HAVE_NVRTC = False
NAMES = [k.name for k in registry.kernels()]
needs_nvrtc = pytest.mark.skipif(not HAVE_NVRTC, reason="the gpu-compile extra is missing")


def test_registry_has_the_fused_kernels_with_instantiations():
    names = [k.name for k in registry.kernels()]
    assert names == ["optim_step", "bias_gelu", "cross_entropy", "norms", "softmax", "dropout"]
    assert NAMES == names
    for k in registry.kernels():
        assert k.entries and all("<" in e for e in k.entries)
        for e in k.entries:  # every instantiated template is defined in the source
            assert f"__global__ void {e.split('<')[0]}(" in k.source
    with pytest.raises(KeyError, match="known: optim_step"):
        registry.get("nope")


@needs_nvrtc
@pytest.mark.parametrize("arch", nvrtc.ARCHS)
@pytest.mark.parametrize("name", NAMES)
def test_kernel_compiles_with_nvrtc(name, arch):
    k = next(k for k in registry.kernels() if k.name == name)
    r = nvrtc.compile_kernel(k, arch)
    assert r.ok, r.error
    assert r.cubin_bytes > 1000


@needs_nvrtc
def test_a_broken_source_reports_the_compiler_error():
    bad = registry.Kernel("broken", "__global__ void k(float* x) { x[0] = undefined_name; }",
                          ("k",), "a kernel that does not compile")  # fmt: skip
    r = nvrtc.compile_kernel(bad, "sm_90")
    assert not r.ok and "undefined_name" in r.error
    missing = registry.Kernel("missing", "template <typename T> __global__ void k(T* x) {}",
                              ("k<double>", "nothere<float>"), "unknown entry")  # fmt: skip
    r = nvrtc.compile_kernel(missing, "sm_80")
    assert not r.ok and "nothere" in r.error


@needs_nvrtc
def test_doctor_kernels_json_lists_every_kernel_and_arch(capsys):
    code = doctor.run(types.SimpleNamespace(require="", json=True, kernels=True))
    rows = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {(r["kernel"], r["arch"]) for r in rows} == {
        (k, a) for k in NAMES for a in ("sm_80", "sm_90")
    }
    assert all(r["ok"] and r["error"] == "" and set(r) == {"kernel", "arch", "ok", "error"}
               for r in rows)  # fmt: skip


@needs_nvrtc
def test_doctor_kernels_fails_when_a_kernel_fails(monkeypatch, capsys):
    bad = registry.Kernel("broken", "__global__ void k() { nope; }", ("k",), "bad")
    monkeypatch.setattr(registry, "kernels", lambda: [bad])
    monkeypatch.setattr(nvrtc, "kernels", lambda: [bad])
    assert doctor.run(types.SimpleNamespace(require="", json=False, kernels=True)) == 1
    out = capsys.readouterr().out
    assert "FAIL  broken" in out and "sm_80" in out and "sm_90" in out


def test_doctor_kernels_without_the_extra_names_it(monkeypatch, capsys):
    def missing():
        raise nvrtc.CompilerMissingError(f"cuda-bindings is not installed; {nvrtc.EXTRA}")

    monkeypatch.setattr(nvrtc, "_nvrtc", missing)
    assert doctor.run(types.SimpleNamespace(require="", json=True, kernels=True)) == 1
    assert "manygrad[gpu-compile]" in capsys.readouterr().err


@needs_nvrtc
def test_cli_doctor_kernels_json_runs_as_a_command():
    r = subprocess.run([sys.executable, "-m", "manygrad", "doctor", "--kernels", "--json"],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)) == 2 * len(registry.MODULES)


def test_sources_compute_in_float32_only():
    """No double literals or double-precision maths: on a GPU they run at fp64 speed."""
    import re

    for k in registry.kernels():
        src = k.full_source()
        doubles = re.findall(r"(?<![\w.])(\d+\.\d*(?:e[-+]?\d+)?|\.\d+)(?![\w.])", src)
        assert not doubles, f"{k.name}: float literals without an f suffix: {doubles[:5]}"
        calls = re.findall(r"\b(exp|log|sqrt|tanh|erf|fmax|fabs|pow)\s*\(", src)
        assert not calls, f"{k.name}: double-precision maths {calls}; use expf, logf, ..."
