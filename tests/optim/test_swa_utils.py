"""torch.optim.swa_utils against PyTorch: averaged weights, SWALR rates, update_bn."""

import copy

import numpy as np
import pytest

import manygrad as mg
from manygrad.optim import swa_utils as ms

torch = pytest.importorskip("torch")
ts = torch.optim.swa_utils


def _pair():
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((3, 4)), rng.standard_normal(3)
    mm, tm = mg.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    with mg.no_grad():
        mm.weight.copy_(mg.tensor(w, dtype=mg.float32))
        mm.bias.copy_(mg.tensor(b, dtype=mg.float32))
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(w))
        tm.bias.copy_(torch.tensor(b))
    return mm, tm


@pytest.mark.parametrize("kind", ["mean", "ema"])
def test_averaged_model_matches_torch(kind):
    mm, tm = _pair()
    kw_m = {"multi_avg_fn": ms.get_ema_multi_avg_fn(0.9)} if kind == "ema" else {}
    kw_t = {"multi_avg_fn": ts.get_ema_multi_avg_fn(0.9)} if kind == "ema" else {}
    am, at = ms.AveragedModel(mm, **kw_m), ts.AveragedModel(tm, **kw_t)
    for step in range(4):
        with mg.no_grad():
            mm.weight.copy_(mm.weight * 0.5 + step)
        with torch.no_grad():
            tm.weight.copy_(tm.weight * 0.5 + step)
        am.update_parameters(mm)
        at.update_parameters(tm)
        np.testing.assert_allclose(am.module.weight.detach().numpy(), at.module.weight.detach().numpy(),
                                   rtol=1e-5)  # fmt: skip
    assert am.n_averaged.item() == at.n_averaged.item() == 4
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(am(mg.tensor(x)).detach().numpy(),
                               at(torch.tensor(x)).detach().numpy(), rtol=1e-5)  # fmt: skip


@pytest.mark.parametrize("kw", [dict(swa_lr=0.05), dict(swa_lr=[0.05, 0.2], anneal_epochs=4,
                                anneal_strategy="linear"), dict(swa_lr=0.01, anneal_epochs=0)])  # fmt: skip
def test_swalr_matches_torch(kw):
    mp = [mg.zeros(1, requires_grad=True), mg.zeros(1, requires_grad=True)]
    tp = [torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)]
    mo = mg.optim.SGD([{"params": [mp[0]]}, {"params": [mp[1]], "lr": 0.3}], lr=0.1)
    to = torch.optim.SGD([{"params": [tp[0]]}, {"params": [tp[1]], "lr": 0.3}], lr=0.1)
    msch, tsch = ms.SWALR(mo, **kw), ts.SWALR(to, **kw)
    for _ in range(15):
        assert [g["lr"] for g in mo.param_groups] == pytest.approx(
            [g["lr"] for g in to.param_groups], rel=1e-12)  # fmt: skip
        mo.step()
        to.step()
        msch.step()
        tsch.step()


def test_update_bn_matches_torch():
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((5, 3)).astype(np.float32) for _ in range(3)]
    mm = mg.nn.Sequential(mg.nn.BatchNorm1d(3))
    tm = torch.nn.Sequential(torch.nn.BatchNorm1d(3))
    mm.eval()
    ms.update_bn([mg.tensor(x) for x in xs], mm)
    ts.update_bn([torch.tensor(x) for x in xs], tm)
    np.testing.assert_allclose(mm[0].running_mean.numpy(), tm[0].running_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(mm[0].running_var.numpy(), tm[0].running_var.numpy(), rtol=1e-5)
    assert mm[0].momentum == 0.1 and not mm.training
    ms.update_bn([], copy.deepcopy(mg.nn.Linear(2, 2)))  # no BatchNorm: nothing to do
