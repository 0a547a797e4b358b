"""An RWKV-style recurrent language model (Peng et al., 2023, RWKV-4): token shift through
F.pad (or torch.roll with the wrapped row zeroed), learnt per-channel mixing of each token
with its predecessor, a per-channel time decay exp(-exp(w)) and a bonus u for the current
token, the WKV recurrence as a Python loop over time that tracks the running maximum
exponent (torch.maximum) so that no exp overflows, channel mixing with a squared ReLU and a
sigmoid receptance gate. After each epoch the same weights run three ways: the training loop,
a parallel form (a masked (T, T) decay matrix from torch.exp(-torch.exp(w)) powers), and
token-by-token (or --chunk tokens at a time) recurrent inference carrying the state; their
losses must agree."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def shift(x, mode, last=None):
    """Each position sees its predecessor (zeros, or ``last`` from the previous chunk)."""
    if mode == "pad":
        out = F.pad(x, (0, 0, 1, -1))  # one row of zeros before, the last row dropped
    else:
        out = torch.roll(x, shifts=1, dims=1)
        first = torch.ones(x.size(1), 1, device=x.device)
        first[0] = 0.0
        out = out * first
    if last is not None:
        out[:, 0] = last
    return out


def wkv_loop(w, u, k, v, state=None):
    """WKV_t = (sum_{i<t} e^{-(t-1-i)e^w + k_i} v_i + e^{u+k_t} v_t) / (same without v_i),
    as a recurrence over (numerator a, denominator b, exponent p) kept relative to p."""
    b, t, c = k.shape
    if state is None:
        a = torch.zeros(b, c, device=k.device)
        den = torch.zeros(b, c, device=k.device)
        p = torch.full((b, c), -1e38, device=k.device)
    else:
        a, den, p = state
    log_decay = -torch.exp(w)
    out = []
    for i in range(t):
        kt, vt = k[:, i], v[:, i]
        bonus = u + kt
        q = torch.maximum(p, bonus)
        e1, e2 = torch.exp(p - q), torch.exp(bonus - q)
        out.append((e1 * a + e2 * vt) / (e1 * den + e2))
        decayed = p + log_decay
        q = torch.maximum(decayed, kt)
        e1, e2 = torch.exp(decayed - q), torch.exp(kt - q)
        a, den, p = e1 * a + e2 * vt, e1 * den + e2, q
    return torch.stack(out, dim=1), (a, den, p)


def wkv_parallel(w, u, k, v):
    """The same sums at once: weights decay^(t-1-i) for i < t, e^u on the diagonal."""
    t = k.size(1)
    decay = torch.exp(-torch.exp(w))  # (C,) in (0, 1)
    pos = torch.arange(t)
    gap = (pos[:, None] - 1 - pos[None, :]).clamp(min=0).float()  # (T, T)
    weights = decay[:, None, None] ** gap  # (C, T, T)
    past = torch.tril(torch.ones(t, t, dtype=torch.bool), diagonal=-1)
    weights = torch.where(past, weights, torch.zeros_like(weights))
    weights = weights + torch.diag_embed(torch.exp(u)[:, None].expand(-1, t))
    # NOTE: e^{k_i} is taken relative to its maximum over i, which cancels in the ratio
    ek = torch.exp(k - k.amax(dim=1, keepdim=True))  # (B, T, C)
    num = torch.einsum("cti,bic->btc", weights, ek * v)
    den = torch.einsum("cti,bic->btc", weights, ek)
    return num / den


class TimeMix(nn.Module):
    def __init__(self, d, layer, n_layers):
        super().__init__()
        ratio = 1.0 - layer / n_layers
        idx = torch.arange(d) / d
        self.time_decay = nn.Parameter(-5 + 8 * (torch.arange(d) / (d - 1)) ** 0.7)
        self.time_first = nn.Parameter(torch.full((d,), 0.5) + 0.3 * torch.cos(idx * 6.0))
        self.mix_k = nn.Parameter(idx**ratio)
        self.mix_v = nn.Parameter(idx**ratio + 0.3 * (1 - ratio))
        self.mix_r = nn.Parameter(idx ** (0.5 * ratio))
        self.key = nn.Linear(d, d, bias=False)
        self.value = nn.Linear(d, d, bias=False)
        self.receptance = nn.Linear(d, d, bias=False)
        self.output = nn.Linear(d, d, bias=False)

    def forward(self, x, mode="loop", shift_mode="pad", state=None):
        last, wkv_state = (None, None) if state is None else state
        xx = shift(x, shift_mode, last)
        k = self.key(x * self.mix_k + xx * (1 - self.mix_k))
        v = self.value(x * self.mix_v + xx * (1 - self.mix_v))
        r = self.receptance(x * self.mix_r + xx * (1 - self.mix_r))
        if mode == "parallel":
            wkv, wkv_state = wkv_parallel(self.time_decay, self.time_first, k, v), None
        else:
            wkv, wkv_state = wkv_loop(self.time_decay, self.time_first, k, v, wkv_state)
        return self.output(torch.sigmoid(r) * wkv), (x[:, -1], wkv_state)


class ChannelMix(nn.Module):
    def __init__(self, d, layer, n_layers, hidden):
        super().__init__()
        ratio = 1.0 - layer / n_layers
        idx = torch.arange(d) / d
        self.mix_k = nn.Parameter(idx**ratio)
        self.mix_r = nn.Parameter(idx**ratio)
        self.key = nn.Linear(d, hidden, bias=False)
        self.receptance = nn.Linear(d, d, bias=False)
        self.value = nn.Linear(hidden, d, bias=False)

    def forward(self, x, shift_mode="pad", last=None):
        xx = shift(x, shift_mode, last)
        k = torch.square(torch.relu(self.key(x * self.mix_k + xx * (1 - self.mix_k))))
        r = torch.sigmoid(self.receptance(x * self.mix_r + xx * (1 - self.mix_r)))
        return r * self.value(k), x[:, -1]


class Block(nn.Module):
    def __init__(self, d, layer, n_layers):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.att = TimeMix(d, layer, n_layers)
        self.ffn = ChannelMix(d, layer, n_layers, 4 * d)

    def forward(self, x, mode, shift_mode, state):
        att_state, ffn_last = (None, None) if state is None else state
        h, att_state = self.att(self.ln1(x), mode, shift_mode, att_state)
        x = x + h
        h, ffn_last = self.ffn(self.ln2(x), shift_mode, ffn_last)
        return x + h, (att_state, ffn_last)


class RWKV(nn.Module):
    def __init__(self, vocab, d=32, n_layers=2, shift_mode="pad"):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.ln0 = nn.LayerNorm(d)
        self.blocks = nn.ModuleList(Block(d, i, n_layers) for i in range(n_layers))
        self.ln_out = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.shift_mode = shift_mode

    def forward(self, idx, mode="loop", state=None):
        x = self.ln0(self.emb(idx))
        state = state or [None] * len(self.blocks)
        new_state = []
        for block, s in zip(self.blocks, state):
            x, s = block(x, mode, self.shift_mode, s)
            new_state.append(s)
        return self.head(self.ln_out(x)), new_state


def make_corpus(rng, n, length, vocab):
    """Noisy copies: a random key of 4 tokens, then the key repeated with some noise, so the
    model has to remember tokens several steps back."""
    seqs = []
    for _ in range(n):
        key = rng.integers(0, vocab, 4)
        reps = np.tile(key, length // 4 + 1)[:length]
        noise = rng.random(length) < 0.1
        seqs.append(np.where(noise, rng.integers(0, vocab, length), reps))
    return torch.from_numpy(np.stack(seqs).astype(np.int64))


@torch.no_grad()
def chunked_loss(model, seqs, chunk):
    """Recurrent inference over ``chunk`` tokens at a time, the state carried across."""
    inputs, targets = seqs[:, :-1], seqs[:, 1:]
    state, logits = None, []
    for start in range(0, inputs.size(1), chunk):
        out, state = model(inputs[:, start : start + chunk], "loop", state)
        logits.append(out)
    logits = torch.cat(logits, dim=1)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def main():
    parser = argparse.ArgumentParser(description="RWKV time mixing on noisy copies")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--shift", choices=["pad", "roll"], default="pad")
    parser.add_argument("--chunk", type=int, default=1)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    vocab, length = 10, 17
    data = make_corpus(rng, 112, length, vocab)
    train, val = data[:96], data[96:]
    model = RWKV(vocab, shift_mode=args.shift)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99))

    for epoch in range(args.epochs):
        model.train()
        total, batches = 0.0, 0
        for i in range(0, len(train), args.batch_size):
            batch = train[i : i + args.batch_size]
            logits, _ = model(batch[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, vocab), batch[:, 1:].reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
            batches += 1
        model.eval()
        with torch.no_grad():
            logits, _ = model(val[:, :-1])
            val_loss = F.cross_entropy(logits.transpose(1, 2), val[:, 1:])
            par_logits, _ = model(val[:, :-1], mode="parallel")
            par_loss = F.cross_entropy(par_logits.transpose(1, 2), val[:, 1:])
        rec_loss = chunked_loss(model, val, args.chunk)
        gap = (par_logits - logits).abs().max().item()
        print(
            f"epoch {epoch} loss {total / batches:.6f} val loss {val_loss.item():.6f} "
            f"parallel loss {par_loss.item():.6f} recurrent loss {rec_loss.item():.6f} "
            f"agree {gap < 1e-4}"
        )


if __name__ == "__main__":
    main()
