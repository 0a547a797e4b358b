"""An RNN with an orthogonal recurrent matrix (parametrizations.orthogonal, Cayley map) on
the adding problem, its matrices trained with Muon and the biases with AdamW; then the
readout is magnitude-pruned (nn.utils.prune) and evaluated again."""

import argparse

import numpy as np
import torch
from torch import nn, optim
from torch.nn.utils import parametrizations, prune


class OrthogonalRNN(nn.Module):
    def __init__(self, hidden=24):
        super().__init__()
        self.hidden = hidden
        self.inp = nn.Linear(2, hidden)
        self.rec = parametrizations.orthogonal(
            nn.Linear(hidden, hidden, bias=False), orthogonal_map="cayley",
            use_trivialization=False,
        )  # fmt: skip
        self.out = nn.Linear(hidden, 1)

    def forward(self, x):
        h = torch.zeros(x.shape[0], self.hidden)
        for t in range(x.shape[1]):
            h = torch.tanh(self.inp(x[:, t]) + self.rec(h))
        return self.out(h).squeeze(-1)


def adding_problem(rng, n, steps):
    values = rng.uniform(0, 1, (n, steps))
    marks = np.zeros((n, steps))
    for i in range(n):
        marks[i, rng.choice(steps, 2, replace=False)] = 1
    x = np.stack([values, marks], -1).astype(np.float32)
    y = (values * marks).sum(1).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x, y = adding_problem(rng, 256, 12)
    model = OrthogonalRNN()
    matrices = [p for p in model.parameters() if p.ndim == 2]
    others = [p for p in model.parameters() if p.ndim != 2]
    muon = optim.Muon(matrices, lr=0.02, weight_decay=0.0)
    adamw = optim.AdamW(others, lr=1e-2)
    for step in range(args.steps):
        idx = slice((step * 64) % 256, (step * 64) % 256 + 64)
        loss = nn.functional.mse_loss(model(x[idx]), y[idx])
        muon.zero_grad()
        adamw.zero_grad()
        loss.backward()
        muon.step()
        adamw.step()
        print(f"step {step} loss: {loss.item():.6f}")
    w = model.rec.weight.detach()
    print(f"orthogonality loss: {(w @ w.T - torch.eye(w.shape[0])).abs().max().item():.6f}")
    prune.l1_unstructured(model.out, "weight", amount=0.5)
    with torch.no_grad():
        print(f"pruned loss: {nn.functional.mse_loss(model(x), y).item():.6f}")
    prune.remove(model.out, "weight")
    print(f"zeros: {int((model.out.weight == 0).sum())}")


if __name__ == "__main__":
    main()
