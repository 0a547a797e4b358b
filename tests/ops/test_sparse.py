"""Sparse COO tensors and sparse.mm against PyTorch: values, coalescing, gradients to the
dense operand and to the values, on every device."""

import numpy as np
import pytest

import manygrad as mg
from devicematrix import DEVICES

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks")
IDX = np.array([[0, 2, 1, 2, 0], [1, 0, 3, 0, 1]])  # duplicates at (2, 0) and (0, 1)
VALS = np.array([1.5, -2.0, 0.5, 3.0, 1.0])


@pytest.mark.parametrize("device", DEVICES)
def test_to_dense_and_coalesce(device):
    s = mg.sparse_coo_tensor(mg.tensor(IDX, device=device), mg.tensor(VALS, device=device),
                             (3, 4))  # fmt: skip
    t = torch.sparse_coo_tensor(torch.tensor(IDX), torch.tensor(VALS), (3, 4))
    np.testing.assert_array_equal(s.to_dense().cpu().numpy(), t.to_dense().numpy())
    sc, tc = s.coalesce(), t.coalesce()
    assert sc.is_coalesced() and not s.is_coalesced()
    np.testing.assert_array_equal(sc.indices().cpu().numpy(), tc.indices().numpy())
    np.testing.assert_array_equal(sc.values().cpu().numpy(), tc.values().numpy())
    assert sc._nnz() == tc._nnz() and tuple(s.shape) == tuple(t.shape)
    with pytest.raises(RuntimeError, match="coalesce"):
        s.indices()


@pytest.mark.parametrize("device", DEVICES)
def test_sparse_mm_gradients(device):
    rng = np.random.default_rng(0)
    d = rng.standard_normal((4, 5))
    mv = mg.tensor(VALS, device=device, requires_grad=True)
    md = mg.tensor(d, device=device, requires_grad=True)
    tv = torch.tensor(VALS, requires_grad=True)
    td = torch.tensor(d, requires_grad=True)
    ms = mg.sparse_coo_tensor(mg.tensor(IDX, device=device), mv, (3, 4))
    ts = torch.sparse_coo_tensor(torch.tensor(IDX), tv, (3, 4))
    mo, to = mg.sparse.mm(ms, md), torch.sparse.mm(ts, td)
    np.testing.assert_allclose(mo.detach().cpu().numpy(), to.detach().numpy(), rtol=1e-12)
    u = rng.standard_normal(mo.shape)
    (mo * mg.tensor(u, device=device)).sum().backward()
    (to * torch.tensor(u)).sum().backward()
    np.testing.assert_allclose(md.grad.cpu().numpy(), td.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(mv.grad.cpu().numpy(), tv.grad.coalesce().to_dense().numpy()
                               if tv.grad.is_sparse else tv.grad.numpy(), rtol=1e-12)  # fmt: skip
    np.testing.assert_allclose((ms @ md).detach().cpu().numpy(), to.detach().numpy())
    np.testing.assert_allclose(mg.spmm(ms, md).detach().cpu().numpy(), to.detach().numpy())


def test_dense_times_sparse_transpose_and_to_sparse():
    rng = np.random.default_rng(1)
    d = rng.standard_normal((2, 3))
    s = mg.sparse_coo_tensor(IDX, VALS, (3, 4))
    t = torch.sparse_coo_tensor(torch.tensor(IDX), torch.tensor(VALS), (3, 4))
    np.testing.assert_allclose(mg.sparse.mm(mg.tensor(d), s).numpy(),
                               torch.sparse.mm(torch.tensor(d), t).numpy(), rtol=1e-12)  # fmt: skip
    np.testing.assert_array_equal(s.t().to_dense().numpy(), t.t().to_dense().numpy())
    x = np.array([[0.0, 2.0], [3.0, 0.0]])
    sp = mg.tensor(x).to_sparse()
    tp = torch.tensor(x).to_sparse()
    np.testing.assert_array_equal(sp.indices().numpy(), tp.indices().numpy())
    np.testing.assert_array_equal(sp.values().numpy(), tp.values().numpy())
    assert sp.is_sparse and not mg.tensor(x).is_sparse


def test_to_dense_gradient_and_inferred_size():
    v = mg.tensor(VALS, requires_grad=True)
    s = mg.sparse_coo_tensor(IDX, v)
    assert tuple(s.shape) == (3, 4)
    (s.to_dense() * mg.arange(12.0).reshape(3, 4)).sum().backward()
    lin = IDX[0] * 4 + IDX[1]
    np.testing.assert_array_equal(v.grad.numpy(), lin.astype(float))


def test_graph_convolution_matches_torch():
    """A two-layer GCN trained for a few SGD steps: the same losses as PyTorch's."""
    n = 6
    src = np.arange(n)
    idx = np.concatenate([np.stack([src, (src + 1) % n]), np.stack([src, src])], 1)
    val = np.full(idx.shape[1], 0.5)
    rng = np.random.default_rng(0)
    x, w1, w2 = (
        rng.standard_normal((n, 4)),
        rng.standard_normal((4, 8)),
        rng.standard_normal((8, 2)),
    )
    y = np.array([0, 1, 0, 1, 1, 0])
    curves = []
    for lib, sp in ((mg, mg.sparse), (torch, torch.sparse)):
        adj = lib.sparse_coo_tensor(lib.tensor(idx), lib.tensor(val), (n, n))
        p1, p2 = lib.tensor(w1, requires_grad=True), lib.tensor(w2, requires_grad=True)
        opt = lib.optim.SGD([p1, p2], lr=0.1)
        losses = []
        for _ in range(15):
            h = lib.relu(sp.mm(adj, lib.tensor(x) @ p1))
            out = sp.mm(adj, h @ p2)
            loss = lib.nn.functional.cross_entropy(out, lib.tensor(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        curves.append(losses)
    np.testing.assert_allclose(curves[0], curves[1], rtol=1e-10)
    assert curves[0][-1] < curves[0][0]


def test_bad_input():
    with pytest.raises(mg.ManygradError, match="nnz"):
        mg.sparse_coo_tensor([[0, 1]], [1.0], (2,))
    with pytest.raises(mg.ManygradError, match="don't fit"):
        mg.sparse.mm(mg.sparse_coo_tensor(IDX, VALS, (3, 4)), mg.ones(3, 2, dtype=mg.float64))


def test_mm_matmul_and_legacy_constructors():
    d = np.random.default_rng(2).standard_normal((4, 2))
    s = mg.sparse.FloatTensor(mg.tensor(IDX), mg.tensor(VALS, dtype=mg.float32), (3, 4))
    assert s.dtype == mg.float32 and mg.sparse.DoubleTensor(IDX, VALS, (3, 4)).dtype == mg.float64
    t = torch.sparse_coo_tensor(torch.tensor(IDX), torch.tensor(VALS), (3, 4))
    want = torch.sparse.mm(t, torch.tensor(d)).numpy()
    dd = mg.tensor(d, dtype=mg.float32)
    for got in (mg.mm(s, dd), mg.matmul(s, dd), s @ dd, mg.spmm(s, dd)):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5)
    e = mg.ones(5, 3)
    np.testing.assert_allclose((e @ s.to_dense()).numpy(), (e @ s).numpy(), rtol=1e-6)


@pytest.mark.parametrize("sparse_dim", [None, 1, 2, 3])
def test_to_sparse_with_dense_dims_matches_torch(device, sparse_dim):
    torch = pytest.importorskip("torch")
    a = np.zeros((3, 2, 4), np.float32)
    a[1, 0, 3], a[2, 1, 0], a[2, 1, 2] = 5.0, -1.0, 2.0
    x = mg.tensor(a, device=device, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    args = () if sparse_dim is None else (sparse_dim,)
    s, ts = x.to_sparse(*args), t.to_sparse(*args)
    assert (s.sparse_dim(), s.dense_dim()) == (ts.sparse_dim(), ts.dense_dim())
    np.testing.assert_array_equal(s.indices().cpu().numpy(), ts.indices().numpy())
    np.testing.assert_array_equal(s.values().detach().cpu().numpy(), ts.values().detach().numpy())
    w = np.arange(24, dtype=np.float32).reshape(3, 2, 4)
    (s.to_dense() * mg.tensor(w, device=device)).sum().backward()
    (ts.to_dense() * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), t.grad.numpy())
    with pytest.raises(mg.errors.ShapeError, match="sparse_dim must be in 1..3"):
        x.to_sparse(4)


def test_sparse_repr_matches_torch():
    torch = pytest.importorskip("torch")
    a = [[0, 0, 0], [9, 0, 10], [0, 0, 0]]
    for args in ((), (1,)):
        assert repr(mg.tensor(a).to_sparse(*args)) == repr(torch.tensor(a).to_sparse(*args))
