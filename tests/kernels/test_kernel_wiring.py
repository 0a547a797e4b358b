"""The ops and optimizers that take a fused kernel on a GPU: on the fake GPU the path is
forced (its device added to the op's fused devices, its ``gpu`` function replaced by a spy
that runs the reference), and the results and gradients must equal the plain path's;
``MANYGRAD_FAST_PATHS=none`` gives the plain path back."""

import dataclasses

import numpy as np
import pytest

import manygrad as mg
import manygrad.nn.functional as F
from manygrad import backend
from manygrad.kernels import fastpath


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.delenv(fastpath.ENV, raising=False)
    # NOTE: these tests check the wiring as it will run once a GPU run has verified it
    monkeypatch.setattr(fastpath, "WIRING_VERIFIED", "a GPU run (simulated)")
    fastpath.reset_warnings()
    yield
    fastpath.reset_warnings()


def test_unverified_wiring_is_off_unless_the_environment_names_it(monkeypatch):
    monkeypatch.setattr(fastpath, "WIRING_VERIFIED", "")
    monkeypatch.setattr(fastpath, "FUSED_DEVICES", ("cuda", "fakegpu"))
    a = backend.xp_of(backend.device("fakegpu")).ones((4, 8), "float32")
    assert fastpath.enabled("kernels.softmax") and not fastpath.wired("kernels.softmax", a)
    monkeypatch.setenv(fastpath.ENV, "kernels.softmax")
    assert fastpath.wired("kernels.softmax", a)
    monkeypatch.setenv(fastpath.ENV, "all")
    assert fastpath.wired("kernels.cross_entropy", a)


def spy(monkeypatch, name):
    """Replace path ``name``'s GPU function by its reference, recording each call."""
    calls = []
    p = fastpath._PATHS[name]

    def gpu(*args, **kwargs):
        calls.append((args, kwargs))
        return p.ref(*args, **kwargs)

    monkeypatch.setitem(fastpath._PATHS, name, dataclasses.replace(p, gpu=gpu))
    return calls


def _t(a, dev="fakegpu", grad=False):
    return mg.tensor(a, device=dev, requires_grad=grad)


def _close(a, b, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(a.detach().cpu().numpy(), np.float32),
                               np.asarray(b.detach().cpu().numpy(), np.float32),
                               rtol=rtol, atol=atol)  # fmt: skip


def _ce_run(x, t, **kw):
    xt = _t(x, grad=True)
    out = F.cross_entropy(xt, _t(t), **kw)
    g = np.random.default_rng(5).random(out.shape).astype(np.float32) + 0.5
    out.backward(_t(g))
    return out, xt.grad


@pytest.mark.parametrize("kw", [{}, {"label_smoothing": 0.1, "ignore_index": 2},
                                {"reduction": "sum"}, {"reduction": "none", "ignore_index": 0},
                                {"reduction": "none", "label_smoothing": 0.2}])  # fmt: skip
def test_cross_entropy_takes_the_fused_kernel(monkeypatch, kw):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((9, 13)) * 3).astype(np.float32)
    t = rng.integers(0, 13, 9)
    t[4] = kw.get("ignore_index", -100)
    want, gwant = _ce_run(x, t, **kw)  # fakegpu is not a fused device: the plain path
    calls, bwd = (
        spy(monkeypatch, "kernels.cross_entropy"),
        spy(monkeypatch, "kernels.cross_entropy_backward"),
    )
    monkeypatch.setattr(fastpath, "FUSED_DEVICES", ("cuda", "fakegpu"))
    got, ggot = _ce_run(x, t, **kw)
    assert len(calls) == 1
    (args, kwargs) = calls[0]
    assert args[0].shape == (9, 13) and args[1].dtype == np.int64
    assert args[2:] == (kw.get("ignore_index", -100), kw.get("label_smoothing", 0.0))
    # a reduced loss gets dlogits from the forward pass; per-row losses from the backward
    assert (kwargs["dloss"] is None) == (kw.get("reduction") == "none")
    assert len(bwd) == (1 if kw.get("reduction") == "none" else 0)
    assert got.dtype == want.dtype and got.shape == want.shape
    _close(got, want)
    _close(ggot, gwant)


def test_cross_entropy_keeps_the_plain_path_where_the_kernel_cannot_serve(monkeypatch):
    calls = spy(monkeypatch, "kernels.cross_entropy")
    monkeypatch.setattr(fastpath, "FUSED_DEVICES", ("cuda", "fakegpu"))
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal((4, 5)).astype(np.float32), rng.integers(0, 5, 4)
    F.cross_entropy(_t(x), _t(t), weight=_t(np.ones(5, np.float32)))  # class weights
    F.cross_entropy(_t(x.astype(np.float64)), _t(t))  # float64
    F.cross_entropy(_t(x.reshape(4, 5, 1)), _t(t.reshape(4, 1)))  # (N, C, d)
    F.nll_loss(_t(x), _t(t))  # log-probabilities
    assert calls == []
    monkeypatch.setenv(fastpath.ENV, "none")
    F.cross_entropy(_t(x), _t(t))
    assert calls == []
    monkeypatch.delenv(fastpath.ENV)
    F.cross_entropy(_t(x, "cpu"), _t(t, "cpu"))
    assert calls == []
    F.cross_entropy(_t(x), _t(t))
    assert len(calls) == 1


def test_cross_entropy_fused_is_twice_differentiable(monkeypatch):
    rng = np.random.default_rng(2)
    x, t = rng.standard_normal((5, 4)).astype(np.float32), rng.integers(0, 4, 5)

    def hess():
        xt = _t(x, grad=True)
        (g,) = mg.autograd.grad(F.cross_entropy(xt, _t(t), label_smoothing=0.1), xt,
                                create_graph=True)  # fmt: skip
        (g * g).sum().backward()
        return g, xt.grad

    g0, h0 = hess()
    spy(monkeypatch, "kernels.cross_entropy")
    monkeypatch.setattr(fastpath, "FUSED_DEVICES", ("cuda", "fakegpu"))
    g1, h1 = hess()
    _close(g1, g0)
    _close(h1, h0)


def _force(monkeypatch):
    monkeypatch.setattr(fastpath, "FUSED_DEVICES", ("cuda", "fakegpu"))


def _sm_run(x, dim, log=False, dt=None):
    xt = _t(x, grad=True)
    xin = xt if dt is None else xt.to(dt)
    y = (F.log_softmax if log else F.softmax)(xin, dim=dim)
    g = np.random.default_rng(6).standard_normal(y.shape).astype(np.float32)
    y.backward(_t(g).to(y.dtype))
    return y, xt.grad


@pytest.mark.parametrize("dt", [None, mg.bfloat16], ids=["float32", "bfloat16"])
def test_softmax_over_the_last_dim_takes_the_row_kernel(monkeypatch, dt):
    x = np.random.default_rng(3).standard_normal((2, 3, 7)).astype(np.float32) * 2
    want, gwant = _sm_run(x, -1, dt=dt)
    fwd, bwd = spy(monkeypatch, "kernels.softmax"), spy(monkeypatch, "kernels.softmax_backward")
    _force(monkeypatch)
    got, ggot = _sm_run(x, -1, dt=dt)
    assert len(fwd) == 1 and len(bwd) == 1
    assert fwd[0][0][0].shape == (2, 3, 7) and fwd[0][1] == {}
    g_arg, y_arg = bwd[0][0]
    assert g_arg.shape == y_arg.shape == (2, 3, 7) and g_arg.dtype == y_arg.dtype
    assert got.dtype == want.dtype
    tol = {} if dt is None else {"rtol": 1e-2, "atol": 1e-2}
    _close(got, want, **tol)
    _close(ggot, gwant, **tol)
    # with only the forward switched on, backward runs the plain formula on the kernel's y
    monkeypatch.setenv(fastpath.ENV, "kernels.softmax")
    monkeypatch.setitem(fastpath.VERIFIED, "kernels.softmax_backward", "")
    got2, ggot2 = _sm_run(x, -1, dt=dt)
    assert len(fwd) == 2 and len(bwd) == 1
    _close(ggot2, gwant, **tol)


def test_softmax_keeps_the_plain_path_elsewhere(monkeypatch):
    fwd = spy(monkeypatch, "kernels.softmax")
    spy(monkeypatch, "kernels.softmax_backward")
    _force(monkeypatch)
    x = np.random.default_rng(4).standard_normal((3, 5)).astype(np.float32)
    _sm_run(x, 0)  # not the last dim
    _sm_run(x, -1, log=True)  # log_softmax has no kernel
    _sm_run(x.astype(np.float64), -1)
    monkeypatch.setenv(fastpath.ENV, "none")
    _sm_run(x, -1)
    assert fwd == []
    monkeypatch.delenv(fastpath.ENV)
    _sm_run(x, 1)
    assert len(fwd) == 1


def test_softmax_fused_is_twice_differentiable(monkeypatch):
    x = np.random.default_rng(5).standard_normal((4, 6)).astype(np.float32)

    def hess():
        xt = _t(x, grad=True)
        (g,) = mg.autograd.grad((F.softmax(xt, -1) ** 3).sum(), xt, create_graph=True)
        (g * g).sum().backward()
        return g, xt.grad

    g0, h0 = hess()
    spy(monkeypatch, "kernels.softmax")
    spy(monkeypatch, "kernels.softmax_backward")
    _force(monkeypatch)
    g1, h1 = hess()
    _close(g1, g0)
    _close(h1, h0)


def _train(make, steps=3, dt=None):
    rng = np.random.default_rng(7)
    ps = [_t(rng.standard_normal(s).astype(np.float32), grad=True) for s in ((4, 3), (5,))]
    if dt is not None:
        ps = [mg.tensor(p.detach().to(dt), requires_grad=True) for p in ps]
    opt = make(ps)
    for k in range(steps):
        for p in ps:
            p.grad = _t(rng.standard_normal(p.shape).astype(np.float32)).to(p.dtype)
        if k == 1:
            ps[1].grad = None  # a param without a gradient this step: its step count lags
        opt.step()
    return ps, opt


OPTIMIZERS = {
    "adam": lambda ps: mg.optim.Adam(ps, lr=0.1),
    "adam-wd-max": lambda ps: mg.optim.Adam(ps, lr=0.1, weight_decay=0.1, maximize=True),
    "adamw": lambda ps: mg.optim.AdamW(ps, lr=0.1, betas=(0.8, 0.9), weight_decay=0.05),
    "sgd": lambda ps: mg.optim.SGD(ps, lr=0.1),
    "sgd-momentum": lambda ps: mg.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1,
                                            weight_decay=0.01),
    "sgd-nesterov": lambda ps: mg.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True,
                                            maximize=True),
}  # fmt: skip


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_steps_take_one_multi_tensor_launch(monkeypatch, name):
    path = "kernels.adam_step" if name.startswith("adam") else "kernels.sgd_step"
    want, opt0 = _train(OPTIMIZERS[name])
    calls = spy(monkeypatch, path)
    _force(monkeypatch)
    got, opt1 = _train(OPTIMIZERS[name])
    # step 1: one launch for both params; step 2: for the param with a gradient; step 3:
    # Adam launches per step count (the second param lags one), SGD once
    launches = [2, 1, 1, 1] if path == "kernels.adam_step" else [2, 1, 2]
    assert [len(c[0][0]) for c in calls] == launches
    assert all(len(c[1]["hyper"]) == 10 and "flags" in c[1] for c in calls)
    for a, b in zip(got, want):  # float32 math grouped otherwise: a few ulps apart
        _close(a, b, 1e-5, 1e-5)
    s0, s1 = opt0.state_dict()["state"], opt1.state_dict()["state"]
    assert s0.keys() == s1.keys()
    for k in s0:
        for key, v in s0[k].items():
            if isinstance(v, int):
                assert s1[k][key] == v
            else:
                _close(s1[k][key], v, 1e-5, 1e-5)
    # the same with the paths off: the old one-by-one update
    monkeypatch.setenv(fastpath.ENV, "none")
    off, _ = _train(OPTIMIZERS[name])
    assert len(calls) == len(launches)
    for a, b in zip(off, want):
        _close(a, b, 0, 0)


def test_optimizer_options_the_kernel_lacks_keep_the_old_update(monkeypatch):
    adam, sgd = spy(monkeypatch, "kernels.adam_step"), spy(monkeypatch, "kernels.sgd_step")
    _force(monkeypatch)
    _train(lambda ps: mg.optim.Adam(ps, amsgrad=True))
    _train(lambda ps: mg.optim.AdamW(ps, capturable=True))
    _train(lambda ps: mg.optim.SGD(ps, lr=0.1, momentum=0.9, capturable=True))
    _train(lambda ps: mg.optim.Adam(ps), dt=mg.bfloat16)  # 16-bit params: no float32 state
    assert adam == [] and sgd == []
    monkeypatch.setattr(fastpath, "FUSED_DEVICES", ("cuda",))
    _train(lambda ps: mg.optim.Adam(ps))  # fakegpu is no GPU
    assert adam == []


def test_dropout_takes_the_counter_based_kernel(monkeypatch):
    x = np.random.default_rng(8).standard_normal((64, 33)).astype(np.float32) + 3
    mg.manual_seed(0)
    old = F.dropout(_t(x), 0.25)
    fwd, bwd = spy(monkeypatch, "kernels.dropout"), spy(monkeypatch, "kernels.dropout_backward")
    _force(monkeypatch)

    def run():
        xt = _t(x, grad=True)
        y = F.dropout(xt, 0.25)
        y.backward(_t(np.ones_like(x)))
        return y.detach().cpu().numpy(), xt.grad.cpu().numpy()

    mg.manual_seed(0)
    y1, g1 = run()
    y2, _ = run()
    mg.manual_seed(0)
    y3, _ = run()
    (a1, _), (a2, _) = fwd[0], fwd[1]
    assert a1[1:] == (0.25, a1[2], 0) and a2[1:] == (0.25, a1[2], x.size)  # offsets advance
    assert bwd[0][0][1:] == a1[1:]  # backward regenerates the forward's mask
    keep = y1 != 0
    np.testing.assert_allclose(y1[keep], x[keep] / 0.75, rtol=1e-6)
    np.testing.assert_allclose(g1, keep / 0.75, rtol=1e-6)  # gradient: the same mask
    assert 0.65 < keep.mean() < 0.85
    assert (y3 == y1).all() and not (y2 == y1).all()  # manual_seed repeats the masks
    monkeypatch.setenv(fastpath.ENV, "none")
    mg.manual_seed(0)
    np.testing.assert_array_equal(F.dropout(_t(x), 0.25).cpu().numpy(), old.cpu().numpy())
    assert len(fwd) == 3


def test_dropout_fused_is_twice_differentiable(monkeypatch):
    spy(monkeypatch, "kernels.dropout")
    spy(monkeypatch, "kernels.dropout_backward")
    _force(monkeypatch)
    x = _t(np.random.default_rng(9).standard_normal((8, 9)).astype(np.float32), grad=True)
    y = F.dropout(x, 0.5)
    (g,) = mg.autograd.grad((y * y).sum(), x, create_graph=True)
    g.sum().backward()
    keep = (y.detach().cpu().numpy() != 0).astype(np.float32)
    np.testing.assert_allclose(g.detach().cpu().numpy(), 2 * keep * 4 * x.detach().cpu().numpy(),
                               rtol=1e-5)  # fmt: skip
    np.testing.assert_allclose(x.grad.cpu().numpy(), 2 * keep * 4, rtol=1e-5)


def _ln_run(x, nshape, affine, dt=None):
    rng = np.random.default_rng(10)
    xt = _t(x, grad=True)
    w = _t(rng.standard_normal(nshape).astype(np.float32), grad=True) if affine else None
    b = _t(rng.standard_normal(nshape).astype(np.float32), grad=True) if affine else None
    cast = (lambda a: a) if dt is None else (lambda a: None if a is None else a.to(dt))  # noqa: E731
    y = F.layer_norm(cast(xt), nshape, cast(w), cast(b))
    y.backward(_t(rng.standard_normal(y.shape).astype(np.float32)).to(y.dtype))
    return [y, xt.grad] + ([w.grad, b.grad] if affine else [])


@pytest.mark.parametrize("nshape,affine,dt", [((7,), True, None), ((2, 5), False, None),
                                              ((2, 5), True, None), ((7,), True, mg.bfloat16)])  # fmt: skip
def test_layer_norm_forward_takes_the_kernel(monkeypatch, nshape, affine, dt):
    x = np.random.default_rng(11).standard_normal((3, 4) + nshape).astype(np.float32) * 2 + 1
    want = _ln_run(x, nshape, affine, dt)
    calls = spy(monkeypatch, "kernels.layer_norm")
    bwd = spy(monkeypatch, "kernels.layer_norm_backward")
    _force(monkeypatch)
    got = _ln_run(x, nshape, affine, dt)
    assert len(calls) == 1 and bwd == []  # the backward kernel is not verified: reference
    (xa, wa, ba, eps), _ = calls[0]
    d = int(np.prod(nshape))
    assert xa.shape == (12, d) and eps == 1e-5
    assert (wa is None) == (not affine) and (wa is None or wa.shape == ba.shape == (d,))
    tol = {} if dt is None else {"rtol": 2e-2, "atol": 2e-2}
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        _close(a, b, **(tol or {"rtol": 1e-5, "atol": 1e-5}))


def test_layer_norm_keeps_the_plain_path_elsewhere(monkeypatch):
    calls = spy(monkeypatch, "kernels.layer_norm")
    _force(monkeypatch)
    x = np.random.default_rng(12).standard_normal((3, 6)).astype(np.float32)
    _ln_run(x.astype(np.float64), (6,), True, mg.float64)  # float64 (input and parameters)
    xt = _t(x).to(mg.bfloat16)
    F.layer_norm(xt, (6,), _t(np.ones(6, np.float32)))  # float32 weight on bfloat16 input
    monkeypatch.setenv(fastpath.ENV, "none")
    _ln_run(x, (6,), True)
    assert calls == []
    monkeypatch.delenv(fastpath.ENV)
    _ln_run(x, (6,), True)
    assert len(calls) == 1


@pytest.mark.parametrize("nshape,affine", [((7,), True), ((2, 5), False)])
def test_rms_norm_forward_takes_the_kernel(monkeypatch, nshape, affine):
    x = np.random.default_rng(13).standard_normal((3, 4) + nshape).astype(np.float32)
    w = np.random.default_rng(14).standard_normal(nshape).astype(np.float32)

    def run():
        xt, wt = _t(x, grad=True), (_t(w, grad=True) if affine else None)
        y = F.rms_norm(xt, nshape, wt)
        y.backward(_t(np.cos(x)))
        return [y, xt.grad] + ([wt.grad] if affine else [])

    want = run()
    calls = spy(monkeypatch, "kernels.rms_norm")
    bwd = spy(monkeypatch, "kernels.rms_norm_backward")
    _force(monkeypatch)
    got = run()
    assert len(calls) == 1 and bwd == []
    (xa, wa, eps), _ = calls[0]
    assert xa.shape == (12, int(np.prod(nshape))) and eps == 2.0**-23 and (wa is None) != affine
    for a, b in zip(got, want):
        _close(a, b, 1e-5, 1e-5)
    monkeypatch.setenv(fastpath.ENV, "none")
    run()
    assert len(calls) == 1


def test_adam_after_a_capturable_phase_keeps_the_device_step(monkeypatch):
    calls = spy(monkeypatch, "kernels.adam_step")
    _force(monkeypatch)
    ps, opt = _train(lambda ps: mg.optim.Adam(ps, capturable=True), steps=1)
    opt.param_groups[0]["capturable"] = False  # its step counts are device tensors now
    for p in ps:
        p.grad = _t(np.ones(p.shape, np.float32))
    from manygrad.optim import _fused

    assert _fused.adam(opt, opt.param_groups[0]) == set() and calls == []
