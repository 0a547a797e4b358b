"""Train a tiny MLP on generated data and watch its loss fall.

The task: which of two noisy Gaussian blobs a 2-D point came from, plus a ring around them
as a third class. Run with ``PYTHONPATH=src python examples/train_mlp.py``.
"""

import numpy as np

import manygrad as mg
import manygrad.nn.functional as F
from manygrad import nn


def make_data(n: int, rng: np.random.Generator):
    y = rng.integers(0, 3, n)
    angle = rng.uniform(0, 2 * np.pi, n)
    ring = np.stack([np.cos(angle), np.sin(angle)], 1) * 3.0
    blobs = np.where(y[:, None] == 0, [-1.0, 0.0], [1.0, 0.0])
    x = np.where(y[:, None] == 2, ring, blobs) + rng.normal(0, 0.35, (n, 2))
    return mg.tensor(x.astype(np.float32)), mg.tensor(y)


def main():
    mg.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y = make_data(1024, rng)
    model = nn.Sequential(
        nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3)
    )
    opt = mg.optim.AdamW(model.parameters(), lr=1e-2)
    for epoch in range(1, 201):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if epoch == 1 or epoch % 25 == 0:
            acc = (model(x).argmax(-1) == y).float().mean()
            print(f"epoch {epoch:3d}  loss {loss.item():.4f}  accuracy {100 * acc.item():.1f}%")


if __name__ == "__main__":
    main()
