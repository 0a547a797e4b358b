"""Keyword-spotting style audio classification (after common PyTorch speech-command
examples) on synthetic tones: a log-power spectrogram from torch.stft with a Hann window,
then a small CNN; the spectrogram is part of the differentiated graph."""

import argparse
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    def __init__(self, classes=3):
        super().__init__()
        self.register_buffer("window", torch.hann_window(64))
        self.gain = nn.Parameter(torch.ones(1))
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, classes)

    def forward(self, wave):
        spec = torch.stft(
            wave * self.gain, n_fft=64, hop_length=32, window=self.window, return_complex=True
        )
        x = torch.log(spec.abs() ** 2 + 1e-6).unsqueeze(1)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.conv2(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, length = 48, 512
    labels = rng.integers(0, 3, n)
    t = np.arange(length) / 8000.0
    waves = np.stack(
        [
            np.sin(2 * math.pi * (500 + 1200 * c) * t + rng.uniform(0, 6))
            + 0.3 * rng.standard_normal(length)
            for c in labels
        ]
    ).astype(np.float32)
    x, y = torch.from_numpy(waves), torch.from_numpy(labels)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    for epoch in range(args.epochs):
        for b in range(0, n, 16):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x[b : b + 16]), y[b : b + 16])
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch} loss: {loss.item():.6f}")


if __name__ == "__main__":
    main()
