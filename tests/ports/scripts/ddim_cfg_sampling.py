"""A class-conditional diffusion model with classifier-free guidance (Ho & Salimans, 2022) and
DDIM sampling (Song et al., 2021), in the manner of the popular minimal CFG-diffusion repos, on
synthetic 8x8 images of four shape classes: a small conv denoiser with GroupNorm, SiLU and FiLM
conditioning on the sum of a sinusoidal time embedding and an nn.Embedding of the label, whose
last row is the null class that labels are dropped to with probability p_uncond (torch.where on a
torch.rand mask); the cosine alpha-bar schedule (Nichol & Dhariwal, 2021) indexed per sample; an
epsilon-prediction MSE trained with AdamW, a LambdaLR warm-up and gradient-norm clipping; an EMA
of the weights by torch.optim.swa_utils.AveragedModel with get_ema_multi_avg_fn when it is there
(else a manual EMA of a deepcopy); and deterministic DDIM (eta = 0) under torch.inference_mode on
a strided timestep subsequence, with the conditional and null predictions from one batched call
mixed by the guidance scale and the predicted x0 clipped to [-1, 1]."""

import argparse
import copy
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim import swa_utils
from torch.utils.data import DataLoader, TensorDataset


def timestep_embedding(t, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ResBlock(nn.Module):
    def __init__(self, ch, emb_dim, groups=4):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, ch)
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * ch)
        self.norm2 = nn.GroupNorm(groups, ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return x + h


class Denoiser(nn.Module):
    def __init__(self, num_classes, ch=32, emb_dim=64):
        super().__init__()
        self.num_classes = num_classes
        self.emb_dim = emb_dim
        self.time_mlp = nn.Sequential(
            nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        # one extra row: the null class of classifier-free guidance
        self.label_emb = nn.Embedding(num_classes + 1, emb_dim)
        self.inp = nn.Conv2d(1, ch, 3, padding=1)
        self.blocks = nn.ModuleList([ResBlock(ch, emb_dim) for _ in range(3)])
        self.out_norm = nn.GroupNorm(4, ch)
        self.out = nn.Conv2d(ch, 1, 3, padding=1)

    def forward(self, x, t, y):
        emb = self.time_mlp(timestep_embedding(t, self.emb_dim)) + self.label_emb(y)
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(F.silu(self.out_norm(h)))


def cosine_alphas_cumprod(timesteps, s=0.008):
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    alphas_cumprod = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    betas = (1 - alphas_cumprod[1:] / alphas_cumprod[:-1]).clamp(max=0.999)
    return torch.cumprod(1 - betas, dim=0).float()


class GaussianDiffusion:
    def __init__(self, timesteps=200):
        self.timesteps = timesteps
        self.alphas_cumprod = cosine_alphas_cumprod(timesteps)

    def q_sample(self, x0, t, noise):
        a = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def training_loss(self, model, x0, y, p_uncond, null_class):
        b = x0.shape[0]
        t = torch.randint(0, self.timesteps, (b,))
        noise = torch.randn_like(x0)
        drop = torch.rand(b) < p_uncond
        y = torch.where(drop, torch.full_like(y, null_class), y)
        return F.mse_loss(model(self.q_sample(x0, t, noise), t, y), noise)

    @torch.inference_mode()
    def ddim_sample(self, model, y, guidance, steps=10, eta=0.0, clip=True):
        """Deterministic DDIM (eta = 0) with classifier-free guidance."""
        n = y.shape[0]
        null = torch.full_like(y, model.num_classes)
        times = torch.linspace(self.timesteps - 1, 0, steps).round().long().tolist()
        x = torch.randn(n, 1, 8, 8)
        for i, t in enumerate(times):
            t_prev = times[i + 1] if i + 1 < len(times) else -1
            a = self.alphas_cumprod[t]
            a_prev = self.alphas_cumprod[t_prev] if t_prev >= 0 else torch.tensor(1.0)
            tt = torch.full((2 * n,), t, dtype=torch.long)
            eps_cond, eps_uncond = model(torch.cat([x, x]), tt, torch.cat([y, null])).chunk(2)
            eps = eps_uncond + guidance * (eps_cond - eps_uncond)
            x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
            if clip:
                x0 = x0.clamp(-1, 1)
                eps = (x - a.sqrt() * x0) / (1 - a).sqrt()  # re-derived from the clipped x0
            sigma = eta * ((1 - a_prev) / (1 - a) * (1 - a / a_prev)).sqrt()
            dir_xt = (1 - a_prev - sigma**2).sqrt() * eps
            x = a_prev.sqrt() * x0 + dir_xt
            if eta > 0:
                x = x + sigma * torch.randn_like(x)
        return x


def make_shapes(rng, n, size=8, classes=4):
    """Four classes: a square, a cross, a horizontal bar and a diagonal, in [-1, 1]."""
    labels = rng.integers(0, classes, n)
    images = -np.ones((n, 1, size, size), dtype=np.float32)
    for i, c in enumerate(labels):
        o = rng.integers(0, 2)
        if c == 0:
            images[i, 0, 2 + o : 6 + o, 2:6] = 1
        elif c == 1:
            images[i, 0, 3 + o, 1:7] = 1
            images[i, 0, 1:7, 3 + o] = 1
        elif c == 2:
            images[i, 0, 2 + 3 * o : 4 + 3 * o, :] = 1
        else:
            for j in range(size):
                images[i, 0, j, j] = 1
                if o:
                    images[i, 0, j, max(j - 1, 0)] = 1
    images += rng.normal(0, 0.05, images.shape).astype(np.float32)
    return torch.from_numpy(images.clip(-1, 1)), torch.from_numpy(labels)


def main():
    parser = argparse.ArgumentParser(description="CFG diffusion with DDIM sampling")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--p-uncond", type=float, default=0.2)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--ddim-steps", type=int, default=10)
    parser.add_argument("--ema-decay", type=float, default=0.9)
    parser.add_argument("--manual-ema", action="store_true")
    parser.add_argument("--no-clip", action="store_true")
    args = parser.parse_args()

    num_classes = 4
    rng = np.random.default_rng(0)
    x_train, y_train = make_shapes(rng, 192)
    x_test, y_test = make_shapes(rng, 64)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch_size, shuffle=True)

    model = Denoiser(num_classes)
    diffusion = GaussianDiffusion()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    warmup = 4
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    if not args.manual_ema and hasattr(swa_utils, "get_ema_multi_avg_fn"):
        ema = swa_utils.AveragedModel(
            model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(args.ema_decay), use_buffers=True
        )
        ema_model = ema.module
    else:
        ema = None
        ema_model = copy.deepcopy(model).requires_grad_(False)

    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for x, y in loader:
            loss = diffusion.training_loss(model, x, y, args.p_uncond, num_classes)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update_parameters(model)
            else:
                with torch.no_grad():
                    for p_ema, p in zip(ema_model.parameters(), model.parameters()):
                        p_ema.mul_(args.ema_decay).add_(p, alpha=1 - args.ema_decay)
            total += loss.item() * len(x)
        # a fixed-noise validation loss for the live and the averaged weights
        model.eval()
        with torch.no_grad():
            t = torch.linspace(0, diffusion.timesteps - 1, len(x_test)).long()
            noise = torch.randn_like(x_test)
            xt = diffusion.q_sample(x_test, t, noise)
            val = F.mse_loss(model(xt, t, y_test), noise)
            val_ema = F.mse_loss(ema_model(xt, t, y_test), noise)
            val_null = F.mse_loss(ema_model(xt, t, torch.full_like(y_test, num_classes)), noise)
        print(
            f"epoch {epoch} train loss: {total / len(x_train):.6f} val loss: {val.item():.6f} "
            f"ema val loss: {val_ema.item():.6f} unconditional loss: {val_null.item():.6f}"
        )

    # guided samples of every class, compared with the class means of the data
    ema_model.eval()
    labels = torch.arange(num_classes).repeat_interleave(2)
    for guidance in (0.0, args.guidance):
        samples = diffusion.ddim_sample(
            ema_model, labels, guidance, steps=args.ddim_steps, clip=not args.no_clip
        )
        means = torch.stack([x_train[y_train == c].mean(0) for c in range(num_classes)])
        err = F.mse_loss(samples, means[labels])
        print(
            f"guidance {guidance:.1f} sample loss: {err.item():.6f} "
            f"range [{samples.min().item():.3f}, {samples.max().item():.3f}]"
        )


if __name__ == "__main__":
    main()
