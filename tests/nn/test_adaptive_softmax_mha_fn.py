"""AdaptiveLogSoftmaxWithLoss, F.multi_head_attention_forward, histogramdd and
Tensor.untyped_storage against PyTorch."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")
RNG = np.random.default_rng(0)


def _pair_asm(**kw):
    torch.manual_seed(0)
    t = torch.nn.AdaptiveLogSoftmaxWithLoss(16, 50, [5, 20, 35], **kw).double()
    m = mg.nn.AdaptiveLogSoftmaxWithLoss(16, 50, [5, 20, 35], **kw).to(mg.float64)
    m.load_state_dict({k: mg.tensor(v.numpy()) for k, v in t.state_dict().items()})
    return m, t


@pytest.mark.parametrize("kw", [{}, {"div_value": 2.0, "head_bias": True}])
def test_adaptive_log_softmax_equals_pytorch(kw, device):
    m, t = _pair_asm(**kw)
    assert list(m.state_dict()) == list(t.state_dict())
    m.to(device)
    x, y = RNG.standard_normal((12, 16)), RNG.integers(0, 50, 12)
    y[:4] = [0, 5, 20, 49]  # every cluster, and its edges
    xt, xm = torch.tensor(x, requires_grad=True), mg.tensor(x, device=device, requires_grad=True)
    ot, om = t(xt, torch.tensor(y)), m(xm, mg.tensor(y, device=device))
    np.testing.assert_allclose(om.output.detach().cpu().numpy(), ot.output.detach().numpy(),
                               rtol=1e-12)  # fmt: skip
    ot.loss.backward()
    om.loss.backward()
    np.testing.assert_allclose(xm.grad.cpu().numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-14)
    for a, b in zip(m.parameters(), t.parameters()):
        np.testing.assert_allclose(a.grad.cpu().numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-14)
    lp = m.log_prob(xm).detach().cpu().numpy()
    np.testing.assert_allclose(lp, t.log_prob(xt).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(np.exp(lp).sum(1), np.ones(12), rtol=1e-12)
    np.testing.assert_array_equal(m.predict(xm).cpu().numpy(), t.predict(xt).numpy())
    single = m(xm[0], mg.tensor(y[0], device=device))
    assert single.output.shape == () and float(single.loss) == pytest.approx(-float(om.output[0]))


def test_adaptive_log_softmax_bad_input():
    with pytest.raises(ValueError, match="cutoffs"):
        mg.nn.AdaptiveLogSoftmaxWithLoss(8, 10, [5, 3])
    m = mg.nn.AdaptiveLogSoftmaxWithLoss(8, 10, [5])
    with pytest.raises(RuntimeError, match=r"Target values should be in \[0, 9\]"):
        m(mg.randn(2, 8), mg.tensor([1, 10]))
    with pytest.raises(RuntimeError, match="same size in the batch"):
        m(mg.randn(3, 8), mg.tensor([1, 2]))


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("separate", [False, True])
def test_multi_head_attention_forward(batched, separate):
    L, S, N, E, H = 4, 5, 2, 8, 2  # noqa: N806
    shapes = [(L, N, E), (S, N, E), (S, N, E)] if batched else [(L, E), (S, E), (S, E)]
    q, k, v = (RNG.standard_normal(s) for s in shapes)
    w = RNG.standard_normal((3 * E, E)) * 0.3
    b, wo, bo = (
        RNG.standard_normal(3 * E) * 0.1,
        RNG.standard_normal((E, E)) * 0.3,
        RNG.standard_normal(E),
    )
    bk, bv = RNG.standard_normal((1, 1, E)), RNG.standard_normal((1, 1, E))
    kpm = np.zeros((N, S) if batched else (S,), bool)
    kpm[..., -1] = True
    mask = np.triu(np.ones((L, S), bool), 2)

    def run(lib):
        t = lib.tensor
        sep = dict(use_separate_proj_weight=True, q_proj_weight=t(w[:E]), k_proj_weight=t(w[E:2 * E]),
                   v_proj_weight=t(w[2 * E:])) if separate else {}  # fmt: skip
        out, att = lib.nn.functional.multi_head_attention_forward(
            t(q),
            t(k),
            t(v),
            E,
            H,
            None if separate else t(w),
            t(b),
            t(bk),
            t(bv),
            True,
            0.0,
            t(wo),
            t(bo),
            training=False,
            key_padding_mask=t(kpm),
            attn_mask=t(mask),
            **sep,
        )
        return out.detach().numpy(), att.detach().numpy()

    (om, am), (ot, at) = run(mg), run(torch)
    np.testing.assert_allclose(om, ot, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(am, at, rtol=1e-12, atol=1e-14)


def test_histogramdd_and_untyped_storage():
    x = RNG.standard_normal((200, 3))
    for kw in ({"bins": [3, 4, 2]}, {"bins": 4, "range": [-1.0, 1, -2, 2, -3, 3], "density": True}):
        got, want = mg.histogramdd(mg.tensor(x), **kw), torch.histogramdd(torch.tensor(x), **kw)
        np.testing.assert_allclose(got.hist.numpy(), want.hist.numpy(), rtol=1e-12)
        for a, b in zip(got.bin_edges, want.bin_edges):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
    a = mg.randn(4, 5)
    view, copy = a[1:, 2:], a[1:, 2:].clone()
    assert view.untyped_storage().data_ptr() == a.untyped_storage().data_ptr()
    assert copy.untyped_storage().data_ptr() != a.untyped_storage().data_ptr()
    t = torch.randn(4, 5)
    assert view.untyped_storage().nbytes() == t[1:, 2:].untyped_storage().nbytes() == 80
    with pytest.raises(NotImplementedError, match="own their memory"):
        a.untyped_storage().resize_(0)
