"""Collectives across 2 MPI ranks, for every dtype, on cpu and the fake GPU (fake NCCL)."""

import subprocess
import sys

import numpy as np
import pytest
from mpirun import WORKER, env, mpiexec_or_skip, run_worker

from manygrad import distributed as dist

pytestmark = pytest.mark.mpi


def _ok(res, tag):
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    for r in (0, 1):
        assert f"OK {tag} rank {r}" in out, out


def test_all_collectives_every_dtype_cpu_and_fakegpu():
    res = run_worker("collectives")
    _ok(res, "collectives-cpu")
    _ok(res, "collectives-fakegpu")


def test_mismatched_shapes_and_dtypes_raise_on_every_rank():
    res = run_worker("mismatch")
    _ok(res, "mismatch")
    _ok(res, "dtype-mismatch")


@pytest.mark.parametrize(
    "call",
    [
        lambda: dist.all_reduce(None),
        lambda: dist.broadcast(None, 0),
        lambda: dist.get_rank(),
        lambda: dist.barrier(),
    ],
)
def test_collective_before_init_says_how_to_start(call):
    assert not dist.is_initialized()
    assert dist.is_main_process()
    with pytest.raises(dist.DistributedError, match="init_process_group.*manygrad launch"):
        call()


def _run_alone(scenario, **extra):
    mpiexec_or_skip()
    cmd = [sys.executable, str(WORKER), scenario]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env(**extra))


def test_single_process_is_a_world_of_one():
    res = _run_alone("single")
    assert res.returncode == 0 and "OK single rank 0" in res.stdout, res.stdout + res.stderr


def test_launcher_and_mpi_library_mismatch_is_detected():
    # what a rank sees when mpiexec belongs to another MPI than mpi4py: a world of 1
    res = _run_alone("hello", PMI_SIZE=3)
    assert res.returncode != 0
    assert "the launcher started 3 ranks but MPI sees a world of 1" in res.stderr, res.stderr


class _FakeNodeComm:
    def Get_rank(self):
        return 1

    def Get_size(self):
        return 2

    def Free(self):
        pass


class _FakeMPI:
    rank = 5

    class MPI:
        COMM_TYPE_SHARED = 0

    class world:  # noqa: N801
        @staticmethod
        def Split_type(kind):
            return _FakeNodeComm()


@pytest.mark.parametrize("env_vars, expect", [
    ({}, (1, 2)),  # MPI's shared-memory split
    ({"SLURM_PROCID": "5", "SLURM_LOCALID": "3", "SLURM_NTASKS_PER_NODE": "4(x2)"}, (3, 4)),
    ({"SLURM_PROCID": "0", "SLURM_LOCALID": "3"}, (1, 2)),  # Slurm disagrees with MPI: ignored
])  # fmt: skip
def test_local_rank_from_mpi_or_slurm(monkeypatch, env_vars, expect):
    from manygrad.distributed import process_group as pg

    for var in ("SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE"):
        monkeypatch.delenv(var, raising=False)
    for k, v in env_vars.items():
        monkeypatch.setenv(k, v)
    assert pg._local_rank(_FakeMPI) == expect


def test_gpu_watchdog_reports_an_overdue_collective_and_ignores_finished_ones():
    import threading

    from manygrad.distributed.nccl_backend import Watchdog

    fired, event = [], threading.Event()

    def on_timeout(what, seq):
        fired.append((what, seq))
        event.set()

    setup_threads = []  # NOTE: where the rank's GPU is made current (once, in the thread)
    dog = Watchdog(timeout=0.2, on_timeout=on_timeout, interval=0.01,
                   setup=lambda: setup_threads.append(threading.current_thread().name))  # fmt: skip
    dog.watch(lambda: True, "all_reduce", 1)  # completes: never reported
    dog.watch(lambda: False, "broadcast", 2)  # stuck
    assert event.wait(10), "the watchdog never fired"
    dog.stop()
    assert fired == [("broadcast", 2)]
    assert setup_threads == ["manygrad-nccl-watchdog"]


def test_nccl_broadcast_goes_in_pieces_under_the_int_count_limit(monkeypatch):
    from manygrad import backend
    from manygrad.distributed import nccl_backend as nb

    calls = []

    class Comm:
        def bcast(self, buff, count, datatype, root, stream):
            calls.append(count)
            buff[...] = buff + 1  # marks every element it was given

    engine = object.__new__(nb.NcclEngine)
    engine.fake, engine.comm, engine.watchdog = True, Comm(), None
    monkeypatch.setattr(nb, "BCAST_MAX", 4)
    arr = backend.to_device(np.zeros((2, 5), np.float32), backend.FAKEGPU)
    engine.broadcast(arr, 0, "broadcast", 1)
    assert calls == [4, 4, 2]
    assert backend.to_numpy(arr).tolist() == [[1.0] * 5] * 2
