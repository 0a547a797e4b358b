"""flex_attention, create_block_mask and create_mask against PyTorch: the outputs of
PyTorch's own flex_attention (forward: its CPU kernel has no backward) and, for gradients,
a dense masked-softmax reference written in PyTorch."""

import warnings

import numpy as np
import pytest
import torch
from torch.nn.attention import flex_attention as tfa

import manygrad as mg
from manygrad.nn.attention import flex_attention as mfa

B, H, L, S, E = 2, 3, 6, 9, 4


def _qkv(seed=0, hq=H, hkv=H, ev=E, dtype=np.float32):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((B, hq, L, E)).astype(dtype)
    k = rng.standard_normal((B, hkv, S, E)).astype(dtype)
    v = rng.standard_normal((B, hkv, S, ev)).astype(dtype)
    return q, k, v


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def sliding(b, h, q_idx, kv_idx):
    return (q_idx - kv_idx).abs() <= 2


def alibi(score, b, h, q_idx, kv_idx):
    return score - (h + 1) * 0.25 * (q_idx - kv_idx).abs()


def batch_doc(b, h, q_idx, kv_idx):  # a different pattern per batch element
    return (q_idx // 3 == kv_idx // 3) | (b == 1)


def _torch_reference(q, k, v, score_mod=None, mask_mod=None, scale=None):
    """Dense PyTorch: scores, score_mod, mask, softmax (empty rows give 0), product."""
    scale = 1 / q.shape[-1] ** 0.5 if scale is None else scale
    if k.shape[1] != q.shape[1]:
        r = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(r, 1), v.repeat_interleave(r, 1)
    s = q @ k.transpose(-1, -2) * scale
    bi = torch.arange(q.shape[0]).view(-1, 1, 1, 1)
    hi = torch.arange(q.shape[1]).view(1, -1, 1, 1)
    qi = torch.arange(q.shape[2]).view(1, 1, -1, 1)
    ki = torch.arange(k.shape[2]).view(1, 1, 1, -1)
    if score_mod is not None:
        s = score_mod(s, bi, hi, qi, ki)
    if mask_mod is not None:
        s = s.masked_fill(~mask_mod(bi, hi, qi, ki).expand(s.shape), float("-inf"))
    empty = torch.isneginf(s).all(-1, keepdim=True)
    p = torch.where(empty, 0.0, torch.softmax(torch.where(empty, 0.0, s), -1))
    lse = torch.where(empty.squeeze(-1), float("-inf"), torch.logsumexp(s, -1))
    return p @ v, lse


def _torch_flex(q, k, v, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tfa.flex_attention(q, k, v, **kw)


@pytest.mark.parametrize(
    "score_mod,mask_mod", [(None, None), (alibi, None), (None, causal), (alibi, sliding),
                           (None, batch_doc)],
    ids=["plain", "alibi", "causal", "alibi-sliding", "per-batch"],
)  # fmt: skip
def test_forward_matches_pytorch_flex_attention(score_mod, mask_mod):
    q, k, v = _qkv()
    tq, tk, tv = (torch.tensor(a) for a in (q, k, v))
    mq, mk, mv = (mg.tensor(a) for a in (q, k, v))
    tbm = mbm = None
    if mask_mod is not None:
        tbm = tfa.create_block_mask(mask_mod, B, None, L, S, device="cpu", BLOCK_SIZE=4)
        mbm = mfa.create_block_mask(mask_mod, B, None, L, S, BLOCK_SIZE=4)
    want, wlse = _torch_flex(tq, tk, tv, score_mod=score_mod, block_mask=tbm, return_lse=True)
    got, glse = mfa.flex_attention(mq, mk, mv, score_mod=score_mod, block_mask=mbm,
                                   return_lse=True)  # fmt: skip
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(glse.numpy(), wlse.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "score_mod,mask_mod,gqa", [(None, None, False), (alibi, causal, False),
                               (alibi, sliding, True), (None, batch_doc, True)],
)  # fmt: skip
def test_gradients_match_the_dense_reference(score_mod, mask_mod, gqa):
    q, k, v = _qkv(1, hq=H * 2 if gqa else H, ev=5)
    tq, tk, tv = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (q, k, v))
    mq, mk, mv = (mg.tensor(a, dtype=mg.float64, requires_grad=True) for a in (q, k, v))
    want, wlse = _torch_reference(tq, tk, tv, score_mod, mask_mod, scale=0.7)
    bm = None if mask_mod is None else mfa.create_block_mask(mask_mod, B, None, L, S, BLOCK_SIZE=4)
    got, glse = mfa.flex_attention(mq, mk, mv, score_mod=score_mod, block_mask=bm, scale=0.7,
                                   enable_gqa=gqa, return_lse=True)  # fmt: skip
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(2).standard_normal(tuple(want.shape))
    (want * torch.tensor(g)).sum().backward()
    (got * mg.tensor(g)).sum().backward()
    for m, t in ((mq, tq), (mk, tk), (mv, tv)):
        np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(glse.detach().numpy(), wlse.detach().numpy(), rtol=1e-6)


def test_rows_with_nothing_kept_give_zero_and_finite_gradients():
    q, k, v = _qkv(3)

    def late(b, h, q_idx, kv_idx):
        return kv_idx <= q_idx - 3  # the first 3 query rows keep nothing

    mq, mk, mv = (mg.tensor(a, requires_grad=True) for a in (q, k, v))
    bm = mfa.create_block_mask(late, None, None, L, S)
    out, lse = mfa.flex_attention(mq, mk, mv, block_mask=bm, return_lse=True)
    assert (out[:, :, :3].detach().numpy() == 0).all()
    assert np.isneginf(lse[:, :, :3].detach().numpy()).all()
    out.sum().backward()
    for t in (mq, mk, mv):
        assert np.isfinite(t.grad.numpy()).all()
    tq, tk, tv = (torch.tensor(a) for a in (q, k, v))
    tbm = tfa.create_block_mask(late, None, None, L, S, device="cpu")
    want = _torch_flex(tq, tk, tv, block_mask=tbm)
    np.testing.assert_allclose(out.detach().numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


def test_score_mod_with_a_learned_bias_table_gets_its_gradient():
    rel = np.random.default_rng(4).standard_normal(L + S).astype(np.float64)
    q, k, v = _qkv(5)
    tbias = torch.tensor(rel, requires_grad=True)
    mbias = mg.tensor(rel, requires_grad=True)

    def mod(lib_bias):
        return lambda score, b, h, qi, ki: score + lib_bias[qi - ki + S]

    tq, tk, tv = (torch.tensor(a, dtype=torch.float64) for a in (q, k, v))
    want, _ = _torch_reference(tq, tk, tv, mod(tbias), causal)
    bm = mfa.create_block_mask(causal, None, None, L, S)
    got = mfa.flex_attention(*(mg.tensor(a, dtype=mg.float64) for a in (q, k, v)),
                             score_mod=mod(mbias), block_mask=bm)  # fmt: skip
    want.pow(2).sum().backward()
    got.pow(2).sum().backward()
    np.testing.assert_allclose(mbias.grad.numpy(), tbias.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_half_precision_output_and_float32_lse():
    q, k, v = _qkv(6)
    out, lse = mfa.flex_attention(*(mg.tensor(a).half() for a in (q, k, v)), return_lse=True)
    want, wlse = _torch_flex(*(torch.tensor(a).half() for a in (q, k, v)), return_lse=True)
    assert out.dtype is mg.float16 and lse.dtype is mg.float32 and wlse.dtype == torch.float32
    np.testing.assert_allclose(out.float().numpy(), want.float().numpy(), rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize("q_len,kv_len,block", [(300, 300, 128), (5, 7, 128), (10, 13, 4)])
def test_block_mask_layout_matches_pytorch(q_len, kv_len, block):
    t = tfa.create_block_mask(causal, 1, 2, q_len, kv_len, device="cpu", BLOCK_SIZE=block)
    m = mfa.create_block_mask(causal, 1, 2, q_len, kv_len, BLOCK_SIZE=block)
    for name in ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices",
                 "q_num_blocks", "q_indices", "full_q_num_blocks", "full_q_indices"):  # fmt: skip
        np.testing.assert_array_equal(getattr(m, name).numpy(), getattr(t, name).numpy(), name)
    np.testing.assert_array_equal(m.to_dense().numpy(), t.to_dense().numpy())
    assert m.shape == t.shape and m.BLOCK_SIZE == t.BLOCK_SIZE
    assert m.sparsity() == pytest.approx(t.sparsity())


def test_create_mask_and_mask_combinators_match_pytorch():
    for fn in (causal, tfa.and_masks(causal, sliding), tfa.or_masks(causal, sliding)):
        want = tfa.create_mask(fn, B, H, L, S, device="cpu")
        mine = {causal: causal}.get(fn)
        if mine is None:
            comb = mfa.and_masks if "and" in fn.__qualname__ else mfa.or_masks
            mine = comb(causal, sliding)
        got = mfa.create_mask(mine, B, H, L, S)
        assert got.dtype is mg.bool and tuple(got.shape) == tuple(want.shape)
        np.testing.assert_array_equal(got.numpy(), want.numpy())

    def neg(score, b, h, qi, ki):
        return torch.where(qi >= ki, score, float("-inf"))

    def neg_mg(score, b, h, qi, ki):
        return mg.where(qi >= ki, score, float("-inf"))

    want = tfa.create_mask(neg, 1, 1, L, S, device="cpu")
    np.testing.assert_array_equal(mfa.create_mask(neg_mg, 1, 1, L, S).numpy(), want.numpy())


def test_errors_as_pytorch():
    q, k, v = _qkv(7, hq=H * 2)
    mq, mk, mv = (mg.tensor(a) for a in (q, k, v))
    with pytest.raises(ValueError, match="enable_gqa=True"):
        mfa.flex_attention(mq, mk, mv)
    with pytest.raises(ValueError, match="multiple of kv heads"):
        mfa.flex_attention(mg.tensor(_qkv(7, hq=4, hkv=3)[0]), *(mg.tensor(a) for a in
                           _qkv(7, hq=4, hkv=3)[1:]), enable_gqa=True)  # fmt: skip
    bm = mfa.create_block_mask(causal, None, None, L + 3, S)
    with pytest.raises(ValueError, match="block_mask was created for"):
        mfa.flex_attention(*(mg.tensor(a) for a in _qkv(8)), block_mask=bm)
    with pytest.raises(ValueError, match="4-d"):
        mfa.flex_attention(mg.randn(2, 3, 4), mg.randn(2, 3, 4), mg.randn(2, 3, 4))


def test_imported_as_torch_nn_attention_flex_attention():
    from manygrad import compat

    compat.install()
    try:
        import torch.nn.attention.flex_attention as fa  # noqa: F811  (manygrad's, installed)

        assert fa.flex_attention is mfa.flex_attention
    finally:
        compat.uninstall()
