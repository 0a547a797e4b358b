"""torch.nn.parallel's functional names (replicate, scatter, gather, parallel_apply,
data_parallel) and nn.utils.rnn.invert_permutation, against torch.

PyTorch's CPU build runs none of the parallel functions (they need GPUs), so the reference
is what they compute there: the module on the whole batch (values and gradients), and
torch.chunk / torch.cat for the splitting; several devices are the two fake GPUs.
"""

import contextlib
from collections import namedtuple

import numpy as np
import pytest

import manygrad as mg
from manygrad.nn import parallel as P
from manygrad.nn.utils.rnn import invert_permutation

torch = pytest.importorskip("torch")

X = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
Pair = namedtuple("Pair", "a b")


class Net:
    """The same small network in both libraries (forward takes a keyword too)."""

    @staticmethod
    def make(lib):
        class M(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1, self.fc2 = lib.nn.Linear(5, 6), lib.nn.Linear(6, 3)
                self.register_buffer("scale", lib.ones(6) * 0.5)

            def forward(self, x, shift=0.0):
                h = lib.tanh(self.fc1(x)) * self.scale + shift
                return self.fc2(h)

        lib.manual_seed(0)
        m = M()
        rng = np.random.default_rng(3)
        with lib.no_grad():
            for p in m.parameters():
                p.copy_(lib.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32)))
        return m


def _torch_reference(shift=0.0):
    m = Net.make(torch)
    x = torch.tensor(X, requires_grad=True)
    y = m(x, shift=shift)
    (y**2).sum().backward()
    return y.detach().numpy(), x.grad.numpy(), [p.grad.numpy() for p in m.parameters()]


def _check(y, x, m, shift=0.0):
    ty, tgx, tgp = _torch_reference(shift)
    (y**2).sum().backward()
    np.testing.assert_allclose(y.detach().cpu().numpy(), ty, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.cpu().numpy(), tgx, rtol=1e-5, atol=1e-6)
    for p, g in zip(m.parameters(), tgp):
        np.testing.assert_allclose(p.grad.cpu().numpy(), g, rtol=1e-5, atol=1e-5)


def test_names_match_torch():
    assert set(torch.nn.parallel.__all__) <= set(P.__all__)
    from manygrad.nn.parallel import scatter_gather

    assert callable(scatter_gather.scatter_kwargs) and callable(P.parallel_apply)


@pytest.mark.parametrize("device_ids", [None, [0], [0, 1]])
def test_data_parallel_on_the_cpu_runs_the_module(device_ids):
    m = Net.make(mg)
    x = mg.tensor(X, requires_grad=True)
    y = P.data_parallel(m, x, device_ids=device_ids, module_kwargs={"shift": 0.25})
    assert y.device.type == "cpu"
    _check(y, x, m, shift=0.25)


@pytest.mark.parametrize("device_ids,output_device,where", [
    (None, None, "fakegpu"),  # every device, gathered on the first
    ([0, 1], 1, "fakegpu:1"),
    ([0], 1, "fakegpu"),  # one device: the module's result as it is (no gather)
    (["fakegpu", "fakegpu:1"], -1, "cpu"),  # -1: the CPU
])  # fmt: skip
def test_data_parallel_splits_the_batch_over_devices(device_ids, output_device, where):
    m = Net.make(mg).to("fakegpu")
    x = mg.tensor(X, device="fakegpu", requires_grad=True)
    with pytest.warns(FutureWarning) if output_device == -1 else contextlib.nullcontext():
        y = P.data_parallel(m, (x,), device_ids, output_device, module_kwargs={"shift": 0.25})
    assert y.device == mg.device(where)
    _check(y, x, m, shift=0.25)
    assert m.fc1.weight.grad.device == mg.device("fakegpu")


def test_data_parallel_wants_the_module_on_the_first_device():
    m = Net.make(mg).to("fakegpu:1")
    x = mg.tensor(X, device="fakegpu:1")
    with pytest.raises(RuntimeError, match=r"on device fakegpu \(device_ids\[0\]\)"):
        P.data_parallel(m, x, device_ids=[0, 1])
    assert P.data_parallel(m, x, device_ids=[1]).device == mg.device("fakegpu:1")


def test_scatter_follows_nests_as_torch_chunks():
    x = mg.tensor(X, device="fakegpu")
    parts = P.scatter((x, 3, {"k": x}, [x], Pair(x, "s")), [0, 1])
    want = torch.tensor(X).chunk(2, 0)
    assert len(parts) == 2
    for i, part in enumerate(parts):
        dev = mg.device(f"fakegpu:{i}")
        assert isinstance(part, tuple) and part[1] == 3 and part[4].b == "s"
        for t in (part[0], part[2]["k"], part[3][0], part[4].a):
            assert t.device == dev
            np.testing.assert_array_equal(t.cpu().numpy(), want[i].numpy())
    # torch.chunk's sizes: a batch shorter than the devices gives fewer pieces
    assert len(P.scatter(mg.tensor(X[:1], device="fakegpu"), [0, 1])) == 1
    assert [tuple(c.shape) for c in P.scatter(mg.tensor(X), [0, 1, 2], dim=1)] == [
        tuple(c.shape) for c in torch.tensor(X).chunk(3, 1)
    ]


def test_gather_follows_nests_and_is_differentiable():
    a = mg.tensor(X[:3], device="fakegpu", requires_grad=True)
    b = mg.tensor(X[3:], device="fakegpu:1", requires_grad=True)
    out = P.gather([{"y": a * 2, "p": Pair(a, None)}, {"y": b * 2, "p": Pair(b, None)}], 0)
    assert out["p"].b is None and out["y"].device == mg.device("fakegpu")
    np.testing.assert_array_equal(out["p"].a.detach().cpu().numpy(), X)
    out["y"].sum().backward()
    assert b.grad.device == mg.device("fakegpu:1")
    np.testing.assert_array_equal(b.grad.cpu().numpy(), np.full(b.shape, 2, np.float32))
    with pytest.raises(ValueError, match="All dicts must have the same number of keys"):
        P.gather([{"y": a}, {"y": b, "z": b}], 0)
    with pytest.warns(UserWarning, match="all input tensors were scalars"):
        v = P.gather([a.sum(), b.sum()], "cpu")
    assert tuple(v.shape) == (2,) and v.device.type == "cpu"


@pytest.mark.parametrize("detach", [False, True])
def test_replicate_shares_gradients_with_the_original(detach):
    m = Net.make(mg).to("fakegpu")
    reps = P.replicate(m, [0, 1], detach=detach)
    assert [r.fc1.weight.device for r in reps] == [mg.device("fakegpu"), mg.device("fakegpu:1")]
    assert reps[1].scale.device == mg.device("fakegpu:1") and reps[0] is not m
    x0 = mg.tensor(X[:4], device="fakegpu", requires_grad=True)
    x1 = mg.tensor(X[4:], device="fakegpu:1", requires_grad=True)
    outs = P.parallel_apply(reps, [x0, (x1,)], [{"shift": 0.25}] * 2)
    y = P.gather(outs, 0)
    if detach:
        (y**2).sum().backward()
        assert m.fc1.weight.grad is None and reps[1].fc1.weight.grad is not None
        return
    (y**2).sum().backward()
    _, tgx, tgp = _torch_reference(0.25)
    np.testing.assert_allclose(x1.grad.cpu().numpy(), tgx[4:], rtol=1e-5, atol=1e-6)
    for p, g in zip(m.parameters(), tgp):
        np.testing.assert_allclose(p.grad.cpu().numpy(), g, rtol=1e-5, atol=1e-5)


def test_parallel_apply_checks_lengths_and_names_the_failing_replica():
    m = Net.make(mg)
    x = mg.tensor(X)
    with pytest.raises(
        AssertionError, match="number of modules 2 is not equal to the number of inputs 1"
    ):
        P.parallel_apply([m, m], [x])
    with pytest.raises(AssertionError, match="kwargs_tup"):
        P.parallel_apply([m], [x], [{}, {}])
    with pytest.raises(AssertionError, match="devices"):
        P.parallel_apply([m], [x], None, [0, 1])
    with pytest.raises(TypeError, match="in replica 1"):
        P.parallel_apply([m, m], [x, (x,)], [{}, {"bad": 1}])
    outs = P.parallel_apply([m, m], [x, (x,)], devices=["cpu", "cpu"])
    np.testing.assert_array_equal(outs[0].detach().numpy(), outs[1].detach().numpy())


@pytest.mark.parametrize("perm", [[2, 0, 1, 4, 3], [0], list(range(9))[::-1]])
def test_invert_permutation_matches_torch(perm):
    from torch.nn.utils.rnn import invert_permutation as tinv

    got = invert_permutation(mg.tensor(perm))
    want = tinv(torch.tensor(perm))
    assert got.dtype is mg.int64
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert invert_permutation(None) is None is tinv(None)
    assert invert_permutation(mg.tensor(perm, device="fakegpu")).device == mg.device("fakegpu")
