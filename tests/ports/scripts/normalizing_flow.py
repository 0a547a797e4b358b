"""A RealNVP normalizing flow (after Dinh et al., 2017, and common PyTorch code) on a
two-moons-like point cloud: affine coupling layers with masks as buffers, the log-density
through torch.distributions.MultivariateNormal."""

import argparse

import numpy as np
import torch
from torch import distributions, nn, optim


class Coupling(nn.Module):
    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", mask)
        self.s = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(), nn.Linear(32, 2), nn.Tanh())
        self.t = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(), nn.Linear(32, 2))

    def forward(self, x):
        xm = x * self.mask
        s = self.s(xm) * (1 - self.mask)
        t = self.t(xm) * (1 - self.mask)
        z = xm + (1 - self.mask) * (x * torch.exp(s) + t)
        return z, s.sum(dim=1)


class RealNVP(nn.Module):
    def __init__(self):
        super().__init__()
        masks = torch.tensor([[0.0, 1.0], [1.0, 0.0]] * 3)
        self.layers = nn.ModuleList([Coupling(m) for m in masks])
        self.prior = distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))

    def log_prob(self, x):
        logdet = torch.zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return self.prior.log_prob(x) + logdet


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    t = rng.uniform(0, np.pi, 256)
    side = rng.integers(0, 2, 256)
    pts = np.stack([np.cos(t) - side, np.sin(t) * (1 - 2 * side) + 0.3 * side], 1)
    data = torch.from_numpy((pts + 0.05 * rng.standard_normal(pts.shape)).astype(np.float32))
    flow = RealNVP()
    optimizer = optim.Adam([p for p in flow.parameters() if p.requires_grad], lr=3e-3)
    for step in range(args.steps):
        batch = data[(step * 64) % 256 : (step * 64) % 256 + 64]
        loss = -flow.log_prob(batch).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print(f"step {step} loss: {loss.item():.6f}")


if __name__ == "__main__":
    main()
