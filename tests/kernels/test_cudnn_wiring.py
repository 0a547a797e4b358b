"""conv2d and scaled_dot_product_attention through cuDNN's paths, wired into the ops.

On the fake GPU the paths are forced (its device added to the fused devices, the wiring
marked verified, each path's GPU function replaced by a spy that runs its reference), and
values and gradients must equal the plain ops'. The references themselves (what a GPU run
compares cuDNN with) are checked against manygrad's autograd in float64/float32.
"""

import dataclasses
import warnings

import numpy as np
import pytest

import manygrad as mg
import manygrad.nn.functional as F
from manygrad.cuda import cudnn_train as cg
from manygrad.kernels import fastpath
from manygrad.kernels.launch import UnsupportedCallError

CONV = ("cudnn.conv2d", "cudnn.conv2d_dgrad", "cudnn.conv2d_wgrad")
SDPA = ("cudnn.sdpa_train", "cudnn.sdpa_grad")


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.delenv(fastpath.ENV, raising=False)
    fastpath.reset_warnings()
    yield
    fastpath.reset_warnings()


def _force(monkeypatch, names, refuse=False):
    """Switch ``names`` on for the fake GPU; their GPU functions record calls and run the
    reference (or refuse, to exercise the fallback)."""
    monkeypatch.setattr(fastpath, "FUSED_DEVICES", ("cuda", "fakegpu"))
    monkeypatch.setattr(fastpath, "WIRING_VERIFIED", "a GPU run (simulated)")
    monkeypatch.setenv(fastpath.ENV, ",".join(names))
    calls = {n: [] for n in names}
    for n in names:
        p = fastpath._PATHS[n]

        def gpu(*args, _n=n, _p=p, **kwargs):
            calls[_n].append(args)
            if refuse:
                raise UnsupportedCallError("refused (test)")
            return _p.ref(*args, **kwargs)

        monkeypatch.setitem(fastpath._PATHS, n, dataclasses.replace(p, gpu=gpu))
    return calls


def _conv_run(x, w, b, dt, **kw):
    xt = mg.tensor(x, device="fakegpu").to(dt).requires_grad_()
    wt = mg.tensor(w, device="fakegpu").to(dt).requires_grad_()
    bt = None if b is None else mg.tensor(b, device="fakegpu").to(dt).requires_grad_()
    y = F.conv2d(xt, wt, bt, **kw)
    g = np.random.default_rng(9).standard_normal(y.shape).astype(np.float32)
    y.backward(mg.tensor(g, device="fakegpu").to(dt))
    grads = [t.grad for t in (xt, wt, bt) if t is not None]
    return [y.detach().float().cpu().numpy()] + [t.float().cpu().numpy() for t in grads]


CONV_CASES = {
    "3x3 pad 1 + bias": ((2, 3, 9, 9), (4, 3, 3, 3), True, {"padding": 1}),
    "stride 2, no bias": ((2, 3, 9, 8), (5, 3, 3, 3), False, {"stride": 2, "padding": 1}),
    "dilation 2": ((1, 2, 10, 10), (3, 2, 3, 3), True, {"dilation": 2}),
    "1x1": ((3, 4, 5, 5), (6, 4, 1, 1), True, {}),
}


@pytest.mark.parametrize("case", list(CONV_CASES))
@pytest.mark.parametrize("dt", ["float32", "bfloat16"])
def test_conv2d_through_cudnn_equals_the_plain_op(monkeypatch, case, dt):
    xs, ws, bias, kw = CONV_CASES[case]
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32) if bias else None
    want = _conv_run(x, w, b, getattr(mg, dt), **kw)
    calls = _force(monkeypatch, CONV)
    got = _conv_run(x, w, b, getattr(mg, dt), **kw)
    assert [len(calls[n]) for n in CONV] == [1, 1, 1]
    dy_shape = calls["cudnn.conv2d_dgrad"][0][0].shape
    assert calls["cudnn.conv2d_dgrad"][0][2] == xs and dy_shape == want[0].shape
    assert calls["cudnn.conv2d_wgrad"][0][2] == ws
    tol = 1e-5 if dt == "float32" else 3e-2
    for g, w_ in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w_, rtol=tol, atol=tol * 4)


def test_conv2d_keeps_the_plain_path_where_cudnn_does_not_apply(monkeypatch):
    calls = _force(monkeypatch, CONV)
    x = mg.randn(2, 4, 8, 8, device="fakegpu")
    F.conv2d(x, mg.randn(4, 2, 3, 3, device="fakegpu"), groups=2, padding=1)  # grouped
    F.conv2d(x, mg.randn(3, 4, 2, 2, device="fakegpu"), padding="same")  # uneven padding
    F.conv1d(mg.randn(2, 4, 8, device="fakegpu"), mg.randn(3, 4, 3, device="fakegpu"))
    F.conv2d(x.cpu(), mg.randn(3, 4, 3, 3))  # CPU
    monkeypatch.setenv(fastpath.ENV, "cudnn.conv2d")  # gradients not switched on: all or none
    F.conv2d(x, mg.randn(3, 4, 3, 3, device="fakegpu"))
    assert all(not c for c in calls.values())


def test_a_refused_cudnn_conv_falls_back_once_warned_without_recursion(monkeypatch):
    rng = np.random.default_rng(1)
    x, w = (
        rng.standard_normal((2, 3, 7, 7)).astype(np.float32),
        rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
    )
    want = _conv_run(x, w, None, mg.float32, padding=1)
    calls = _force(monkeypatch, CONV, refuse=True)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        got = _conv_run(x, w, None, mg.float32, padding=1)
    assert [len(calls[n]) for n in CONV] == [1, 1, 1]
    msgs = [str(r.message) for r in rec if issubclass(r.category, fastpath.FastPathFallback)]
    assert len(msgs) == 3 and all("refused (test)" in m for m in msgs)
    for g, w_ in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w_, rtol=1e-5, atol=1e-5)


def test_conv2d_through_cudnn_is_twice_differentiable(monkeypatch):
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3))

    def hess():
        xt = mg.tensor(x.astype(np.float32), device="fakegpu", requires_grad=True)
        wt = mg.tensor(w.astype(np.float32), device="fakegpu", requires_grad=True)
        (gx,) = mg.autograd.grad((F.conv2d(xt, wt, padding=1) ** 2).sum(), xt, create_graph=True)
        (gx * gx).sum().backward()
        return gx.detach().cpu().numpy(), wt.grad.cpu().numpy()

    want = hess()
    calls = _force(monkeypatch, CONV)
    got = hess()
    assert calls["cudnn.conv2d"]
    for g, w_ in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w_, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------- attention


def _attn_run(q, k, v, causal, dt):
    ts = [mg.tensor(a, device="fakegpu").to(dt).requires_grad_() for a in (q, k, v)]
    o = F.scaled_dot_product_attention(*ts, is_causal=causal)
    g = np.random.default_rng(7).standard_normal(o.shape).astype(np.float32)
    o.backward(mg.tensor(g, device="fakegpu").to(dt))
    return [o.detach().float().cpu().numpy()] + [t.grad.float().cpu().numpy() for t in ts]


@pytest.mark.parametrize("causal", [False, True])
def test_attention_through_cudnn_equals_the_plain_op(monkeypatch, causal):
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((2, 3, 6, 8)).astype(np.float32) for _ in range(3))
    want = _attn_run(q, k, v, causal, mg.bfloat16)
    calls = _force(monkeypatch, SDPA)
    got = _attn_run(q, k, v, causal, mg.bfloat16)
    assert len(calls["cudnn.sdpa_train"]) == 1 and len(calls["cudnn.sdpa_grad"]) == 1
    assert calls["cudnn.sdpa_train"][0][4] is causal
    for g, w_ in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w_, rtol=5e-2, atol=5e-2)


def test_attention_keeps_the_plain_path_where_cudnn_does_not_apply(monkeypatch):
    calls = _force(monkeypatch, SDPA)
    r = lambda *s: mg.randn(*s, device="fakegpu").to(mg.bfloat16)  # noqa: E731
    F.scaled_dot_product_attention(
        r(2, 3, 6, 8).float(), r(2, 3, 6, 8).float(), r(2, 3, 6, 8).float()
    )
    F.scaled_dot_product_attention(r(2, 3, 6, 6), r(2, 3, 6, 6), r(2, 3, 6, 6))  # head dim 6
    F.scaled_dot_product_attention(r(2, 3, 4, 8), r(2, 3, 6, 8), r(2, 3, 6, 8), is_causal=True)
    F.scaled_dot_product_attention(r(2, 3, 6, 8), r(2, 3, 6, 8), r(2, 3, 6, 8), dropout_p=0.1)
    m = mg.ones(6, 6, dtype=mg.bool, device="fakegpu")
    F.scaled_dot_product_attention(r(2, 3, 6, 8), r(2, 3, 6, 8), r(2, 3, 6, 8), attn_mask=m)
    assert all(not c for c in calls.values())


@pytest.mark.parametrize("causal", [False, True])
def test_the_attention_references_match_autograd(causal):
    """What a GPU run compares cuDNN's outputs, stats and gradients with."""
    rng = np.random.default_rng(4)
    q, k, v, do = (rng.standard_normal((2, 2, 5, 8)) for _ in range(4))
    o, stats = cg.sdpa_train_reference(q, k, v, 0.3, causal)
    ts = [mg.tensor(a, requires_grad=True) for a in (q, k, v)]
    want = F.scaled_dot_product_attention(*ts, is_causal=causal, scale=0.3)
    want.backward(mg.tensor(do))
    np.testing.assert_allclose(o, want.detach().numpy(), rtol=1e-5, atol=1e-6)
    s = 0.3 * q @ k.swapaxes(-1, -2)
    if causal:
        s = np.where(np.triu(np.ones((5, 5), bool), 1), -np.inf, s)
    lse = np.log(np.exp(s - s.max(-1, keepdims=True)).sum(-1, keepdims=True)) + s.max(
        -1, keepdims=True
    )
    np.testing.assert_allclose(stats, lse, rtol=1e-5)
    grads = cg.sdpa_grad_reference(q, k, v, o, do, stats, 0.3, causal)
    for g, t in zip(grads, ts, strict=True):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_the_conv_gradient_references_match_autograd():
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, 3, 3))
    xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
    y = F.conv2d(xt, wt, stride=2, padding=1)
    dy = rng.standard_normal(y.shape)
    y.backward(mg.tensor(dy))
    gx = cg.conv2d_backward_data_reference(dy, w, x.shape, 2, 1, 1)
    gw = cg.conv2d_backward_weight_reference(x, dy, w.shape, 2, 1, 1)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=1e-10)
    assert gx.dtype == np.float64  # float64 in, float64 out


def test_the_gpt_attention_takes_cudnn_on_its_packed_heads(monkeypatch):
    from manygrad.ops.attention import _packed_causal_attention

    rng = np.random.default_rng(6)
    qkv = rng.standard_normal((2 * 6, 3 * 2 * 8)).astype(np.float32)

    def run():
        t = mg.tensor(qkv, device="fakegpu").to(mg.bfloat16).requires_grad_()
        y = _packed_causal_attention(t, 2, 2)
        y.backward(mg.tensor(np.cos(np.arange(y.numel())).reshape(y.shape), device="fakegpu")
                   .to(mg.bfloat16))  # fmt: skip
        return y.detach().float().cpu().numpy(), t.grad.float().cpu().numpy()

    want = run()
    calls = _force(monkeypatch, SDPA)
    got = run()
    assert len(calls["cudnn.sdpa_train"]) == 1 and len(calls["cudnn.sdpa_grad"]) == 1
    q = calls["cudnn.sdpa_train"][0][0]
    assert q.shape == (2, 2, 6, 8) and calls["cudnn.sdpa_train"][0][4] is True
    for g, w_ in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w_, rtol=5e-2, atol=5e-2)


def test_multihead_attention_takes_cudnn_without_weights(monkeypatch):
    mg.manual_seed(0)
    mha = mg.nn.MultiheadAttention(16, 2, batch_first=True).to("fakegpu").to(mg.bfloat16)
    x = mg.randn(2, 5, 16, device="fakegpu").to(mg.bfloat16)
    want = mha(x, x, x, need_weights=False)[0].float().detach().cpu().numpy()
    calls = _force(monkeypatch, SDPA)
    got = mha(x, x, x, need_weights=False)[0]
    got.float().sum().backward()
    assert len(calls["cudnn.sdpa_train"]) == 1 and len(calls["cudnn.sdpa_grad"]) == 1
    np.testing.assert_allclose(got.float().detach().cpu().numpy(), want, rtol=5e-2, atol=5e-2)
