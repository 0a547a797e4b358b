"""A mixture density network (after Bishop, 1994) on an inverse problem with several
answers per input: a weight-normalized hidden layer (parametrizations.weight_norm), the
output a MixtureSameFamily of Normals, trained by its negative log-likelihood."""

import argparse

import numpy as np
import torch
from torch import distributions, nn, optim
from torch.nn.utils import parametrizations


class MDN(nn.Module):
    def __init__(self, k=5, hidden=32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(1, hidden), nn.Tanh(),
            parametrizations.weight_norm(nn.Linear(hidden, hidden)), nn.Tanh(),
        )  # fmt: skip
        self.logits = nn.Linear(hidden, k)
        self.mu = nn.Linear(hidden, k)
        self.log_sigma = nn.Linear(hidden, k)

    def forward(self, x):
        h = self.body(x)
        mixture = distributions.Categorical(logits=self.logits(h))
        components = distributions.Normal(self.mu(h), self.log_sigma(h).clamp(-5, 3).exp())
        return distributions.MixtureSameFamily(mixture, components)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=25)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    y = rng.uniform(-1, 1, (512, 1))
    x = y + 0.3 * np.sin(2 * np.pi * y) + 0.05 * rng.standard_normal(y.shape)
    x, y = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y[:, 0].astype(np.float32))
    model = MDN()
    opt = optim.Adam(model.parameters(), lr=1e-2)
    for step in range(args.steps):
        idx = slice((step * 128) % 512, (step * 128) % 512 + 128)
        loss = -model(x[idx]).log_prob(y[idx]).mean()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        print(f"step {step} loss: {loss.item():.6f}")
    with torch.no_grad():
        dist = model(x)
        print(f"eval loss: {(-dist.log_prob(y).mean()).item():.6f}")
        print(f"mean loss: {((dist.mean - y) ** 2).mean().item():.6f}")


if __name__ == "__main__":
    main()
