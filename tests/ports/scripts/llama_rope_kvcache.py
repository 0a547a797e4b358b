"""A tiny LLaMA-style decoder in the manner of Meta's reference model.py: RMSNorm, rotary
embeddings as complex rotations (torch.polar, view_as_complex / view_as_real), a SwiGLU MLP,
grouped-query attention (repeat_interleave) through scaled_dot_product_attention, AdamW with a
warmup + cosine LambdaLR, then generation with a KV cache under torch.inference_mode():
chunked prefill with an explicit mask, greedy decoding, top-k and top-p sampling."""

import argparse
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ModelArgs:
    dim: int = 32
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2
    vocab_size: int = 24
    multiple_of: int = 16
    norm_eps: float = 1e-5
    max_batch_size: int = 4
    max_seq_len: int = 32


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def _norm(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def forward(self, x):
        output = self._norm(x.float()).type_as(x)
        return output * self.weight


def precompute_freqs_cis(dim, end, theta=10000.0):
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: (dim // 2)].float() / dim))
    t = torch.arange(end, device=freqs.device, dtype=torch.float32)
    freqs = torch.outer(t, freqs)
    return torch.polar(torch.ones_like(freqs), freqs)  # complex64


def reshape_for_broadcast(freqs_cis, x):
    ndim = x.ndim
    assert freqs_cis.shape == (x.shape[1], x.shape[-1])
    shape = [d if i == 1 or i == ndim - 1 else 1 for i, d in enumerate(x.shape)]
    return freqs_cis.view(*shape)


def apply_rotary_emb(xq, xk, freqs_cis):
    xq_ = torch.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))
    xk_ = torch.view_as_complex(xk.float().reshape(*xk.shape[:-1], -1, 2))
    freqs_cis = reshape_for_broadcast(freqs_cis, xq_)
    xq_out = torch.view_as_real(xq_ * freqs_cis).flatten(3)
    xk_out = torch.view_as_real(xk_ * freqs_cis).flatten(3)
    return xq_out.type_as(xq), xk_out.type_as(xk)


def repeat_kv(x, n_rep):
    """(bs, seqlen, n_kv_heads, head_dim) -> (bs, seqlen, n_kv_heads * n_rep, head_dim)"""
    if n_rep == 1:
        return x
    return torch.repeat_interleave(x, repeats=n_rep, dim=2)


class Attention(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.n_kv_heads = args.n_heads if args.n_kv_heads is None else args.n_kv_heads
        self.n_heads = args.n_heads
        self.n_rep = self.n_heads // self.n_kv_heads
        self.head_dim = args.dim // args.n_heads
        self.wq = nn.Linear(args.dim, args.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(args.dim, self.n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(args.dim, self.n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(args.n_heads * self.head_dim, args.dim, bias=False)
        self.cache_k = None
        self.cache_v = None
        self.max_batch_size = args.max_batch_size
        self.max_seq_len = args.max_seq_len

    def setup_cache(self):
        shape = (self.max_batch_size, self.max_seq_len, self.n_kv_heads, self.head_dim)
        self.cache_k = torch.zeros(shape)
        self.cache_v = torch.zeros(shape)

    def forward(self, x, start_pos, freqs_cis, mask):
        bsz, seqlen, _ = x.shape
        xq, xk, xv = self.wq(x), self.wk(x), self.wv(x)
        xq = xq.view(bsz, seqlen, self.n_heads, self.head_dim)
        xk = xk.view(bsz, seqlen, self.n_kv_heads, self.head_dim)
        xv = xv.view(bsz, seqlen, self.n_kv_heads, self.head_dim)
        xq, xk = apply_rotary_emb(xq, xk, freqs_cis=freqs_cis)

        if self.cache_k is None:  # training: the whole sequence at once
            keys, values = xk, xv
        else:
            self.cache_k = self.cache_k.to(xq)
            self.cache_v = self.cache_v.to(xq)
            self.cache_k[:bsz, start_pos : start_pos + seqlen] = xk
            self.cache_v[:bsz, start_pos : start_pos + seqlen] = xv
            keys = self.cache_k[:bsz, : start_pos + seqlen]
            values = self.cache_v[:bsz, : start_pos + seqlen]

        keys = repeat_kv(keys, self.n_rep)
        values = repeat_kv(values, self.n_rep)
        xq, keys, values = xq.transpose(1, 2), keys.transpose(1, 2), values.transpose(1, 2)
        if mask is None:
            # training and the first prefill chunk are square and causal; decoding one token
            # attends to the whole cache
            output = F.scaled_dot_product_attention(xq, keys, values, is_causal=seqlen > 1)
        else:
            scores = torch.matmul(xq, keys.transpose(2, 3)) / math.sqrt(self.head_dim)
            scores = scores + mask
            scores = F.softmax(scores.float(), dim=-1).type_as(xq)
            output = torch.matmul(scores, values)
        output = output.transpose(1, 2).contiguous().view(bsz, seqlen, -1)
        return self.wo(output)


class FeedForward(nn.Module):
    def __init__(self, dim, hidden_dim, multiple_of):
        super().__init__()
        hidden_dim = int(2 * hidden_dim / 3)
        hidden_dim = multiple_of * ((hidden_dim + multiple_of - 1) // multiple_of)
        self.w1 = nn.Linear(dim, hidden_dim, bias=False)
        self.w2 = nn.Linear(hidden_dim, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden_dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    def __init__(self, layer_id, args):
        super().__init__()
        self.attention = Attention(args)
        self.feed_forward = FeedForward(args.dim, 4 * args.dim, args.multiple_of)
        self.layer_id = layer_id
        self.attention_norm = RMSNorm(args.dim, eps=args.norm_eps)
        self.ffn_norm = RMSNorm(args.dim, eps=args.norm_eps)

    def forward(self, x, start_pos, freqs_cis, mask):
        h = x + self.attention(self.attention_norm(x), start_pos, freqs_cis, mask)
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    def __init__(self, params):
        super().__init__()
        self.params = params
        self.tok_embeddings = nn.Embedding(params.vocab_size, params.dim)
        self.layers = nn.ModuleList([TransformerBlock(i, params) for i in range(params.n_layers)])
        self.norm = RMSNorm(params.dim, eps=params.norm_eps)
        self.output = nn.Linear(params.dim, params.vocab_size, bias=False)
        self.freqs_cis = precompute_freqs_cis(params.dim // params.n_heads, params.max_seq_len * 2)

    def forward(self, tokens, start_pos=0):
        _bsz, seqlen = tokens.shape
        h = self.tok_embeddings(tokens)
        self.freqs_cis = self.freqs_cis.to(h.device)
        freqs_cis = self.freqs_cis[start_pos : start_pos + seqlen]
        mask = None
        if seqlen > 1 and start_pos > 0:
            # a later prefill chunk: causal within the chunk, everything cached before it
            mask = torch.full((seqlen, seqlen), float("-inf"), device=tokens.device)
            mask = torch.triu(mask, diagonal=1)
            mask = torch.hstack([torch.zeros((seqlen, start_pos)), mask]).type_as(h)
        for layer in self.layers:
            h = layer(h, start_pos, freqs_cis, mask)
        return self.output(self.norm(h)).float()

    def setup_caches(self):
        for layer in self.layers:
            layer.attention.setup_cache()

    def clear_caches(self):
        for layer in self.layers:
            layer.attention.cache_k = layer.attention.cache_v = None


def sample_top_p(probs, p, generator=None):
    probs_sort, probs_idx = torch.sort(probs, dim=-1, descending=True)
    probs_sum = torch.cumsum(probs_sort, dim=-1)
    mask = probs_sum - probs_sort > p
    probs_sort[mask] = 0.0
    probs_sort.div_(probs_sort.sum(dim=-1, keepdim=True))
    next_token = torch.multinomial(probs_sort, num_samples=1, generator=generator)
    return torch.gather(probs_idx, -1, next_token)


def sample_top_k(logits, k, temperature, generator=None):
    v, ix = torch.topk(logits / temperature, k, dim=-1)
    probs = F.softmax(v, dim=-1)
    choice = torch.multinomial(probs, num_samples=1, generator=generator)
    return ix.gather(-1, choice)


@torch.inference_mode()
def generate(model, prompt, max_gen_len, mode, generator=None):
    """Decode with the KV cache: the prompt in two prefill chunks, then one token a step."""
    model.setup_caches()
    bsz, plen = prompt.shape
    tokens = torch.zeros((bsz, plen + max_gen_len), dtype=torch.long)
    tokens[:, :plen] = prompt
    half = plen // 2
    model(tokens[:, :half], 0)
    logits = model(tokens[:, half:plen], half)[:, -1]
    for cur_pos in range(plen, plen + max_gen_len):
        if mode == "greedy":
            next_token = torch.argmax(logits, dim=-1, keepdim=True)
        elif mode == "top_k":
            next_token = sample_top_k(logits, 5, 0.8, generator)
        else:
            next_token = sample_top_p(torch.softmax(logits / 0.8, dim=-1), 0.9, generator)
        tokens[:, cur_pos] = next_token.reshape(-1)
        if cur_pos + 1 < plen + max_gen_len:
            logits = model(tokens[:, cur_pos : cur_pos + 1], cur_pos)[:, -1]
    model.clear_caches()
    return tokens


def make_corpus(rng, n, length, vocab):
    """Arithmetic progressions mod vocab: the next token is predictable from the last two."""
    start = rng.integers(0, vocab, size=(n, 1))
    step = rng.integers(1, 4, size=(n, 1))
    return (start + step * np.arange(length)[None, :]) % vocab


def main():
    parser = argparse.ArgumentParser(description="tiny LLaMA with rotary embeddings")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=12)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=4)
    args = parser.parse_args()

    params = ModelArgs()
    rng = np.random.default_rng(0)
    data = torch.from_numpy(make_corpus(rng, 256, args.seq_len + 1, params.vocab_size))
    model = Transformer(params)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.95),
        eps=1e-8,
    )

    def lr_lambda(step):
        if step < args.warmup:
            return (step + 1) / args.warmup
        progress = (step - args.warmup) / max(1, args.steps - args.warmup)
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
    print(f"freqs_cis {tuple(model.freqs_cis.shape)} {model.freqs_cis.dtype}")

    model.train()
    for step in range(args.steps):
        idx = rng.integers(0, data.shape[0], args.batch_size)
        batch = data[torch.from_numpy(idx)]
        inputs, targets = batch[:, :-1], batch[:, 1:]
        logits = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        print(
            f"step {step:02d} loss {loss.item():.5f} "
            f"lr {scheduler.get_last_lr()[0]:.2e} grad norm {grad_norm.item():.4f}"
        )

    model.eval()
    prompt = data[:4, :6]
    with torch.inference_mode():
        full = model(data[:4, :-1])
        val_loss = F.cross_entropy(full.reshape(-1, full.size(-1)), data[:4, 1:].reshape(-1))
        # the cached path must reproduce the full forward's logits
        model.setup_caches()
        model(data[:4, :5], 0)
        chunk = model(data[:4, 5:9], 5)
        step_logits = model(data[:4, 9:10], 9)
        model.clear_caches()
        gap = max(
            (chunk - full[:, 5:9]).abs().max().item(),
            (step_logits - full[:, 9:10]).abs().max().item(),
        )
    print(f"val loss {val_loss.item():.5f} cache gap loss {gap:.6f}")

    g = torch.Generator().manual_seed(1337)
    for mode in ("greedy", "top_k", "top_p"):
        out = generate(model, prompt, 6, mode, generator=g)
        with torch.no_grad():
            logits = model(out[:, :-1])
            nll = F.cross_entropy(
                logits[:, 5:].reshape(-1, logits.size(-1)), out[:, 6:].reshape(-1)
            )
        print(f"{mode}: {out[0].tolist()} continuation loss {nll.item():.5f}")


if __name__ == "__main__":
    main()
