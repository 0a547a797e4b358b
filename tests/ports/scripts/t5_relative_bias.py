"""A tiny T5-style encoder-decoder (Raffel et al., 2020) learning to reverse and shift digit
strings: a hand-written RMSNorm (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)),
bucketed relative position biases (torch.log, torch.where, torch.full_like, torch.min,
.to(torch.long)), bidirectional in the encoder and causal in the decoder, unscaled attention
with a padding bias from torch.finfo().min, cross-attention, input and output embeddings tied
(the decoder output rescaled by d_model ** -0.5), teacher forcing with labels shifted right
and padded with -100, F.cross_entropy(ignore_index=-100, label_smoothing), Adam with an
inverse-square-root LambdaLR warm-up, and greedy decoding scored by exact match."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PAD, EOS, FIRST_DIGIT = 0, 1, 2
IGNORE = -100


class RMSNorm(nn.Module):
    """T5's layer norm: no mean subtraction and no bias, only a learnt scale."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps))


def relative_bucket(relative_position, bidirectional, num_buckets, max_distance):
    """Maps key - query offsets to buckets: exact for small offsets, logarithmic beyond."""
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets = num_buckets // 2
        buckets = buckets + (relative_position > 0).to(torch.long) * num_buckets
        distance = torch.abs(relative_position)
    else:
        # a decoder query only sees the past: future offsets all land in bucket 0
        distance = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    # NOTE: the log of a zero distance is -inf; torch.where discards those entries below
    scaled = torch.log(distance.float() / max_exact) / math.log(max_distance / max_exact)
    large = max_exact + (scaled * (num_buckets - max_exact)).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return buckets + torch.where(is_small, distance, large)


class Attention(nn.Module):
    def __init__(self, d_model, n_heads, d_kv, relative_bias=False, bidirectional=True,
                 num_buckets=16, max_distance=32):  # fmt: skip
        super().__init__()
        self.n_heads, self.d_kv = n_heads, d_kv
        inner = n_heads * d_kv
        self.q = nn.Linear(d_model, inner, bias=False)
        self.k = nn.Linear(d_model, inner, bias=False)
        self.v = nn.Linear(d_model, inner, bias=False)
        self.o = nn.Linear(inner, d_model, bias=False)
        self.bidirectional = bidirectional
        self.num_buckets, self.max_distance = num_buckets, max_distance
        self.relative_bias = nn.Embedding(num_buckets, n_heads) if relative_bias else None

    def position_bias(self, q_len, k_len, device):
        context = torch.arange(q_len, dtype=torch.long, device=device)[:, None]
        memory = torch.arange(k_len, dtype=torch.long, device=device)[None, :]
        buckets = relative_bucket(
            memory - context, self.bidirectional, self.num_buckets, self.max_distance
        )
        values = self.relative_bias(buckets)  # (q, k, heads)
        return values.permute(2, 0, 1).unsqueeze(0)  # (1, heads, q, k)

    def split(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.d_kv).transpose(1, 2)

    def forward(self, x, kv=None, mask=None, position_bias=None):
        kv = x if kv is None else kv
        q, k, v = self.split(self.q(x)), self.split(self.k(kv)), self.split(self.v(kv))
        # NOTE: T5 folds the 1/sqrt(d) scale into the initialisation, not the scores
        scores = torch.matmul(q, k.transpose(-1, -2))
        if position_bias is None and self.relative_bias is not None:
            position_bias = self.position_bias(x.size(1), kv.size(1), x.device)
        if position_bias is not None:
            scores = scores + position_bias
        if mask is not None:
            scores = scores + mask
        weights = F.softmax(scores.float(), dim=-1).type_as(scores)
        out = torch.matmul(weights, v).transpose(1, 2).reshape(x.size(0), x.size(1), -1)
        return self.o(out), position_bias


class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.wi = nn.Linear(d_model, d_ff, bias=False)
        self.wo = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x):
        return self.wo(F.relu(self.wi(x)))


class EncoderBlock(nn.Module):
    def __init__(self, d_model, n_heads, d_kv, d_ff, has_bias):
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(d_model), RMSNorm(d_model)
        self.attn = Attention(d_model, n_heads, d_kv, relative_bias=has_bias)
        self.ff = FeedForward(d_model, d_ff)

    def forward(self, x, mask, position_bias):
        h, position_bias = self.attn(self.norm1(x), mask=mask, position_bias=position_bias)
        x = x + h
        return x + self.ff(self.norm2(x)), position_bias


class DecoderBlock(nn.Module):
    def __init__(self, d_model, n_heads, d_kv, d_ff, has_bias):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = RMSNorm(d_model), RMSNorm(d_model), RMSNorm(d_model)
        self.self_attn = Attention(
            d_model, n_heads, d_kv, relative_bias=has_bias, bidirectional=False
        )
        self.cross_attn = Attention(d_model, n_heads, d_kv)
        self.ff = FeedForward(d_model, d_ff)

    def forward(self, x, memory, self_mask, cross_mask, position_bias):
        h, position_bias = self.self_attn(
            self.norm1(x), mask=self_mask, position_bias=position_bias
        )
        x = x + h
        x = x + self.cross_attn(self.norm2(x), kv=memory, mask=cross_mask)[0]
        return x + self.ff(self.norm3(x)), position_bias


class TinyT5(nn.Module):
    def __init__(self, vocab, d_model=32, n_heads=4, d_kv=8, d_ff=64, layers=2):
        super().__init__()
        self.d_model = d_model
        self.shared = nn.Embedding(vocab, d_model)
        # only the first block of each stack owns a bias table; later blocks reuse its output
        self.encoder = nn.ModuleList(
            EncoderBlock(d_model, n_heads, d_kv, d_ff, i == 0) for i in range(layers)
        )
        self.decoder = nn.ModuleList(
            DecoderBlock(d_model, n_heads, d_kv, d_ff, i == 0) for i in range(layers)
        )
        self.enc_norm, self.dec_norm = RMSNorm(d_model), RMSNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab, bias=False)
        self.lm_head.weight = self.shared.weight

    def padding_bias(self, ids, dtype):
        keep = (ids != PAD)[:, None, None, :]
        return (1.0 - keep.to(dtype)) * torch.finfo(dtype).min

    def encode(self, src):
        x = self.shared(src)
        mask = self.padding_bias(src, x.dtype)
        bias = None
        for block in self.encoder:
            x, bias = block(x, mask, bias)
        return self.enc_norm(x), mask

    def decode(self, tgt_in, memory, cross_mask):
        y = self.shared(tgt_in)
        t = tgt_in.size(1)
        future = torch.triu(torch.ones(t, t, dtype=torch.bool, device=y.device), diagonal=1)
        self_mask = torch.zeros(t, t, dtype=y.dtype).masked_fill(future, torch.finfo(y.dtype).min)
        bias = None
        for block in self.decoder:
            y, bias = block(y, memory, self_mask, cross_mask, bias)
        y = self.dec_norm(y) * self.d_model**-0.5  # rescaled because the head is tied
        return self.lm_head(y)

    def forward(self, src, tgt_in):
        memory, cross_mask = self.encode(src)
        return self.decode(tgt_in, memory, cross_mask)


def shift_right(labels):
    """Teacher forcing input: PAD as the start token, then the labels with -100 as PAD."""
    shifted = labels.new_zeros(labels.shape)
    shifted[:, 1:] = labels[:, :-1].clone()
    shifted[:, 0] = PAD
    return shifted.masked_fill(shifted == IGNORE, PAD)


def make_pairs(rng, n, max_len, base):
    """Digit strings; the target is the string reversed with every digit plus one (mod base)."""
    srcs, tgts = [], []
    for _ in range(n):
        length = int(rng.integers(3, max_len + 1))
        digits = rng.integers(0, base, length)
        srcs.append(list(digits + FIRST_DIGIT) + [EOS])
        tgts.append(list((digits[::-1] + 1) % base + FIRST_DIGIT) + [EOS])
    width_s = max(len(s) for s in srcs)
    width_t = max(len(t) for t in tgts)
    src = torch.full((n, width_s), PAD, dtype=torch.long)
    labels = torch.full((n, width_t), IGNORE, dtype=torch.long)
    for i, (s, t) in enumerate(zip(srcs, tgts)):
        src[i, : len(s)] = torch.tensor(s)
        labels[i, : len(t)] = torch.tensor(t)
    return src, labels


@torch.no_grad()
def greedy_decode(model, src, steps):
    memory, cross_mask = model.encode(src)
    out = torch.full((src.size(0), 1), PAD, dtype=torch.long)
    for _ in range(steps):
        logits = model.decode(out, memory, cross_mask)
        out = torch.cat([out, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return out[:, 1:]


def main():
    parser = argparse.ArgumentParser(description="tiny T5 with relative position buckets")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    base, max_len = 6, 7
    vocab = FIRST_DIGIT + base
    train_src, train_labels = make_pairs(rng, 192, max_len, base)
    val_src, val_labels = make_pairs(rng, 48, max_len, base)

    model = TinyT5(vocab)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.98), eps=1e-9)

    def inverse_sqrt(step):
        step = step + 1
        return min(step / args.warmup, math.sqrt(args.warmup / step))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, inverse_sqrt)

    for epoch in range(args.epochs):
        model.train()
        total, batches = 0.0, 0
        for i in range(0, len(train_src), args.batch_size):
            src = train_src[i : i + args.batch_size]
            labels = train_labels[i : i + args.batch_size]
            logits = model(src, shift_right(labels))
            loss = F.cross_entropy(
                logits.reshape(-1, vocab),
                labels.reshape(-1),
                ignore_index=IGNORE,
                label_smoothing=args.label_smoothing,
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item()
            batches += 1

        model.eval()
        with torch.no_grad():
            logits = model(val_src, shift_right(val_labels))
            val_loss = (
                F.cross_entropy(
                    logits.transpose(1, 2), val_labels, ignore_index=IGNORE, reduction="sum"
                )
                / (val_labels != IGNORE).sum()
            )
        decoded = greedy_decode(model, val_src, val_labels.size(1))
        valid = val_labels != IGNORE
        correct = ((decoded == val_labels) | ~valid).all(dim=1).float().mean()
        token_acc = (decoded == val_labels)[valid].float().mean()
        print(
            f"epoch {epoch} loss {total / batches:.6f} val loss {val_loss.item():.6f} "
            f"token acc {token_acc.item():.3f} exact {correct.item():.3f} "
            f"lr {scheduler.get_last_lr()[0]:.6f}"
        )


if __name__ == "__main__":
    main()
