"""DistributedDataParallel on 2 ranks equals one process on the same global batch."""

import pytest
from mpirun import run_worker

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("scenario, tag", [
    ("ddp", "ddp accumulate=False"),
    ("ddp_no_sync", "ddp accumulate=True"),
    ("ddp_fakegpu", "ddp-fakegpu accumulate=False"),  # NCCL engine with the fake communicator
])  # fmt: skip
def test_two_ranks_match_one_process(scenario, tag):
    res = run_worker(scenario)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    for r in (0, 1):
        assert f"OK {tag} rank {r}" in out, out


def test_sparse_embedding_gradients_stay_sparse():
    # Embedding/EmbeddingBag(sparse=True) under DDP: sparse averaged gradients equal to one
    # process on the whole batch, SparseAdam steps alike; a table one rank does not use,
    # no_sync accumulation, fakegpu, and a table also used densely (reduced densely)
    res = run_worker("ddp_sparse")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    for tag in ("cpu tied=False accumulate=False", "cpu tied=False accumulate=True",
                "fakegpu tied=False accumulate=False", "cpu tied=True accumulate=False"):  # fmt: skip
        for r in (0, 1):
            assert f"OK ddp-sparse {tag} rank {r}" in out, out


def test_training_stack_sampler_gradscaler_checkpoint(tmp_path):
    # nn layers, SGD with momentum, GradScaler with an overflowing step, DistributedSampler,
    # a checkpoint written by rank 0 and loaded by all: equal to one process on 2x the batch
    res = run_worker("stack", RUN_DIR=tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    for r in (0, 1):
        assert f"OK stack rank {r}" in out, out


def test_nccl_backend_on_fakegpu():
    # backend="nccl" with the fake GPU standing in for cuda:<local rank>: unique-id
    # broadcast, preflight all-reduce and DDP through the fake communicator
    res = run_worker("ddp_fakegpu", WORKER_BACKEND="nccl", MANYGRAD_DIST_FAKEGPU=1,
                     WORKER_DEVICE="fakegpu")  # fmt: skip
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    for r in (0, 1):
        assert f"OK ddp-fakegpu accumulate=False rank {r}" in out, out
