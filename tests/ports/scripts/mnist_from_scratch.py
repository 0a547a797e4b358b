"""Logistic regression written by hand, then refactored with nn.Module, nn.Linear and
optim (after the PyTorch tutorial "What is torch.nn really?"), on synthetic digits."""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

rng = np.random.default_rng(0)
centers = rng.random((10, 64)).astype(np.float32)
y_np = rng.integers(0, 10, 200)
x_np = (centers[y_np] + 0.3 * rng.standard_normal((200, 64))).astype(np.float32)
x_train, y_train = map(torch.tensor, (x_np, y_np))
n, c = x_train.shape
weights = torch.from_numpy(rng.standard_normal((64, 10)).astype(np.float32)) / math.sqrt(64)
weights.requires_grad_()
bias = torch.zeros(10, requires_grad=True)


def log_softmax(x):
    return x - x.exp().sum(-1).log().unsqueeze(-1)


def model(xb):
    return log_softmax(xb @ weights + bias)


def nll(input, target):
    return -input[range(target.shape[0]), target].mean()


loss_func = nll
bs, lr = 40, 0.5
for epoch in range(2):
    for i in range((n - 1) // bs + 1):
        start_i = i * bs
        xb, yb = x_train[start_i : start_i + bs], y_train[start_i : start_i + bs]
        loss = loss_func(model(xb), yb)
        loss.backward()
        with torch.no_grad():
            weights -= weights.grad * lr
            bias -= bias.grad * lr
            weights.grad.zero_()
            bias.grad.zero_()
    print(f"manual epoch {epoch} loss: {loss_func(model(x_train), y_train).item():.5f}")


class MnistLogistic(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(64, 10)

    def forward(self, xb):
        return self.lin(xb)


train_dl = DataLoader(TensorDataset(x_train, y_train), batch_size=bs)
net = MnistLogistic()
opt = optim.SGD(net.parameters(), lr=lr)
for epoch in range(2):
    net.train()
    for xb, yb in train_dl:
        loss = F.cross_entropy(net(xb), yb)
        loss.backward()
        opt.step()
        opt.zero_grad()
    net.eval()
    with torch.no_grad():
        valid_loss = sum(F.cross_entropy(net(xb), yb) for xb, yb in train_dl)
    print(f"module epoch {epoch} loss: {(valid_loss / len(train_dl)).item():.5f}")
