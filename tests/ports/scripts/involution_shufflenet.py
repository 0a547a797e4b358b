"""A ShuffleNet-V2 style network (Ma et al., 2018) whose spatial mixing is involution (Li et
al., 2021) instead of depthwise convolution, on synthetic oriented textures: the stem is
F.pixel_unshuffle; each unit splits its channels (chunk), runs one branch, concatenates and
mixes the groups with nn.ChannelShuffle; involution generates a KxK kernel per pixel and
group and applies it to the nn.Unfold patches of its input; the activations are F.hardswish,
F.mish and an nn.Hardsigmoid squeeze-excitation gate. An auxiliary head predicts a clean 4x4
patch at each location, which F.fold overlaps and averages (dividing by the fold of ones)
into a denoised image. Trained with torch.optim.ASGD and label smoothing; the evaluation
uses ASGD's averaged weights."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


class Involution(nn.Module):
    def __init__(self, channels, kernel=3, groups=2, reduction=2):
        super().__init__()
        self.k, self.g = kernel, groups
        self.reduce = nn.Sequential(nn.Conv2d(channels, channels // reduction, 1),
                                    nn.BatchNorm2d(channels // reduction), nn.ReLU())  # fmt: skip
        self.span = nn.Conv2d(channels // reduction, kernel * kernel * groups, 1)
        self.unfold = nn.Unfold(kernel, padding=kernel // 2)

    def forward(self, x):
        b, c, h, w = x.shape
        weight = self.span(self.reduce(x)).view(b, self.g, 1, self.k * self.k, h, w)
        patches = self.unfold(x).view(b, self.g, c // self.g, self.k * self.k, h, w)
        return (weight * patches).sum(3).view(b, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, channels):
        super().__init__()
        half = channels // 2
        self.branch = nn.Sequential(
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half),
            Involution(half), nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half),
        )  # fmt: skip
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(half, 4, 1), nn.ReLU(),
                                nn.Conv2d(4, half, 1), nn.Hardsigmoid())  # fmt: skip
        self.shuffle = nn.ChannelShuffle(2)

    def forward(self, x):
        keep, work = x.chunk(2, dim=1)
        work = F.hardswish(self.branch(work))
        return self.shuffle(torch.cat([keep, work * self.se(work)], dim=1))


class Net(nn.Module):
    def __init__(self, n_classes=4, width=16, patch=4):
        super().__init__()
        self.patch = patch
        self.stem = nn.Sequential(nn.Conv2d(12, width, 3, padding=1), nn.BatchNorm2d(width))
        self.units = nn.Sequential(ShuffleUnit(width), ShuffleUnit(width), ShuffleUnit(width))
        self.head = nn.Linear(width, n_classes)
        self.patches = nn.Conv2d(width, 3 * patch * patch, 3, padding=1)

    def forward(self, x):
        h = self.units(F.mish(self.stem(F.pixel_unshuffle(x, 2))))
        logits = self.head(h.mean((2, 3)))
        # one 4x4 patch per 2x2 cell, overlapping its neighbours by half
        cols = self.patches(h).flatten(2)
        size = x.shape[-2:]
        ones = torch.ones_like(cols)
        fold = dict(output_size=size, kernel_size=self.patch, stride=2, padding=1)
        denoised = F.fold(cols, **fold) / F.fold(ones, **fold)
        return logits, denoised


def textures(n, size=16):
    labels = torch.arange(n) % 4
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    angles = labels.float() * (3.14159 / 4) + 0.2 * torch.randn(n)
    phase = torch.rand(n) * 6.28
    u = torch.cos(angles)[:, None, None] * xx + torch.sin(angles)[:, None, None] * yy
    clean = torch.sin(1.2 * u + phase[:, None, None]).unsqueeze(1)
    clean = clean * torch.tensor([1.0, 0.6, -0.4]).view(1, 3, 1, 1)
    return clean + 0.7 * torch.randn(n, 3, size, size), clean, labels


def main():
    parser = argparse.ArgumentParser(description="ShuffleNet with involution")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--aux", type=float, default=1.0)
    args = parser.parse_args()

    x, clean, y = textures(160)
    x_val, clean_val, y_val = textures(64)
    model = Net()
    opt = torch.optim.ASGD(model.parameters(), lr=0.3, t0=10, weight_decay=1e-4)

    for epoch in range(args.epochs):
        model.train()
        totals = [0.0, 0.0]
        for i in range(0, len(x), args.batch):
            logits, denoised = model(x[i : i + args.batch])
            cls = F.cross_entropy(logits, y[i : i + args.batch], label_smoothing=0.1)
            rec = F.mse_loss(denoised, clean[i : i + args.batch])
            opt.zero_grad()
            (cls + args.aux * rec).backward()
            opt.step()
            totals[0] += cls.item()
            totals[1] += rec.item()
        model.eval()
        with torch.no_grad():
            # evaluate with ASGD's running averages of the weights
            saved = [p.detach().clone() for p in model.parameters()]
            for p in model.parameters():
                p.copy_(opt.state[p]["ax"])
            logits, denoised = model(x_val)
            val = F.cross_entropy(logits, y_val).item()
            val_rec = F.mse_loss(denoised, clean_val).item()
            for p, s in zip(model.parameters(), saved):
                p.copy_(s)
        n = len(x) // args.batch
        print(
            f"epoch {epoch} cls loss {totals[0] / n:.6f} recon loss {totals[1] / n:.6f} "
            f"val loss {val:.6f} val recon loss {val_rec:.6f}"
        )


if __name__ == "__main__":
    main()
