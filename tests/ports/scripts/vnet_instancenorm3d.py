"""A 3-d segmentation network in the manner of MONAI's / the V-Net authors' PyTorch code for
volumetric medical images: residual stages of bias-free Conv3d (kernel 5, padding 2; a bias before a norm has no gradient) with
InstanceNorm3d(affine=True) (or --norm batch: BatchNorm3d, --norm group: GroupNorm) and
per-channel nn.PReLU, strided Conv3d down-sampling, ConvTranspose3d up-sampling with skip
concatenation, a soft Dice loss (softmax over classes, one-hot targets from F.one_hot
permuted to channels-first, sums over the spatial dims, smooth 1e-5) plus cross entropy,
deep supervision through an auxiliary head upsampled with F.interpolate(mode="trilinear"),
and a sliding-window style evaluation over two overlapping crops averaged with torch.zeros
accumulators; synthetic volumes hold spheres whose class depends on their radius."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


def norm3d(kind, c):
    if kind == "instance":
        return nn.InstanceNorm3d(c, affine=True)
    if kind == "batch":
        return nn.BatchNorm3d(c)
    return nn.GroupNorm(2, c)


class ResStage(nn.Module):
    def __init__(self, c, n_convs, norm):
        super().__init__()
        layers = []
        for _ in range(n_convs):
            layers += [nn.Conv3d(c, c, 5, padding=2, bias=False), norm3d(norm, c), nn.PReLU(c)]
        self.convs = nn.Sequential(*layers)
        self.act = nn.PReLU(c)

    def forward(self, x):
        return self.act(self.convs(x) + x)


class Down(nn.Module):
    def __init__(self, cin, cout, norm):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, 2, stride=2, bias=False)
        self.norm, self.act = norm3d(norm, cout), nn.PReLU(cout)

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


class Up(nn.Module):
    def __init__(self, cin, cout, norm):
        super().__init__()
        self.up = nn.ConvTranspose3d(cin, cout // 2, 2, stride=2, bias=False)
        self.norm, self.act = norm3d(norm, cout // 2), nn.PReLU(cout // 2)
        self.stage = ResStage(cout, 1, norm)

    def forward(self, x, skip):
        x = self.act(self.norm(self.up(x)))
        return self.stage(torch.cat((x, skip), 1))


class VNet(nn.Module):
    def __init__(self, classes=3, width=4, norm="instance"):
        super().__init__()
        self.inp = nn.Sequential(
            nn.Conv3d(1, width, 5, padding=2, bias=False), norm3d(norm, width), nn.PReLU(width)
        )
        self.down1, self.stage1 = Down(width, 2 * width, norm), ResStage(2 * width, 1, norm)
        self.down2, self.stage2 = Down(2 * width, 4 * width, norm), ResStage(4 * width, 2, norm)
        self.up2 = Up(4 * width, 4 * width, norm)
        self.up1 = Up(4 * width, 2 * width, norm)
        self.out = nn.Conv3d(2 * width, classes, 1)
        self.aux = nn.Conv3d(4 * width, classes, 1)

    def forward(self, x):
        x0 = self.inp(x)
        x1 = self.stage1(self.down1(x0))
        x2 = self.stage2(self.down2(x1))
        u2 = self.up2(x2, x1)
        u1 = self.up1(u2, x0)
        aux = F.interpolate(self.aux(u2), size=x.shape[2:], mode="trilinear", align_corners=False)
        return self.out(u1), aux


def dice_loss(logits, target, smooth=1e-5):
    probs = torch.softmax(logits, dim=1)
    onehot = F.one_hot(target, logits.shape[1]).permute(0, 4, 1, 2, 3).float()
    dims = (0, 2, 3, 4)
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    return 1 - ((2 * inter + smooth) / (denom + smooth)).mean()


def make_volumes(n, size=16):
    grid = torch.stack(
        torch.meshgrid(*[torch.arange(size, dtype=torch.float32)] * 3, indexing="ij")
    )
    vols, labels = [], []
    for _ in range(n):
        centre = 4 + torch.rand(3, 1, 1, 1) * (size - 8)
        radius = 2 + torch.rand(1) * 3
        dist = ((grid - centre) ** 2).sum(0).sqrt()
        inside = dist < radius
        cls = 1 if radius.item() < 3.5 else 2
        vols.append(
            (inside.float() * (1.0 + 0.5 * cls) + 0.3 * torch.randn(size, size, size)).unsqueeze(0)
        )
        labels.append(inside.long() * cls)
    return torch.stack(vols), torch.stack(labels)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--norm", choices=["instance", "batch", "group"], default="instance")
    args = parser.parse_args()
    torch.manual_seed(0)

    x, y = make_volumes(8)
    xv, yv = make_volumes(2)
    model = VNet(norm=args.norm)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(args.epochs):
        model.train()
        for i in range(0, len(x), 2):
            logits, aux = model(x[i : i + 2])
            target = y[i : i + 2]
            loss = dice_loss(logits, target) + F.cross_entropy(logits, target)
            loss = loss + 0.3 * F.cross_entropy(aux, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            # two overlapping crops along depth, averaged where they overlap
            acc = torch.zeros(xv.shape[0], 3, *xv.shape[2:])
            count = torch.zeros(1, 1, xv.shape[2], 1, 1)
            for start in (0, 8):
                crop = xv[:, :, start : start + 8 + 0]
                pad = F.pad(crop, (0, 0, 0, 0, 0, 8 - crop.shape[2]))
                out, _ = model(torch.cat([pad, pad.flip(2)], 2)[:, :, :16])
                acc[:, :, start : start + 8] += out[:, :, :8]
                count[:, :, start : start + 8] += 1
            val = acc / count
            vloss = dice_loss(val, yv)
        print(f"epoch {epoch}: train loss {loss.item():.5f} val dice loss {vloss.item():.5f}")


if __name__ == "__main__":
    main()
