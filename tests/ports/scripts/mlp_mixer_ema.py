"""MLP-Mixer (Tolstikhin et al., 2021) trained the way timm-style recipes do, on synthetic
8x8 patterns: patches by a strided Conv2d, token-mixing and channel-mixing MLPs, CutMix with
soft targets (a random box pasted from a rolled batch, cross entropy against probabilities
with label_smoothing), Adam whose beta1 OneCycleLR cycles (three_phase), gradient clipping by
value (clip_grad_value_), and an exponential moving average of the weights and buffers in
torch.optim.swa_utils.AveragedModel (get_ema_multi_avg_fn, use_buffers=True). A BatchNorm
stem makes --swa meaningful: then an equal-weight AveragedModel runs from the second epoch
under SWALR, and update_bn recomputes its BatchNorm statistics from a DataLoader."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.swa_utils import SWALR, AveragedModel, get_ema_multi_avg_fn, update_bn
from torch.utils.data import DataLoader, TensorDataset


class MixerBlock(nn.Module):
    def __init__(self, tokens, dim, token_hidden=16, channel_hidden=48):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.token_mlp = nn.Sequential(
            nn.Linear(tokens, token_hidden), nn.GELU(), nn.Linear(token_hidden, tokens)
        )
        self.norm2 = nn.LayerNorm(dim)
        self.channel_mlp = nn.Sequential(
            nn.Linear(dim, channel_hidden), nn.GELU(), nn.Linear(channel_hidden, dim)
        )

    def forward(self, x):  # (b, tokens, dim)
        x = x + self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(self.norm2(x))


class MLPMixer(nn.Module):
    def __init__(self, n_classes=4, dim=24, patch=2, size=8, depth=2):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, dim, patch, stride=patch), nn.BatchNorm2d(dim))
        tokens = (size // patch) ** 2
        self.blocks = nn.Sequential(*[MixerBlock(tokens, dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x):
        x = self.stem(x).flatten(2).transpose(1, 2)
        return self.head(self.norm(self.blocks(x)).mean(1))


def patterns(n, size=8):
    labels = torch.arange(n) % 4
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    kinds = torch.stack(
        [torch.sin(xx), torch.sin(yy), torch.sin(xx + yy), torch.cos(xx - yy) * torch.sin(yy)]
    )
    return kinds[labels].unsqueeze(1) + 0.8 * torch.randn(n, 1, size, size), labels


def cutmix(x, y, n_classes=4, ratio=0.5):
    h, w = x.shape[-2:]
    ch, cw = int(h * ratio), int(w * ratio)
    top = int(torch.randint(0, h - ch + 1, (1,)).item())
    left = int(torch.randint(0, w - cw + 1, (1,)).item())
    x2, y2 = x.roll(1, 0), y.roll(1, 0)
    mixed = x.clone()
    mixed[:, :, top : top + ch, left : left + cw] = x2[:, :, top : top + ch, left : left + cw]
    lam = 1 - ch * cw / (h * w)
    target = lam * F.one_hot(y, n_classes).float() + (1 - lam) * F.one_hot(y2, n_classes).float()
    return mixed, target


def main():
    parser = argparse.ArgumentParser(description="MLP-Mixer with CutMix and EMA")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--swa", action="store_true")
    args = parser.parse_args()

    torch.manual_seed(0)
    x, y = patterns(192)
    x_val, y_val = patterns(64)
    loader = DataLoader(TensorDataset(x, y), batch_size=args.batch, shuffle=True)
    model = MLPMixer()
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=5e-3,
        epochs=args.epochs,
        steps_per_epoch=len(loader),
        three_phase=True,
        pct_start=0.3,
    )
    swa_model, swa_sched = (
        (AveragedModel(model), SWALR(opt, swa_lr=2e-3, anneal_epochs=1))
        if args.swa
        else (None, None)
    )
    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for xb, yb in loader:
            xb, target = cutmix(xb, yb)
            loss = F.cross_entropy(model(xb), target, label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_value_(model.parameters(), 0.5)
            opt.step()
            if swa_model is None or epoch == 0:
                sched.step()
            ema.update_parameters(model)
            total += loss.item()
        if swa_model is not None and epoch >= 1:
            swa_model.update_parameters(model)
            swa_sched.step()
        model.eval()
        ema.eval()
        with torch.no_grad():
            val = F.cross_entropy(model(x_val), y_val).item()
            ema_val = F.cross_entropy(ema(x_val), y_val).item()
        line = (f"epoch {epoch} train loss {total / len(loader):.6f} val loss {val:.6f} "
                f"ema loss {ema_val:.6f} beta1 {opt.param_groups[0]['betas'][0]:.4f}")  # fmt: skip
        if swa_model is not None and epoch >= 1:
            update_bn(loader, swa_model)
            swa_model.eval()
            with torch.no_grad():
                line += f" swa loss {F.cross_entropy(swa_model(x_val), y_val).item():.6f}"
        print(line)


if __name__ == "__main__":
    main()
