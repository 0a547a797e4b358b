"""Deformable convolution (Dai et al., 2017; modulated as in DCNv2) written with plain PyTorch
ops, trained to undo a synthetic warp: a conv predicts 2*k*k offsets and k*k sigmoid masks per
output pixel (zero-initialised with nn.init.zeros_, so training starts from a regular conv);
the input is sampled bilinearly at p0 + pk + offset with F.grid_sample (padding_mode "zeros",
"border" or "reflection" via --padding, align_corners=True so that zero offsets land on pixel
centers) into columns laid out as F.unfold's, checked at the start against F.unfold of the input
padded by F.pad (constant, replicate or reflect); the columns are aggregated
by a weight matmul (torch.einsum) and the result is decoded into overlapping patches that
F.fold adds back up, normalised by F.fold of ones. The warp: each image is displaced by a
smooth random field that the model sees as two extra channels. SGD with nesterov momentum,
clip_grad_norm_ followed by clip_grad_value_, a StepLR schedule."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class DeformConv2d(nn.Module):
    def __init__(self, in_ch, out_ch, kernel_size=3, guide_ch=0, padding_mode="zeros"):
        super().__init__()
        self.k = kernel_size
        self.pad = kernel_size // 2
        self.padding_mode = padding_mode
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        kk = kernel_size * kernel_size
        self.offset_conv = nn.Conv2d(in_ch + guide_ch, 3 * kk, kernel_size, padding=self.pad)
        nn.init.zeros_(self.offset_conv.weight)
        nn.init.zeros_(self.offset_conv.bias)

    def sample_columns(self, x, offsets):
        """Columns (B, C*k*k, H*W) of x at the offset kernel positions, as F.unfold lays out."""
        b, c, h, w = x.shape
        k, kk = self.k, self.k * self.k
        dy = offsets[:, 0::2]  # (B, kk, H, W)
        dx = offsets[:, 1::2]
        ky, kx = torch.meshgrid(
            torch.arange(k, dtype=x.dtype) - self.pad,
            torch.arange(k, dtype=x.dtype) - self.pad,
            indexing="ij",
        )
        py, px = torch.meshgrid(
            torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij"
        )
        y = py[None, None] + ky.reshape(1, kk, 1, 1) + dy  # (B, kk, H, W) in pixels
        xs = px[None, None] + kx.reshape(1, kk, 1, 1) + dx
        grid = torch.stack([2 * xs / (w - 1) - 1, 2 * y / (h - 1) - 1], dim=-1)
        grid = grid.view(b, kk * h, w, 2)
        sampled = F.grid_sample(
            x, grid, mode="bilinear", padding_mode=self.padding_mode, align_corners=True
        )  # (B, C, kk*H, W)
        return sampled.view(b, c, kk, h * w).reshape(b, c * kk, h * w)

    def forward(self, x, guide=None):
        b, c, h, w = x.shape
        kk = self.k * self.k
        inp = x if guide is None else torch.cat([x, guide], 1)
        om = self.offset_conv(inp)
        offsets, mask = om[:, : 2 * kk], torch.sigmoid(om[:, 2 * kk :])
        cols = self.sample_columns(x, offsets)  # (B, C*kk, L)
        cols = cols * mask.reshape(b, 1, kk, h * w).expand(b, c, kk, h * w).reshape(b, c * kk, -1)
        out = torch.einsum("ok,bkl->bol", self.weight.view(self.weight.shape[0], -1), cols)
        return (out + self.bias[None, :, None]).view(b, -1, h, w), offsets


class PatchDecoder(nn.Module):
    """Predicts a p x p patch per pixel; F.fold sums the overlaps, divided by their count."""

    def __init__(self, in_ch, out_ch, patch=3):
        super().__init__()
        self.patch, self.out_ch = patch, out_ch
        self.proj = nn.Conv2d(in_ch, out_ch * patch * patch, 1)

    def forward(self, x):
        b, _, h, w = x.shape
        cols = self.proj(x).view(b, self.out_ch * self.patch**2, h * w)
        pad = self.patch // 2
        out = F.fold(cols, (h, w), kernel_size=self.patch, padding=pad)
        ones = torch.ones(1, self.patch**2, h * w)
        norm = F.fold(ones, (h, w), kernel_size=self.patch, padding=pad)
        return out / norm


class Unwarper(nn.Module):
    def __init__(self, ch=8, padding_mode="zeros"):
        super().__init__()
        self.deform1 = DeformConv2d(1, ch, guide_ch=2, padding_mode=padding_mode)
        self.deform2 = DeformConv2d(ch, ch, guide_ch=2, padding_mode=padding_mode)
        self.decoder = PatchDecoder(ch, 1)

    def forward(self, x, flow):
        h, off1 = self.deform1(x, flow)
        h, off2 = self.deform2(F.gelu(h), flow)
        return self.decoder(F.gelu(h)), (off1, off2)


def smooth_field(rng, n, size, strength, cells=3):
    coarse = rng.normal(0, strength, (n, 2, cells, cells)).astype(np.float32)
    return F.interpolate(
        torch.from_numpy(coarse), size=(size, size), mode="bicubic", align_corners=True
    )


def make_data(rng, n, size=16):
    """Stripes and a blob, displaced by a smooth random field: (warped, flow, clean)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    clean = np.zeros((n, 1, size, size), np.float32)
    for i in range(n):
        f = rng.uniform(0.3, 0.8)
        a = rng.uniform(0, np.pi)
        clean[i, 0] = 0.5 * np.sin(f * (np.cos(a) * xx + np.sin(a) * yy))
        cy, cx = rng.uniform(3, size - 3, 2)
        clean[i, 0] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 6.0)
    clean_t = torch.from_numpy(clean)
    flow = smooth_field(rng, n, size, strength=1.5)  # (N, 2, H, W): (dy, dx) in pixels
    return warp(clean_t, flow), flow, clean_t


def warp(img, flow):
    """Samples img at p + flow(p), with borders repeated."""
    b, _, h, w = img.shape
    py, px = torch.meshgrid(
        torch.arange(h, dtype=img.dtype), torch.arange(w, dtype=img.dtype), indexing="ij"
    )
    gy = 2 * (py + flow[:, 0]) / (h - 1) - 1
    gx = 2 * (px + flow[:, 1]) / (w - 1) - 1
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=True)


def unfold_check(layer, x):
    """With zero offsets the sampled columns are F.unfold's (of the padded input)."""
    with torch.no_grad():
        zero = torch.zeros(x.shape[0], 2 * layer.k * layer.k, *x.shape[-2:])
        cols = layer.sample_columns(x, zero)
        pad = (layer.pad,) * 4
        mode = {"zeros": "constant", "border": "replicate", "reflection": "reflect"}
        mode = mode[layer.padding_mode]
        ref = F.unfold(F.pad(x, pad, mode=mode), kernel_size=layer.k)
    return (cols - ref).abs().max()


def main():
    parser = argparse.ArgumentParser(description="deformable convolution by grid_sample")
    parser.add_argument("--padding", choices=["zeros", "border", "reflection"], default="zeros")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--clip-norm", type=float, default=1.0)
    parser.add_argument("--clip-value", type=float, default=0.05)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    warped, flow, clean = make_data(rng, 48)
    t_warped, t_flow, t_clean = make_data(rng, 8)
    model = Unwarper(padding_mode=args.padding)
    check = unfold_check(model.deform1, t_warped)
    assert check < 1e-5, f"sampled columns differ from F.unfold by {check.item()}"
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
    criterion = nn.MSELoss()
    for epoch in range(args.epochs):
        model.train()
        total, norms, steps = 0.0, 0.0, 0
        for i in range(0, len(warped), args.batch_size):
            x, f, y = (t[i : i + args.batch_size] for t in (warped, flow, clean))
            out, _ = model(x, f)
            loss = criterion(out, y)
            optimizer.zero_grad()
            loss.backward()
            norm = nn.utils.clip_grad_norm_(model.parameters(), args.clip_norm)
            nn.utils.clip_grad_value_(model.parameters(), args.clip_value)
            optimizer.step()
            total += loss.item()
            norms += norm.item()
            steps += 1
        scheduler.step()
        model.eval()
        with torch.no_grad():
            out, (off1, _) = model(t_warped, t_flow)
            test_loss = criterion(out, t_clean)
            # how far the center tap of the first layer moves, against the true displacement
            center = model.deform1.k * model.deform1.k // 2
            tap = off1[:, 2 * center : 2 * center + 2]
            offset_loss = (tap + t_flow).pow(2).mean()
            base = criterion(t_warped, t_clean)
        print(
            f"epoch {epoch} train loss {total / steps:.6f} grad norm {norms / steps:.5f} "
            f"test loss {test_loss.item():.6f} offset loss {offset_loss.item():.6f} "
            f"(no model {base.item():.6f})"
        )


if __name__ == "__main__":
    main()
