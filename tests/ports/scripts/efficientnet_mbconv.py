"""A tiny EfficientNet-B0-style classifier (Tan & Le, 2019) on synthetic striped images:
MBConv blocks (1x1 expansion, depthwise 3x3/5x5 convolution, squeeze-and-excitation with SiLU
and Sigmoid gates, 1x1 projection), BatchNorm with TensorFlow's momentum=0.01 / eps=1e-3,
stochastic depth from a per-sample torch.rand mask with linearly increasing rates,
AdaptiveAvgPool2d head, label-smoothed CrossEntropyLoss, and RMSprop or AdamW stepped by
OneCycleLR or CosineAnnealingWarmRestarts."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


def _make_divisible(v, divisor=8, min_value=None):
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def stochastic_depth(x, p, training):
    if not training or p == 0.0:
        return x
    survival = 1.0 - p
    noise = torch.rand([x.shape[0]] + [1] * (x.ndim - 1), dtype=x.dtype, device=x.device)
    noise = noise.lt(survival).to(x.dtype)
    return x * noise.div_(survival)


class ConvBNAct(nn.Sequential):
    def __init__(self, cin, cout, k, stride=1, groups=1, act=True):
        layers = [
            nn.Conv2d(cin, cout, k, stride, padding=(k - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01),
        ]
        if act:
            layers.append(nn.SiLU(inplace=True))
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels, squeeze):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.SiLU()
        self.scale_activation = nn.Sigmoid()

    def forward(self, x):
        scale = self.avgpool(x)
        scale = self.fc2(self.activation(self.fc1(scale)))
        return x * self.scale_activation(scale)


class MBConv(nn.Module):
    def __init__(self, cin, cout, expand, k, stride, sd_prob):
        super().__init__()
        self.use_res = stride == 1 and cin == cout
        hidden = _make_divisible(cin * expand)
        layers = []
        if hidden != cin:
            layers.append(ConvBNAct(cin, hidden, 1))
        layers.append(ConvBNAct(hidden, hidden, k, stride, groups=hidden))
        layers.append(SqueezeExcitation(hidden, max(1, cin // 4)))
        layers.append(ConvBNAct(hidden, cout, 1, act=False))
        self.block = nn.Sequential(*layers)
        self.sd_prob = sd_prob

    def forward(self, x):
        out = self.block(x)
        if self.use_res:
            out = stochastic_depth(out, self.sd_prob, self.training) + x
        return out


class EfficientNet(nn.Module):
    # expand ratio, kernel, stride, in, out, repeats
    CONFIG = [
        (1, 3, 1, 16, 8, 1),
        (4, 3, 2, 8, 16, 2),
        (4, 5, 2, 16, 24, 2),
    ]

    def __init__(self, num_classes=4, stochastic_depth_prob=0.2, dropout=0.2):
        super().__init__()
        layers = [ConvBNAct(3, 16, 3, stride=1)]
        total = sum(c[-1] for c in self.CONFIG)
        block_id = 0
        for expand, k, stride, cin, cout, repeats in self.CONFIG:
            for i in range(repeats):
                sd = stochastic_depth_prob * float(block_id) / total
                layers.append(MBConv(cin if i == 0 else cout, cout, expand, k,
                                     stride if i == 0 else 1, sd))  # fmt: skip
                block_id += 1
        last = 4 * self.CONFIG[-1][4]
        layers.append(ConvBNAct(self.CONFIG[-1][4], last, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True),
                                        nn.Linear(last, num_classes))  # fmt: skip
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                init_range = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -init_range, init_range)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def make_data(rng, n, size=16, num_classes=4):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    labels = rng.integers(0, num_classes, n)
    imgs = np.empty((n, 3, size, size), dtype=np.float32)
    for i, c in enumerate(labels):
        angle = np.pi * c / num_classes + rng.normal(0, 0.1)
        freq = rng.uniform(0.6, 0.9)
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy) + phase)
        for ch in range(3):
            imgs[i, ch] = wave * rng.uniform(0.5, 1.0) + rng.normal(0, 0.3, (size, size))
    return torch.from_numpy(imgs), torch.from_numpy(labels)


def main():
    parser = argparse.ArgumentParser(description="EfficientNet-B0-style MBConv classifier")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--optimizer", choices=["rmsprop", "adamw"], default="rmsprop")
    parser.add_argument("--schedule", choices=["onecycle", "warm-restarts"], default="onecycle")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x_train, y_train = make_data(rng, 192)
    x_test, y_test = make_data(rng, 64)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch_size,
                        shuffle=True, drop_last=True)  # fmt: skip
    model = EfficientNet(num_classes=4)
    if args.optimizer == "rmsprop":
        optimizer = torch.optim.RMSprop(model.parameters(), lr=args.lr, alpha=0.9, eps=1e-3,
                                        momentum=0.9, weight_decay=1e-5)  # fmt: skip
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    steps = len(loader)
    if args.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr,
                                                        epochs=args.epochs,
                                                        steps_per_epoch=steps)  # fmt: skip
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            optimizer, T_0=steps, T_mult=2, eta_min=1e-4
        )
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)

    for epoch in range(args.epochs):
        model.train()
        total, count = 0.0, 0
        for i, (images, target) in enumerate(loader):
            output = model(images)
            loss = criterion(output, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if args.schedule == "onecycle":
                scheduler.step()
            else:
                scheduler.step(epoch + i / steps)
            total += loss.item() * images.size(0)
            count += images.size(0)
        model.eval()
        with torch.no_grad():
            logits = model(x_test)
            test_loss = F.cross_entropy(logits, y_test).item()
            acc = (logits.argmax(1) == y_test).float().mean().item()
        lr = optimizer.param_groups[0]["lr"]
        print(f"epoch {epoch} train loss {total / count:.6f} test loss {test_loss:.6f} "
              f"acc {acc:.3f} lr {lr:.5f}")  # fmt: skip
    bn = model.features[0][1]
    print(f"running_var mean {bn.running_var.mean().item():.6f}")


if __name__ == "__main__":
    main()
