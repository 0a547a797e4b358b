"""PyTorch behaviours that ported programs (tests/ports/scripts) rely on, compared with PyTorch."""

import textwrap

import numpy as np
import pytest
import torch as real_torch

import manygrad as mg
from manygrad import compat


def _run(tmp_path, body: str) -> dict:
    p = tmp_path / "script.py"
    p.write_text(textwrap.dedent(body))
    return compat.run_script(str(p))


def test_torch_autograd_gradcheck_is_the_function(tmp_path):
    """torch.autograd.gradcheck is the function (it shadows its submodule), as in PyTorch."""
    got = _run(
        tmp_path,
        """
        import torch
        from torch.autograd.gradcheck import gradcheck as from_module
        x = torch.tensor([0.5, 1.0, -2.0], dtype=torch.float64, requires_grad=True)
        result = (torch.autograd.gradcheck(torch.tanh, (x,)), torch.autograd.gradcheck is from_module)
        """,
    )["result"]
    x = real_torch.tensor([0.5, 1.0, -2.0], dtype=real_torch.float64, requires_grad=True)
    assert got == (real_torch.autograd.gradcheck(real_torch.tanh, (x,)), True)


@pytest.mark.parametrize(
    "op,kwargs",
    [
        ("var", dict(dim=1)),
        ("var", dict(dim=(0, 2), correction=0)),
        ("var", dict()),
        ("std", dict(dim=2, keepdim=True)),
        ("std", dict(correction=2)),
    ],
)
def test_float32_var_std_are_correctly_rounded_as_pytorch(op, kwargs):
    """PyTorch's CPU var/std of float32 accumulate in float64: results equal bit for bit."""
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((6, 9, 33)) * 37.0 + 11.0).astype(np.float32)
    want = getattr(real_torch.from_numpy(a), op)(**kwargs).numpy()
    got = getattr(mg.tensor(a), op)(**kwargs).numpy()
    np.testing.assert_array_equal(got, want)
    # gradients are unchanged: 2 (x - mean) / (n - correction), in float32
    xt = real_torch.from_numpy(a).requires_grad_()
    xm = mg.tensor(a, requires_grad=True)
    getattr(xt, op)(**kwargs).sum().backward()
    getattr(xm, op)(**kwargs).sum().backward()
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "dt1,dt2", [("int64", "int64"), ("int32", "bool"), ("float32", "int64"), ("int64", "float64")]
)
def test_addcdiv_refuses_two_integer_operands_as_pytorch(dt1, dt2):
    """addcdiv of two integer (or bool) tensors is an error in PyTorch; any float one divides."""
    a, b = np.array([3, 1, 2]), np.array([2, 1, 1])
    inp = np.array([1.0, -1.0, 0.5], dtype=np.float32)
    args_t = [real_torch.tensor(v).to(getattr(real_torch, d)) for v, d in ((a, dt1), (b, dt2))]
    args_m = [mg.tensor(v).to(getattr(mg, d)) for v, d in ((a, dt1), (b, dt2))]
    try:
        want = real_torch.addcdiv(real_torch.tensor(inp), *args_t, value=0.5)
    except RuntimeError:
        with pytest.raises(RuntimeError, match="integer division with addcdiv"):
            mg.addcdiv(mg.tensor(inp), *args_m, value=0.5)
        with pytest.raises(RuntimeError, match="integer division with addcdiv"):
            mg.tensor(inp).addcdiv_(*args_m)
        return
    got = mg.addcdiv(mg.tensor(inp), *args_m, value=0.5)
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    inplace = mg.tensor(inp)
    inplace.addcdiv_(*args_m, value=0.5)
    np.testing.assert_allclose(inplace.numpy(), want.numpy(), rtol=1e-6)


def test_soft_margin_loss_refuses_a_target_that_requires_grad_as_pytorch():
    """PyTorch's soft_margin_loss has no target derivative: a target requiring grad is an
    error while grad mode is on, and fine under no_grad or detached."""
    x = np.array([0.3, -1.2, 2.0], dtype=np.float32)
    y = np.array([1.0, -1.0, -1.0], dtype=np.float32)
    for lib in (real_torch, mg):
        inp, tgt = lib.tensor(x, requires_grad=True), lib.tensor(y, requires_grad=True)
        with pytest.raises(
            RuntimeError, match="not differentiable with respect to argument 'target'"
        ):
            lib.nn.functional.soft_margin_loss(inp, tgt)
    tt = real_torch.tensor(y, requires_grad=True)
    tm = mg.tensor(y, requires_grad=True)
    with real_torch.no_grad():
        want = real_torch.nn.functional.soft_margin_loss(real_torch.tensor(x), tt)
    with mg.no_grad():
        got = mg.nn.functional.soft_margin_loss(mg.tensor(x), tm)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    xt, xm = real_torch.tensor(x, requires_grad=True), mg.tensor(x, requires_grad=True)
    real_torch.nn.functional.soft_margin_loss(xt, tt.detach()).backward()
    mg.nn.functional.soft_margin_loss(xm, tm.detach()).backward()
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("op,dim", [("cumsum", 1), ("cumsum", 0), ("cumprod", 1), ("cumprod", 0)])
def test_float32_scans_accumulate_in_float64_as_pytorch_cpu(op, dim):
    """PyTorch's CPU cumsum/cumprod carry float32 running values in double: the outputs (and
    cumsum's gradient, itself a reversed cumsum) equal PyTorch's bit for bit."""
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((40, 300)) * 3.0 + 1.0).astype(np.float32)
    if op == "cumprod":
        a = a * 0.01 + 1.0
    g = rng.standard_normal((40, 300)).astype(np.float32)
    xt = real_torch.from_numpy(a).requires_grad_()
    xm = mg.tensor(a, requires_grad=True)
    yt, ym = getattr(xt, op)(dim), getattr(xm, op)(dim)
    np.testing.assert_array_equal(ym.detach().numpy(), yt.detach().numpy())
    yt.backward(real_torch.from_numpy(g))
    ym.backward(mg.tensor(g))
    if op == "cumsum":
        np.testing.assert_array_equal(xm.grad.numpy(), xt.grad.numpy())
    else:
        np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=2e-6, atol=1e-6)


def test_empty_tensor_strides_are_row_major_as_pytorch():
    """New empty tensors have PyTorch's row-major strides (each dim counting as at least
    1), not NumPy's zeros; empty views keep their own."""
    import torch

    for shape in [(0, 3), (2, 0, 3), (0,), (3, 0), (0, 0, 2)]:
        assert mg.zeros(*shape).stride() == torch.zeros(*shape).stride()
        assert mg.empty(*shape).stride(0) == torch.empty(*shape).stride(0)
    assert mg.zeros(3, 4)[:, :0].stride() == torch.zeros(3, 4)[:, :0].stride()
