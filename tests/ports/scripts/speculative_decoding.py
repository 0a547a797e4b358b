"""Speculative sampling (Leviathan et al., 2023; Chen et al., 2023): a small draft model and
a larger target model, GPT-like stacks under the causal mask of
nn.Transformer.generate_square_subsequent_mask: the draft post-norm nn.TransformerEncoderLayer
with ReLU, the target pre-norm nn.TransformerDecoderLayer with GELU whose cross-attention
reads the token embeddings under the same mask (tgt_is_causal, memory_is_causal), both trained
briefly on the same synthetic language; then the draft proposes gamma tokens, the target
scores them all in one pass, each is accepted with probability min(1, p/q) against
torch.rand, and the first rejection is replaced by a draw from the residual distribution
clamp(p - q, min=0) renormalized, drawn by inverting its torch.cumsum with argmax. Prints both
models' training losses, the target's loss on the generated text and the acceptance rate;
--greedy accepts a draft token when it is the target's argmax."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class TinyGPT(nn.Module):
    def __init__(self, vocab, d_model, n_heads, layers, block, pre_norm, activation, cross):
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(block, d_model)
        kwargs = dict(
            dim_feedforward=2 * d_model,
            dropout=0.0,
            activation=activation,
            batch_first=True,
            norm_first=pre_norm,
        )
        self.cross = cross
        if cross:
            # decoder layers whose cross-attention reads the (causally masked) embeddings
            layer = nn.TransformerDecoderLayer(d_model, n_heads, **kwargs)
            self.stack = nn.TransformerDecoder(layer, layers)
        else:
            layer = nn.TransformerEncoderLayer(d_model, n_heads, **kwargs)
            self.stack = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model) if pre_norm else nn.Identity()
        self.head = nn.Linear(d_model, vocab)

    def forward(self, idx):
        t = idx.size(1)
        mask = nn.Transformer.generate_square_subsequent_mask(t)
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        if self.cross:
            x = self.stack(
                x, x, tgt_mask=mask, memory_mask=mask, tgt_is_causal=True, memory_is_causal=True
            )
        else:
            x = self.stack(x, mask=mask, is_causal=True)
        return self.head(self.norm(x))


def make_corpus(rng, n, length, vocab):
    """Counting runs: each sequence climbs by a step of 1 or 2 (mod vocab), with some noise."""
    seqs = np.empty((n, length), dtype=np.int64)
    for i in range(n):
        step = rng.integers(1, 3)
        seqs[i] = (rng.integers(0, vocab) + step * np.arange(length)) % vocab
        noise = rng.random(length) < 0.15
        seqs[i, noise] = rng.integers(0, vocab, noise.sum())
    return torch.from_numpy(seqs)


def train(name, model, data, epochs, lr, batch_size=16):
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    vocab = model.head.out_features
    for epoch in range(epochs):
        total, batches = 0.0, 0
        for i in range(0, len(data), batch_size):
            batch = data[i : i + batch_size]
            logits = model(batch[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, vocab), batch[:, 1:].reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
            batches += 1
        print(f"{name} epoch {epoch} loss {total / batches:.6f}")


def sample_from(probs):
    """One index drawn from a 1-D distribution by inverting its cumulative sum."""
    u = torch.rand(1)
    cdf = torch.cumsum(probs, dim=-1)
    return int(torch.argmax((cdf > u * cdf[-1]).int()).item())


@torch.no_grad()
def speculative_generate(target, draft, prompt, new_tokens, gamma, greedy, temperature=1.0):
    seq = prompt.clone()
    proposed = accepted = 0
    while seq.size(0) < prompt.size(0) + new_tokens:
        # the draft proposes gamma tokens one at a time, remembering its distributions q
        draft_seq, qs = seq, []
        for _ in range(gamma):
            q = F.softmax(draft(draft_seq[None])[0, -1] / temperature, dim=-1)
            if greedy:
                tok = q.argmax().reshape(1)
            else:
                tok = torch.multinomial(q, 1)
            qs.append(q)
            draft_seq = torch.cat([draft_seq, tok])
        # the target scores every proposal (and one position beyond) in a single pass
        p_all = F.softmax(target(draft_seq[None])[0, -gamma - 1 :] / temperature, dim=-1)
        n_ok = 0
        for j in range(gamma):
            tok = int(draft_seq[seq.size(0) + j])
            p, q = p_all[j], qs[j]
            if greedy:
                ok = int(p.argmax()) == tok
            else:
                ok = torch.rand(1).item() < min(1.0, (p[tok] / q[tok]).item())
            if not ok:
                break
            n_ok += 1
        proposed += gamma
        accepted += n_ok
        seq = draft_seq[: seq.size(0) + n_ok]
        if n_ok < gamma:
            p, q = p_all[n_ok], qs[n_ok]
            if greedy:
                nxt = int(p.argmax())
            else:
                residual = torch.clamp(p - q, min=0)
                nxt = sample_from(residual / residual.sum())
        else:
            p = p_all[gamma]
            nxt = int(p.argmax()) if greedy else sample_from(p)
        seq = torch.cat([seq, torch.tensor([nxt])])
    return seq[: prompt.size(0) + new_tokens], accepted / proposed


def main():
    parser = argparse.ArgumentParser(description="speculative sampling with a draft model")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--gamma", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=12)
    parser.add_argument("--greedy", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    vocab, length = 12, 24
    data = make_corpus(rng, 128, length, vocab)
    draft = TinyGPT(vocab, 16, 2, 1, length, pre_norm=False, activation="relu", cross=False)
    target = TinyGPT(vocab, 32, 4, 2, length, pre_norm=True, activation="gelu", cross=True)
    train("draft", draft, data, args.epochs, 1e-2)
    train("target", target, data, args.epochs, 5e-3)
    draft.eval()
    target.eval()

    rates, nlls = [], []
    for i in range(4):
        prompt = data[i, :4]
        seq, rate = speculative_generate(
            target, draft, prompt, args.new_tokens, args.gamma, args.greedy
        )
        with torch.no_grad():
            logits = target(seq[None, :-1])[0]
            nll = F.cross_entropy(logits[3:], seq[4:])
        rates.append(rate)
        nlls.append(nll.item())
        print(f"sample {i} loss {nll.item():.6f} acceptance {rate:.3f} tokens {seq.tolist()}")
    print(f"generated loss {sum(nlls) / len(nlls):.6f} acceptance rate {np.mean(rates):.3f}")
    print(f"perplexity {math.exp(sum(nlls) / len(nlls)):.4f}")


if __name__ == "__main__":
    main()
