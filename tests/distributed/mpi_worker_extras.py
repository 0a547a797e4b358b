"""torch.distributed.nn, ZeroRedundancyOptimizer and DeviceMesh on 2 ranks: run by
test_dist_extras.py as ``mpiexec -n 2 python mpi_worker_extras.py OUT_DIR``.

Each rank's inputs come from formulas of its rank; each rank saves what it got (outputs,
gradients, weights, state dicts) to ``OUT_DIR/rank<r>.npz`` (and ``rank<r>.json``), where
the test compares them with PyTorch run in one process on the combined data. Prints
``OK extras rank <r>``.
"""

import json
import sys
from pathlib import Path

import numpy as np

import manygrad as mg
import manygrad.distributed as dist
import manygrad.distributed.nn as dist_nn
from manygrad.distributed.device_mesh import DeviceMesh, init_device_mesh
from manygrad.distributed.optim import ZeroRedundancyOptimizer
from manygrad.nn.parallel import DDP

F64 = mg.float64
OUT = Path(sys.argv[1])


def x_of(rank, k=0, shape=(4, 4)):
    n = int(np.prod(shape))
    return np.cos(np.arange(n).reshape(shape) * (0.3 + 0.1 * rank) + k)


def leaf(a, device):
    return mg.tensor(a, dtype=F64, device=device, requires_grad=True)


def host(t):
    return t.detach().cpu().numpy()


def collectives_with_grads(rank, device, res):
    """Each op: forward, a rank-weighted loss, backward; save outputs and x.grad."""
    w = rank + 1

    def run(name, fn, k):
        x = leaf(x_of(rank, k), device)
        outs = fn(x)
        outs = outs if isinstance(outs, tuple) else (outs,)
        y = mg.cat(list(outs))
        loss = (y.sin() * w).sum() if name != "all_gather" else ((x @ y.T).sin() * w).sum()
        loss.backward()
        res[f"{device}/{name}/out"] = host(y)
        res[f"{device}/{name}/grad"] = host(x.grad)
        assert y.device == x.device, (name, y.device)

    def empty(*shape):
        return mg.empty(*shape, dtype=F64, device=device)

    ins, outs = ([1, 3], [1, 2]) if rank == 0 else ([2, 2], [3, 2])
    run("all_gather", lambda x: dist_nn.all_gather(x), 1)
    run("all_reduce", lambda x: dist_nn.all_reduce(x), 2)
    run("reduce_scatter", lambda x: dist_nn.reduce_scatter(empty(2, 4), [x[:2], x[2:] * 2]), 3)
    run("all_to_all", lambda x: dist_nn.all_to_all([empty(2, 4), empty(2, 4)], [x[:2], x[2:]]), 4)
    run("all_to_all_single",
        lambda x: dist_nn.all_to_all_single(empty(sum(outs), 4), x, outs, ins), 5)  # fmt: skip
    run("broadcast", lambda x: dist_nn.broadcast(x, src=1), 6)
    run("reduce", lambda x: dist_nn.reduce(x, dst=0), 7)
    run("gather", lambda x: dist_nn.gather(x, dst=0), 8)
    run("scatter", lambda x: dist_nn.scatter([x[:2], x[2:]], src=0), 9)


def net():
    m = mg.nn.Sequential(mg.nn.Linear(4, 5, dtype=F64), mg.nn.Tanh(), mg.nn.Linear(5, 3, dtype=F64))
    with mg.no_grad():
        for i, p in enumerate(m.parameters()):
            p.copy_(mg.tensor(np.sin(np.arange(p.numel()) * 0.37 + i).reshape(tuple(p.shape))))
    return m


def batch(rank, step):
    return mg.tensor(x_of(rank, 10 + step, (3, 4)), dtype=F64)


def zero(rank, res, meta, bucket_view):
    """DDP + ZeRO(Adam): 3 steps, consolidate + state_dict, load it into a fresh ZeRO,
    3 more steps, a new param group, 2 more steps."""
    tag = f"zero{int(bucket_view)}"
    model = net()
    ddp = DDP(model)
    params = list(model.parameters())
    opt = ZeroRedundancyOptimizer(params[:2], mg.optim.Adam, parameters_as_bucket_view=bucket_view,
                                  lr=0.05, betas=(0.8, 0.9))  # fmt: skip
    meta[tag + "/owners"] = [opt._param_to_rank[p] for p in params[:2]]
    meta[tag + "/local"] = sum(p.numel() for g in opt.optim.param_groups for p in g["params"])

    def train(o, steps, first):
        for s in range(first, first + steps):
            model.zero_grad()
            (ddp(batch(rank, s)) ** 2).mean().backward()
            o.step()

    train(opt, 3, 0)
    opt.consolidate_state_dict(to=0)
    if rank == 0:
        sd = opt.state_dict()
        meta[tag + "/state_keys"] = sorted(sd["state"])
        meta[tag + "/groups"] = [{k: list(v) if isinstance(v, tuple) else v
                                  for k, v in g.items()} for g in sd["param_groups"]]  # fmt: skip
        for i, st in sd["state"].items():
            for k, v in st.items():
                res[f"{tag}/sd/{i}/{k}"] = host(v)
    else:
        try:
            opt.state_dict()
        except RuntimeError as e:
            meta[tag + "/not_consolidated"] = str(e)
    box = [sd if rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    opt = ZeroRedundancyOptimizer(params[:2], mg.optim.Adam, parameters_as_bucket_view=bucket_view,
                                  lr=0.01)  # fmt: skip
    opt.load_state_dict(box[0])
    meta[tag + "/loaded_lr"] = opt.param_groups[0]["lr"]
    train(opt, 3, 3)
    opt.add_param_group({"params": params[2:], "lr": 0.02})
    meta[tag + "/owners2"] = [opt._param_to_rank[p] for p in params]
    train(opt, 2, 6)
    for i, p in enumerate(params):
        res[f"{tag}/w{i}"] = host(p)


def mesh(rank, res, meta):
    """A 1-D mesh and a (2, 1) mesh: groups, ranks, coordinates, slices, DDP on a slice."""
    m1 = init_device_mesh("cpu", (2,), mesh_dim_names=("dp",))
    t = mg.tensor([float(rank + 1)])
    dist.all_reduce(t, group=m1.get_group())
    meta["mesh1"] = {
        "sum": t.tolist(), "ndim": m1.ndim, "shape": list(m1.shape), "size": m1.size(),
        "local": m1.get_local_rank(), "coord": list(m1.get_coordinate()),
        "mesh": m1.mesh.tolist(), "names": list(m1.mesh_dim_names), "repr": repr(m1),
        "same": m1["dp"] is m1, "dtype": str(m1.mesh.dtype),
    }  # fmt: skip
    m2 = init_device_mesh("cpu", (2, 1), mesh_dim_names=("dp", "tp"))
    dp, tp = m2["dp"], m2["tp"]
    a = mg.tensor([float(10 * (rank + 1))])
    b = mg.tensor([float(10 * (rank + 1))])
    dist.all_reduce(a, group=m2.get_group("dp"))
    dist.all_reduce(b, group=tp.get_group())
    g = [mg.zeros(1) for _ in range(2)]
    dist.all_gather(g, mg.tensor([float(rank)]), group=m2.get_group(0))
    try:
        m2.get_group()
        need_dim = None
    except RuntimeError as e:
        need_dim = str(e)
    meta["mesh2"] = {
        "dp_sum": a.tolist(), "tp_sum": b.tolist(), "gathered": [x.item() for x in g],
        "shape": list(m2.shape), "size": m2.size(), "size1": m2.size(1),
        "coord": list(m2.get_coordinate()), "local_dp": m2.get_local_rank("dp"),
        "local_tp": m2.get_local_rank(1), "dp_mesh": dp.mesh.tolist(),
        "tp_mesh": tp.mesh.tolist(), "dp_repr": repr(dp), "tp_repr": repr(tp), "repr": repr(m2),
        "tp_size": dist.get_world_size(tp.get_group()),
        "swapped": m2["tp", "dp"].mesh.tolist(), "need_dim": need_dim,
        "root": dp._get_root_mesh() is m2, "eq": dp == m2["dp"],
    }  # fmt: skip
    try:
        DDP(net(), device_mesh=m2)
    except RuntimeError as e:
        meta["mesh2"]["ddp_2d"] = str(e)
    m = DeviceMesh("cpu", [1, 0])  # group ranks in the mesh's order
    meta["mesh_rev"] = {"local": m.get_local_rank(), "coord": list(m.get_coordinate())}
    # DDP on the dp slice averages over both ranks
    model = net()
    ddp = DDP(model, device_mesh=dp)
    (ddp(batch(rank, 0)) ** 2).mean().backward()
    res["mesh/ddp_grad0"] = host(next(iter(model.parameters())).grad)
    meta["mesh_ddp_group_size"] = dist.get_world_size(ddp.process_group)


def main():
    dist.init_process_group()
    rank = dist.get_rank()
    res, meta = {}, {}
    for device in ("cpu", "fakegpu"):
        collectives_with_grads(rank, device, res)
    zero(rank, res, meta, bucket_view=False)
    zero(rank, res, meta, bucket_view=True)
    mesh(rank, res, meta)
    np.savez(OUT / f"rank{rank}.npz", **res)
    (OUT / f"rank{rank}.json").write_text(json.dumps(meta))
    dist.barrier()
    print(f"OK extras rank {rank}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
