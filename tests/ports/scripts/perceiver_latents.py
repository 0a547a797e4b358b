"""A Perceiver (Jaegle et al., 2021) classifying long synthetic 1-D signals: a learned latent
array cross-attends to the input through nn.MultiheadAttention(kdim=..., vdim=...,
batch_first=True), then self-attends through pre-norm GELU nn.TransformerEncoderLayers.
Fourier position features come from torch.linspace, sin and cos joined by torch.cat; AdamW
gets two parameter groups (no weight decay on biases, norms and the latents) and a LambdaLR
linear warmup then cosine decay."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def fourier_features(length, num_bands, max_freq):
    pos = torch.linspace(-1.0, 1.0, steps=length).unsqueeze(-1)  # (L, 1)
    freqs = torch.linspace(1.0, max_freq / 2, steps=num_bands)  # (F,)
    angles = math.pi * pos * freqs  # (L, F)
    return torch.cat([pos, torch.sin(angles), torch.cos(angles)], dim=-1)  # (L, 1 + 2F)


class PerceiverBlock(nn.Module):
    def __init__(self, latent_dim, input_dim, heads, self_layers):
        super().__init__()
        self.latent_norm = nn.LayerNorm(latent_dim)
        self.input_norm = nn.LayerNorm(input_dim)
        self.cross_attn = nn.MultiheadAttention(
            latent_dim, num_heads=1, kdim=input_dim, vdim=input_dim, batch_first=True
        )
        self.cross_ff = nn.Sequential(
            nn.LayerNorm(latent_dim),
            nn.Linear(latent_dim, 2 * latent_dim),
            nn.GELU(),
            nn.Linear(2 * latent_dim, latent_dim),
        )
        layer = nn.TransformerEncoderLayer(
            latent_dim,
            nhead=heads,
            dim_feedforward=2 * latent_dim,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.self_attn = nn.TransformerEncoder(
            layer, num_layers=self_layers, enable_nested_tensor=False
        )

    def forward(self, latents, inputs, input_mask=None):
        kv = self.input_norm(inputs)
        attn, weights = self.cross_attn(
            self.latent_norm(latents), kv, kv, key_padding_mask=input_mask, need_weights=True
        )
        latents = latents + attn
        latents = latents + self.cross_ff(latents)
        return self.self_attn(latents), weights


class Perceiver(nn.Module):
    def __init__(self, in_channels, length, num_classes, num_latents=8, latent_dim=32, bands=6):
        super().__init__()
        self.register_buffer("pos", fourier_features(length, bands, max_freq=length / 4))
        input_dim = in_channels + self.pos.shape[-1]
        self.latents = nn.Parameter(torch.randn(num_latents, latent_dim) * 0.02)
        self.block = PerceiverBlock(latent_dim, input_dim, heads=4, self_layers=2)
        self.norm = nn.LayerNorm(latent_dim)
        self.head = nn.Linear(latent_dim, num_classes)

    def forward(self, x, mask=None):
        b = x.shape[0]
        inputs = torch.cat([x, self.pos.expand(b, -1, -1)], dim=-1)
        latents = self.latents.unsqueeze(0).expand(b, -1, -1)
        latents, weights = self.block(latents, inputs, mask)
        return self.head(self.norm(latents).mean(dim=1)), weights


def make_signals(rng, n, length):
    """Class k: a burst at frequency (k + 1) somewhere in noise; some signals are cut short."""
    labels = rng.integers(0, 3, n)
    t = np.arange(length, dtype=np.float32)
    x = rng.normal(0.0, 0.3, size=(n, length, 2)).astype(np.float32)
    lengths = rng.integers(length * 3 // 4, length + 1, n)
    for i, k in enumerate(labels):
        start = rng.integers(0, length // 2)
        burst = np.sin(2 * np.pi * (k + 1) * t / 16.0) * ((t >= start) & (t < start + 24))
        x[i, :, 0] += burst
        x[i, :, 1] += np.cos(2 * np.pi * (k + 1) * t / 16.0) * (t < lengths[i]) * 0.5
    mask = t[None, :] >= lengths[:, None]  # True marks padding
    x[mask] = 0.0
    return torch.from_numpy(x), torch.from_numpy(labels), torch.from_numpy(mask)


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2 or "norm" in name or name == "latents":
            no_decay.append(p)
        else:
            decay.append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def main():
    parser = argparse.ArgumentParser(description="Perceiver on synthetic signals")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--length", type=int, default=96)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup", type=int, default=6)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x, y, mask = make_signals(rng, 192, args.length)
    xt, yt, mt = make_signals(rng, 64, args.length)
    model = Perceiver(2, args.length, 3)
    optimizer = torch.optim.AdamW(param_groups(model, args.weight_decay), lr=args.lr)
    steps_per_epoch = len(x) // args.batch_size
    total = args.epochs * steps_per_epoch

    def lr_lambda(step):
        if step < args.warmup:
            return (step + 1) / args.warmup
        progress = (step - args.warmup) / max(1, total - args.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
    n_decay = len(optimizer.param_groups[0]["params"])
    n_plain = len(optimizer.param_groups[1]["params"])
    print(f"decay tensors {n_decay} no-decay tensors {n_plain}")

    for epoch in range(args.epochs):
        model.train()
        running = 0.0
        for i in range(0, len(x), args.batch_size):
            xb, yb, mb = (
                x[i : i + args.batch_size],
                y[i : i + args.batch_size],
                mask[i : i + args.batch_size],
            )
            logits, _ = model(xb, mb)
            loss = F.cross_entropy(logits, yb, label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            running += loss.item()
        model.eval()
        with torch.no_grad():
            logits, weights = model(xt, mt)
            test_loss = F.cross_entropy(logits, yt)
            acc = (logits.argmax(-1) == yt).float().mean()
            leak = weights.masked_select(mt.unsqueeze(1).expand_as(weights)).sum()
        print(
            f"epoch {epoch} train loss {running / steps_per_epoch:.6f} test loss "
            f"{test_loss.item():.6f} acc {acc.item():.4f} lr {scheduler.get_last_lr()[0]:.6f} "
            f"masked attention {leak.item():.2e}"
        )


if __name__ == "__main__":
    main()
