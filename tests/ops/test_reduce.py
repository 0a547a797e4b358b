"""Reductions: one row per case against PyTorch and finite differences."""

import numpy as np
import pytest

import manygrad as mg
from opcheck import check_op

ROWS = [
    ("sum", [(3, 4)], {}),
    ("sum", [(3, 4)], {"dim": 1}),
    ("sum", [(2, 3, 4)], {"dim": (0, 2), "keepdim": True}),
    ("sum", [(0, 3)], {"dim": 0}),
    ("sum", [()], {}),
    ("mean", [(3, 4)], {}),
    ("mean", [(2, 3, 4)], {"dim": -1, "keepdim": True}),
    ("mean", [(2, 3, 4)], {"dim": (0, 1)}),
    ("var", [(3, 5)], {"dim": 1}),
    ("var", [(3, 5)], {"dim": 0, "correction": 0, "keepdim": True}),
    ("var", [(4, 5)], {}),
    ("std", [(3, 5)], {"dim": 1}),
    ("std", [(3, 5)], {"unbiased": False}),
    ("amax", [(3, 5)], {"dim": 1}),
    ("amin", [(3, 5)], {"dim": (0, 1), "keepdim": True}),
    ("max", [(3, 5)], {}),
    ("min", [(3, 5)], {}),
    ("max", [(3, 5)], {"dim": 1}),
    ("min", [(3, 5)], {"dim": 0, "keepdim": True}),
    ("prod", [(3, 4)], {"dim": 1}),
    ("prod", [(5,)], {}),
    ("logsumexp", [(3, 5)], {"dim": 1}),
    ("logsumexp", [(3, 5)], {"dim": (0, 1), "keepdim": True}),
    ("cumsum", [(3, 5)], {"dim": 1}),
    ("cumsum", [(3, 5)], {"dim": 0}),
    ("norm", [(3, 5)], {}),
    ("norm", [(3, 5)], {"dim": 1}),
]


@pytest.mark.parametrize("name,specs,opts", ROWS, ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)])
def test_reduce(name, specs, opts):
    check_op(name, specs, **opts)


def test_max_ties_and_zero_prod():
    # amax shares the gradient among ties; max(dim) gives it to the chosen index
    x = mg.tensor([[1.0, 3.0, 3.0]], requires_grad=True)
    mg.amax(x, dim=1).sum().backward()
    assert x.grad.tolist() == [[0.0, 0.5, 0.5]]
    # prod's gradient is exact with zeros present (no division)
    check_op("prod", [np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 1.0]])], dim=1, grad=False)
    x = mg.tensor([[2.0, 0.0, 3.0]], requires_grad=True)
    x.prod(dim=1).sum().backward()
    assert x.grad.tolist() == [[0.0, 6.0, 0.0]]


@pytest.mark.parametrize("fn", ["argmax", "argmin"])
def test_argmax(fn, device):
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(0).standard_normal((4, 6))
    for kw in [{}, {"dim": 1}, {"dim": 0, "keepdim": True}]:
        got = getattr(mg, fn)(mg.tensor(a, device=device), **kw)
        want = getattr(torch, fn)(torch.tensor(a), **kw)
        assert got.dtype is mg.int64 and tuple(got.shape) == tuple(want.shape)
        np.testing.assert_array_equal(got.cpu().numpy(), want.numpy())


def test_max_dim_returns_values_and_indices(device):
    x = mg.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.5]], device=device)
    values, indices = x.max(dim=1)
    assert values.tolist() == [5.0, 7.5] and indices.tolist() == [1, 2]
    assert x.max().item() == 7.5


def test_int_sum_and_all_any():
    assert mg.tensor([1, 2, 3], dtype=mg.int32).sum().dtype is mg.int64
    assert mg.tensor([True, True, False]).sum().item() == 2
    assert mg.tensor([True, False]).any().item() is True
    assert mg.tensor([[True, False]]).all(dim=1).tolist() == [False]


def test_bad_dims():
    with pytest.raises(ValueError, match=r"sum: dim 2 is out of range .*\(3, 4\)"):
        mg.randn(3, 4).sum(dim=2)
    with pytest.raises(TypeError, match="mean: needs a floating point"):
        mg.tensor([1, 2]).mean()
    with pytest.raises(ValueError, match="empty"):
        mg.zeros(0).max()


LARGE = [  # 64k values and more on the CPU: sums as matrix-vector products (trailing_sum)
    ((64, 32, 32), None, False),  # everything, in rows of 4096
    ((64, 32, 32), None, True),
    ((64, 32, 32), (1, 2), False),  # trailing axes, rows of 1024
    ((256, 256), -1, True),
    ((2, 256, 256), (0, 1, 2), False),
]


@pytest.mark.parametrize("shape,dim,keepdim", LARGE)
@pytest.mark.parametrize("name", ["sum", "mean"])
def test_large_sums_through_blas(name, shape, dim, keepdim):
    axes = None if dim is None else tuple(d % len(shape) for d in np.atleast_1d(dim))
    a = np.zeros(shape, np.float32)
    assert mg.ops._common.trailing_sum(a, axes, keepdim) is not None
    kw = {} if dim is None and not keepdim else {"dim": dim, "keepdim": keepdim}
    if dim is None and keepdim:
        kw["dim"] = tuple(range(len(shape)))
    check_op(name, [shape], fd=False, **kw)


def test_large_sums_elsewhere_take_numpy():
    f = mg.ops._common.trailing_sum
    assert f(np.zeros((64, 32, 32), np.float32), (0,), False) is None  # a leading axis
    assert f(np.zeros((64, 32, 32), np.float32)[:, ::2], None, False) is None  # strided
    assert f(np.zeros((2, 40000), np.float32), (1,), False) is None  # rows over 4096
    assert f(np.zeros((10, 10), np.float32), None, False) is None  # small
    assert f(np.zeros((64, 32, 32), np.int32), None, False) is None  # integers
