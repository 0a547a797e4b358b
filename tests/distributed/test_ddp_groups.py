"""DistributedDataParallel and SyncBatchNorm on process groups, with PyTorch's comm hooks,
join() for uneven inputs, find_unused_parameters, static_graph and gradient_as_bucket_view.

The multi-rank checks run as two scenarios of ``mpi_worker_ddp_groups.py`` under
``mpiexec -n 4`` (ranks {0, 1} and {2, 3} as pairs; many checks per run), against
averages computed from each rank's known batch; one PyTorch script runs unchanged under
PyTorch itself (gloo) and under ``manygrad run``, and the two must print the same numbers.
"""

import inspect
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mpirun import env, mpiexec_or_skip

import manygrad as mg
from manygrad import compat
from manygrad import distributed as dist
from manygrad.distributed.algorithms import Join, Joinable, JoinHook
from manygrad.distributed.algorithms.ddp_comm_hooks import default_hooks
from manygrad.nn.parallel import DistributedDataParallel

HERE = Path(__file__).parent
WORKER = HERE / "mpi_worker_ddp_groups.py"
SCRIPT = HERE / "ddp_torch_script.py"


def _mpi(args, n, timeout=240, **extra):
    cmd = [mpiexec_or_skip(), "-n", str(n), sys.executable, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env(**extra))


def _ok(res, tag, n=4):
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    for r in range(n):
        assert f"OK {tag} rank {r}" in out, out[-6000:]


@pytest.mark.mpi
def test_groups_hooks_unused_parameters_and_join_on_four_ranks():
    """One DDP per pair (cpu and fakegpu), models on even/odd ranks and on every rank in
    one backward, a group that leaves rank 3 out, no_sync, SyncBatchNorm per pair and
    convert_sync_batchnorm(module, group), constructor errors and warnings; the default
    hooks and wrappers, what GradBucket shows, hook errors; find_unused_parameters, the
    next-forward error, static_graph, two outputs, checkpoint, gradient_as_bucket_view;
    join() on the world and per pair, with a hook, buffers, no_sync and
    throw_on_early_termination; then the hybrid example of docs/distributed.md."""
    res = _mpi([WORKER, "all"], 4)
    _ok(res, "all")
    norms = dict(re.findall(r"rank (\d), pair \[\d, \d\]: \|w\| = ([\d.]+)", res.stdout))
    assert sorted(norms) == ["0", "1", "2", "3"], res.stdout
    assert norms["0"] == norms["1"] != norms["2"] == norms["3"], norms


@pytest.mark.mpi
def test_pairs_through_the_nccl_code_path_on_fakegpu():
    """backend="nccl" with the fake GPU: a group's own (fake) NCCL communicator carries
    DDP's buckets and the hooks' all-reduces."""
    _ok(_mpi([WORKER, "nccl"], 2, MANYGRAD_DIST_FAKEGPU=1), "nccl", n=2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _written(res, where: Path) -> dict:
    assert res.returncode == 0, (res.stdout + res.stderr)[-6000:]
    return {r: json.loads((where / f"rank{r}.json").read_text()) for r in (0, 1)}


def _compare(ours, theirs, path=""):
    if isinstance(theirs, dict):
        assert sorted(ours) == sorted(theirs), path
        for k in theirs:
            _compare(ours[k], theirs[k], f"{path}.{k}")
    elif isinstance(theirs, list) and theirs and isinstance(theirs[0], float):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12, err_msg=path)
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), (path, ours, theirs)
        for i, (a, b) in enumerate(zip(ours, theirs)):
            _compare(a, b, f"{path}[{i}]")
    else:
        assert ours == theirs, (path, ours, theirs)


@pytest.mark.mpi
@pytest.mark.slow
def test_pytorch_script_gives_pytorchs_numbers(tmp_path):
    """find_unused + fp16 hook + join(divide_by_initial_world_size=False) + momentum SGD,
    allreduce hook + no_sync + gradient_as_bucket_view, static_graph, and the unused
    parameter error: PyTorch (gloo) and `manygrad run` agree to 1e-12 on both ranks."""
    pytest.importorskip("torch.distributed")
    if not torch.distributed.is_gloo_available():
        pytest.skip("this PyTorch has no gloo backend")
    a, b = tmp_path / "torch", tmp_path / "manygrad"
    a.mkdir()
    b.mkdir()
    theirs = _mpi([SCRIPT], 2, MASTER_ADDR="127.0.0.1", MASTER_PORT=_free_port(), OUT_DIR=a)
    ours = _mpi(["-m", "manygrad", "run", SCRIPT], 2, OUT_DIR=b)
    theirs, ours = _written(theirs, a), _written(ours, b)
    for r in (0, 1):
        assert theirs[r]["strict_error"][0].startswith("Expected to have finished reduction")
        _compare(ours[r], theirs[r], f"rank {r}")


# ------------------------------------------------------------------ no process group needed


def _params(fn) -> list:
    return list(inspect.signature(fn).parameters)


@pytest.mark.parametrize("ours, theirs", [
    (DistributedDataParallel.__init__, torch.nn.parallel.DistributedDataParallel.__init__),
    (DistributedDataParallel.register_comm_hook,
     torch.nn.parallel.DistributedDataParallel.register_comm_hook),
    (DistributedDataParallel.join, torch.nn.parallel.DistributedDataParallel.join),
    (DistributedDataParallel.join_hook, torch.nn.parallel.DistributedDataParallel.join_hook),
    (mg.nn.SyncBatchNorm.__init__, torch.nn.SyncBatchNorm.__init__),
    (mg.nn.SyncBatchNorm.convert_sync_batchnorm, torch.nn.SyncBatchNorm.convert_sync_batchnorm),
    (Join.__init__, torch.distributed.algorithms.Join.__init__),
    (Join.notify_join_context, torch.distributed.algorithms.Join.notify_join_context),
    (mg.futures.Future.__init__, torch.futures.Future.__init__),
    (mg.futures.collect_all, torch.futures.collect_all),
    (mg.futures.wait_all, torch.futures.wait_all),
])  # fmt: skip
def test_signatures_match_pytorch(ours, theirs):
    assert _params(ours) == _params(theirs)


def test_default_hooks_match_pytorchs():
    from torch.distributed.algorithms.ddp_comm_hooks import DDPCommHookType as TheirTypes
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks as theirs

    from manygrad.distributed.algorithms.ddp_comm_hooks import DDPCommHookType

    assert default_hooks.__all__ == sorted(theirs.__all__)
    for name in theirs.__all__:
        assert _params(getattr(default_hooks, name)) == _params(getattr(theirs, name)), name
    assert {t.name for t in DDPCommHookType} <= {t.name for t in TheirTypes}
    for hook in (default_hooks.allreduce_hook, default_hooks.fp16_compress_hook):
        sig = inspect.signature(hook)  # what register_comm_hook accepts as annotations
        assert sig.parameters["bucket"].annotation is dist.GradBucket
        assert sig.return_annotation == mg.futures.Future[mg.Tensor]
    wrapped = default_hooks.fp16_compress_wrapper(default_hooks.allreduce_hook)
    assert wrapped.__name__ == theirs.fp16_compress_wrapper(theirs.allreduce_hook).__name__
    with pytest.raises(ValueError, match="init_process_group"):
        default_hooks.allreduce_hook(None, dist.GradBucket(0, 1, mg.ones(2), [mg.ones(2)], [0]))


def test_join_classes_match_pytorchs():
    tj = torch.distributed.algorithms.join
    assert [n for n in vars(JoinHook) if not n.startswith("_")] == [
        n for n in vars(tj.JoinHook) if not n.startswith("_")
    ]
    assert Joinable.__abstractmethods__ == tj.Joinable.__abstractmethods__
    assert issubclass(DistributedDataParallel, Joinable)
    with pytest.raises(ValueError, match="at least one joinable"):
        Join([])
    with pytest.raises(TypeError, match="not a Joinable"):
        Join([mg.nn.Linear(1, 1)])


def test_grad_bucket_matches_pytorchs_methods():
    public = {n for n in dir(torch.distributed.GradBucket) if not n.startswith("_")}
    assert public == {n for n in dir(dist.GradBucket) if not n.startswith("_")}
    w, b = mg.zeros(2, 3), mg.zeros(2)
    flat = mg.arange(8.0)
    bucket = dist.GradBucket(1, 2, flat, [w, b], [0, 6])
    assert bucket.index() == 1 and bucket.is_last() and bucket.parameters() == [w, b]
    gw, gb = bucket.gradients()
    assert tuple(gw.shape) == (2, 3) and gb.tolist() == [6.0, 7.0]
    gw.mul_(2)  # views of the buffer
    assert flat.tolist()[:6] == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    half = flat.to(mg.float16)
    bucket.set_buffer(half)
    assert bucket.buffer() is half and bucket.gradients()[1].dtype is mg.float16
    with pytest.raises(TypeError, match="Tensor"):
        bucket.set_buffer(np.zeros(8))
    with pytest.raises(ValueError, match="8 elements"):
        bucket.set_buffer(mg.zeros(3))


def test_futures_behave_as_pytorchs():
    for lib in (torch, mg):
        f = lib.futures.Future()
        assert not f.done()
        chained = f.then(lambda fut: fut.value() * 2)
        f.set_result(21)
        assert f.done() and f.wait() == 21 and chained.wait() == 42
        g = lib.futures.Future()
        g.set_result(1)
        all_of = lib.futures.collect_all([f, g])
        assert [x.wait() for x in all_of.wait()] == [21, 1]
        assert lib.futures.wait_all([f, g]) == [21, 1]
        failed = lib.futures.Future()
        failed.set_exception(ValueError("boom"))
        with pytest.raises(ValueError, match="boom"):
            failed.wait()
    assert mg.futures.Future[mg.Tensor] == mg.futures.Future[mg.Tensor]
    with pytest.raises(RuntimeError, match="set_result"):
        mg.futures.Future().wait()  # PyTorch would block forever


def test_pytorch_hook_modules_import_under_manygrad_run(tmp_path):
    script = tmp_path / "hooks.py"
    script.write_text(
        "import torch\n"
        "import torch.distributed as dist\n"
        "from torch.distributed.algorithms.ddp_comm_hooks import default_hooks as default\n"
        "from torch.distributed.algorithms.ddp_comm_hooks import DDPCommHookType, "
        "register_ddp_comm_hook\n"
        "from torch.distributed.algorithms.join import Join, Joinable, JoinHook\n"
        "from torch.distributed.algorithms import Join as J2\n"
        "def noop(state, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:\n"
        "    fut = torch.futures.Future()\n"
        "    fut.set_result(bucket.buffer())\n"
        "    return fut\n"
        "result = (default, DDPCommHookType, register_ddp_comm_hook, Join, J2, noop)\n"
    )
    g = compat.run_script(str(script), [])
    default, types, register, join, j2, noop = g["result"]
    assert default.fp16_compress_hook is default_hooks.fp16_compress_hook
    assert join is j2 is Join and types.ALLREDUCE.name == "ALLREDUCE"
    DistributedDataParallel._check_comm_hook(noop)  # PyTorch's annotations are accepted
    bucket = dist.GradBucket(0, 1, mg.ones(3), [mg.zeros(3)], [0])
    assert noop(None, bucket).wait() is bucket.buffer()
