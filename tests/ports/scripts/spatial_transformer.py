"""A spatial transformer network (after the PyTorch tutorial by Ghassen Hamrouni) on
synthetic shifted squares: a localisation net predicts an affine map, affine_grid and
grid_sample resample the input before the classifier."""

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=3)
        self.conv2 = nn.Conv2d(6, 8, kernel_size=3)
        self.fc1 = nn.Linear(8 * 2 * 2, 16)
        self.fc2 = nn.Linear(16, 3)
        self.localization = nn.Sequential(
            nn.Conv2d(1, 4, kernel_size=3),
            nn.MaxPool2d(2, stride=2),
            nn.ReLU(True),
            nn.Conv2d(4, 6, kernel_size=3),
            nn.ReLU(True),
        )
        self.fc_loc = nn.Sequential(nn.Linear(6 * 4 * 4, 16), nn.ReLU(True), nn.Linear(16, 6))

    def stn(self, x):
        xs = self.localization(x)
        xs = xs.view(-1, 6 * 4 * 4)
        theta = self.fc_loc(xs).view(-1, 2, 3)
        theta = theta * 0.1 + torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        grid = F.affine_grid(theta, x.size(), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False)

    def forward(self, x):
        x = self.stn(x)
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        x = x.view(-1, 8 * 2 * 2)
        x = F.relu(self.fc1(x))
        return F.log_softmax(self.fc2(x), dim=1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = 48
    images = np.zeros((n, 1, 14, 14), np.float32)
    labels = rng.integers(0, 3, n)
    for i, c in enumerate(labels):
        r, col = rng.integers(1, 8, 2)
        size = 3 + 2 * c
        images[i, 0, r : r + size, col : col + size] = 1.0
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    model = Net()
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(args.epochs):
        for b in range(0, n, 16):
            optimizer.zero_grad()
            loss = F.nll_loss(model(x[b : b + 16]), y[b : b + 16])
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch} loss: {loss.item():.6f}")


if __name__ == "__main__":
    main()
