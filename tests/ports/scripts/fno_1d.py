"""A 1-d Fourier neural operator (after Li et al., 2021, "Fourier Neural Operator for
Parametric PDEs", and its public fourier_1d.py) learning the heat equation's solution map
on synthetic data: spectral convolutions with complex weights through rfft/irfft/einsum."""

import argparse
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class SpectralConv1d(nn.Module):
    def __init__(self, in_channels, out_channels, modes):
        super().__init__()
        self.in_channels, self.out_channels, self.modes = in_channels, out_channels, modes
        self.scale = 1 / (in_channels * out_channels)
        self.weights = nn.Parameter(
            self.scale * torch.rand(in_channels, out_channels, modes, dtype=torch.cfloat)
        )

    def forward(self, x):
        batch = x.shape[0]
        x_ft = torch.fft.rfft(x)
        out_ft = torch.zeros(batch, self.out_channels, x.size(-1) // 2 + 1, dtype=torch.cfloat)
        out_ft[:, :, : self.modes] = torch.einsum(
            "bix,iox->box", x_ft[:, :, : self.modes], self.weights
        )
        return torch.fft.irfft(out_ft, n=x.size(-1))


class FNO1d(nn.Module):
    def __init__(self, modes, width):
        super().__init__()
        self.fc0 = nn.Linear(2, width)
        self.convs = nn.ModuleList([SpectralConv1d(width, width, modes) for _ in range(2)])
        self.ws = nn.ModuleList([nn.Conv1d(width, width, 1) for _ in range(2)])
        self.fc1 = nn.Linear(width, 32)
        self.fc2 = nn.Linear(32, 1)

    def forward(self, x):
        grid = torch.linspace(0, 1, x.shape[1]).reshape(1, -1, 1).repeat(x.shape[0], 1, 1)
        x = self.fc0(torch.cat((x, grid), dim=-1)).permute(0, 2, 1)
        for i, (conv, w) in enumerate(zip(self.convs, self.ws)):
            x = conv(x) + w(x)
            if i < len(self.convs) - 1:
                x = F.gelu(x)
        x = F.gelu(self.fc1(x.permute(0, 2, 1)))
        return self.fc2(x)


def heat_data(n, points, rng):
    """Initial conditions as random sine series and their state at t = 0.05 (exact)."""
    xs = np.linspace(0, 1, points, endpoint=False)
    u0 = np.zeros((n, points))
    u1 = np.zeros((n, points))
    for k in range(1, 6):
        c = rng.standard_normal((n, 1)) / k
        u0 += c * np.sin(2 * math.pi * k * xs)
        u1 += c * np.sin(2 * math.pi * k * xs) * math.exp(-((2 * math.pi * k) ** 2) * 0.002)
    return u0[..., None].astype(np.float32), u1[..., None].astype(np.float32)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x, y = heat_data(32, 32, rng)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    model = FNO1d(modes=6, width=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    for epoch in range(args.epochs):
        for b in range(0, 32, 8):
            optimizer.zero_grad()
            out = model(x[b : b + 8])
            loss = F.mse_loss(out, y[b : b + 8])
            loss.backward()
            optimizer.step()
        scheduler.step()
        print(f"epoch {epoch} loss: {loss.item():.6f}")


if __name__ == "__main__":
    main()
