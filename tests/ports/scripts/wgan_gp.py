"""WGAN with gradient penalty (after Gulrajani et al., 2017, and common PyTorch code) on a
synthetic 2-d mixture: the critic's penalty differentiates through its own input gradient."""

import argparse

import numpy as np
import torch
from torch import autograd, nn, optim


def make_critic():
    return nn.Sequential(
        nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1)
    )


def make_generator():
    return nn.Sequential(
        nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 2)
    )


def gradient_penalty(critic, real, fake, alpha):
    inter = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out = critic(inter)
    grads = autograd.grad(
        outputs=out,
        inputs=inter,
        grad_outputs=torch.ones_like(out),
        create_graph=True,
        retain_graph=True,
    )[0]
    return ((grads.norm(2, dim=1) - 1) ** 2).mean()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    centers = np.array([[1.0, 1.0], [-1.0, 1.0], [0.0, -1.0]], np.float32)
    critic, gen = make_critic(), make_generator()
    opt_c = optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))
    opt_g = optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.9))
    for step in range(args.steps):
        idx = rng.integers(0, 3, 32)
        real = torch.from_numpy(
            centers[idx] + 0.05 * rng.standard_normal((32, 2)).astype(np.float32)
        )
        for _ in range(2):
            z = torch.randn(32, 4)
            fake = gen(z).detach()
            alpha = torch.rand(32, 1)
            loss_c = (
                critic(fake).mean()
                - critic(real).mean()
                + 10.0 * gradient_penalty(critic, real, fake, alpha)
            )
            opt_c.zero_grad()
            loss_c.backward()
            opt_c.step()
        z = torch.randn(32, 4)
        loss_g = -critic(gen(z)).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        print(f"step {step} critic loss: {loss_c.item():.6f} generator loss: {loss_g.item():.6f}")


if __name__ == "__main__":
    main()
