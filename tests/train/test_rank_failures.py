"""A rank that fails ends the whole job: no rank is left waiting for it in a collective."""

import os
import subprocess
import sys

import pytest

from manygrad.cli.launch import abort_on_error
from manygrad.train import run as R

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "src"))
pytestmark = pytest.mark.mpi


def _mpi_or_skip():
    pytest.importorskip("mpi4py")
    from manygrad.distributed.launch import find_mpiexec

    try:
        find_mpiexec()
    except FileNotFoundError as e:
        pytest.skip(f"no mpiexec: {e}")


def _manygrad(*args, cwd=None, timeout=120):
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "manygrad", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def test_scripts_run_under_mpi4py_so_a_failing_rank_aborts():
    pytest.importorskip("mpi4py")
    assert abort_on_error(["python", "train.py", "--x"]) == [
        "python", "-m", "mpi4py", "train.py", "--x"]  # fmt: skip
    assert abort_on_error(["python", "-c", "1"]) == ["python", "-c", "1"]
    assert abort_on_error(["manygrad", "train"]) == ["manygrad", "train"]


def test_a_rank_exiting_early_ends_the_launch(tmp_path):
    _mpi_or_skip()
    (tmp_path / "early.py").write_text(
        "import sys\nimport manygrad.distributed as dist\n"
        "dist.init_process_group(backend='mpi')\n"
        "if dist.get_rank() == 1:\n    sys.exit(3)\n"
        "dist.barrier()\nprint('rank 0 passed the barrier')\n"
    )
    res = _manygrad("launch", "-n", "2", "--", sys.executable, "early.py", cwd=tmp_path)
    assert res.returncode == 3, res.stdout + res.stderr
    assert "passed the barrier" not in res.stdout


def test_a_train_rank_that_fails_aborts_the_job(tmp_path):
    """Rank 0 refuses --out before joining the group; the other rank must not wait for it."""
    _mpi_or_skip()
    out = tmp_path / "theirs"
    out.mkdir()
    (out / "keep.txt").write_text("theirs")
    res = _manygrad("launch", "-n", "2", "--", "manygrad", "train", "--device", "cpu",
                    "--epochs", "1", "--out", str(out), "--quiet")  # fmt: skip
    assert res.returncode == 2, res.stdout + res.stderr
    assert "is not empty" in res.stderr
    assert sorted(os.listdir(out)) == ["keep.txt"] and not (out / R.RECIPE).exists()
