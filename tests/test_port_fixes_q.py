"""Fixes found while porting round "q" of the PyTorch programs (tests/ports/scripts)."""

import numpy as np
import pytest
import torch

import manygrad as mg


def _leaves(x):
    if isinstance(x, dict):
        return [t for k in sorted(x) for t in _leaves(x[k])]
    if isinstance(x, (tuple, list)):
        return [t for v in x for t in _leaves(v)]
    return [x]


def _both(fn):
    """Run ``fn(lib)`` with PyTorch and with manygrad; return both results' leaves."""
    want, have = _leaves(fn(torch)), _leaves(fn(mg))
    assert len(want) == len(have)
    return [np.asarray(t.tolist()) for t in want], [np.asarray(t.tolist()) for t in have]


def _x(lib):
    return lib.tensor([0.5, -1.0, 2.0])


# a function constant in its inputs (directly, or as the gradient of a linear function under
# a second transform) has zero derivatives, as in PyTorch
@pytest.mark.parametrize(
    "transform",
    [
        lambda lib: lib.func.grad(lambda x: lib.tensor(2.0))(_x(lib)),
        lambda lib: lib.func.grad_and_value(lambda x: lib.ones(()) * 3)(_x(lib)),
        lambda lib: lib.func.vjp(lambda x: lib.ones(2), _x(lib))[1](lib.ones(2)),
        lambda lib: lib.func.jacrev(lambda x: lib.ones(2))(_x(lib)),
        lambda lib: lib.func.hessian(lambda x: (x * 2).sum())(_x(lib)),
        lambda lib: lib.func.jacrev(lib.func.jacrev(lambda x: (x * 2).sum() + x.pow(3).sum()))(
            _x(lib)
        ),
        lambda lib: lib.func.grad(lambda y: lib.func.grad(lambda x: (x * 2).sum())(y).sum())(
            _x(lib)
        ),
        lambda lib: lib.func.vjp(lib.func.grad(lambda x: (x * 2).sum()), _x(lib))[1](lib.ones(3)),
        lambda lib: lib.func.vjp(lambda x: (x * 2, lib.ones(2)), _x(lib))[1](
            (lib.ones(3), lib.ones(2))
        ),
    ],
)
def test_func_transforms_of_constant_functions_give_zeros(transform):
    want, have = _both(transform)
    for w, h in zip(want, have):
        np.testing.assert_allclose(h, w, rtol=1e-6, atol=1e-7)


def test_func_hessian_of_a_network_through_functional_call():
    """The Hessian over a parameter dict of a network's summed output: the output bias's
    gradient is a constant, whose rows of the Hessian are zero."""

    def run(lib):
        rng = np.random.default_rng(0)
        net = lib.nn.Sequential(lib.nn.Linear(4, 3), lib.nn.Tanh(), lib.nn.Linear(3, 2))
        params = {
            k: lib.tensor(rng.standard_normal(tuple(v.shape)).astype(np.float32))
            for k, v in net.named_parameters()
        }
        x = lib.tensor(rng.standard_normal((5, 4)).astype(np.float32))
        h = lib.func.hessian(lambda p: lib.func.functional_call(net, p, (x,)).sum())(params)
        return {f"{a}/{b}": h[a][b] for a in h for b in h[a]}

    want, have = _both(run)
    for w, h in zip(want, have):
        np.testing.assert_allclose(h, w, rtol=1e-5, atol=1e-6)


def _complex(lib, shape, seed):
    rng = np.random.default_rng(seed)
    re, im = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    return lib.complex(lib.tensor(re), lib.tensor(im))


@pytest.mark.parametrize(
    "x_shape,bias_shape", [((3, 4), None), ((2, 3, 4), (2,)), ((3, 4), (1,)), ((4,), (2,))]
)
def test_linear_on_complex_tensors_matches_pytorch(x_shape, bias_shape):
    """F.linear of complex inputs, weights and biases: values and (conjugate) gradients."""

    def run(lib):
        x = _complex(lib, x_shape, 0).requires_grad_()
        w = _complex(lib, (2, 4), 1).requires_grad_()
        b = None if bias_shape is None else _complex(lib, bias_shape, 2).requires_grad_()
        y = lib.nn.functional.linear(x, w, b)
        (y.abs() * lib.arange(1.0, y.shape[-1] + 1)).sum().backward()
        grads = [x.grad, w.grad] + ([] if b is None else [b.grad])
        return [lib.view_as_real(t.detach()) for t in [y, *grads]]

    want, have = _both(run)
    for w, h in zip(want, have):
        np.testing.assert_allclose(h, w, rtol=1e-5, atol=1e-6)


def test_complex_linear_module_trains_as_in_pytorch():
    def run(lib):
        layer = lib.nn.Linear(4, 2, dtype=lib.cfloat)
        with lib.no_grad():
            layer.weight.copy_(_complex(lib, (2, 4), 3))
            layer.bias.copy_(_complex(lib, (2,), 4))
        opt = lib.optim.Adam(layer.parameters(), lr=0.1)
        x = _complex(lib, (5, 4), 5)
        for _ in range(3):
            opt.zero_grad()
            layer(x).abs().pow(2).sum().backward()
            opt.step()
        return [lib.view_as_real(p.detach()) for p in (layer.weight, layer.bias)]

    want, have = _both(run)
    for w, h in zip(want, have):
        np.testing.assert_allclose(h, w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lib", ["torch", "mg"])
def test_grad_of_a_tensor_whose_node_was_freed(lib):
    t = torch if lib == "torch" else mg
    x = t.randn(3, requires_grad=True)
    y = x.exp()
    y.sum().backward()  # frees exp's saved values
    (g,) = t.autograd.grad((y * 2).sum(), y)  # y's gradient needs no backward of exp
    assert g.tolist() == [2.0, 2.0, 2.0]
    z = y * 3
    with pytest.raises(RuntimeError, match="(?i)backward through the graph a second time"):
        t.autograd.grad((z * 2).sum(), [z, x])  # x's needs exp's backward: refused


@pytest.mark.parametrize("lib", ["torch", "mg"])
def test_autograd_functional_of_constant_and_linear_functions_is_zeros(lib):
    t = torch if lib == "torch" else mg
    f = t.autograd.functional
    assert f.hessian(lambda b: (b * 2).sum(), t.ones(3)).tolist() == [[0.0] * 3] * 3
    assert f.jacobian(lambda b: t.ones(2), t.ones(3)).tolist() == [[0.0] * 3] * 2
    out, g = f.vjp(lambda b: t.ones(2), t.ones(3), t.ones(2))
    assert out.tolist() == [1.0, 1.0] and g.tolist() == [0.0] * 3
    val, hv = f.hvp(lambda b: (b * 3).sum(), t.ones(3), t.ones(3))
    assert float(val) == 9.0 and hv.tolist() == [0.0] * 3
    _, jv = f.jvp(lambda b: t.ones(2), t.ones(3), t.ones(3))
    assert jv.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("lib", ["torch", "mg"])
def test_post_accumulate_grad_hook_must_return_none(lib):
    t = torch if lib == "torch" else mg
    p = t.ones(2, requires_grad=True)
    p.register_post_accumulate_grad_hook(lambda q: q * 2)
    with pytest.raises(RuntimeError, match="should return None"):
        (p * 2).sum().backward()
    q = t.ones(2, requires_grad=True)
    q.register_post_accumulate_grad_hook(lambda q: q.add_(q.grad, alpha=-0.5))  # returns q
    (q * 2).sum().backward()
    assert q.tolist() == [0.0, 0.0]
