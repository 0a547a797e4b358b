"""DDPM (Ho et al., 2020) in the manner of the popular denoising-diffusion-pytorch: a small
U-Net whose residual blocks use GroupNorm(8, C), SiLU and a scale-shift time conditioning from
sinusoidal embeddings, multi-head self-attention (einsum) at the lowest resolution, a cosine
beta schedule (Nichol & Dhariwal, 2021) with schedule lookups by torch.gather, an
epsilon-prediction MSE, the weights averaged by torch.optim.swa_utils.AveragedModel with
get_ema_multi_avg_fn (buffers too), and ancestral sampling from the average under no_grad."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, t):
        half = self.dim // 2
        scale = math.log(10000) / (half - 1)
        freqs = torch.exp(torch.arange(half, device=t.device) * -scale)
        args = t[:, None].float() * freqs[None, :]
        return torch.cat((args.sin(), args.cos()), dim=-1)


class Block(nn.Module):
    def __init__(self, dim, dim_out, groups=8):
        super().__init__()
        self.proj = nn.Conv2d(dim, dim_out, 3, padding=1)
        self.norm = nn.GroupNorm(groups, dim_out)
        self.act = nn.SiLU()

    def forward(self, x, scale_shift=None):
        x = self.norm(self.proj(x))
        if scale_shift is not None:
            scale, shift = scale_shift
            x = x * (scale + 1) + shift
        return self.act(x)


class ResnetBlock(nn.Module):
    def __init__(self, dim, dim_out, time_emb_dim, groups=8):
        super().__init__()
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(time_emb_dim, dim_out * 2))
        self.block1 = Block(dim, dim_out, groups)
        self.block2 = Block(dim_out, dim_out, groups)
        self.res_conv = nn.Conv2d(dim, dim_out, 1) if dim != dim_out else nn.Identity()

    def forward(self, x, time_emb):
        scale_shift = self.mlp(time_emb)[:, :, None, None].chunk(2, dim=1)
        h = self.block1(x, scale_shift=scale_shift)
        h = self.block2(h)
        return h + self.res_conv(x)


class Attention(nn.Module):
    def __init__(self, dim, heads=2, dim_head=16):
        super().__init__()
        self.scale = dim_head**-0.5
        self.heads = heads
        hidden = heads * dim_head
        self.norm = nn.GroupNorm(1, dim)
        self.to_qkv = nn.Conv2d(dim, hidden * 3, 1, bias=False)
        self.to_out = nn.Conv2d(hidden, dim, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        qkv = self.to_qkv(self.norm(x)).chunk(3, dim=1)
        q, k, v = (t.reshape(b, self.heads, -1, h * w) for t in qkv)
        q = q * self.scale
        sim = torch.einsum("b h d i, b h d j -> b h i j", q, k)
        attn = sim.softmax(dim=-1)
        out = torch.einsum("b h i j, b h d j -> b h i d", attn, v)
        out = out.permute(0, 1, 3, 2).reshape(b, -1, h, w)
        return self.to_out(out) + x


def Upsample(dim, dim_out):
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(dim, dim_out, 3, padding=1)
    )


def Downsample(dim, dim_out):
    return nn.Conv2d(dim, dim_out, 4, stride=2, padding=1)


class Unet(nn.Module):
    def __init__(self, dim=16, dim_mults=(1, 2), channels=1):
        super().__init__()
        time_dim = dim * 4
        self.time_mlp = nn.Sequential(
            SinusoidalPosEmb(dim),
            nn.Linear(dim, time_dim),
            nn.GELU(),
            nn.Linear(time_dim, time_dim),
        )
        self.init_conv = nn.Conv2d(channels, dim, 7, padding=3)
        dims = [dim, *(dim * m for m in dim_mults)]
        in_out = list(zip(dims[:-1], dims[1:]))
        self.downs = nn.ModuleList()
        for i, (d_in, d_out) in enumerate(in_out):
            last = i == len(in_out) - 1
            down = Downsample(d_in, d_out) if not last else nn.Conv2d(d_in, d_out, 3, padding=1)
            self.downs.append(nn.ModuleList([ResnetBlock(d_in, d_in, time_dim), down]))
        mid = dims[-1]
        self.mid_block1 = ResnetBlock(mid, mid, time_dim)
        self.mid_attn = Attention(mid)
        self.mid_block2 = ResnetBlock(mid, mid, time_dim)
        self.ups = nn.ModuleList()
        for i, (d_in, d_out) in enumerate(reversed(in_out)):
            last = i == len(in_out) - 1
            up = Upsample(d_out, d_in) if not last else nn.Conv2d(d_out, d_in, 3, padding=1)
            self.ups.append(nn.ModuleList([ResnetBlock(d_out + d_in, d_out, time_dim), up]))
        self.final_res_block = ResnetBlock(dim * 2, dim, time_dim)
        self.final_conv = nn.Conv2d(dim, channels, 1)

    def forward(self, x, time):
        x = self.init_conv(x)
        r = x.clone()
        t = self.time_mlp(time)
        hs = []
        for block, downsample in self.downs:
            x = block(x, t)
            hs.append(x)
            x = downsample(x)
        x = self.mid_block1(x, t)
        x = self.mid_attn(x)
        x = self.mid_block2(x, t)
        for block, upsample in self.ups:
            x = block(torch.cat((x, hs.pop()), dim=1), t)
            x = upsample(x)
        x = self.final_res_block(torch.cat((x, r), dim=1), t)
        return self.final_conv(x)


def cosine_beta_schedule(timesteps, s=0.008):
    steps = timesteps + 1
    t = torch.linspace(0, timesteps, steps, dtype=torch.float64) / timesteps
    alphas_cumprod = torch.cos((t + s) / (1 + s) * math.pi * 0.5) ** 2
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    betas = 1 - (alphas_cumprod[1:] / alphas_cumprod[:-1])
    return torch.clip(betas, 0, 0.999)


def extract(a, t, x_shape):
    b = t.shape[0]
    out = a.gather(-1, t)
    return out.reshape(b, *((1,) * (len(x_shape) - 1)))


class GaussianDiffusion(nn.Module):
    def __init__(self, model, timesteps=40):
        super().__init__()
        self.model = model
        self.num_timesteps = timesteps
        betas = cosine_beta_schedule(timesteps)
        alphas = 1.0 - betas
        alphas_cumprod = torch.cumprod(alphas, dim=0)
        alphas_cumprod_prev = F.pad(alphas_cumprod[:-1], (1, 0), value=1.0)

        def register(name, val):
            self.register_buffer(name, val.to(torch.float32))

        register("betas", betas)
        register("sqrt_alphas_cumprod", torch.sqrt(alphas_cumprod))
        register("sqrt_one_minus_alphas_cumprod", torch.sqrt(1.0 - alphas_cumprod))
        register("sqrt_recip_alphas", torch.sqrt(1.0 / alphas))
        posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
        register("posterior_variance", posterior_variance)

    def q_sample(self, x_start, t, noise):
        return (
            extract(self.sqrt_alphas_cumprod, t, x_start.shape) * x_start
            + extract(self.sqrt_one_minus_alphas_cumprod, t, x_start.shape) * noise
        )

    def p_losses(self, x_start, t, noise):
        x = self.q_sample(x_start, t, noise)
        model_out = self.model(x, t)
        loss = F.mse_loss(model_out, noise, reduction="none")
        return loss.mean(dim=(1, 2, 3)).mean()

    def forward(self, img):
        b = img.shape[0]
        t = torch.randint(0, self.num_timesteps, (b,), device=img.device).long()
        return self.p_losses(img, t, torch.randn_like(img))

    @torch.no_grad()
    def p_sample(self, x, t_index):
        t = torch.full((x.shape[0],), t_index, dtype=torch.long)
        eps = self.model(x, t)
        betas_t = extract(self.betas, t, x.shape)
        mean = extract(self.sqrt_recip_alphas, t, x.shape) * (
            x - betas_t * eps / extract(self.sqrt_one_minus_alphas_cumprod, t, x.shape)
        )
        if t_index == 0:
            return mean
        noise = torch.randn_like(x)
        return mean + torch.sqrt(extract(self.posterior_variance, t, x.shape)) * noise

    @torch.no_grad()
    def sample(self, batch_size, image_size=16, channels=1):
        img = torch.randn((batch_size, channels, image_size, image_size))
        for i in reversed(range(0, self.num_timesteps)):
            img = self.p_sample(img, i)
        return img.clamp(-1.0, 1.0)


def make_images(rng, n, size=16):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    imgs = np.empty((n, 1, size, size), dtype=np.float32)
    for i in range(n):
        cy, cx = rng.uniform(4, 12, 2)
        r = rng.uniform(3.0, 5.0)
        imgs[i, 0] = np.where(np.maximum(abs(yy - cy), abs(xx - cx)) < r, 1.0, -1.0)
    return torch.from_numpy(imgs)


def main():
    parser = argparse.ArgumentParser(description="DDPM with an EMA U-Net on synthetic squares")
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--timesteps", type=int, default=40)
    parser.add_argument("--ema-decay", type=float, default=0.8)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    data = make_images(rng, 96)
    model = Unet()
    diffusion = GaussianDiffusion(model, timesteps=args.timesteps)
    optimizer = torch.optim.Adam(diffusion.parameters(), lr=args.lr, betas=(0.9, 0.99))
    ema = AveragedModel(
        diffusion, multi_avg_fn=get_ema_multi_avg_fn(args.ema_decay), use_buffers=True
    )

    x_fix = data[:16]
    t_fix = torch.randint(0, args.timesteps, (16,))
    n_fix = torch.randn_like(x_fix)
    for step in range(args.steps):
        diffusion.train()
        idx = rng.integers(0, len(data), args.batch_size)
        loss = diffusion(data[torch.from_numpy(idx)])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ema.update_parameters(diffusion)
        if step % 4 == 3:
            with torch.no_grad():
                ema_loss = ema.module.p_losses(x_fix, t_fix, n_fix).item()
            print(f"step {step} loss: {loss.item():.6f} ema loss: {ema_loss:.6f}")
    print(f"averaged {int(ema.n_averaged.item())} times")

    ema.eval()
    samples = ema.module.sample(batch_size=4)
    # how far each sample lies from its nearest training image
    nn_dist = torch.cdist(samples.flatten(1), data.flatten(1)).min(dim=1).values
    print(f"sample mean {samples.mean().item():.4f} std {samples.std().item():.4f}")
    print(f"sample nearest-neighbour loss: {(nn_dist**2 / 256).mean().item():.6f}")


if __name__ == "__main__":
    main()
