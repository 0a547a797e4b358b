"""Soft-DTW (Cuturi & Blondel, 2017) as the training loss of a GRU forecaster on synthetic
sequences with random phase shifts. Two implementations of the loss: a
torch.autograd.Function whose forward runs the soft-min recursion under no_grad and whose
backward runs the paper's expected-alignment recursion by hand (Algorithm 2), or the plain
recursion through torch.logsumexp over torch.stack that autograd differentiates (a graph of
a few thousand small nodes). nn.GRU encoder with batch_first, a linear head that emits the
whole horizon, Adam with ExponentialLR; evaluation by MSE and by the soft-DTW divergence
(sdtw(x, y) - (sdtw(x, x) + sdtw(y, y)) / 2)."""

import argparse
import math

import torch
import torch.nn as nn


def pairwise_sq_dist(x, y):
    return ((x[:, :, None, :] - y[:, None, :, :]) ** 2).sum(-1)


def soft_min(a, b, c, gamma):
    stacked = torch.stack([a, b, c], dim=-1)
    return -gamma * torch.logsumexp(-stacked / gamma, dim=-1)


class SoftDTWFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, dist, gamma):
        batch, n, m = dist.shape
        r = dist.new_full((batch, n + 2, m + 2), math.inf)
        r[:, 0, 0] = 0.0
        for i in range(1, n + 1):
            for j in range(1, m + 1):
                r[:, i, j] = dist[:, i - 1, j - 1] + soft_min(
                    r[:, i - 1, j - 1], r[:, i - 1, j], r[:, i, j - 1], gamma
                )
        ctx.save_for_backward(dist, r)
        ctx.gamma = gamma
        return r[:, n, m].clone()

    @staticmethod
    def backward(ctx, grad_output):
        dist, r = ctx.saved_tensors
        gamma = ctx.gamma
        batch, n, m = dist.shape
        d = dist.new_zeros(batch, n + 2, m + 2)
        d[:, 1 : n + 1, 1 : m + 1] = dist
        r = r.clone()
        r[:, :, m + 1] = -math.inf
        r[:, n + 1, :] = -math.inf
        r[:, n + 1, m + 1] = r[:, n, m]
        e = dist.new_zeros(batch, n + 2, m + 2)
        e[:, n + 1, m + 1] = 1.0
        for j in range(m, 0, -1):
            for i in range(n, 0, -1):
                a = torch.exp((r[:, i + 1, j] - r[:, i, j] - d[:, i + 1, j]) / gamma)
                b = torch.exp((r[:, i, j + 1] - r[:, i, j] - d[:, i, j + 1]) / gamma)
                c = torch.exp((r[:, i + 1, j + 1] - r[:, i, j] - d[:, i + 1, j + 1]) / gamma)
                e[:, i, j] = e[:, i + 1, j] * a + e[:, i, j + 1] * b + e[:, i + 1, j + 1] * c
        return grad_output[:, None, None] * e[:, 1 : n + 1, 1 : m + 1], None


def soft_dtw_autograd(dist, gamma):
    batch, n, m = dist.shape
    inf = dist.new_full((batch,), math.inf)
    prev = [dist.new_zeros(batch)] + [inf] * m
    for i in range(1, n + 1):
        row = [inf]
        for j in range(1, m + 1):
            row.append(dist[:, i - 1, j - 1] + soft_min(prev[j - 1], prev[j], row[j - 1], gamma))
        prev = row
    return prev[m]


def soft_dtw(x, y, gamma, impl):
    dist = pairwise_sq_dist(x, y)
    if impl == "function":
        return SoftDTWFunction.apply(dist, gamma)
    return soft_dtw_autograd(dist, gamma)


def make_series(num, past, horizon):
    t = torch.arange(past + horizon, dtype=torch.float32)
    phase = torch.rand(num, 1) * 2 * math.pi
    freq = 0.2 + 0.2 * torch.rand(num, 1)
    series = torch.sin(freq * t + phase) + 0.5 * torch.sin(2.3 * freq * t + 2 * phase)
    series = series + 0.05 * torch.randn(num, past + horizon)
    return series[:, :past, None], series[:, past:, None]


class Forecaster(nn.Module):
    def __init__(self, horizon, hidden=32):
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, horizon)

    def forward(self, x):
        _, h = self.gru(x)
        return self.head(h[-1]).unsqueeze(-1)


def main():
    parser = argparse.ArgumentParser(description="Soft-DTW forecasting")
    parser.add_argument("--impl", default="function", choices=["function", "autograd"])
    parser.add_argument("--gamma", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--horizon", type=int, default=8)
    args = parser.parse_args()

    past = 16
    x_train, y_train = make_series(96, past, args.horizon)
    x_test, y_test = make_series(32, past, args.horizon)
    model = Forecaster(args.horizon)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
    batch_size = 16

    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for start in range(0, len(x_train), batch_size):
            xb, yb = x_train[start : start + batch_size], y_train[start : start + batch_size]
            loss = soft_dtw(model(xb), yb, args.gamma, args.impl).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(xb)
        scheduler.step()

        model.eval()
        with torch.no_grad():
            pred = model(x_test)
            mse = nn.functional.mse_loss(pred, y_test).item()
            divergence = (
                (
                    soft_dtw(pred, y_test, args.gamma, "function")
                    - 0.5 * soft_dtw(pred, pred, args.gamma, "function")
                    - 0.5 * soft_dtw(y_test, y_test, args.gamma, "function")
                )
                .mean()
                .item()
            )
        print(
            f"epoch {epoch} train sdtw loss {total / len(x_train):.6f} test mse loss {mse:.6f} "
            f"divergence {divergence:.5f}"
        )


if __name__ == "__main__":
    main()
