"""The kernels' NumPy twins against PyTorch (and manygrad's own ops), on every device of
the matrix: the twins are the reference the GPU kernels are held to."""

import math

import ml_dtypes
import numpy as np
import pytest
import torch
import torch.nn.functional as tF

import manygrad as mg
from manygrad import backend
from manygrad.kernels import gelu as bg
from manygrad.kernels import norms as nm
from manygrad.kernels import optim_step as ost
from manygrad.kernels import rng_dropout as do
from manygrad.kernels import row_softmax as sm
from manygrad.kernels import xent as ce

BF16 = np.dtype(ml_dtypes.bfloat16)


def _run(device, fn, *args, **kw):
    """Run ``fn`` with the array args moved to ``device``; results back as NumPy."""
    d = backend.device(device)
    with backend.device_scope(d):
        moved = [backend.to_device(a, d) if isinstance(a, np.ndarray) else a for a in args]
        out = fn(*moved, **kw)
    if isinstance(out, tuple):
        return tuple(None if o is None else backend.to_numpy(o) for o in out)
    return backend.to_numpy(out)


def _t(a, grad=False):
    return torch.tensor(a.astype(np.float32) if a.dtype == BF16 else a, requires_grad=grad)


@pytest.mark.parametrize("approx", ["tanh", "none"])
def test_bias_gelu_twin_matches_torch(device, approx):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((6, 10)) * 3).astype(np.float32)
    x[0, :4] = [1e4, -1e4, 0.0, 40.0]
    b, g = (
        rng.standard_normal(10).astype(np.float32),
        rng.standard_normal((6, 10)).astype(np.float32),
    )  # noqa: E501
    tx, tb = _t(x, True), _t(b, True)
    ty = tF.gelu(tx + tb, approximate=approx)
    ty.backward(torch.tensor(g))
    y = _run(device, bg.bias_gelu_forward, x, b, approx)
    dx, db = _run(device, bg.bias_gelu_backward, g, x, b, approx)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-5, atol=1e-5)
    # NOTE: row 0 left out: manygrad's erf GELU gives 6e-4 at x = -1e4 (torch: -0)
    mine = mg.nn.functional.gelu(mg.tensor(x[1:] + b), approximate=approx).numpy()
    np.testing.assert_allclose(y[1:], mine, rtol=1e-5, atol=1e-6)


def test_bias_gelu_bf16_twin_rounds_once():
    x = np.linspace(-4, 4, 101).astype(BF16)
    y = bg.bias_gelu_forward(x, None, "tanh")
    want = tF.gelu(torch.tensor(x.astype(np.float32)), approximate="tanh").numpy().astype(BF16)
    assert y.dtype == BF16
    np.testing.assert_array_equal(y.view(np.uint16), want.view(np.uint16))


@pytest.mark.parametrize("eps", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_twin_matches_torch(device, eps, reduction):
    rng = np.random.default_rng(1)
    n, c = 9, 13
    x = (rng.standard_normal((n, c)) * 3).astype(np.float32)
    t = rng.integers(0, c, n).astype(np.int64)
    t[[2, 5]] = -100
    tx = _t(x, True)
    tl = tF.cross_entropy(tx, torch.tensor(t), ignore_index=-100, label_smoothing=eps,
                          reduction=reduction)  # fmt: skip
    tl.backward(torch.ones_like(tl))
    loss, lse = _run(device, ce.cross_entropy_forward, x, t, -100, eps)
    red, scale = ce.reduce_loss(loss, t, -100, reduction)
    np.testing.assert_allclose(red, tl.detach().numpy(), rtol=1e-5, atol=1e-6)
    dloss = np.broadcast_to(np.asarray(scale, np.float32), (n,)).copy()
    dx = _run(device, ce.cross_entropy_backward, x, t, lse, dloss, -100, eps)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-5, atol=1e-7)
    _, _, dx2 = _run(device, ce.cross_entropy_fused, x, t, dloss, -100, eps)
    np.testing.assert_array_equal(dx, dx2)
    mine = mg.nn.functional.cross_entropy(mg.tensor(x), mg.tensor(t), label_smoothing=eps,
                                          reduction=reduction).numpy()  # fmt: skip
    np.testing.assert_allclose(red, mine, rtol=1e-5, atol=1e-6)


def test_cross_entropy_bad_target_is_nan_and_args_are_checked():
    x = np.zeros((2, 3), np.float32)
    loss, _ = ce.cross_entropy_forward(x, np.array([0, 7]))
    assert loss[0] == pytest.approx(math.log(3)) and np.isnan(loss[1])
    with pytest.raises(mg.errors.ShapeError, match=r"logits \(N, C\) and target \(N,\)"):
        ce.cross_entropy_forward(x, np.array([0]))
    with pytest.raises(mg.errors.DTypeError, match="class indices"):
        ce.cross_entropy_forward(x, np.array([0.0, 1.0], np.float32))


def test_layer_norm_and_rms_norm_twins_match_torch(device):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((4, 3, 16)) * 2 + 1).astype(np.float32)
    w, b = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    tx, tw, tb = _t(x, True), _t(w, True), _t(b, True)
    tF.layer_norm(tx, (16,), tw, tb, 1e-5).backward(torch.tensor(g))
    y, mean, rstd = _run(device, nm.layer_norm_forward, x, w, b, 1e-5)
    np.testing.assert_allclose(
        y, tF.layer_norm(_t(x), (16,), _t(w), _t(b)).numpy(), rtol=1e-5, atol=1e-5
    )  # noqa: E501
    dx, dw, db = _run(device, nm.layer_norm_backward, g, x, w, mean, rstd)
    for got, want in ((dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)
    mine = mg.nn.functional.layer_norm(mg.tensor(x), (16,), mg.tensor(w), mg.tensor(b)).numpy()
    np.testing.assert_allclose(y, mine, rtol=1e-5, atol=1e-5)
    tx, tw = _t(x, True), _t(w, True)
    tF.rms_norm(tx, (16,), tw).backward(torch.tensor(g))
    y, r = _run(device, nm.rms_norm_forward, x, w)
    np.testing.assert_allclose(y, tF.rms_norm(_t(x), (16,), _t(w)).numpy(), rtol=1e-5, atol=1e-5)
    dx, dw = _run(device, nm.rms_norm_backward, g, x, w, r)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_row_softmax_twin_matches_torch(device, causal):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((2, 5, 7)) * 4).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    tx = _t(x, True)
    s = tx * 0.3
    if causal:
        mask = torch.ones(5, 7, dtype=torch.bool).tril(diagonal=2)
        s = s.masked_fill(~mask, float("-inf"))
    ty = torch.softmax(s, -1)
    ty.backward(torch.tensor(g))
    y = _run(device, sm.softmax_forward, x, 0.3, causal)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-7)
    dx = _run(device, sm.softmax_backward, g, y, 0.3)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-5, atol=1e-6)
    if not causal:
        mine = mg.nn.functional.softmax(mg.tensor(x) * 0.3, dim=-1).numpy()
        np.testing.assert_allclose(y, mine, rtol=1e-5, atol=1e-7)


def test_dropout_twin_drops_p_and_backward_reuses_the_mask(device):
    x = np.ones((200, 100), np.float32)
    y = _run(device, do.dropout_forward, x, 0.3, 123, 0)
    kept = y != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    dx = _run(device, do.dropout_backward, x * 2, 0.3, 123, 0)
    np.testing.assert_array_equal(dx != 0, kept)
    other = _run(device, do.dropout_forward, x, 0.3, 123, x.size)  # next offset: new mask
    assert (other != 0).mean() == pytest.approx(0.7, abs=0.01) and ((other != 0) != kept).any()
    res = np.full_like(x, 5.0)
    np.testing.assert_array_equal(_run(device, do.dropout_forward, x, 0.0, 1, 0, res), x + res)
    assert not _run(device, do.dropout_forward, x, 1.0, 1, 0).any()


def _torch_opt(kind, params):
    if kind == "adam":
        return torch.optim.Adam(params, lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1)
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1)
    if kind == "adam_max":
        return torch.optim.Adam(params, lr=1e-2, betas=(0.9, 0.99), maximize=True)
    return torch.optim.SGD(params, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01,
                           nesterov=False)  # fmt: skip


@pytest.mark.parametrize("kind", ["adam", "adamw", "adam_max", "sgd"])
def test_multi_tensor_step_twin_matches_torch_optim(device, kind):
    rng = np.random.default_rng(4)
    shapes = [(3, 4), (5,), (2, 2, 2)]
    ps = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    tps = [torch.tensor(p.copy(), requires_grad=True) for p in ps]
    opt = _torch_opt(kind, tps)
    d = backend.device(device)
    with backend.device_scope(d):
        mp = [backend.to_device(p, d) for p in ps]
        s1 = [backend.to_device(np.zeros(s, np.float32), d) for s in shapes]
        s2 = [backend.to_device(np.zeros(s, np.float32), d) for s in shapes]
        for step in range(1, 6):
            gs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
            for tp, gr in zip(tps, gs):
                tp.grad = torch.tensor(gr)
            opt.step()
            dg = [backend.to_device(gr, d) for gr in gs]
            if kind.startswith("adam"):
                h = ost.hyper(1e-2, (0.9, 0.99), 1e-8, 0.0 if kind == "adam_max" else 0.1, step)
                fl = ost.flags(decoupled=kind == "adamw", maximize=kind == "adam_max")
                ost.adam_step(mp, dg, s1, s2, hyper=h, flags=fl)
            else:
                h = ost.hyper(0.1, weight_decay=0.01, step=step, momentum=0.9, dampening=0.1,
                              first_step=step == 1)  # fmt: skip
                ost.sgd_step(mp, dg, s1, hyper=h, flags=0)
    for a, tp in zip(mp, tps):
        np.testing.assert_allclose(backend.to_numpy(a), tp.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_bf16_params_step_through_fp32_master_weights():
    rng = np.random.default_rng(5)
    p32 = rng.standard_normal(1000).astype(np.float32)
    p = p32.astype(BF16)
    master = p.astype(np.float32)
    m, v = np.zeros(1000, np.float32), np.zeros(1000, np.float32)
    tp = torch.tensor(master.copy(), requires_grad=True)
    opt = torch.optim.AdamW([tp], lr=1e-4, weight_decay=0.01)
    for step in range(1, 11):
        g = rng.standard_normal(1000).astype(np.float32)
        tp.grad = torch.tensor(g.astype(BF16).astype(np.float32))
        opt.step()
        ost.adam_step([p], [g.astype(BF16)], [m], [v], [master],
                      hyper=ost.hyper(1e-4, weight_decay=0.01, step=step), flags=ost.ADAMW)  # fmt: skip
    # the master follows fp32 AdamW; the bf16 copy is its rounding (updates of ~1e-4 would
    # vanish in bf16 without the master)
    np.testing.assert_allclose(master, tp.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(p.view(np.uint16), master.astype(BF16).view(np.uint16))
    with pytest.raises(mg.errors.DTypeError, match="master weights"):
        ost.adam_step([p], [p], [m], [v], hyper=ost.hyper(1e-3))
