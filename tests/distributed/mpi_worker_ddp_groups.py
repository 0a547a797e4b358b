"""DDP and SyncBatchNorm on process groups, comm hooks, join, unused parameters: scenarios
run by test_ddp_groups.py: ``mpiexec -n 4 python mpi_worker_ddp_groups.py all`` and, with
``MANYGRAD_DIST_FAKEGPU=1``, ``mpiexec -n 2 ... nccl``.

Every rank's parameters and inputs come from known formulas of its rank, so any rank can
compute what a group must hold: the gradients of each member's batch, computed with a
plain (non-DDP) copy of the model, averaged with NumPy. Each scenario prints
``OK <name> rank <r>``.
"""

import os
import sys
import warnings

import numpy as np

import manygrad as mg
import manygrad.distributed as dist
from manygrad.distributed.algorithms.ddp_comm_hooks import default_hooks as hooks
from manygrad.nn.module import Module
from manygrad.nn.parallel import DDP
from manygrad.utils.checkpoint import checkpoint

F64 = mg.float64


class Net(Module):
    """Two layers; ``branch`` joins in when asked, ``spare`` never."""

    def __init__(self, spare=False, heads=False):
        super().__init__()
        self.l1 = mg.nn.Linear(3, 4, dtype=F64)
        self.l2 = mg.nn.Linear(4, 2, dtype=F64)
        self.branch = mg.nn.Linear(3, 2, dtype=F64)
        if spare:
            self.spare = mg.nn.Linear(2, 2, dtype=F64)
        self.heads = heads

    def forward(self, x, branch=True, ckpt=False):
        if ckpt:
            h = checkpoint(lambda v: self.l1(v).tanh(), x, use_reentrant=False)
        else:
            h = self.l1(x).tanh()
        y = self.l2(h)
        if self.heads:  # two outputs: the second from its own layer
            return y, self.branch(x) * 2
        if branch:
            y = y + self.branch(x)
        return y


def init(model, seed):
    with mg.no_grad():
        for i, p in enumerate(model.parameters()):
            v = np.sin(np.arange(p.numel()) * 0.7 + seed + 3 * i).reshape(tuple(p.shape))
            p.copy_(mg.tensor(v, dtype=F64))
    return model


def data(rank, step, n=5):
    return mg.tensor(np.cos(np.arange(n * 3).reshape(n, 3) * (0.3 + 0.1 * rank) + step), dtype=F64)


def loss_of(out):
    if isinstance(out, tuple):
        return (out[0] ** 2).sum() + out[1].sum()
    return (out**2).sum()


def grads(model):
    model = model.module if isinstance(model, DDP) else model
    return {n: None if p.grad is None else p.grad.cpu().numpy().copy()
            for n, p in model.named_parameters()}  # fmt: skip


def local(state, kw, x, fkw=None):
    """The gradients of one batch through a plain copy of the model."""
    m = Net(**kw)
    m.load_state_dict(state)
    loss_of(m(x, **(fkw or {}))).backward()
    return grads(m)


def average(per_rank, div=None):
    """The average of the ranks' gradients (None where no rank has one)."""
    out = {}
    for n in per_rank[0]:
        got = [g[n] for g in per_rank if g[n] is not None]
        out[n] = None if not got else sum(got) / (div or len(per_rank))
    return out


def add(a, b):
    """Two ranks' gradient dicts summed (None where neither has one)."""
    return {n: b[n] if a[n] is None else a[n] if b[n] is None else a[n] + b[n] for n in a}


def same(got, want, tol=1e-12, what=""):
    assert set(got) == set(want), (what, set(got), set(want))
    for n in want:
        if want[n] is None or got[n] is None:
            assert want[n] is None and got[n] is None, (what, n, got[n], want[n])
            continue
        err = float(np.abs(got[n] - want[n]).max())
        assert err <= tol * max(1.0, float(np.abs(want[n]).max())), (what, n, err)


def expect_raise(kinds, fn, *words):
    try:
        fn()
    except kinds as e:
        for w in words:
            assert w in str(e), (w, str(e))
        return e
    raise AssertionError(f"no {kinds} from {fn}")


def state_of(seed, **kw):
    return {k: v.clone() for k, v in init(Net(**kw), seed).state_dict().items()}


def sgd(model, lr=0.1):
    with mg.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.sub_(p.grad * lr)
                p.grad = None


# ------------------------------------------------------------------ scenarios


def hybrid(pairs, ranks, device="cpu"):
    """One DDP per pair of ranks ({0,1}, {2,3}): the average stays within the pair, each
    pair starts from its own first rank's weights and the pairs drift apart (on 2 ranks:
    one pair)."""
    r = dist.get_rank()
    model = DDP(init(Net(), 100 + r).to(device), process_group=pairs)
    lead = ranks[0]
    ref = state_of(100 + lead)
    for k, v in model.state_dict().items():  # group rank 0's weights, broadcast at start
        assert np.array_equal(v.cpu().numpy(), ref[k].numpy()), k
    syncs = 0
    for step in range(3):
        x = data(r, step).to(device)
        before = mg.backend.fake_stats.syncs
        loss_of(model(x)).backward()
        syncs += mg.backend.fake_stats.syncs - before
        want = average([local(ref, {}, data(k, step)) for k in ranks])
        same(grads(model), want, what=f"hybrid {device} step {step}")
        sgd(model)
        ref = {k: v - 0.1 * mg.tensor(want[k]) for k, v in ref.items()}  # the same update
    assert syncs == 0, "DDP read device data on the host"
    mine = mg.cat([p.detach().cpu().reshape(-1) for p in model.parameters()])
    every = [mg.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(every, mine)
    for k in range(dist.get_world_size()):
        equal = np.array_equal(every[k].numpy(), mine.numpy())
        assert equal == (k in ranks), (k, ranks)


def several(pairs, ranks):
    """Models on the even/odd ranks, on every rank, and on ranks 0-2, in one program; one
    backward through two of them averages each within its own group."""
    r, w = dist.get_rank(), dist.get_world_size()
    parity = [k for k in range(w) if k % 2 == r % 2]
    evens, odds = dist.new_group([0, 2]), dist.new_group([1, 3])
    three = dist.new_group([0, 1, 2])
    a = DDP(init(Net(), 7 + r), process_group=evens if r % 2 == 0 else odds)
    b = DDP(init(Net(), 50 + r))  # the default group
    if r == 3:
        expect_raise(ValueError, lambda: DDP(Net(), process_group=three), "not a member")
        c = None
    else:
        c = DDP(init(Net(), 90 + r), process_group=three, bucket_cap_mb=0.0001)
        assert len(c._reducer.buckets) > 1
    sa, sb, sc = state_of(7 + parity[0]), state_of(50), state_of(90)
    for step in range(2):
        loss = loss_of(a(data(r, step))) + loss_of(b(data(r, 10 + step)))
        loss.backward()
        same(grads(a), average([local(sa, {}, data(k, step)) for k in parity]), what="a")
        same(grads(b), average([local(sb, {}, data(k, 10 + step)) for k in range(w)]), what="b")
        if c is not None:
            loss_of(c(data(r, 20 + step))).backward()
            want = average([local(sc, {}, data(k, 20 + step)) for k in range(3)])
            same(grads(c), want, what="c")
        for m in (a, b) + ((c,) if c else ()):
            m.zero_grad()
    for g in (evens, odds, three):
        dist.destroy_process_group(g)


def no_sync(pairs, ranks):
    r = dist.get_rank()
    model = DDP(init(Net(), 3), process_group=pairs)
    with model.no_sync():
        loss_of(model(data(r, 0))).backward()
    loss_of(model(data(r, 1))).backward()
    ref = state_of(3)
    per = []
    for k in ranks:
        g0, g1 = local(ref, {}, data(k, 0)), local(ref, {}, data(k, 1))
        per.append({n: g0[n] + g1[n] for n in g0 if g0[n] is not None})
    same({n: g for n, g in grads(model).items() if g is not None}, average(per), what="no_sync")


def syncbn(pairs, ranks):
    """SyncBatchNorm over a pair equals BatchNorm2d over the pair's whole batch."""
    r = dist.get_rank()
    full = [np.cos(np.arange(2 * 3 * 4 * 4).reshape(2, 3, 4, 4) * (0.2 + 0.05 * k)) for k in ranks]
    up = [np.sin(np.arange(2 * 3 * 4 * 4).reshape(2, 3, 4, 4) * (0.3 + 0.1 * k)) for k in ranks]
    ref = mg.nn.BatchNorm2d(3).double()
    sync = mg.nn.SyncBatchNorm(3, process_group=pairs).double()
    for bn in (ref, sync):
        bn.weight.data.copy_(mg.tensor([1.0, 2.0, 0.5], dtype=F64))
        bn.bias.data.copy_(mg.tensor([0.1, -0.2, 0.3], dtype=F64))
    xf = mg.tensor(np.concatenate(full), requires_grad=True)
    ref_out = ref(xf)
    (ref_out * mg.tensor(np.concatenate(up))).sum().backward()
    i = ranks.index(r)
    xs = mg.tensor(full[i], requires_grad=True)
    out = sync(xs)
    (out * mg.tensor(up[i])).sum().backward()
    part = slice(2 * i, 2 * i + 2)
    np.testing.assert_allclose(out.detach().numpy(), ref_out.detach().numpy()[part], atol=1e-10)
    np.testing.assert_allclose(xs.grad.numpy(), xf.grad.numpy()[part], atol=1e-10)
    for p_s, p_r in ((sync.weight, ref.weight), (sync.bias, ref.bias)):
        g = p_s.grad.clone()
        dist.all_reduce(g, group=pairs)
        np.testing.assert_allclose(g.numpy(), p_r.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(sync.running_mean.numpy(), ref.running_mean.numpy(), atol=1e-12)
    np.testing.assert_allclose(sync.running_var.numpy(), ref.running_var.numpy(), atol=1e-12)
    # convert keeps the group; a group this rank is not in leaves plain BatchNorm
    model = mg.nn.Sequential(mg.nn.Conv2d(3, 3, 1), mg.nn.BatchNorm2d(3),
                             mg.nn.Sequential(mg.nn.BatchNorm1d(2, affine=False)))  # fmt: skip
    conv = mg.nn.SyncBatchNorm.convert_sync_batchnorm(model, pairs)
    assert conv[1].process_group is pairs and conv[2][0].process_group is pairs
    assert isinstance(conv[2][0], mg.nn.SyncBatchNorm) and conv[2][0].weight is None
    solo = dist.new_group([0])
    alone = mg.nn.SyncBatchNorm(3, process_group=solo).double()
    plain = mg.nn.BatchNorm2d(3).double()
    x = mg.tensor(full[i])
    np.testing.assert_allclose(alone(x).detach().numpy(), plain(x).detach().numpy())
    np.testing.assert_allclose(alone.running_var.numpy(), plain.running_var.numpy())
    dist.destroy_process_group(solo)


def comm_hooks(pairs, ranks, device="cpu"):
    """The default hooks over a pair, the GradBucket a hook sees, and hook errors."""
    r = dist.get_rank()
    ref = state_of(11)
    per = [local(ref, {}, data(k, 0)) for k in ranks]
    assert all(g is not None for g in per[0].values())
    want = average(per)

    def run(hook, state=pairs, **kw):
        m = DDP(init(Net(), 11).to(device), process_group=pairs, **kw)
        if hook is not None:
            m.register_comm_hook(state, hook)
        loss_of(m(data(r, 0).to(device))).backward()
        return m, grads(m)

    for hook in (hooks.allreduce_hook, None):
        same(run(hook)[1], want, what=f"hook {hook}")
    # float16 on the wire: each rank's share rounded to float16, halved, summed, rounded
    fp16 = {n: sum(np.float32(np.float16(g[n]) / np.float16(2)) for g in per).astype(np.float16)
            for n in want}  # fmt: skip
    for hook in (hooks.fp16_compress_hook, hooks.fp16_compress_wrapper(hooks.allreduce_hook)):
        got = run(hook)[1]
        for n in want:
            assert got[n].dtype == np.float64
            np.testing.assert_array_equal(got[n], fp16[n].astype(np.float64), err_msg=n)
    for hook in (hooks.bf16_compress_hook, hooks.bf16_compress_wrapper(hooks.allreduce_hook)):
        same(run(hook)[1], want, tol=1e-2, what="bf16")
    # what a hook receives: buckets in order, views of the buffer, the local gradients
    seen = []

    def summing(state, bucket: dist.GradBucket) -> mg.futures.Future[mg.Tensor]:
        views = bucket.gradients()
        assert mg.cat([v.reshape(-1) for v in views]).cpu().numpy().tolist() == (
            bucket.buffer().cpu().numpy().tolist()
        )
        views[0].mul_(1.0)  # a view: the buffer sees in-place changes
        seen.append((bucket.index(), bucket.is_last(), [tuple(v.shape) for v in views],
                     bucket.parameters(), bucket.buffer().cpu().numpy().copy()))  # fmt: skip
        fut = dist.all_reduce(bucket.buffer(), group=state, async_op=True).get_future()
        return fut.then(lambda f: f.value()[0])

    m, got = run(summing, bucket_cap_mb=0.0001)
    n = len(m._reducer.buckets)
    assert n > 2 and [s[0] for s in seen] == list(range(n)), seen
    assert [s[1] for s in seen] == [False] * (n - 1) + [True]
    order = [p for s in seen for p in s[3]]
    params = list(m.module.parameters())
    assert [id(p) for p in order] == [id(p) for p in reversed(params)]
    names = {id(p): k for k, p in m.module.named_parameters()}
    mine = local(ref, {}, data(r, 0))
    flat = np.concatenate([s[4] for s in seen])
    np.testing.assert_allclose(
        flat, np.concatenate([mine[names[id(p)]].reshape(-1) for p in order])
    )
    same(got, {k: g * len(ranks) for k, g in want.items()}, what="sum hook")  # not averaged

    def noop(state, bucket):
        fut = mg.futures.Future()
        fut.set_result(bucket.buffer())
        return fut

    same(run(noop)[1], mine, what="noop hook")  # local gradients, as in PyTorch
    # registration errors (PyTorch's types) and bad hook results at backward
    m = DDP(init(Net(), 11).to(device), process_group=pairs)
    expect_raise(TypeError, lambda: m.register_comm_hook(None, 3), "must be callable")
    expect_raise(KeyError, lambda: m.register_comm_hook(None, lambda s, b: b), "bucket")

    def bad_ann(state, bucket: int): ...

    def bad_ret(state, bucket) -> int: ...

    expect_raise(ValueError, lambda: m.register_comm_hook(None, bad_ann), "dist.GradBucket")
    expect_raise(ValueError, lambda: m.register_comm_hook(None, bad_ret), "Future[torch.Tensor]")
    m.register_comm_hook(None, lambda state, bucket: bucket.buffer())  # a tensor, no future
    expect_raise(RuntimeError, lambda: m.register_comm_hook(None, noop), "only be called once")
    expect_raise(RuntimeError, lambda: loss_of(m(data(r, 0).to(device))).backward(),
                 "must return a torch.futures.Future")  # fmt: skip

    def as_list(state, bucket):
        return dist.all_reduce(bucket.buffer(), group=state, async_op=True).get_future()

    m = DDP(init(Net(), 11).to(device), process_group=pairs)
    m.register_comm_hook(pairs, as_list)
    expect_raise(RuntimeError, lambda: loss_of(m(data(r, 0).to(device))).backward(),
                 "expected one Tensor")  # fmt: skip


def unused(pairs, ranks):
    """find_unused_parameters, the error without it, static_graph, multiple outputs,
    checkpointed segments and gradient_as_bucket_view, within a pair."""
    r = dist.get_rank()
    kw = {"spare": True}
    ref = state_of(5, **kw)
    use = ranks[0]  # only this rank of the pair runs the branch

    def expected(step, branch_on=(use,), fkw=None):
        return average([local(ref, kw, data(k, step), {"branch": k in branch_on, **(fkw or {})})
                        for k in ranks])  # fmt: skip

    model = DDP(init(Net(**kw), 5), process_group=pairs, find_unused_parameters=True)
    loss_of(model(data(r, 0), branch=r == use)).backward()
    first = expected(0)
    assert first["spare.weight"] is None and first["branch.weight"] is not None
    same(grads(model), first, what="find_unused")
    loss_of(model(data(r, 1), branch=r == use)).backward()  # no zero_grad: accumulates
    second = expected(1)
    same(grads(model), {n: None if g is None else g + second[n] for n, g in first.items()},
         what="find_unused accumulated")  # fmt: skip
    model.zero_grad()
    with model.no_sync():  # a parameter used only in a no_sync micro-batch still counts
        loss_of(model(data(r, 0), branch=r == use)).backward()
    loss_of(model(data(r, 1), branch=False)).backward()
    per = [add(local(ref, kw, data(k, 0), {"branch": k == use}),
               local(ref, kw, data(k, 1), {"branch": False})) for k in ranks]  # fmt: skip
    same(grads(model), average(per), what="find_unused no_sync")

    # without find_unused_parameters: the next forward raises, naming the parameters
    strict = DDP(init(Net(**kw), 5), process_group=pairs)
    loss_of(strict(data(r, 0), branch=False)).backward()
    assert strict.module.spare.weight.grad is None and strict.module.branch.weight.grad is None
    # as in PyTorch, the unfinished backward leaves each rank its local gradients
    same(grads(strict), local(ref, kw, data(r, 0), {"branch": False}), what="strict")
    names = [n for n, _ in strict.module.named_parameters()]
    idx = " ".join(str(names.index(n)) for n in ("branch.weight", "branch.bias", "spare.weight",
                                                 "spare.bias"))  # fmt: skip
    expect_raise(RuntimeError, lambda: strict(data(r, 1)),
                 "Expected to have finished reduction in the prior iteration",
                 "find_unused_parameters=True",
                 f"did not receive grad for rank {pairs.rank()}: {idx}", "spare.weight")  # fmt: skip
    with mg.no_grad():
        strict(data(r, 1))  # no backward follows: no error

    # static_graph: unused parameters found in the first iteration keep no gradient
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        static = DDP(init(Net(**kw), 5), process_group=pairs, static_graph=True,
                     find_unused_parameters=True)  # fmt: skip
        static._set_static_graph()
    texts = [str(c.message) for c in caught]
    assert any("detect unused parameters automatically" in t for t in texts), texts
    assert any("no need to set it again" in t for t in texts), texts
    for step in range(2):
        loss_of(static(data(r, step), branch=r == use)).backward()
        same(grads(static), expected(step), what=f"static {step}")
        static.zero_grad()
    loss_of(static(data(r, 2), branch=False)).backward()  # the branch's rank: graph changed
    if r == use:
        expect_raise(RuntimeError, lambda: static(data(r, 3)), "training graph has changed",
                     "static_graph")  # fmt: skip

    # two outputs; a checkpointed segment recomputed in backward reports to the reducer
    heads = DDP(init(Net(heads=True), 5), process_group=pairs)
    ref2 = state_of(5, heads=True)
    for fkw in ({}, {"ckpt": True}):
        loss_of(heads(data(r, 0), **fkw)).backward()
        want = average([local(ref2, {"heads": True}, data(k, 0), fkw) for k in ranks])
        same(grads(heads), want, what=f"two outputs {fkw}")
        heads.zero_grad()
    one = DDP(init(Net(heads=True), 5), process_group=pairs, find_unused_parameters=True)
    (one(data(r, 0))[0] ** 2).sum().backward()  # the second output takes no part
    assert one.module.branch.weight.grad is None and one.module.l1.weight.grad is not None

    # gradient_as_bucket_view: .grad are views of one bucket; accumulation stays right
    view = DDP(init(Net(), 5), process_group=pairs, gradient_as_bucket_view=True)
    base = state_of(5)
    loss_of(view(data(r, 0))).backward()
    g0 = average([local(base, {}, data(k, 0)) for k in ranks])
    same(grads(view), g0, what="bucket view")
    arrays = [p.grad._data for p in view.module.parameters() if p.grad is not None]
    assert all(a.base is not None and a.base is arrays[0].base for a in arrays)
    assert arrays[0].base is view._reducer.buckets[0].flat
    loss_of(view(data(r, 1))).backward()
    g1 = average([local(base, {}, data(k, 1)) for k in ranks])
    same(grads(view), {n: g0[n] + g1[n] for n in g0 if g0[n] is not None} | {
        n: None for n in g0 if g0[n] is None}, what="bucket view accumulated")  # fmt: skip


def joined(group, ranks, hook=False):
    """Uneven inputs (rank k has k + 2 batches) under join(): the averages over the ranks
    still training, divided by the group size or by their number, as simulated here."""
    r = dist.get_rank()
    counts = {k: k + 2 for k in ranks}
    for div_initial in (True, False):
        model = DDP(mg.nn.Linear(1, 1, bias=False, dtype=F64), process_group=group)
        with mg.no_grad():
            model.module.weight.fill_(1.0)
        if hook:
            model.register_comm_hook(group, hooks.allreduce_hook)
        w = 1.0
        with model.join(divide_by_initial_world_size=div_initial):
            for step in range(counts[r]):
                x = mg.tensor([[float(r + 1 + step)]], dtype=F64)
                model(x).sum().backward()
                active = [k for k in ranks if counts[k] > step]
                total = sum(k + 1 + step for k in active)
                grad = total / (len(ranks) if div_initial or hook else len(active))
                assert abs(model.module.weight.grad.item() - grad) < 1e-12, (step, div_initial)
                sgd(model)
        for step in range(max(counts.values())):  # every rank ends with the last one's model
            active = [k for k in ranks if counts[k] > step]
            total = sum(k + 1 + step for k in active)
            w -= 0.1 * total / (len(ranks) if div_initial or hook else len(active))
        assert abs(model.module.weight.item() - w) < 1e-12, (model.module.weight.item(), w)
    # a model with buffers, find_unused_parameters and no_sync steps: every rank finishes
    model = DDP(mg.nn.Sequential(mg.nn.Linear(2, 3, dtype=F64), mg.nn.BatchNorm1d(3).double(),
                                 mg.nn.Linear(3, 1, dtype=F64)),
                process_group=group, find_unused_parameters=True)  # fmt: skip
    with model.join():
        for step in range(counts[r]):
            x = mg.tensor(np.cos(np.arange(8.0).reshape(4, 2) + r + step), dtype=F64)
            if step == 1:
                with model.no_sync():
                    model(x).sum().backward()
            model(x).sum().backward()
            sgd(model)
    state = mg.cat([t.reshape(-1).double() for t in model.state_dict().values()])
    every = [mg.zeros_like(state) for _ in ranks]
    dist.all_gather(every, state, group=group)
    assert all(np.array_equal(e.numpy(), state.numpy()) for e in every)
    # throw_on_early_termination: every rank raises once the first runs out
    model = DDP(mg.nn.Linear(1, 1, bias=False, dtype=F64), process_group=group)
    first = ranks[0]
    try:
        with model.join(throw_on_early_termination=True):
            for _ in range(counts[r]):
                model(mg.ones(1, 1, dtype=F64)).sum().backward()
    except RuntimeError as e:
        words = (f"Rank {ranks.index(first)} exhausted all inputs." if r == first
                 else "Detected at least one rank that exhausted inputs.")  # fmt: skip
        assert words in str(e), str(e)
    else:
        raise AssertionError("no error from throw_on_early_termination")


def bad_arguments(pairs):
    nm = dist.GroupMember.NON_GROUP_MEMBER
    expect_raise(ValueError, lambda: DDP(Net(), process_group=nm), "not a member")
    expect_raise(TypeError, lambda: DDP(Net(), process_group="pairs"), "ProcessGroup")
    frozen = Net().requires_grad_(False)
    expect_raise(RuntimeError, lambda: DDP(frozen), "doesn't have any parameter")
    expect_raise(ValueError, lambda: DDP(Net(), device_ids=[0, 1]), "single element")
    expect_raise(NotImplementedError, lambda: DDP(Net(), mixed_precision=object()),
                 "mixed_precision")  # fmt: skip
    for kw, words in (({"broadcast_buffers": False}, "deprecated"),
                      ({"check_reduction": True}, "check_reduction")):  # fmt: skip
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m = DDP(Net(), process_group=pairs, **kw)
        assert any(words in str(c.message) and c.category is FutureWarning for c in caught)
    assert m.process_group is pairs and m.join_process_group is pairs
    assert m.broadcast_buffers is True and m.bucket_bytes_cap == 25 * 1024 * 1024
    # settings that differ across the ranks of a group raise on each of them, no hang
    odd = DDP(Net(), process_group=pairs, find_unused_parameters=pairs.rank() == 0)
    expect_raise(dist.DistributedError, lambda: loss_of(odd(data(0, 0))).backward(),
                 "settings differ")  # fmt: skip


def doc_example():
    """The hybrid example of docs/distributed.md, as written (it starts its own group)."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "distributed.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "# hybrid.py" in b]
    exec(compile(block, "docs/distributed.md hybrid.py", "exec"), {"__name__": "__main__"})


if __name__ == "__main__":
    name = sys.argv[1]
    backend = "nccl" if name == "nccl" else "mpi"  # nccl: the fake GPU's communicator
    dist.init_process_group(backend=backend,
                            timeout=float(os.environ.get("WORKER_TIMEOUT", "60")))  # fmt: skip
    rank, world = dist.get_rank(), dist.get_world_size()
    pairs, _ = dist.new_subgroups(2)  # {0, 1} and {2, 3}
    ranks = dist.get_process_group_ranks(pairs)
    if name == "all":
        assert world == 4, "run with mpiexec -n 4"
        hybrid(pairs, ranks)
        hybrid(pairs, ranks, "fakegpu")
        several(pairs, ranks)
        no_sync(pairs, ranks)
        syncbn(pairs, ranks)
        bad_arguments(pairs)
        comm_hooks(pairs, ranks)
        unused(pairs, ranks)
        joined(None, list(range(world)))
        joined(pairs, ranks, hook=True)
    elif name == "nccl":  # MANYGRAD_DIST_FAKEGPU=1: each rank's fake GPU, NCCL's code path
        assert str(dist.get_device()) == "fakegpu"
        hybrid(pairs, ranks, "fakegpu")
        comm_hooks(pairs, ranks, "fakegpu")
    else:
        raise SystemExit(f"unknown scenario {name}")
    dist.destroy_process_group()
    if name == "all":
        doc_example()
    print(f"OK {name} rank {rank}", flush=True)
