"""The network and settings of ``manygrad train --data DIR --model cnn --epochs 1`` in
PyTorch (AdamW lr 0.002, cosine per step, batch 64, standardised inputs), for the
side-by-side accuracy in RESULTS.md.

Usage: ``python benchmarks/fashion_mnist_torch.py DIR``, DIR a folder of Fashion-MNIST IDX
files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-..., t10k-labels-...).
"""

import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def read_idx(path):
    data = open(path, "rb").read()
    nd = struct.unpack(">I", data[:4])[0] & 0xFF
    dims = struct.unpack(">" + "I" * nd, data[4 : 4 + 4 * nd])
    return np.frombuffer(data[4 + 4 * nd :], np.uint8).reshape(dims)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def main(folder: str) -> None:
    torch.manual_seed(0)

    def load(split):
        x = read_idx(os.path.join(folder, f"{split}-images-idx3-ubyte")).astype(np.float32)
        y = read_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte")).astype(np.int64)
        return x, torch.from_numpy(y)

    (x, y), (xt, yt) = load("train"), load("t10k")
    mean, std = x.mean(), x.std()
    x, xt = (torch.from_numpy((a - mean) / std)[:, None] for a in (x, xt))
    net, bs = CNN(), 64
    steps = -(-len(y) // bs)
    opt = torch.optim.AdamW(net.parameters(), lr=0.002, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    order, t0 = torch.randperm(len(y)), time.time()
    for i in range(steps):
        idx = order[i * bs : (i + 1) * bs]
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        acc = (net(xt).argmax(1) == yt).float().mean().item()
    print(f"PyTorch {torch.__version__}: test accuracy {acc * 100:.2f}%, {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1])
