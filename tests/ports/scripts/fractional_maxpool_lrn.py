"""Fractional max-pooling (Graham, 2014) in a small AlexNet-style CNN: nn.FractionalMaxPool2d
with output_ratio (and, with --output-size, a fixed output_size) whose pseudo-random pooling
regions come from _random_samples drawn with torch.rand per batch (as reproducible training
code passes them), return_indices=True on one stage feeding nn.MaxUnpool2d in a
reconstruction head, nn.LocalResponseNorm after the first convolutions (AlexNet's
size=5, alpha=1e-4, beta=0.75, k=2), nn.Softmax2d for a per-pixel attention map, and test-time
augmentation that averages the logits over several random pooling draws (Graham's "model
averaging" over pooling regions). --pool 3d runs the first stage through
nn.FractionalMaxPool3d on a two-frame volume (the maps and their mirror images), whose time
samples pick one frame per channel."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


class FMPNet(nn.Module):
    def __init__(self, classes=5, width=12, fixed_size=False, pool3d=False):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.lrn = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
        self.pool3d = pool3d
        if pool3d:
            self.pool1 = nn.FractionalMaxPool3d((1, 2, 2), output_size=(1, 11, 11))
        else:
            self.pool1 = nn.FractionalMaxPool2d(2, output_ratio=(0.7, 0.7))
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        if fixed_size:
            self.pool2 = nn.FractionalMaxPool2d(2, output_size=(5, 5), return_indices=True)
        else:
            self.pool2 = nn.FractionalMaxPool2d(2, output_ratio=0.6, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)
        self.recon = nn.Conv2d(2 * width, 1, 1)
        self.attn = nn.Sequential(nn.Conv2d(2 * width, 2, 1), nn.Softmax2d())
        self.fc = nn.Linear(2 * 2 * width + 2 * width * 9, classes)

    def set_samples(self, n, gen_shape1, gen_shape2):
        # reproducible pooling regions: one (batch, channel, dims) draw per pooling layer
        self.pool1._random_samples = torch.rand(*gen_shape1)
        self.pool2._random_samples = torch.rand(*gen_shape2)

    def forward(self, x):
        h = self.lrn(F.relu(self.conv1(x)))
        if self.pool3d:
            h = self.pool1(torch.stack([h, h.flip(-1)], 2)).squeeze(2)
        else:
            h = self.pool1(h)
        h = F.relu(self.conv2(h))
        pre = h
        h, idx = self.pool2(h)
        recon = self.recon(self.unpool(h, idx, output_size=pre.shape[-2:]))
        a = self.attn(h)  # (N, 2, H, W), softmax over the 2 maps at every pixel
        pooled = torch.einsum("nahw,nchw->nac", a, h).flatten(1) / (h.shape[-1] * h.shape[-2])
        grid = F.adaptive_avg_pool2d(h, 3).flatten(1)
        return self.fc(torch.cat([pooled, grid], 1)), recon, pre


def make_data(n):
    labels = torch.randint(0, 5, (n,))
    x = 0.3 * torch.randn(n, 1, 16, 16)
    for c in range(5):
        rows = labels == c
        x[rows, 0, 2 + 2 * c : 5 + 2 * c, 2:14] += 1.0
        x[rows, 0, 2:14, 12 - 2 * c : 14 - 2 * c] -= 0.5
    return x, labels


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--output-size", action="store_true")
    parser.add_argument("--pool", choices=["2d", "3d"], default="2d")
    args = parser.parse_args()
    torch.manual_seed(0)

    x, y = make_data(160)
    xv, yv = make_data(64)
    width = 12
    model = FMPNet(width=width, fixed_size=args.output_size, pool3d=args.pool == "3d")
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    dims1 = 3 if args.pool == "3d" else 2

    for epoch in range(args.epochs):
        model.train()
        for i in range(0, len(x), 32):
            xb, yb = x[i : i + 32], y[i : i + 32]
            model.set_samples(len(xb), (len(xb), width, dims1), (len(xb), 2 * width, 2))
            logits, recon, pre = model(xb)
            target = F.adaptive_max_pool2d(xb, pre.shape[-2:])
            loss = F.cross_entropy(logits, yb) + 0.5 * F.mse_loss(recon, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            avg = 0
            for _ in range(3):  # average over pooling-region draws
                model.set_samples(len(xv), (len(xv), width, dims1), (len(xv), 2 * width, 2))
                avg = avg + F.softmax(model(xv)[0], dim=1) / 3
            vloss = F.nll_loss(torch.log(avg), yv)
            acc = (avg.argmax(1) == yv).float().mean()
        print(
            f"epoch {epoch}: train loss {loss.item():.5f} val loss {vloss.item():.5f} acc {acc.item():.3f}"
        )


if __name__ == "__main__":
    main()
