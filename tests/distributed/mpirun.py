"""Helpers that run ``mpi_worker.py`` scenarios under ``mpiexec`` for the distributed tests."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("mpi_worker.py")
SRC = Path(__file__).resolve().parents[2] / "src"


def mpiexec_or_skip() -> str:
    """The mpiexec manygrad would use, or skip the test saying what is missing."""
    pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install 'manygrad[mpi]')")
    from manygrad.distributed.launch import find_mpiexec

    try:
        return find_mpiexec()
    except FileNotFoundError as e:
        pytest.skip(f"no mpiexec: {e}")


def env(**extra) -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(SRC), e.get("PYTHONPATH", "")])
    e.update({k: str(v) for k, v in extra.items()})
    return e


def run_worker(scenario: str, n: int = 2, timeout: float = 120, mpi_args=(), **extra):
    """Run ``mpiexec -n N python mpi_worker.py SCENARIO``; returns the CompletedProcess."""
    mpiexec = mpiexec_or_skip()
    cmd = [mpiexec, *mpi_args, "-n", str(n), sys.executable, str(WORKER), scenario]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env(**extra))
