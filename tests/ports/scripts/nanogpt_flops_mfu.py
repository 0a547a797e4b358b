"""nanoGPT's training loop with its model-FLOPs-utilisation estimate measured rather than
guessed: torch.utils.flop_counter.FlopCounterMode (display=False, depth=...) counts one
forward + backward of the model, its get_total_flops() and the per-module get_flop_counts()
table ("GPT.h.0", keys torch.ops.aten.mm / addmm / bmm) are compared with the PaLM-style
6N + 12LHQT estimate of nanoGPT's estimate_mfu, then training runs with gradient
accumulation, torch.amp.GradScaler(enabled=False) and a disabled autocast context (the fp32
path of the original), clip_grad_norm_ after unscale_, AdamW with fused= chosen through
inspect.signature, and a linear-warm-up cosine learning rate set by hand each iteration."""

import argparse
import inspect
import math
import time
from contextlib import nullcontext

import torch
import torch.nn as nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode


class Block(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.mlp_proj = nn.Linear(4 * n_embd, n_embd)
        self.n_head = n_head

    def attn(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab_size, block_size, n_layer, n_head, n_embd):
        super().__init__()
        self.block_size = block_size
        self.n_layer, self.n_head, self.n_embd = n_layer, n_head, n_embd
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList([Block(n_embd, n_head, block_size) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.wte.weight = self.lm_head.weight  # weight tying

    def get_num_params(self, non_embedding=True):
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.wpe.weight.numel()
        return n

    def forward(self, idx, targets=None):
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(
                logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1
            )
        return logits, loss

    def estimate_flops_per_iter(self, fwdbwd_per_iter, seq_len):
        """PaLM appendix B: 6N per token plus the attention's 12LHQT."""
        N = self.get_num_params()
        L, H, Q = self.n_layer, self.n_head, self.n_embd // self.n_head
        flops_per_token = 6 * N + 12 * L * H * Q * seq_len
        return flops_per_token * seq_len * fwdbwd_per_iter

    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):
        params = {pn: p for pn, p in self.named_parameters() if p.requires_grad}
        decay = [p for p in params.values() if p.dim() >= 2]
        nodecay = [p for p in params.values() if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": weight_decay},
                  {"params": nodecay, "weight_decay": 0.0}]  # fmt: skip
        fused_available = "fused" in inspect.signature(torch.optim.AdamW).parameters
        use_fused = fused_available and device_type == "cuda"
        extra = dict(fused=True) if use_fused else dict()
        print(f"using fused AdamW: {use_fused}")
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, **extra)


def measure_flops(model, x, y, depth):
    with FlopCounterMode(display=False, depth=depth) as counter:
        _, loss = model(x, y)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iters", type=int, default=12)
    parser.add_argument("--accum", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--block", type=int, default=16)
    args = parser.parse_args()

    torch.manual_seed(0)
    vocab, T = 24, args.block
    model = GPT(vocab, T, n_layer=2, n_head=2, n_embd=32)
    data = torch.randint(0, vocab, (2000,))
    # a learnable structure: every token is followed by (token * 3 + 1) % vocab half the time
    data[1::2] = (data[0::2] * 3 + 1) % vocab

    def get_batch(i):
        ix = (torch.arange(args.batch) * 97 + i * 31) % (len(data) - T - 1)
        x = torch.stack([data[j : j + T] for j in ix.tolist()])
        y = torch.stack([data[j + 1 : j + 1 + T] for j in ix.tolist()])
        return x, y

    x, y = get_batch(0)
    counter = measure_flops(model, x, y, depth=2)
    measured = counter.get_total_flops()
    estimate = model.estimate_flops_per_iter(1, T) * args.batch
    counts = counter.get_flop_counts()
    mm_flops = sum(v for k, v in counts["Global"].items() if "mm" in str(k))
    print(f"measured flops/fwdbwd: {measured}  analytic 6N+12LHQT: {estimate}")
    print(f"matmul share: {mm_flops / measured:.4f}, modules counted: {len(counts)}")
    print(f"first block flops: {sum(counts['GPT.h.0'].values())}")

    device_type = "cpu"
    ctx = (
        nullcontext()
        if device_type == "cpu"
        else torch.amp.autocast(device_type=device_type, dtype=torch.bfloat16)
    )
    scaler = torch.amp.GradScaler(device_type, enabled=False)
    optimizer = model.configure_optimizers(0.1, 3e-3, (0.9, 0.95), device_type)
    warmup, lr_decay_iters, max_lr, min_lr = 3, args.iters, 3e-3, 3e-4

    def get_lr(it):
        if it < warmup:
            return max_lr * (it + 1) / (warmup + 1)
        ratio = (it - warmup) / (lr_decay_iters - warmup)
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (max_lr - min_lr)

    flops_per_iter = measured * args.accum
    for it in range(args.iters):
        t0 = time.time()
        lr = get_lr(it)
        for g in optimizer.param_groups:
            g["lr"] = lr
        for micro in range(args.accum):
            xb, yb = get_batch(it * args.accum + micro)
            with ctx:
                _, loss = model(xb, yb)
                loss = loss / args.accum
            scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        dt = max(time.time() - t0, 1e-9)
        mfu = flops_per_iter / dt / 1e12  # against a nominal 1 TFLOP/s CPU
        lossf = loss.item() * args.accum
        print(
            f"iter {it}: loss {lossf:.5f}, lr {lr:.2e}, norm {norm.item():.4f}, mfu {mfu * 100:.2f}%"
        )

    model.eval()
    with torch.no_grad():
        xb, yb = get_batch(999)
        _, loss = model(xb, yb)
    print(f"val loss {loss.item():.5f}")


if __name__ == "__main__":
    main()
