"""Adagrad, Adadelta, Adamax, NAdam, RAdam, Rprop, ASGD and LBFGS against torch.optim:
same start, same gradients, same parameters after every step; PyTorch's state layout."""

import numpy as np
import pytest

import manygrad as mg
import manygrad.io
import manygrad.optim as optim

torch = pytest.importorskip("torch")

CASES = [
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.2)),
    ("Adagrad", dict(lr=0.1, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1)),
    ("Adamax", dict(lr=0.05)),
    ("Adamax", dict(lr=0.05, betas=(0.8, 0.9), weight_decay=0.1, maximize=True)),
    ("NAdam", dict(lr=0.05)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.05)),
    ("RAdam", dict(lr=0.05, betas=(0.9, 0.9), weight_decay=0.1)),
    ("RAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("Rprop", dict()),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2))),
    ("Rprop", dict(maximize=True)),
    ("ASGD", dict(lr=0.05)),
    ("ASGD", dict(lr=0.05, lambd=0.01, alpha=0.5, t0=3, weight_decay=0.1)),
]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CASES)]

RNG = np.random.default_rng(0)
INIT = [RNG.standard_normal((4, 3)), RNG.standard_normal(5)]
A = [RNG.uniform(0.5, 2, s.shape) for s in INIT]
C = [RNG.standard_normal(s.shape) for s in INIT]
B = [RNG.standard_normal(s.shape) * 0.1 for s in INIT]


def _set_grads(params, lib, dev=None):
    """grad of sum(A (p - C)^2 + B p), computed on the parameters' device."""
    for i, p in enumerate(params):
        if lib is torch:
            a, c, b = (torch.tensor(v) for v in (A[i], C[i], B[i]))
        else:
            a, c, b = (mg.tensor(v, device=dev, dtype=p.dtype) for v in (A[i], C[i], B[i]))
        p.grad = 2 * a * (p.detach() - c) + b


def _groups(params, lr):
    return [{"params": [params[0]]}, {"params": [params[1]], "lr": lr * 0.5}]


def _make(name, kwargs, dev="cpu", dtype=mg.float64):
    mp = [mg.tensor(v, dtype=dtype, device=dev, requires_grad=True) for v in INIT]
    tp = [torch.tensor(v, requires_grad=True) for v in INIT]
    lr = kwargs.get("lr", 1.0 if name == "Adadelta" else 0.01)
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
    for _ in range(15):
        _run(mp, tp, mo, to, 1)
        for m, t in zip(mp, tp):
            np.testing.assert_allclose(_host(m), _host(t), rtol=1e-6, atol=1e-7)
    assert not np.allclose(_host(mp[0]), INIT[0])
    ms, ts = mo.state_dict(), to.state_dict()
    assert sorted(ms["state"]) == sorted(ts["state"])
    for k in ts["state"]:
        assert sorted(ms["state"][k]) == sorted(ts["state"][k]), name
    for mg_g, t_g in zip(ms["param_groups"], ts["param_groups"]):
        assert set(t_g) - {"decoupled_weight_decay"} <= set(mg_g), set(t_g) - set(mg_g)


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_devices_float32_no_syncs(name, kwargs, device):
    mp, tp, mo, to = _make(name, kwargs, dev=device, dtype=mg.float32)
    mg.backend.fake_stats.reset()
    _run(mp, tp, mo, to, 8, dev=device)
    assert mg.backend.fake_stats.syncs == 0
    for m, t in zip(mp, tp):
        assert m.dtype is mg.float32 and m.device == mg.device(device)
        np.testing.assert_allclose(_host(m), _host(t), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_state_dict_round_trip(name, kwargs, tmp_path):
    mp, tp, mo, to = _make(name, kwargs)
    _run(mp, tp, mo, to, 4)
    path = tmp_path / "optim.safetensors"
    mg.io.save(mo.state_dict(), path)
    mp2 = [mg.tensor(_host(p), requires_grad=True) for p in mp]
    mo2 = getattr(optim, name)(_groups(mp2, 1.0), **kwargs)
    mo2.load_state_dict(mg.io.load(path))
    _run(mp, tp, mo, to, 4)
    for _ in range(4):
        _set_grads(mp2, mg)
        mo2.step()
    for a, b in zip(mp, mp2):
        np.testing.assert_array_equal(_host(a), _host(b))


def _rosen(lib, x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2 + (x[2:] ** 2).sum()


@pytest.mark.parametrize("line_search", [None, "strong_wolfe"])
@pytest.mark.parametrize("history", [100, 3])
def test_lbfgs_matches_torch(line_search, history):
    x0 = np.array([-1.2, 1.0, 0.5, -0.3])
    xm = mg.tensor(x0, requires_grad=True)
    xt = torch.tensor(x0, requires_grad=True)
    kw = dict(lr=1 if line_search else 0.1, max_iter=7, history_size=history,
              line_search_fn=line_search)  # fmt: skip
    om, ot = optim.LBFGS([xm], **kw), torch.optim.LBFGS([xt], **kw)

    def cm():
        om.zero_grad()
        loss = _rosen(mg, xm)
        loss.backward()
        return loss

    def ct():
        ot.zero_grad()
        loss = _rosen(torch, xt)
        loss.backward()
        return loss

    for _ in range(4):
        lm, lt = om.step(cm), ot.step(ct)
        assert float(lm) == pytest.approx(lt.item(), rel=1e-9, abs=1e-12)
        np.testing.assert_allclose(_host(xm), _host(xt), rtol=1e-8, atol=1e-10)
    sm, st = om.state[xm], ot.state[xt]
    assert sm["func_evals"] == st["func_evals"] and sm["n_iter"] == st["n_iter"]
    assert float(_rosen(mg, xm)) < float(_rosen(mg, mg.tensor(x0)))


def test_bad_arguments():
    p = [mg.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match="Adagrad"):
        optim.Adagrad(p, lr=-1)
    with pytest.raises(ValueError, match="etas"):
        optim.Rprop(p, etas=(1.5, 1.2))
    with pytest.raises(ValueError, match="line_search_fn"):
        optim.LBFGS(p, line_search_fn="wolfe")
    with pytest.raises(RuntimeError, match="closure"):
        optim.LBFGS(p).step()


def test_lbfgs_state_dict_round_trip(tmp_path, device):
    x0 = np.array([-1.2, 1.0, 0.5, -0.3])
    xs = [mg.tensor(x0, device=device, requires_grad=True) for _ in range(2)]
    opts = [optim.LBFGS([x], max_iter=3) for x in xs]

    def closure(i):
        def run():
            opts[i].zero_grad()
            loss = _rosen(mg, xs[i])
            loss.backward()
            return loss

        return run

    opts[0].step(closure(0))
    path = tmp_path / "lbfgs.safetensors"
    mg.io.save(opts[0].state_dict(), path)
    with mg.no_grad():
        xs[1].copy_(xs[0])
    opts[1].load_state_dict(mg.io.load(path))
    opts[0].step(closure(0))
    opts[1].step(closure(1))
    np.testing.assert_array_equal(_host(xs[0]), _host(xs[1]))


@pytest.mark.parametrize("name", ["Adadelta", "Adamax", "NAdam", "RAdam", "Rprop", "ASGD"])
def test_capturable_is_refused_clearly(name):
    with pytest.raises(NotImplementedError, match="capturable"):
        getattr(optim, name)([mg.zeros(2, requires_grad=True)], capturable=True)
