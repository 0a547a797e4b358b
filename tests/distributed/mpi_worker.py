"""Scenarios run under ``mpiexec -n 2`` by the distributed tests: ``python mpi_worker.py NAME``.

Each scenario checks its own results and prints ``OK <name> rank <r>`` when they hold.
"""

import contextlib
import os
import sys
import time

import numpy as np

import manygrad as mg
import manygrad.distributed as dist
from manygrad.nn.module import Module
from manygrad.nn.parameter import Parameter

DTYPES = [mg.float32, mg.float64, mg.float16, mg.bfloat16, mg.int8, mg.int16, mg.int32,
          mg.int64, mg.uint8, mg.bool]  # fmt: skip


def host(t):
    return t.cpu().float().numpy().astype(np.float64) if t.dtype is mg.bfloat16 else t.cpu().numpy()


def collectives(device):
    r, w = dist.get_rank(), dist.get_world_size()
    base = np.arange(6, dtype=np.int64).reshape(2, 3)
    for dt in DTYPES:
        npdt = np.float32 if dt is mg.bfloat16 else dt.np

        def make(a, dt=dt):
            return mg.tensor(a).to(dt).to(device)

        def want(a, npdt=npdt):
            return np.asarray(a).astype(npdt)

        t = make(base + r)
        dist.all_reduce(t)
        expect = sum(base + k for k in range(w))
        if dt is mg.bool:  # sum of bools is their logical or
            expect = np.logical_or.reduce([(base + k) != 0 for k in range(w)])
        assert np.array_equal(host(t), want(expect)), (dt, host(t))
        t = make(base + r)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        assert np.array_equal(host(t), want(base + w - 1)), (dt, "max")
        b = make(base * (r + 1))
        dist.broadcast(b, src=w - 1)
        assert np.array_equal(host(b), want(base * w)), (dt, "broadcast")
        out = [make(np.zeros((2, 3), np.int64)) for _ in range(w)]
        dist.all_gather(out, make(np.full((2, 3), r)))
        for k in range(w):
            assert np.array_equal(host(out[k]), want(np.full((2, 3), k))), (dt, "all_gather")
        if dt is not mg.bool:
            o = make(np.zeros(3, np.int64))
            dist.reduce_scatter(o, [make(np.arange(3) + i + r) for i in range(w)])
            expect = sum(np.arange(3) + r + k for k in range(w))
            assert np.array_equal(host(o), want(expect)), (dt, "reduce_scatter", host(o))
    # a strided (non-contiguous) tensor is reduced in place through its view
    m = mg.tensor(np.arange(12.0).reshape(3, 4) * (r + 1)).to(device)
    col = m.T
    dist.all_reduce(col, op=dist.ReduceOp.AVG)
    expect = np.arange(12.0).reshape(3, 4).T * sum(k + 1 for k in range(w)) / w
    assert np.allclose(host(col), expect)
    if device == "fakegpu":  # GPU arrays through host memory (backend "mpi" on a GPU)
        from manygrad.distributed import nccl_backend, process_group

        g = process_group._group
        eng = nccl_backend.HostStagingEngine(process_group.HostEngine(g.mpi))
        a = mg.tensor(base + r).float().to(device)._data
        eng.all_reduce(a, "sum", "test", 0)
        assert np.array_equal(host(mg.Tensor._wrap(a)), sum(base + k for k in range(w)))
        eng.broadcast(a, 0, "test", 0)
        recv = mg.zeros(w, 2, 3, device=device)._data
        eng.all_gather(mg.full((2, 3), float(r), device=device)._data, recv, "test", 0)
        assert np.array_equal(host(mg.Tensor._wrap(recv))[:, 0, 0], np.arange(w))
    if device == "cpu":  # picklable objects, of different sizes on each rank
        objs = [f"run-{r}", {"rank": r}] if r == 0 else [None, None]
        dist.broadcast_object_list(objs, src=0)
        assert objs == ["run-0", {"rank": 0}], objs
        got = [None] * w
        dist.all_gather_object(got, {"rank": r, "pad": "x" * (10 * r)})
        assert got == [{"rank": k, "pad": "x" * (10 * k)} for k in range(w)], got
    print(f"OK collectives-{device} rank {r}", flush=True)


def mismatch():
    r = dist.get_rank()
    t = mg.zeros(3 + r)
    try:
        dist.all_reduce(t)
    except dist.DistributedError as e:
        msg = str(e)
        assert (
            "rank 0: all_reduce (3,) float32" in msg and "rank 1: all_reduce (4,) float32" in msg
        ), msg
        print(f"OK mismatch rank {r}: {msg}", flush=True)
    else:
        raise AssertionError("no error for mismatched shapes")
    t = mg.zeros(3, dtype=mg.float32 if r == 0 else mg.float64)
    try:
        dist.broadcast(t, 0)
    except dist.DistributedError as e:
        assert "float64" in str(e) and "float32" in str(e), str(e)
        print(f"OK dtype-mismatch rank {r}", flush=True)


class MLP(Module):
    def __init__(self):
        super().__init__()
        self.w1 = Parameter(mg.randn(4, 8, dtype=mg.float64) * 0.5)
        self.b1 = Parameter(mg.zeros(8, dtype=mg.float64))
        self.w2 = Parameter(mg.randn(8, 3, dtype=mg.float64) * 0.5)
        self.register_buffer("scale", mg.ones(3, dtype=mg.float64) * (1 + dist.get_rank()))

    def forward(self, x):
        return ((x @ self.w1 + self.b1).tanh() @ self.w2) * self.scale


def sgd(model, lr=0.1):
    with mg.no_grad():
        for p in model.parameters():
            p._data -= lr * p.grad._data
            p.grad = None


def ddp_equivalence(accumulate, device="cpu"):
    from manygrad.nn.parallel import DistributedDataParallel

    r, w = dist.get_rank(), dist.get_world_size()
    mg.manual_seed(0)
    ref = MLP()  # what rank 0 builds: the single-process reference
    ref.scale._data[...] = 1.0
    mg.manual_seed(0 if r == 0 else 100 + r)  # each rank starts elsewhere: DDP copies rank 0's
    # a tiny bucket cap: one bucket per parameter, to see them start during backward
    model = DistributedDataParallel(MLP().to(device), bucket_cap_mb=0.0002)
    assert len(model._reducer.buckets) == 3
    for (_, a), (_, b) in zip(ref.state_dict().items(), model.state_dict().items()):
        assert np.array_equal(a.numpy(), b.cpu().numpy())
    rng = np.random.default_rng(5)
    syncs = mg.backend.fake_stats.syncs
    per = 8 // w
    for _step in range(4):
        x = mg.tensor(rng.standard_normal((8, 4)))
        y = mg.tensor(rng.standard_normal((8, 3)))
        ((ref(x) - y) ** 2).mean().backward()
        sgd(ref)
        xs, ys = x[r * per : (r + 1) * per].to(device), y[r * per : (r + 1) * per].to(device)
        if accumulate:  # two micro-batches, the first without synchronisation
            h = per // 2
            with model.no_sync():
                (((model(xs[:h]) - ys[:h]) ** 2).mean() / 2).backward()
            (((model(xs[h:]) - ys[h:]) ** 2).mean() / 2).backward()
        else:
            ((model(xs) - ys) ** 2).mean().backward()
        if w > 1:
            assert model._reducer.launched_in_backward == 3, model._reducer.launched_in_backward
        sgd(model)
    assert mg.backend.fake_stats.syncs == syncs, "DDP read device data on the host"
    worst = max(
        float(np.abs(a.numpy() - b.cpu().numpy()).max())
        for a, b in zip(ref.state_dict().values(), model.state_dict().values())
    )
    assert worst < 1e-6, worst
    # a loss computed without the DDP wrapper: local gradients, averaged on request
    ((ref(x) - y) ** 2).mean().backward()
    ((model.module(xs) - ys) ** 2).mean().backward()
    model.finish_gradient_synchronization()
    for a, b in zip(ref.parameters(), model.module.parameters()):
        assert np.abs(a.grad.numpy() - b.grad.cpu().numpy()).max() < 1e-12
    if w > 1:  # an output fed back into the module within one backward: a clear error
        inner = model(xs)
        try:
            model(mg.cat([inner, inner[:, :1]], 1)).sum().backward()
        except RuntimeError as e:
            assert "reached the module's outputs twice" in str(e), e
        else:
            raise AssertionError("no error for an output fed back into the module")
    tag = "ddp" if device == "cpu" else f"ddp-{device}"
    print(f"OK {tag} accumulate={accumulate} rank {r} max diff {worst:.2e}", flush=True)


class Recommender(Module):
    """Three sparse tables (one looked up on rank 0 only) and, if ``tied``, a dense use of
    the first table as well (its gradient then comes out dense)."""

    def __init__(self, tied):
        super().__init__()
        self.users = mg.nn.Embedding(10, 4, sparse=True, dtype=mg.float64)
        self.items = mg.nn.EmbeddingBag(12, 4, mode="sum", sparse=True, dtype=mg.float64)
        self.extra = mg.nn.Embedding(10, 4, padding_idx=0, sparse=True, dtype=mg.float64)
        self.head = mg.nn.Linear(4, 1, dtype=mg.float64)
        self.tied = tied

    def forward(self, u, bags, rare=None):
        h = self.users(u) * self.items(bags)
        if rare is not None:
            h = h + self.extra(rare)
        out = self.head(h).squeeze(1)
        if self.tied:
            out = out + (h @ self.users.weight.t()).sum(1) * 0.01
        return out


def ddp_sparse(device="cpu", tied=False, accumulate=False):
    from manygrad.nn.parallel import DistributedDataParallel

    r, w = dist.get_rank(), dist.get_world_size()
    mg.manual_seed(0)
    ref = Recommender(tied)
    mg.manual_seed(0 if r == 0 else 7 + r)
    model = DistributedDataParallel(Recommender(tied).to(device))
    assert sorted(model._reducer.sparse) == [0, 1, 2]  # the tables sit outside the buckets
    sparse_names = {"items.weight", "extra.weight"} | (set() if tied else {"users.weight"})

    def optimizers(m):
        named = dict(m.named_parameters())
        return [
            mg.optim.SparseAdam([named[k] for k in sorted(sparse_names)], lr=0.05),
            mg.optim.Adam([p for k, p in named.items() if k not in sparse_names], lr=0.05),
        ]

    opts = optimizers(ref) + optimizers(model.module)
    rng = np.random.default_rng(3)
    per = 8 // w
    for step in range(4):
        u, bags = rng.integers(0, 10, 8), rng.integers(0, 12, (8, 3))
        y = rng.standard_normal(8)
        rare = None
        if step % 2:  # the extra table: rank 0's rows only (index 0 is its padding row)
            rare = np.r_[rng.integers(1, 10, per), np.zeros(8 - per, np.int64)]
        ref_out = ref(mg.tensor(u), mg.tensor(bags), None if rare is None else mg.tensor(rare))
        ((ref_out - mg.tensor(y)) ** 2).mean().backward()
        sl = slice(r * per, (r + 1) * per)
        mu, mb, my = (mg.tensor(a[sl]).to(device) for a in (u, bags, y))
        mr = mg.tensor(rare[sl]).to(device) if rare is not None and r == 0 else None
        if accumulate:  # two micro-batches, the first without synchronisation
            h = per // 2
            for part, ctx in (
                (slice(0, h), model.no_sync()),
                (slice(h, per), contextlib.nullcontext()),
            ):
                with ctx:
                    out = model(mu[part], mb[part], None if mr is None else mr[part])
                    (((out - my[part]) ** 2).mean() / 2).backward()
        else:
            ((model(mu, mb, mr) - my) ** 2).mean().backward()
        named = dict(model.module.named_parameters())
        for k, a in ref.named_parameters():
            b = named[k]
            if a.grad is None or b.grad is None:
                assert a.grad is None and b.grad is None and k == "extra.weight", k
                continue
            assert a.grad.is_sparse == b.grad.is_sparse == (k in sparse_names), k
            ga = a.grad.to_dense() if a.grad.is_sparse else a.grad
            gb = b.grad.to_dense() if b.grad.is_sparse else b.grad
            diff = float(np.abs(ga.numpy() - gb.cpu().numpy()).max())
            assert diff < 1e-12, (k, diff)
        for o in opts:
            o.step()
            o.zero_grad()
    worst = max(
        float(np.abs(a.detach().numpy() - b.detach().cpu().numpy()).max())
        for a, b in zip(ref.parameters(), model.module.parameters())
    )
    assert worst < 1e-10, worst
    print(f"OK ddp-sparse {device} tied={tied} accumulate={accumulate} rank {r} "
          f"max diff {worst:.2e}", flush=True)  # fmt: skip


def training_stack():
    """Linear layers + SGD + GradScaler + DistributedSampler + rank-0 checkpoint, vs 1 process."""
    from manygrad import nn, optim
    from manygrad.amp import GradScaler
    from manygrad.data import DataLoader, DistributedSampler, TensorDataset
    from manygrad.nn.parallel import DistributedDataParallel

    r, w = dist.get_rank(), dist.get_world_size()
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((48, 5)).astype(np.float32)
    xs[19] = 3e38  # an overflowing sample: that step must be skipped on every rank alike
    ds = TensorDataset(mg.tensor(xs), mg.tensor(rng.integers(0, 3, 48)))

    def build():
        mg.manual_seed(3)
        return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))

    def train(model, loader):
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        scaler = GradScaler("cpu", init_scale=2.0**10)
        loss_fn = nn.CrossEntropyLoss()
        for x, y in loader:
            opt.zero_grad()
            scaler.scale(loss_fn(model(x), y)).backward()
            scaler.step(opt)
            scaler.update()
        return scaler.get_scale()

    ref = build()
    ref_scale = train(ref, DataLoader(ds, batch_size=8 * w,
                                      sampler=DistributedSampler(ds, 1, 0, seed=4)))  # fmt: skip
    model = DistributedDataParallel(build())
    scale = train(model, DataLoader(ds, batch_size=8, sampler=DistributedSampler(ds, seed=4)))
    assert scale == ref_scale < 2.0**10, (scale, ref_scale)
    worst = max(
        float(np.abs(a.numpy() - b.numpy()).max())
        for a, b in zip(ref.state_dict().values(), model.state_dict().values())
    )
    assert worst < 1e-6, worst
    path = os.path.join(os.environ["RUN_DIR"], "ckpt.npz")
    if dist.is_main_process():
        np.savez(path, **{k: v.numpy() for k, v in model.state_dict().items()})
    dist.barrier()
    fresh = DistributedDataParallel(build())
    fresh.load_state_dict({"module." + k: mg.tensor(v) for k, v in np.load(path).items()})
    for a, b in zip(fresh.state_dict().values(), model.state_dict().values()):
        assert np.array_equal(a.numpy(), b.numpy())
    print(f"OK stack rank {r} max diff {worst:.2e} scale {scale}", flush=True)


def syncbn():
    """SyncBatchNorm on half batches equals BatchNorm2d on the whole batch: outputs, input
    gradients, summed weight gradients and running statistics."""
    r, w = dist.get_rank(), dist.get_world_size()
    rng = np.random.default_rng(0)
    full = rng.standard_normal((4 * w, 3, 5, 5))
    up = rng.standard_normal(full.shape)
    ref = mg.nn.BatchNorm2d(3).double()
    sync = mg.nn.SyncBatchNorm(3).double()
    for bn in (ref, sync):
        bn.weight.data.copy_(mg.tensor([1.0, 2.0, 0.5], dtype=mg.float64))
        bn.bias.data.copy_(mg.tensor([0.1, -0.2, 0.3], dtype=mg.float64))
    xf = mg.tensor(full, requires_grad=True)
    ref_out = ref(xf)
    (ref_out * mg.tensor(up)).sum().backward()
    part = slice(4 * r, 4 * (r + 1))
    xs = mg.tensor(full[part], requires_grad=True)
    out = sync(xs)
    (out * mg.tensor(up[part])).sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), ref_out.detach().numpy()[part], atol=1e-10)
    np.testing.assert_allclose(xs.grad.numpy(), xf.grad.numpy()[part], atol=1e-10)
    for p_s, p_r in ((sync.weight, ref.weight), (sync.bias, ref.bias)):
        g = p_s.grad.clone()
        dist.all_reduce(g)
        np.testing.assert_allclose(g.numpy(), p_r.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(sync.running_mean.numpy(), ref.running_mean.numpy(), atol=1e-12)
    np.testing.assert_allclose(sync.running_var.numpy(), ref.running_var.numpy(), atol=1e-12)
    print(f"OK syncbn rank {r}", flush=True)


def single():
    """World of one (no mpiexec): collectives are identities, DDP passes through."""
    from manygrad.nn.parallel import DistributedDataParallel

    assert (dist.get_rank(), dist.get_world_size(), dist.get_local_rank()) == (0, 1, 0)
    assert dist.is_main_process() and dist.get_backend() == "mpi"
    t = mg.arange(4.0)
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    dist.broadcast(t, 0)
    out = [mg.zeros(4)]
    dist.all_gather(out, t)
    assert np.array_equal(out[0].numpy(), np.arange(4.0)) and np.array_equal(
        t.numpy(), out[0].numpy()
    )
    mg.manual_seed(0)
    model = DistributedDataParallel(MLP())
    x = mg.randn(3, 4, dtype=mg.float64)
    model(x).sum().backward()
    assert model.module.w1.grad is not None
    try:
        dist.init_process_group()
    except dist.DistributedError as e:
        assert "already initialised" in str(e)
    print("OK single rank 0", flush=True)


def stall():
    r = dist.get_rank()
    if r == 1:
        time.sleep(60)
    dist.all_reduce(mg.ones(4))
    print("UNREACHABLE", flush=True)


def die():
    r = dist.get_rank()
    dist.all_reduce(mg.ones(4))
    if r == 1:
        os._exit(1)
    dist.all_reduce(mg.ones(4))
    print("UNREACHABLE", flush=True)


if __name__ == "__main__":
    name = sys.argv[1]
    timeout = float(os.environ.get("WORKER_TIMEOUT", "60"))
    dist.init_process_group(backend=os.environ.get("WORKER_BACKEND", "mpi"), timeout=timeout)
    if dist.get_backend() == "nccl":
        want = os.environ.get("WORKER_DEVICE", "cuda")
        local = mg.device("cuda", dist.get_local_rank())
        assert dist.get_device() == (mg.device(want) if want == "fakegpu" else local)
    if name == "collectives":
        collectives("cpu")
        collectives("fakegpu")
    elif name == "mismatch":
        mismatch()
    elif name == "ddp":
        ddp_equivalence(accumulate=False)
    elif name == "ddp_fakegpu":
        ddp_equivalence(accumulate=False, device="fakegpu")
    elif name == "ddp_no_sync":
        ddp_equivalence(accumulate=True)
    elif name == "ddp_sparse":
        ddp_sparse("cpu")
        ddp_sparse("cpu", accumulate=True)
        ddp_sparse("fakegpu")
        ddp_sparse("cpu", tied=True)
    elif name == "logging":
        from manygrad.distributed.launch import setup_rank_logging

        setup_rank_logging(os.environ["RUN_DIR"])
        print(f"OK logging rank {dist.get_rank()}", flush=True)
    elif name == "gpu":  # backend nccl on real GPUs: cuda:<local rank>
        dev = str(dist.get_device())
        collectives(dev)
        ddp_equivalence(accumulate=False, device=dev)
    elif name == "single":
        single()
    elif name == "syncbn":
        syncbn()
    elif name == "stack":
        training_stack()
    elif name == "hello":
        print(f"OK hello rank {dist.get_rank()} of {dist.get_world_size()}", flush=True)
    else:
        {"stall": stall, "die": die}[name]()
    dist.destroy_process_group()
