"""Gaps that the public-style port scripts (tests/ports/scripts) ran into, each compared with
what PyTorch does."""

import numpy as np
import pytest
import torch

import manygrad as mg


@pytest.mark.parametrize(
    "data",
    [
        np.array([True, False]),  # CleanRL: torch.Tensor(done) of a NumPy bool array
        np.zeros(3),  # float64 NumPy data
        np.arange(3, dtype=np.int8),
        np.ones(2, dtype=np.float16),
        [True, False],
        [1.5, 2.5],
    ],
    ids=["bool-array", "float64-array", "int8-array", "float16-array", "bool-list", "floats"],
)
@pytest.mark.parametrize("default", ["float32", "float64"])
def test_legacy_tensor_constructor_gives_the_default_dtype(data, default):
    prev_t, prev_m = torch.get_default_dtype(), mg.get_default_dtype()
    torch.set_default_dtype(getattr(torch, default))
    mg.set_default_dtype(getattr(mg, default))
    try:
        t, m = torch.Tensor(data), mg.Tensor(data)
    finally:
        torch.set_default_dtype(prev_t)
        mg.set_default_dtype(prev_m)
    assert str(m.dtype).split(".")[-1] == str(t.dtype).split(".")[-1] == default
    np.testing.assert_array_equal(m.numpy(), t.numpy())
    assert (1.0 - m).dtype is m.dtype  # the PPO script's `1.0 - next_done`


def test_legacy_tensor_of_a_tensor_keeps_its_dtype():
    for dtype in ("bool", "int64", "float64"):
        t = torch.Tensor(torch.zeros(2, dtype=getattr(torch, dtype)))
        m = mg.Tensor(mg.zeros(2, dtype=getattr(mg, dtype)))
        assert str(m.dtype).split(".")[-1] == str(t.dtype).split(".")[-1] == dtype


@pytest.mark.parametrize("fn", ["sigmoid", "silu", "softplus"])
def test_sigmoid_family_on_a_0d_tensor(fn):
    # a GPyTorch-style 0-d hyperparameter: softplus(raw_outputscale)
    t = torch.tensor(0.3, requires_grad=True)
    m = mg.tensor(0.3, requires_grad=True)
    f_t = getattr(torch, fn) if fn == "sigmoid" else getattr(torch.nn.functional, fn)
    f_m = getattr(mg, fn) if fn == "sigmoid" else getattr(mg.nn.functional, fn)
    yt, ym = f_t(t), f_m(m)
    yt.backward()
    ym.backward()
    np.testing.assert_allclose(ym.item(), yt.item(), rtol=1e-6)
    np.testing.assert_allclose(m.grad.item(), t.grad.item(), rtol=1e-6)


def test_tensor_made_under_inference_mode_is_an_inference_tensor():
    got = []
    for lib in (torch, mg):
        a = lib.ones(3)
        with lib.inference_mode():
            made = lib.ones(2) * 2
            view_of_normal = a[:2]
            with lib.inference_mode(False):
                normal_inside = lib.ones(2)
            view_of_inference = made[:1]
        with lib.no_grad():
            under_no_grad = lib.ones(1)
        got.append([t.is_inference() for t in (made, view_of_normal, normal_inside,
                                                view_of_inference, made + 1, a, under_no_grad)])  # fmt: skip
    assert got[0] == got[1] == [True, False, False, True, False, False, False]


@pytest.mark.parametrize("inplace", [False, True])
def test_hardswish_gradient_at_the_kinks(inplace):
    # MobileNetV3's activation: PyTorch's gradient is 0 at -3 and 1 at 3
    x = [-4.0, -3.0, -1.0, 0.0, 2.0, 3.0, 4.0]
    t = torch.tensor(x, requires_grad=True)
    m = mg.tensor(x, requires_grad=True)
    yt = torch.nn.functional.hardswish(t * 1, inplace=inplace)
    ym = mg.nn.functional.hardswish(m * 1, inplace=inplace)
    np.testing.assert_allclose(ym.detach().numpy(), yt.detach().numpy(), rtol=1e-6)
    (yt * torch.arange(7.0)).sum().backward()
    (ym * mg.arange(7.0)).sum().backward()
    np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-7)


def _tree_numpy(x):
    if isinstance(x, dict):
        return {k: _tree_numpy(v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(_tree_numpy(v) for v in x)
    return x.detach().numpy()


def _assert_tree_close(a, b):
    assert type(a) is type(b) or (isinstance(a, np.ndarray) and isinstance(b, np.ndarray))
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_tree_close(a[k], b[k])
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            _assert_tree_close(u, v)
    else:
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _linear(lib):
    m = lib.nn.Linear(2, 2)
    with lib.no_grad():
        m.weight.copy_(lib.tensor([[0.5, -1.0], [0.25, 2.0]]))
        m.bias.copy_(lib.tensor([0.1, -0.2]))
    return m, {k: v.detach() for k, v in m.named_parameters()}


@pytest.mark.parametrize("transform", ["jacrev", "jacfwd", "hessian"])
def test_jacobians_over_a_parameter_dict(transform):
    # torch.func tutorials: jacrev / hessian of a loss with respect to a params dict
    out = []
    for lib in (torch, mg):
        model, params = _linear(lib)
        x = lib.tensor([[1.0, 2.0], [3.0, -1.0]])

        def loss(p, model=model, x=x, lib=lib):
            return lib.func.functional_call(model, p, (x,)).tanh().pow(2).sum()

        def outputs(p, model=model, x=x, lib=lib):
            y = lib.func.functional_call(model, p, (x,))
            return y.sin(), {"sum": y.sum()}

        if transform == "hessian":
            out.append(_tree_numpy(lib.func.hessian(loss)(params)))
        else:
            out.append(_tree_numpy(getattr(lib.func, transform)(outputs)(params)))
    _assert_tree_close(out[1], out[0])


def test_jacrev_with_tuple_argnums_and_tree_output():
    out = []
    for lib in (torch, mg):
        a, b = lib.tensor([1.0, 2.0]), lib.tensor([3.0, 4.0, 5.0])

        def f(a, b, lib=lib):
            return {"outer": lib.outer(a, b).sin(), "s": (a**2).sum() * b[0]}

        out.append(_tree_numpy(lib.func.jacrev(f, argnums=(0, 1))(a, b)))
    _assert_tree_close(out[1], out[0])
