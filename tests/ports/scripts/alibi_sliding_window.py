"""A decoder-only language model with ALiBi (Press et al., 2022) instead of position
embeddings, attending through a sliding window: per-head linear distance penalties with
geometric slopes, a window mask built from torch.triu / torch.tril with diagonal= and
masked_fill(-inf), added to the ALiBi biases as one float mask for
F.scaled_dot_product_attention(attn_mask=...) or a hand-written softmax path (--manual);
nn.GELU(approximate="tanh"), AdamW with weight-decay groups (no decay on norms, biases and
embeddings), clip_grad_norm_, and sampling at a temperature with top-k filtering
(torch.topk, torch.multinomial), scored by the model's own loss on its samples."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def alibi_slopes(n_heads):
    """Geometric slopes 2^(-8/n), 2^(-16/n), ...; interleaved when n is not a power of two."""

    def power_of_two(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n_heads).is_integer():
        return torch.tensor(power_of_two(n_heads))
    closest = 2 ** math.floor(math.log2(n_heads))
    extra = power_of_two(2 * closest)[0::2][: n_heads - closest]
    return torch.tensor(power_of_two(closest) + extra)


def window_bias(n_heads, t, window):
    """(heads, t, t) float mask: -slope * distance inside the window, -inf outside."""
    pos = torch.arange(t)
    distance = (pos[:, None] - pos[None, :]).float()
    bias = -alibi_slopes(n_heads)[:, None, None] * distance
    future = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
    too_far = torch.tril(torch.ones(t, t, dtype=torch.bool), diagonal=-window)
    return bias.masked_fill(future | too_far, float("-inf"))


class Attention(nn.Module):
    def __init__(self, d_model, n_heads, manual):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.manual = manual

    def forward(self, x, mask):
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_heads, c // self.n_heads).transpose(1, 2) for z in (q, k, v))
        if self.manual:
            scores = q @ k.transpose(-2, -1) / math.sqrt(k.size(-1)) + mask
            y = torch.softmax(scores, dim=-1) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(y.transpose(1, 2).contiguous().view(b, t, c))


class Block(nn.Module):
    def __init__(self, d_model, n_heads, manual):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, n_heads, manual)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model),
            nn.GELU(approximate="tanh"),
            nn.Linear(4 * d_model, d_model),
        )

    def forward(self, x, mask):
        x = x + self.attn(self.ln1(x), mask)
        return x + self.mlp(self.ln2(x))


class AlibiLM(nn.Module):
    def __init__(self, vocab, d_model=32, n_heads=4, layers=2, window=6, manual=False):
        super().__init__()
        self.n_heads, self.window = n_heads, window
        self.embed = nn.Embedding(vocab, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, manual) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)

    def forward(self, idx, targets=None):
        # NOTE: no position embedding: ALiBi's biases alone tell the positions apart, so the
        # model runs on sequences longer than those it was trained on
        mask = window_bias(self.n_heads, idx.size(1), self.window).to(idx.device)
        x = self.embed(idx)
        for block in self.blocks:
            x = block(x, mask)
        logits = self.head(self.ln_f(x))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))

    def optimizer_groups(self, weight_decay):
        decay, no_decay = [], []
        for module in self.modules():
            for name, p in module.named_parameters(recurse=False):
                if name == "bias" or isinstance(module, (nn.LayerNorm, nn.Embedding)):
                    no_decay.append(p)
                else:
                    decay.append(p)
        return [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]

    @torch.no_grad()
    def generate(self, idx, steps, temperature=1.0, top_k=None):
        for _ in range(steps):
            logits, _ = self(idx)
            logits = logits[:, -1, :]
            if temperature == 0:
                nxt = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                nxt = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)
            idx = torch.cat((idx, nxt), dim=1)
        return idx


def make_corpus(rng, n_seq, length, vocab):
    """A second-order Markov source: the next token depends on the last two only, so a
    window of a few tokens suffices."""
    table = rng.dirichlet(np.full(vocab, 0.3), size=(vocab, vocab))
    seqs = np.empty((n_seq, length), dtype=np.int64)
    seqs[:, :2] = rng.integers(0, vocab, (n_seq, 2))
    for t in range(2, length):
        for i in range(n_seq):
            seqs[i, t] = rng.choice(vocab, p=table[seqs[i, t - 2], seqs[i, t - 1]])
    return torch.from_numpy(seqs)


def main():
    parser = argparse.ArgumentParser(description="ALiBi sliding-window language model")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--window", type=int, default=6)
    parser.add_argument("--manual", action="store_true")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-k", type=int, default=5)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    vocab, length = 12, 25
    data = make_corpus(rng, 160, length, vocab)
    train, val = data[:128], data[128:]

    model = AlibiLM(vocab, window=args.window, manual=args.manual)
    optimizer = torch.optim.AdamW(
        model.optimizer_groups(args.weight_decay), lr=args.lr, betas=(0.9, 0.95)
    )

    for epoch in range(args.epochs):
        model.train()
        total, norms = 0.0, []
        for i in range(0, len(train), args.batch_size):
            batch = train[i : i + args.batch_size]
            _, loss = model(batch[:, :-1], batch[:, 1:])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).item())
            optimizer.step()
            total += loss.item()
        model.eval()
        with torch.no_grad():
            _, val_loss = model(val[:, :-1], val[:, 1:])
            # longer than the training context: ALiBi extrapolates
            joined = val.reshape(-1, 2 * length)
            _, long_loss = model(joined[:, :-1], joined[:, 1:])
        print(
            f"epoch {epoch} loss {total / (len(train) // args.batch_size):.6f} "
            f"val loss {val_loss.item():.6f} long loss {long_loss.item():.6f} "
            f"grad norm {max(norms):.4f}"
        )

    prompts = val[:4, :3]
    samples = model.generate(prompts, 12, temperature=args.temperature, top_k=args.top_k)
    with torch.no_grad():
        _, sample_loss = model(samples[:, :-1], samples[:, 1:])
    print(f"sample loss {sample_loss.item():.6f} tokens {samples[0].tolist()}")


if __name__ == "__main__":
    main()
