"""A minimal Mamba (Gu & Dao, 2023) in the manner of the readable single-file ports: each block
projects the input in two (in_proj, split), runs a depthwise causal Conv1d (padding, then the
extra outputs sliced off) and SiLU, and a selective state-space scan whose step sizes come from
softplus(dt_proj(...)) and whose state matrix is A = -exp(A_log), discretized with einsum; the
scan runs step by step with torch.stack, and a parallel form (cumulative sums of the log decay,
a masked segment sum, as in Mamba-2's minimal SSD) checks it. Pre-norm residual blocks with
nn.RMSNorm, tied embeddings, Adam, on a selective-copying task."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class MambaBlock(nn.Module):
    def __init__(self, d_model, d_state=8, expand=2, d_conv=4, dt_rank=None):
        super().__init__()
        self.d_inner = expand * d_model
        self.d_state = d_state
        self.dt_rank = dt_rank or math.ceil(d_model / 16)
        self.in_proj = nn.Linear(d_model, self.d_inner * 2, bias=False)
        self.conv1d = nn.Conv1d(
            self.d_inner, self.d_inner, kernel_size=d_conv, groups=self.d_inner,
            padding=d_conv - 1, bias=True,
        )  # fmt: skip
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        A = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(A))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        self.parallel = False

    def forward(self, x):
        _, seqlen, _ = x.shape
        x_and_res = self.in_proj(x)
        x, res = x_and_res.split(split_size=[self.d_inner, self.d_inner], dim=-1)
        x = x.transpose(1, 2)  # (b, d_inner, l) for the convolution
        x = self.conv1d(x)[:, :, :seqlen]  # causal: drop the outputs that see the future
        x = F.silu(x.transpose(1, 2))
        y = self.ssm(x)
        y = y * F.silu(res)
        return self.out_proj(y)

    def ssm(self, x):
        A = -torch.exp(self.A_log.float())  # (d_inner, n)
        D = self.D.float()
        x_dbl = self.x_proj(x)
        delta, B, C = x_dbl.split(split_size=[self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(delta))  # (b, l, d_inner)
        scan = selective_scan_parallel if self.parallel else selective_scan
        return scan(x, delta, A, B, C, D)


def selective_scan(u, delta, A, B, C, D):  # noqa: N803 - the paper's names
    """h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t,  y_t = C_t h_t + D u_t, one step at a time."""
    b, seqlen, d_in = u.shape
    n = A.shape[1]
    deltaA = torch.exp(torch.einsum("bld,dn->bldn", delta, A))
    deltaB_u = torch.einsum("bld,bln,bld->bldn", delta, B, u)
    h = torch.zeros((b, d_in, n), device=u.device)
    ys = []
    for i in range(seqlen):
        h = deltaA[:, i] * h + deltaB_u[:, i]
        ys.append(torch.einsum("bdn,bn->bd", h, C[:, i, :]))
    y = torch.stack(ys, dim=1)  # (b, l, d_in)
    return y + u * D


def segsum(x):
    """out[..., i, j] = x[..., j+1] + ... + x[..., i] for j <= i, -inf above the diagonal."""
    T = x.size(-1)
    x_cumsum = torch.cumsum(x, dim=-1)
    x_segsum = x_cumsum[..., :, None] - x_cumsum[..., None, :]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool, device=x.device), diagonal=0)
    return x_segsum.masked_fill(~mask, -torch.inf)


def selective_scan_parallel(u, delta, A, B, C, D):  # noqa: N803
    """The same recurrence unrolled: y_i = sum_{j<=i} C_i . exp(sum_{j<k<=i} delta_k A) B_j
    delta_j u_j, one masked (l x l) decay matrix per channel and state."""
    log_decay = torch.einsum("bld,dn->bdnl", delta, A)  # log of exp(delta A), time last
    L = torch.exp(segsum(log_decay))  # (b, d_in, n, l, l)
    y = torch.einsum("bin,bdnij,bjn,bjd->bid", C, L, B, delta * u)
    return y + u * D


class ResidualBlock(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.mixer = MambaBlock(d_model)
        self.norm = nn.RMSNorm(d_model, eps=1e-5)

    def forward(self, x):
        return self.mixer(self.norm(x)) + x


class Mamba(nn.Module):
    def __init__(self, vocab_size, d_model=32, n_layer=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.layers = nn.ModuleList([ResidualBlock(d_model) for _ in range(n_layer)])
        self.norm_f = nn.RMSNorm(d_model, eps=1e-5)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self.lm_head.weight = self.embedding.weight  # tied, as in the reference

    def set_parallel(self, flag):
        for layer in self.layers:
            layer.mixer.parallel = flag

    def forward(self, input_ids):
        x = self.embedding(input_ids)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.norm_f(x))


def selective_copy_batch(rng, batch, n_tokens=4, seq_len=12, vocab=10):
    """n_tokens data tokens (1..vocab-3) scattered among noise (0) in the first seq_len cells,
    then a marker (vocab-2) and blanks (vocab-1) where the model must recall them in order."""
    x = np.zeros((batch, seq_len + 1 + n_tokens), dtype=np.int64)
    y = np.full((batch, n_tokens), 0, dtype=np.int64)
    for b in range(batch):
        pos = np.sort(rng.choice(seq_len, n_tokens, replace=False))
        tokens = rng.integers(1, vocab - 2, n_tokens)
        x[b, pos] = tokens
        y[b] = tokens
    x[:, seq_len] = vocab - 2
    x[:, seq_len + 1 :] = vocab - 1
    return torch.from_numpy(x), torch.from_numpy(y)


def main():
    parser = argparse.ArgumentParser(description="minimal Mamba on selective copying")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--n-tokens", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    vocab, n_tokens = 10, args.n_tokens
    model = Mamba(vocab)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters {n_params}")

    for step in range(args.steps):
        x, y = selective_copy_batch(rng, args.batch_size, n_tokens, vocab=vocab)
        logits = model(x)[:, -n_tokens:]
        loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 5 == 4:
            print(f"step {step} loss: {loss.item():.5f} grad norm {grad_norm.item():.4f}")

    model.eval()
    x, y = selective_copy_batch(rng, 64, n_tokens, vocab=vocab)
    with torch.no_grad():
        seq = model(x)[:, -n_tokens:]
        model.set_parallel(True)
        par = model(x)[:, -n_tokens:]
        model.set_parallel(False)
        val_loss = F.cross_entropy(seq.reshape(-1, vocab), y.reshape(-1))
        par_loss = F.cross_entropy(par.reshape(-1, vocab), y.reshape(-1))
        acc = (seq.argmax(-1) == y).float().mean()
    print(
        f"val loss: {val_loss.item():.5f} parallel scan loss: {par_loss.item():.5f} acc {acc:.3f}"
    )
    print(f"scan gap {(seq - par).abs().max().item():.2e}")

    # the parallel form trains too: the gradients of one batch through both forms
    model.train()
    x, y = selective_copy_batch(rng, 16, n_tokens, vocab=vocab)
    losses, grads = [], []
    for flag in (False, True):
        model.set_parallel(flag)
        model.zero_grad()
        loss = F.cross_entropy(model(x)[:, -n_tokens:].reshape(-1, vocab), y.reshape(-1))
        loss.backward()
        losses.append(loss.item())
        grads.append([p.grad.clone() for p in model.parameters()])
    gap = max((g1 - g0).abs().max().item() for g0, g1 in zip(*grads))
    print(f"sequential loss: {losses[0]:.5f} parallel loss: {losses[1]:.5f} grad gap {gap:.2e}")


if __name__ == "__main__":
    main()
