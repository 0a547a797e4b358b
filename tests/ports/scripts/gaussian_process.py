"""Exact Gaussian-process regression (Rasmussen & Williams, 2006, Alg. 2.1) written directly in
PyTorch, in float64: an RBF kernel from torch.cdist, softplus-constrained hyperparameters, the
negative log marginal likelihood through torch.linalg.cholesky and torch.cholesky_solve with
the log-determinant from the Cholesky diagonal, fitted with Adam; predictive mean and
variance with torch.linalg.solve_triangular; checked against MultivariateNormal.log_prob."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import MultivariateNormal


class ExactGP(nn.Module):
    def __init__(self, x_train, y_train, ard_dims):
        super().__init__()
        self.x_train = x_train
        self.y_train = y_train
        self.raw_lengthscale = nn.Parameter(torch.zeros(ard_dims))
        self.raw_outputscale = nn.Parameter(torch.zeros(()))
        self.raw_noise = nn.Parameter(torch.full((), -2.0))
        self.mean_constant = nn.Parameter(torch.zeros(()))

    @property
    def lengthscale(self):
        return F.softplus(self.raw_lengthscale) + 1e-4

    @property
    def outputscale(self):
        return F.softplus(self.raw_outputscale)

    @property
    def noise(self):
        return F.softplus(self.raw_noise) + 1e-6

    def kernel(self, x1, x2):
        dist = torch.cdist(x1 / self.lengthscale, x2 / self.lengthscale, p=2)
        return self.outputscale * torch.exp(-0.5 * dist.pow(2))

    def _factor(self):
        n = self.x_train.shape[0]
        K = self.kernel(self.x_train, self.x_train)
        K = K + self.noise * torch.eye(n, dtype=K.dtype)
        L = torch.linalg.cholesky(K)
        resid = (self.y_train - self.mean_constant).unsqueeze(-1)
        alpha = torch.cholesky_solve(resid, L)
        return L, alpha, resid

    def forward(self):
        """The negative log marginal likelihood per data point."""
        L, alpha, resid = self._factor()
        n = resid.shape[0]
        data_fit = 0.5 * (resid * alpha).sum()
        complexity = torch.log(torch.diagonal(L)).sum()
        return (data_fit + complexity + 0.5 * n * math.log(2 * math.pi)) / n

    @torch.no_grad()
    def predict(self, x_test):
        L, alpha, _ = self._factor()
        K_s = self.kernel(self.x_train, x_test)
        mean = self.mean_constant + K_s.transpose(0, 1) @ alpha.squeeze(-1)
        v = torch.linalg.solve_triangular(L, K_s, upper=False)
        var = self.outputscale - (v * v).sum(0)
        return mean, var.clamp_min(1e-10) + self.noise


def target_fn(x):
    return torch.sin(3.0 * x[:, 0]) + 0.5 * torch.cos(5.0 * x[:, 1]) * x[:, 0]


def main():
    parser = argparse.ArgumentParser(description="exact GP regression")
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)

    rng = np.random.default_rng(0)
    x_train = torch.from_numpy(rng.uniform(-1.0, 1.0, size=(40, 2)))
    y_train = target_fn(x_train) + 0.05 * torch.from_numpy(rng.standard_normal(40))
    x_test = torch.from_numpy(rng.uniform(-1.0, 1.0, size=(25, 2)))
    y_test = target_fn(x_test)

    model = ExactGP(x_train, y_train, ard_dims=2)
    print(f"dtype {model.raw_lengthscale.dtype}")
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    for i in range(args.iters):
        optimizer.zero_grad()
        loss = model()
        loss.backward()
        optimizer.step()
        if i % 3 == 0 or i == args.iters - 1:
            ls = model.lengthscale.detach()
            print(f"iter {i:02d} loss {loss.item():.6f} lengthscale {ls[0].item():.4f} "
                  f"{ls[1].item():.4f} noise {model.noise.item():.5f}")  # fmt: skip

    with torch.no_grad():
        L, _, resid = model._factor()
        mvn = MultivariateNormal(torch.zeros(len(resid)), scale_tril=L)
        ref = -mvn.log_prob(resid.squeeze(-1)) / len(resid)
        print(f"mll loss {model().item():.8f} mvn loss {ref.item():.8f}")

    mean, var = model.predict(x_test)
    rmse = (mean - y_test).pow(2).mean().sqrt()
    nlpd = 0.5 * (torch.log(2 * math.pi * var) + (y_test - mean).pow(2) / var).mean()
    print(f"test rmse loss {rmse.item():.6f} nlpd loss {nlpd.item():.6f} "
          f"mean var {var.mean().item():.6f} dtype {mean.dtype}")  # fmt: skip

    torch.set_default_dtype(previous)
    print(f"default dtype restored: {torch.get_default_dtype()}")


if __name__ == "__main__":
    main()
