"""A convolutional autoencoder (Conv2d down, ConvTranspose2d up) on synthetic images."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class AutoEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc1 = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.enc2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.dec1 = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.dec2 = nn.ConvTranspose2d(8, 1, 2, stride=2)

    def forward(self, x):
        x = F.relu(self.enc1(x))
        x = F.relu(self.enc2(x))
        x = F.relu(self.dec1(x))
        return torch.sigmoid(self.dec2(x))


def main():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:12, 0:12]
    cx, cy = rng.integers(3, 9, (2, 40))
    imgs = (xx[None] - cx[:, None, None]) ** 2 + (yy[None] - cy[:, None, None]) ** 2 < 9
    data = torch.from_numpy(imgs.astype(np.float32)).unsqueeze(1)
    model = AutoEncoder()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    criterion = nn.MSELoss()
    for epoch in range(20):
        optimizer.zero_grad()
        loss = criterion(model(data), data)
        loss.backward()
        optimizer.step()
        print(f"Epoch: {epoch + 1} \tTraining Loss: {loss.item():.6f}")


if __name__ == "__main__":
    main()
