"""PyTorch's torch.distributed API beyond all_reduce: rooted collectives, all-to-all, point to
point, groups, object collectives, Work handles, names and errors.

The multi-rank checks run as scenarios of ``mpi_worker_api.py`` under ``mpiexec -n 2`` (one
run each, many checks per run); the names, signatures and errors that need no process group
are compared with PyTorch here.
"""

import inspect
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from mpirun import env, mpiexec_or_skip

import manygrad as mg
from manygrad import distributed as dist
from manygrad.distributed.work import Future, Work

WORKER = Path(__file__).with_name("mpi_worker_api.py")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "distributed.md"


def _mpi(scenario, n=2, timeout=180, **extra):
    cmd = [mpiexec_or_skip(), "-n", str(n), sys.executable, str(WORKER), scenario]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env(**extra))


def _ok(res, tag, n=2):
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    for r in range(n):
        assert f"OK {tag} rank {r}" in out, out


@pytest.mark.mpi
def test_api_on_two_ranks():
    """reduce/gather/scatter/all_to_all(_single)/p2p on cpu and fakegpu for several dtypes,
    objects, async Work, groups, bad arguments, (monitored) barriers, backend "gloo"."""
    _ok(_mpi("api", WORKER_BACKEND="gloo"), "api")


@pytest.mark.mpi
def test_api_on_two_ranks_without_checks():
    _ok(_mpi("unchecked", MANYGRAD_DIST_CHECK=0, WORKER_TIMEOUT=30), "unchecked")


@pytest.mark.mpi
def test_api_in_a_world_of_one():
    mpiexec_or_skip()
    cmd = [sys.executable, str(WORKER), "alone"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env())
    _ok(res, "alone", n=1)


@pytest.mark.mpi
def test_rooted_alltoall_and_p2p_through_nccl_on_gpus():
    if not mg.cuda.is_available():
        pytest.skip(f"no usable GPU: {mg.cuda.why_unavailable()}")
    from manygrad.distributed.nccl_backend import nccl_available

    if not nccl_available():
        pytest.skip("CuPy's NCCL is not available (pip install nvidia-nccl-cu12)")
    n = min(2, mg.cuda.device_count())
    _ok(_mpi("gpu", n=n, WORKER_BACKEND="nccl"), "gpu", n=n)


@pytest.mark.mpi
def test_docs_example_on_two_ranks(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    (block,) = [b for b in blocks if "# collectives.py" in b]
    script = tmp_path / "collectives.py"
    script.write_text(block)
    cmd = [mpiexec_or_skip(), "-n", "2", sys.executable, str(script)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env())
    assert res.returncode == 0, res.stdout + res.stderr
    x = [np.arange(4.0) + 10 * r for r in range(2)]  # what each rank holds
    mixed = np.concatenate([x[0][:2], x[1][:2]])  # rank 0's all_to_all: first halves
    want = (
        f"sum {(x[0] + x[1]).tolist()} gathered {[v.tolist() for v in x]}\n"
        f"all_to_all {mixed.tolist()} from the left {x[1].tolist()}\n"
    )
    assert res.stdout == want, res.stdout + res.stderr


# ------------------------------------------------------------------ no process group needed

NAMES = ["all_reduce", "broadcast", "reduce", "all_gather", "all_gather_into_tensor",
         "reduce_scatter", "reduce_scatter_tensor", "gather", "scatter", "all_to_all",
         "all_to_all_single", "barrier", "monitored_barrier", "gather_object",
         "scatter_object_list", "broadcast_object_list", "all_gather_object", "send_object_list",
         "recv_object_list", "send", "recv", "isend", "irecv", "batch_isend_irecv", "new_group",
         "new_subgroups", "new_subgroups_by_enumeration", "get_process_group_ranks",
         "get_global_rank", "get_group_rank", "get_rank", "get_world_size", "get_backend",
         "destroy_process_group", "is_initialized", "is_available", "is_mpi_available",
         "is_nccl_available", "is_gloo_available", "is_torchelastic_launched",
         "is_backend_available", "get_node_local_rank", "get_pg_count",
         "get_default_backend_for_device"]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_pytorch(name):
    td = pytest.importorskip("torch.distributed")
    theirs = list(inspect.signature(getattr(td, name)).parameters)
    ours = list(inspect.signature(getattr(dist, name)).parameters)
    assert ours == theirs


def test_init_and_p2pop_signatures_match_pytorch():
    td = pytest.importorskip("torch.distributed")
    theirs = list(inspect.signature(td.init_process_group).parameters)
    ours = list(inspect.signature(dist.init_process_group).parameters)
    public = [p for p in theirs if not p.startswith("_")]
    assert ours[: len(public)] == public
    assert inspect.signature(dist.init_process_group).parameters["verbose"].kind.name == (
        "KEYWORD_ONLY"
    )
    p2p = [list(inspect.signature(m.P2POp.__init__).parameters) for m in (td, dist)]
    assert p2p[0] == p2p[1]


def test_names_match_pytorch(monkeypatch):
    td = pytest.importorskip("torch.distributed")
    for name in ("GLOO", "NCCL", "MPI", "UCC", "UNDEFINED"):
        assert getattr(dist.Backend, name) == getattr(td.Backend, name)
    for s in ("gloo", "GLOO", "Nccl", "mpi", "custom"):
        assert dist.Backend(s) == td.Backend(s) and isinstance(dist.Backend(s), str)
    with pytest.raises(ValueError):
        td.Backend(3)
    with pytest.raises(ValueError, match="string"):
        dist.Backend(3)
    assert dist.GroupMember.NON_GROUP_MEMBER == td.GroupMember.NON_GROUP_MEMBER
    assert dist.group.WORLD is dist.GroupMember.WORLD is td.group.WORLD is None
    assert isinstance(dist.default_pg_timeout, timedelta)
    for value in (None, "1"):
        if value is None:
            monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
        else:
            monkeypatch.setenv("TORCHELASTIC_RUN_ID", value)
        assert dist.is_torchelastic_launched() == td.is_torchelastic_launched()
    for device in ("cpu", "cuda", "cuda:1"):
        assert dist.get_default_backend_for_device(device) == (
            td.get_default_backend_for_device(device)
        )
    assert issubclass(dist.DistBackendError, dist.DistError)
    assert issubclass(dist.DistError, RuntimeError)
    assert issubclass(dist.DistributedTimeoutError, dist.DistBackendError)
    assert issubclass(dist.DistributedError, dist.DistError)


def test_availability_never_raises_without_a_gpu():
    assert dist.is_gloo_available() == dist.is_mpi_available() == dist.is_available()
    if not mg.cuda.is_available():
        assert dist.is_nccl_available() is False
        assert dist.is_backend_available("gloo") == dist.is_mpi_available()
        assert not dist.is_backend_available("cpu:gloo,cuda:nccl")
    assert not dist.is_backend_available("ucc")


def test_non_member_queries_match_pytorch():
    td = pytest.importorskip("torch.distributed")
    nm = dist.GroupMember.NON_GROUP_MEMBER
    assert dist.get_rank(nm) == td.get_rank(nm) == -1
    assert dist.get_world_size(nm) == td.get_world_size(nm) == -1


@pytest.mark.parametrize("call", [
    lambda: dist.reduce(mg.ones(1), 0),
    lambda: dist.gather(mg.ones(1)),
    lambda: dist.scatter(mg.ones(1)),
    lambda: dist.all_to_all_single(mg.ones(2), mg.ones(2)),
    lambda: dist.all_to_all([mg.ones(1)], [mg.ones(1)]),
    lambda: dist.send(mg.ones(1), 1),
    lambda: dist.irecv(mg.ones(1)),
    lambda: dist.new_group([0]),
    lambda: dist.get_process_group_ranks(None),
    lambda: dist.gather_object(1),
    lambda: dist.scatter_object_list([None]),
    lambda: dist.monitored_barrier(),
    lambda: dist.get_backend(),
    lambda: dist.P2POp(dist.isend, mg.ones(1), 1),
])  # fmt: skip
def test_before_init_raises_pytorchs_value_error_with_how_to_start(call):
    assert not dist.is_initialized()
    with pytest.raises(ValueError, match="not initialised.*init_process_group") as e:
        call()
    assert isinstance(e.value, dist.DistributedError)


def test_p2p_op_and_batch_validate_their_arguments():
    with pytest.raises(ValueError, match="Invalid ``op``"):
        dist.P2POp(dist.send, mg.ones(1), 1)
    with pytest.raises(ValueError, match="P2POp"):
        dist.batch_isend_irecv(["not an op"])
    with pytest.raises(ValueError, match="empty"):
        dist.batch_isend_irecv([])


def test_bad_backend_name_says_which_exist():
    with pytest.raises(ValueError, match="unknown backend 'ucc'.*'gloo'"):
        dist.init_process_group(backend="ucc")
    with pytest.raises(TypeError, match="string"):
        dist.init_process_group(backend=3)


# ------------------------------------------------------------------ Work and Future


def test_completed_work_and_its_future():
    t = mg.ones(2)
    work = Work([t])
    assert work.wait() and work.is_completed() and work.is_success() and work.result() == [t]
    fut = work.get_future()
    assert fut.done() and fut.wait()[0] is t and fut.value()[0] is t
    assert fut.then(lambda f: f.value()[0].sum().item()).wait() == 2.0
    with pytest.raises(ValueError, match="only a receive"):
        work.source_rank()


def test_pending_work_runs_its_finish_once_and_its_callbacks():
    calls = []
    state = {"ready": False}

    def finish(timeout):
        if timeout is not None and not state["ready"]:
            raise dist.DistBackendError("not complete")
        calls.append(timeout)

    work = Work(["out"], finish=finish, test=lambda: state["ready"], source=lambda: 3)
    fut = work.get_future()
    chained = fut.then(lambda f: f.value() + ["then"])
    assert not work.is_completed() and not fut.done()
    with pytest.raises(dist.DistBackendError):
        work.wait(timeout=timedelta(milliseconds=1))  # runs out: still pending
    assert not work.is_completed()
    state["ready"] = True
    assert work.is_completed() and fut.done() and chained.done()
    assert work.wait() and calls == [None]  # finish ran once
    assert chained.wait() == ["out", "then"] and work.source_rank() == 3


def test_failed_work_raises_from_wait_and_future():
    def finish(timeout):
        raise dist.DistributedError("boom")

    work = Work([], finish=finish)
    fut = work.get_future()
    later = fut.then(lambda f: f.value())
    with pytest.raises(dist.DistributedError, match="boom"):
        work.wait()
    assert not work.is_success() and isinstance(work.exception(), dist.DistributedError)
    with pytest.raises(dist.DistributedError, match="boom"):
        later.wait()
    f = Future()
    f.set_result(5)
    assert f.done() and f.wait() == 5
