"""Polynomial regression with nn.Linear (after pytorch/examples: regression/main.py)."""

import argparse

import numpy as np
import torch
import torch.nn.functional as F

POLY_DEGREE = 4


def make_features(x):
    """Builds features i.e. a matrix with columns [x, x^2, x^3, x^4]."""
    x = x.unsqueeze(1)
    return torch.cat([x**i for i in range(1, POLY_DEGREE + 1)], 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    W_target = torch.from_numpy(rng.standard_normal((POLY_DEGREE, 1)).astype(np.float32)) * 5
    b_target = torch.from_numpy(rng.standard_normal(1).astype(np.float32)) * 5

    def f(x):
        return x.mm(W_target) + b_target.item()

    fc = torch.nn.Linear(W_target.size(0), 1)
    opt = torch.optim.SGD(fc.parameters(), lr=0.1)
    for batch_idx in range(1, args.steps + 1):
        x = torch.from_numpy(rng.standard_normal(32).astype(np.float32))
        batch_x = make_features(x)
        batch_y = f(batch_x)
        fc.zero_grad()
        output = F.smooth_l1_loss(fc(batch_x), batch_y)
        loss = output.item()
        output.backward()
        opt.step()
        print(f"step {batch_idx} loss {loss:.6f}")
    print("==> Learned function:", fc.weight.view(-1).tolist(), fc.bias.item())


if __name__ == "__main__":
    main()
