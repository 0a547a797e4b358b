"""0-d CPU tensors go along with tensors of another device, as in PyTorch (a GPU program's
``x * torch.tensor(2.0)``); other mixes are refused with a DeviceError naming the fix."""

import numpy as np
import pytest
import torch

import manygrad as mg
from manygrad.errors import DeviceError

DEV = "fakegpu"

CASES = {
    "mul": lambda x, s: x * s,
    "rmul": lambda x, s: s * x,
    "sub": lambda x, s: s - x,
    "div": lambda x, s: x / s,
    "pow": lambda x, s: x.abs() ** s,
    "where": lambda x, s: torch_or_mg(x).where(x > 0, x, s),
    "maximum": lambda x, s: torch_or_mg(x).maximum(x, s),
    "clamp": lambda x, s: x.clamp(min=s),
    "lerp": lambda x, s: torch_or_mg(x).lerp(x, x * 2, s),
}


def torch_or_mg(x):
    return torch if isinstance(x, torch.Tensor) else mg


@pytest.mark.parametrize("name", list(CASES))
def test_cpu_scalar_tensor_with_a_device_tensor(name):
    data = np.random.default_rng(0).standard_normal(5).astype(np.float32)
    x, s = mg.tensor(data, device=DEV), mg.tensor(0.75)
    got = CASES[name](x, s)
    want = CASES[name](torch.tensor(data), torch.tensor(0.75))
    assert got.device == x.device
    np.testing.assert_allclose(got.cpu().numpy(), want.numpy(), rtol=1e-6, atol=1e-7)


def test_gradient_of_the_cpu_scalar_comes_back_to_the_cpu():
    data = np.arange(4, dtype=np.float32)
    x = mg.tensor(data, device=DEV, requires_grad=True)
    w = mg.tensor(3.0, requires_grad=True)
    (x * w).sum().backward()
    assert w.grad.device.type == "cpu" and x.grad.device == x.device
    assert w.grad.item() == pytest.approx(data.sum())
    np.testing.assert_allclose(x.grad.cpu().numpy(), np.full(4, 3.0))


def test_setitem_with_a_cpu_scalar_value():
    x = mg.zeros(3, device=DEV)
    x[1] = mg.tensor(5.0)
    np.testing.assert_array_equal(x.cpu().numpy(), [0, 5, 0])


@pytest.mark.parametrize(
    "f",
    [
        lambda: mg.ones(3) * mg.tensor(2.0, device=DEV),  # a device scalar with CPU tensors
        lambda: mg.ones(3, device=DEV) + mg.ones(3),  # a 1-d CPU tensor
        lambda: mg.ones(3, device=DEV) + mg.ones(3, device="fakegpu:1"),
        lambda: mg.cat([mg.ones(3, device=DEV), mg.ones(1)]),
    ],
)
def test_other_mixes_are_refused(f):
    with pytest.raises(DeviceError, match="expected all tensors on one device"):
        f()


def test_setitem_refuses_a_one_d_cpu_value():
    x = mg.zeros(3, device=DEV)
    with pytest.raises(DeviceError, match="move it with"):
        x[:2] = mg.ones(2)
