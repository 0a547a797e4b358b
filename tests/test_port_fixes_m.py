"""Differences from PyTorch that the fx pruning, MoCo, top-2 MoE and rotation-prediction port
scripts (tests/ports/scripts) and their mixed-precision variants led to, each compared with
PyTorch: 16-bit float reductions (sum, mean, var, std, cumsum, logsumexp and the bias
gradient of linear) accumulate in float32 and round once, and bad class values for
``one_hot``, negative values for ``bincount`` and a wrong number of ``rot90`` dims raise
PyTorch's RuntimeError."""

import numpy as np
import pytest
import torch

import manygrad as mg

HALF = ["bfloat16", "float16"]
REDUCTIONS = {
    "sum0": lambda x: x.sum(0),
    "sum1_keepdim": lambda x: x.sum(1, keepdim=True),
    "sum_all": lambda x: x.sum(),
    "sum_dtype": lambda x: x.sum(0, dtype=x.dtype),
    "mean0": lambda x: x.mean(0),
    "mean_all": lambda x: x.mean(),
    "var0": lambda x: x.var(0),
    "var1_biased": lambda x: x.var(1, unbiased=False),
    "std_all": lambda x: x.std(),
    "std0_keepdim": lambda x: x.std(0, keepdim=True),
    "cumsum0": lambda x: x.cumsum(0),
    "logsumexp0": lambda x: x.logsumexp(0),
}


def _data(seed=0, shape=(96, 6)):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32) * 3


def _run(lib, fn, dtype, device="cpu", grad=True):
    kw = {"device": device} if lib is mg else {}
    x = lib.tensor(_data(), **kw).to(getattr(lib, dtype))
    if grad:
        x.requires_grad_()
    y = fn(x)
    out = [y]
    if grad:
        g = lib.tensor(_data(1, tuple(y.shape)) if y.ndim else 1.5, **kw).to(y.dtype)
        y.backward(g)
        out.append(x.grad)
    return [(str(t.dtype).split(".")[-1], t.detach().float().cpu().numpy()) for t in out]


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_half_precision_reductions_round_once_as_pytorch(name, dtype, device):
    fn = REDUCTIONS[name]
    for (gdt, got), (wdt, want) in zip(_run(mg, fn, dtype, device), _run(torch, fn, dtype)):
        assert gdt == wdt
        np.testing.assert_array_equal(got, want, err_msg=f"{name} {dtype}")


@pytest.mark.parametrize("dtype", HALF)
def test_linear_bias_gradient_in_half_precision(dtype, device):
    rng = np.random.default_rng(3)
    x, w, b, g = (rng.normal(size=s).astype(np.float32) for s in [(64, 5), (3, 5), (3,), (64, 3)])
    grads = []
    for lib in (mg, torch):
        kw = {"device": device} if lib is mg else {}
        dt = getattr(lib, dtype)
        ts = [lib.tensor(a, **kw).to(dt).requires_grad_() for a in (x, w, b)]
        lib.nn.functional.linear(*ts).backward(lib.tensor(g, **kw).to(dt))
        grads.append([t.grad.float().cpu().numpy() for t in ts])
    for got, want in zip(*grads):
        np.testing.assert_array_equal(got, want)


def test_autocast_linear_bias_gradient_matches_pytorch():
    rng = np.random.default_rng(4)
    x, w, b = (rng.normal(size=s).astype(np.float32) for s in [(48, 8), (4, 8), (4,)])
    grads = []
    for lib in (mg, torch):
        lin = lib.nn.Linear(8, 4)
        with lib.no_grad():
            lin.weight.copy_(lib.tensor(w))
            lin.bias.copy_(lib.tensor(b))
        with lib.autocast("cpu", dtype=lib.bfloat16):
            loss = lin(lib.tensor(x)).float().pow(2).sum()
        loss.backward()
        grads.append((lin.weight.grad.numpy(), lin.bias.grad.numpy()))
    for got, want in zip(*grads):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("values,num_classes", [([0, 3, 1], 3), ([0, -1, 2], 3), ([[2, -3]], -1)])
def test_one_hot_refuses_out_of_range_classes_on_cpu(values, num_classes):
    with pytest.raises(RuntimeError) as want:
        torch.nn.functional.one_hot(torch.tensor(values), num_classes)
    with pytest.raises(RuntimeError, match="one_hot") as got:
        mg.nn.functional.one_hot(mg.tensor(values), num_classes)
    word = "negative" if "negative" in str(want.value) else "smaller"
    assert word in str(got.value)


def test_one_hot_in_range_still_matches():
    idx = [[0, 2], [1, 1]]
    want = torch.nn.functional.one_hot(torch.tensor(idx), 4).numpy()
    np.testing.assert_array_equal(mg.nn.functional.one_hot(mg.tensor(idx), 4).numpy(), want)
    empty = mg.nn.functional.one_hot(mg.tensor([], dtype=mg.long), 3)
    assert tuple(empty.shape) == tuple(
        torch.nn.functional.one_hot(torch.tensor([]).long(), 3).shape
    )


def test_bincount_refuses_negative_values():
    with pytest.raises(RuntimeError):
        torch.bincount(torch.tensor([0, -2, 1]))
    with pytest.raises(RuntimeError, match="bincount"):
        mg.bincount(mg.tensor([0, -2, 1]))
    np.testing.assert_array_equal(
        mg.bincount(mg.tensor([0, 2, 2]), minlength=4).numpy(),
        torch.bincount(torch.tensor([0, 2, 2]), minlength=4).numpy(),
    )


@pytest.mark.parametrize("dims", [(1,), (0, 1, 2), ()])
def test_rot90_refuses_other_than_two_dims(dims):
    with pytest.raises(RuntimeError):
        torch.rot90(torch.zeros(2, 3, 4), 1, dims)
    with pytest.raises(RuntimeError, match="rot90"):
        mg.rot90(mg.zeros(2, 3, 4), 1, dims)


SCALAR_OPS = {
    "mul": lambda x, s: x * s,
    "rmul": lambda x, s: s * x,
    "div": lambda x, s: x / s,
    "div_method": lambda x, s: x.div(s),
}


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("scalar", [1 / 96, 0.3, 1e-3, 7.77, 3])
@pytest.mark.parametrize("op", ["mul", "rmul", "div", "div_method"])
def test_half_precision_product_with_a_python_number(op, scalar, dtype, device):
    """A scalar factor or divisor of a 16-bit tensor is taken at float32 precision and the
    result rounded once (NumPy would round the scalar to 16 bits first); gradients too."""
    fn = SCALAR_OPS[op]
    got = _run(mg, lambda x: fn(x, scalar), dtype, device)
    want = _run(torch, lambda x: fn(x, scalar), dtype)
    for (gdt, g), (wdt, w) in zip(got, want):
        assert gdt == wdt
        np.testing.assert_array_equal(g, w)


def test_half_precision_scalar_product_exports_to_onnx():
    ort = pytest.importorskip("onnxruntime")
    import io

    class Head(mg.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = mg.nn.Linear(4, 3)

        def forward(self, x):
            return 0.5 * self.fc(x) / 3.0

    model = Head().half()
    x = np.random.default_rng(5).normal(size=(2, 4)).astype(np.float16)
    buf = io.BytesIO()
    mg.onnx.export(model, (mg.tensor(x),), buf)
    sess = ort.InferenceSession(buf.getvalue())
    (got,) = sess.run(None, {sess.get_inputs()[0].name: x})
    np.testing.assert_allclose(got, model(mg.tensor(x)).detach().numpy(), rtol=1e-3, atol=1e-3)
