"""A StyleGAN2-lite (Karras et al., 2020) on synthetic 16x16 images: a mapping MLP from
2nd-moment-normalised z (torch.rsqrt) through equalized-learning-rate linear layers (weights
stored at N(0, 1) / lr_mul and scaled at run time, F.linear, F.leaky_relu * sqrt(2)); a
synthesis network from a learnt constant (repeat) through modulated 3x3 convolutions with
weight demodulation done as one grouped F.conv2d (the batch folded into groups, view/reshape),
noise injection with a learnt per-channel strength (torch.randn, nn.Parameter(torch.zeros)),
bilinear F.interpolate upsampling (or, with --upsample transposed, StyleGAN2's own: a grouped
stride-2 F.conv_transpose2d on the transposed modulated weights, then a [1, 3, 3, 1] blur by
F.pad and a depthwise F.conv2d with a registered buffer) and skip toRGB layers without
demodulation (--no-demod turns it off everywhere); a residual discriminator of plain nn.Conv2d/nn.Linear layers (as in
lucidrains' stylegan2-pytorch) with F.avg_pool2d downsampling and a minibatch
standard-deviation feature (torch.var, expand, torch.cat); the non-saturating
logistic loss through F.softplus, and lazy R1 regularisation with
torch.autograd.grad(create_graph=True) on real images every other step; Adam with
betas=(0.0, 0.99) and an exponential moving average of the generator (torch.lerp under
torch.no_grad()) for evaluation."""

import argparse
import copy
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class EqualLinear(nn.Module):
    def __init__(self, in_dim, out_dim, bias_init=0.0, lr_mul=1.0, activation=False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x):
        out = F.linear(x, self.weight * self.scale, bias=self.bias * self.lr_mul)
        if self.activation:
            out = F.leaky_relu(out, 0.2) * math.sqrt(2)
        return out


class Blur(nn.Module):
    """A [1, 3, 3, 1] low-pass filter per channel (F.pad, then a depthwise F.conv2d)."""

    def __init__(self, channels, pad, gain=1.0):
        super().__init__()
        k = torch.tensor([1.0, 3.0, 3.0, 1.0])
        k = k[None, :] * k[:, None]
        k = k / k.sum() * gain
        self.register_buffer("kernel", k.expand(channels, 1, 4, 4).clone())
        self.pad = pad

    def forward(self, x):
        x = F.pad(x, (self.pad[0], self.pad[1], self.pad[0], self.pad[1]))
        return F.conv2d(x, self.kernel, groups=x.shape[1])


class ModulatedConv2d(nn.Module):
    def __init__(self, in_ch, out_ch, kernel_size, style_dim, demodulate=True, upsample=False):
        super().__init__()
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.upsample = upsample
        if upsample:  # a stride-2 transposed convolution then a blur, as StyleGAN2 does
            p = (4 - 2) - (kernel_size - 1)
            self.blur = Blur(out_ch, pad=((p + 1) // 2 + 1, p // 2 + 1), gain=4.0)
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_ch * kernel_size**2)
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)
        self.demodulate = demodulate

    def forward(self, x, style):
        batch, in_ch, height, width = x.shape
        style = self.modulation(style).view(batch, 1, in_ch, 1, 1)
        weight = self.scale * self.weight * style  # (B, out, in, k, k)
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)
            weight = weight * demod.view(batch, self.out_ch, 1, 1, 1)
        k = self.kernel_size
        x = x.reshape(1, batch * in_ch, height, width)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(batch * in_ch, self.out_ch, k, k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=batch)
            out = out.view(batch, self.out_ch, out.shape[-2], out.shape[-1])
            return self.blur(out)
        weight = weight.view(batch * self.out_ch, in_ch, k, k)
        # NOTE: one convolution for the whole batch: samples become groups
        out = F.conv2d(x, weight, padding=self.kernel_size // 2, groups=batch)
        return out.view(batch, self.out_ch, height, width)


class NoiseInjection(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, image, noise=None):
        if noise is None:
            batch, _, height, width = image.shape
            noise = image.new_empty(batch, 1, height, width).normal_()
        return image + self.weight * noise


class StyledConv(nn.Module):
    def __init__(self, in_ch, out_ch, style_dim, upsample=None, demodulate=True):
        super().__init__()
        self.upsample = upsample
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, style_dim, demodulate=demodulate,
                                    upsample=upsample == "transposed")  # fmt: skip
        self.noise = NoiseInjection(out_ch)
        self.bias = nn.Parameter(torch.zeros(1, out_ch, 1, 1))

    def forward(self, x, style, noise):
        if self.upsample == "bilinear":
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        out = self.noise(self.conv(x, style), noise=noise)
        return F.leaky_relu(out + self.bias, 0.2) * math.sqrt(2)


class ToRGB(nn.Module):
    def __init__(self, in_ch, style_dim, out_ch):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, out_ch, 1, 1))

    def forward(self, x, style, skip=None):
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + F.interpolate(skip, scale_factor=2, mode="bilinear", align_corners=False)
        return out


class Generator(nn.Module):
    def __init__(self, style_dim=16, n_mlp=3, channels=(16, 12, 8), img_ch=1, demodulate=True,
                 upsample="bilinear"):  # fmt: skip
        super().__init__()
        self.style_dim = style_dim
        layers = [EqualLinear(style_dim, style_dim, lr_mul=0.01, activation=True)]
        layers += [
            EqualLinear(style_dim, style_dim, lr_mul=0.01, activation=True)
            for _ in range(n_mlp - 1)
        ]
        self.style = nn.Sequential(*layers)
        self.input = nn.Parameter(torch.randn(1, channels[0], 4, 4))
        self.conv1 = StyledConv(channels[0], channels[0], style_dim, demodulate=demodulate)
        self.to_rgb1 = ToRGB(channels[0], style_dim, img_ch)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        for prev, ch in zip(channels[:-1], channels[1:]):
            self.convs.append(StyledConv(prev, ch, style_dim, upsample, demodulate))
            self.convs.append(StyledConv(ch, ch, style_dim, demodulate=demodulate))
            self.to_rgbs.append(ToRGB(ch, style_dim, img_ch))
        self.sizes = [4 * 2**i for i in range(len(channels))]

    def mapping(self, z):
        z = z * torch.rsqrt(torch.mean(z**2, dim=1, keepdim=True) + 1e-8)
        return self.style(z)

    def forward(self, z, noises):
        w = self.mapping(z)
        out = self.input.repeat(z.shape[0], 1, 1, 1)
        out = self.conv1(out, w, noises[0])
        skip = self.to_rgb1(out, w)
        for i, to_rgb in enumerate(self.to_rgbs):
            out = self.convs[2 * i](out, w, noises[2 * i + 1])
            out = self.convs[2 * i + 1](out, w, noises[2 * i + 2])
            skip = to_rgb(out, w, skip)
        return skip

    def make_noise(self, batch):
        noises = [torch.randn(batch, 1, 4, 4)]
        for size in self.sizes[1:]:
            noises += [torch.randn(batch, 1, size, size), torch.randn(batch, 1, size, size)]
        return noises


class ResBlock(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, in_ch, 3, padding=1)
        self.conv2 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x):
        out = F.leaky_relu(self.conv1(x), 0.2) * math.sqrt(2)
        out = F.avg_pool2d(F.leaky_relu(self.conv2(out), 0.2) * math.sqrt(2), 2)
        skip = self.skip(F.avg_pool2d(x, 2))
        return (out + skip) / math.sqrt(2)


class Discriminator(nn.Module):
    def __init__(self, channels=(8, 12, 16), img_ch=1, stddev_group=4):
        super().__init__()
        self.from_rgb = nn.Conv2d(img_ch, channels[0], 1)
        self.blocks = nn.Sequential(*[ResBlock(a, b) for a, b in zip(channels[:-1], channels[1:])])
        self.stddev_group = stddev_group
        self.final_conv = nn.Conv2d(channels[-1] + 1, channels[-1], 3, padding=1)
        self.final_linear = nn.Sequential(
            nn.Linear(channels[-1] * 4 * 4, channels[-1]),
            nn.LeakyReLU(0.2),
            nn.Linear(channels[-1], 1),
        )

    def forward(self, x):
        out = self.blocks(F.leaky_relu(self.from_rgb(x), 0.2) * math.sqrt(2))
        batch, ch, height, width = out.shape
        group = min(batch, self.stddev_group)
        stddev = out.view(group, -1, 1, ch, height, width)
        stddev = torch.sqrt(stddev.var(0, unbiased=False) + 1e-8)
        stddev = stddev.mean([2, 3, 4], keepdim=True).squeeze(2)
        stddev = stddev.repeat(group, 1, height, width)
        out = torch.cat([out, stddev], 1)
        out = F.leaky_relu(self.final_conv(out), 0.2) * math.sqrt(2)
        return self.final_linear(out.view(batch, -1))


def d_logistic_loss(real_pred, fake_pred):
    return F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()


def d_r1_loss(real_pred, real_img):
    (grad_real,) = torch.autograd.grad(outputs=real_pred.sum(), inputs=real_img, create_graph=True)
    return grad_real.pow(2).reshape(grad_real.shape[0], -1).sum(1).mean()


def g_nonsaturating_loss(fake_pred):
    return F.softplus(-fake_pred).mean()


def accumulate(ema, model, decay=0.9):
    with torch.no_grad():
        for p_ema, p in zip(ema.parameters(), model.parameters()):
            p_ema.lerp_(p, 1 - decay)


def make_images(rng, n, size=16):
    """Soft discs of random position, radius and brightness, in [-1, 1]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    img = np.full((n, 1, size, size), -1.0, np.float32)
    for i in range(n):
        cy, cx = rng.uniform(4, size - 4, 2)
        r = rng.uniform(2.5, 5.0)
        d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        img[i, 0] += 2 * rng.uniform(0.6, 1.0) / (1 + np.exp(2 * (d - r)))
    return torch.from_numpy(img)


def main():
    parser = argparse.ArgumentParser(description="StyleGAN2-lite")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--r1", type=float, default=1.0)
    parser.add_argument("--d-reg-every", type=int, default=2)
    parser.add_argument("--no-demod", action="store_true")
    parser.add_argument("--upsample", choices=["bilinear", "transposed"], default="bilinear")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    data = make_images(rng, 32)
    generator = Generator(demodulate=not args.no_demod, upsample=args.upsample)
    discriminator = Discriminator()
    d_ratio = args.d_reg_every / (args.d_reg_every + 1)
    g_optim = torch.optim.Adam(generator.parameters(), lr=args.lr, betas=(0.0, 0.99))
    d_optim = torch.optim.Adam(
        discriminator.parameters(), lr=args.lr * d_ratio, betas=(0.0, 0.99**d_ratio)
    )
    g_ema = copy.deepcopy(generator).eval()
    g_ema.requires_grad_(False)
    fixed_z = torch.randn(8, generator.style_dim)
    fixed_noise = generator.make_noise(8)

    step = 0
    for epoch in range(args.epochs):
        sums = np.zeros(4)
        counts = np.zeros(4)
        for i in range(0, len(data), args.batch_size):
            real_img = data[i : i + args.batch_size]
            batch = real_img.shape[0]

            # discriminator step
            generator.requires_grad_(False)
            discriminator.requires_grad_(True)
            z = torch.randn(batch, generator.style_dim)
            fake_img = generator(z, generator.make_noise(batch))
            d_loss = d_logistic_loss(discriminator(real_img), discriminator(fake_img))
            discriminator.zero_grad()
            d_loss.backward()
            d_optim.step()
            sums[0] += d_loss.item()
            counts[0] += 1

            if step % args.d_reg_every == 0:
                real_img.requires_grad = True
                real_pred = discriminator(real_img)
                r1_loss = d_r1_loss(real_pred, real_img)
                discriminator.zero_grad()
                # NOTE: 0 * real_pred keeps the forward in the graph, as the original does
                (args.r1 / 2 * r1_loss * args.d_reg_every + 0 * real_pred[0]).sum().backward()
                d_optim.step()
                real_img.requires_grad = False
                sums[1] += r1_loss.item()
                counts[1] += 1

            # generator step
            generator.requires_grad_(True)
            discriminator.requires_grad_(False)
            z = torch.randn(batch, generator.style_dim)
            fake_img = generator(z, generator.make_noise(batch))
            g_loss = g_nonsaturating_loss(discriminator(fake_img))
            generator.zero_grad()
            g_loss.backward()
            g_optim.step()
            accumulate(g_ema, generator)
            sums[2] += g_loss.item()
            counts[2] += 1
            step += 1

        with torch.no_grad():
            sample = g_ema(fixed_z, fixed_noise)
            ema_loss = g_nonsaturating_loss(discriminator(sample))
            moment_loss = (sample.mean() - data.mean()).abs() + (sample.std() - data.std()).abs()
        print(
            f"epoch {epoch} d_loss {sums[0] / counts[0]:.6f} r1_loss {sums[1] / counts[1]:.6e} "
            f"g_loss {sums[2] / counts[2]:.6f} ema_g_loss {ema_loss.item():.6f} "
            f"moment_loss {moment_loss.item():.6f}"
        )


if __name__ == "__main__":
    main()
