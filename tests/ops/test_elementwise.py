"""Elementwise ops: one row per case against PyTorch and finite differences."""

import numpy as np
import pytest

import manygrad as mg
from opcheck import check_op

POS = (0.2, 2.0)

ROWS = [
    # name, input specs, options
    ("add", [(3, 4), (3, 4)], {}),
    ("add", [(3, 1), (1, 4)], {}),  # broadcasting both ways
    ("add", [(2, 3, 4), (4,)], {}),
    ("add", [(3, 4), 2.5], {}),
    ("add", [(0, 4), (4,)], {}),  # empty
    ("add", [(), ()], {}),  # 0-d
    ("sub", [(3, 4), (4,)], {}),
    ("sub", [1.5, (3,)], {}),
    ("mul", [(5, 1), (1, 6)], {}),
    ("mul", [(), (2, 3)], {}),
    ("div", [(3, 4), (3, 4)], {"domain": POS}),
    ("div", [2.0, (4,)], {"domain": POS}),
    ("pow", [(3, 4), 3], {}),
    ("pow", [(3, 4), (3, 4)], {"domain": POS}),
    ("pow", [(4,), 0.5], {"domain": POS}),
    ("remainder", [(3, 4), (3, 4)], {"domain": POS}),
    ("fmod", [(3, 4), (3, 4)], {"domain": POS}),
    ("floor_divide", [(3, 4), (3, 4)], {"domain": POS, "grad": False}),  # as PyTorch: no grad
    ("floor_divide", [(2, 3), 0.7], {"grad": False}),
    ("neg", [(3, 4)], {}),
    ("abs", [(3, 4)], {}),
    ("exp", [(3, 4)], {}),
    ("exp", [(0,)], {}),
    ("exp", [()], {}),
    ("log", [(3, 4)], {"domain": POS}),
    ("log1p", [(3, 4)], {"domain": POS}),
    ("expm1", [(3, 4)], {}),
    ("sqrt", [(3, 4)], {"domain": POS}),
    ("rsqrt", [(3, 4)], {"domain": POS}),
    ("sin", [(3, 4)], {}),
    ("cos", [(3, 4)], {}),
    ("tanh", [(3, 4)], {}),
    ("sigmoid", [(3, 4)], {"domain": (-30, 30)}),
    ("relu", [(3, 4)], {}),
    ("leaky_relu", [(3, 4)], {"negative_slope": 0.1}),
    ("elu", [(3, 4)], {"alpha": 0.7}),
    ("gelu", [(3, 4)], {}),
    ("gelu", [(3, 4)], {"approximate": "tanh"}),
    ("silu", [(3, 4)], {}),
    ("softplus", [(3, 4)], {"domain": (-5, 5)}),
    ("softplus", [(3, 4)], {"beta": 2.0, "threshold": 3.0, "domain": (-3, 3)}),
    ("square", [(3, 4)], {}),
    ("reciprocal", [(3, 4)], {"domain": POS}),
    ("maximum", [(3, 4), (4,)], {}),
    ("minimum", [(3, 4), (3, 1)], {}),
    ("clamp", [(3, 4)], {"min": -0.5, "max": 0.5}),
    ("clamp", [(3, 4)], {"min": 0.1}),
    ("clamp", [(3, 4), (3, 4), (4,)], {"torch_fn": lambda x, lo, hi: x.clamp(lo, hi)}),
]


@pytest.mark.parametrize("name,specs,opts", ROWS, ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)])
def test_elementwise(name, specs, opts):
    opts = dict(opts)
    if name == "clamp" and len(specs) == 3:
        fn = opts.pop("torch_fn")
        check_op(lambda x, lo, hi: mg.clamp(x, lo, hi), specs, torch_fn=fn, **opts)
    else:
        check_op(name, specs, **opts)


def test_where_and_ties():
    cond = np.array([[True, False, True, False]] * 3)
    check_op("where", [cond, (3, 4), (4,)])
    # ties in maximum share the gradient evenly, as PyTorch does
    check_op("maximum", [np.ones((3,)), np.ones((3,))], grad=False)
    a = mg.tensor([1.0, 2.0], requires_grad=True)
    b = mg.tensor([1.0, 3.0], requires_grad=True)
    mg.maximum(a, b).sum().backward()
    assert a.grad.tolist() == [0.5, 0.0] and b.grad.tolist() == [0.5, 1.0]


@pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge"])
def test_comparisons(op, device):
    torch = pytest.importorskip("torch")
    a = np.array([[1.0, 2.0, 3.0]])
    b = np.array([[2.0], [2.0]])
    got = getattr(mg, op)(mg.tensor(a, device=device), mg.tensor(b, device=device))
    want = getattr(torch, op)(torch.tensor(a), torch.tensor(b))
    assert got.dtype is mg.bool and got.device == mg.device(device)
    np.testing.assert_array_equal(got.cpu().numpy(), want.numpy())
    # with a Python scalar, and through the operators
    assert (mg.tensor([1, 2, 3]) >= 2).tolist() == [False, True, True]


def test_operators_match_functions(device):
    x = mg.tensor([[1.0, -2.0], [3.0, 4.0]], device=device)
    y = mg.tensor([2.0, 0.5], device=device)
    for got, want in [
        (x + y, mg.add(x, y)), (x - y, mg.sub(x, y)), (x * y, mg.mul(x, y)),
        (x / y, mg.div(x, y)), (x ** 2, mg.pow(x, 2)), (-x, mg.neg(x)), (abs(x), mg.abs(x)),
        (x // y, mg.floor_divide(x, y)), (x % y, mg.remainder(x, y)),
        (2 - x, mg.sub(2, x)), (1 / y, mg.div(1, y)),
    ]:  # fmt: skip
        np.testing.assert_allclose(got.cpu().numpy(), want.cpu().numpy())


def test_floor_divide_and_int_math():
    a = mg.tensor([7, -7, 9])
    b = mg.tensor([2, 2, 4])
    assert (a // b).tolist() == [3, -4, 2]
    assert (a % b).tolist() == [1, 1, 1]
    # true division of integers gives the default float, as in PyTorch
    q = a / b
    assert q.dtype is mg.float32 and q.tolist() == [3.5, -3.5, 2.25]
    assert mg.div(a, b, rounding_mode="trunc").tolist() == [3, -3, 2]
    assert mg.div(a, b, rounding_mode="floor").tolist() == [3, -4, 2]
    # math functions of integer tensors give floats
    assert mg.exp(mg.tensor([0, 1])).dtype is mg.float32


def test_sigmoid_and_softplus_do_not_overflow():
    x = mg.tensor([-1000.0, 0.0, 1000.0], requires_grad=True)
    y = mg.sigmoid(x)
    assert np.all(np.isfinite(y.detach().numpy()))
    y.sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    assert np.isfinite(mg.softplus(mg.tensor([1000.0])).item())


def test_bad_operands():
    with pytest.raises(TypeError, match="unsupported operand"):
        mg.tensor([1.0]) + "a"
    with pytest.raises(ValueError, match="approximate"):
        mg.gelu(mg.tensor([1.0]), approximate="fast")


def test_normal_cdf_float32_is_accurate_everywhere():
    from math import erf, sqrt

    from manygrad import backend

    x = np.linspace(-12, 12, 4001).astype(np.float32)
    exact = np.array([0.5 * (1 + erf(v / sqrt(2))) for v in x.astype(np.float64)])
    got = backend.normal_cdf(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, exact, rtol=0, atol=3e-7)
