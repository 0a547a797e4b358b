"""Optimizer state as PyTorch lays it out: 0-d tensor step counts (and NAdam's/ASGD's
scalars), their dtypes, shapes and devices, loading older int steps, torch state dicts;
swap_in_optimizer_params_and_state and the swa_utils averaging functions, against torch."""

import copy

import numpy as np
import pytest

import manygrad as mg
from manygrad import optim
from manygrad.optim import swa_utils as ms

torch = pytest.importorskip("torch")
ts = torch.optim.swa_utils

W0 = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
B0 = np.random.default_rng(1).standard_normal(3).astype(np.float32)

# optimizer, options (one line per case)
CASES = [
    ("Adam", {}),
    ("Adam", dict(amsgrad=True, weight_decay=0.1)),
    ("Adam", dict(foreach=True)),
    ("Adam", dict(foreach=False, fused=False)),
    ("AdamW", {}),
    ("AdamW", dict(fused=True)),
    ("Adagrad", dict(fused=True)),
    ("Adamax", {}),
    ("NAdam", {}),
    ("NAdam", dict(decoupled_weight_decay=True, weight_decay=0.1)),
    ("RAdam", {}),
    ("ASGD", dict(t0=1)),
    ("Adagrad", dict(lr_decay=0.1)),
    ("Adadelta", {}),
    ("RMSprop", dict(momentum=0.9, centered=True)),
    ("RMSprop", {}),
    ("Rprop", {}),
    ("SGD", dict(momentum=0.9)),
    ("SGD", {}),
    ("Adafactor", {}),
]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CASES)]
STEPPED = [c for c in CASES if c[0] != "SGD"]  # the optimizers with a step count
STEPPED_IDS = [i for c, i in zip(CASES, IDS) if c[0] != "SGD"]


def _pair(lib, dev="cpu"):
    mk = (lambda a: mg.tensor(a, device=dev, requires_grad=True)) if lib is mg else (
        lambda a: torch.tensor(a, requires_grad=True))  # fmt: skip
    return [mk(W0), mk(B0)]


def _steps(lib, opt, ps, n=3):
    for k in range(n):
        opt.zero_grad()
        ((ps[0] * (k + 1)).sin().sum() + (ps[1] ** 2).sum()).backward()
        opt.step()


def _desc(v, lib):
    """A state value's kind as a comparable tuple (type, dtype, shape, device type)."""
    if isinstance(v, lib.Tensor):
        return ("tensor", str(v.dtype).split(".")[-1], tuple(v.shape), v.device.type)
    if isinstance(v, list):
        return ("list", tuple(_desc(x, lib) for x in v))
    return (type(v).__name__,)


def _structure(sd, lib):
    return {k: {n: _desc(v, lib) for n, v in st.items()} for k, st in sd["state"].items()}


def _run_both(name, kwargs, n=3):
    mp, tp = _pair(mg), _pair(torch)
    mo, to = getattr(optim, name)(mp, **kwargs), getattr(torch.optim, name)(tp, **kwargs)
    _steps(mg, mo, mp, n)
    _steps(torch, to, tp, n)
    return mp, tp, mo, to


def _to_mg(v):
    if isinstance(v, torch.Tensor):
        return mg.tensor(v.detach().numpy())
    if isinstance(v, list):
        return [_to_mg(x) for x in v]
    if isinstance(v, dict):
        return {k: _to_mg(x) for k, x in v.items()}
    return v


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_state_dict_structure_matches_torch(name, kwargs):
    mp, tp, mo, to = _run_both(name, kwargs)
    ms_, ts_ = mo.state_dict(), to.state_dict()
    assert _structure(ms_, mg) == _structure(ts_, torch)
    for k, st in ts_["state"].items():
        for key in ("step", "mu_product", "eta", "mu"):
            if key in st:
                got = ms_["state"][k][key]
                # a 0-d tensor read as PyTorch programs read it
                assert got.item() == pytest.approx(st[key].item(), rel=1e-6), key
                assert float(got) == pytest.approx(float(st[key]), rel=1e-6)
        if "step" in st:
            assert int(ms_["state"][k]["step"]) == int(st["step"]) == 3
    for m, t in zip(mp, tp):
        np.testing.assert_allclose(m.detach().numpy(), t.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_sparse_adam_keeps_an_int_step_as_torch():
    res = []
    for lib in (mg, torch):
        lib.manual_seed(0)
        emb = lib.nn.Embedding(5, 2, sparse=True)
        opt = lib.optim.SparseAdam(emb.parameters())
        for _ in range(2):
            opt.zero_grad()
            emb(lib.tensor([1, 2])).sum().backward()
            opt.step()
        res.append(_structure(opt.state_dict(), lib))
    assert res[0] == res[1] and res[0][0]["step"] == ("int",)


@pytest.mark.parametrize("line_search", [None, "strong_wolfe"])
def test_lbfgs_state_structure_matches_torch(line_search):
    res = []
    for lib in (mg, torch):
        w = lib.tensor([1.5, -0.5, 2.0, 0.3], requires_grad=True)
        opt = lib.optim.LBFGS([w], line_search_fn=line_search, max_iter=5, history_size=7)

        def closure(opt=opt, w=w):
            opt.zero_grad()
            loss = ((w - 1) ** 4).sum() + (w**2).sum()
            loss.backward()
            return loss

        for _ in range(2):
            opt.step(closure)
        res.append(_structure(opt.state_dict(), lib))
    assert res[0] == res[1]
    st = res[0][0]
    assert st["func_evals"] == st["n_iter"] == ("int",) and len(st["al"][1]) == 7


@pytest.mark.parametrize("name,kwargs", STEPPED, ids=STEPPED_IDS)
def test_loading_int_steps_of_older_files(name, kwargs):
    """A state dict whose step (and NAdam/ASGD scalars) are Python numbers still loads,
    as PyTorch's __setstate__ accepts them, and continues exactly."""
    mp = _pair(mg)
    mo = getattr(optim, name)(mp, **kwargs)
    _steps(mg, mo, mp, 2)
    sd = copy.deepcopy(mo.state_dict())
    for st in sd["state"].values():
        for key in ("step", "mu_product", "eta", "mu"):
            if key in st:
                st[key] = int(st[key].item()) if key == "step" else st[key].item()
    mp2 = [mg.tensor(p.detach().numpy(), requires_grad=True) for p in mp]
    mo2 = getattr(optim, name)(mp2, **kwargs)
    mo2.load_state_dict(sd)
    for st in mo2.state.values():
        assert isinstance(st["step"], mg.Tensor) and st["step"].dtype is mg.float32
        assert st["step"].shape == () and st["step"].device.type == "cpu"
    _steps(mg, mo, mp, 2)
    _steps(mg, mo2, mp2, 2)
    for a, b in zip(mp, mp2):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    assert int(next(iter(mo2.state.values()))["step"]) == 4


@pytest.mark.parametrize("name,kwargs", STEPPED, ids=STEPPED_IDS)
def test_torch_state_dict_loads_and_continues_like_torch(name, kwargs):
    mp, tp, mo, to = _run_both(name, kwargs, n=2)
    fresh = [mg.tensor(t.detach().numpy(), requires_grad=True) for t in tp]
    mo2 = getattr(optim, name)(fresh, **kwargs)
    mo2.load_state_dict(_to_mg(to.state_dict()))
    assert _structure(mo2.state_dict(), mg) == _structure(to.state_dict(), torch)
    _steps(mg, mo2, fresh, 2)
    _steps(torch, to, tp, 2)
    for m, t in zip(fresh, tp):
        np.testing.assert_allclose(m.detach().numpy(), t.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_step_follows_the_default_dtype_as_torch():
    res = []
    for lib in (mg, torch):
        old = lib.get_default_dtype()
        lib.set_default_dtype(lib.float64)
        try:
            p = lib.ones(2, requires_grad=True)
            opt = lib.optim.Adam([p])
            p.grad = lib.ones(2)
            opt.step()
            res.append(str(opt.state[p]["step"].dtype).split(".")[-1])
        finally:
            lib.set_default_dtype(old)
    assert res == ["float64", "float64"]


def test_steps_on_a_gpu_stay_on_the_host_without_syncs():
    """As PyTorch: a non-capturable step lives on the CPU, a capturable one on the
    parameter's device (float32); neither makes the update read the device."""
    for capturable, where in ((False, "cpu"), (True, "fakegpu")):
        ps = _pair(mg, "fakegpu")
        opt = optim.Adam(ps, capturable=capturable)
        _steps(mg, opt, ps, 1)
        mg.backend.fake_stats.reset()
        _steps(mg, opt, ps, 3)
        assert mg.backend.fake_stats.syncs == 0
        st = opt.state[ps[0]]["step"]
        assert st.device.type == where and st.dtype is mg.float32 and st.shape == ()
        assert int(st) == 4


def test_capturable_load_moves_steps_to_the_device():
    """As PyTorch: the saved groups' options hold after loading; capturable ones keep
    float32 steps on the parameter's device (an int from an older file included)."""
    ps = _pair(mg, "fakegpu")
    opt = optim.Adam(ps, capturable=True)
    _steps(mg, opt, ps, 2)
    sd = copy.deepcopy(opt.state_dict())
    sd["state"][1]["step"] = 2  # an int step from an older file
    sd["state"][0]["step"] = sd["state"][0]["step"].cpu().double()
    ps2 = [mg.tensor(p.detach().cpu().numpy(), device="fakegpu", requires_grad=True) for p in ps]
    opt2 = optim.Adam(ps2, capturable=True)
    opt2.load_state_dict(sd)
    for st in opt2.state.values():
        assert st["step"].device.type == "fakegpu" and st["step"].dtype is mg.float32
    _steps(mg, opt, ps, 1)
    _steps(mg, opt2, ps2, 1)
    for a, b in zip(ps, ps2):
        np.testing.assert_array_equal(a.detach().cpu().numpy(), b.detach().cpu().numpy())


def test_step_set_by_hand_as_a_number_keeps_working():
    ps = _pair(mg)
    opt = optim.AdamW(ps)
    _steps(mg, opt, ps, 1)
    opt.state[ps[0]]["step"] = 10
    _steps(mg, opt, ps, 1)
    assert isinstance(opt.state[ps[0]]["step"], mg.Tensor) and opt.state[ps[0]]["step"].item() == 11


# ---------------------------------------------------------------- swap_in_optimizer_params_and_state
def test_swap_in_optimizer_params_and_state_matches_torch():
    res = []
    for lib in (mg, torch):
        ps = _pair(lib)
        opt = lib.optim.AdamW(ps, lr=0.1)
        _steps(lib, opt, ps, 2)
        live = [p.detach().clone() for p in ps]
        osd = copy.deepcopy(opt.state_dict())
        osd["param_groups"][0]["lr"] = 0.5
        other = {f"p{i}": p.detach().clone().requires_grad_() for i, p in enumerate(ps)}
        for p in other.values():
            p.grad = lib.ones_like(p)
        with lib.optim.swap_in_optimizer_params_and_state(opt, other, osd):
            assert opt.param_groups[0]["lr"] == 0.5
            opt.step()
        assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["params"][0] is ps[0]
        for p, q in zip(ps, live):  # the live parameters did not move
            np.testing.assert_array_equal(p.detach().numpy(), q.numpy())
        res.append(([p.detach().numpy() for p in other.values()],
                    [float(osd["state"][i]["step"]) for i in (0, 1)]))  # fmt: skip
    for a, b in zip(res[0][0], res[1][0]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert res[0][1] == res[1][1] == [3.0, 3.0]  # in-place updates reach the given state


@pytest.mark.parametrize("bad", ["no_state", "groups", "keys", "extra"])
def test_swap_in_refuses_what_torch_refuses(bad):
    for lib in (mg, torch):
        ps = _pair(lib)
        opt = lib.optim.Adam(ps)
        if bad != "no_state":
            _steps(lib, opt, ps, 1)
        osd = copy.deepcopy(opt.state_dict())
        if bad == "groups":
            osd["param_groups"].append(dict(osd["param_groups"][0]))
        elif bad == "keys":
            osd["param_groups"][0]["momentum"] = 0.9
        elif bad == "extra":
            osd["state"][7] = {}
        with pytest.raises(RuntimeError):
            with lib.optim.swap_in_optimizer_params_and_state(opt, dict(enumerate(ps)), osd):
                pass


# ---------------------------------------------------------------- swa_utils
def _bn_pair():
    res = []
    for lib in (mg, torch):
        lib.manual_seed(0)
        m = lib.nn.Sequential(lib.nn.Linear(4, 3), lib.nn.BatchNorm1d(3))
        with lib.no_grad():
            m[0].weight.copy_(lib.tensor(W0))
            m[0].bias.copy_(lib.tensor(B0))
        res.append(m)
    return res


def _train_step(lib, m, k):
    with lib.no_grad():
        m[0].weight.mul_(0.5).add_(k)
    m.train()
    m(lib.tensor(np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4) * (k + 1)))


# NOTE: get_swa_multi_avg_fn is left out: PyTorch's refuses integer buffers (addcdiv)
@pytest.mark.parametrize("kind", ["swa", "ema", "ema_multi", "default", "custom"])
def test_averaged_model_with_buffers_matches_torch(kind):
    seen = {mg: [], torch: []}

    def fns(lib, mod):
        if kind == "custom":

            def avg(a, c, n):
                seen[lib].append((type(n).__name__, int(n)))
                return a * 0.25 + c * 0.75

            return {"avg_fn": avg}
        return {
            "swa": {"avg_fn": mod.get_swa_avg_fn()},
            "swa_multi": {"multi_avg_fn": mod.get_swa_multi_avg_fn()},
            "ema": {"avg_fn": mod.get_ema_avg_fn(0.8)},
            "ema_multi": {"multi_avg_fn": mod.get_ema_multi_avg_fn(0.8)},
            "default": {},
        }[kind]

    mm, tm = _bn_pair()
    am = ms.AveragedModel(mm, use_buffers=True, **fns(mg, ms))
    at = ts.AveragedModel(tm, use_buffers=True, **fns(torch, ts))
    for k in range(4):
        _train_step(mg, mm, k)
        _train_step(torch, tm, k)
        am.update_parameters(mm)
        at.update_parameters(tm)
    for (n, a), (_, b) in zip(am.state_dict().items(), at.state_dict().items()):
        assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1], n
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=n)
    if kind == "custom":  # avg_fn gets the count as a tensor, as in PyTorch
        assert seen[mg] == seen[torch] == [("Tensor", n) for n in (1, 2, 3) for _ in range(7)]


def test_multi_avg_fn_is_called_per_dtype_group_with_a_tensor_count():
    calls = {}
    for lib, mod in ((mg, ms), (torch, ts)):
        log = calls.setdefault(lib, [])

        def multi(avgs, curs, n, log=log):
            log.append((sorted(str(a.dtype).split(".")[-1] for a in avgs), int(n)))

        am = mod.AveragedModel(_bn_pair()[0 if lib is mg else 1], multi_avg_fn=multi,
                               use_buffers=True)  # fmt: skip
        m = _bn_pair()[0 if lib is mg else 1]
        for _ in range(3):
            am.update_parameters(m)
    assert sorted(calls[mg]) == sorted(calls[torch]) and len(calls[mg]) == 4


@pytest.mark.parametrize("multi", [False, True])
def test_swa_functions_match_torch(multi):
    mm, tm = _bn_pair()
    fm = {"multi_avg_fn": ms.get_swa_multi_avg_fn()} if multi else {"avg_fn": ms.get_swa_avg_fn()}
    ft = {"multi_avg_fn": ts.get_swa_multi_avg_fn()} if multi else {"avg_fn": ts.get_swa_avg_fn()}
    am, at = ms.AveragedModel(mm, **fm), ts.AveragedModel(tm, **ft)
    for k in range(4):
        _train_step(mg, mm, k)
        _train_step(torch, tm, k)
        am.update_parameters(mm)
        at.update_parameters(tm)
    for (n, a), (_, b) in zip(am.state_dict().items(), at.state_dict().items()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=n)


def test_averaged_model_refuses_both_functions_and_checks_decay():
    for mod in (ms, ts):
        with pytest.raises(AssertionError):
            mod.AveragedModel(_bn_pair()[0 if mod is ms else 1], avg_fn=mod.get_swa_avg_fn(),
                              multi_avg_fn=mod.get_swa_multi_avg_fn())  # fmt: skip
        with pytest.raises(ValueError, match="decay"):
            mod.get_ema_avg_fn(1.5)
    assert set(ts.__all__) <= set(ms.__all__)


def test_grad_scaler_captures_a_step_with_a_host_step_count():
    """A non-capturable optimizer's host step inside a captured GradScaler step (the
    on-device skip saves and restores only the device's arrays)."""
    model = mg.nn.Linear(3, 1).to("fakegpu")
    opt = optim.RMSprop(model.parameters(), lr=0.1)
    scaler = mg.amp.GradScaler("fakegpu", init_scale=4.0)
    x = mg.ones(2, 3, device="fakegpu")

    def step():
        opt.zero_grad(set_to_none=True)
        scaler.scale(model(x).sum()).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(2):
        step()
    g = mg.cuda.CUDAGraph()
    with mg.cuda.graph(g):
        step()
    w = model.weight.detach().cpu().numpy()
    g.replay()
    assert np.abs(model.weight.detach().cpu().numpy() - w).max() > 0
    assert opt.state[model.weight]["step"].device.type == "cpu"


def test_lbfgs_loads_a_torch_state_and_continues_like_torch():
    def make(lib):
        w = lib.tensor([1.5, -0.5, 2.0, 0.3], requires_grad=True)
        opt = lib.optim.LBFGS([w], max_iter=3, history_size=5)

        def closure():
            opt.zero_grad()
            loss = ((w - 1) ** 4).sum() + (w**2).sum()
            loss.backward()
            return loss

        return w, opt, closure

    tw, topt, tclosure = make(torch)
    topt.step(tclosure)
    mw, mopt, mclosure = make(mg)
    with mg.no_grad():
        mw.copy_(mg.tensor(tw.detach().numpy()))
    mopt.load_state_dict(_to_mg(topt.state_dict()))
    topt.step(tclosure)
    mopt.step(mclosure)
    np.testing.assert_allclose(mw.detach().numpy(), tw.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert _structure(mopt.state_dict(), mg) == _structure(topt.state_dict(), torch)
