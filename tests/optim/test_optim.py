"""Optimizers against PyTorch: same start, same gradients, same parameters after each step."""

import numpy as np
import pytest

import manygrad as mg
import manygrad.io
import manygrad.optim as optim

torch = pytest.importorskip("torch")

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("SGD", dict(lr=0.1, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.05, maximize=True)),
    ("Adam", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("Adam", dict(lr=0.05, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.1, maximize=True)),
    ("AdamW", dict(lr=0.05)),
    ("AdamW", dict(lr=0.05, weight_decay=0.3, amsgrad=True)),
    ("AdamW", dict(lr=0.05, maximize=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, maximize=True)),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for n, kw in CASES]

RNG = np.random.default_rng(0)
INIT = [RNG.standard_normal((4, 3)), RNG.standard_normal(5)]
# loss = sum(A * (p - C)**2) + sum(B * p): a fixed quadratic plus linear term per tensor
A = [RNG.uniform(0.5, 2, s.shape) for s in INIT]
C = [RNG.standard_normal(s.shape) for s in INIT]
B = [RNG.standard_normal(s.shape) * 0.1 for s in INIT]


def _set_grads(params, lib, dev=None):
    """grad = 2 A (p - C) + B, computed on the parameters' device (no host round trip)."""
    for i, p in enumerate(params):
        if lib is torch:
            a, c, b = (torch.tensor(v) for v in (A[i], C[i], B[i]))
            p.grad = 2 * a * (p.detach() - c) + b
        else:
            a, c, b = (mg.tensor(v, device=dev, dtype=p.dtype) for v in (A[i], C[i], B[i]))
            p.grad = 2 * a * (p.detach() - c) + b


def _groups(params, lr):
    return [{"params": [params[0]]}, {"params": [params[1]], "lr": lr * 0.5}]


def _make(name, kwargs, dev="cpu", dtype=mg.float64):
    mp = [mg.tensor(v, dtype=dtype, device=dev, requires_grad=True) for v in INIT]
    tp = [torch.tensor(v, requires_grad=True) for v in INIT]
    lr = kwargs.get("lr", 0.01)
    mo = getattr(optim, name)(_groups(mp, lr), **kwargs)
    to = getattr(torch.optim, name)(_groups(tp, lr), **kwargs)
    return mp, tp, mo, to


def _host(t):
    return t.detach().cpu().numpy().astype(np.float64)


def _run(mp, tp, mo, to, steps, dev="cpu"):
    for _ in range(steps):
        _set_grads(mp, mg, dev)
        _set_grads(tp, torch)
        mo.step()
        to.step()


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_matches_torch_float64(name, kwargs):
    mp, tp, mo, to = _make(name, kwargs)
    for _ in range(12):
        _run(mp, tp, mo, to, 1)
        for m, t in zip(mp, tp):
            np.testing.assert_allclose(_host(m), _host(t), rtol=1e-6, atol=1e-6)
    assert not np.allclose(_host(mp[0]), INIT[0])  # the parameters did move


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_devices_float32_no_syncs(name, kwargs, device):
    mp, tp, mo, to = _make(name, kwargs, dev=device, dtype=mg.float32)
    mg.backend.fake_stats.reset()
    _run(mp, tp, mo, to, 10, dev=device)
    assert mg.backend.fake_stats.syncs == 0
    for m, t in zip(mp, tp):
        assert m.dtype is mg.float32 and m.device == mg.device(device)
        np.testing.assert_allclose(_host(m), _host(t), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_state_dict_round_trip_continues_identically(name, kwargs, tmp_path):
    mp, tp, mo, to = _make(name, kwargs)
    _run(mp, tp, mo, to, 5)
    path = tmp_path / "optim.safetensors"
    mg.io.save(mo.state_dict(), path)
    # a fresh optimizer on copies of the current parameters, restored from the file
    mp2 = [mg.tensor(_host(p), requires_grad=True) for p in mp]
    mo2 = getattr(optim, name)(_groups(mp2, 1.0), **kwargs)
    mo2.load_state_dict(mg.io.load(path))
    assert mo2.param_groups[1]["lr"] == mo.param_groups[1]["lr"]
    _run(mp, tp, mo, to, 5)
    for _ in range(5):
        _set_grads(mp2, mg)
        mo2.step()
    for a, b, t in zip(mp, mp2, tp):
        np.testing.assert_array_equal(_host(a), _host(b))
        np.testing.assert_allclose(_host(a), _host(t), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_state_dict_has_pytorch_layout(name, kwargs):
    mp, tp, mo, to = _make(name, kwargs)
    _run(mp, tp, mo, to, 2)
    ms, ts = mo.state_dict(), to.state_dict()
    assert ms["state"].keys() == ts["state"].keys()
    for k in ts["state"]:
        assert ms["state"][k].keys() == ts["state"][k].keys()
    for mg_group, t_group in zip(ms["param_groups"], ts["param_groups"]):
        assert mg_group["params"] == t_group["params"]
        assert set(mg_group) <= set(t_group)
        assert all(mg_group[k] == t_group[k] for k in mg_group)


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_loads_pytorch_state(name, kwargs):
    """A PyTorch optimizer's state_dict (tensors converted) resumes in manygrad."""
    mp, tp, mo, to = _make(name, kwargs)
    _run(mp, tp, mo, to, 4)
    sd = to.state_dict()
    converted = {
        "state": {
            k: {n: mg.tensor(v.numpy()) if torch.is_tensor(v) else v for n, v in s.items()}
            for k, s in sd["state"].items()
        },
        "param_groups": sd["param_groups"],
    }
    mp2 = [mg.tensor(_host(p), requires_grad=True) for p in tp]
    mo2 = getattr(optim, name)(_groups(mp2, 1.0), **kwargs)
    mo2.load_state_dict(converted)
    for _ in range(4):
        _set_grads(mp2, mg)
        _set_grads(tp, torch)
        mo2.step()
        to.step()
    for m, t in zip(mp2, tp):
        np.testing.assert_allclose(_host(m), _host(t), rtol=1e-6, atol=1e-6)


def test_grads_are_not_modified():
    p = mg.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.Adam([p], lr=0.1, weight_decay=0.5, maximize=True)
    p.grad = mg.tensor([0.5, -0.5])
    opt.step()
    np.testing.assert_array_equal(p.grad.numpy(), [0.5, -0.5])


def test_zero_grad():
    p = mg.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    p.grad = mg.tensor([3.0, 4.0])
    g = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is g and g.numpy().tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert p.grad is None


def test_step_skips_params_without_grad_and_returns_closure_loss():
    p, q = mg.tensor([1.0], requires_grad=True), mg.tensor([1.0], requires_grad=True)
    opt = optim.SGD([p, q], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (p * 3.0).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 3.0
    assert p.item() == -0.5 and q.item() == 1.0


def test_param_groups_defaults_and_add_param_group():
    p, q = mg.tensor([1.0], requires_grad=True), mg.tensor([2.0], requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    opt.add_param_group({"params": q, "betas": (0.5, 0.6)})
    g = opt.param_groups[1]
    assert g["params"] == [q] and g["lr"] == 0.1 and g["betas"] == (0.5, 0.6)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [p]})


def test_named_parameters():
    p = mg.tensor([1.0], requires_grad=True)
    opt = optim.SGD([("w", p)], lr=0.1)
    assert opt.param_groups[0]["params"] == [p]
    assert opt.param_groups[0]["param_names"] == ["w"]


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda p: optim.SGD([], lr=0.1), "empty parameter list"),
        (lambda p: optim.SGD(p, lr=0.1), "wrap it in a list"),
        (lambda p: optim.SGD([p], lr=-1), "learning rate"),
        (lambda p: optim.SGD([p], nesterov=True), "Nesterov"),
        (lambda p: optim.Adam([p], betas=(1.0, 0.9)), "beta"),
        (lambda p: optim.RMSprop([p], alpha=-0.1), "alpha"),
        (lambda p: optim.SGD([p * 2]), "non-leaf"),
        (lambda p: optim.SGD([{"params": {p}}]), "ordered collection"),
    ],
)
def test_bad_arguments(make, match):
    p = mg.tensor([1.0], requires_grad=True)
    with pytest.raises((ValueError, TypeError), match=match):
        make(p)


def test_load_state_dict_checks_groups():
    p = mg.tensor([1.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    other = optim.SGD([{"params": [p]}, {"params": [mg.tensor([1.0], requires_grad=True)]}])
    with pytest.raises(ValueError, match="parameter groups"):
        opt.load_state_dict(other.state_dict())


def test_low_precision_params_stay_in_their_dtype(device):
    p = mg.tensor([1.0, -2.0, 3.0], dtype=mg.bfloat16, device=device, requires_grad=True)
    tp = torch.tensor([1.0, -2.0, 3.0], dtype=torch.bfloat16, requires_grad=True)
    opt, topt = optim.AdamW([p], lr=0.1), torch.optim.AdamW([tp], lr=0.1)
    for _ in range(3):
        p.grad = mg.ones(3, dtype=mg.bfloat16, device=device)
        tp.grad = torch.ones(3, dtype=torch.bfloat16)
        opt.step()
        topt.step()
    assert p.dtype is mg.bfloat16
    assert opt.state[p]["exp_avg"].dtype is mg.bfloat16
    got = p.detach().cpu().to(mg.float32).numpy()
    np.testing.assert_allclose(got, tp.detach().float().numpy(), atol=0.02)


def test_reading_state_before_the_first_step():
    p = mg.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    assert opt.state[p] == {}  # PyTorch's state is a defaultdict too
    p.grad = mg.tensor([1.0, 1.0])
    opt.step()
    assert opt.state[p]["step"] == 1
    np.testing.assert_allclose(p.detach().numpy(), [0.9, 1.9], rtol=1e-6)
