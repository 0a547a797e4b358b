"""The NCCL path on real GPUs (skipped on machines without a GPU and CuPy's NCCL)."""

import pytest
from mpirun import run_worker

import manygrad as mg

pytestmark = pytest.mark.mpi


def test_nccl_collectives_and_ddp_on_gpus():
    if not mg.cuda.is_available():
        pytest.skip(f"no usable GPU: {mg.cuda.why_unavailable()}")
    from manygrad.distributed.nccl_backend import nccl_available

    if not nccl_available():
        pytest.skip("CuPy's NCCL is not available (pip install nvidia-nccl-cu12)")
    n = min(2, mg.cuda.device_count())
    res = run_worker("gpu", n=n, WORKER_BACKEND="nccl")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert out.count("OK collectives-cuda") == n and out.count("OK ddp-cuda") == n, out
