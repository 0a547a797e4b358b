"""VoxNet (Maturana and Scherer, 2015) on synthetic occupancy grids (spheres, cubes and
cylinders of random size and position in a 12^3 grid, with flipped voxels), with a 3-D
convolutional autoencoder branch in the style of 3D-GAN/Voxel-VAE decoders: Conv3d,
BatchNorm3d, MaxPool3d and AdaptiveAvgPool3d in the encoder; nn.Unflatten, ConvTranspose3d and
trilinear F.interpolate in the decoder; the reconstruction loss is a BCE-with-logits with a
pos_weight for the sparse occupied voxels. With --compile the model goes through torch.compile
(eager backend)."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F

GRID = 12


def voxel_shapes(n):
    labels = torch.arange(n) % 3
    coords = torch.arange(GRID, dtype=torch.float32)
    z, y, x = torch.meshgrid(coords, coords, coords, indexing="ij")
    centres = 3.5 + torch.rand(n, 3) * (GRID - 7)
    radii = 1.8 + torch.rand(n) * 1.5
    grids = torch.zeros(n, 1, GRID, GRID, GRID)
    for i in range(n):
        dz, dy, dx = z - centres[i, 0], y - centres[i, 1], x - centres[i, 2]
        r = radii[i]
        if labels[i] == 0:
            occ = dz**2 + dy**2 + dx**2 <= r**2
        elif labels[i] == 1:
            occ = (dz.abs() <= r * 0.8) & (dy.abs() <= r * 0.8) & (dx.abs() <= r * 0.8)
        else:
            occ = (dy**2 + dx**2 <= (r * 0.7) ** 2) & (dz.abs() <= r + 1)
        grids[i, 0] = occ.float()
    flips = torch.rand(n, 1, GRID, GRID, GRID) < 0.03
    noisy = torch.where(flips, 1 - grids, grids)
    return noisy, grids, labels


class VoxNet(nn.Module):
    def __init__(self, n_classes=3, width=8):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv3d(1, width, 3, padding=1, bias=False), nn.BatchNorm3d(width),
            nn.LeakyReLU(0.1), nn.MaxPool3d(2),
            nn.Conv3d(width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm3d(2 * width),
            nn.LeakyReLU(0.1),
        )  # fmt: skip
        self.pool = nn.AdaptiveAvgPool3d(3)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * 27, 32), nn.ReLU(),
                                        nn.Linear(32, n_classes))  # fmt: skip
        self.to_code = nn.Linear(2 * width * 27, 64)
        self.decoder = nn.Sequential(
            nn.Linear(64, width * 27), nn.ReLU(), nn.Unflatten(1, (width, 3, 3, 3)),
            nn.ConvTranspose3d(width, width, 4, stride=2, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.out = nn.Conv3d(width, 1, 3, padding=1)

    def forward(self, x):
        h = self.pool(self.encoder(x))
        logits = self.classifier(h)
        d = self.decoder(self.to_code(h.flatten(1)))
        d = F.interpolate(d, size=(GRID, GRID, GRID), mode="trilinear", align_corners=False)
        return logits, self.out(d)


def main():
    parser = argparse.ArgumentParser(description="VoxNet with a 3-D autoencoder branch")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=24)
    args = parser.parse_args()

    x, target, y = voxel_shapes(96)
    x_val, target_val, y_val = voxel_shapes(48)
    model = VoxNet()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    pos_weight = ((1 - target).sum() / target.sum()).reshape(1)
    net = torch.compile(model, backend="eager") if args.compile else model

    for epoch in range(args.epochs):
        model.train()
        totals = [0.0, 0.0]
        for i in range(0, len(x), args.batch):
            logits, recon = net(x[i : i + args.batch])
            cls = F.cross_entropy(logits, y[i : i + args.batch])
            rec = F.binary_cross_entropy_with_logits(recon, target[i : i + args.batch],
                                                     pos_weight=pos_weight)  # fmt: skip
            loss = cls + rec
            opt.zero_grad()
            loss.backward()
            opt.step()
            totals[0] += cls.item()
            totals[1] += rec.item()
        model.eval()
        with torch.no_grad():
            logits, recon = net(x_val)
            val = F.cross_entropy(logits, y_val).item()
            iou = ((recon > 0) & (target_val > 0)).sum() / ((recon > 0) | (target_val > 0)).sum()
        n = len(x) // args.batch
        print(
            f"epoch {epoch} cls loss {totals[0] / n:.6f} recon loss {totals[1] / n:.6f} "
            f"val loss {val:.6f} iou {iou.item():.4f}"
        )


if __name__ == "__main__":
    main()
