"""Optimizers and schedulers against torch.optim where they once differed: 0-d tensor
learning rates, step and state-dict hooks, older state dicts, resumed schedulers and
ReduceLROnPlateau inside other schedulers."""

import copy
import sys

import numpy as np
import pytest

import manygrad as mg
import manygrad.optim.optimizer  # noqa: F401

torch = pytest.importorskip("torch")
pytest.importorskip("torch.optim.optimizer")  # torch.optim.optimizer, for its global hooks

OPTIMS = [
    ("SGD", dict(momentum=0.9)),
    ("Adam", dict()),
    ("Adam", dict(weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict()),
    ("Adagrad", dict(weight_decay=0.1)),
    ("Adadelta", dict()),
    ("Adamax", dict()),
    ("NAdam", dict()),
    ("RAdam", dict(weight_decay=0.1)),
    ("RMSprop", dict(momentum=0.9, centered=True)),
    ("Rprop", dict()),
    ("ASGD", dict()),
]


def _lib_optim(lib):
    return torch.optim if lib is torch else mg.optim


def _run(lib, name, lr, steps=20, **kw):
    p = lib.tensor([1.0, -2.0, 0.5], dtype=lib.float64, requires_grad=True)
    opt = getattr(_lib_optim(lib), name)([p], lr=lr, **kw)
    for _ in range(steps):
        opt.zero_grad()
        ((p - 0.3) ** 4).sum().backward()
        opt.step()
    return p.detach().numpy()


@pytest.mark.parametrize("name,kw", OPTIMS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMS)])
def test_tensor_lr_moves_params_as_torch(name, kw):
    want = _run(torch, name, torch.tensor(0.05, dtype=torch.float64), **kw)
    got = _run(mg, name, mg.tensor(0.05, dtype=mg.float64), **kw)
    assert not np.allclose(got, [1.0, -2.0, 0.5])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


def test_tensor_betas_as_torch():
    want = _run(torch, "Adam", 0.05, betas=(torch.tensor(0.8), torch.tensor(0.95)))
    got = _run(mg, "Adam", 0.05, betas=(mg.tensor(0.8), mg.tensor(0.95)))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


def test_lbfgs_tensor_lr_as_torch():
    def run(lib):
        p = lib.tensor([1.0, -2.0, 0.5], dtype=lib.float64, requires_grad=True)
        opt = _lib_optim(lib).LBFGS([p], lr=lib.tensor(0.5), max_iter=4)

        def closure():
            opt.zero_grad()
            loss = ((p - 0.3) ** 2).sum()
            loss.backward()
            return loss

        for _ in range(3):
            opt.step(closure)
        return p.detach().numpy()

    np.testing.assert_allclose(run(mg), run(torch), rtol=1e-9)


def _hook_log(lib):
    glob = sys.modules[lib.__name__ + ".optim.optimizer"]
    p = lib.ones(2, requires_grad=True)
    opt = _lib_optim(lib).SGD([p], lr=0.1)
    log = []
    h1 = opt.register_step_pre_hook(lambda o, a, k: log.append(("pre", len(a), sorted(k))))
    opt.register_step_post_hook(lambda o, a, k: log.append(("post", len(a), sorted(k))))
    g1 = glob.register_optimizer_step_pre_hook(lambda o, a, k: log.append("global pre"))
    g2 = glob.register_optimizer_step_post_hook(lambda o, a, k: log.append("global post"))
    try:
        p.grad = lib.ones(2)
        opt.step()
        opt.step(closure=None)
    finally:
        g1.remove()
        g2.remove()
    h1.remove()
    opt.step()
    opt.register_step_pre_hook(lambda o, a, k: (a, {"closure": lambda: 7.0}))
    log.append(opt.step())
    log.append(p.detach().numpy().tolist())
    return log


def test_step_hooks_as_torch():
    assert _hook_log(mg) == _hook_log(torch)


def test_step_pre_hook_bad_return_raises():
    p = mg.ones(2, requires_grad=True)
    opt = mg.optim.Adam([p])
    opt.register_step_pre_hook(lambda o, a, k: 5)
    p.grad = mg.ones(2)
    with pytest.raises(RuntimeError, match="new_args, new_kwargs"):
        opt.step()


def _state_dict_hooks(lib):
    p = lib.ones(2, requires_grad=True)
    opt = _lib_optim(lib).SGD([p], lr=0.1, momentum=0.9)
    log = []
    opt.register_state_dict_pre_hook(lambda o: log.append("pre"))
    opt.register_state_dict_post_hook(lambda o, sd: sd.__setitem__("extra", 1))
    opt.register_load_state_dict_pre_hook(
        lambda o, sd: {k: v for k, v in sd.items() if k != "extra"}
    )
    opt.register_load_state_dict_post_hook(lambda o: log.append("loaded"))
    p.grad = lib.ones(2)
    opt.step()
    sd = opt.state_dict()
    log.append(sorted(sd))
    opt.load_state_dict(sd)
    return log


def test_state_dict_hooks_as_torch():
    assert _state_dict_hooks(mg) == _state_dict_hooks(torch)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "NAdam"])
def test_load_state_dict_missing_options_take_defaults(name):
    """A state dict from an older version lacks newer options (here maximize)."""

    def run(lib):
        p = lib.tensor([1.0, -2.0], dtype=lib.float64, requires_grad=True)
        opt = getattr(_lib_optim(lib), name)([p], lr=0.01)
        p.grad = p.detach() * 2
        opt.step()
        sd = copy.deepcopy(opt.state_dict())
        for g in sd["param_groups"]:
            del g["maximize"]
        opt2 = getattr(_lib_optim(lib), name)([p], lr=0.01)
        opt2.load_state_dict(sd)
        for _ in range(3):
            p.grad = p.detach() * 2
            opt2.step()
        return p.detach().numpy(), opt2.param_groups[0]["maximize"]

    (got, gmax), (want, wmax) = run(mg), run(torch)
    assert gmax == wmax
    # NOTE: PyTorch keeps NAdam's mu_product in float32, hence rtol 1e-8
    np.testing.assert_allclose(got, want, rtol=1e-8)


def _two_group_opt(lib):
    ps = [lib.zeros(2, requires_grad=True) for _ in range(2)]
    groups = [{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(ps)]
    return _lib_optim(lib).SGD(groups, lr=0.1, momentum=0.9)


def _sched(lib):
    return sys.modules[lib.__name__ + ".optim.lr_scheduler"]


RESUMED = {
    "MultiplicativeLR": lambda m, o, e: m.MultiplicativeLR(o, lambda k: 0.95, last_epoch=e),
    "PolynomialLR": lambda m, o, e: m.PolynomialLR(o, 10, 2.0, last_epoch=e),
    "WarmRestarts": lambda m, o, e: m.CosineAnnealingWarmRestarts(o, 3, T_mult=2, last_epoch=e),
    "ExponentialLR": lambda m, o, e: m.ExponentialLR(o, 0.9, last_epoch=e),
}


@pytest.mark.parametrize("name", list(RESUMED))
def test_scheduler_resumed_with_last_epoch_as_torch(name):
    def run(lib):
        opt = _two_group_opt(lib)
        s = RESUMED[name](_sched(lib), opt, -1)
        for _ in range(6):
            opt.step()
            s.step()
        opt2 = _two_group_opt(lib)
        opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
        s2 = RESUMED[name](_sched(lib), opt2, 6)
        out = [s2.get_last_lr()]
        for _ in range(12):
            opt2.step()
            s2.step()
            out.append(s2.get_last_lr())
        return np.array(out, dtype=float)

    np.testing.assert_allclose(run(mg), run(torch), rtol=1e-12)


def test_multiplicative_lr_after_sequential_milestone_as_torch():
    def run(lib):
        m, opt = _sched(lib), _two_group_opt(lib)
        s = m.SequentialLR(
            opt, [m.ConstantLR(opt, 0.5, 2), m.MultiplicativeLR(opt, lambda k: 0.9)], [3]
        )
        out = []
        for _ in range(8):
            opt.step()
            s.step()
            out.append([g["lr"] for g in opt.param_groups])
        return np.array(out)

    np.testing.assert_allclose(run(mg), run(torch), rtol=1e-12)


SCHEDS = {
    "StepLR": lambda m, o: m.StepLR(o, 3, 0.5),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, 5, eta_min=0.01),
    "LinearLR": lambda m, o: m.LinearLR(o, 0.25, total_iters=4),
    "CyclicLR": lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=3),
    "OneCycleLR": lambda m, o: m.OneCycleLR(o, 0.5, total_steps=12),
}


@pytest.mark.parametrize("name", list(SCHEDS))
def test_scheduler_fills_tensor_lr_in_place_as_torch(name):
    def run(lib):
        lr = lib.tensor(0.1)
        p = lib.zeros(2, requires_grad=True)
        opt = _lib_optim(lib).SGD([p], lr=lr, momentum=0.9)
        s = SCHEDS[name](_sched(lib), opt)
        out = []
        for _ in range(10):
            p.grad = lib.ones(2)
            opt.step()
            s.step()
            last = s.get_last_lr()[0]
            assert opt.param_groups[0]["lr"] is lr
            assert type(last).__name__ == "Tensor" and last is not lr
            out.append([float(lr), float(last), *p.detach().numpy().tolist()])
        return np.array(out)

    np.testing.assert_allclose(run(mg), run(torch), rtol=1e-6)


def test_cyclic_lr_keeps_momentum_bounds_in_groups_as_torch():
    def keys(lib):
        opt = _two_group_opt(lib)
        _sched(lib).CyclicLR(opt, 0.01, 0.1, base_momentum=0.7, max_momentum=0.95)
        return [(g["base_momentum"], g["max_momentum"], g["momentum"]) for g in opt.param_groups]

    assert keys(mg) == keys(torch)


def test_plateau_after_add_param_group_as_torch():
    def run(lib):
        opt = _two_group_opt(lib)
        s = _sched(lib).ReduceLROnPlateau(opt, patience=0, factor=0.5, min_lr=0.01)
        opt.add_param_group({"params": [lib.zeros(1, requires_grad=True)], "lr": 0.5})
        out = []
        for _ in range(6):
            s.step(1.0)
            out.append(s.get_last_lr())
        return np.array(out)

    np.testing.assert_allclose(run(mg), run(torch), rtol=1e-12)


def test_plateau_with_min_lr_list_after_add_param_group_raises():
    for lib in (torch, mg):
        opt = _two_group_opt(lib)
        s = _sched(lib).ReduceLROnPlateau(opt, patience=0, min_lr=[0.01, 0.02])
        opt.add_param_group({"params": [lib.zeros(1, requires_grad=True)]})
        s.step(1.0)
        with pytest.raises(RuntimeError, match="min_lr"):
            s.step(1.0)


@pytest.mark.parametrize("kind", ["SequentialLR", "ChainedScheduler"])
def test_plateau_refused_inside_sequential_and_chained(kind):
    for lib in (torch, mg):
        m, opt = _sched(lib), _two_group_opt(lib)
        inner = [m.ConstantLR(opt), m.ReduceLROnPlateau(opt)]
        with pytest.raises(ValueError, match="ReduceLROnPlateau"):
            if kind == "SequentialLR":
                m.SequentialLR(opt, inner, milestones=[3])
            else:
                m.ChainedScheduler(inner)
