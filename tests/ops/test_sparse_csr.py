"""Sparse CSR tensors and the sparse functions (softmax, log_softmax, spdiags, sampled_addmm,
invariant checks) against PyTorch, on every device."""

import numpy as np
import pytest

import manygrad as mg
from devicematrix import DEVICES

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:Sparse", "ignore:.*beta state")
DENSE = np.array([[0.0, 2.0, 0.0, -1.0], [1.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
CROW, COL, VALS = [0, 1, 3, 5], [2, 0, 3, 1, 2], np.array([1.5, -2.0, 0.5, 3.0, 1.0])


def _np(t):
    return t.detach().cpu().numpy()


@pytest.mark.parametrize("device", DEVICES)
def test_dense_to_csr_and_back(device):
    m = mg.tensor(DENSE, device=device).to_sparse_csr()
    t = torch.tensor(DENSE).to_sparse_csr()
    assert m.layout == mg.sparse_csr and m.is_sparse_csr and not m.is_sparse
    for got, want in ((m.crow_indices(), t.crow_indices()), (m.col_indices(), t.col_indices()),
                      (m.values(), t.values())):  # fmt: skip
        np.testing.assert_array_equal(_np(got), want.numpy())
        assert got.dtype.name == str(want.dtype).replace("torch.", "")
    assert m._nnz() == t._nnz() and tuple(m.shape) == tuple(t.shape)
    np.testing.assert_array_equal(_np(m.to_dense()), DENSE)
    coo = m.to_sparse_coo()
    assert coo.is_coalesced() == t.to_sparse_coo().is_coalesced()
    np.testing.assert_array_equal(_np(coo.indices()), t.to_sparse_coo().indices().numpy())
    back = coo.to_sparse_csr()
    np.testing.assert_array_equal(_np(back.crow_indices()), t.crow_indices().numpy())
    via_layout = mg.tensor(DENSE, device=device).to_sparse(layout=mg.sparse_csr)
    np.testing.assert_array_equal(_np(via_layout.col_indices()), t.col_indices().numpy())
    if device == "cpu":  # PyTorch's CPU layout of the text
        assert repr(m).replace("manygrad", "torch") == repr(t)


@pytest.mark.parametrize("device", DEVICES)
def test_csr_products_and_gradients(device):
    rng = np.random.default_rng(0)
    d = rng.standard_normal((4, 3))
    mv = mg.tensor(VALS, device=device, requires_grad=True)
    md = mg.tensor(d, device=device, requires_grad=True)
    tv = torch.tensor(VALS, requires_grad=True)
    td = torch.tensor(d, requires_grad=True)
    ms = mg.sparse_csr_tensor(mg.tensor(CROW), mg.tensor(COL), mv, (3, 4))
    ts = torch.sparse_csr_tensor(torch.tensor(CROW), torch.tensor(COL), tv, (3, 4))
    mo, to = ms @ md, ts @ td
    np.testing.assert_allclose(_np(mo), to.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(_np(mg.sparse.mm(ms, md)), to.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(_np(mg.mm(ms, md)), to.detach().numpy(), rtol=1e-12)
    u = rng.standard_normal(tuple(mo.shape))
    (mo * mg.tensor(u, device=device)).sum().backward()
    (to * torch.tensor(u)).sum().backward()
    np.testing.assert_allclose(_np(md.grad), td.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(_np(mv.grad), tv.grad.numpy(), rtol=1e-12)
    vec = rng.standard_normal(4)
    want = torch.mv(ts.detach(), torch.tensor(vec)).numpy()
    np.testing.assert_allclose(_np(mg.mv(ms, mg.tensor(vec, device=device))), want)
    np.testing.assert_allclose(_np(ms @ mg.tensor(vec, device=device)), want)
    left = rng.standard_normal((2, 3))
    np.testing.assert_allclose(_np(mg.tensor(left, device=device) @ ms),
                               left @ ts.detach().to_dense().numpy(), rtol=1e-12)  # fmt: skip
    np.testing.assert_allclose(_np((ms * 2).values()), (ts * 2).values().detach().numpy())


def test_csr_constructor_defaults_and_errors():
    m = mg.sparse_csr_tensor(CROW, COL, VALS.tolist())
    t = torch.sparse_csr_tensor(CROW, COL, VALS.tolist())
    assert tuple(m.shape) == tuple(t.shape) and m.dtype.name == "float32" == str(t.dtype)[6:]
    with pytest.raises(mg.errors.ShapeError, match="rows \\+ 1"):
        mg.sparse_csr_tensor(CROW, COL, VALS, (2, 4))
    with pytest.raises(mg.errors.ShapeError, match="must be equal to nnz"):
        mg.sparse_csr_tensor(CROW, COL, VALS[:3], (3, 4))
    assert m.t().layout == mg.sparse_csc  # the transpose of CSR is CSC, as in PyTorch


@pytest.mark.parametrize(
    "crow,col",
    [([0, 2, 1, 1], [0, 1]), ([0, 1, 2, 2], [0, 7]), ([0, 2, 2, 2], [1, 0])],
    ids=["crow-end", "col-range", "unsorted"],
)
def test_csr_invariants_as_pytorch(crow, col):
    vals = [1.0] * len(col)
    with pytest.raises(RuntimeError) as want:
        torch.sparse_csr_tensor(torch.tensor(crow), torch.tensor(col), torch.tensor(vals),
                                (3, 3), check_invariants=True)  # fmt: skip
    with pytest.raises(RuntimeError) as got:
        mg.sparse_csr_tensor(crow, col, vals, (3, 3), check_invariants=True)
    assert str(got.value) == str(want.value)
    with mg.sparse.check_sparse_tensor_invariants():
        assert mg.sparse.check_sparse_tensor_invariants.is_enabled()
        with pytest.raises(RuntimeError):
            mg.sparse_csr_tensor(crow, col, vals, (3, 3))
    assert not mg.sparse.check_sparse_tensor_invariants.is_enabled()
    mg.sparse_csr_tensor(crow, col, vals, (3, 3))  # unchecked by default, as in PyTorch


def test_coo_invariants_as_pytorch():
    with pytest.raises(RuntimeError) as want:
        torch.sparse_coo_tensor(torch.tensor([[0, 5]]), torch.tensor([1.0, 2.0]), (3,),
                                check_invariants=True)  # fmt: skip
    with pytest.raises(RuntimeError) as got:
        mg.sparse_coo_tensor([[0, 5]], [1.0, 2.0], (3,), check_invariants=True)
    assert str(got.value) == str(want.value)

    @mg.sparse.check_sparse_tensor_invariants()
    def build():
        return mg.sparse_coo_tensor([[0, 5]], [1.0, 2.0], (3,))

    with pytest.raises(RuntimeError, match="found index 5"):
        build()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_sparse_softmax(device, log, dim):
    rng = np.random.default_rng(1)
    idx = np.array([[0, 2, 1, 2, 0, 3], [1, 0, 3, 2, 1, 3]])  # a duplicate at (0, 1)
    vals = rng.standard_normal(6)
    mv = mg.tensor(vals, device=device, requires_grad=True)
    tv = torch.tensor(vals, requires_grad=True)
    ms = mg.sparse_coo_tensor(mg.tensor(idx, device=device), mv, (4, 4))
    ts = torch.sparse_coo_tensor(torch.tensor(idx), tv, (4, 4))
    mf, tf = (mg.sparse.log_softmax, torch.sparse.log_softmax) if log else (
        mg.sparse.softmax, torch.sparse.softmax)  # fmt: skip
    # NOTE: PyTorch's backward with a negative dim is wrong (its row gradients do not sum to
    # zero, as a softmax's must): the reference takes the dim counted from the front
    mo, to = mf(ms, dim), tf(ts, dim % 2)
    assert mo.is_coalesced() and to.is_coalesced()
    np.testing.assert_array_equal(_np(mo.indices()), to.indices().numpy())
    np.testing.assert_allclose(_np(mo.values()), to.values().detach().numpy(), rtol=1e-12)
    w = rng.standard_normal(mo._nnz())
    (mo.values() * mg.tensor(w, device=device)).sum().backward()
    (to.values() * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(_np(mv.grad), tv.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("device", DEVICES)
def test_sparse_softmax_dense_dim(device):
    rng = np.random.default_rng(2)
    vals = rng.standard_normal((3, 2))
    idx = np.array([[0, 2, 1]])
    ms = mg.sparse_coo_tensor(mg.tensor(idx, device=device), mg.tensor(vals, device=device),
                              (4, 2))  # fmt: skip
    ts = torch.sparse_coo_tensor(torch.tensor(idx), torch.tensor(vals), (4, 2))
    for dim in (0, 1):
        np.testing.assert_allclose(_np(mg.sparse.softmax(ms, dim).to_dense()),
                                   torch.sparse.softmax(ts, dim).to_dense().numpy(),
                                   rtol=1e-12)  # fmt: skip
    with pytest.raises(NotImplementedError, match="COO"):
        mg.sparse.softmax(mg.tensor(DENSE).to_sparse_csr(), 1)


@pytest.mark.parametrize("layout", [None, "sparse_csr"])
@pytest.mark.parametrize("shape,offsets", [((3, 3), [0, -1]), ((2, 4), [1, -1]),
                                           ((4, 3), [0, 2, -2])])  # fmt: skip
def test_spdiags(layout, shape, offsets):
    diags = np.arange(1.0, 1.0 + 3 * len(offsets)).reshape(len(offsets), 3)
    lay_m = None if layout is None else mg.sparse_csr
    lay_t = None if layout is None else torch.sparse_csr
    m = mg.sparse.spdiags(mg.tensor(diags), mg.tensor(offsets), shape, layout=lay_m)
    t = torch.sparse.spdiags(torch.tensor(diags), torch.tensor(offsets), shape, layout=lay_t)
    assert m.layout.replace("manygrad", "torch") == str(t.layout).replace("torch.", "")
    np.testing.assert_array_equal(_np(m.to_dense()), t.to_dense().numpy())
    if layout is None:
        np.testing.assert_array_equal(_np(m._indices()), t._indices().numpy())


def test_spdiags_drops_columns_past_the_matrix():
    # NOTE: PyTorch keeps diagonal entries whose column lies past a narrower matrix (an
    # index out of range: (2, 2) in a 4x2 matrix); manygrad drops them, as the documented
    # rule (entry j of a diagonal in column j) says
    diags = np.arange(1.0, 10.0).reshape(3, 3)
    m = mg.sparse.spdiags(mg.tensor(diags), mg.tensor([0, 2, -2]), (4, 2))
    want = np.zeros((4, 2))
    for k, off in enumerate([0, 2, -2]):
        for j in range(2):
            if 0 <= j - off < 4:
                want[j - off, j] = diags[k, j]
    np.testing.assert_array_equal(_np(m.to_dense()), want)
    assert int(m._indices()[1].max()) < 2


@pytest.mark.parametrize("device", DEVICES)
def test_sampled_addmm(device):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((3, 5)), rng.standard_normal((5, 4))
    ma = mg.tensor(a, device=device, requires_grad=True)
    ta = torch.tensor(a, requires_grad=True)
    ms = mg.sparse_csr_tensor(CROW, COL, VALS, (3, 4), dtype=mg.float64, device=device)
    ts = torch.sparse_csr_tensor(torch.tensor(CROW), torch.tensor(COL),
                                 torch.tensor(VALS, dtype=torch.float64), (3, 4))  # fmt: skip
    mo = mg.sparse.sampled_addmm(ms, ma, mg.tensor(b, device=device), beta=0.5, alpha=2.0)
    to = torch.sparse.sampled_addmm(ts, ta, torch.tensor(b), beta=0.5, alpha=2.0)
    assert mo.layout == mg.sparse_csr
    np.testing.assert_array_equal(_np(mo.col_indices()), to.col_indices().numpy())
    np.testing.assert_allclose(_np(mo.values()), to.values().detach().numpy(), rtol=1e-12)
    mo.values().sum().backward()
    to.values().sum().backward()
    np.testing.assert_allclose(_np(ma.grad), ta.grad.numpy(), rtol=1e-12)
    with pytest.raises(NotImplementedError, match="CSR"):
        mg.sparse.sampled_addmm(ms.to_sparse_coo(), ma, mg.tensor(b, device=device))
