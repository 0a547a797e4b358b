"""Unsupervised optical flow in the style of PWC-Net / UnFlow, on synthetic image pairs: a small
CNN predicts a dense flow field, coarse-to-fine over an image pyramid built with
F.interpolate(scale_factor=0.5, mode="bilinear", antialias=False); the second frame is warped
back with F.grid_sample (bilinear with padding_mode="border" for the photometric loss,
nearest with padding_mode="zeros" for the occlusion mask, align_corners=False) on a base
grid from F.affine_grid; the loss is a masked photometric L1 plus an edge-aware smoothness
term from torch.diff and slicing."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def base_grid(b, h, w):
    theta = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(b, 2, 3)
    return F.affine_grid(theta, (b, 1, h, w), align_corners=False)  # (B, H, W, 2)


def warp(img, flow, mode="bilinear", padding_mode="border"):
    """Samples img at pixel + flow; flow is in pixels, (B, 2, H, W) with (dx, dy)."""
    b, _, h, w = img.shape
    scale = torch.tensor([2.0 / w, 2.0 / h]).view(1, 1, 1, 2)
    grid = base_grid(b, h, w) + flow.permute(0, 2, 3, 1) * scale
    return F.grid_sample(img, grid, mode=mode, padding_mode=padding_mode, align_corners=False)


class FlowEstimator(nn.Module):
    def __init__(self, in_ch, hidden=16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, hidden, 3, padding=1),
            nn.LeakyReLU(0.1),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.LeakyReLU(0.1),
            nn.Conv2d(hidden, 2, 3, padding=1),
        )

    def forward(self, x):
        return self.net(x)


class PyramidFlow(nn.Module):
    def __init__(self, levels=3):
        super().__init__()
        self.levels = levels
        # frame1, warped frame2, upsampled flow
        self.estimators = nn.ModuleList(FlowEstimator(1 + 1 + 2) for _ in range(levels))

    def forward(self, im1, im2):
        pyr1, pyr2 = [im1], [im2]
        for _ in range(self.levels - 1):
            pyr1.append(F.interpolate(pyr1[-1], scale_factor=0.5, mode="bilinear", antialias=False))
            pyr2.append(F.interpolate(pyr2[-1], scale_factor=0.5, mode="bilinear", antialias=False))
        flows = []
        b, _, h, w = pyr1[-1].shape
        flow = torch.zeros(b, 2, h, w)
        for level in reversed(range(self.levels)):
            a, c = pyr1[level], pyr2[level]
            if flow.shape[-1] != a.shape[-1]:
                flow = 2.0 * F.interpolate(
                    flow, size=a.shape[-2:], mode="bilinear", align_corners=False
                )
            warped = warp(c, flow)
            flow = flow + self.estimators[level](torch.cat([a, warped, flow], dim=1))
            flows.append(flow)
        return flows[::-1]  # finest first


def smoothness(flow, img, alpha=10.0):
    # edge-aware: flow gradients cost less across image edges
    dfx = torch.diff(flow, dim=-1)
    dfy = flow[:, :, 1:, :] - flow[:, :, :-1, :]
    wx = torch.exp(-alpha * torch.diff(img, dim=-1).abs().mean(1, keepdim=True))
    wy = torch.exp(-alpha * (img[:, :, 1:] - img[:, :, :-1]).abs().mean(1, keepdim=True))
    return (wx * dfx.abs()).mean() + (wy * dfy.abs()).mean()


def unsup_loss(flows, im1, im2, smooth_weight):
    total = 0.0
    for level, flow in enumerate(flows):
        if level:
            size = flow.shape[-2:]
            a = F.interpolate(im1, size=size, mode="bilinear", align_corners=False, antialias=False)
            c = F.interpolate(im2, size=size, mode="bilinear", align_corners=False, antialias=False)
        else:
            a, c = im1, im2
        warped = warp(c, flow)
        # pixels whose source lies outside frame 2 do not count
        valid = warp(torch.ones_like(c), flow.detach(), mode="nearest", padding_mode="zeros")
        photo = (valid * (warped - a).abs()).sum() / valid.sum().clamp(min=1.0)
        total = total + (photo + smooth_weight * smoothness(flow, a)) / (2**level)
    return total


def make_pairs(rng, n, size=32):
    """Blurry blobs moved by a random global shift plus a small rotation."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    im1 = np.zeros((n, 1, size, size), np.float32)
    for i in range(n):
        for _ in range(4):
            cy, cx = rng.uniform(4, size - 4, 2)
            s = rng.uniform(2.0, 4.0)
            im1[i, 0] += rng.uniform(0.5, 1.0) * np.exp(
                -((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s)
            )
    angle = rng.uniform(-0.1, 0.1, n)
    shift = rng.uniform(-0.15, 0.15, (n, 2))
    theta = np.zeros((n, 2, 3), np.float32)
    theta[:, 0, 0] = theta[:, 1, 1] = np.cos(angle)
    theta[:, 0, 1], theta[:, 1, 0] = -np.sin(angle), np.sin(angle)
    theta[:, :, 2] = shift
    im1_t = torch.from_numpy(im1)
    grid = F.affine_grid(torch.from_numpy(theta), list(im1_t.shape), align_corners=False)
    im2_t = F.grid_sample(im1_t, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return im1_t, im2_t


def main():
    parser = argparse.ArgumentParser(description="unsupervised pyramid optical flow")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--smooth", type=float, default=0.1)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    im1, im2 = make_pairs(rng, 48)
    t1, t2 = make_pairs(rng, 16)
    model = PyramidFlow()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    for epoch in range(args.epochs):
        model.train()
        running, steps = 0.0, 0
        for i in range(0, len(im1), args.batch_size):
            a, c = im1[i : i + args.batch_size], im2[i : i + args.batch_size]
            loss = unsup_loss(model(a, c), a, c, args.smooth)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += loss.item()
            steps += 1
        model.eval()
        with torch.no_grad():
            flows = model(t1, t2)
            test_loss = unsup_loss(flows, t1, t2, args.smooth)
            base = (t2 - t1).abs().mean()
            photo = (warp(t2, flows[0]) - t1).abs().mean()
            nearest = (warp(t2, flows[0], mode="nearest", padding_mode="zeros") - t1).abs().mean()
        print(
            f"epoch {epoch} train loss {running / steps:.6f} test loss {test_loss.item():.6f} "
            f"photo loss {photo.item():.6f} nearest loss {nearest.item():.6f} "
            f"(unwarped {base.item():.6f})"
        )


if __name__ == "__main__":
    main()
