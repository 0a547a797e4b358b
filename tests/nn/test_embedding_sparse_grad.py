"""Sparse gradients of F.embedding / nn.Embedding / F.embedding_bag (sparse=True) against
PyTorch on every device: the uncoalesced indices and values, their coalesced and dense
forms, padding_idx, max_norm, accumulation over backward calls and through the engine."""

import numpy as np
import pytest

import manygrad as mg
import manygrad.nn.functional as F

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks")
RNG = np.random.default_rng(0)
W0 = RNG.standard_normal((9, 3)).astype(np.float32)


def _pair(device, w=W0):
    return (mg.tensor(w, device=device, requires_grad=True),
            torch.tensor(w, requires_grad=True))  # fmt: skip


def _np(t):
    return t.detach().cpu().numpy()


def assert_same_sparse(mg_grad, torch_grad, exact_order=True):
    assert mg_grad.is_sparse and torch_grad.is_sparse
    assert tuple(mg_grad.shape) == tuple(torch_grad.shape)
    assert mg_grad.is_coalesced() == torch_grad.is_coalesced()
    if exact_order:
        np.testing.assert_array_equal(_np(mg_grad._indices()), torch_grad._indices().numpy())
        np.testing.assert_allclose(_np(mg_grad._values()), torch_grad._values().numpy(),
                                   rtol=1e-6)  # fmt: skip
    mc, tc = mg_grad.coalesce(), torch_grad.coalesce()
    np.testing.assert_array_equal(_np(mc.indices()), tc.indices().numpy())
    np.testing.assert_allclose(_np(mc.values()), tc.values().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(_np(mg_grad.to_dense()), torch_grad.to_dense().numpy(),
                               rtol=1e-6, atol=1e-7)  # fmt: skip


@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_sparse_grad_matches_pytorch(device, padding_idx):
    ids = np.array([[1, 2, 4], [4, 8, 1]])
    up = RNG.standard_normal((2, 3, 3)).astype(np.float32)
    mw, tw = _pair(device)
    mo = F.embedding(mg.tensor(ids, device=device), mw, padding_idx, sparse=True)
    to = torch.nn.functional.embedding(torch.tensor(ids), tw, padding_idx, sparse=True)
    np.testing.assert_array_equal(_np(mo), _np(to))
    (mo * mg.tensor(up, device=device)).sum().backward()
    (to * torch.tensor(up)).sum().backward()
    assert_same_sparse(mw.grad, tw.grad)
    assert mw.grad.device == mw.device and mw.grad.dtype == mw.dtype
    assert mw.grad._indices().dtype == mg.int64


def test_padding_rows_are_left_out(device):
    mw, tw = _pair(device)
    F.embedding(mg.tensor([2, 2], device=device), mw, padding_idx=2, sparse=True).sum().backward()
    torch.nn.functional.embedding(torch.tensor([2, 2]), tw, padding_idx=2,
                                  sparse=True).sum().backward()  # fmt: skip
    assert mw.grad._nnz() == tw.grad._nnz() == 0
    assert tuple(mw.grad._values().shape) == tuple(tw.grad._values().shape) == (0, 3)
    assert not _np(mw.grad.to_dense()).any()


def test_module_accumulates_like_pytorch(device):
    me = mg.nn.Embedding(9, 3, sparse=True, padding_idx=0, _weight=mg.tensor(W0, device=device))
    te = torch.nn.Embedding(9, 3, sparse=True, padding_idx=0, _weight=torch.tensor(W0))
    assert "sparse=True" in repr(me)
    for ids, k in (([[1, 0, 4], [4, 3, 1]], 1.0), ([5, 1], 2.0)):
        (me(mg.tensor(ids, device=device)) * k).sum().backward()
        (te(torch.tensor(ids)) * k).sum().backward()
    first = me.weight.grad
    assert_same_sparse(me.weight.grad, te.weight.grad)  # concatenated, uncoalesced
    (me(mg.tensor([7], device=device))).sum().backward()
    assert me.weight.grad is first  # NOTE: in place, as PyTorch's grad += new


@pytest.mark.parametrize("dense_first", [True, False])
def test_dense_meeting_sparse_gives_dense(device, dense_first):
    ids = [1, 1, 3]
    mw, tw = _pair(device)
    steps = [
        lambda lib, w, mk: (w * 2).sum().backward(),
        lambda lib, w, mk: lib.nn.functional.embedding(mk(ids), w, sparse=True).sum().backward(),
    ]
    if not dense_first:
        steps.reverse()
    for fn in steps:
        fn(mg, mw, lambda x: mg.tensor(x, device=device))
        fn(torch, tw, torch.tensor)
    assert not mw.grad.is_sparse and not tw.grad.is_sparse
    np.testing.assert_allclose(_np(mw.grad), tw.grad.numpy(), rtol=1e-6)


def test_two_lookups_in_one_backward(device):
    mw, tw = _pair(device)
    for lib, w, mk in ((mg, mw, lambda x: mg.tensor(x, device=device)), (torch, tw, torch.tensor)):
        f = lib.nn.functional.embedding
        (f(mk([1, 2]), w, sparse=True).sum() + 3 * f(mk([7, 1]), w, sparse=True).sum()).backward()
    # NOTE: PyTorch orders the entries of one backward by its own schedule; the sums agree
    assert_same_sparse(mw.grad, tw.grad, exact_order=False)


def test_autograd_grad_hooks_and_create_graph(device):
    mw, tw = _pair(device)
    ids = [3, 1]
    (mg_g,) = mg.autograd.grad(F.embedding(mg.tensor(ids, device=device), mw, sparse=True).sum(),
                               mw)  # fmt: skip
    (t_g,) = torch.autograd.grad(torch.nn.functional.embedding(torch.tensor(ids), tw,
                                                               sparse=True).sum(), tw)  # fmt: skip
    assert_same_sparse(mg_g, t_g)
    seen = []
    h = mw.register_hook(lambda g: seen.append(g.is_sparse))
    F.embedding(mg.tensor(ids, device=device), mw, sparse=True).sum().backward(create_graph=True)
    h.remove()
    assert seen == [True] and mw.grad.is_sparse and not mw.grad.requires_grad


def test_table_behind_an_op_gets_a_dense_gradient(device):
    """manygrad hands a sparse gradient on to leaves only: a table made by an op (w * 2)
    gets its gradient in dense form (PyTorch keeps it sparse; the values agree)."""
    mw, tw = _pair(device)
    F.embedding(mg.tensor([3, 1, 3], device=device), mw * 2, sparse=True).sum().backward()
    torch.nn.functional.embedding(torch.tensor([3, 1, 3]), tw * 2, sparse=True).sum().backward()
    assert not mw.grad.is_sparse
    np.testing.assert_allclose(_np(mw.grad), tw.grad.to_dense().numpy())


def test_max_norm_with_sparse_grad(device):
    w = (W0 * 3).astype(np.float32)
    mw, tw = _pair(device, w)
    ids = [1, 4, 1]
    F.embedding(mg.tensor(ids, device=device), mw, max_norm=1.0, sparse=True).sum().backward()
    torch.nn.functional.embedding(torch.tensor(ids), tw, max_norm=1.0,
                                  sparse=True).sum().backward()  # fmt: skip
    np.testing.assert_allclose(_np(mw), _np(tw), rtol=1e-5)
    assert_same_sparse(mw.grad, tw.grad)


def test_scale_grad_by_freq_is_refused_with_sparse(device):
    mw, tw = _pair(device)
    with pytest.raises(RuntimeError, match="scale_grad_by_freq not supported with sparse"):
        torch.nn.functional.embedding(torch.tensor([1, 1]), tw, scale_grad_by_freq=True,
                                      sparse=True).sum().backward()  # fmt: skip
    out = F.embedding(mg.tensor([1, 1], device=device), mw, scale_grad_by_freq=True, sparse=True)
    with pytest.raises(mg.errors.LayoutError, match="scale_grad_by_freq not supported with sparse"):
        out.sum().backward()


@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize("padding_idx", [None, 4])
def test_embedding_bag_sparse_grad(device, mode, padding_idx):
    ids = np.array([1, 2, 4, 5, 4, 3, 2, 6])
    off = np.array([0, 4])
    up = RNG.standard_normal((2, 3)).astype(np.float32)
    mw, tw = _pair(device)
    psw = RNG.standard_normal(8).astype(np.float32) if mode == "sum" else None
    mo = F.embedding_bag(mg.tensor(ids, device=device), mw, mg.tensor(off, device=device),
                         mode=mode, sparse=True, padding_idx=padding_idx,
                         per_sample_weights=None if psw is None else mg.tensor(psw, device=device))  # fmt: skip
    to = torch.nn.functional.embedding_bag(torch.tensor(ids), tw, torch.tensor(off), mode=mode,
                                           sparse=True, padding_idx=padding_idx,
                                           per_sample_weights=None if psw is None else torch.tensor(psw))  # fmt: skip
    np.testing.assert_allclose(_np(mo), _np(to), rtol=1e-5, atol=1e-6)
    (mo * mg.tensor(up, device=device)).sum().backward()
    (to * torch.tensor(up)).sum().backward()
    assert_same_sparse(mw.grad, tw.grad)


def test_embedding_bag_module_2d_and_max_norm(device):
    mb = mg.nn.EmbeddingBag(9, 3, mode="mean", sparse=True, max_norm=1.0,
                            _weight=mg.tensor(W0 * 3, device=device))  # fmt: skip
    tb = torch.nn.EmbeddingBag(9, 3, mode="mean", sparse=True, max_norm=1.0,
                               _weight=torch.tensor(W0 * 3))  # fmt: skip
    ids = [[1, 2, 4, 5], [4, 3, 2, 6]]
    mb(mg.tensor(ids, device=device)).sum().backward()
    tb(torch.tensor(ids)).sum().backward()
    np.testing.assert_allclose(_np(mb.weight), _np(tb.weight), rtol=1e-5)
    assert_same_sparse(mb.weight.grad, tb.weight.grad)


def test_embedding_bag_max_mode_refuses_sparse(device):
    ids, off = [1, 2, 4], [0, 1]
    with pytest.raises(ValueError, match="max mode does not support sparse weights"):
        torch.nn.functional.embedding_bag(torch.tensor(ids), torch.tensor(W0), torch.tensor(off),
                                          mode="max", sparse=True)  # fmt: skip
    with pytest.raises(ValueError, match="max mode does not support sparse weights"):
        F.embedding_bag(mg.tensor(ids, device=device), mg.tensor(W0, device=device),
                        mg.tensor(off, device=device), mode="max", sparse=True)  # fmt: skip


def test_lookup_and_backward_make_no_host_sync():
    w = mg.tensor(W0, device="fakegpu", requires_grad=True)
    ids = mg.tensor([[1, 2], [4, 1]], device="fakegpu")
    mg.backend.fake_stats.reset()
    for _ in range(2):
        F.embedding(ids, w, sparse=True).pow(2).sum().backward()
    assert mg.backend.fake_stats.syncs == 0
    assert w.grad._nnz() == 8
