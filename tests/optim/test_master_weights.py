"""``Optimizer.master_weights``: 16-bit parameters update through float32 copies.

The float32 copy must follow exactly the trajectory the same optimizer takes on a float32
parameter fed the same gradients, and the parameter must be that copy rounded to its dtype;
on a GPU the fused multi-tensor step does the same (forced here on the fake GPU).
"""

import dataclasses

import ml_dtypes
import numpy as np
import pytest

import manygrad as mg
from manygrad.kernels import fastpath

OPTS = {
    "adamw": lambda ps: mg.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    "adam": lambda ps: mg.optim.Adam(ps, lr=1e-2),
    "sgd-momentum": lambda ps: mg.optim.SGD(ps, lr=1e-2, momentum=0.9, nesterov=True),
    "sgd": lambda ps: mg.optim.SGD(ps, lr=1e-2),
}


def _grads(n=4, shape=(5, 3)):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(n)]


def _run(make, dev, dtype, grads, master):
    w0 = np.random.default_rng(1).standard_normal(grads[0].shape).astype(np.float32)
    w0 = w0.astype(ml_dtypes.bfloat16).astype(np.float32)  # exactly representable in bf16
    p = mg.tensor(w0, device=dev).to(dtype).requires_grad_()
    opt = make([p])
    opt.master_weights = master
    for g in grads:
        p.grad = mg.tensor(g, device=dev).to(dtype)
        opt.step()
    return p, opt


@pytest.mark.parametrize("name", list(OPTS))
@pytest.mark.parametrize("dev", ["cpu", "fakegpu"])
def test_the_copy_follows_the_float32_trajectory(name, dev):
    grads = [g.astype(ml_dtypes.bfloat16).astype(np.float32) for g in _grads()]
    ref, _ = _run(OPTS[name], dev, mg.float32, grads, master=False)
    p, opt = _run(OPTS[name], dev, mg.bfloat16, grads, master=True)
    master = opt.state[p]["master_param"]
    assert master.dtype == mg.float32 and p.dtype == mg.bfloat16
    np.testing.assert_allclose(master.cpu().numpy(), ref.detach().cpu().numpy(), rtol=1e-6)
    np.testing.assert_array_equal(
        p.detach().float().cpu().numpy(),
        master.cpu().numpy().astype(ml_dtypes.bfloat16).astype(np.float32),
    )
    for k, v in opt.state[p].items():  # moments in float32 too
        if isinstance(v, mg.Tensor) and v.is_floating_point():
            assert v.dtype == mg.float32, k


def test_small_updates_reach_a_bf16_parameter_only_through_the_copy():
    grads = [np.full((4,), 1.0, np.float32)] * 50

    def run(master):
        p = mg.ones(4, dtype=mg.bfloat16).requires_grad_()
        opt = mg.optim.SGD([p], lr=1e-4)
        opt.master_weights = master
        for g in grads:
            p.grad = mg.tensor(g).to(mg.bfloat16)
            opt.step()
        return float(p.float()[0])

    assert run(False) == 1.0  # 1 - 1e-4 rounds back to 1 in bf16 every step
    assert run(True) == pytest.approx(1 - 50e-4, abs=4e-3)  # the copy drifts; bf16 of 0.995


def test_state_dict_round_trip_keeps_the_copies():
    grads = _grads(3)
    p, opt = _run(OPTS["adamw"], "cpu", mg.bfloat16, grads, master=True)
    q = mg.tensor(p.detach().float().numpy()).to(mg.bfloat16).requires_grad_()
    opt2 = OPTS["adamw"]([q])
    opt2.master_weights = True
    opt2.load_state_dict(opt.state_dict())
    for g in _grads(2):
        for t, o in ((p, opt), (q, opt2)):
            t.grad = mg.tensor(g).to(mg.bfloat16)
            o.step()
    np.testing.assert_array_equal(
        opt.state[p]["master_param"].numpy(), opt2.state[q]["master_param"].numpy()
    )


@pytest.mark.parametrize("name", ["adamw", "sgd-momentum"])
def test_the_fused_step_updates_the_copies(monkeypatch, name):
    grads = [g.astype(ml_dtypes.bfloat16).astype(np.float32) for g in _grads()]
    ref, _ = _run(OPTS[name], "fakegpu", mg.float32, grads, master=False)
    path = "kernels.adam_step" if name == "adamw" else "kernels.sgd_step"
    calls = []
    fp = fastpath._PATHS[path]

    def gpu(*args, **kwargs):
        calls.append(args)
        return fp.ref(*args, **kwargs)

    monkeypatch.setitem(fastpath._PATHS, path, dataclasses.replace(fp, gpu=gpu))
    monkeypatch.setattr(fastpath, "FUSED_DEVICES", ("cuda", "fakegpu"))
    monkeypatch.setattr(fastpath, "WIRING_VERIFIED", "a GPU run (simulated)")
    p, opt = _run(OPTS[name], "fakegpu", mg.bfloat16, grads, master=True)
    at = 4 if name == "adamw" else 3  # the masters argument: (params, grads, state..., masters)
    assert calls and all(c[at] is not None for c in calls)
    master = opt.state[p]["master_param"]
    np.testing.assert_allclose(master.cpu().numpy(), ref.detach().cpu().numpy(), rtol=1e-5)
    np.testing.assert_array_equal(
        p.detach().float().cpu().numpy(),
        master.cpu().numpy().astype(ml_dtypes.bfloat16).astype(np.float32),
    )
