"""A GShard-style top-2 mixture-of-experts Transformer on a synthetic token task: top-2 gating
with expert capacity (positions in each expert's buffer from a cumsum over one-hot masks,
tokens past capacity dropped), the load-balancing auxiliary loss and the router z-loss,
dispatch and combine tensors built with einsum, experts as batched weights run with bmm,
nn.GELU(approximate="tanh"), pre-LayerNorm blocks and per-expert token counts from
scatter_add_ and bincount."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def top2gating(logits, capacity_factor=1.0, min_capacity=4):
    """GShard top-2 gating over groups of tokens: logits (G, S, E) -> aux loss, combine
    weights (G, S, E, C), dispatch mask and the tokens each expert received."""
    gates = F.softmax(logits, dim=-1)
    _, num_tokens, num_experts = gates.shape
    capacity = max(math.ceil(2 * num_tokens / num_experts * capacity_factor), min_capacity)

    indices1_s = torch.argmax(gates, dim=-1)
    mask1 = F.one_hot(indices1_s, num_classes=num_experts)
    # the second choice: the best expert once the first is masked out
    logits_except1 = logits.masked_fill(mask1.bool(), float("-inf"))
    indices2_s = torch.argmax(logits_except1, dim=-1)
    mask2 = F.one_hot(indices2_s, num_classes=num_experts)

    # position of each token in its expert's buffer; second choices queue behind firsts
    locations1 = torch.cumsum(mask1, dim=1) - 1
    locations2 = torch.cumsum(mask2, dim=1) - 1
    locations2 += torch.sum(mask1, dim=1, keepdim=True)

    me = torch.mean(gates, dim=1)
    ce = torch.mean(mask1.float(), dim=1)
    l_aux = torch.mean(me * ce) * num_experts * num_experts

    mask1 = mask1 * torch.lt(locations1, capacity)  # tokens past capacity are dropped
    mask2 = mask2 * torch.lt(locations2, capacity)
    locations1_s = torch.sum(locations1 * mask1, dim=-1)
    locations2_s = torch.sum(locations2 * mask2, dim=-1)

    mask1_float, mask2_float = mask1.float(), mask2.float()
    gates1_s = torch.einsum("gse,gse->gs", gates, mask1_float)
    gates2_s = torch.einsum("gse,gse->gs", gates, mask2_float)
    denom_s = torch.clamp(gates1_s + gates2_s, min=torch.finfo(gates.dtype).eps)
    gates1_s, gates2_s = gates1_s / denom_s, gates2_s / denom_s

    gates1 = torch.einsum("gs,gse->gse", gates1_s, mask1_float)
    gates2 = torch.einsum("gs,gse->gse", gates2_s, mask2_float)
    locations1_sc = F.one_hot(locations1_s, num_classes=capacity).float()
    locations2_sc = F.one_hot(locations2_s, num_classes=capacity).float()
    combine1_sec = torch.einsum("gse,gsc->gsec", gates1, locations1_sc)
    combine2_sec = torch.einsum("gse,gsc->gsec", gates2, locations2_sc)
    combine_weights = combine1_sec + combine2_sec
    dispatch_mask = combine_weights.bool()

    load = torch.zeros(num_experts)
    load.scatter_add_(0, indices1_s.flatten(), mask1_float.sum(-1).flatten())
    load.scatter_add_(0, indices2_s.flatten(), mask2_float.sum(-1).flatten())
    return l_aux, combine_weights, dispatch_mask, load


class Experts(nn.Module):
    def __init__(self, num_experts, d_model, d_ff):
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(num_experts, d_model, d_ff))
        self.b1 = nn.Parameter(torch.zeros(num_experts, 1, d_ff))
        self.w2 = nn.Parameter(torch.empty(num_experts, d_ff, d_model))
        self.b2 = nn.Parameter(torch.zeros(num_experts, 1, d_model))
        for w in (self.w1, self.w2):
            nn.init.trunc_normal_(w, std=w.shape[1] ** -0.5)
        self.act = nn.GELU(approximate="tanh")

    def forward(self, x):  # (E, C, d_model)
        h = self.act(torch.bmm(x, self.w1) + self.b1)
        return torch.baddbmm(self.b2, h, self.w2)


class MOELayer(nn.Module):
    def __init__(self, d_model, d_ff, num_experts, capacity_factor):
        super().__init__()
        self.wg = nn.Linear(d_model, num_experts, bias=False)
        self.experts = Experts(num_experts, d_model, d_ff)
        self.capacity_factor = capacity_factor
        self.num_experts = num_experts

    def forward(self, x):
        # one group per sequence: capacity and the load-balancing loss are per group
        logits = self.wg(x)
        l_aux, combine_weights, dispatch_mask, load = top2gating(logits, self.capacity_factor)
        z_loss = torch.logsumexp(logits, dim=-1).pow(2).mean()
        dispatched = torch.einsum("gsec,gsm->egcm", dispatch_mask.type_as(x), x)
        num_experts, groups, capacity, d_model = dispatched.shape
        expert_output = self.experts(dispatched.reshape(num_experts, -1, d_model))
        expert_output = expert_output.reshape(num_experts, groups, capacity, d_model)
        combined = torch.einsum("gsec,egcm->gsm", combine_weights, expert_output)
        dropped = (dispatch_mask.flatten(2).sum(-1) == 0).sum()
        self.stats = dict(load=load.detach(), dropped=int(dropped),
                          top1=torch.bincount(logits.argmax(-1).flatten(), minlength=num_experts))  # fmt: skip
        return combined, l_aux, z_loss


class Block(nn.Module):
    def __init__(self, d_model, n_heads, d_ff, num_experts, capacity_factor):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
        self.ln2 = nn.LayerNorm(d_model)
        self.moe = MOELayer(d_model, d_ff, num_experts, capacity_factor)

    def forward(self, x, attn_mask):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=attn_mask, need_weights=False)[0]
        y, l_aux, z_loss = self.moe(self.ln2(x))
        return x + y, l_aux, z_loss


class MoETransformer(nn.Module):
    def __init__(self, vocab, seq_len, d_model=32, n_heads=4, d_ff=64, num_experts=4,
                 n_layers=2, capacity_factor=1.0):  # fmt: skip
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Parameter(torch.zeros(1, seq_len, d_model))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, d_ff, num_experts, capacity_factor) for _ in range(n_layers)
        )
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)
        mask = torch.triu(torch.ones(seq_len, seq_len, dtype=torch.bool), diagonal=1)
        self.register_buffer("causal_mask", mask)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.tok(idx) + self.pos[:, :t]
        aux_total = z_total = 0.0
        for block in self.blocks:
            x, l_aux, z_loss = block(x, self.causal_mask[:t, :t])
            aux_total = aux_total + l_aux
            z_total = z_total + z_loss
        return self.head(self.ln_f(x)), aux_total / len(self.blocks), z_total / len(self.blocks)


def make_sequences(rng, n, seq_len, vocab):
    """Each sequence follows one of four rules (count up, count down, repeat, skip by two)
    chosen by its first token; the model must predict the next token."""
    start = rng.integers(0, vocab, n)
    rule = start % 4
    steps = np.array([1, -1, 0, 2])[rule]
    seq = (start[:, None] + steps[:, None] * np.arange(seq_len + 1)) % vocab
    noise = rng.random((n, seq_len + 1)) < 0.05
    seq = np.where(noise, rng.integers(0, vocab, (n, seq_len + 1)), seq)
    seq = torch.from_numpy(seq.astype(np.int64))
    return seq[:, :-1], seq[:, 1:]


def main():
    parser = argparse.ArgumentParser(description="GShard top-2 MoE with capacity")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--capacity-factor", type=float, default=1.0)
    parser.add_argument("--aux-weight", type=float, default=0.01)
    parser.add_argument("--z-weight", type=float, default=1e-3)
    args = parser.parse_args()

    vocab, seq_len = 24, 12
    rng = np.random.default_rng(0)
    x_train, y_train = make_sequences(rng, 192, seq_len, vocab)
    x_val, y_val = make_sequences(rng, 64, seq_len, vocab)

    model = MoETransformer(vocab, seq_len, capacity_factor=args.capacity_factor)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "pos" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or "pos" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
        lr=3e-3, betas=(0.9, 0.95),
    )  # fmt: skip
    total_steps = args.epochs * (len(x_train) // args.batch_size)

    def warmup_cosine(step):
        return min(1.0, (step + 1) / 4) * 0.5 * (1 + math.cos(math.pi * step / total_steps))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine)

    for epoch in range(1, args.epochs + 1):
        model.train()
        tot = tot_aux = tot_z = 0.0
        load = torch.zeros(4)
        dropped = 0
        steps = 0
        for i in range(0, len(x_train), args.batch_size):
            xb, yb = x_train[i : i + args.batch_size], y_train[i : i + args.batch_size]
            logits, l_aux, z_loss = model(xb)
            ce = F.cross_entropy(logits.reshape(-1, vocab), yb.reshape(-1))
            loss = ce + args.aux_weight * l_aux + args.z_weight * z_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            tot += ce.item()
            tot_aux += l_aux.item()
            tot_z += z_loss.item()
            load += model.blocks[0].moe.stats["load"]
            dropped += sum(b.moe.stats["dropped"] for b in model.blocks)
            steps += 1
        model.eval()
        with torch.no_grad():
            logits, _, _ = model(x_val)
            val = F.cross_entropy(logits.reshape(-1, vocab), y_val.reshape(-1))
            acc = (logits.argmax(-1) == y_val).float().mean()
        print(f"epoch {epoch} loss {tot / steps:.5f} aux loss {tot_aux / steps:.5f} "
              f"z loss {tot_z / steps:.5f} val loss {val.item():.5f} acc {acc.item():.3f}")  # fmt: skip
        print(f"  layer-0 load {load.tolist()} dropped tokens {dropped} "
              f"val top1 {model.blocks[1].moe.stats['top1'].tolist()}")  # fmt: skip


if __name__ == "__main__":
    main()
