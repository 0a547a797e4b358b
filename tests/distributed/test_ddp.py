"""DistributedDataParallel on 2 ranks equals one process on the same global batch."""

import pytest
from mpirun import run_worker

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("scenario, tag", [
    ("ddp", "ddp accumulate=False"),
    ("ddp_no_sync", "ddp accumulate=True"),
])  # fmt: skip
def test_two_ranks_match_one_process(scenario, tag):
    res = run_worker(scenario)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    for r in (0, 1):
        assert f"OK {tag} rank {r}" in out, out
