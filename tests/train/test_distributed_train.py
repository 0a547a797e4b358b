"""Data-parallel training: ``manygrad train --nproc N``, ``manygrad launch``, ``fit`` under mpiexec.

Each test starts its ranks in subprocesses with a timeout; the ones that need MPI are skipped,
with the reason, when mpi4py or mpiexec is missing.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from manygrad.cli import train as cli_train
from manygrad.cli.main import build_parser, main
from manygrad.train import parallel as P
from manygrad.train import run as R

SRC = Path(__file__).resolve().parents[2] / "src"
# 1437 digits = 4 batches of 359 + 1: every batch splits unevenly, and the last one leaves
# ranks without a sample; plain SGD keeps float32 rounding differences near 1e-8
SGD = ["--batch-size", "359", "--optimizer", "sgd", "--lr", "0.05"]


def _env(**extra) -> dict:
    e = dict(os.environ, **extra)
    e["PYTHONPATH"] = os.pathsep.join([str(SRC), e.get("PYTHONPATH", "")])
    e["MANYGRAD_DIST_TIMEOUT"] = "60"
    return e


def _mpi_or_skip() -> str:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed (pip install 'manygrad[mpi]')")
    from manygrad.distributed.launch import find_mpiexec

    try:
        return find_mpiexec()
    except FileNotFoundError as e:
        pytest.skip(f"no mpiexec: {e}")


def _manygrad(*args: str, timeout: float = 180, **env) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "manygrad.cli.main", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(**env))


def _weights(run_dir) -> dict:
    from safetensors.numpy import load_file

    return load_file(os.path.join(run_dir, R.WEIGHTS))


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k].astype(np.float64) - b[k]).max()) for k in a)


@pytest.mark.parametrize("n, world", [(10, 4), (5, 2), (1, 3), (359, 2), (7, 1)])
def test_slices_cover_the_batch_in_order(n, world):
    parts = [P.slice_bounds(n, r, world) for r in range(world)]
    assert parts[0][0] == 0 and parts[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
    sizes = [hi - lo for lo, hi in parts]
    assert max(sizes) - min(sizes) <= 1
    # the loss weights make the average of the ranks' mean losses the batch's mean loss
    assert sum(s * world / n for s in sizes) / world == pytest.approx(1.0)


def test_nproc_is_not_forwarded_to_the_ranks():
    args = build_parser("train").parse_args(
        ["train", "--nproc", "2", "--epochs", "3", "--quiet", "--device", "cpu", "--lr", "0.1"]
    )
    fwd = cli_train._forwarded_args(args)
    assert "--nproc" not in fwd
    assert fwd[fwd.index("--epochs") + 1] == "3" and "--quiet" in fwd
    assert fwd[fwd.index("--device") + 1] == "cpu" and fwd[fwd.index("--lr") + 1] == "0.1"


def test_nproc_beyond_the_gpus_says_so(capsys):
    import manygrad as mg

    if mg.cuda.is_available() and mg.cuda.device_count() >= 4:
        pytest.skip("this machine has 4 GPUs: --nproc 4 --device cuda is valid here")
    rc = main(["train", "--nproc", "4", "--device", "cuda", "--epochs", "1"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "--nproc 4 needs 4 GPUs" in err and "--device cpu" in err, err


def test_nproc_2_trains_end_to_end(tmp_path):
    _mpi_or_skip()
    out = tmp_path / "run"
    res = _manygrad("train", "--nproc", "2", "--epochs", "1", "--device", "cpu", "--out", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    # rank 0 prints the progress and the result, once
    assert res.stdout.count("test accuracy") == 1, res.stdout
    # epoch lines go to the redirected stdout (a log keeps them), once
    assert res.stdout.count("epoch 1/1: loss") == 1 and "x 2 ranks" in res.stdout, res.stdout
    log = (out / "rank1.log").read_text()
    assert "data-parallel: rank 1 of 2" in log and "epoch 1/1: loss" in log, log
    assert not (out / "rank0.log").exists()
    assert sorted(p.name for p in out.glob("*.safetensors")) == sorted([R.CHECKPOINT, R.WEIGHTS])
    assert (out / R.RECIPE).is_file()
    rows = R.read_metrics(str(out))
    assert len(rows) == 1 and rows[0]["test_accuracy"] > 0.5, rows  # one writer
    rec = json.loads((out / R.RECIPE).read_text())
    assert rec["training"]["world_size"] == 2 and rec["training"]["batch_size"] == 64


@pytest.fixture(scope="module")
def one_process_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    assert (
        main(["train", "--epochs", "2", "--quiet", "--out", str(out), "--device", "cpu", *SGD]) == 0
    )
    return out


@pytest.mark.parametrize("nproc, device", [
    (2, "cpu"),
    (3, "cpu"),
    (2, "fakegpu"),  # through the NCCL code path, with a stand-in communicator
])  # fmt: skip
def test_ranks_give_the_weights_of_one_process(one_process_run, tmp_path, nproc, device):
    _mpi_or_skip()
    out = tmp_path / "run"
    res = _manygrad("train", "--nproc", str(nproc), "--epochs", "2", "--out", str(out),
                    "--device", device, *SGD, MANYGRAD_DIST_FAKEGPU="1")  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    backend = "nccl" if device == "fakegpu" else "mpi"
    assert f"rank 0 of {nproc} (backend {backend}) on {device}" in res.stdout, res.stdout
    assert _max_diff(_weights(one_process_run), _weights(out)) < 1e-6
    ref, got = R.read_metrics(str(one_process_run)), R.read_metrics(str(out))
    for k in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        assert got[-1][k] == pytest.approx(ref[-1][k], rel=1e-4), k  # global, not rank 0's


def test_manygrad_launch_runs_manygrad_train(tmp_path):
    _mpi_or_skip()
    out = tmp_path / "run"
    res = _manygrad("launch", "-n", "2", "--", "manygrad", "train", "--epochs", "1", "--quiet",
                    "--device", "cpu", "--out", str(out))  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert (out / R.WEIGHTS).is_file() and (out / "rank1.log").is_file()
    assert res.stdout.count("run saved in") == 1, res.stdout


FIT_SCRIPT = textwrap.dedent(
    """
    import sys
    import manygrad as mg
    import manygrad.distributed as dist
    import manygrad.nn as nn
    from manygrad.distributed.launch import launched_world_size

    if launched_world_size() > 1:
        dist.init_process_group()
    mode, out, dropout = sys.argv[1], sys.argv[2], float(sys.argv[3])

    def stop_after_first_epoch(t):
        if t.step == 5:
            t.stop_requested = True

    mg.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(dropout),
                          nn.Linear(32, 10))
    kw = dict(epochs=2, batch_size=359, optimizer="sgd", lr=0.05, progress=False, out=out)
    if mode == "stop":
        r = mg.train.fit(model, "digits", callbacks=[stop_after_first_epoch], **kw)
        assert r.interrupted and r.step == 5, r
    else:
        r = mg.train.fit(model, "digits", resume=out if mode == "resume" else None, **kw)
        assert not r.interrupted and r.step == 10, r
    rank = dist.get_rank() if dist.is_initialized() else 0
    sys.stdout.write(f"OK {mode} {rank}\\n")  # one write: ranks share the pipe
    """
)


def _fit_script(tmp_path, dropout: float):
    mpiexec = _mpi_or_skip()
    script = tmp_path / "fit_script.py"
    script.write_text(FIT_SCRIPT)

    def run(mode, out, n):
        cmd = [sys.executable, str(script), mode, str(out), str(dropout)]
        if n > 1:
            cmd = [mpiexec, "-n", str(n), *cmd]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=_env())
        assert res.returncode == 0, res.stdout + res.stderr
        return res.stdout

    return run


def test_fit_under_mpiexec_resumes_a_stopped_run_like_one_process(tmp_path):
    run = _fit_script(tmp_path, dropout=0.0)
    run("full", tmp_path / "one", 1)
    assert "OK stop 0" in run("stop", tmp_path / "two", 2)
    assert R.read_metrics(str(tmp_path / "two"))[-1]["step"] == 5
    out = run("resume", tmp_path / "two", 2)
    assert "OK resume 0" in out and "OK resume 1" in out
    assert _max_diff(_weights(tmp_path / "one"), _weights(tmp_path / "two")) < 1e-6


STREAM_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import manygrad as mg
    import manygrad.distributed as dist
    from manygrad.datasets import load_digits
    from manygrad.distributed.launch import launched_world_size

    if launched_world_size() > 1:
        dist.init_process_group()

    def dataset(split):
        x, y = load_digits(split)
        x = mg.tensor(x.astype(np.float32).reshape(len(x), -1))
        return mg.data.TensorDataset(x, mg.tensor(y.astype(np.int64)))

    mg.manual_seed(0)
    r = mg.train.fit(mg.models.get("mlp", hidden=[32]), dataset("train"), dataset("test"),
                     stream=True, epochs=2, batch_size=359, optimizer="sgd", lr=0.05,
                     progress=False, out=sys.argv[1])
    sys.stdout.write(f"OK {r.metrics['test_accuracy']!r}\\n")
    """
)


def test_streamed_dataset_under_mpiexec_matches_one_process(tmp_path):
    mpiexec = _mpi_or_skip()
    script = tmp_path / "stream_script.py"
    script.write_text(STREAM_SCRIPT)
    outs = []
    for n, out in ((1, tmp_path / "one"), (2, tmp_path / "two")):
        cmd = [sys.executable, str(script), str(out)]
        cmd = [mpiexec, "-n", str(n), *cmd] if n > 1 else cmd
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=_env())
        assert res.returncode == 0, res.stdout + res.stderr
        outs.append(sorted(line for line in res.stdout.splitlines() if line.startswith("OK")))
    assert len(outs[1]) == 2 and outs[1][0] == outs[1][1] == outs[0][0]  # same global accuracy
    assert _max_diff(_weights(tmp_path / "one"), _weights(tmp_path / "two")) < 1e-6


def test_ranks_draw_their_own_dropout_and_resume_it(tmp_path):
    run = _fit_script(tmp_path, dropout=0.5)
    run("full", tmp_path / "full", 2)
    run("stop", tmp_path / "two", 2)
    run("resume", tmp_path / "two", 2)
    assert _max_diff(_weights(tmp_path / "full"), _weights(tmp_path / "two")) == 0.0
    rngs = R.load_checkpoint(str(tmp_path / "two" / R.CHECKPOINT))["rng_ranks"]
    assert len(rngs) == 2 and rngs[0] != rngs[1]  # different masks on each rank


def test_bf16_ranks_keep_float32_copies_like_one_process(tmp_path):
    """bf16 end to end under DDP (the model turns bf16 before DDP wraps it): the saved
    float32 copies follow one process's, up to bf16 rounding of the averaged
    gradients (two half-batch gradients rounded to bf16, then averaged)."""
    _mpi_or_skip()
    args = ("--epochs", "1", "--device", "fakegpu", "--precision", "bf16", *SGD)
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["train", "--quiet", "--out", str(one), *args]) == 0
    res = _manygrad("train", "--nproc", "2", "--out", str(two), *args, MANYGRAD_DIST_FAKEGPU="1")
    assert res.returncode == 0, res.stdout + res.stderr
    w1, w2 = _weights(one), _weights(two)
    assert all(v.dtype == np.float32 for v in w2.values())
    assert _max_diff(w1, w2) < 5e-3
