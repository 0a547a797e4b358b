"""Sub-pixel super-resolution (after pytorch/examples: super_resolution), synthetic images."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.init as init
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self, upscale_factor):
        super().__init__()
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(1, 16, (5, 5), (1, 1), (2, 2))
        self.conv2 = nn.Conv2d(16, 16, (3, 3), (1, 1), (1, 1))
        self.conv3 = nn.Conv2d(16, upscale_factor**2, (3, 3), (1, 1), (1, 1))
        self.pixel_shuffle = nn.PixelShuffle(upscale_factor)
        self._initialize_weights()

    def forward(self, x):
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        x = self.pixel_shuffle(self.conv3(x))
        return x

    def _initialize_weights(self):
        init.orthogonal_(self.conv1.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv2.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv3.weight)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--upscale_factor", type=int, default=2)
    parser.add_argument("--nEpochs", type=int, default=3)
    opt = parser.parse_args()
    rng = np.random.default_rng(0)
    hi = rng.random((32, 1, 12, 12)).astype(np.float32)
    lo = hi.reshape(32, 1, 6, 2, 6, 2).mean((3, 5))
    loader = DataLoader(
        TensorDataset(torch.from_numpy(lo), torch.from_numpy(hi)), batch_size=8, shuffle=True
    )
    model = Net(upscale_factor=opt.upscale_factor)
    criterion = nn.MSELoss()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(1, opt.nEpochs + 1):
        epoch_loss = 0
        for iteration, batch in enumerate(loader, 1):
            input, target = batch[0], batch[1]
            optimizer.zero_grad()
            loss = criterion(model(input), target)
            epoch_loss += loss.item()
            loss.backward()
            optimizer.step()
            print(f"===> Epoch[{epoch}]({iteration}/{len(loader)}): Loss: {loss.item():.4f}")
        print(f"===> Epoch {epoch} Complete: Avg. Loss: {epoch_loss / len(loader):.4f}")


if __name__ == "__main__":
    main()
