"""A spectrally normalised GAN (Miyato et al., 2018) on the classic 2-D ring of eight
Gaussians: the discriminator's layers go through torch.nn.utils.parametrizations.spectral_norm
(or, with --legacy, the hook-based torch.nn.utils.spectral_norm), trained with the hinge loss,
two critic steps per generator step and Adam(0, 0.9) at two time scales (TTUR). The data come
from a torch.distributions.MixtureSameFamily of Independent Normals, whose log_prob scores the
generated points; the power-iteration vectors are re-seeded from torch.randn so that runs
repeat."""

import argparse
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal


def ring_of_gaussians(n_modes=8, radius=2.0, std=0.2):
    angles = torch.arange(n_modes, dtype=torch.float32) * (2 * math.pi / n_modes)
    means = torch.stack([radius * torch.cos(angles), radius * torch.sin(angles)], dim=1)
    mix = Categorical(probs=torch.full((n_modes,), 1.0 / n_modes))
    comp = Independent(Normal(means, torch.full_like(means, std)), 1)
    return MixtureSameFamily(mix, comp)


def discriminator(hidden, legacy):
    sn = nn.utils.spectral_norm if legacy else nn.utils.parametrizations.spectral_norm
    return nn.Sequential(
        sn(nn.Linear(2, hidden)), nn.LeakyReLU(0.1),
        sn(nn.Linear(hidden, hidden)), nn.LeakyReLU(0.1),
        sn(nn.Linear(hidden, 1)),
    )  # fmt: skip


def reseed_power_iterations(model):
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("_u") or name.endswith("_v"):
                buf.copy_(F.normalize(torch.randn(buf.shape), dim=0))


def main():
    parser = argparse.ArgumentParser(description="SN-GAN on a ring of Gaussians")
    parser.add_argument("--legacy", action="store_true", help="nn.utils.spectral_norm")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--n-critic", type=int, default=2)
    args = parser.parse_args()

    data = ring_of_gaussians()
    z_dim, hidden = 4, 32
    G = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                      nn.Linear(hidden, 2))  # fmt: skip
    D = discriminator(hidden, args.legacy)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.0, 0.9))
    reseed_power_iterations(D)
    z_eval = torch.randn(256, z_dim)

    for epoch in range(args.epochs):
        d_total = g_total = 0.0
        for _ in range(args.steps):
            for _ in range(args.n_critic):
                real = data.sample((args.batch,))
                with torch.no_grad():
                    fake = G(torch.randn(args.batch, z_dim))
                d_loss = F.relu(1.0 - D(real)).mean() + F.relu(1.0 + D(fake)).mean()
                opt_d.zero_grad()
                d_loss.backward()
                opt_d.step()
            g_loss = -D(G(torch.randn(args.batch, z_dim))).mean()
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            d_total += d_loss.item()
            g_total += g_loss.item()
        D.eval()
        with torch.no_grad():
            samples = G(z_eval)
            nll = -data.log_prob(samples).clamp(min=-100.0).mean().item()
            first = D[0]
            w = first.weight
            sigma = torch.linalg.matrix_norm(w, ord=2).item()
        D.train()
        print(
            f"epoch {epoch} d loss {d_total / args.steps:.6f} g loss {g_total / args.steps:.6f} "
            f"nll loss {nll:.6f} sigma {sigma:.4f}"
        )


if __name__ == "__main__":
    main()
