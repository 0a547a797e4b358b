"""Hamiltonian neural network (Greydanus et al., 2019) on synthetic mass-spring and pendulum
trajectories: an MLP (Tanh, Softplus or LeakyReLU: --activation) outputs a scalar H(q, p); the
vector field is its gradient from torch.autograd.grad(H.sum(), x, create_graph=True) times the
symplectic matrix, trained with AdamW (default weight decay, and a StepLR schedule) on observed
time derivatives by F.mse_loss; a baseline MLP outputs the field directly (--baseline). With
LeakyReLU the biases reach the loss only through the activation's mask: their gradients are
zeros (PyTorch's double backward), so AdamW still decays them. A leapfrog rollout of the learnt
field runs under @torch.no_grad with torch.enable_grad() around each gradient call and reports
how far the true energy drifts along the learnt trajectory."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def true_hamiltonian(x, system):
    q, p = x.unbind(-1)
    if system == "spring":
        return 0.5 * q**2 + 0.5 * p**2
    return 3.0 * (1 - torch.cos(q)) + 0.5 * p**2  # pendulum, g/l = 3


def true_field(x, system):
    q, p = x[..., 0], x[..., 1]
    dq = p
    dp = -q if system == "spring" else -3.0 * np.sin(q)
    return np.stack([dq, dp], -1)


def make_dataset(rng, system, trajectories=24, steps=20, dt=0.1, noise=0.05):
    """States along exact-ish trajectories (small-step RK4) with noisy derivative labels."""
    xs, dxs = [], []
    for _ in range(trajectories):
        radius = rng.uniform(0.3, 1.2) if system == "spring" else rng.uniform(0.3, 2.0)
        angle = rng.uniform(0, 2 * np.pi)
        x = np.array([radius * np.cos(angle), radius * np.sin(angle)])
        for _ in range(steps):
            xs.append(x.copy())
            dxs.append(true_field(x, system) + noise * rng.standard_normal(2))
            for _ in range(4):  # RK4 substeps
                h = dt / 4
                k1 = true_field(x, system)
                k2 = true_field(x + h / 2 * k1, system)
                k3 = true_field(x + h / 2 * k2, system)
                k4 = true_field(x + h * k3, system)
                x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    x = torch.tensor(np.array(xs), dtype=torch.float32)
    dx = torch.tensor(np.array(dxs), dtype=torch.float32)
    return x, dx


ACTIVATIONS = {"tanh": nn.Tanh, "softplus": nn.Softplus, "leaky_relu": nn.LeakyReLU}


class MLP(nn.Module):
    def __init__(self, d_in, d_out, hidden=64, activation="tanh"):
        super().__init__()
        act = ACTIVATIONS[activation]
        self.net = nn.Sequential(
            nn.Linear(d_in, hidden),
            act(),
            nn.Linear(hidden, hidden),
            act(),
            nn.Linear(hidden, d_out, bias=False),
        )

    def forward(self, x):
        return self.net(x)


class HNN(nn.Module):
    def __init__(self, hidden=64, baseline=False, activation="tanh"):
        super().__init__()
        self.baseline = baseline
        self.mlp = MLP(2, 2 if baseline else 1, hidden, activation)
        # dq/dt = dH/dp, dp/dt = -dH/dq: the field is J^T grad H
        self.register_buffer("J", torch.tensor([[0.0, 1.0], [-1.0, 0.0]]))

    def hamiltonian(self, x):
        return self.mlp(x).squeeze(-1)

    def time_derivative(self, x, create_graph=True):
        if self.baseline:
            return self.mlp(x)
        if not x.requires_grad:
            x = x.requires_grad_(True)
        H = self.hamiltonian(x)
        (dH,) = torch.autograd.grad(H.sum(), x, create_graph=create_graph)
        return dH @ self.J.t()


@torch.no_grad()
def leapfrog_rollout(model, x0, dt, steps):
    """Kick-drift-kick leapfrog on the learnt field; gradients are switched on only where the
    network's Hamiltonian is differentiated."""

    def field(x):
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            return model.time_derivative(x, create_graph=False).detach()

    x = x0.clone()
    path = [x]
    for _ in range(steps):
        p_half = x[:, 1] + 0.5 * dt * field(x)[:, 1]
        q_new = x[:, 0] + dt * field(torch.stack([x[:, 0], p_half], 1))[:, 0]
        x_half = torch.stack([q_new, p_half], 1)
        p_new = p_half + 0.5 * dt * field(x_half)[:, 1]
        x = torch.stack([q_new, p_new], 1)
        path.append(x)
    return torch.stack(path)


def main():
    parser = argparse.ArgumentParser(description="Hamiltonian neural network")
    parser.add_argument("--system", default="spring", choices=["spring", "pendulum"])
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--activation", default="tanh", choices=sorted(ACTIVATIONS))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=60)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x, dx = make_dataset(rng, args.system)
    n_train = int(0.8 * len(x))
    x_train, dx_train, x_test, dx_test = x[:n_train], dx[:n_train], x[n_train:], dx[n_train:]

    model = HNN(baseline=args.baseline, activation=args.activation)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)

    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(n_train)
        total = 0.0
        for idx in perm.split(args.batch_size):
            xb = x_train[idx].clone().requires_grad_(True)
            pred = model.time_derivative(xb)
            loss = F.mse_loss(pred, dx_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        scheduler.step()
        model.eval()
        test_pred = model.time_derivative(x_test.clone())
        test_loss = F.mse_loss(test_pred, dx_test).item()
        print(
            f"epoch {epoch} loss {total / n_train:.6f} test loss {test_loss:.6f} "
            f"lr {scheduler.get_last_lr()[0]:.5f}"
        )

    x0 = torch.tensor([[1.0, 0.0], [0.0, 0.8], [-0.6, 0.3]])
    path = leapfrog_rollout(model, x0, dt=0.1, steps=int(2 * math.pi / 0.1))
    energy = true_hamiltonian(path, args.system)
    drift = (energy - energy[0]).abs().mean(0)
    assert not path.requires_grad
    print(f"rollout energy drift loss {drift.mean().item():.6f} max {drift.max().item():.6f}")
    if not args.baseline:
        learnt = model.hamiltonian(path.reshape(-1, 2)).detach().reshape(path.shape[:2])
        spread = (learnt - learnt[0]).std(0).mean()
        print(f"learnt H conservation loss {spread.item():.6f}")


if __name__ == "__main__":
    main()
