"""More edge cases against PyTorch (CPU build): in-place activations on empty tensors, std
and var without spread or degrees of freedom, copysign's second derivative, integer
hardtanh, interpolation that keeps a dim's size with inf in the input."""

import warnings

import numpy as np
import pytest
import torch

import manygrad as mg

F = mg.nn.functional


@pytest.mark.parametrize("make", [lambda lib: lib.nn.ReLU(inplace=True),
                                  lambda lib: lib.nn.SiLU(inplace=True),
                                  lambda lib: lib.nn.functional.leaky_relu_,
                                  lambda lib: (lambda t: t.mul_(2))])  # fmt: skip
def test_inplace_on_empty_tensors(make):
    assert tuple(make(mg)(mg.zeros(0, 3)).shape) == tuple(make(torch)(torch.zeros(0, 3)).shape)


@pytest.mark.parametrize("fn, data, kw", [
    ("std", [3.0, 3.0], {}), ("std", [[1.0, 2.0, 4.0], [3.0, 3.0, 3.0]], {"dim": 1}),
    ("var", [3.0, 5.0], {"correction": 2}), ("var", [1.0, 2.0, 6.0], {"correction": 3}),
    ("var", [0.7, 0.7], {"correction": 2}), ("std", [0.7, 0.2], {"correction": 2}),
])  # fmt: skip
def test_std_var_gradients_without_spread_or_dof(fn, data, kw):
    m, t = mg.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (getattr(mg, fn)(m, **kw) * -2).sum().backward()
        (getattr(torch, fn)(t, **kw) * -2).sum().backward()
    np.testing.assert_array_equal(m.grad.numpy(), t.grad.numpy())


def test_std_second_derivative_with_a_constant_row():
    data = [[1.0, 2.0, 4.0], [3.0, 3.0, 3.0]]
    grads = []
    for lib in (mg, torch):
        x = lib.tensor(data, requires_grad=True)
        (g,) = lib.autograd.grad(lib.std(x, 1).sum(), x, create_graph=True)
        (g * g * lib.tensor(data)).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-7)


def test_copysign_double_backward():
    got = []
    for lib in (mg, torch):
        a = lib.tensor([1.0, -2.0], requires_grad=True)
        b = lib.tensor([-1.0, 1.0], requires_grad=True)
        (g,) = lib.autograd.grad(lib.copysign(a, b).pow(2).sum(), a, create_graph=True)
        got.append([v.numpy() for v in lib.autograd.grad(g.sum(), (a, b), allow_unused=True)])
    for m, t in zip(*got):
        np.testing.assert_array_equal(m, t)


@pytest.mark.parametrize("args", [(), (-1.5, 2.5)])
def test_hardtanh_on_integers(args):
    m, t = mg.tensor([-3, 0, 5]), torch.tensor([-3, 0, 5])
    assert F.hardtanh(m, *args).tolist() == torch.nn.functional.hardtanh(t, *args).tolist()
    assert F.hardtanh(m, *args).dtype == mg.int64
    mg.nn.ReLU6(inplace=True)(m)
    torch.nn.ReLU6(inplace=True)(t)
    assert m.tolist() == t.tolist()


@pytest.mark.parametrize("mode, shape", [("linear", (1, 1, 5)), ("bilinear", (1, 1, 5, 5))])
def test_interpolate_keeping_the_size_keeps_inf(mode, shape):
    a = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    a.flat[3] = np.inf
    out = F.interpolate(mg.tensor(a), size=shape[2:], mode=mode).numpy()
    # NOTE: the identity, inf kept (PyTorch 2.13 turns the inf itself into NaN: an artefact
    # of its weights' arithmetic, not copied); no NaN leaks to the neighbours
    np.testing.assert_array_equal(out, a)


def test_rnn_and_cell_input_errors_name_the_fix():
    with pytest.raises(mg.ManygradError, match=r"LSTM: the input is on fakegpu .* model.to"):
        mg.nn.LSTM(3, 4)(mg.randn(5, 2, 3, device="fakegpu"))
    with pytest.raises(mg.ManygradError, match="inconsistent input_size: got 3, expected 5"):
        mg.lstm_cell(mg.randn(2, 3), (mg.randn(2, 4), mg.randn(2, 4)), mg.randn(16, 5),
                     mg.randn(16, 4))  # fmt: skip
