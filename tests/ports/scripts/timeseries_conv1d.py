"""Next-value forecasting of noisy sine waves with a 1-D CNN and RMSprop."""

import numpy as np
import torch
import torch.nn as nn


def main():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 8 * np.pi, 400, dtype=np.float32)
    series = np.sin(t) + 0.1 * rng.standard_normal(400).astype(np.float32)
    windows = np.stack([series[i : i + 24] for i in range(0, 360, 3)])
    x = torch.from_numpy(windows[:, :-1]).unsqueeze(1)
    y = torch.from_numpy(windows[:, -1:])
    model = nn.Sequential(
        nn.Conv1d(1, 8, kernel_size=5, padding=2),
        nn.Tanh(),
        nn.Conv1d(8, 8, kernel_size=3, padding=1),
        nn.Tanh(),
        nn.AdaptiveAvgPool1d(4),
        nn.Flatten(),
        nn.Linear(32, 1),
    )
    optimizer = torch.optim.RMSprop(model.parameters(), lr=3e-3)
    loss_fn = nn.MSELoss()
    for step in range(25):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        print(f"step {step} loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
