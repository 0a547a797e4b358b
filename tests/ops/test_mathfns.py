"""Rounding, trig, special and two-operand maths: one row per case against PyTorch."""

import numpy as np
import pytest

import manygrad as mg
from opcheck import check_op

P = {"domain": (0.2, 3.0)}
U = {"domain": (-0.9, 0.9)}
ROWS = [
    ("floor", [(3, 4)], {}),
    ("ceil", [(3, 4)], {}),
    ("trunc", [(3, 4)], {}),
    ("frac", [(3, 4)], {}),
    ("round", [(3, 4)], {}),
    ("round", [(3, 4)], {"decimals": 2}),
    ("sign", [(3, 4)], {}),
    ("sgn", [(3, 4)], {}),
    ("tan", [(3, 4)], {"domain": (-1.2, 1.2)}),
    ("asin", [(3, 4)], U),
    ("acos", [(3, 4)], U),
    ("atan", [(3, 4)], {}),
    ("sinh", [(3, 4)], {}),
    ("cosh", [(3, 4)], {}),
    ("asinh", [(3, 4)], {}),
    ("acosh", [(3, 4)], {"domain": (1.2, 3.0)}),
    ("atanh", [(3, 4)], U),
    ("log2", [(3, 4)], P),
    ("log10", [(3, 4)], P),
    ("exp2", [(3, 4)], {}),
    ("sinc", [(3, 4)], {}),
    ("erf", [(3, 4)], {}),
    ("erfc", [(3, 4)], {}),
    ("erfinv", [(3, 4)], U),
    ("lgamma", [(3, 4)], {"domain": (0.1, 6.0)}),
    ("lgamma", [(3, 4)], {"domain": (-2.9, -2.1)}),
    ("digamma", [(3, 4)], {"domain": (0.1, 6.0)}),
    ("digamma", [(3, 4)], {"domain": (-0.9, -0.1)}),
    ("atan2", [(3, 4), (3, 4)], {}),
    ("hypot", [(3, 4), (4,)], P),
    ("logaddexp", [(3, 4), (3, 4)], {}),
    ("logaddexp2", [(3, 4), (3, 4)], {}),
    ("xlogy", [(3, 4), (3, 4)], P),
    ("lerp", [(3, 4), (3, 4)], {"weight": 0.3}),
    ("lerp", [(3, 4), (3, 4), (3, 4)], {}),
    ("addcmul", [(3, 4), (3, 4), (3, 4)], {"value": 0.5}),
    ("addcdiv", [(3, 4), (3, 4), (3, 4)], {"value": 2.0, "domain": (0.5, 2.0)}),
    ("clamp_min", [(3, 4)], {"min": 0.1}),
    ("clamp_max", [(3, 4)], {"max": 0.1}),
    ("nan_to_num", [(3, 4)], {}),
]


@pytest.mark.parametrize("name,specs,opts", ROWS, ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)])
def test_mathfns(name, specs, opts):
    check_op(name, specs, **opts)


def test_nan_to_num_and_isclose_and_heaviside():
    torch = pytest.importorskip("torch")
    a = np.array([np.nan, np.inf, -np.inf, 1.5], np.float32)
    for kw in ({}, {"nan": 2.0, "posinf": 9.0, "neginf": -9.0}):
        np.testing.assert_array_equal(
            mg.nan_to_num(mg.tensor(a), **kw).numpy(), torch.nan_to_num(torch.tensor(a), **kw)
        )
    b = np.array([np.nan, np.inf, -np.inf, 1.5 + 1e-6], np.float32)
    for kw in ({}, {"equal_nan": True}, {"rtol": 0.0, "atol": 0.0}):
        got = mg.isclose(mg.tensor(a), mg.tensor(b), **kw).numpy()
        np.testing.assert_array_equal(got, torch.isclose(torch.tensor(a), torch.tensor(b), **kw))
    x, v = np.array([-1.0, 0.0, 2.0]), np.array([0.5, 0.5, 0.5])
    np.testing.assert_array_equal(
        mg.heaviside(mg.tensor(x), mg.tensor(v)).numpy(),
        torch.heaviside(torch.tensor(x), torch.tensor(v)),
    )


def test_rounding_keeps_integers_and_ties_to_even():
    i = mg.tensor([1, -2, 3])
    for fn in (mg.floor, mg.ceil, mg.trunc, mg.round):
        out = fn(i)
        assert out.dtype == mg.int64 and out.tolist() == [1, -2, 3]
    assert mg.round(mg.tensor([0.5, 1.5, 2.5, -0.5])).tolist() == [0.0, 2.0, 2.0, -0.0]


def test_bitwise_ops_match_torch():
    torch = pytest.importorskip("torch")
    a, b = np.array([5, 3, -8]), np.array([3, 6, 2])
    for name in ("bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift",
                 "bitwise_right_shift"):  # fmt: skip
        got = getattr(mg, name)(mg.tensor(a), mg.tensor(b)).numpy()
        np.testing.assert_array_equal(got, getattr(torch, name)(torch.tensor(a), torch.tensor(b)))
    np.testing.assert_array_equal(mg.bitwise_not(mg.tensor(a)).numpy(), ~a)
    with pytest.raises(TypeError, match="floating"):
        mg.bitwise_and(mg.tensor([1.0]), mg.tensor([1.0]))


def test_integer_inputs_give_float_results():
    out = mg.tan(mg.tensor([0, 1]))
    assert out.dtype == mg.float32
