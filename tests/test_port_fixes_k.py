"""Differences from PyTorch that the sparse-GCN port script (tests/ports/scripts) led to,
each compared with PyTorch: ``torch.sparse.sum`` over some dims gives a sparse tensor,
sparse tensors multiply by tensors (0-d, dense, sparse), divide, negate, subtract, take
``index_select``, ``abs``/``sqrt``/``pow`` and ``.sum``, and layouts print as PyTorch's
under ``manygrad run``."""

import numpy as np
import pytest
import torch

import manygrad as mg
from manygrad import dtypes as D

pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks")
# duplicates at (2, 0) and (0, 1); one stored entry per column-3 row
IDX = np.array([[0, 2, 1, 2, 0, 1], [1, 0, 3, 0, 1, 1]])
VALS = np.array([1.5, -2.0, 0.5, 3.0, 1.0, -0.25])


def _pair(device, vals=VALS, idx=IDX, size=(3, 4)):
    mv = mg.tensor(vals, device=device, requires_grad=True)
    tv = torch.tensor(vals, requires_grad=True)
    ms = mg.sparse_coo_tensor(mg.tensor(idx, device=device), mv, size)
    ts = torch.sparse_coo_tensor(torch.tensor(idx), tv, size)
    return mv, tv, ms, ts


def _np(t):
    return t.detach().cpu().numpy()


def _check_sparse(ms, ts):
    """Same layout, coalesced state, size, indices and values."""
    assert ms.is_sparse and ts.is_sparse
    assert tuple(ms.shape) == tuple(ts.shape)
    assert ms.is_coalesced() == ts.is_coalesced()
    np.testing.assert_array_equal(_np(ms._indices()), ts._indices().numpy())
    np.testing.assert_allclose(_np(ms._values()), ts._values().detach().numpy(), rtol=1e-12)


def _check_value_grads(mv, tv, mo, to):
    """Backward of a weighted sum of the outputs' dense forms reaches the values alike
    (``to`` may be a dense stand-in where PyTorch's sparse op has no backward)."""
    out_m = mo.to_dense() if mo.is_sparse else mo
    out_t = to.to_dense() if to.is_sparse else to
    w = np.random.default_rng(1).standard_normal(tuple(out_t.shape))
    (out_m * mg.tensor(w, device=mv.device)).sum().backward()
    (out_t * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(_np(mv.grad), tv.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dim", [0, 1, -1, (0, 1)])
def test_sparse_sum_over_dims_matches_torch(device, dim):
    mv, tv, ms, ts = _pair(device)
    mo, to = mg.sparse.sum(ms, dim=dim), torch.sparse.sum(ts, dim=dim)
    assert mo.is_sparse == to.is_sparse
    if to.is_sparse:
        _check_sparse(mo, to)
        np.testing.assert_allclose(_np(mo.to_dense()), to.to_dense().detach().numpy())
    else:
        np.testing.assert_allclose(_np(mo), to.detach().numpy(), rtol=1e-12)
    _check_value_grads(mv, tv, mo, to)


@pytest.mark.parametrize("dim", [0, 1, 2, (0, 2), (0, 1)])
def test_sparse_sum_with_a_dense_dim_matches_torch(device, dim):
    idx = np.array([[0, 2, 0, 1], [1, 1, 0, 1]])
    vals = np.arange(8.0).reshape(4, 2) - 3
    mv, tv, ms, ts = _pair(device, vals, idx, (3, 2, 2))
    mo, to = mg.sparse.sum(ms, dim=dim), torch.sparse.sum(ts, dim=dim)
    assert mo.is_sparse == to.is_sparse
    if to.is_sparse:
        _check_sparse(mo, to)
    else:
        np.testing.assert_allclose(_np(mo), to.detach().numpy(), rtol=1e-12)
    _check_value_grads(mv, tv, mo, to)


def test_tensor_sum_method_on_sparse_matches_torch(device):
    _, _, ms, ts = _pair(device)
    np.testing.assert_allclose(_np(ms.sum()), ts.sum().detach().numpy())
    _check_sparse(ms.coalesce().sum(1), ts.coalesce().sum(1))
    with pytest.raises(IndexError, match="out of range"):
        mg.sparse.sum(ms, dim=2)


@pytest.mark.parametrize(
    "other",
    [np.float64(2.5), np.array([1.0, -2.0, 3.0, 0.5]), np.array([[2.0], [-1.0], [0.5]])],
    ids=["0-d", "row", "column"],
)
def test_sparse_times_a_tensor_matches_torch(device, other):
    mv, tv, ms, ts = _pair(device)
    mo = ms.coalesce() * mg.tensor(other, device=device)
    to = ts.coalesce() * torch.tensor(other)
    _check_sparse(mo, to)
    _check_value_grads(mv, tv, mo, to)
    _check_sparse(ms.mul(mg.tensor(other, device=device)), ts.mul(torch.tensor(other)))


def test_sparse_times_sparse_divide_negate_subtract_match_torch(device):
    mv, tv, ms, ts = _pair(device)
    idx2 = np.array([[0, 2, 1], [1, 0, 2]])
    mask_m = mg.sparse_coo_tensor(mg.tensor(idx2, device=device), mg.ones(3, device=device),
                                  (3, 4))  # fmt: skip
    mask_t = torch.sparse_coo_tensor(torch.tensor(idx2), torch.ones(3, dtype=torch.float64),
                                     (3, 4))  # fmt: skip
    mo, to = ms.coalesce() * mask_m.coalesce() * 2, ts.coalesce() * mask_t.coalesce() * 2
    _check_sparse(mo, to)
    _check_value_grads(mv, tv, mo, to)
    uncoalesced = ms * mask_m
    assert not uncoalesced.is_coalesced()
    np.testing.assert_allclose(_np(uncoalesced.to_dense()), (ts * mask_t).to_dense().detach())
    for fm, ft in [
        (lambda s: s / 4, lambda s: s / 4),
        (lambda s: s.div(mg.tensor(2.0, device=device)), lambda s: s.div(torch.tensor(2.0))),
        (lambda s: -s, lambda s: -s),
        (lambda s: (s - s * 3).coalesce(), lambda s: (s - s * 3).coalesce()),
    ]:
        np.testing.assert_allclose(_np(fm(ms).to_dense()), ft(ts).to_dense().detach().numpy())


@pytest.mark.parametrize("op", ["abs", "sqrt", "pow"])
def test_sparse_entrywise_functions_coalesce_as_torch(device, op):
    vals = np.abs(VALS) if op == "sqrt" else VALS
    mv, tv, ms, ts = _pair(device, vals)
    args = (3,) if op == "pow" else ()
    mo, to = getattr(ms, op)(*args), getattr(ts, op)(*args)
    _check_sparse(mo, to)
    # NOTE: PyTorch's sparse sqrt has no backward: the same op on the coalesced values
    _check_value_grads(mv, tv, mo.values(), getattr(ts.coalesce().values(), op)(*args))


@pytest.mark.parametrize(
    "dim,index", [(0, [2, 0, 2]), (1, [1, 3, 1, 0]), (-1, []), (0, [1])], ids=str
)
def test_sparse_index_select_matches_torch(device, dim, index):
    mv, tv, ms, ts = _pair(device)
    mo = ms.index_select(dim, mg.tensor(index, dtype=mg.int64, device=device))
    to = ts.index_select(dim, torch.tensor(index, dtype=torch.int64))
    _check_sparse(mo, to)
    # NOTE: PyTorch's sparse index_select has no backward: the dense one stands in
    _check_value_grads(mv, tv, mo, ts.to_dense().index_select(dim, torch.tensor(index).long()))


def test_one_entry_is_coalesced_as_in_torch():
    for idx in ([[1], [2]], [[1, 1], [2, 2]]):
        ms = mg.sparse_coo_tensor(idx, [1.0] * len(idx[0]), (3, 4))
        ts = torch.sparse_coo_tensor(idx, [1.0] * len(idx[0]), (3, 4))
        assert ms.is_coalesced() == ts.is_coalesced()


def test_sparse_index_select_on_a_dense_dim_matches_torch():
    idx = np.array([[0, 2, 0]])
    vals = np.arange(9.0).reshape(3, 3)
    _, _, ms, ts = _pair("cpu", vals, idx, (3, 3))
    mo = ms.index_select(1, mg.tensor([2, 0]))
    to = ts.index_select(1, torch.tensor([2, 0]))
    np.testing.assert_allclose(_np(mo.to_dense()), to.to_dense().detach().numpy())


def test_layouts_print_as_pytorch_under_the_runner(monkeypatch):
    monkeypatch.setattr(D, "display_module", "torch")
    assert repr(mg.strided) == repr(torch.strided)
    assert str(mg.sparse_coo) == str(torch.sparse_coo)
    assert repr(mg.zeros(2).layout) == repr(torch.zeros(2).layout)
    monkeypatch.setattr(D, "display_module", "manygrad")
    assert repr(mg.sparse_coo) == "manygrad.sparse_coo"


def test_sparse_pow_refuses_a_non_positive_exponent():
    _, _, ms, _ = _pair("cpu")
    with pytest.raises(ValueError, match="exponent must be a positive"):
        ms.pow(0)


def _functional_call_with_extra_names(lib):
    net = lib.nn.Sequential(lib.nn.Linear(2, 2))
    with lib.no_grad():
        net[0].weight.copy_(lib.tensor([[1.0, -2.0], [0.5, 3.0]]))
        net[0].bias.copy_(lib.tensor([0.25, -1.0]))
    w = lib.tensor([[2.0, 1.0], [-1.0, 0.5]], requires_grad=True)
    given = {"0.weight": w, "bogus": lib.ones(1), "0.extra": lib.zeros(3)}
    out = lib.func.functional_call(net, given, (lib.tensor([[1.0, 2.0]]),))
    out.pow(2).sum().backward()
    assert not hasattr(net, "bogus") and not hasattr(net[0], "extra")
    with pytest.raises(RuntimeError):
        lib.func.functional_call(net, given, (lib.tensor([[1.0, 2.0]]),), strict=True)
    return out.detach().numpy(), w.grad.numpy(), net[0].weight.detach().numpy()


def test_functional_call_sets_unknown_names_for_the_call_only_as_torch():
    for got, want in zip(_functional_call_with_extra_names(mg),
                         _functional_call_with_extra_names(torch)):  # fmt: skip
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize(
    "sa,sb,dims",
    [((2, 1), (3, 2), ([1], [0])), ((2, 3, 4), (1, 3, 5), ([1, 2], [1, 0])), ((4, 3), (3, 2), 1)],
    ids=str,
)
def test_tensordot_broadcasts_a_contracted_dim_of_size_one_as_torch(device, sa, sb, dims):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    ma = mg.tensor(a, device=device, requires_grad=True)
    mb = mg.tensor(b, device=device, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    mo, to = mg.tensordot(ma, mb, dims=dims), torch.tensordot(ta, tb, dims=dims)
    np.testing.assert_allclose(_np(mo), to.detach().numpy(), rtol=1e-12)
    (mo.sin()).sum().backward()
    (to.sin()).sum().backward()
    np.testing.assert_allclose(_np(ma.grad), ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(_np(mb.grad), tb.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    "sa,sb,dims,match",
    [((2, 3), (3, 2), ([1, 0], [0]), "same length"), ((2, 3), (4, 2), ([1], [0]), "need to match")],
)
def test_tensordot_refuses_mismatched_dims_as_torch(sa, sb, dims, match):
    with pytest.raises(RuntimeError, match=match):
        torch.tensordot(torch.ones(sa), torch.ones(sb), dims=dims)
    with pytest.raises(RuntimeError, match=match):
        mg.tensordot(mg.ones(sa), mg.ones(sb), dims=dims)
