"""ConstantLR, MultiplicativeLR, PolynomialLR, CosineAnnealingWarmRestarts, CyclicLR,
ChainedScheduler and ReduceLROnPlateau against PyTorch: the same rates and momenta."""

import math

import pytest

import manygrad as mg
import manygrad.io
import manygrad.optim as optim
from manygrad.optim import lr_scheduler as mls

torch = pytest.importorskip("torch")
tls = torch.optim.lr_scheduler
STEPS = 45


def _opt(lib, kind="SGD"):
    T = torch.tensor if lib is torch else mg.tensor
    mod = torch.optim if lib is torch else optim
    p, q = T([1.0], requires_grad=True), T([2.0], requires_grad=True)
    kw = {"momentum": 0.9} if kind == "SGD" else {}
    return getattr(mod, kind)([{"params": [p]}, {"params": [q], "lr": 0.3}], lr=0.1, **kw)


def _make(lib, spec, opt):
    mod = tls if lib is torch else mls
    name, kw = spec
    if name == "ChainedScheduler":
        return mod.ChainedScheduler([_make(lib, s, opt) for s in kw])
    return getattr(mod, name)(opt, **kw)


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g.get("momentum") for g in opt.param_groups]


CASES = [
    ("ConstantLR", dict()),
    ("ConstantLR", dict(factor=0.5, total_iters=8)),
    ("MultiplicativeLR", dict(lr_lambda=lambda e: 0.95)),
    ("MultiplicativeLR", dict(lr_lambda=[lambda e: 0.9, lambda e: 1 - 0.01 * e])),
    ("PolynomialLR", dict()),
    ("PolynomialLR", dict(total_iters=30, power=2.0)),
    ("CosineAnnealingWarmRestarts", dict(T_0=7)),
    ("CosineAnnealingWarmRestarts", dict(T_0=3, T_mult=2, eta_min=0.01)),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=5)),
    (
        "CyclicLR",
        dict(
            base_lr=[0.01, 0.02], max_lr=0.2, step_size_up=4, step_size_down=6, mode="triangular2"
        ),
    ),  # fmt: skip
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=3, mode="exp_range", gamma=0.97)),
    (
        "CyclicLR",
        dict(
            base_lr=0.01,
            max_lr=0.1,
            step_size_up=3,
            cycle_momentum=False,
            scale_fn=lambda x: 1 / (1 + x),
            scale_mode="iterations",
        ),
    ),  # fmt: skip
    (
        "ChainedScheduler",
        [("ConstantLR", dict(factor=0.5, total_iters=4)), ("ExponentialLR", dict(gamma=0.9))],
    ),  # fmt: skip
]
IDS = [f"{c[0]}{i}" for i, c in enumerate(CASES)]


def _compare(mopt, msched, topt, tsched, steps):
    for i in range(steps):
        assert msched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12), i
        assert [g["lr"] for g in mopt.param_groups] == pytest.approx(
            [g["lr"] for g in topt.param_groups], rel=1e-12
        ), i
        assert _momenta(mopt) == pytest.approx(_momenta(topt), rel=1e-12), i
        mopt.step()
        topt.step()
        msched.step()
        tsched.step()


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
@pytest.mark.parametrize("spec", CASES, ids=IDS)
def test_matches_torch(spec, kind):
    mopt, topt = _opt(mg, kind), _opt(torch, kind)
    _compare(mopt, _make(mg, spec, mopt), topt, _make(torch, spec, topt), STEPS)


@pytest.mark.parametrize("spec", CASES, ids=IDS)
def test_state_dict_round_trip(spec, tmp_path):
    mopt, topt = _opt(mg), _opt(torch)
    msched, tsched = _make(mg, spec, mopt), _make(torch, spec, topt)
    _compare(mopt, msched, topt, tsched, 10)
    path = tmp_path / "ckpt.safetensors"
    sd = msched.state_dict()
    if spec[0] != "MultiplicativeLR":
        mg.io.save({"optim": mopt.state_dict(), "sched": sd}, path)
        ckpt = mg.io.load(path)
        sd = ckpt["sched"]
        mopt2 = _opt(mg)
        mopt2.load_state_dict(ckpt["optim"])
    else:
        mopt2 = _opt(mg)
        mopt2.load_state_dict(mopt.state_dict())
    msched2 = _make(mg, spec, mopt2)
    mopt2.load_state_dict(mopt.state_dict())
    msched2.load_state_dict(sd)
    _compare(mopt2, msched2, topt, tsched, 15)


def test_warm_restarts_fractional_epochs():
    mopt, topt = _opt(mg), _opt(torch)
    ms = mls.CosineAnnealingWarmRestarts(mopt, T_0=4, T_mult=2)
    ts = tls.CosineAnnealingWarmRestarts(topt, T_0=4, T_mult=2)
    for e in [0.5, 1.25, 3.9, 4.0, 7.5, 12.2, 30.0]:
        ms.step(e)
        ts.step(e)
        assert ms.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)


@pytest.mark.parametrize("kw", [dict(), dict(mode="max", factor=0.5, patience=2, cooldown=2),
                                dict(threshold_mode="abs", threshold=0.05, min_lr=[0.02, 0.05]),
                                dict(patience=0, eps=0.05)])  # fmt: skip
def test_reduce_on_plateau(kw):
    mopt, topt = _opt(mg), _opt(torch)
    ms, ts = mls.ReduceLROnPlateau(mopt, **kw), tls.ReduceLROnPlateau(topt, **kw)
    metrics = [1.0, 0.9, 0.95, 0.96, 0.97, 0.98, 0.9, 0.99, 1.2, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    metrics += [0.5 + 0.1 * math.sin(i) for i in range(20)]
    for m in metrics:
        ms.step(mg.tensor(m, dtype=mg.float64) if m > 0.95 else m)
        ts.step(m)
        assert [g["lr"] for g in mopt.param_groups] == pytest.approx(
            [g["lr"] for g in topt.param_groups], rel=1e-12
        )
        assert ms.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)
        assert ms.num_bad_epochs == ts.num_bad_epochs and ms.best == ts.best
    with pytest.raises(ValueError, match="factor"):
        mls.ReduceLROnPlateau(mopt, factor=1.5)


def test_cyclic_needs_momentum():
    opt = optim.RMSprop([mg.zeros(1, requires_grad=True)])
    opt.defaults.pop("momentum")
    with pytest.raises(ValueError, match="momentum"):
        mls.CyclicLR(opt, 0.01, 0.1)
