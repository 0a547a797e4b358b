"""The smaller top-level functions against PyTorch (values and gradients)."""

import numpy as np
import pytest

import manygrad as mg
from opcheck import check_op

torch = pytest.importorskip("torch")
ROWS = [
    # NOTE: copysign is piecewise linear: PyTorch's second derivative is rounding noise
    ("copysign", [(3, 4), np.array([1.0, -2.0, -0.0, 3.0])], {"double": False}),
    ("copysign", [(3, 4)], {"other": -1.0, "double": False}),
    ("fmax", [(3, 4), (3, 4)], {}),
    ("fmin", [(3, 4), (4,)], {}),
    ("logit", [(3, 4)], {"domain": (0.1, 0.9)}),
    ("logit", [(3, 4)], {"eps": 0.2, "domain": (0.05, 0.95)}),
    ("rad2deg", [(3,)], {}),
    ("deg2rad", [(3,)], {}),
    ("ldexp", [(3, 4), np.array([1, 2, 0, 3])], {}),
    ("polygamma", [1, (3, 4)], {"domain": (0.2, 4.0)}),
    ("polygamma", [2, (3, 4)], {"domain": (0.3, 4.0)}),
    ("polygamma", [3, (3, 4)], {"domain": (0.5, 3.0)}),
    ("mvlgamma", [(3, 4)], {"p": 3, "domain": (1.5, 4.0)}),
    ("rsub", [(3, 4), (3, 4)], {"alpha": 2.0}),
    ("trapezoid", [(3, 5)], {}),
    ("trapezoid", [(3, 5), (5,)], {}),
    ("trapezoid", [(4, 3)], {"dx": 0.5, "dim": 0}),
    ("cumulative_trapezoid", [(3, 5)], {}),
    ("cumulative_trapezoid", [(3, 5), (3, 5)], {"dim": 1}),
    ("cov", [(3, 6)], {}),
    ("cov", [(3, 6)], {"correction": 0}),
    ("corrcoef", [(3, 6)], {}),
    ("vander", [(4,)], {"grad": False}),
    ("vander", [(3,)], {"N": 5, "increasing": True, "grad": False}),
    ("renorm", [(3, 4)], {"p": 2, "dim": 0, "maxnorm": 1.0}),
    ("renorm", [(3, 4)], {"p": 1, "dim": 1, "maxnorm": 0.5}),
    ("select", [(3, 4)], {"dim": 1, "index": 2}),
    (lambda x: mg.tensor_split(x, 3), [(7, 2)], {"torch_fn": lambda x: torch.tensor_split(x, 3)}),
    (
        lambda x: mg.tensor_split(x, [1, 5], 1),
        [(2, 7)],
        {"torch_fn": lambda x: torch.tensor_split(x, [1, 5], 1)},
    ),
    (lambda x: mg.hsplit(x, 3), [(2, 6)], {"torch_fn": lambda x: torch.hsplit(x, 3)}),
    (lambda x: mg.vsplit(x, [1, 3]), [(4, 3)], {"torch_fn": lambda x: torch.vsplit(x, [1, 3])}),
    (lambda x: mg.dsplit(x, 2), [(2, 2, 4)], {"torch_fn": lambda x: torch.dsplit(x, 2)}),
    ("ravel", [(2, 3)], {}),
    ("adjoint", [(2, 3, 4)], {}),
    ("narrow_copy", [(4, 3)], {"dim": 0, "start": 1, "length": 2}),
    ("select_scatter", [(3, 4), (4,)], {"dim": 0, "index": 1}),
    ("slice_scatter", [(6, 4), (2, 4)], {"start": 1, "end": 5, "step": 2}),
    ("diagonal_scatter", [(3, 4), (3,)], {"offset": 1}),
    ("diagonal_scatter", [(2, 3, 3), (2, 3)], {"dim1": 1, "dim2": 2}),
    (
        lambda x, v: mg.index_put(
            x, (mg.tensor([0, 2], device=x.device), mg.tensor([1, 1], device=x.device)), v
        ),
        [(4, 3), (2,)],
        {
            "torch_fn": lambda x, v: torch.index_put(
                x, (torch.tensor([0, 2]), torch.tensor([1, 1])), v
            )
        },
    ),
    (
        lambda x, v: mg.index_put(x, (mg.tensor([0, 0], device=x.device),), v, accumulate=True),
        [(4, 3), (2, 3)],
        {"torch_fn": lambda x, v: torch.index_put(x, (torch.tensor([0, 0]),), v, accumulate=True)},
    ),
    ("matrix_exp", [(3, 3)], {"domain": (-0.3, 0.3)}),
    ("matrix_exp", [(2, 3, 3)], {"domain": (-1.5, 1.5)}),
    ("broadcast_tensors", [(3, 1), (4,)], {}),
]


@pytest.mark.parametrize(
    "name,specs,opts",
    ROWS,
    ids=[f"{getattr(r[0], '__name__', r[0])}-{i}" for i, r in enumerate(ROWS)],
)
def test_misc(name, specs, opts):
    check_op(name, specs, **opts)


def _same(a, b):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.numpy().dtype == b.numpy().dtype


def test_non_differentiable_helpers():
    a = np.array([-0.0, 1.0, -2.0, np.inf, -np.inf, np.nan])
    for name in ("signbit", "isposinf", "isneginf", "isreal", "sgn"):
        _same(getattr(mg, name)(mg.tensor(a)), getattr(torch, name)(torch.tensor(a)))
    i, j = np.array([12, 18, -8]), np.array([8, 12, 6])
    _same(mg.gcd(mg.tensor(i), mg.tensor(j)), torch.gcd(torch.tensor(i), torch.tensor(j)))
    _same(mg.lcm(mg.tensor(i), mg.tensor(j)), torch.lcm(torch.tensor(i), torch.tensor(j)))
    m, e = mg.frexp(mg.tensor([8.0, 0.3, -5.0]))
    tm, te = torch.frexp(torch.tensor([8.0, 0.3, -5.0]))
    _same(m, tm)
    _same(e, te)
    h, edges = mg.histogram(mg.tensor([0.1, 0.5, 0.5, 2.0]), 4, range=(0.0, 2.0))
    th, tedges = torch.histogram(torch.tensor([0.1, 0.5, 0.5, 2.0]), 4, range=(0.0, 2.0))
    _same(h, th)
    _same(edges, tedges)
    a2 = np.array([1.0, np.nan, 3.0])
    b2 = np.array([np.nan, np.nan, 1.0])
    _same(mg.fmax(mg.tensor(a2), mg.tensor(b2)), torch.fmax(torch.tensor(a2), torch.tensor(b2)))


def test_dtype_queries_and_shapes():
    assert mg.promote_types(mg.int32, mg.float32) == mg.float32
    assert mg.result_type(mg.tensor([1]), 1.0) == mg.float32
    assert mg.can_cast(mg.int64, mg.float32) and not mg.can_cast(mg.float32, mg.int64)
    assert mg.broadcast_shapes((3, 1), (4,), 1) == (3, 4)
    assert mg.is_nonzero(mg.tensor([2])) and not mg.is_nonzero(mg.tensor(0.0))
    assert mg.is_same_size(mg.ones(2, 3), mg.zeros(2, 3))
    assert mg.is_floating_point(mg.ones(1)) and not mg.is_complex(mg.ones(1))
    with pytest.raises(mg.ManygradError, match="equal parts"):
        mg.hsplit(mg.ones(2, 5), 2)
    with pytest.raises(mg.ManygradError, match="broadcast"):
        mg.broadcast_shapes((2,), (3,))
    q, r = mg.qr(mg.eye(3) * 2)
    np.testing.assert_allclose((q @ r).numpy(), 2 * np.eye(3), atol=1e-6)
