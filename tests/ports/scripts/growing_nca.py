"""Growing neural cellular automata (Mordvintsev et al., 2020, "Growing Neural Cellular
Automata") in the style of the public PyTorch ports: each cell perceives its neighbourhood
by fixed identity and Sobel filters (torch.outer, a depthwise F.conv2d with groups=channels
over F.pad(mode="circular")), updates through two 1x1 convolutions whose last layer starts at
zero, fires stochastically (a per-cell torch.rand mask), and stays alive while a 3x3
F.max_pool2d of its alpha channel exceeds 0.1. Training keeps a sample pool
(index_select / index_copy_, the worst sample reseeded), runs a random number of steps per
batch, normalises each parameter's gradient by its norm (the paper's trick) and uses Adam
with MultiStepLR. The target is a synthetic RGBA disc."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


class CAModel(nn.Module):
    def __init__(self, channels=12, hidden=48, fire_rate=0.5, pad="circular"):
        super().__init__()
        self.channels, self.fire_rate, self.pad = channels, fire_rate, pad
        ident = torch.tensor([0.0, 1.0, 0.0])
        sobel = torch.outer(torch.tensor([1.0, 2.0, 1.0]), torch.tensor([-1.0, 0.0, 1.0])) / 8
        kernels = torch.stack([torch.outer(ident, ident), sobel, sobel.T])  # (3, 3, 3)
        self.register_buffer(
            "kernel", kernels.repeat(channels, 1, 1).unsqueeze(1), persistent=False
        )
        self.fc0 = nn.Conv2d(channels * 3, hidden, 1)
        self.fc1 = nn.Conv2d(hidden, channels, 1, bias=False)
        with torch.no_grad():
            self.fc1.weight.zero_()

    def alive(self, x):
        return F.max_pool2d(x[:, 3:4], kernel_size=3, stride=1, padding=1) > 0.1

    def perceive(self, x):
        x = F.pad(x, (1, 1, 1, 1), mode=self.pad)
        return F.conv2d(x, self.kernel, groups=self.channels)

    def forward(self, x):
        pre_life = self.alive(x)
        dx = self.fc1(F.relu(self.fc0(self.perceive(x))))
        fire = (torch.rand(x.shape[0], 1, x.shape[2], x.shape[3]) <= self.fire_rate).float()
        x = x + dx * fire
        life = (pre_life & self.alive(x)).float()
        return x * life


def disc_target(size=16):
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    r = torch.sqrt(xx**2 + yy**2)
    alpha = torch.sigmoid((0.6 - r) * 12)
    rgb = torch.stack(
        [0.5 + 0.5 * torch.cos(3 * torch.atan2(yy, xx)), 0.5 + 0.3 * xx, 0.6 - 0.2 * yy]
    )
    return torch.cat([rgb * alpha, alpha[None]])


def seed(n, channels, size):
    x = torch.zeros(n, channels, size, size)
    x[:, 3:, size // 2, size // 2] = 1.0
    return x


def main():
    parser = argparse.ArgumentParser(description="Growing neural cellular automata")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--pool", type=int, default=16)
    parser.add_argument("--pad", choices=["circular", "constant", "replicate"], default="circular")
    args = parser.parse_args()

    torch.manual_seed(0)
    size, channels = 16, 12
    target = disc_target(size)
    ca = CAModel(channels, pad=args.pad)
    opt = torch.optim.Adam(ca.parameters(), lr=2e-3, eps=1e-8)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[8, 16], gamma=0.3)
    pool = seed(args.pool, channels, size)
    for epoch in range(args.epochs):
        losses = []
        for _ in range(4):
            idx = torch.randperm(args.pool)[: args.batch]
            batch = pool.index_select(0, idx)
            with torch.no_grad():
                per = F.mse_loss(
                    batch[:, :4], target.expand(args.batch, -1, -1, -1), reduction="none"
                )
                worst = per.mean((1, 2, 3)).argmax()
            batch[worst] = seed(1, channels, size)[0]
            x = batch
            for _ in range(int(torch.randint(8, 13, (1,)).item())):
                x = ca(x)
            loss = F.mse_loss(x[:, :4], target.expand(args.batch, -1, -1, -1))
            opt.zero_grad()
            loss.backward()
            with torch.no_grad():
                for p in ca.parameters():
                    p.grad /= p.grad.norm() + 1e-8
            opt.step()
            sched.step()
            pool.index_copy_(0, idx, x.detach())
            losses.append(loss.item())
        with torch.no_grad():
            grown = seed(1, channels, size)
            for _ in range(12):
                grown = ca(grown)
            growth = F.mse_loss(grown[:, :4], target[None]).item()
            alive = torch.count_nonzero(grown[:, 3] > 0.1).item()
        print(
            f"epoch {epoch} pool loss {sum(losses) / len(losses):.6f} growth loss {growth:.6f} alive cells {alive}"
        )


if __name__ == "__main__":
    main()
