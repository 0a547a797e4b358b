"""The SyncBatchNorm building blocks and native_norm (compat/torch_low_level_norm.py).

PyTorch 2.13's CPU build has no kernels for batch_norm_stats / elemt / gather_stats /
backward_reduce / backward_elemt (they raise NotImplementedError, checked below), so these
are compared with NumPy references of PyTorch's CUDA formulas and, put together as
SyncBatchNorm does on two fake ranks, with nn.BatchNorm2d over the whole batch.
batch_norm_update_stats and native_norm (of sparse tensors) run on PyTorch's CPU and are
compared with it directly."""

import numpy as np
import pytest
import torch

import manygrad as mg

R = np.random.default_rng(0)
EPS, MOM = 1e-5, 0.1


def _np(t):
    return t.detach().cpu().numpy()


def _stats(x):
    axes = (0,) + tuple(range(2, x.ndim))
    return x.mean(axes), 1 / np.sqrt(x.var(axes) + EPS)


def test_sync_batch_norm_on_two_ranks_matches_batchnorm2d(device):
    x = R.standard_normal((7, 3, 4, 5)) * 2 + 1
    w, b = R.standard_normal(3), R.standard_normal(3)
    dy = R.standard_normal(x.shape)
    tbn = torch.nn.BatchNorm2d(3, eps=EPS, momentum=MOM).double()
    with torch.no_grad():
        tbn.weight.copy_(torch.tensor(w))
        tbn.bias.copy_(torch.tensor(b))
    tx = torch.tensor(x, requires_grad=True)
    ty = tbn(tx)
    ty.backward(torch.tensor(dy))

    dev = dict(device=device)
    mw, mb = mg.tensor(w, **dev), mg.tensor(b, **dev)
    rm, rv = mg.zeros(3, dtype=mg.float64, **dev), mg.ones(3, dtype=mg.float64, **dev)
    ranks = [(mg.tensor(x[:3], **dev), mg.tensor(dy[:3], **dev)),
             (mg.tensor(x[3:], **dev), mg.tensor(dy[3:], **dev))]  # fmt: skip
    stats = [mg.batch_norm_stats(xr, EPS) for xr, _ in ranks]
    means = mg.stack([s[0] for s in stats])  # NOTE: what all_gather would give each rank
    invstds = mg.stack([s[1] for s in stats])
    counts = mg.tensor([xr.numel() // 3 for xr, _ in ranks], dtype=mg.float64, **dev)
    mean, invstd = mg.batch_norm_gather_stats_with_counts(ranks[0][0], means, invstds, rm, rv,
                                                          MOM, EPS, counts)  # fmt: skip
    ys = [mg.batch_norm_elemt(xr, mw, mb, mean, invstd, EPS) for xr, _ in ranks]
    np.testing.assert_allclose(_np(mg.cat(ys)), _np(ty), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(_np(rm), _np(tbn.running_mean), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_np(rv), _np(tbn.running_var), rtol=1e-12, atol=1e-12)

    red = [mg.batch_norm_backward_reduce(d, xr, mean, invstd, mw, True, True, True)
           for xr, d in ranks]  # fmt: skip
    sum_dy = red[0][0] + red[1][0]  # NOTE: what all_reduce would give each rank
    sum_dy_xmu = red[0][1] + red[1][1]
    cnt = mg.tensor([3 * 20, 4 * 20], dtype=mg.int32, **dev)
    dxs = [mg.batch_norm_backward_elemt(d, xr, mean, invstd, mw, sum_dy, sum_dy_xmu, cnt)
           for xr, d in ranks]  # fmt: skip
    np.testing.assert_allclose(_np(mg.cat(dxs)), _np(tx.grad), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(_np(red[0][2] + red[1][2]), _np(tbn.weight.grad), rtol=1e-10)
    np.testing.assert_allclose(_np(red[0][3] + red[1][3]), _np(tbn.bias.grad), rtol=1e-10)


def test_pieces_against_numpy_formulas(device):
    x = R.standard_normal((5, 4, 6))
    mx = mg.tensor(x, device=device)
    mean, invstd = mg.batch_norm_stats(mx, EPS)
    m_ref, inv_ref = _stats(x)
    np.testing.assert_allclose(_np(mean), m_ref, rtol=1e-12)
    np.testing.assert_allclose(_np(invstd), inv_ref, rtol=1e-12)
    y = mg.batch_norm_elemt(mx, None, None, mean, invstd, EPS)
    np.testing.assert_allclose(_np(y), (x - m_ref[:, None]) * inv_ref[:, None], atol=1e-12)
    # gather with equal counts: the stats of the concatenated batch
    x2 = R.standard_normal((5, 4, 6)) + 3
    s2 = mg.batch_norm_stats(mg.tensor(x2, device=device), EPS)
    m, inv = mg.batch_norm_gather_stats(mx, mg.stack([mean, s2[0]]), mg.stack([invstd, s2[1]]),
                                        None, None, MOM, EPS, 30)  # fmt: skip
    both = np.concatenate([x, x2])
    np.testing.assert_allclose(_np(m), _stats(both)[0], rtol=1e-12)
    np.testing.assert_allclose(_np(inv), _stats(both)[1], rtol=1e-10)
    dy = R.standard_normal(x.shape)
    sdy, sdx, gw, gb = mg.batch_norm_backward_reduce(mg.tensor(dy, device=device), mx, mean,
                                                     invstd, None, True, False, False)  # fmt: skip
    assert gw is None and gb is None
    np.testing.assert_allclose(_np(sdy), dy.sum((0, 2)), rtol=1e-12)
    np.testing.assert_allclose(_np(sdx), (dy * (x - m_ref[:, None])).sum((0, 2)), rtol=1e-10)
    assert mg.batch_norm_backward_reduce(mg.tensor(dy), mg.tensor(x), mean.cpu(),
                                         invstd.cpu(), None, False, True, True)[0] is None  # fmt: skip
    n = 30
    dx = mg.batch_norm_backward_elemt(mg.tensor(dy, device=device), mx, mean, invstd, None,
                                      sdy, sdx, mg.tensor([n], dtype=mg.int32))  # fmt: skip
    ref = (
        dy
        - dy.sum((0, 2))[:, None] / n
        - (x - m_ref[:, None]) * inv_ref[:, None] ** 2 * _np(sdx)[:, None] / n
    )
    np.testing.assert_allclose(_np(dx), ref * inv_ref[:, None], rtol=1e-9, atol=1e-12)


def test_statistics_of_16_bit_inputs_are_float32():
    x = mg.randn(4, 3, 5).half()
    mean, invstd = mg.batch_norm_stats(x, EPS)
    assert mean.dtype == invstd.dtype == mg.float32
    assert mg.batch_norm_elemt(x, None, None, mean, invstd, EPS).dtype == mg.float16
    flat = mg.zeros(4, 3, 5)
    assert mg.batch_norm_stats(flat, 0.0)[1].tolist() == [0.0, 0.0, 0.0]  # PyTorch's InvStd


def test_torch_cpu_lacks_these_kernels():
    x = torch.randn(4, 3, 5)
    with pytest.raises(NotImplementedError):
        torch.batch_norm_stats(x, EPS)
    with pytest.raises(NotImplementedError):
        torch.native_norm(x)


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("running", [True, False])
def test_batch_norm_update_stats_as_torch(dt, running, device):
    x = R.standard_normal((6, 3, 2, 2)).astype(dt)
    rm0, rv0 = R.standard_normal(3).astype(dt), R.random(3).astype(dt) + 0.5
    m_run = (mg.tensor(rm0, device=device), mg.tensor(rv0, device=device)) if running else (
        None, None)  # fmt: skip
    t_run = (torch.tensor(rm0), torch.tensor(rv0)) if running else (None, None)
    got = mg.batch_norm_update_stats(mg.tensor(x, device=device), *m_run, MOM)
    want = torch.batch_norm_update_stats(torch.tensor(x), *t_run, MOM)
    tol = 1e-6 if dt == "float32" else 1e-12
    for a, b in zip(got + (m_run if running else ()), want + (t_run if running else ())):
        assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
        np.testing.assert_allclose(_np(a), b.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("p", [2, 1, 3.5, float("inf")])
def test_native_norm(p, device):
    x = R.standard_normal((4, 5)) * (R.random((4, 5)) > 0.4)
    mx = mg.tensor(x, requires_grad=True, device=device)
    got = mg.native_norm(mx, p)
    want = torch.native_norm(torch.tensor(x).to_sparse(), p)
    assert got.shape == want.shape == ()
    np.testing.assert_allclose(_np(got), want.numpy(), rtol=1e-12)
    got.backward()
    tx = torch.tensor(x, requires_grad=True)
    torch.linalg.vector_norm(tx, p).backward()
    np.testing.assert_allclose(_np(mx.grad), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    x32 = x.astype("float32")
    got = mg.native_norm(mg.tensor(x32, device=device), p, [1], True, mg.float64)
    want = torch.linalg.vector_norm(torch.tensor(x32), p, [1], True, dtype=torch.float64)
    assert got.dtype == mg.float64 and tuple(got.shape) == (4, 1)
    np.testing.assert_allclose(_np(got), want.numpy(), rtol=1e-12)
