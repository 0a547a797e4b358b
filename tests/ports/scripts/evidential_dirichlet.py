"""Evidential deep learning (Sensoy et al., 2018) on synthetic 2-D blobs: an MLP (Mish, SELU
or CELU activations) outputs non-negative evidence (softplus, relu or clamped exp), the
Dirichlet concentration is evidence + 1, and the loss is the expected MSE, the expected cross
entropy (torch.digamma) or the type-II likelihood (torch.log), plus an annealed KL(Dir(a~) ||
Dir(1)) regulariser written with torch.lgamma / torch.special.digamma, or through
torch.distributions.Dirichlet and kl_divergence. Evaluation: accuracy, the mean vacuity K / S
on in- and out-of-distribution points, Dirichlet.entropy() and Dirichlet.log_prob of
smoothed one-hot targets."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Dirichlet, kl_divergence


def make_blobs(rng, n_per_class, num_classes=3):
    angles = np.arange(num_classes) * 2 * np.pi / num_classes
    centers = 2.5 * np.stack([np.cos(angles), np.sin(angles)], 1)
    x = np.concatenate([c + rng.standard_normal((n_per_class, 2)) for c in centers])
    y = np.repeat(np.arange(num_classes), n_per_class)
    perm = rng.permutation(len(x))
    return torch.tensor(x[perm], dtype=torch.float32), torch.tensor(y[perm])


class EvidentialNet(nn.Module):
    def __init__(self, num_classes, hidden=64, activation="mish", evidence="softplus"):
        super().__init__()
        act = {"mish": nn.Mish, "selu": nn.SELU, "celu": lambda: nn.CELU(alpha=0.5)}[activation]
        self.body = nn.Sequential(
            nn.Linear(2, hidden), act(), nn.Linear(hidden, hidden), act(),
            nn.Linear(hidden, num_classes),
        )  # fmt: skip
        self.evidence = evidence

    def forward(self, x):
        logits = self.body(x)
        if self.evidence == "softplus":
            return F.softplus(logits)
        if self.evidence == "relu":
            return F.relu(logits)
        return torch.exp(torch.clamp(logits, -10, 10))


def kl_to_uniform(alpha):
    """KL(Dir(alpha) || Dir(1, ..., 1)) in closed form."""
    k = alpha.shape[-1]
    s = alpha.sum(-1, keepdim=True)
    first = torch.lgamma(s).squeeze(-1) - torch.lgamma(alpha).sum(-1) - math_lgamma(k)
    second = ((alpha - 1) * (torch.special.digamma(alpha) - torch.special.digamma(s))).sum(-1)
    return first + second


def math_lgamma(k):
    return torch.lgamma(torch.tensor(float(k)))


def evidential_loss(alpha, target, kind):
    s = alpha.sum(-1, keepdim=True)
    if kind == "mse":
        p = alpha / s
        err = (target - p) ** 2
        var = p * (1 - p) / (s + 1)
        return (err + var).sum(-1)
    if kind == "digamma":
        return (target * (torch.digamma(s) - torch.digamma(alpha))).sum(-1)
    return (target * (torch.log(s) - torch.log(alpha))).sum(-1)


def main():
    parser = argparse.ArgumentParser(description="Evidential classification")
    parser.add_argument("--loss", default="mse", choices=["mse", "digamma", "log"])
    parser.add_argument("--activation", default="mish", choices=["mish", "selu", "celu"])
    parser.add_argument("--evidence", default="softplus", choices=["softplus", "relu", "exp"])
    parser.add_argument("--kl", default="closed-form", choices=["closed-form", "distributions"])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    num_classes = 3
    x, y = make_blobs(rng, 80, num_classes)
    x_train, y_train, x_test, y_test = x[:192], y[:192], x[192:], y[192:]
    x_ood = torch.tensor(rng.uniform(-1, 1, (64, 2)) * 3 + np.array([8.0, 8.0]),
                         dtype=torch.float32)  # fmt: skip

    model = EvidentialNet(num_classes, activation=args.activation, evidence=args.evidence)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-4)
    uniform = torch.ones(num_classes)

    for epoch in range(args.epochs):
        model.train()
        anneal = min(1.0, epoch / 5)
        total = 0.0
        for start in range(0, len(x_train), args.batch_size):
            xb, yb = (
                x_train[start : start + args.batch_size],
                y_train[start : start + args.batch_size],
            )
            target = F.one_hot(yb, num_classes).float()
            alpha = model(xb) + 1
            data_term = evidential_loss(alpha, target, args.loss)
            # only the misleading evidence is pushed towards the uniform Dirichlet
            alpha_tilde = target + (1 - target) * alpha
            if args.kl == "distributions":
                kl = kl_divergence(Dirichlet(alpha_tilde), Dirichlet(uniform.expand_as(alpha)))
            else:
                kl = kl_to_uniform(alpha_tilde)
            loss = (data_term + anneal * kl).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(xb)

        model.eval()
        with torch.no_grad():
            alpha = model(x_test) + 1
            acc = (alpha.argmax(-1) == y_test).float().mean().item()
            vacuity = (num_classes / alpha.sum(-1)).mean().item()
            vacuity_ood = (num_classes / (model(x_ood) + 1).sum(-1)).mean().item()
            dist = Dirichlet(alpha)
            smooth = F.one_hot(y_test, num_classes).float() * 0.9 + 0.1 / num_classes
            nll = -dist.log_prob(smooth).mean().item()
            entropy = dist.entropy().mean().item()
        print(
            f"epoch {epoch} train loss {total / len(x_train):.6f} test nll loss {nll:.5f} "
            f"entropy {entropy:.5f} acc {acc:.3f} vacuity {vacuity:.4f} ood {vacuity_ood:.4f}"
        )


if __name__ == "__main__":
    main()
