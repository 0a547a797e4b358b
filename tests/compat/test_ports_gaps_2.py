"""Gaps that the second batch of public-style port scripts (CLIP under bfloat16 autocast, the
BYOL and DDPM moving averages) ran into, each compared with what PyTorch does."""

import numpy as np
import pytest
import torch

import manygrad as mg


def _bits(t) -> np.ndarray:
    return t.detach().float().numpy()


def test_bf16_autocast_linear_rounds_once():
    # CLIP's towers under torch.autocast("cpu", dtype=torch.bfloat16): x @ W.T + b is
    # computed in float32 and rounded to bfloat16 once, not rounded before the bias
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 32)).astype(np.float32)
    w = (0.2 * rng.standard_normal((24, 32))).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        yt = torch.nn.functional.linear(torch.tensor(x), torch.tensor(w), torch.tensor(b))
    with mg.autocast("cpu", dtype=mg.bfloat16):
        ym = mg.nn.functional.linear(mg.tensor(x), mg.tensor(w), mg.tensor(b))
    assert str(ym.dtype) == "manygrad.bfloat16"
    np.testing.assert_array_equal(_bits(ym), _bits(yt))


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_gelu_of_16bit_floats_computes_in_float32(dtype):
    # nn.TransformerEncoderLayer(activation="gelu") under bfloat16 autocast: PyTorch's CPU
    # kernel computes in float32 and rounds once (forward and backward)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 32)).astype(np.float32)
    g = rng.standard_normal((64, 32)).astype(np.float32)
    xm = mg.tensor(x).to(getattr(mg, dtype)).requires_grad_()
    xt = torch.tensor(x).to(getattr(torch, dtype)).requires_grad_()
    ym, yt = mg.nn.functional.gelu(xm), torch.nn.functional.gelu(xt)
    ym.backward(mg.tensor(g).to(getattr(mg, dtype)))
    yt.backward(torch.tensor(g).to(getattr(torch, dtype)))
    assert str(ym.dtype).endswith(dtype) and str(xm.grad.dtype).endswith(dtype)
    # one rounding of the float32 result (the float32 GELUs themselves differ in the last bits)
    y32 = mg.nn.functional.gelu(mg.tensor(_bits(xm)))
    np.testing.assert_array_equal(_bits(ym), _bits(y32.to(getattr(mg, dtype))))
    ulp = 2.0**-8 if dtype == "bfloat16" else 2.0**-11
    np.testing.assert_allclose(_bits(ym), _bits(yt), rtol=ulp, atol=1e-3 * ulp)
    np.testing.assert_allclose(_bits(xm.grad), _bits(xt.grad), rtol=ulp, atol=1e-3 * ulp)


@pytest.mark.parametrize("weight", [0.0, 0.2, 0.5, 0.7, 1.0, -0.3, 1.5])
def test_lerp_takes_pytorchs_branch_for_large_weights(weight):
    # PyTorch: start + w * (end - start) for |w| < 0.5, else end - (end - start) * (1 - w)
    start = np.array([1e8, -3.0, 0.25, 7.5], dtype=np.float32)
    end = np.array([1.0, 5.0, -0.125, 7.5], dtype=np.float32)
    t = torch.tensor(start).lerp(torch.tensor(end), weight)
    m = mg.tensor(start).lerp(mg.tensor(end), weight)
    np.testing.assert_allclose(m.numpy(), t.numpy(), rtol=1.2e-7, atol=0)
    if weight == 1.0:  # exactly end: 1e8 + (1 - 1e8) would be 0 in float32
        np.testing.assert_array_equal(m.numpy(), end)
    mi = mg.tensor(start)
    mi.lerp_(mg.tensor(end), weight)
    np.testing.assert_array_equal(mi.numpy(), m.numpy())
    ms = [mg.tensor(start)]
    mg._foreach_lerp_(ms, [mg.tensor(end)], weight)
    np.testing.assert_array_equal(ms[0].numpy(), m.numpy())


def test_lerp_with_a_tensor_weight_and_its_gradients():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 6)).astype(np.float32)
    w = np.array([0.0, 0.3, 0.5, 0.8, 1.0, 1.4], dtype=np.float32)
    ts = [torch.tensor(v, requires_grad=True) for v in (a, b, w)]
    ms = [mg.tensor(v, requires_grad=True) for v in (a, b, w)]
    yt, ym = torch.lerp(*ts), mg.lerp(*ms)
    np.testing.assert_allclose(ym.detach().numpy(), yt.detach().numpy(), rtol=1.2e-7, atol=1e-7)
    (yt * torch.arange(6)).sum().backward()
    (ym * mg.arange(6)).sum().backward()
    for t, m in zip(ts, ms):
        np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_ema_multi_avg_fn_matches_pytorch():
    # DDPM-style: AveragedModel(multi_avg_fn=get_ema_multi_avg_fn(d), use_buffers=True), with
    # BatchNorm's integer counter among the buffers
    from torch.optim.swa_utils import AveragedModel as TAveraged
    from torch.optim.swa_utils import get_ema_multi_avg_fn as t_ema

    from manygrad.optim.swa_utils import AveragedModel as MAveraged
    from manygrad.optim.swa_utils import get_ema_multi_avg_fn as m_ema

    rng = np.random.default_rng(3)
    tnet = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    mnet = mg.nn.Sequential(mg.nn.Linear(4, 3), mg.nn.BatchNorm1d(3))
    mnet.load_state_dict({k: mg.tensor(v.numpy()) for k, v in tnet.state_dict().items()})
    tavg = TAveraged(tnet, multi_avg_fn=t_ema(0.75), use_buffers=True)
    mavg = MAveraged(mnet, multi_avg_fn=m_ema(0.75), use_buffers=True)
    for _ in range(3):
        x = rng.standard_normal((8, 4)).astype(np.float32)
        tnet(torch.tensor(x))
        mnet(mg.tensor(x))
        with torch.no_grad():
            for p in tnet.parameters():
                p.mul_(0.9).add_(0.1)
        with mg.no_grad():
            for p in mnet.parameters():
                p.mul_(0.9).add_(0.1)
        tavg.update_parameters(tnet)
        mavg.update_parameters(mnet)
    tsd, msd = tavg.module.state_dict(), mavg.module.state_dict()
    for k, v in tsd.items():
        assert str(msd[k].dtype).split(".")[-1] == str(v.dtype).split(".")[-1], k
        np.testing.assert_allclose(msd[k].numpy(), v.numpy(), rtol=1e-6, atol=1e-7, err_msg=k)
    with pytest.raises(ValueError):
        m_ema(1.5)
