"""Sorting and order statistics against PyTorch (values with gradients, indices exact)."""

import numpy as np
import pytest

import manygrad as mg
from opcheck import check_op

torch = pytest.importorskip("torch")
INTS = np.array([[3, 1, 2, 1], [0, 5, 5, 2]])
ROWS = [
    ("sort", [(3, 5)], {}),
    ("sort", [(3, 5)], {"dim": 0, "descending": True}),
    ("argsort", [(3, 5)], {"dim": 1}),
    ("argsort", [(4, 3)], {"dim": 0, "descending": True}),
    ("topk", [(3, 6)], {"k": 2}),
    ("topk", [(6, 3)], {"k": 3, "dim": 0, "largest": False}),
    ("kthvalue", [(3, 5)], {"k": 2}),
    ("kthvalue", [(3, 5)], {"k": 3, "dim": 0, "keepdim": True}),
    ("median", [(3, 5)], {}),
    ("median", [(3, 5)], {"dim": 1}),
    ("median", [(4, 5)], {"dim": 0, "keepdim": True}),
    ("nanmedian", [(3, 5)], {"dim": 1}),
    ("quantile", [(3, 5)], {"q": 0.3}),
    ("quantile", [(3, 5)], {"q": 0.75, "dim": 1, "keepdim": True}),
    ("quantile", [(4, 5)], {"q": 0.4, "dim": 0, "interpolation": "midpoint"}),
    ("quantile", [(4, 5)], {"q": 0.4, "dim": 1, "interpolation": "nearest"}),
    ("quantile", [(4, 5)], {"q": 0.4, "dim": 1, "interpolation": "lower"}),
    ("msort", [(4, 3)], {}),
]


@pytest.mark.parametrize("name,specs,opts", ROWS, ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)])
def test_sorting(name, specs, opts):
    check_op(name, specs, **opts)


def test_quantile_with_tensor_q():
    x = np.random.default_rng(0).standard_normal((3, 6))
    for kw in ({"dim": 1}, {"dim": 0, "keepdim": True}, {}):
        got = mg.quantile(mg.tensor(x), mg.tensor([0.1, 0.5, 0.9], dtype=mg.float64), **kw)
        want = torch.quantile(
            torch.tensor(x), torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64), **kw
        )
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)


def _same(a, b):
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert u.numpy().dtype == v.numpy().dtype, (u.dtype, v.dtype)
        np.testing.assert_array_equal(u.numpy(), v.numpy())


@pytest.mark.parametrize("device", ["cpu", "fakegpu"])
def test_ties_nan_and_integers(device):
    def both(name, a, *args, **kw):
        got = getattr(mg, name)(mg.tensor(a, device=device), *args, **kw)
        want = getattr(torch, name)(torch.tensor(a), *args, **kw)
        if isinstance(got, tuple):
            got = tuple(g.cpu() for g in got)
        else:
            got = got.cpu()
        _same(got, tuple(want) if isinstance(want, tuple) else want)

    f = np.array([[2.0, np.nan, 1.0, 2.0], [1.0, 1.0, 0.0, 3.0]])
    both("sort", f, stable=True)
    both("sort", f, descending=True, stable=True)
    both("argsort", INTS, stable=True)
    both("median", f, dim=1)
    both("nanmedian", f, dim=1)
    both("median", f)
    both("mode", INTS, dim=1)
    both("mode", np.array([[1.0, 2.0, 2.0, 1.0, 3.0]]))
    both("unique", INTS)
    both("unique", INTS, return_inverse=True, return_counts=True)
    both("unique", INTS, dim=1, return_inverse=True)
    both("unique_consecutive", np.array([1, 1, 2, 2, 2, 1]), return_inverse=True,
         return_counts=True)  # fmt: skip
    both("nonzero", INTS)
    both("argwhere", INTS)
    both("count_nonzero", INTS, dim=1)
    both("bincount", np.array([0, 3, 3, 1]), minlength=6)
    both("histc", np.array([0.1, 0.5, 0.9, 1.0, 3.0, -1.0]), bins=4, min=0.0, max=1.0)
    both("histc", np.array([0.1, 0.5, 0.9, 1.0], np.float32), bins=3)
    got = mg.nonzero(mg.tensor(INTS, device=device), as_tuple=True)
    _same(tuple(g.cpu() for g in got), torch.nonzero(torch.tensor(INTS), as_tuple=True))


def test_searchsorted_and_bucketize():
    seq = np.array([1.0, 2.0, 2.0, 4.0])
    v = np.array([[0.5, 2.0], [4.0, 5.0]])
    for right in (False, True):
        _same(mg.searchsorted(mg.tensor(seq), mg.tensor(v), right=right),
              torch.searchsorted(torch.tensor(seq), torch.tensor(v), right=right))  # fmt: skip
        _same(mg.bucketize(mg.tensor(v), mg.tensor(seq), right=right),
              torch.bucketize(torch.tensor(v), torch.tensor(seq), right=right))  # fmt: skip
    seq2 = np.array([[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]])
    _same(mg.searchsorted(mg.tensor(seq2), mg.tensor(v), side="right"),
          torch.searchsorted(torch.tensor(seq2), torch.tensor(v), side="right"))  # fmt: skip
    out = mg.searchsorted(mg.tensor(seq), mg.tensor(v), out_int32=True)
    assert out.dtype == mg.int32


def test_bincount_weights_dtype():
    w = np.array([0.5, 1.0, 2.0], np.float32)
    _same(mg.bincount(mg.tensor([0, 2, 2]), mg.tensor(w)),
          torch.bincount(torch.tensor([0, 2, 2]), torch.tensor(w)))  # fmt: skip


def test_topk_bad_k():
    with pytest.raises(mg.ManygradError, match="topk"):
        mg.topk(mg.randn(3), 5)


@pytest.mark.parametrize("device", ["cpu", "fakegpu"])
def test_batched_searchsorted_with_ties(device):
    rng = np.random.default_rng(0)
    for _ in range(20):
        seq = np.sort(rng.integers(0, 6, (3, 2, 7)).astype(float), -1)
        v = rng.integers(-1, 8, (3, 2, 5)).astype(float)
        for right in (False, True):
            got = mg.searchsorted(mg.tensor(seq, device=device), mg.tensor(v, device=device),
                                  right=right)  # fmt: skip
            want = torch.searchsorted(torch.tensor(seq), torch.tensor(v), right=right)
            np.testing.assert_array_equal(got.cpu().numpy(), want.numpy())


NAN = float("nan")
QUANTILE_NAN_CASES = [
    ([1.0, NAN, 3.0], 0.5, None),
    ([1.0, NAN, 3.0], 0.0, None),
    ([[1.0, NAN, 3.0], [NAN] * 3, [4.0, 2.0, 8.0]], 0.5, 1),
    ([[1.0, NAN, 3.0, 5.0], [2.0, 9.0, 1.0, 0.0]], [0.1, 0.5, 0.9], 1),
    ([[1.0, 2.0], [NAN, 4.0]], 0.3, 0),
]


@pytest.mark.parametrize("fn", ["quantile", "nanquantile"])
@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint", "nearest"])
@pytest.mark.parametrize("case", range(len(QUANTILE_NAN_CASES)))
def test_quantile_with_nan_matches_torch(fn, interpolation, case, device):
    data, q, dim = QUANTILE_NAN_CASES[case]
    res = []
    for lib in (torch, mg):
        kw = {"device": device} if lib is mg else {}
        x = lib.tensor(data, requires_grad=True, **kw)
        qq = lib.tensor(q, **kw) if isinstance(q, list) else q
        y = getattr(lib, fn)(x, qq, dim=dim, keepdim=dim is not None, interpolation=interpolation)
        y.nan_to_num().sum().backward()
        res.append((y.detach().cpu().numpy(), x.grad.cpu().numpy()))
    (y_ref, g_ref), (y, g) = res
    assert y.shape == y_ref.shape
    np.testing.assert_allclose(y, y_ref, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(g, g_ref, rtol=1e-6)
