"""The GPU kernel check's harness, run on the CPU with the twins standing in for the
kernels (the real run happens in scripts/gpu-check.sh on a GPU)."""

import json

import numpy as np

from manygrad import backend
from manygrad.kernels import gelu, gpucheck, row_softmax


def _small_cases():
    r = lambda rng, s: rng.standard_normal(s).astype(np.float32)  # noqa: E731

    def off_by_one(x, **kw):
        return row_softmax.softmax_forward(x, **kw) + 1.0

    return [
        gpucheck.Case("kernels.bias_gelu", "twin as kernel", lambda g: (r(g, (8, 16)), r(g, (16,))),
                      gelu.bias_gelu_forward, gelu.bias_gelu_forward, {"approximate": "tanh"}),
        gpucheck.Case("kernels.softmax", "a wrong kernel", lambda g: (r(g, (4, 9)),), off_by_one,
                      row_softmax.softmax_forward, {"scale": 1.0}),
    ]  # fmt: skip


def test_rows_say_which_kernel_matches_its_twin(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(gpucheck, "cases", _small_cases)
    code = gpucheck.main(["--device", "cpu", "--out", str(tmp_path), "--repeat", "2"])
    assert code == 1  # one mismatch
    data = json.loads((tmp_path / "kernels.json").read_text())
    good, bad = data["rows"]
    assert good["ok"] and good["max_err"] == 0.0 and good["kernel_ms"] > 0 and good["gbps"] > 0
    assert not bad["ok"] and bad["max_err"] > 0.1 and bad["error"] == ""
    md = capsys.readouterr().out
    assert "| kernels.softmax | a wrong kernel | NO |" in md


def test_a_kernel_that_raises_is_a_row_not_a_crash(tmp_path):
    c = gpucheck.cases()[0]
    row = gpucheck.run_case(c, backend.device("fakegpu"), repeat=1)
    assert not row.ok and "fakegpu runs no CUDA kernels" in row.error


def test_without_a_gpu_the_check_says_so(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(backend, "cuda_available", lambda: False)
    assert gpucheck.main(["--out", str(tmp_path)]) == 1
    assert "no usable GPU" in capsys.readouterr().err


def test_every_fast_path_has_a_gpu_check():
    from manygrad.kernels import fastpath

    checked = {c.path for c in gpucheck.cases()}
    assert {p.name for p in fastpath.paths()} == checked
