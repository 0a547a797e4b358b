"""Entropic optimal transport between point clouds with log-domain Sinkhorn iterations
(torch.logsumexp over squared torch.cdist(p=2) costs, uniform weights by torch.full and
math.log), the debiased Sinkhorn divergence S(a, b) = OT(a, b) - (OT(a, a) + OT(b, b)) / 2
used as a differentiable loss to fit a generator network (Adam) that maps torch.randn noise to a
2-D Gaussian mixture; then a few EM steps of a Gaussian mixture model on the same data:
torch.distributions.MultivariateNormal(loc, scale_tril=...) log_prob, torch.softmax
responsibilities, torch.einsum updates of means and covariances and torch.linalg.cholesky;
--epsilon sets the entropic regularization."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
from torch.distributions import MultivariateNormal


def sinkhorn_cost(x, y, epsilon, iters=20, a=None, b=None):
    """Regularized OT cost <P, C> between uniform clouds, by log-domain Sinkhorn."""
    n, m = x.shape[0], y.shape[0]
    cost = torch.cdist(x, y, p=2) ** 2
    log_a = torch.full((n,), -math.log(n)) if a is None else a.log()
    log_b = torch.full((m,), -math.log(m)) if b is None else b.log()
    f = torch.zeros(n)
    g = torch.zeros(m)
    for _ in range(iters):
        f = -epsilon * torch.logsumexp((g[None, :] - cost) / epsilon + log_b[None, :], dim=1)
        g = -epsilon * torch.logsumexp((f[:, None] - cost) / epsilon + log_a[:, None], dim=0)
    log_plan = (f[:, None] + g[None, :] - cost) / epsilon + log_a[:, None] + log_b[None, :]
    return (log_plan.exp() * cost).sum()


def sinkhorn_divergence(x, y, epsilon, iters=20):
    return (
        sinkhorn_cost(x, y, epsilon, iters)
        - 0.5 * sinkhorn_cost(x, x, epsilon, iters)
        - 0.5 * sinkhorn_cost(y, y, epsilon, iters)
    )


def make_mixture(rng, n, k=3):
    angles = 2 * np.pi * np.arange(k) / k
    centers = 1.5 * np.stack([np.cos(angles), np.sin(angles)], 1)
    labels = rng.integers(0, k, n)
    points = centers[labels] + 0.3 * rng.standard_normal((n, 2))
    return torch.tensor(points, dtype=torch.float32)


class Generator(nn.Module):
    def __init__(self, noise_dim=4, hidden=64):
        super().__init__()
        self.noise_dim = noise_dim
        self.net = nn.Sequential(
            nn.Linear(noise_dim, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, 2),
        )

    def forward(self, n):
        return self.net(torch.randn(n, self.noise_dim))


def em_step(x, weights, means, scale_trils, reg=1e-3):
    """One EM step of a Gaussian mixture: responsibilities, then closed-form updates."""
    components = MultivariateNormal(means, scale_tril=scale_trils)
    log_joint = components.log_prob(x[:, None, :]) + torch.log(weights)  # (N, K)
    resp = torch.softmax(log_joint, dim=1)
    nll = -torch.logsumexp(log_joint, dim=1).mean()
    counts = resp.sum(0)
    weights = counts / len(x)
    means = torch.einsum("nk,nd->kd", resp, x) / counts[:, None]
    diff = x[:, None, :] - means[None]
    cov = torch.einsum("nk,nkd,nke->kde", resp, diff, diff) / counts[:, None, None]
    cov = cov + reg * torch.eye(x.shape[1])
    return weights, means, torch.linalg.cholesky(cov), nll


def main():
    parser = argparse.ArgumentParser(description="Sinkhorn divergence generator and GMM EM")
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    data = make_mixture(rng, 512)
    gen = Generator()
    optimizer = torch.optim.Adam(gen.parameters(), lr=args.lr, betas=(0.5, 0.9))

    for epoch in range(args.epochs):
        total = 0.0
        for _ in range(args.steps):
            idx = torch.randperm(len(data))[: args.batch_size]
            fake = gen(args.batch_size)
            loss = sinkhorn_divergence(fake, data[idx], args.epsilon)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        with torch.no_grad():
            fake = gen(256)
            held_out = sinkhorn_divergence(fake, data[:256], args.epsilon).item()
        print(f"epoch {epoch} loss {total / args.steps:.6f} eval loss {held_out:.6f}")

    # a Gaussian mixture fitted by EM to the same data, started from a few data points
    k = 3
    weights = torch.full((k,), 1.0 / k)
    means = data[torch.randperm(len(data))[:k]].clone()
    scale_trils = torch.eye(2).expand(k, 2, 2).clone()
    for it in range(5):
        weights, means, scale_trils, nll = em_step(data, weights, means, scale_trils)
        print(f"em step {it} nll loss {nll.item():.6f} weights {weights.tolist()}")
    with torch.no_grad():
        fake = gen(512)
        gmm = MultivariateNormal(means, scale_tril=scale_trils)
        log_mix = torch.logsumexp(gmm.log_prob(fake[:, None, :]) + weights.log(), dim=1)
    print(f"generator samples under the GMM: nll loss {-log_mix.mean().item():.6f}")


if __name__ == "__main__":
    main()
