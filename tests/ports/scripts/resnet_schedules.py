"""A small residual network (after He et al., 2016, the CIFAR variant) trained with the
knobs of a modern recipe: SGD with Nesterov momentum and weight decay on the weights only,
OneCycleLR, label smoothing, gradient clipping, BatchNorm in train and eval modes."""

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Sequential()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.short(x))


class ResNet(nn.Module):
    def __init__(self, classes=4):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True)
        )
        self.layers = nn.Sequential(Block(8, 8, 1), Block(8, 16, 2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = 64
    y = rng.integers(0, 4, n)
    x = rng.standard_normal((n, 3, 8, 8)).astype(np.float32) * 0.5
    x[np.arange(n), y % 3, :4, :4] += 1.0 + (y // 3)[:, None, None]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model = ResNet()
    decay = [p for n_, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n_, p in model.named_parameters() if p.ndim <= 1]
    optimizer = optim.SGD(
        [{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}],
        lr=0.1,
        momentum=0.9,
        nesterov=True,
    )
    steps = args.epochs * (n // 16)
    sched = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.2, total_steps=steps)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    for epoch in range(args.epochs):
        model.train()
        for b in range(0, n, 16):
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(xt[b : b + 16]), yt[b : b + 16])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=2.0)
            optimizer.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            out = model(xt)
            eval_loss = F.cross_entropy(out, yt).item()
            acc = (out.argmax(1) == yt).float().mean().item()
        print(
            f"epoch {epoch} train loss: {loss.item():.6f} eval loss: {eval_loss:.6f} "
            f"acc {acc:.3f} lr {sched.get_last_lr()[0]:.6f}"
        )


if __name__ == "__main__":
    main()
