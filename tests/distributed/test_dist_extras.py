"""torch.distributed.nn (collectives with gradients), ZeroRedundancyOptimizer, DeviceMesh
and DDP(device_mesh=) on 2 ranks, against PyTorch run in one process on the combined data.

One ``mpiexec -n 2`` run of ``mpi_worker_extras.py`` (module fixture) does every
multi-rank check and saves what each rank got; the tests below compare it.
"""

import inspect
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from mpirun import env, mpiexec_or_skip

WORKER = Path(__file__).with_name("mpi_worker_extras.py")
T64 = torch.float64


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("extras")
    cmd = [mpiexec_or_skip(), "-n", "2", sys.executable, str(WORKER), str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env())
    log = (res.stdout + res.stderr)[-6000:]
    assert res.returncode == 0, log
    assert "OK extras rank 0" in res.stdout and "OK extras rank 1" in res.stdout, log
    return [
        (dict(np.load(out / f"rank{r}.npz")), json.loads((out / f"rank{r}.json").read_text()))
        for r in (0, 1)
    ]


def x_of(rank, k=0, shape=(4, 4)):
    n = int(np.prod(shape))
    a = np.cos(np.arange(n).reshape(shape) * (0.3 + 0.1 * rank) + k)
    return torch.tensor(a, dtype=T64, requires_grad=True)


# ------------------------------------------------------------------ torch.distributed.nn
# Each op as PyTorch defines it, on both ranks' inputs at once: (the output each rank
# sees, the sum of the losses whose gradients reach the inputs). Rank r's loss is
# (sin(output) * (r + 1)).sum(); reduce and gather differentiate dst's output only, as
# PyTorch's backward does.
SPLITS = {0: ([1, 3], [1, 2]), 1: ([2, 2], [3, 2])}


def _loss(y, r):
    return (y.sin() * (r + 1)).sum()


def _ref(name, X):  # noqa: N803 - X: both ranks' inputs
    cat = torch.cat
    if name == "all_gather":
        y = cat(X)
        return [y, y], sum(((X[r] @ y.T).sin() * (r + 1)).sum() for r in (0, 1))
    if name == "all_reduce":
        ys = [X[0] + X[1]] * 2
    elif name == "reduce_scatter":
        ins = [[x[:2], x[2:] * 2] for x in X]
        ys = [ins[0][r] + ins[1][r] for r in (0, 1)]
    elif name == "all_to_all":
        ys = [cat([X[s][2 * r : 2 * r + 2] for s in (0, 1)]) for r in (0, 1)]
    elif name == "all_to_all_single":
        pieces = [torch.split(X[s], SPLITS[s][0]) for s in (0, 1)]
        ys = [cat([pieces[s][r] for s in (0, 1)]) for r in (0, 1)]
    elif name == "broadcast":
        ys = [X[1], X[1]]
    elif name == "scatter":
        ys = [X[0][:2], X[0][2:]]
    elif name == "reduce":
        return [X[0] + X[1], X[1]], _loss(X[0] + X[1], 0)
    elif name == "gather":
        return [cat(X), torch.zeros(8, 4, dtype=T64)], _loss(cat(X), 0)
    return ys, sum(_loss(ys[r], r) for r in (0, 1))


OPS = ["all_gather", "all_reduce", "reduce_scatter", "all_to_all", "all_to_all_single",
       "broadcast", "reduce", "gather", "scatter"]  # fmt: skip


@pytest.mark.mpi
@pytest.mark.parametrize("device", ["cpu", "fakegpu"])
@pytest.mark.parametrize("name", OPS)
def test_collective_values_and_gradients_match_pytorch(ranks, name, device):
    k = OPS.index(name) + 1
    X = [x_of(r, k) for r in (0, 1)]  # noqa: N806
    ys, total = _ref(name, X)
    total.backward()
    for r in (0, 1):
        got = ranks[r][0]
        np.testing.assert_allclose(got[f"{device}/{name}/out"], ys[r].detach().numpy(),
                                   rtol=0, atol=1e-12, err_msg=f"{name} rank {r}")  # fmt: skip
        want = X[r].grad if X[r].grad is not None else torch.zeros(4, 4, dtype=T64)
        np.testing.assert_allclose(got[f"{device}/{name}/grad"], want.numpy(), rtol=0,
                                   atol=1e-12, err_msg=f"{name} grad rank {r}")  # fmt: skip


# ------------------------------------------------------------------ ZeroRedundancyOptimizer
def _net():
    m = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).double()
    with torch.no_grad():
        for i, p in enumerate(m.parameters()):
            p.copy_(torch.tensor(np.sin(np.arange(p.numel()) * 0.37 + i)).reshape(p.shape))
    return m


def _batch(step):
    return torch.cat([x_of(r, 10 + step, (3, 4)).detach() for r in (0, 1)])


def _torch_partition(groups, world_size):
    """PyTorch's own partitioning code, run on plain parameter groups."""
    from torch.distributed.optim import ZeroRedundancyOptimizer as Z

    fake = types.SimpleNamespace(param_groups=groups, world_size=world_size,
                                 _partition_parameters_cache=[])  # fmt: skip
    fake._get_min_index = lambda values, disallowed=None: Z._get_min_index(fake, values, disallowed)
    fake._partition_param_group = lambda g, per_rank: Z._partition_param_group(fake, g, per_rank)
    parts = Z._partition_parameters(fake)
    return {id(p): r for r, gs in enumerate(parts) for g in gs for p in g["params"]}


@pytest.mark.mpi
@pytest.mark.parametrize("bucket_view", [False, True])
def test_zero_with_ddp_matches_one_process_adam(ranks, bucket_view):
    """3 steps, consolidate + state_dict on rank 0 (PyTorch's layout and values), load it
    into a new ZeRO, 3 steps, add a parameter group, 2 steps: the same weights as one
    Adam on the combined batch."""
    tag = f"zero{int(bucket_view)}"
    model = _net()
    params = list(model.parameters())
    opt = torch.optim.Adam(params[:2], lr=0.05, betas=(0.8, 0.9))

    def train(steps, first):
        for s in range(first, first + steps):
            model.zero_grad()
            (model(_batch(s)) ** 2).mean().backward()
            opt.step()

    train(3, 0)
    sd = opt.state_dict()
    (res0, meta0), (_, meta1) = ranks
    assert meta0[tag + "/state_keys"] == sorted(sd["state"])
    theirs_groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()}
                     for g in sd["param_groups"]]  # fmt: skip
    ours_groups = meta0[tag + "/groups"]
    for ours, theirs in zip(ours_groups, theirs_groups):
        for key in ("lr", "betas", "eps", "weight_decay", "amsgrad", "params"):
            assert ours[key] == theirs[key], key
    for i, st in sd["state"].items():
        for k, v in st.items():
            np.testing.assert_allclose(res0[f"{tag}/sd/{i}/{k}"], v.numpy(), rtol=0, atol=1e-12)
    assert "consolidate_state_dict(to=1)" in meta1[tag + "/not_consolidated"]
    opt = torch.optim.Adam(params[:2], lr=0.01)
    opt.load_state_dict(sd)
    assert meta0[tag + "/loaded_lr"] == opt.param_groups[0]["lr"] == 0.05
    train(3, 3)
    opt.add_param_group({"params": params[2:], "lr": 0.02})
    train(2, 6)
    for r in (0, 1):
        for i, p in enumerate(params):
            np.testing.assert_allclose(ranks[r][0][f"{tag}/w{i}"], p.detach().numpy(), rtol=0,
                                       atol=1e-6, err_msg=f"rank {r} param {i}")  # fmt: skip
    # the owners are PyTorch's, before and after add_param_group
    owners = _torch_partition([{"params": params[:2]}], 2)
    assert meta0[tag + "/owners"] == meta1[tag + "/owners"] == [owners[id(p)] for p in params[:2]]
    owners = _torch_partition([{"params": params[:2]}, {"params": params[2:]}], 2)
    assert meta0[tag + "/owners2"] == [owners[id(p)] for p in params]
    assert meta0[tag + "/local"] + meta1[tag + "/local"] == 25


@pytest.mark.parametrize("sizes, world", [
    ([[5, 3, 3, 8, 1, 1]], 2),
    ([[7, 2, 2, 2], [9, 1, 4]], 3),
    ([[4, 4, 4, 4, 4]], 2),
    ([[1], [6, 6], [2, 3, 5, 8]], 4),
])  # fmt: skip
def test_partition_is_pytorchs(sizes, world):
    import manygrad as mg
    from manygrad.distributed.optim.zero_redundancy_optimizer import _partition

    theirs = [{"params": [torch.zeros(n) for n in g]} for g in sizes]
    ours = [{"params": [mg.zeros(n) for n in g]} for g in sizes]
    want = _torch_partition(theirs, world)
    parts = _partition(ours, world)
    got = {id(p): r for r, gs in enumerate(parts) for g in gs for p in g["params"]}
    for g_ours, g_theirs in zip(ours, theirs):
        assert [got[id(p)] for p in g_ours["params"]] == [want[id(p)] for p in g_theirs["params"]]


# ------------------------------------------------------------------ DeviceMesh
@pytest.mark.mpi
def test_device_mesh_groups_and_ranks(ranks):
    for r in (0, 1):
        meta = ranks[r][1]
        m1 = meta["mesh1"]
        assert m1["sum"] == [3.0] and m1["local"] == r and m1["coord"] == [r]
        assert (m1["ndim"], m1["shape"], m1["size"], m1["mesh"]) == (1, [2], 2, [0, 1])
        assert m1["names"] == ["dp"] and m1["same"] and m1["dtype"] == "manygrad.int32"
        assert m1["repr"] == "DeviceMesh((dp=2), 'cpu', stride=(1,))"
        m2 = meta["mesh2"]
        # dim 0 ("dp") joins both ranks; dim 1 ("tp") is each rank alone
        assert m2["dp_sum"] == [30.0] and m2["tp_sum"] == [10.0 * (r + 1)]
        assert m2["gathered"] == [0.0, 1.0] and m2["tp_size"] == 1
        assert m2["shape"] == [2, 1] and m2["size"] == 2 and m2["size1"] == 1
        assert m2["coord"] == [r, 0] and m2["local_dp"] == r and m2["local_tp"] == 0
        assert m2["dp_mesh"] == [0, 1] and m2["tp_mesh"] == [r] and m2["swapped"] == [[0, 1]]
        assert m2["repr"] == "DeviceMesh((dp=2, tp=1), 'cpu', stride=(1, 1))"
        assert m2["root"] and m2["eq"] and "mesh_dim" in m2["need_dim"]
        assert m2["ddp_2d"].startswith("Only 1D device mesh is supported")
        assert meta["mesh_rev"] == {"local": 1 - r, "coord": [1 - r]}
        assert meta["mesh_ddp_group_size"] == 2
    # DDP(device_mesh=mesh["dp"]) averaged the two ranks' gradients
    model = _net()
    (model(_batch(0)) ** 2).mean().backward()
    want = next(model.parameters()).grad.numpy()
    for r in (0, 1):
        np.testing.assert_allclose(ranks[r][0]["mesh/ddp_grad0"], want, rtol=0, atol=1e-12)


# ------------------------------------------------------------------ no process group needed
def _params(fn):
    return list(inspect.signature(fn).parameters)


def test_signatures_match_pytorch():
    import torch.distributed.nn.functional as theirs
    from torch.distributed.device_mesh import DeviceMesh as TheirMesh
    from torch.distributed.device_mesh import init_device_mesh as their_init
    from torch.distributed.optim import ZeroRedundancyOptimizer as TheirZero

    import manygrad.distributed.nn.functional as ours
    from manygrad.distributed.device_mesh import DeviceMesh, init_device_mesh
    from manygrad.distributed.optim import ZeroRedundancyOptimizer

    for name in OPS:
        assert _params(getattr(ours, name)) == _params(getattr(theirs, name)), name
    assert _params(ZeroRedundancyOptimizer.__init__) == _params(TheirZero.__init__)
    for m in ("consolidate_state_dict", "state_dict", "load_state_dict", "add_param_group",
              "step", "join_hook"):  # fmt: skip
        assert _params(getattr(ZeroRedundancyOptimizer, m)) == _params(getattr(TheirZero, m)), m
    assert _params(init_device_mesh) == _params(their_init)
    for m in ("size", "get_group", "get_local_rank", "get_coordinate", "get_rank",
              "get_all_groups", "__getitem__"):  # fmt: skip
        assert _params(getattr(DeviceMesh, m)) == _params(getattr(TheirMesh, m)), m


def test_errors_without_ranks():
    import manygrad as mg
    from manygrad.distributed.device_mesh import init_device_mesh
    from manygrad.distributed.optim import ZeroRedundancyOptimizer

    with pytest.raises(RuntimeError, match="unique"):
        init_device_mesh("cpu", (1, 1), mesh_dim_names=("a", "a"))
    with pytest.raises(RuntimeError, match="same length"):
        init_device_mesh("cpu", (1,), mesh_dim_names=("a", "b"))
    with pytest.raises(RuntimeError, match="index is not supported"):
        init_device_mesh("cuda:0", (1,))
    with pytest.raises(NotImplementedError, match="overlap_with_ddp"):
        ZeroRedundancyOptimizer([mg.zeros(2)], mg.optim.SGD, overlap_with_ddp=True, lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        ZeroRedundancyOptimizer([], mg.optim.SGD, lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        ZeroRedundancyOptimizer(mg.zeros(2), mg.optim.SGD, lr=0.1)
