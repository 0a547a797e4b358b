"""An energy-based model (after Du & Mordatch, 2019, "Implicit Generation and Generalization
in Energy-Based Models") on a 2-d ring of Gaussians, or on tiny 8x8 images with a small CNN:
negative samples from Langevin dynamics, where each step takes torch.autograd.grad of the
summed energy with respect to the samples (x.requires_grad_() inside the loop, .detach()
after the step, clamp_ to the data range), a replay buffer refreshed with torch.cat and
index assignment (95% of chains restart from the buffer, 5% from uniform noise), and the
contrastive-divergence loss E(data) - E(samples) with an alpha * (E^2) regularizer."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


class MLPEnergy(nn.Module):
    def __init__(self, dim=2, hidden=64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden),
            Swish(),
            nn.Linear(hidden, hidden),
            Swish(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x):
        return self.net(x).squeeze(-1)


class ConvEnergy(nn.Module):
    def __init__(self, channels=16):
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            Swish(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1),  # 8 -> 4
            Swish(),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1),  # 4 -> 2
            Swish(),
            nn.Flatten(),
            nn.Linear(2 * channels * 4, 1),
        )

    def forward(self, x):
        return self.cnn(x).squeeze(-1)


class ReplayBuffer:
    def __init__(self, shape, size, low, high):
        self.low, self.high = low, high
        self.shape = shape
        self.examples = self.noise(size)

    def noise(self, n):
        return torch.rand(n, *self.shape) * (self.high - self.low) + self.low

    def sample(self, n, reinit=0.05):
        idx = torch.randint(0, self.examples.size(0), (n,))
        buffered = self.examples[idx]
        fresh = torch.rand(n) < reinit
        n_fresh = int(fresh.sum().item())
        if n_fresh:
            buffered[fresh] = self.noise(n_fresh)
        return buffered, idx

    def push(self, samples, idx):
        self.examples[idx] = samples.detach()

    def extend(self, samples, max_size):
        self.examples = torch.cat([samples.detach(), self.examples], dim=0)[:max_size]


def langevin(model, x, steps, step_size, noise, low, high):
    """x <- x - step_size * dE/dx + noise * N(0, 1), the energy model frozen meanwhile."""
    was_training = model.training
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = x.clone()
    for _ in range(steps):
        x.requires_grad_()
        energy = model(x).sum()
        (grad,) = torch.autograd.grad(energy, x)
        x = x.detach() - step_size * grad.clamp(-0.03 / step_size, 0.03 / step_size)
        x = x + noise * torch.randn_like(x)
        x.clamp_(low, high)
    for p in model.parameters():
        p.requires_grad_(True)
    model.train(was_training)
    return x.detach()


def ring_data(rng, n, modes=6, radius=1.5, std=0.12):
    k = rng.integers(0, modes, n)
    angle = 2 * math.pi * k / modes
    centers = np.stack([np.cos(angle), np.sin(angle)], 1) * radius
    return torch.from_numpy((centers + rng.normal(0, std, (n, 2))).astype(np.float32))


def blob_images(rng, n, size=8):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    imgs = np.empty((n, 1, size, size), dtype=np.float32)
    for i in range(n):
        cy, cx = rng.uniform(2, size - 2, 2)
        imgs[i, 0] = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 3.0) * 2 - 1
    return torch.from_numpy(imgs)


def main():
    parser = argparse.ArgumentParser(description="EBM trained with Langevin dynamics")
    parser.add_argument("--data", choices=["ring", "images"], default="ring")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--langevin-steps", type=int, default=10)
    parser.add_argument("--step-size", type=float, default=0.05)
    parser.add_argument("--noise", type=float, default=0.005)
    parser.add_argument("--alpha", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    if args.data == "ring":
        data, low, high = ring_data(rng, 512), -2.5, 2.5
        model = MLPEnergy()
    else:
        data, low, high = blob_images(rng, 256), -1.0, 1.0
        model = ConvEnergy()
    shape = tuple(data.shape[1:])
    buffer = ReplayBuffer(shape, 256, low, high)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.0, 0.999))

    for epoch in range(args.epochs):
        totals = np.zeros(3)
        steps = 0
        for i in range(0, len(data), args.batch_size):
            pos = data[i : i + args.batch_size]
            init, idx = buffer.sample(pos.size(0))
            neg = langevin(model, init, args.langevin_steps, args.step_size, args.noise, low,
                           high)  # fmt: skip
            buffer.push(neg, idx)
            e_pos, e_neg = model(pos), model(neg)
            cd_loss = e_pos.mean() - e_neg.mean()
            reg_loss = args.alpha * (e_pos.pow(2).mean() + e_neg.pow(2).mean())
            loss = cd_loss + reg_loss
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_value_(model.parameters(), 0.1)
            optimizer.step()
            totals += [loss.item(), cd_loss.item(), reg_loss.item()]
            steps += 1
        buffer.extend(neg, max_size=384)
        with torch.no_grad():
            gap = (model(data).mean() - model(buffer.examples).mean()).item()
        t = totals / steps
        print(f"epoch {epoch} loss {t[0]:.6f} cd loss {t[1]:.6f} reg loss {t[2]:.6f} "
              f"energy gap {gap:.4f} buffer {buffer.examples.size(0)}")  # fmt: skip

    # score a held-out batch against noise: lower energy should mean real data
    model.eval()
    held_out = ring_data(rng, 128) if args.data == "ring" else blob_images(rng, 64)
    noise = buffer.noise(held_out.size(0))
    with torch.no_grad():
        e_real, e_noise = model(held_out), model(noise)
        test_loss = F.softplus(e_real - e_noise).mean()
    print(f"held-out ranking loss {test_loss.item():.6f} "
          f"real below noise {(e_real < e_noise).float().mean().item():.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
