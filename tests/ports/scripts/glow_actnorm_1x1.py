"""Glow (Kingma & Dhariwal, 2018) on small synthetic images: multi-scale flow steps of ActNorm
with data-dependent initialisation, an invertible 1x1 convolution with an LU-decomposed
weight (or a plain weight and slogdet), and an affine coupling; squeezes by reshape/permute;
trained by the negative log-likelihood in bits per dimension."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=4)
parser.add_argument("--no-lu", action="store_true", help="plain 1x1 weight with slogdet")
parser.add_argument("--lu-factor", action="store_true", help="lu_factor + lu_unpack at init")
args = parser.parse_args()


class ActNorm(nn.Module):
    def __init__(self, num_channels):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.logs = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    @torch.no_grad()
    def initialize(self, x):
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True)
        self.loc.data.copy_(-mean)
        self.logs.data.copy_(torch.log(1.0 / (std + 1e-6)))
        self.initialized.fill_(1)

    def forward(self, x):
        if self.initialized.item() == 0:
            self.initialize(x)
        _, _, h, w = x.shape
        y = (x + self.loc) * torch.exp(self.logs)
        logdet = h * w * torch.sum(self.logs)
        return y, logdet

    def reverse(self, y):
        return y * torch.exp(-self.logs) - self.loc


class InvConv2dLU(nn.Module):
    def __init__(self, num_channels):
        super().__init__()
        w_init = torch.linalg.qr(torch.randn(num_channels, num_channels))[0]
        if args.lu_factor:
            P, L, U = torch.lu_unpack(*torch.linalg.lu_factor(w_init))
        else:
            P, L, U = torch.linalg.lu(w_init)
        s = torch.diagonal(U)
        self.register_buffer("w_p", P)
        self.register_buffer("u_mask", torch.triu(torch.ones_like(U), 1))
        self.register_buffer("l_mask", self.u_mask.T.clone())
        self.register_buffer("s_sign", torch.sign(s))
        self.register_buffer("l_eye", torch.eye(num_channels))
        self.w_l = nn.Parameter(L)
        self.w_s = nn.Parameter(torch.log(torch.abs(s)))
        self.w_u = nn.Parameter(torch.triu(U, 1))

    def calc_weight(self):
        weight = (
            self.w_p
            @ (self.w_l * self.l_mask + self.l_eye)
            @ (self.w_u * self.u_mask + torch.diag(self.s_sign * torch.exp(self.w_s)))
        )
        return weight.unsqueeze(2).unsqueeze(3)

    def forward(self, x):
        _, _, h, w = x.shape
        weight = self.calc_weight()
        return F.conv2d(x, weight), h * w * torch.sum(self.w_s)

    def reverse(self, y):
        weight = self.calc_weight().squeeze()
        return F.conv2d(y, torch.linalg.inv(weight).unsqueeze(2).unsqueeze(3))


class InvConv2d(nn.Module):
    def __init__(self, num_channels):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(num_channels, num_channels))
        self.weight = nn.Parameter(q.unsqueeze(2).unsqueeze(3))

    def forward(self, x):
        _, _, h, w = x.shape
        logdet = h * w * torch.slogdet(self.weight.squeeze().double())[1].float()
        return F.conv2d(x, self.weight), logdet

    def reverse(self, y):
        return F.conv2d(y, self.weight.squeeze().inverse().unsqueeze(2).unsqueeze(3))


class ZeroConv2d(nn.Module):
    def __init__(self, in_channel, out_channel):
        super().__init__()
        self.conv = nn.Conv2d(in_channel, out_channel, 3, padding=0)
        self.conv.weight.data.zero_()
        self.conv.bias.data.zero_()
        self.scale = nn.Parameter(torch.zeros(1, out_channel, 1, 1))

    def forward(self, x):
        out = F.pad(x, [1, 1, 1, 1], value=1)
        return self.conv(out) * torch.exp(self.scale * 3)


class AffineCoupling(nn.Module):
    def __init__(self, in_channel, filter_size=32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channel // 2, filter_size, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(filter_size, filter_size, 1),
            nn.ReLU(inplace=True),
            ZeroConv2d(filter_size, in_channel),
        )
        self.net[0].weight.data.normal_(0, 0.05)
        self.net[0].bias.data.zero_()
        self.net[2].weight.data.normal_(0, 0.05)
        self.net[2].bias.data.zero_()

    def forward(self, x):
        in_a, in_b = x.chunk(2, 1)
        log_s, t = self.net(in_a).chunk(2, 1)
        s = torch.sigmoid(log_s + 2)
        out_b = (in_b + t) * s
        logdet = torch.sum(torch.log(s).view(x.shape[0], -1), 1)
        return torch.cat([in_a, out_b], 1), logdet

    def reverse(self, y):
        out_a, out_b = y.chunk(2, 1)
        log_s, t = self.net(out_a).chunk(2, 1)
        s = torch.sigmoid(log_s + 2)
        return torch.cat([out_a, out_b / s - t], 1)


class FlowStep(nn.Module):
    def __init__(self, in_channel, lu=True):
        super().__init__()
        self.actnorm = ActNorm(in_channel)
        self.invconv = InvConv2dLU(in_channel) if lu else InvConv2d(in_channel)
        self.coupling = AffineCoupling(in_channel)

    def forward(self, x):
        out, logdet = self.actnorm(x)
        out, det1 = self.invconv(out)
        out, det2 = self.coupling(out)
        return out, logdet + det1 + det2

    def reverse(self, y):
        return self.actnorm.reverse(self.invconv.reverse(self.coupling.reverse(y)))


def gaussian_log_p(x, mean, log_sd):
    return -0.5 * math.log(2 * math.pi) - log_sd - 0.5 * (x - mean) ** 2 / torch.exp(2 * log_sd)


def squeeze2d(x):
    b, c, h, w = x.shape
    x = x.view(b, c, h // 2, 2, w // 2, 2)
    x = x.permute(0, 1, 3, 5, 2, 4).contiguous()
    return x.view(b, c * 4, h // 2, w // 2)


def unsqueeze2d(x):
    b, c, h, w = x.shape
    x = x.view(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).contiguous()
    return x.view(b, c // 4, h * 2, w * 2)


class Block(nn.Module):
    def __init__(self, in_channel, n_flow, split=True, lu=True):
        super().__init__()
        squeeze_dim = in_channel * 4
        self.flows = nn.ModuleList([FlowStep(squeeze_dim, lu=lu) for _ in range(n_flow)])
        self.split = split
        if split:
            self.prior = ZeroConv2d(in_channel * 2, in_channel * 4)
        else:
            self.prior = ZeroConv2d(in_channel * 4, in_channel * 8)

    def forward(self, x):
        out = squeeze2d(x)
        logdet = 0
        for flow in self.flows:
            out, det = flow(out)
            logdet = logdet + det
        if self.split:
            out, z_new = out.chunk(2, 1)
            mean, log_sd = self.prior(out).chunk(2, 1)
        else:
            zero = torch.zeros_like(out)
            mean, log_sd = self.prior(zero).chunk(2, 1)
            z_new = out
        log_p = gaussian_log_p(z_new, mean, log_sd).view(x.shape[0], -1).sum(1)
        return out, logdet, log_p, z_new


class Glow(nn.Module):
    def __init__(self, in_channel, n_flow, n_block, lu=True):
        super().__init__()
        self.blocks = nn.ModuleList()
        n_channel = in_channel
        for _ in range(n_block - 1):
            self.blocks.append(Block(n_channel, n_flow, lu=lu))
            n_channel *= 2
        self.blocks.append(Block(n_channel, n_flow, split=False, lu=lu))

    def forward(self, x):
        log_p_sum, logdet, out = 0, 0, x
        for block in self.blocks:
            out, det, log_p, _ = block(out)
            logdet = logdet + det
            log_p_sum = log_p_sum + log_p
        return log_p_sum, logdet


def calc_loss(log_p, logdet, image_size, n_bins, n_channel=3):
    n_pixel = image_size * image_size * n_channel
    loss = -math.log(n_bins) * n_pixel + logdet + log_p
    return (
        (-loss / (math.log(2) * n_pixel)).mean(),
        (log_p / (math.log(2) * n_pixel)).mean(),
        (logdet / (math.log(2) * n_pixel)).mean(),
    )


# synthetic 8x8 RGB "images": smooth blobs quantised to 5 bits
rng = np.random.default_rng(0)
n_bits, image_size = 5, 8
n_bins = 2.0**n_bits
yy, xx = np.mgrid[0:image_size, 0:image_size] / (image_size - 1)
centers = rng.uniform(0.2, 0.8, size=(64, 3, 2))
imgs = np.exp(
    -((xx[None, None] - centers[..., 0, None, None]) ** 2
      + (yy[None, None] - centers[..., 1, None, None]) ** 2) / 0.08
)  # fmt: skip
images = torch.tensor(imgs, dtype=torch.float32)
loader = DataLoader(TensorDataset(images), batch_size=16, shuffle=True)

model = Glow(3, n_flow=2, n_block=2, lu=not args.no_lu)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 4))

for epoch in range(args.epochs):
    total = 0.0
    for (image,) in loader:
        image = torch.floor(image * 255 / 2 ** (8 - n_bits)) / n_bins - 0.5
        # uniform dequantisation noise from a fixed grid keeps the run deterministic
        image = image + torch.rand_like(image) / n_bins
        log_p, logdet = model(image)
        logdet = logdet.mean()
        loss, log_p_bpd, logdet_bpd = calc_loss(log_p, logdet, image_size, n_bins)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 50.0)
        optimizer.step()
        scheduler.step()
        total += loss.item()
    print(f"epoch {epoch} loss {total / len(loader):.5f} logP {log_p_bpd.item():.4f} "
          f"logdet {logdet_bpd.item():.4f}")  # fmt: skip

# reconstruction check: invert the first flow step of the first block
with torch.no_grad():
    x = squeeze2d(images[:4] - 0.5)
    flow = model.blocks[0].flows[0]
    y, _ = flow(x)
    x_rec = flow.reverse(y)
    print(f"reconstruction ok {(x_rec - x).abs().max().item() < 1e-4}")
    z = unsqueeze2d(squeeze2d(images[:2]))
    print(f"squeeze roundtrip loss {(z - images[:2]).abs().sum().item():.4f}")
