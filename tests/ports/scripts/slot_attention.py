"""Slot Attention (Locatello et al., 2020) object discovery in the style of the public PyTorch
implementations: a CNN encoder with a soft position embedding (a linear map of a 4-channel
coordinate grid from torch.meshgrid), slots drawn from a learnt Gaussian (mu + sigma * randn),
iterative routing whose attention is a softmax over the slots (not the inputs), renormalised
over the inputs, slot updates by nn.GRUCell and a residual MLP, and a spatial broadcast
decoder whose per-slot alpha masks are combined by a softmax over slots. Trained with Adam,
learning-rate warmup then exponential decay (LambdaLR), on synthetic scenes of two coloured
blobs; --implicit detaches the last routing iteration's input (Chang et al., 2022)."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


def build_grid(h, w):
    ys, xs = torch.meshgrid(torch.linspace(0.0, 1.0, h), torch.linspace(0.0, 1.0, w), indexing="ij")
    grid = torch.stack([ys, xs], dim=-1)
    return torch.cat([grid, 1.0 - grid], dim=-1)[None]  # (1, h, w, 4)


class SoftPositionEmbed(nn.Module):
    def __init__(self, hidden, resolution):
        super().__init__()
        self.dense = nn.Linear(4, hidden)
        self.register_buffer("grid", build_grid(*resolution))

    def forward(self, x):  # x: (b, h, w, c)
        return x + self.dense(self.grid)


class SlotAttention(nn.Module):
    def __init__(self, num_slots, dim, iters=3, eps=1e-8, hidden=32, implicit=False):
        super().__init__()
        self.num_slots, self.iters, self.eps, self.implicit = num_slots, iters, eps, implicit
        self.scale = dim**-0.5
        self.slots_mu = nn.Parameter(torch.randn(1, 1, dim))
        self.slots_logsigma = nn.Parameter(torch.zeros(1, 1, dim))
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.gru = nn.GRUCell(dim, dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim)
        )
        self.norm_input = nn.LayerNorm(dim)
        self.norm_slots = nn.LayerNorm(dim)
        self.norm_pre_ff = nn.LayerNorm(dim)

    def forward(self, inputs):
        b, n, d = inputs.shape
        mu = self.slots_mu.expand(b, self.num_slots, -1)
        sigma = self.slots_logsigma.exp().expand(b, self.num_slots, -1)
        slots = mu + sigma * torch.randn(b, self.num_slots, d)
        inputs = self.norm_input(inputs)
        k, v = self.to_k(inputs), self.to_v(inputs)
        for it in range(self.iters):
            if self.implicit and it == self.iters - 1:
                slots = slots.detach()
            slots_prev = slots
            q = self.to_q(self.norm_slots(slots))
            dots = torch.einsum("bid,bjd->bij", q, k) * self.scale
            attn = dots.softmax(dim=1) + self.eps
            attn = attn / attn.sum(dim=-1, keepdim=True)
            updates = torch.einsum("bjd,bij->bid", v, attn)
            slots = self.gru(updates.reshape(-1, d), slots_prev.reshape(-1, d)).reshape(b, -1, d)
            slots = slots + self.mlp(self.norm_pre_ff(slots))
        return slots, attn


class SlotAutoEncoder(nn.Module):
    def __init__(self, resolution=(12, 12), num_slots=3, dim=32, implicit=False):
        super().__init__()
        self.resolution = resolution
        self.encoder = nn.Sequential(
            nn.Conv2d(3, dim, 5, padding=2), nn.ReLU(), nn.Conv2d(dim, dim, 5, padding=2), nn.ReLU(),
        )  # fmt: skip
        self.enc_pos = SoftPositionEmbed(dim, resolution)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.slot_attention = SlotAttention(num_slots, dim, implicit=implicit)
        self.dec_pos = SoftPositionEmbed(dim, resolution)
        self.decoder = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1), nn.ReLU(), nn.Conv2d(dim, 4, 3, padding=1),
        )  # fmt: skip

    def forward(self, image):
        b = image.shape[0]
        x = self.encoder(image).permute(0, 2, 3, 1)
        x = self.mlp(nn.functional.layer_norm(self.enc_pos(x), x.shape[-1:]))
        slots, attn = self.slot_attention(torch.flatten(x, 1, 2))
        h, w = self.resolution
        # spatial broadcast: every slot is tiled over the grid and decoded on its own
        x = slots.reshape(-1, 1, 1, slots.shape[-1]).repeat(1, h, w, 1)
        x = self.dec_pos(x).permute(0, 3, 1, 2)
        x = self.decoder(x).reshape(b, -1, 4, h, w)
        recons, masks = x.split([3, 1], dim=2)
        masks = F.softmax(masks, dim=1)
        return (recons * masks).sum(dim=1), masks, attn


def scenes(n, size=12):
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    centres = torch.rand(n, 2, 2) * (size - 4) + 2
    colours = torch.rand(n, 2, 3)
    img = torch.zeros(n, 3, size, size)
    for j in range(2):
        d = (yy - centres[:, j, 0, None, None]) ** 2 + (xx - centres[:, j, 1, None, None]) ** 2
        blob = torch.exp(-d / 4.0)
        img = img * (1 - blob[:, None]) + colours[:, j, :, None, None] * blob[:, None]
    return img * 2 - 1


def main():
    parser = argparse.ArgumentParser(description="Slot Attention")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=6)
    parser.add_argument("--implicit", action="store_true")
    args = parser.parse_args()

    torch.manual_seed(0)
    data = scenes(64)
    val = scenes(16)
    model = SlotAutoEncoder(implicit=args.implicit)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)

    def lr_lambda(step):
        warm = min(1.0, (step + 1) / args.warmup)
        return warm * 0.5 ** (step / 20)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for i in range(0, len(data), args.batch):
            img = data[i : i + args.batch]
            recon, _, _ = model(img)
            loss = F.mse_loss(recon, img)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        model.eval()
        with torch.no_grad():
            recon, masks, attn = model(val)
            val_loss = F.mse_loss(recon, val).item()
            entropy = -(masks * masks.clamp_min(1e-8).log()).sum(1).mean().item()
        print(
            f"epoch {epoch} train loss {total / (len(data) // args.batch):.6f} "
            f"val loss {val_loss:.6f} mask entropy loss {entropy:.6f}"
        )


if __name__ == "__main__":
    main()
