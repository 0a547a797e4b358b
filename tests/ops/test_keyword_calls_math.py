"""Elementwise maths, special functions and small helpers called with PyTorch's keyword
names only (``torch.add(input=x, other=y, alpha=2)``), against the same call in PyTorch.

The signatures are checked for every function in ``tests/test_torch_keywords.py``; here the
keyword calls are run, so that a renamed argument that the body still reads by its old name
(or a wrapper that takes the first argument positionally) fails."""

import numpy as np
import pytest

import manygrad as mg
from opcheck import keyword_call_both

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(0)
X = _RNG.uniform(-2.0, 2.0, (3, 4))
Y = _RNG.uniform(0.5, 2.0, (3, 4))  # positive: a safe divisor and base
P = _RNG.uniform(0.05, 0.95, (3, 4))  # probabilities
SPECIAL_VALUES = np.array([np.nan, np.inf, -np.inf, 0.5, -1.0])


def _t(lib, a):
    return lib.tensor(a)


# (name of the namespace, function, arrays by keyword, other keywords)
CASES = [
    # unary maths, the ops the _unary factory builds and explicit ones
    ("", "exp", dict(input=X), {}),
    ("", "sqrt", dict(input=Y), {}),
    ("", "abs", dict(input=X), {}),
    ("", "neg", dict(input=X), {}),
    ("", "sigmoid", dict(input=X), {}),
    ("", "atanh", dict(input=P), {}),
    ("", "square", dict(input=X), {}),
    ("", "sign", dict(input=X), {}),
    ("", "floor", dict(input=X), {}),
    ("", "round", dict(input=X), dict(decimals=1)),
    ("", "frac", dict(input=X), {}),
    ("", "deg2rad", dict(input=X), {}),
    ("", "sgn", dict(input=X), {}),
    ("", "clone", dict(input=X), {}),
    ("", "negative", dict(input=X), {}),
    ("special", "erf", dict(input=X), {}),
    ("special", "expit", dict(input=X), {}),
    ("special", "gammaln", dict(input=Y), {}),
    # two operands, alpha, rounding, exponents
    ("", "add", dict(input=X, other=Y), dict(alpha=2)),
    ("", "sub", dict(input=X, other=Y), dict(alpha=-0.5)),
    ("", "subtract", dict(input=X, other=Y), dict(alpha=3)),
    ("", "mul", dict(input=X, other=Y), {}),
    ("", "div", dict(input=X, other=Y), dict(rounding_mode="floor")),
    ("", "true_divide", dict(input=X, other=Y), {}),
    ("", "remainder", dict(input=X, other=Y), {}),
    ("", "fmod", dict(input=X, other=Y), {}),
    ("", "maximum", dict(input=X, other=Y), {}),
    ("", "minimum", dict(input=X, other=Y), {}),
    ("", "pow", dict(input=Y), dict(exponent=2.5)),
    ("", "pow", dict(input=Y, exponent=X), {}),
    ("", "eq", dict(input=X, other=X), {}),
    ("", "gt", dict(input=X, other=Y), {}),
    ("", "logical_xor", dict(input=X, other=Y), {}),
    ("", "logical_not", dict(input=X), {}),
    ("", "isnan", dict(input=SPECIAL_VALUES), {}),
    # bounds and replacements
    ("", "clamp", dict(input=X), dict(min=-1.0, max=0.5)),
    ("", "clamp", dict(input=X, min=Y * -1, max=Y), {}),
    ("", "clip", dict(input=X), dict(max=0.25)),
    ("", "clamp_min", dict(input=X), dict(min=0.0)),
    ("", "clamp_max", dict(input=X), dict(max=0.0)),
    ("", "nan_to_num", dict(input=SPECIAL_VALUES), dict(nan=7.0, posinf=9.0, neginf=-9.0)),
    ("", "isposinf", dict(input=SPECIAL_VALUES), {}),
    ("", "isneginf", dict(input=SPECIAL_VALUES), {}),
    # activations with nn.functional's names
    ("nn.functional", "relu", dict(input=X), dict(inplace=False)),
    ("nn.functional", "silu", dict(input=X), dict(inplace=False)),
    ("nn.functional", "elu", dict(input=X), dict(alpha=0.5, inplace=False)),
    ("nn.functional", "leaky_relu", dict(input=X), dict(negative_slope=0.2, inplace=False)),
    ("nn.functional", "gelu", dict(input=X), dict(approximate="tanh")),
    ("nn.functional", "softplus", dict(input=X), dict(beta=2.0, threshold=1.0)),
    # torch.special, with its x / n and input / other names
    ("special", "chebyshev_polynomial_t", dict(x=X / 2), dict(n=3)),
    ("special", "hermite_polynomial_h", dict(x=X), dict(n=4)),
    ("special", "laguerre_polynomial_l", dict(x=Y), dict(n=2)),
    ("special", "shifted_chebyshev_polynomial_u", dict(x=P), dict(n=3)),
    ("special", "legendre_polynomial_p", dict(x=X / 2, n=np.array([0.0, 1.0, 2.0, 5.0])), {}),
    ("special", "airy_ai", dict(x=X), {}),
    ("special", "scaled_modified_bessel_k0", dict(x=Y), {}),
    ("special", "spherical_bessel_j0", dict(x=X), {}),
    ("special", "i0e", dict(input=X), {}),
    ("special", "ndtr", dict(input=X), {}),
    ("special", "ndtri", dict(input=P), {}),
    ("special", "log_ndtr", dict(input=X), {}),
    ("special", "entr", dict(input=P), {}),
    ("special", "xlog1py", dict(input=X, other=Y), {}),
    ("special", "round", dict(input=X), dict(decimals=2)),
    # small helpers
    ("", "matrix_exp", dict(input=X[:3, :3] / 4), {}),
    ("linalg", "matrix_exp", dict(input=X[:3, :3] / 4), {}),
    ("", "narrow_copy", dict(input=X), dict(dim=1, start=1, length=2)),
    ("", "ravel", dict(input=X), {}),
    ("", "adjoint", dict(input=X), {}),
    ("", "isin", dict(elements=X.round(), test_elements=np.array([0.0, 1.0])), {}),
    ("", "isin", dict(elements=X.round()), dict(test_element=1.0)),
]


@pytest.mark.parametrize(
    "space, name, arrays, kw",
    CASES,
    ids=[f"{s or 'torch'}.{n}-{'-'.join(a)}" for s, n, a, _ in CASES],
)
def test_keyword_call_matches_pytorch(space, name, arrays, kw):
    got, want = keyword_call_both(space, name, arrays, kw)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "name, kw",
    [
        ("tensor_split", dict(sections=3, dim=1)),
        ("tensor_split", dict(indices=[1, 3], dim=1)),
        ("tensor_split", dict(indices_or_sections=2)),
        ("hsplit", dict(indices=[1])),
        ("hsplit", dict(sections=2)),
        ("vsplit", dict(sections=3)),
    ],
)
def test_split_points_by_keyword(name, kw):
    got = getattr(mg, name)(input=mg.tensor(X), **kw)
    if "indices_or_sections" in kw:  # NOTE: PyTorch's documented name, refused by its binding
        want = getattr(torch, name)(torch.tensor(X), kw["indices_or_sections"])
    else:
        want = getattr(torch, name)(input=torch.tensor(X), **kw)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w.numpy())


def test_tensor_split_by_tensor_keyword():
    got = mg.tensor_split(mg.tensor(X), tensor_indices_or_sections=mg.tensor([1, 2]), dim=1)
    want = torch.tensor_split(
        torch.tensor(X), tensor_indices_or_sections=torch.tensor([1, 2]), dim=1
    )
    assert [g.numpy().tolist() for g in got] == [w.numpy().tolist() for w in want]


@pytest.mark.parametrize(
    "name, kw",
    [
        ("tensor_split", {}),
        ("tensor_split", dict(sections=2, indices=[1])),
        ("hsplit", dict(sections=2, indices=[1])),
        ("isin", {}),
        ("isin", dict(test_elements=1.0, test_element=1.0)),
    ],
)
def test_split_points_and_test_elements_given_once(name, kw):
    first = "elements" if name == "isin" else "input"
    with pytest.raises(TypeError, match="give"):
        getattr(mg, name)(**{first: mg.tensor(X)}, **kw)


def test_queries_by_keyword():
    a, b = mg.tensor(X), mg.tensor(Y[:, :2])
    ta, tb = torch.tensor(X), torch.tensor(Y[:, :2])
    assert mg.is_same_size(input=a, other=b) is torch.is_same_size(input=ta, other=tb) is False
    assert mg.equal(input=a, other=a) is torch.equal(input=ta, other=ta) is True
    assert mg.is_floating_point(input=a) is torch.is_floating_point(input=ta) is True
    assert mg.is_complex(input=a) is torch.is_complex(input=ta) is False
    assert mg.is_nonzero(input=mg.tensor([2.0])) is torch.is_nonzero(input=torch.tensor([2.0]))
    got = mg.result_type(tensor=mg.tensor([1, 2]), other=1.5)
    assert got.name == str(torch.result_type(tensor=torch.tensor([1, 2]), other=1.5)).split(".")[1]
    # NOTE: PyTorch's typename takes obj positionally only; manygrad takes the name too
    assert mg.typename(obj=mg.tensor([1.0])) == torch.typename(torch.tensor([1.0]))


def test_methods_take_the_same_keywords():
    x, y = mg.tensor(X), mg.tensor(Y)
    tx, ty = torch.tensor(X), torch.tensor(Y)
    pairs = [
        (x.add(other=y, alpha=2), tx.add(other=ty, alpha=2)),
        (y.pow(exponent=3), ty.pow(exponent=3)),
        (x.clamp(min=-0.5), tx.clamp(min=-0.5)),
        (x.maximum(other=y), tx.maximum(other=ty)),
        (x.ge(other=y), tx.ge(other=ty)),
    ]
    for got, want in pairs:
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)


def test_keyword_calls_keep_gradients():
    x = mg.tensor(X, requires_grad=True)
    tx = torch.tensor(X, requires_grad=True)
    mg.pow(input=mg.add(input=x, other=x, alpha=0.5), exponent=3).sum().backward()
    torch.pow(input=torch.add(input=tx, other=tx, alpha=0.5), exponent=3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_positional_calls_are_unchanged():
    x, y = mg.tensor(X), mg.tensor(Y)
    tx, ty = torch.tensor(X), torch.tensor(Y)
    pairs = [
        (mg.add(x, y, 2), torch.add(tx, ty, alpha=2)),
        (mg.pow(y, 2), torch.pow(ty, 2)),
        (mg.pow(2, x), torch.pow(2, tx)),
        (mg.clamp(x, -1, 1), torch.clamp(tx, -1, 1)),
        (mg.special.chebyshev_polynomial_t(x, 3), torch.special.chebyshev_polynomial_t(tx, 3)),
        (mg.nn.functional.leaky_relu(x, 0.1), torch.nn.functional.leaky_relu(tx, 0.1)),
    ]
    for got, want in pairs:
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    assert len(mg.tensor_split(x, 2, 1)) == 2 and len(mg.hsplit(x, [1, 3])) == 3
