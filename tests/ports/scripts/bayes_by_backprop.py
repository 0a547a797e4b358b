"""Bayes by Backprop (Blundell et al., 2015) for 1-D regression: every weight matrix has a
factorised Gaussian posterior, an Independent(Normal(mu, softplus(rho)), 2) sampled by the
reparameterisation trick; the prior is Blundell's scale mixture of two Gaussians (a
MixtureSameFamily; Monte Carlo KL) or a unit Gaussian (closed-form torch.distributions.kl
kl_divergence between Independent distributions). The observation noise has a LogNormal posterior (or, with --noise softplus, a TransformedDistribution of a
Normal through a SoftplusTransform and an AffineTransform) under a Gamma prior. The test metric
is the predictive F.gaussian_nll_loss of the Monte Carlo mean and variance."""

import argparse
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import (
    Categorical,
    Gamma,
    Independent,
    LogNormal,
    MixtureSameFamily,
    Normal,
    TransformedDistribution,
)
from torch.distributions.kl import kl_divergence
from torch.distributions.transforms import AffineTransform, SoftplusTransform

# NOTE: rho is stored as an offset from RHO0, so that it starts at zero
RHO0 = 5.0


class BayesLinear(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.w_mu = nn.Parameter(torch.empty(n_out, n_in).uniform_(-0.2, 0.2))
        self.w_rho = nn.Parameter(torch.zeros(n_out, n_in))
        self.b_mu = nn.Parameter(torch.zeros(n_out))
        self.b_rho = nn.Parameter(torch.zeros(n_out))

    def posteriors(self):
        return (
            Independent(Normal(self.w_mu, F.softplus(self.w_rho - RHO0)), 2),
            Independent(Normal(self.b_mu, F.softplus(self.b_rho - RHO0)), 1),
        )

    def forward(self, x, prior):
        q_w, q_b = self.posteriors()
        w, b = q_w.rsample(), q_b.rsample()
        if prior == "gaussian":
            p_w = Independent(Normal(torch.zeros_like(w), torch.ones_like(w)), 2)
            p_b = Independent(Normal(torch.zeros_like(b), torch.ones_like(b)), 1)
            kl = kl_divergence(q_w, p_w) + kl_divergence(q_b, p_b)
        else:
            kl = q_w.log_prob(w) + q_b.log_prob(b) - log_prior(w) - log_prior(b)
        return F.linear(x, w, b), kl


def log_prior(w):
    mix = Categorical(probs=torch.tensor([0.5, 0.5]))
    comp = Normal(torch.zeros(2), torch.tensor([1.0, math.exp(-3.0)]))
    return MixtureSameFamily(mix, comp).log_prob(w).sum()


class BayesMLP(nn.Module):
    def __init__(self, hidden, noise):
        super().__init__()
        self.layers = nn.ModuleList([BayesLinear(1, hidden), BayesLinear(hidden, hidden),
                                     BayesLinear(hidden, 1)])  # fmt: skip
        self.noise = noise
        self.s_mu = nn.Parameter(torch.tensor(-1.0))
        self.s_rho = nn.Parameter(torch.tensor(-3.0))

    def noise_posterior(self):
        scale = F.softplus(self.s_rho)
        if self.noise == "lognormal":
            return LogNormal(self.s_mu, scale)
        transforms = [SoftplusTransform(), AffineTransform(loc=1e-3, scale=1.0)]
        return TransformedDistribution(Normal(self.s_mu, scale), transforms)

    def forward(self, x, prior):
        kl = 0.0
        for i, layer in enumerate(self.layers):
            x, k = layer(x, prior)
            kl = kl + k
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        q_s = self.noise_posterior()
        sigma = q_s.rsample()
        kl = kl + q_s.log_prob(sigma) - Gamma(2.0, 4.0).log_prob(sigma)
        return x.squeeze(-1), sigma, kl


def make_data(n):
    x = torch.linspace(-2.0, 2.0, n).unsqueeze(1)
    y = x.squeeze(1) * torch.sin(3 * x.squeeze(1)) + 0.1 * torch.randn(n)
    return x, y


def main():
    parser = argparse.ArgumentParser(description="Bayes by Backprop regression")
    parser.add_argument("--prior", default="mixture", choices=["mixture", "gaussian"])
    parser.add_argument("--noise", default="lognormal", choices=["lognormal", "softplus"])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()

    x, y = make_data(128)
    x_test, y_test = make_data(64)
    model = BayesMLP(32, args.noise)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    perm = torch.randperm(len(x))

    for epoch in range(args.epochs):
        total = 0.0
        for _ in range(10):
            for idx in perm.chunk(args.batches):
                pred, sigma, kl = model(x[idx], args.prior)
                nll = -Normal(pred, sigma).log_prob(y[idx]).sum()
                loss = (kl / args.batches + nll) / len(x)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item()
        with torch.no_grad():
            preds = torch.stack([model(x_test, args.prior)[0] for _ in range(args.samples)])
            q_s = model.noise_posterior()
            sigma = q_s.base_dist.loc  # the posterior median, through the transforms
            for t in q_s.transforms:
                sigma = t(sigma)
            mean, var = preds.mean(0), preds.var(0) + sigma**2
            test_nll = F.gaussian_nll_loss(mean, y_test, var, full=True)
            rmse = F.mse_loss(mean, y_test).sqrt()
        print(
            f"epoch {epoch} loss {total / (10 * args.batches):.6f} "
            f"test nll loss {test_nll.item():.6f} rmse {rmse.item():.4f}"
        )


if __name__ == "__main__":
    main()
