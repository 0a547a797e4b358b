"""nn activation modules with ``inplace=True`` write into their input, as PyTorch's, with
the same values and gradients, and the same refusals where the write would destroy a value
backward needs."""

import numpy as np
import pytest
import torch

import manygrad as mg

MODULES = [("ReLU", ()), ("ReLU6", ()), ("LeakyReLU", (0.1,)), ("ELU", (0.7,)), ("SiLU", ()),
           ("Hardtanh", (-0.5, 0.5)), ("CELU", (0.8,)), ("SELU", ()), ("Mish", ()),
           ("Hardswish", ()), ("Hardsigmoid", ()), ("Threshold", (0.1, -1.0))]  # fmt: skip


def _pair(name, args):
    return getattr(mg.nn, name)(*args, inplace=True), getattr(torch.nn, name)(*args, inplace=True)


@pytest.mark.parametrize("name, args", MODULES, ids=[m[0] for m in MODULES])
def test_inplace_module_writes_input_and_matches_torch(name, args):
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32) * 3
    m, t = _pair(name, args)
    assert repr(m) == repr(t)
    mw = mg.tensor(x, requires_grad=True)
    tw = torch.tensor(x, requires_grad=True)
    mh, th = mw * 1.5, tw * 1.5  # a non-leaf, as after a linear layer
    my, ty = m(mh), t(th)
    assert my is mh and ty is th  # the result is the input, written in place
    np.testing.assert_allclose(my.detach().numpy(), ty.detach().numpy(), rtol=1e-6, atol=1e-6)
    g = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    my.backward(mg.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(mw.grad.numpy(), tw.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_inplace_after_an_op_that_keeps_its_output_is_refused_as_in_torch():
    mx = mg.randn(3, requires_grad=True)
    tx = torch.tensor(mx.detach().numpy(), requires_grad=True)
    my = mg.nn.ReLU(inplace=True)(mx.sigmoid())
    ty = torch.nn.ReLU(inplace=True)(tx.sigmoid())
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ty.sum().backward()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        my.sum().backward()


def test_conv_bn_relu_inplace_block_trains_as_torch():
    mg.manual_seed(0)
    m = mg.nn.Sequential(mg.nn.Conv2d(3, 4, 3), mg.nn.BatchNorm2d(4), mg.nn.ReLU(inplace=True))
    t = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                            torch.nn.ReLU(inplace=True))  # fmt: skip
    t.load_state_dict({k: torch.tensor(v.numpy()) for k, v in m.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32)
    m(mg.tensor(x)).square().sum().backward()
    t(torch.tensor(x)).square().sum().backward()
    for (k, a), b in zip(m.named_parameters(), t.parameters()):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=k)
