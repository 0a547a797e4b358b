"""Training with the step as a CUDA graph (fake GPU): same results as eager training."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import manygrad as mg
from manygrad.cli.main import main
from manygrad.cuda import graphs
from manygrad.errors import DeviceError
from manygrad.train.graphstep import GraphedStep

SRC = Path(__file__).resolve().parents[2] / "src"


def _fit(cuda_graph, **kw):
    mg.manual_seed(0)
    model = mg.models.get("mlp", in_features=64, hidden=[32], num_classes=10)
    kw = {"epochs": 2, "batch_size": 128, "device": "fakegpu", "progress": False, **kw}
    return mg.train.fit(model, "digits", cuda_graph=cuda_graph, **kw)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"optimizer": "sgd", "scheduler": "onecycle"},
        {"precision": "fp16", "lr": 3e-3},
        {"precision": "bf16"},
    ],
    ids=["adamw-cosine", "sgd-onecycle", "fp16-scaler", "bf16-float32-copies"],
)
def test_fit_with_cuda_graph_equals_eager(kw):
    graphs.stats.reset()
    eager = _fit(False, **kw)
    assert graphs.stats.captures == 0
    graphed = _fit(True, **kw)
    # 1437 training digits / 128: 11 full batches and a short one per epoch; 3 warm-up steps
    assert graphs.stats.captures == 1 and graphs.stats.replays == 2 * 11 - 3
    assert graphed.metrics["test_accuracy"] == eager.metrics["test_accuracy"]
    assert abs(graphed.metrics["train_loss"] - eager.metrics["train_loss"]) < 1e-5
    for a, b in zip(graphed.model.parameters(), eager.model.parameters()):
        a, b = a.detach().float().cpu().numpy(), b.detach().float().cpu().numpy()
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_cuda_graph_on_cpu_is_refused():
    with pytest.raises(DeviceError, match="needs a GPU"):
        _fit(True, device="cpu")


def test_cli_cuda_graph_on_cpu_exits_2(capsys):
    assert main(["train", "--device", "cpu", "--cuda-graph", "--epochs", "1", "--quiet"]) == 2
    assert "--cuda-graph needs a GPU" in capsys.readouterr().err


def test_cli_cuda_graph_on_fakegpu(tmp_path, capsys):
    graphs.stats.reset()
    out = str(tmp_path / "run")
    args = ["train", "--device", "fakegpu", "--epochs", "1", "--quiet", "--out", out]
    assert main([*args, "--cuda-graph"]) == 0
    assert graphs.stats.captures == 1
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "cuda graph: 1 capture(s)" in printed


def test_shape_change_recaptures_and_short_batches_run_eagerly():
    calls = []
    w = mg.zeros(3, device="fakegpu")

    def fwd_bwd(xb, yb, weight):
        calls.append(tuple(xb.shape))
        out = xb * 2
        return out, (out.sum(dim=-1) - yb).sum()

    def opt_step():
        w._data += 1

    step = GraphedStep(fwd_bwd, opt_step, warmup=1)
    full = mg.ones(4, 3, device="fakegpu")
    y = mg.zeros(4, device="fakegpu")
    step(full, y)  # warm-up, eager
    _, loss = step(full * 2, y)  # captured, then replayed
    assert step.captures == 1 and step.replays == 1 and float(loss) == 48.0
    step(mg.ones(2, 3, device="fakegpu"), mg.zeros(2, device="fakegpu"))  # short: eager
    assert step.captures == 1 and step.eager_steps == 2
    _, loss = step(full, y)
    assert step.replays == 2 and float(loss) == 24.0
    step.full_shape = (5, 3)  # a new full shape: captured again
    _, loss = step(mg.ones(5, 3, device="fakegpu"), mg.zeros(5, device="fakegpu"))
    assert step.captures == 2 and float(loss) == 30.0
    assert float(w[0]) == 5.0  # 2 eager + 3 replayed optimizer steps


def _mpi_or_skip():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed (pip install 'manygrad[mpi]')")
    from manygrad.distributed.launch import find_mpiexec

    try:
        return find_mpiexec()
    except FileNotFoundError as e:
        pytest.skip(f"no mpiexec: {e}")


def test_data_parallel_all_reduce_outside_the_graph(tmp_path):
    """Two ranks: forward/backward graph, eager all-reduce, optimizer graph; the weights
    equal those of eager data-parallel training."""
    _mpi_or_skip()
    env = dict(os.environ, PYTHONPATH=str(SRC), MANYGRAD_DIST_TIMEOUT="60")
    runs = {}
    for flag in ([], ["--cuda-graph"]):
        out = str(tmp_path / ("graph" if flag else "eager"))
        cmd = [sys.executable, "-m", "manygrad.cli.main", "train", "--device", "fakegpu"]
        cmd += ["--epochs", "1", "--batch-size", "256", "--optimizer", "sgd", "--quiet"]
        cmd += ["--nproc", "2", "--out", out, *flag]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
        assert r.returncode == 0, r.stderr[-2000:]
        if flag:  # 5 full batches: 3 eager warm-up steps, then captured and replayed twice
            assert "cuda graph: 1 capture(s), 2 replays, 4 eager steps" in r.stdout, r.stdout
        runs[bool(flag)] = out
    from safetensors.numpy import load_file

    a = load_file(os.path.join(runs[False], "model.safetensors"))
    b = load_file(os.path.join(runs[True], "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=1e-5)


def test_resume_an_eager_run_with_cuda_graph(tmp_path):
    """The optimizer loaded from an eager checkpoint is made capturable again."""
    import shutil

    out, out2 = str(tmp_path / "run"), str(tmp_path / "run2")
    _fit(False, epochs=1, out=out)
    shutil.copytree(out, out2)
    graphs.stats.reset()
    graphed = _fit(True, epochs=2, resume=out)
    assert graphs.stats.captures == 1 and graphed.step == 24
    eager = _fit(False, epochs=2, resume=out2)
    assert graphed.metrics["test_accuracy"] == eager.metrics["test_accuracy"]
    for a, b in zip(graphed.model.parameters(), eager.model.parameters()):
        np.testing.assert_allclose(a.detach().cpu().numpy(), b.detach().cpu().numpy(), atol=1e-5)
