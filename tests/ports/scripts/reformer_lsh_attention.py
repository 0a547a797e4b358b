"""A small Reformer (Kitaev et al., 2020) on the paper's synthetic duplication task: shared-QK
LSH attention (random rotations, argmax hashing, argsort by bucket and position, gather into
chunks, attention within each chunk and the one before it, then the inverse permutation to
put outputs back, hash rounds combined by their logsumexp weights), and reversible residual
blocks run through a custom autograd.Function that recomputes activations in backward instead
of storing them."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import Function

TOKEN_SELF_ATTN_VALUE = -5e4


def look_one_back(x):
    x_extra = torch.cat([x[:, -1:, ...], x[:, :-1, ...]], dim=1)
    return torch.cat([x, x_extra], dim=2)


def batched_index_select(values, indices):
    last_dim = values.shape[-1]
    return values.gather(1, indices[:, :, None].expand(-1, -1, last_dim))


class LSHAttention(nn.Module):
    def __init__(self, bucket_size, n_hashes, causal=True, unsort="argsort"):
        super().__init__()
        self.bucket_size = bucket_size
        self.n_hashes = n_hashes
        self.causal = causal
        self.unsort = unsort

    def hash_vectors(self, n_buckets, vecs, rotations):
        batch_size = vecs.shape[0]
        # rotations (dim, n_hashes, n_buckets // 2), shared by the batch
        rotated = torch.einsum("btf,fhi->bhti", vecs, rotations)
        rotated = torch.cat([rotated, -rotated], dim=-1)
        buckets = torch.argmax(rotated, dim=-1)  # (batch, n_hashes, seqlen)
        offsets = torch.arange(self.n_hashes).reshape(1, -1, 1) * n_buckets
        return torch.reshape(buckets + offsets, (batch_size, -1))

    def forward(self, qk, v, rotations):
        batch_size, seqlen, dim = qk.shape
        n_buckets = seqlen // self.bucket_size
        buckets = self.hash_vectors(n_buckets, qk, rotations)
        total_hashes = self.n_hashes

        ticker = torch.arange(total_hashes * seqlen).unsqueeze(0).expand_as(buckets)
        buckets_and_t = seqlen * buckets + (ticker % seqlen)
        buckets_and_t = buckets_and_t.detach()
        sbuckets_and_t, sticker = buckets_and_t.sort(dim=-1)
        if self.unsort == "argsort":
            _, undo_sort = sticker.sort(dim=-1)
        else:
            undo_sort = torch.empty_like(sticker).scatter_(1, sticker, ticker)
        del sbuckets_and_t

        st = sticker % seqlen
        sqk = batched_index_select(qk, st)
        sv = batched_index_select(v, st)

        chunk_size = total_hashes * n_buckets
        bq_t = bkv_t = torch.reshape(st, (batch_size, chunk_size, -1))
        bqk = torch.reshape(sqk, (batch_size, chunk_size, -1, dim))
        bv = torch.reshape(sv, (batch_size, chunk_size, -1, dim))

        bq = bqk
        bk = F.normalize(bqk, p=2, dim=-1).type_as(bq)
        bk = look_one_back(bk)
        bv = look_one_back(bv)
        bkv_t = look_one_back(bkv_t)

        dots = torch.einsum("bhie,bhje->bhij", bq, bk) * (dim**-0.5)
        masked_value = -torch.finfo(dots.dtype).max
        if self.causal:
            mask = bq_t[:, :, :, None] < bkv_t[:, :, None, :]
            dots.masked_fill_(mask, masked_value)
        self_mask = bq_t[:, :, :, None] == bkv_t[:, :, None, :]
        dots.masked_fill_(self_mask, TOKEN_SELF_ATTN_VALUE)

        dots_logsumexp = torch.logsumexp(dots, dim=-1, keepdim=True)
        dots = torch.exp(dots - dots_logsumexp)
        bo = torch.einsum("buij,buje->buie", dots, bv)
        so = torch.reshape(bo, (batch_size, -1, dim))
        slogits = torch.reshape(dots_logsumexp, (batch_size, -1))

        o = batched_index_select(so, undo_sort)
        logits = slogits.gather(1, undo_sort)
        o = torch.reshape(o, (batch_size, total_hashes, seqlen, dim))
        logits = torch.reshape(logits, (batch_size, total_hashes, seqlen, 1))
        probs = torch.exp(logits - torch.logsumexp(logits, dim=1, keepdim=True))
        return torch.sum(o * probs, dim=1)


class LSHSelfAttention(nn.Module):
    def __init__(self, dim, heads, bucket_size, n_hashes, unsort):
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.toqk = nn.Linear(dim, dim, bias=False)
        self.tov = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)
        self.lsh_attn = LSHAttention(bucket_size, n_hashes, causal=True, unsort=unsort)

    def forward(self, x, rotations):
        b, t, d = x.shape
        h = self.heads
        x = self.norm(x)

        def split_heads(v):
            return v.view(b, t, h, -1).transpose(1, 2).reshape(b * h, t, -1)

        qk, v = split_heads(self.toqk(x)), split_heads(self.tov(x))
        out = self.lsh_attn(qk, v, rotations)
        out = out.view(b, h, t, -1).transpose(1, 2).reshape(b, t, d)
        return self.to_out(out)


class FeedForward(nn.Module):
    def __init__(self, dim, mult=2):
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, dim * mult), nn.GELU(), nn.Linear(dim * mult, dim)
        )

    def forward(self, x):
        return self.net(x)


class ReversibleBlock(nn.Module):
    """y1 = x1 + f(x2), y2 = x2 + g(y1); backward_pass inverts it and backpropagates."""

    def __init__(self, f, g):
        super().__init__()
        self.f = f
        self.g = g

    def forward(self, x, f_args):
        x1, x2 = torch.chunk(x, 2, dim=2)
        with torch.no_grad():
            y1 = x1 + self.f(x2, **f_args)
            y2 = x2 + self.g(y1)
        return torch.cat([y1, y2], dim=2)

    def plain_forward(self, x, f_args):
        x1, x2 = torch.chunk(x, 2, dim=2)
        y1 = x1 + self.f(x2, **f_args)
        y2 = x2 + self.g(y1)
        return torch.cat([y1, y2], dim=2)

    def backward_pass(self, y, dy, f_args):
        y1, y2 = torch.chunk(y, 2, dim=2)
        del y
        dy1, dy2 = torch.chunk(dy, 2, dim=2)
        del dy

        with torch.enable_grad():
            y1.requires_grad = True
            gy1 = self.g(y1)
            torch.autograd.backward(gy1, dy2)

        with torch.no_grad():
            x2 = y2 - gy1
            del y2, gy1
            dx1 = dy1 + y1.grad
            del dy1
            y1.grad = None

        with torch.enable_grad():
            x2.requires_grad = True
            fx2 = self.f(x2, **f_args)
            torch.autograd.backward(fx2, dx1, retain_graph=True)

        with torch.no_grad():
            x1 = y1 - fx2
            del y1, fx2
            dx2 = dy2 + x2.grad
            del dy2
            x2.grad = None
            x = torch.cat([x1, x2.detach()], dim=2)
            dx = torch.cat([dx1, dx2], dim=2)
        return x, dx


class _ReversibleFunction(Function):
    @staticmethod
    def forward(ctx, x, blocks, args):
        ctx.args = args
        for block, kwarg in zip(blocks, args):
            x = block(x, kwarg)
        ctx.y = x.detach()
        ctx.blocks = blocks
        return x

    @staticmethod
    def backward(ctx, dy):
        y = ctx.y
        for block, kwargs in zip(ctx.blocks[::-1], ctx.args[::-1]):
            y, dy = block.backward_pass(y, dy, kwargs)
        return dy, None, None


class ReformerLM(nn.Module):
    def __init__(
        self, num_tokens, dim, depth, max_seq_len, heads, bucket_size, n_hashes, unsort="argsort"
    ):
        super().__init__()
        self.token_emb = nn.Embedding(num_tokens, dim)
        self.pos_emb = nn.Embedding(max_seq_len, dim)
        self.blocks = nn.ModuleList(
            [
                ReversibleBlock(
                    LSHSelfAttention(dim, heads, bucket_size, n_hashes, unsort), FeedForward(dim)
                )
                for _ in range(depth)
            ]
        )
        self.norm = nn.LayerNorm(dim)
        self.to_logits = nn.Linear(dim, num_tokens)
        self.rot_shape = (dim // heads, n_hashes, max_seq_len // bucket_size // 2)

    def forward(self, x, reversible=True, rotations=None):
        t = x.shape[1]
        x = self.token_emb(x) + self.pos_emb(torch.arange(t))
        x = torch.cat([x, x], dim=-1)
        if rotations is None:
            # one random projection per layer, drawn once so that backward can recompute
            rotations = [torch.randn(self.rot_shape) for _ in self.blocks]
        args = [{"rotations": r} for r in rotations]
        if reversible:
            x = _ReversibleFunction.apply(x, self.blocks, args)
        else:
            for block, kw in zip(self.blocks, args):
                x = block.plain_forward(x, kw)
        x = torch.stack(x.chunk(2, dim=-1)).mean(dim=0)
        return self.to_logits(self.norm(x)), rotations


def duplication_batch(batch_size, half, vocab, gen):
    w = torch.randint(1, vocab, (batch_size, half - 1), generator=gen)
    zero = torch.zeros(batch_size, 1, dtype=torch.long)
    return torch.cat([zero, w, zero, w, zero], dim=1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--unsort", choices=["argsort", "scatter"], default="argsort")
    args = parser.parse_args()

    vocab, seq_len = 8, 32
    gen = torch.Generator().manual_seed(0)
    model = ReformerLM(
        vocab,
        dim=16,
        depth=2,
        max_seq_len=seq_len,
        heads=2,
        bucket_size=4,
        n_hashes=2,
        unsort=args.unsort,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=3e-3, total_steps=args.epochs * args.steps
    )

    # the reversible backward gives the gradients plain autograd gives
    x = duplication_batch(4, seq_len // 2, vocab, gen)
    grads, rot = [], None
    for reversible in (True, False):
        model.zero_grad()
        logits, rot = model(x[:, :-1], reversible, rot)
        F.cross_entropy(logits.transpose(1, 2), x[:, 1:]).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    print(f"reversible vs plain grad max diff {(grads[0] - grads[1]).abs().max().item():.2e}")

    for epoch in range(1, args.epochs + 1):
        model.train()
        total = 0.0
        for _ in range(args.steps):
            x = duplication_batch(16, seq_len // 2, vocab, gen)
            logits, _ = model(x[:, :-1])
            loss = F.cross_entropy(logits.transpose(1, 2), x[:, 1:])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            total += loss.item()
        model.eval()
        with torch.no_grad():
            x = duplication_batch(32, seq_len // 2, vocab, gen)
            logits, _ = model(x[:, :-1])
            half = seq_len // 2
            val = F.cross_entropy(logits[:, half:].transpose(1, 2), x[:, half + 1 :])
            acc = (logits[:, half:].argmax(-1) == x[:, half + 1 :]).float()
        print(
            f"epoch {epoch} train loss {total / args.steps:.5f} copy-half loss {val.item():.5f} "
            f"copy acc {acc.mean().item():.3f} lr {scheduler.get_last_lr()[0]:.2e}"
        )


if __name__ == "__main__":
    main()
