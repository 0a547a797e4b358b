"""Adafactor and Muon against torch.optim: the same parameters after every step (Muon's
bfloat16 Newton-Schulz iteration included), PyTorch's state layout, no host syncs."""

import numpy as np
import pytest

import manygrad as mg
import manygrad.io
import manygrad.optim as optim

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
SHAPES = {"Adafactor": [(5, 4), (6,), (2, 3, 4)], "Muon": [(5, 4), (3, 7)]}
INIT = {k: [RNG.standard_normal(s) for s in v] for k, v in SHAPES.items()}

CASES = [
    ("Adafactor", dict()),
    ("Adafactor", dict(lr=0.1, weight_decay=0.05)),
    ("Adafactor", dict(eps=(1e-3, 1e-2), d=2.0, beta2_decay=-0.5, maximize=True)),
    ("Muon", dict()),
    ("Muon", dict(lr=0.02, nesterov=False, momentum=0.8)),
    ("Muon", dict(lr=0.01, adjust_lr_fn="match_rms_adamw", weight_decay=0.0)),
    ("Muon", dict(lr=0.01, ns_steps=3, ns_coefficients=(2.0, -1.5, 0.5), eps=1e-5)),
]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CASES)]


def _grads(params, lib, step, dev=None):
    """A gradient that changes with the parameters and the step."""
    for p in params:
        x = p.detach()
        g = (x * x * x) * 0.1 + (x * (step + 1)).sin()
        p.grad = g


def _make(name, kwargs, dev="cpu", dtype=mg.float64):
    init = INIT[name]
    mp = [mg.tensor(v, dtype=dtype, device=dev, requires_grad=True) for v in init]
    tdt = torch.float64 if dtype is mg.float64 else torch.float32
    tp = [torch.tensor(v, dtype=tdt, requires_grad=True) for v in init]
    return mp, tp, getattr(optim, name)(mp, **kwargs), getattr(torch.optim, name)(tp, **kwargs)


def _host(t):
    return t.detach().cpu().numpy().astype(np.float64)


# NOTE: Muon's iteration is bfloat16 whatever the parameters' dtype: float32 is its case
DT_CASES = [(n, k, dt) for n, k in CASES for dt in ("float64", "float32")
            if n == "Adafactor" or dt == "float32"]  # fmt: skip


@pytest.mark.parametrize("name,kwargs,dtype", DT_CASES, ids=[f"{n}-{i}-{d}" for i, (n, _, d)
                                                             in enumerate(DT_CASES)])  # fmt: skip
def test_matches_torch(name, kwargs, dtype):
    mp, tp, mo, to = _make(name, kwargs, dtype=getattr(mg, dtype))
    tol = 1e-9 if dtype == "float64" else 2e-6
    for step in range(10):
        _grads(mp, mg, step)
        _grads(tp, torch, step)
        mo.step()
        to.step()
        for m, t in zip(mp, tp):
            np.testing.assert_allclose(_host(m), _host(t), rtol=tol, atol=tol)
    assert not np.allclose(_host(mp[0]), INIT[name][0])
    ms, ts = mo.state_dict(), to.state_dict()
    for k in ts["state"]:
        assert sorted(ms["state"][k]) == sorted(ts["state"][k]), name
        for key, v in ts["state"][k].items():
            if key != "step":
                np.testing.assert_allclose(_host(ms["state"][k][key]), v.numpy(), rtol=1e-5,
                                           atol=1e-7)  # fmt: skip
    assert set(ts["param_groups"][0]) <= set(ms["param_groups"][0])


@pytest.mark.parametrize("name,kwargs", CASES[:1] + CASES[3:4], ids=["Adafactor", "Muon"])
def test_devices_no_host_syncs(name, kwargs, device):
    mp, tp, mo, to = _make(name, kwargs, dev=device, dtype=mg.float32)
    mg.backend.fake_stats.reset()
    for step in range(5):
        _grads(mp, mg, step, device)
        _grads(tp, torch, step)
        mo.step()
        to.step()
    assert mg.backend.fake_stats.syncs == 0
    for m, t in zip(mp, tp):
        assert m.device == mg.device(device)
        np.testing.assert_allclose(_host(m), _host(t), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,kwargs", CASES[:1] + CASES[3:4], ids=["Adafactor", "Muon"])
def test_state_dict_round_trip(name, kwargs, tmp_path):
    mp, _, mo, _ = _make(name, kwargs)
    for step in range(3):
        _grads(mp, mg, step)
        mo.step()
    mg.io.save(mo.state_dict(), tmp_path / "o.safetensors")
    mp2 = [mg.tensor(_host(p), requires_grad=True) for p in mp]
    mo2 = getattr(optim, name)(mp2, **kwargs)
    mo2.load_state_dict(mg.io.load(tmp_path / "o.safetensors"))
    for step in range(3, 6):
        _grads(mp, mg, step)
        _grads(mp2, mg, step)
        mo.step()
        mo2.step()
    for a, b in zip(mp, mp2):
        np.testing.assert_array_equal(_host(a), _host(b))


def test_bad_arguments_are_named():
    w = mg.zeros(3, 3, requires_grad=True)
    with pytest.raises(ValueError, match="2D parameters"):
        optim.Muon([mg.zeros(3, requires_grad=True)])
    with pytest.raises(ValueError, match="adjust_lr_fn"):
        optim.Muon([w], adjust_lr_fn="spectral")
    with pytest.raises(ValueError, match="beta2_decay"):
        optim.Adafactor([w], beta2_decay=0.5)
    with pytest.raises(ValueError, match="clipping threshold"):
        optim.Adafactor([w], d=0.5)
    c = mg.zeros(2, 2, dtype=mg.complex64, requires_grad=True)
    c.grad = mg.ones(2, 2, dtype=mg.complex64)
    for cls in (optim.Adafactor, optim.Muon):
        with pytest.raises(RuntimeError, match="complex"):
            cls([c]).step()
