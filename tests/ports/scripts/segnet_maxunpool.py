"""A SegNet-style encoder-decoder (Badrinarayanan et al., 2017) on synthetic shape masks: the
encoder pools with F.max_pool2d(return_indices=True) and the decoder upsamples with
nn.MaxUnpool2d at those indices; blocks use nn.LocalResponseNorm (AlexNet-style) or
nn.GroupNorm, and padding layers (nn.ZeroPad2d / nn.ReflectionPad2d / nn.CircularPad2d).
The loss is class-weighted cross entropy (median-frequency weights from torch.bincount) with
an ignore_index border, trained with SGD (nesterov) under a PolynomialLR schedule. The
evaluation builds a confusion matrix with torch.bincount and reports 1 - mean IoU."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F

IGNORE = 255


def conv_block(cin, cout, norm, pad):
    padding = {"zeros": nn.ZeroPad2d(1), "reflect": nn.ReflectionPad2d(1),
               "circular": nn.CircularPad2d(1)}[pad]  # fmt: skip
    normal = (
        nn.LocalResponseNorm(3, alpha=1e-3, beta=0.75, k=2.0)
        if norm == "lrn"
        else nn.GroupNorm(2, cout)
    )
    return nn.Sequential(padding, nn.Conv2d(cin, cout, 3), normal, nn.ReLU(inplace=True))


class SegNet(nn.Module):
    def __init__(self, n_classes=3, width=8, norm="lrn", pad="zeros"):
        super().__init__()
        self.enc1 = conv_block(1, width, norm, pad)
        self.enc2 = conv_block(width, 2 * width, norm, pad)
        self.dec2 = conv_block(2 * width, width, norm, pad)
        self.dec1 = nn.Sequential(
            conv_block(width, width, norm, pad), nn.Conv2d(width, n_classes, 1)
        )
        self.unpool = nn.MaxUnpool2d(2, stride=2)
        self.context = nn.AdaptiveMaxPool2d((1, 1))

    def forward(self, x):
        e1 = self.enc1(x)
        p1, i1 = F.max_pool2d(e1, 2, stride=2, return_indices=True)
        e2 = self.enc2(p1)
        p2, i2 = F.max_pool2d(e2, 2, stride=2, return_indices=True)
        p2 = p2 + self.context(p2)
        d2 = self.dec2(self.unpool(p2, i2, output_size=e2.size()))
        d1 = self.unpool(d2, i1)
        return self.dec1(d1)


def shapes(n, size=16):
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    centres = torch.rand(n, 2, 2) * (size - 6) + 3
    radii = torch.rand(n, 2) * 2 + 2
    label = torch.zeros(n, size, size, dtype=torch.long)
    # class 1: discs; class 2: squares (drawn second, on top)
    d = (yy - centres[:, 0, 0, None, None]) ** 2 + (xx - centres[:, 0, 1, None, None]) ** 2
    label[d < radii[:, 0, None, None] ** 2] = 1
    sq = torch.maximum(
        (yy - centres[:, 1, 0, None, None]).abs(), (xx - centres[:, 1, 1, None, None]).abs()
    )
    label[sq < radii[:, 1, None, None]] = 2
    image = label.float().unsqueeze(1) * 0.6 + 0.4 * torch.randn(n, 1, size, size)
    target = label.clone()
    target[:, 0, :] = IGNORE
    target[:, :, 0] = IGNORE
    return image, target


def main():
    parser = argparse.ArgumentParser(description="SegNet with max-unpooling")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--norm", choices=["lrn", "group"], default="lrn")
    parser.add_argument("--pad", choices=["zeros", "reflect", "circular"], default="zeros")
    args = parser.parse_args()

    x, y = shapes(96)
    x_val, y_val = shapes(32)
    valid = y[y != IGNORE]
    freq = torch.bincount(valid, minlength=3).float()
    weights = freq.median() / freq
    model = SegNet(norm=args.norm, pad=args.pad)
    opt = torch.optim.SGD(
        model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    steps = args.epochs * (len(x) // args.batch)
    sched = torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=steps, power=0.9)
    criterion = nn.CrossEntropyLoss(weight=weights, ignore_index=IGNORE)
    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for i in range(0, len(x), args.batch):
            loss = criterion(model(x[i : i + args.batch]), y[i : i + args.batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            val = criterion(logits, y_val).item()
            pred = logits.argmax(1)
            keep = y_val != IGNORE
            conf = torch.bincount(3 * y_val[keep] + pred[keep], minlength=9).view(3, 3).float()
            iou = conf.diag() / (conf.sum(0) + conf.sum(1) - conf.diag()).clamp(min=1)
        print(
            f"epoch {epoch} train loss {total / (len(x) // args.batch):.6f} val loss {val:.6f} "
            f"iou loss {1 - iou.mean().item():.6f}"
        )


if __name__ == "__main__":
    main()
