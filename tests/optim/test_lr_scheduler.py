"""Learning-rate schedulers against PyTorch's: the same rates (and momenta) step by step."""

import math
import warnings

import numpy as np
import pytest

import manygrad as mg
import manygrad.io
import manygrad.optim as optim
from manygrad.optim import lr_scheduler as mls

torch = pytest.importorskip("torch")
tls = torch.optim.lr_scheduler

STEPS = 40


def _opt(lib, kind="SGD"):
    """An optimizer over two param groups with different learning rates."""
    T = torch.tensor if lib is torch else mg.tensor
    mod = torch.optim if lib is torch else optim
    p, q = T([1.0], requires_grad=True), T([2.0], requires_grad=True)
    kw = {"momentum": 0.9} if kind == "SGD" else {}
    return getattr(mod, kind)([{"params": [p]}, {"params": [q], "lr": 0.3}], lr=0.1, **kw)


def _make(lib, spec, opt):
    """Build a scheduler from a spec: (name, kwargs) or ("SequentialLR", [specs], ms)."""
    mod = tls if lib is torch else mls
    name, kw = spec[0], spec[1]
    if name == "SequentialLR":
        inner = [_make(lib, s, opt) for s in kw]
        return mod.SequentialLR(opt, inner, milestones=spec[2])
    return getattr(mod, name)(opt, **kw)


def _lam(e):
    return 0.5 + 0.5 * math.cos(e / 7)


CASES = [
    ("StepLR", dict(step_size=7, gamma=0.5)),
    ("StepLR", dict(step_size=1)),
    ("MultiStepLR", dict(milestones=[5, 12, 12, 30], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.93)),
    ("CosineAnnealingLR", dict(T_max=10, eta_min=0.01)),
    ("CosineAnnealingLR", dict(T_max=STEPS)),
    ("LinearLR", dict()),
    ("LinearLR", dict(start_factor=0.1, end_factor=0.9, total_iters=10)),
    ("LambdaLR", dict(lr_lambda=_lam)),
    ("LambdaLR", dict(lr_lambda=[_lam, lambda e: 0.9**e])),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=STEPS)),
    ("OneCycleLR", dict(max_lr=[0.5, 1.0], epochs=4, steps_per_epoch=10, pct_start=0.25)),
    (
        "OneCycleLR",
        dict(
            max_lr=0.5,
            total_steps=STEPS,
            anneal_strategy="linear",
            three_phase=True,
            div_factor=10.0,
            final_div_factor=100.0,
        ),
    ),  # fmt: skip
    ("OneCycleLR", dict(max_lr=0.5, total_steps=STEPS, cycle_momentum=False)),
    (
        "SequentialLR",
        [
            ("LinearLR", dict(start_factor=0.1, total_iters=5)),
            ("CosineAnnealingLR", dict(T_max=30)),
        ],
        [5],
    ),  # fmt: skip
    (
        "SequentialLR",
        [
            ("ExponentialLR", dict(gamma=0.9)),
            ("StepLR", dict(step_size=4)),
            ("LinearLR", dict(start_factor=0.5)),
        ],
        [10, 20],
    ),  # fmt: skip
]
IDS = [f"{c[0]}{i}" for i, c in enumerate(CASES)]


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g.get("momentum") for g in opt.param_groups]


def _compare(mopt, msched, topt, tsched, steps):
    for i in range(steps):
        assert msched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12), i
        assert [g["lr"] for g in mopt.param_groups] == pytest.approx(
            [g["lr"] for g in topt.param_groups], rel=1e-12
        )
        assert _momenta(mopt) == pytest.approx(_momenta(topt), rel=1e-12)
        mopt.step()
        topt.step()
        msched.step()
        tsched.step()


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
@pytest.mark.parametrize("spec", CASES, ids=IDS)
def test_matches_torch(spec, kind):
    mopt, topt = _opt(mg, kind), _opt(torch, kind)
    msched, tsched = _make(mg, spec, mopt), _make(torch, spec, topt)
    steps = STEPS - 1 if spec[0] == "OneCycleLR" else STEPS
    _compare(mopt, msched, topt, tsched, steps)


@pytest.mark.parametrize("spec", CASES, ids=IDS)
def test_state_dict_round_trip_through_a_file(spec, tmp_path):
    if spec[0] == "LambdaLR":
        pytest.skip("plain functions are not part of a state dict (as in PyTorch)")
    mopt, topt = _opt(mg), _opt(torch)
    msched, tsched = _make(mg, spec, mopt), _make(torch, spec, topt)
    _compare(mopt, msched, topt, tsched, 12)
    path = tmp_path / "ckpt.safetensors"
    mg.io.save({"optim": mopt.state_dict(), "sched": msched.state_dict()}, path)
    ckpt = mg.io.load(path)
    mopt2 = _opt(mg)
    msched2 = _make(mg, spec, mopt2)
    mopt2.load_state_dict(ckpt["optim"])
    msched2.load_state_dict(ckpt["sched"])
    steps = STEPS - 13 if spec[0] == "OneCycleLR" else 20
    _compare(mopt2, msched2, topt, tsched, steps)


@pytest.mark.parametrize(
    "spec",
    [("StepLR", dict(step_size=3)), ("MultiStepLR", dict(milestones=[2, 5])),
     ("ExponentialLR", dict(gamma=0.9)), ("CosineAnnealingLR", dict(T_max=8)),
     ("LinearLR", dict(total_iters=6))],
    ids=lambda s: s[0] if isinstance(s, tuple) else None,
)  # fmt: skip
def test_step_with_epoch_uses_closed_form(spec):
    mopt, topt = _opt(mg), _opt(torch)
    msched, tsched = _make(mg, spec, mopt), _make(torch, spec, topt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in [3, 7, 1, 10]:
            msched.step(epoch)
            tsched.step(epoch)
            assert msched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)


def test_one_cycle_past_total_steps_raises():
    opt = _opt(mg)
    sched = mls.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(2):
        opt.step()
        sched.step()
    opt.step()
    sched.step()
    with pytest.raises(ValueError, match="total_steps"):
        sched.step()


def test_one_cycle_needs_momentum_or_betas():
    p = mg.tensor([1.0], requires_grad=True)

    class Plain(optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, {"lr": 0.1})

    with pytest.raises(ValueError, match="cycle_momentum"):
        mls.OneCycleLR(Plain([p]), max_lr=1.0, total_steps=10)


def test_scheduler_step_before_optimizer_step_warns():
    opt = _opt(mg)
    sched = mls.StepLR(opt, step_size=2)
    with pytest.warns(UserWarning, match="before optimizer.step"):
        sched.step()


def test_resume_needs_initial_lr():
    with pytest.raises(KeyError, match="initial_lr"):
        mls.StepLR(_opt(mg), step_size=2, last_epoch=4)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda o: mls.LinearLR(o, start_factor=0.0), "start_factor"),
        (lambda o: mls.LinearLR(o, end_factor=1.5), "end_factor"),
        (lambda o: mls.OneCycleLR(o, max_lr=1.0), "total_steps"),
        (lambda o: mls.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=1), "pct_start"),
        (lambda o: mls.OneCycleLR(o, max_lr=[1.0], total_steps=10), "one value per"),
        (lambda o: mls.LambdaLR(o, [lambda e: 1.0]), "lr_lambdas"),
        (lambda o: mls.SequentialLR(o, [mls.StepLR(o, 2)], milestones=[3]), "milestone"),
        (lambda o: mls.StepLR(object(), 2), "not an Optimizer"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make(_opt(mg))


@pytest.mark.parametrize("name", ["CosineAnnealingWarmRestarts", "LambdaLR", "StepLR",
                                  "ExponentialLR", "CosineAnnealingLR", "LinearLR"])  # fmt: skip
def test_param_group_added_after_the_scheduler_as_torch(name):
    torch = pytest.importorskip("torch")
    args = {"CosineAnnealingWarmRestarts": (3,), "LambdaLR": (lambda e: 0.5,), "StepLR": (2,),
            "ExponentialLR": (0.9,), "CosineAnnealingLR": (5,), "LinearLR": ()}[name]  # fmt: skip
    out = []
    for lib in (torch, mg):
        a, b = lib.nn.Parameter(lib.ones(1)), lib.nn.Parameter(lib.ones(1))
        opt = lib.optim.SGD([a], lr=0.1)
        sched = getattr(lib.optim.lr_scheduler, name)(opt, *args)
        opt.add_param_group({"params": [b], "lr": 0.5})
        opt.step()
        try:
            sched.step()
            out.append([g["lr"] for g in opt.param_groups])
        except ValueError as e:
            out.append(type(e))
            if lib is mg:
                assert "make the scheduler after add_param_group" in str(e)
    if isinstance(out[0], list):
        np.testing.assert_allclose(out[1], out[0])
    else:
        assert out[1] is out[0]
