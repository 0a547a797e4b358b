"""xLSTM's mLSTM (Beck et al., 2024) in the manner of the reference code: a matrix-memory cell
run in a Python loop over time, C_t = f C_{t-1} + i v k^T and n_t = f n_{t-1} + i k per head,
with exponential input gates and log-sigmoid forget gates kept finite by the stabilizer state
m_t = max(log f_t + m_{t-1}, i~_t) (torch.maximum; or the smooth m_t = logsumexp(...) from
torch.logsumexp over a stacked pair), m starting at -inf, and the read-out
h = C q / max(|n.q|, exp(-m)). The parallel form of the same cell (cumulative log forget
gates, a lower-triangular log-decay matrix filled with -inf through torch.where, its row max or
row logsumexp as the stabilizer) checks the loop. The layer follows the reference mLSTM block:
up-projection into a cell branch and a gate branch, a causal depthwise Conv1d + SiLU feeding q
and k, gates from the concatenated q, k, v, a multi-head layer norm through F.group_norm with
a (1 + weight) scale, a learnable skip, SiLU output gating and a down-projection. Pre-norm
residual blocks learn multi-query associative recall with masked (ignore_index) targets,
AdamW with weight-decay groups, and a SequentialLR of LinearLR warm-up and cosine decay."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

IGNORE = -100


def mlstm_recurrent(q, k, v, igate_preact, fgate_preact, stabilizer="max", eps=1e-6):
    """q, k, v (B, NH, S, DH); gate pre-activations (B, NH, S, 1) -> h (B, NH, S, DH)."""
    B, NH, S, DH = q.shape
    k = k / math.sqrt(DH)
    C = q.new_zeros(B, NH, DH, DH)
    n = q.new_zeros(B, NH, DH)
    m = q.new_full((B, NH, 1), float("-inf"))
    hs = []
    for t in range(S):
        q_t, k_t, v_t = q[:, :, t], k[:, :, t], v[:, :, t]
        i_t, log_f_t = igate_preact[:, :, t], F.logsigmoid(fgate_preact[:, :, t])
        if stabilizer == "max":
            m_new = torch.maximum(log_f_t + m, i_t)
        else:
            m_new = torch.logsumexp(torch.stack([log_f_t + m, i_t]), dim=0)
        i = torch.exp(i_t - m_new)  # stabilised input gate
        f = torch.exp(log_f_t + m - m_new)  # stabilised forget gate
        C = f[..., None] * C + i[..., None] * (v_t[..., :, None] @ k_t[..., None, :])
        n = f * n + i * k_t
        num = (C @ q_t[..., None]).squeeze(-1)
        den = torch.maximum((n * q_t).sum(-1, keepdim=True).abs(), torch.exp(-m_new))
        hs.append(num / (den + eps))
        m = m_new
    return torch.stack(hs, dim=2)


def mlstm_parallel(q, k, v, igate_preact, fgate_preact, stabilizer="max", eps=1e-6):
    """The same cell over the whole sequence at once, with a (S, S) log-decay matrix."""
    B, NH, S, DH = q.shape
    log_fgates = F.logsigmoid(fgate_preact)  # (B, NH, S, 1)
    ltr = torch.tril(torch.ones((S, S), dtype=torch.bool, device=q.device))
    log_fgates_cumsum = torch.cat(
        [torch.zeros((B, NH, 1, 1), dtype=q.dtype, device=q.device),
         torch.cumsum(log_fgates, dim=-2)], dim=-2,
    )  # fmt: skip
    rep_log_fgates_cumsum = log_fgates_cumsum.repeat(1, 1, 1, S + 1)
    _log_fg_matrix = rep_log_fgates_cumsum - rep_log_fgates_cumsum.transpose(-2, -1)
    log_fg_matrix = torch.where(ltr, _log_fg_matrix[:, :, 1:, 1:], -float("inf"))
    log_D_matrix = log_fg_matrix + igate_preact.transpose(-2, -1)
    if stabilizer == "max":
        max_log_D, _ = torch.max(log_D_matrix, dim=-1, keepdim=True)
    else:
        max_log_D = torch.logsumexp(log_D_matrix, dim=-1, keepdim=True)
    D_matrix = torch.exp(log_D_matrix - max_log_D)
    keys_scaled = k / math.sqrt(DH)
    qk_matrix = q @ keys_scaled.transpose(-2, -1)
    C_matrix = qk_matrix * D_matrix
    normalizer = torch.maximum(C_matrix.sum(dim=-1, keepdim=True).abs(), torch.exp(-max_log_D))
    return (C_matrix / (normalizer + eps)) @ v


class MultiHeadLayerNorm(nn.Module):
    """Per-head layer norm through group_norm, scale stored as an offset from one."""

    def __init__(self, ndim, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(ndim))
        self.eps = eps

    def forward(self, x):
        B, NH, S, DH = x.shape
        gn_in = x.transpose(1, 2).reshape(B * S, NH * DH)
        out = F.group_norm(gn_in, num_groups=NH, weight=1.0 + self.weight, bias=None, eps=self.eps)
        return out.view(B, S, NH * DH)


class mLSTMLayer(nn.Module):  # noqa: N801 - the reference's name
    def __init__(self, d_model, num_heads=2, proj_factor=2, conv_kernel=4):
        super().__init__()
        self.inner = proj_factor * d_model
        self.num_heads = num_heads
        self.proj_up = nn.Linear(d_model, 2 * self.inner)
        self.conv1d = nn.Conv1d(self.inner, self.inner, conv_kernel, groups=self.inner,
                                padding=conv_kernel - 1)  # fmt: skip
        self.q_proj = nn.Linear(self.inner, self.inner, bias=False)
        self.k_proj = nn.Linear(self.inner, self.inner, bias=False)
        self.v_proj = nn.Linear(self.inner, self.inner, bias=False)
        self.igate = nn.Linear(3 * self.inner, num_heads)
        self.fgate = nn.Linear(3 * self.inner, num_heads)
        self.outnorm = MultiHeadLayerNorm(self.inner)
        self.learnable_skip = nn.Parameter(torch.ones(self.inner))
        self.proj_down = nn.Linear(self.inner, d_model)
        self.form, self.stabilizer = "recurrent", "max"

    def forward(self, x):
        B, S, _ = x.shape
        x_mlstm, z = torch.split(self.proj_up(x), self.inner, dim=-1)
        x_conv = self.conv1d(x_mlstm.transpose(1, 2))[..., :S].transpose(1, 2)  # causal
        x_conv_act = F.silu(x_conv)
        q, k, v = self.q_proj(x_conv_act), self.k_proj(x_conv_act), self.v_proj(x_mlstm)
        gate_in = torch.cat([q, k, v], dim=-1)
        i_pre = self.igate(gate_in).transpose(1, 2).unsqueeze(-1)  # (B, NH, S, 1)
        f_pre = self.fgate(gate_in).transpose(1, 2).unsqueeze(-1)

        def heads(t):
            return t.view(B, S, self.num_heads, -1).transpose(1, 2)  # (B, NH, S, DH)

        cell = mlstm_recurrent if self.form == "recurrent" else mlstm_parallel
        h = cell(heads(q), heads(k), heads(v), i_pre, f_pre, stabilizer=self.stabilizer)
        h_skip = self.outnorm(h) + self.learnable_skip * x_conv_act
        return self.proj_down(h_skip * F.silu(z))


class Block(nn.Module):
    def __init__(self, d_model, num_heads):
        super().__init__()
        self.norm = nn.LayerNorm(d_model, bias=False)
        self.mlstm = mLSTMLayer(d_model, num_heads)

    def forward(self, x):
        return x + self.mlstm(self.norm(x))


class xLSTMLM(nn.Module):  # noqa: N801
    def __init__(self, vocab_size, d_model=32, num_blocks=2, num_heads=2):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.blocks = nn.ModuleList([Block(d_model, num_heads) for _ in range(num_blocks)])
        self.post_blocks_norm = nn.LayerNorm(d_model, bias=False)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)

    def configure(self, form, stabilizer):
        for block in self.blocks:
            block.mlstm.form, block.mlstm.stabilizer = form, stabilizer

    def forward(self, idx):
        x = self.token_embedding(idx)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.post_blocks_norm(x))


def mqar_batch(rng, batch, n_keys=8, n_values=8, n_pairs=6, n_queries=4):
    """Key-value pairs, then queries of some keys: the target at a query is its value."""
    seq = []
    tgt = []
    for _ in range(batch):
        keys = rng.choice(n_keys, n_pairs, replace=False)
        values = rng.integers(0, n_values, n_pairs) + n_keys
        x = np.empty(2 * n_pairs, np.int64)
        x[0::2], x[1::2] = keys, values
        pick = rng.choice(n_pairs, n_queries, replace=False)
        x = np.concatenate([x, keys[pick]])
        y = np.full_like(x, IGNORE)
        y[2 * n_pairs :] = values[pick]
        seq.append(x)
        tgt.append(y)
    return torch.from_numpy(np.stack(seq)), torch.from_numpy(np.stack(tgt))


def main():
    parser = argparse.ArgumentParser(description="xLSTM mLSTM on associative recall")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--form", choices=["recurrent", "parallel"], default="recurrent")
    parser.add_argument("--stabilizer", choices=["max", "logsumexp"], default="max")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    vocab = 16
    model = xLSTMLM(vocab)
    model.configure(args.form, args.stabilizer)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or "embedding" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95),
    )  # fmt: skip
    warmup = 5
    scheduler = torch.optim.lr_scheduler.SequentialLR(
        optimizer,
        schedulers=[
            torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=warmup),
            torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.steps - warmup),
        ],
        milestones=[warmup],
    )

    for step in range(args.steps):
        x, y = mqar_batch(rng, args.batch_size)
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, vocab), y.view(-1), ignore_index=IGNORE)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if step % 5 == 4:
            print(f"step {step} loss {loss.item():.5f} grad norm {norm.item():.4f} "
                  f"lr {scheduler.get_last_lr()[0]:.2e}")  # fmt: skip

    model.eval()
    x, y = mqar_batch(rng, 64)
    mask = y != IGNORE
    with torch.no_grad():
        outs = {}
        for form in ("recurrent", "parallel"):
            model.configure(form, args.stabilizer)
            outs[form] = model(x)
        model.configure(args.form, args.stabilizer)
    for form, logits in outs.items():
        loss = F.cross_entropy(logits.view(-1, vocab), y.view(-1), ignore_index=IGNORE)
        acc = (logits.argmax(-1)[mask] == y[mask]).float().mean()
        print(f"{form} eval loss {loss.item():.5f} recall accuracy {acc.item():.3f}")
    gap = (outs["recurrent"] - outs["parallel"]).abs().max().item()
    print(f"recurrent vs parallel max gap {gap:.1e}")

    # one cell's gradients through the loop and through the parallel form
    g = np.random.default_rng(1)
    args_cell = [torch.tensor(g.standard_normal(s).astype(np.float32), requires_grad=True)
                 for s in [(2, 2, 7, 4)] * 3 + [(2, 2, 7, 1)] * 2]  # fmt: skip
    for cell in (mlstm_recurrent, mlstm_parallel):
        for a in args_cell:
            a.grad = None
        h = cell(*args_cell, stabilizer=args.stabilizer)
        (h * torch.linspace(-1, 1, h.numel()).view_as(h)).sum().backward()
        gnorm = torch.sqrt(sum((a.grad**2).sum() for a in args_cell))
        print(
            f"{cell.__name__} cell loss {h.pow(2).mean().item():.6f} grad norm {gnorm.item():.6f}"
        )


if __name__ == "__main__":
    main()
