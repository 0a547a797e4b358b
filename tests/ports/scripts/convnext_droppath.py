"""A tiny ConvNeXt (Liu et al., 2022) on synthetic oriented-texture images: 7x7 depthwise
convolutions, LayerNorm over channels in both layouts (channels-last through a permute and
nn.LayerNorm; channels-first by hand, as the reference code's LayerNorm2d does), inverted
bottleneck MLPs as nn.Linear on channels-last tensors, learnable layer scale, and stochastic
depth (DropPath) with per-block rates from torch.linspace. AdamW with a no-weight-decay
parameter group, linear warmup then cosine decay through LambdaLR, label smoothing, and an
exponential moving average of the weights kept in a deep copy of the model and updated the
way timm's ModelEmaV3 does it, with torch._foreach_lerp_ over the state_dict tensors."""

import argparse
import copy
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


def drop_path(x, drop_prob: float = 0.0, training: bool = False):
    """Drop whole residual branches per sample; scale the kept ones by 1 / keep_prob."""
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    random_tensor = keep_prob + torch.rand(shape, dtype=x.dtype, device=x.device)
    random_tensor.floor_()  # binarize
    return x.div(keep_prob) * random_tensor


class DropPath(nn.Module):
    def __init__(self, drop_prob=0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self):
        return f"drop_prob={self.drop_prob:.3f}"


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel dim of an NCHW tensor (no permute)."""

    def __init__(self, num_channels, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class Block(nn.Module):
    def __init__(self, dim, drop_path=0.0, layer_scale_init_value=1e-6):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(layer_scale_init_value * torch.ones(dim))
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, x):
        shortcut = x
        x = self.dwconv(x)
        x = x.permute(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
        x = self.norm(x)
        x = self.pwconv2(self.act(self.pwconv1(x)))
        x = self.gamma * x
        x = x.permute(0, 3, 1, 2)
        return shortcut + self.drop_path(x)


class ConvNeXt(nn.Module):
    def __init__(self, in_chans=3, num_classes=4, depths=(2, 2), dims=(16, 32), drop_path_rate=0.3):
        super().__init__()
        self.downsample_layers = nn.ModuleList()
        self.downsample_layers.append(
            nn.Sequential(
                nn.Conv2d(in_chans, dims[0], kernel_size=2, stride=2), LayerNorm2d(dims[0])
            )
        )
        for i in range(len(dims) - 1):
            self.downsample_layers.append(
                nn.Sequential(LayerNorm2d(dims[i]), nn.Conv2d(dims[i], dims[i + 1], 2, stride=2))
            )
        dp_rates = [x.item() for x in torch.linspace(0, drop_path_rate, sum(depths))]
        self.stages = nn.ModuleList()
        cur = 0
        for i, depth in enumerate(depths):
            self.stages.append(
                nn.Sequential(*[Block(dims[i], drop_path=dp_rates[cur + j]) for j in range(depth)])
            )
            cur += depth
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes)
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.constant_(m.bias, 0)

    def forward(self, x):
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        return self.head(self.norm(x.mean([-2, -1])))  # global average pooling


class ModelEma:
    """EMA of a model's floating-point state (parameters and buffers) with decay warmup."""

    def __init__(self, model, decay=0.99, warmup=True):
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.warmup = warmup

    def get_decay(self, step):
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model, step):
        decay = self.get_decay(step)
        ema_lerp, model_lerp = [], []
        for ema_v, model_v in zip(self.module.state_dict().values(), model.state_dict().values()):
            if ema_v.is_floating_point():
                ema_lerp.append(ema_v)
                model_lerp.append(model_v)
            else:
                ema_v.copy_(model_v)
        torch._foreach_lerp_(ema_lerp, model_lerp, weight=1.0 - decay)


def make_textures(rng, n, size=16):
    """Class k: a sinusoidal grating at angle k * 45 degrees, random phase and frequency."""
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    labels = rng.integers(0, 4, n)
    images = np.empty((n, 3, size, size), np.float32)
    for i, k in enumerate(labels):
        theta = k * np.pi / 4
        freq = rng.uniform(0.4, 0.9)
        wave = np.sin(freq * (np.cos(theta) * xx + np.sin(theta) * yy) + rng.uniform(0, 2 * np.pi))
        colour = rng.uniform(0.5, 1.0, (3, 1, 1))
        images[i] = colour * wave + 0.3 * rng.standard_normal((3, size, size))
    return torch.from_numpy(images), torch.from_numpy(labels)


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def main():
    parser = argparse.ArgumentParser(description="ConvNeXt with stochastic depth")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup-steps", type=int, default=2)
    parser.add_argument("--drop-path", type=float, default=0.3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x_train, y_train = make_textures(rng, 96)
    x_val, y_val = make_textures(rng, 32)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch_size, shuffle=True)

    model = ConvNeXt(drop_path_rate=args.drop_path)
    optimizer = torch.optim.AdamW(param_groups(model, args.weight_decay), lr=args.lr)
    total_steps = args.epochs * len(loader)

    def lr_lambda(step):
        if step < args.warmup_steps:
            return (step + 1) / args.warmup_steps
        progress = (step - args.warmup_steps) / max(1, total_steps - args.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
    model_ema = ModelEma(model, decay=0.9)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)

    for epoch in range(args.epochs):
        model.train()
        for i, (images, target) in enumerate(loader):
            loss = criterion(model(images), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            model_ema.update(model, step=epoch * len(loader) + i)
            print(
                f"epoch {epoch} iter {i} lr {scheduler.get_last_lr()[0]:.5f} loss: {loss.item():.6f}"
            )
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            val_loss = F.cross_entropy(logits, y_val)
            acc = (logits.argmax(1) == y_val).float().mean()
            ema_loss = F.cross_entropy(model_ema.module(x_val), y_val)
        print(
            f"epoch {epoch} val loss: {val_loss.item():.6f} acc {acc.item():.3f} "
            f"ema val loss: {ema_loss.item():.6f}"
        )


if __name__ == "__main__":
    main()
