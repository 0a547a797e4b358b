"""A denoising diffusion model (after Ho et al., 2020) on synthetic 16x16 images: a small U-Net
with sinusoidal timestep embeddings, GroupNorm/SiLU residual blocks, strided-conv downsampling,
nearest and transposed-conv upsampling, a linear beta schedule, epsilon-prediction MSE, Adam and
an exponential moving average of the weights."""

import argparse
import copy
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, tdim, groups=4):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(tdim, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class UNet(nn.Module):
    def __init__(self, ch=16, tdim=32):
        super().__init__()
        self.tdim = tdim
        self.time_mlp = nn.Sequential(
            nn.Linear(tdim, tdim * 2), nn.SiLU(), nn.Linear(tdim * 2, tdim)
        )
        self.inc = nn.Conv2d(1, ch, 3, padding=1)
        self.down1 = ResBlock(ch, ch, tdim)
        self.ds1 = nn.Conv2d(ch, ch, 3, stride=2, padding=1)  # 16 -> 8
        self.down2 = ResBlock(ch, 2 * ch, tdim)
        self.ds2 = nn.Conv2d(2 * ch, 2 * ch, 3, stride=2, padding=1)  # 8 -> 4
        self.mid = ResBlock(2 * ch, 2 * ch, tdim)
        self.us2 = nn.ConvTranspose2d(2 * ch, 2 * ch, 4, stride=2, padding=1)  # 4 -> 8
        self.up2 = ResBlock(4 * ch, ch, tdim)
        self.up1 = ResBlock(2 * ch, ch, tdim)
        self.out_norm = nn.GroupNorm(4, ch)
        self.outc = nn.Conv2d(ch, 1, 3, padding=1)

    def forward(self, x, t):
        temb = self.time_mlp(timestep_embedding(t, self.tdim))
        h0 = self.down1(self.inc(x), temb)  # ch, 16
        h1 = self.down2(self.ds1(h0), temb)  # 2ch, 8
        h = self.mid(self.ds2(h1), temb)  # 2ch, 4
        h = self.up2(torch.cat([self.us2(h), h1], dim=1), temb)  # ch, 8
        h = F.interpolate(h, scale_factor=2, mode="nearest")  # ch, 16
        h = self.up1(torch.cat([h, h0], dim=1), temb)
        return self.outc(F.silu(self.out_norm(h)))


def make_images(rng, n, size=16):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    imgs = np.empty((n, 1, size, size), dtype=np.float32)
    for i in range(n):
        cy, cx = rng.uniform(4, 12, 2)
        r = rng.uniform(2.5, 5.0)
        imgs[i, 0] = np.where((yy - cy) ** 2 + (xx - cx) ** 2 < r * r, 1.0, -1.0)
    return torch.from_numpy(imgs)


def main():
    parser = argparse.ArgumentParser(description="DDPM on synthetic discs")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--timesteps", type=int, default=100)
    parser.add_argument("--ema-decay", type=float, default=0.9)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    data = make_images(rng, 64)

    T = args.timesteps
    betas = torch.linspace(1e-4, 0.02, T)
    alphas = 1.0 - betas
    alphas_cumprod = torch.cumprod(alphas, dim=0)
    sqrt_ac = alphas_cumprod.sqrt()
    sqrt_1m_ac = (1.0 - alphas_cumprod).sqrt()

    def q_sample(x0, t, noise):
        a = sqrt_ac.gather(0, t).view(-1, 1, 1, 1)
        s = sqrt_1m_ac[t][:, None, None, None]
        return a * x0 + s * noise

    model = UNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    ema = copy.deepcopy(model)
    ema.eval()
    for p in ema.parameters():
        p.requires_grad_(False)

    # a fixed evaluation batch: images, timesteps and noise drawn once
    x_fix = data[:16]
    t_fix = torch.randint(0, T, (16,))
    n_fix = torch.randn_like(x_fix)

    def fixed_loss(net):
        with torch.no_grad():
            return F.mse_loss(net(q_sample(x_fix, t_fix, n_fix), t_fix), n_fix).item()

    print(f"init model loss: {fixed_loss(model):.6f} ema loss: {fixed_loss(ema):.6f}")
    ema.load_state_dict(model.state_dict())  # the average starts from the current weights

    step = 0
    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for i in range(0, len(data), args.batch_size):
            x0 = data[i : i + args.batch_size]
            t = torch.randint(0, T, (x0.shape[0],), dtype=torch.long)
            noise = torch.randn_like(x0)
            loss = F.mse_loss(model(q_sample(x0, t, noise), t), noise)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            d = min(args.ema_decay, (1 + step) / (10 + step))
            with torch.no_grad():
                for ema_p, p in zip(ema.parameters(), model.parameters()):
                    ema_p.mul_(d).add_(p, alpha=1 - d)
                for ema_b, b in zip(ema.buffers(), model.buffers()):
                    ema_b.copy_(b)
            total += loss.item()
        model.eval()
        print(
            f"epoch {epoch} loss: {total / (len(data) // args.batch_size):.6f} "
            f"fixed loss: {fixed_loss(model):.6f} ema loss: {fixed_loss(ema):.6f}"
        )
    # EMA also via lerp_, once more toward the trained weights
    with torch.no_grad():
        for ema_p, p in zip(ema.parameters(), model.parameters()):
            ema_p.lerp_(p, 0.5)
    print(f"final ema loss: {fixed_loss(ema):.6f}")


if __name__ == "__main__":
    main()
