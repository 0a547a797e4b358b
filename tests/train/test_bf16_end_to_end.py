"""``precision="bf16"`` on a GPU (the fake GPU here): bf16 parameters and activations,
float32 copies in the optimizer, float32 weights saved; autocast on the CPU."""

import warnings

import numpy as np
import pytest

import manygrad as mg
from manygrad import io, models
from manygrad.train import Trainer
from manygrad.train import run as R


def _data():
    from manygrad.datasets import ArrayData, load_digits

    x, y = load_digits("train")
    xt, yt = load_digits("test")
    cls = [str(i) for i in range(10)]
    return (ArrayData("digits", x[:, None], y, cls, (0.0, 16.0)),
            ArrayData("digits", xt[:, None], yt, cls, (0.0, 16.0)))  # fmt: skip


def _trainer(device, precision, out=None, model="cnn"):
    mg.manual_seed(0)
    kw = {"in_channels": 1, "image_size": 8} if model == "cnn" else {"in_features": 64}
    net = models.get(model, num_classes=10, **kw)
    tr, te = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bf16 on the CPU warns (tested elsewhere)
        return Trainer(net, tr, te, epochs=2, batch_size=64, lr=2e-3, device=device,
                       precision=precision, out=out, progress=False)  # fmt: skip


def test_bf16_on_the_gpu_trains_bf16_params_through_float32_copies(tmp_path):
    t = _trainer("fakegpu", "bf16", out=str(tmp_path / "run"))
    assert t.bf16_params and t.optimizer.master_weights
    assert all(p.dtype == mg.bfloat16 for p in t.model.parameters())
    res = t.fit()
    ref = _trainer("fakegpu", "fp32").fit()
    assert res.metrics["test_accuracy"] > 0.8
    assert abs(res.metrics["test_accuracy"] - ref.metrics["test_accuracy"]) < 0.05
    # every parameter has its float32 copy; the saved weights are those copies
    saved = io.load(str(tmp_path / "run" / R.WEIGHTS))
    for name, p in t.model.named_parameters():
        m = t.optimizer.state[p]["master_param"]
        assert m.dtype == mg.float32 and p.dtype == mg.bfloat16
        np.testing.assert_array_equal(saved[name].numpy(), m.cpu().numpy())
        np.testing.assert_allclose(
            p.detach().float().cpu().numpy(), m.cpu().numpy(), rtol=1e-2, atol=1e-2
        )
    assert all(v.dtype != mg.bfloat16 for v in saved.values())


def test_bf16_resume_continues_from_the_float32_copies(tmp_path):
    out = str(tmp_path / "run")
    t = _trainer("fakegpu", "bf16", out=out)
    t.fit()
    t2 = _trainer("fakegpu", "bf16", out=out)
    t2.resume(out)
    for (_, p), (_, q) in zip(t.model.named_parameters(), t2.model.named_parameters()):
        a = t.optimizer.state[p]["master_param"].cpu().numpy()
        b = t2.optimizer.state[q]["master_param"]
        assert b.dtype == mg.float32 and q.dtype == mg.bfloat16
        np.testing.assert_array_equal(a, b.cpu().numpy())


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_cpu_keeps_float32_params(precision):
    t = _trainer("cpu", precision, model="mlp")
    assert not t.bf16_params and not t.optimizer.master_weights
    assert all(p.dtype == mg.float32 for p in t.model.parameters())
