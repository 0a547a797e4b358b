"""The GPU check scripts of ``scripts/gpu-check.sh`` run end to end on the fake GPU (their
dry runs), so that a GPU run never fails on their own Python: every check is named in the
output, none fails, and the exit status says so. A check that stops working must fail."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

import manygrad as mg
from manygrad.kernels import fastpath

ROOT = pathlib.Path(__file__).resolve().parents[2]
WIRING_CASES = [
    *(f"cross_entropy {dt} {kw}" for dt in ("float32", "bfloat16")
      for kw in ("{'label_smoothing': 0.1, 'ignore_index': 3}", "{'reduction': 'none'}",
                 "{'reduction': 'sum'}")),
    *(f"{op} {dt}" for dt in ("float32", "bfloat16") for op in ("softmax", "layer_norm", "rms_norm")),
    "dropout p=0.1 (mask, scale, gradient)",
    "AdamW: 3 steps", "AdamW bf16 params, float32 copies: 3 steps",
    "SGD momentum: 3 steps", "SGD momentum bf16 params, float32 copies: 3 steps",
    *(f"conv2d {dt} {kw}" for dt in ("float32", "bfloat16")
      for kw in ("{'padding': 1}", "{'stride': 2, 'padding': 1}")),
    "scaled_dot_product_attention bf16 causal=False",
    "scaled_dot_product_attention bf16 causal=True",
]  # fmt: skip
GRAPH_CHECKS = ["elementwise capture", "cuBLASLt direct (capture path) layouts",
                "matmul capture", "MLP training step (3 steps)"]  # fmt: skip
WIRING_ARGS = ["--device", "fakegpu", "--small"]
GRAPH_ARGS = ["--device", "fakegpu", "--steps", "3", "--gemm-size", "64"]


def _script(name: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in (fastpath.ENV, "MANYGRAD_CUDA_GRAPHS")}
    env["PYTHONPATH"] = os.pathsep.join(["src", env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, f"scripts/{name}.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _lines(out: str, names) -> dict[str, str]:
    found = {}
    for line in out.splitlines():
        for n in names:
            if line.startswith(n + " ") or line.startswith(n + ":"):
                found[n] = line
    assert sorted(found) == sorted(names), f"missing: {set(names) - set(found)}\n{out}"
    return found


def _load(name: str):
    """A script as a fresh module (its globals are its own)."""
    spec = importlib.util.spec_from_file_location(f"_dry_{name}", ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_fused_wiring_check_dry_run_passes_every_case():
    r = _script("fused_wiring_check", *WIRING_ARGS)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("DRY RUN on fakegpu")
    for line in _lines(r.stdout, WIRING_CASES).values():
        assert line.endswith(" OK"), line
    assert "FAIL" not in r.stdout.replace("FAILED: none", "")
    assert r.stdout.rstrip().endswith("FAILED: none")
    served = next(x for x in r.stdout.splitlines() if x.startswith("calls served by kernels:"))
    for path in ("cross_entropy", "cross_entropy_backward", "softmax", "softmax_backward",
                 "layer_norm", "rms_norm", "dropout", "dropout_backward", "adam_step",
                 "sgd_step"):  # fmt: skip
        assert f"'kernels.{path}':" in served
    for path in ("conv2d", "conv2d_dgrad", "conv2d_wgrad", "sdpa_train", "sdpa_grad"):
        assert f"'cudnn.{path}':" in served


def test_cuda_graphs_check_dry_run_passes_every_check():
    r = _script("cuda_graphs_check", *GRAPH_ARGS)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("DRY RUN on fakegpu")
    found = _lines(r.stdout, GRAPH_CHECKS)
    for name in GRAPH_CHECKS[:3]:
        assert found[name].startswith(f"{name}: ok, "), found[name]
    assert "eager " in found[GRAPH_CHECKS[3]] and "replay " in found[GRAPH_CHECKS[3]]
    assert "FAILED" not in r.stdout.replace("FAILED: none", "")
    assert r.stdout.rstrip().endswith("FAILED: none")


def test_without_a_gpu_the_real_runs_stop_with_status_1():
    if mg.cuda.is_available():
        pytest.skip("this machine has a GPU")
    for name in ("fused_wiring_check", "cuda_graphs_check"):
        r = _script(name)
        assert r.returncode == 1 and r.stdout.startswith("no usable GPU"), r.stdout + r.stderr


@pytest.fixture
def isolated_paths(monkeypatch):
    """The scripts replace fast paths and add fakegpu to the fused devices: on copies."""
    monkeypatch.setattr(fastpath, "_PATHS", dict(fastpath._PATHS))
    monkeypatch.setattr(fastpath, "FUSED_DEVICES", fastpath.FUSED_DEVICES)
    monkeypatch.delenv(fastpath.ENV, raising=False)
    fastpath.reset_warnings()
    yield
    fastpath.reset_warnings()


def test_the_wiring_check_fails_where_an_op_misses_its_kernel(monkeypatch, capsys, isolated_paths):
    wired = fastpath.wired
    monkeypatch.setattr(fastpath, "wired", lambda n, a: n != "kernels.softmax" and wired(n, a))
    script = _load("fused_wiring_check")
    assert script.main(WIRING_ARGS) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("softmax float32 "))
    assert "not served by kernels.softmax" in line and line.endswith("FAIL")
    assert "FAILED: ['softmax float32', 'softmax bfloat16']" in out
    assert "layer_norm float32" in out  # the other cases still ran


def test_the_wiring_check_reports_a_failing_launch_and_goes_on(capsys, isolated_paths):
    script = _load("fused_wiring_check")
    p = fastpath._PATHS["kernels.rms_norm"]

    def broken(*args, **kwargs):
        raise RuntimeError("launch failed (test)")

    fastpath._PATHS["kernels.rms_norm"] = dataclasses.replace(p, ref=broken)
    assert script.main(WIRING_ARGS) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("rms_norm float32 "))
    # NOTE: a launch that raises falls back with a warning, which the script makes an error
    assert "raised FastPathFallback" in line and "RuntimeError: launch failed (test)" in line
    assert line.endswith("FAIL")
    assert "dropout p=0.1" in out and "FAILED: ['rms_norm float32', 'rms_norm bfloat16']" in out


def test_the_graphs_check_fails_when_replays_run_nothing(monkeypatch, capsys):
    monkeypatch.delenv("MANYGRAD_CUDA_GRAPHS", raising=False)
    monkeypatch.setattr(mg.cuda.CUDAGraph, "replay", lambda self: None)
    script = _load("cuda_graphs_check")
    assert script.main(GRAPH_ARGS) == 1
    out = capsys.readouterr().out
    for name in ("elementwise capture", "matmul capture", "MLP training step (3 steps)"):
        assert f"{name}: FAILED AssertionError" in out, out
    assert "cuBLASLt direct (capture path) layouts: ok" in out
