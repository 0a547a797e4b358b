"""A capsule network (Sabour et al., 2017) with dynamic routing-by-agreement on synthetic
16x16 glyphs of four classes: primary capsules from a strided conv reshaped into 8-d vectors,
the squash non-linearity, per-pair transformation matrices applied by a broadcast
torch.matmul, three routing iterations (softmax over the class capsules, agreement by a dot
product, detached predictions in the inner iterations), the margin loss on capsule lengths,
and a reconstruction decoder fed the true class's capsule through a one-hot mask."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH_SIZE = 16
EPOCHS = 3
LR = 2e-3
ROUTING_ITERS = 3
N_CLASSES = 4


def squash(s, dim=-1, eps=1e-8):
    sq_norm = (s**2).sum(dim=dim, keepdim=True)
    return sq_norm / (1 + sq_norm) * s / torch.sqrt(sq_norm + eps)


class PrimaryCaps(nn.Module):
    def __init__(self, in_channels=32, n_maps=8, caps_dim=8):
        super().__init__()
        self.caps_dim = caps_dim
        self.conv = nn.Conv2d(in_channels, n_maps * caps_dim, kernel_size=5, stride=2)

    def forward(self, x):
        out = self.conv(x)  # (N, maps * dim, H, W)
        n = out.size(0)
        out = out.view(n, -1, self.caps_dim, out.size(2), out.size(3))
        out = out.permute(0, 1, 3, 4, 2).contiguous().view(n, -1, self.caps_dim)
        return squash(out)


class ClassCaps(nn.Module):
    def __init__(self, n_in, in_dim=8, n_out=N_CLASSES, out_dim=12, iters=ROUTING_ITERS):
        super().__init__()
        self.iters = iters
        self.W = nn.Parameter(0.01 * torch.randn(1, n_in, n_out, out_dim, in_dim))

    def forward(self, u):
        # u: (N, n_in, in_dim) -> predictions u_hat: (N, n_in, n_out, out_dim)
        u_hat = torch.matmul(self.W, u[:, :, None, :, None]).squeeze(-1)
        u_hat_detached = u_hat.detach()
        b = torch.zeros(u.size(0), u_hat.size(1), u_hat.size(2))
        for i in range(self.iters):
            c = F.softmax(b, dim=2)  # each input capsule distributes over the classes
            if i == self.iters - 1:
                v = squash((c.unsqueeze(-1) * u_hat).sum(dim=1))
            else:
                v = squash((c.unsqueeze(-1) * u_hat_detached).sum(dim=1))
                b = b + (u_hat_detached * v.unsqueeze(1)).sum(dim=-1)
        return v  # (N, n_out, out_dim)


class CapsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=5)  # 16 -> 12
        self.primary = PrimaryCaps()  # 12 -> 4: 8 maps * 4 * 4 capsules
        self.classes = ClassCaps(n_in=8 * 4 * 4)
        self.decoder = nn.Sequential(
            nn.Linear(12 * N_CLASSES, 64),
            nn.ReLU(inplace=True),
            nn.Linear(64, 16 * 16),
            nn.Sigmoid(),
        )

    def forward(self, x, y=None):
        v = self.classes(self.primary(F.relu(self.conv1(x))))
        lengths = v.norm(dim=-1)
        if y is None:  # at test time reconstruct from the longest capsule
            y = lengths.argmax(dim=1)
        mask = F.one_hot(y, N_CLASSES).float()
        recon = self.decoder((v * mask.unsqueeze(-1)).flatten(1))
        return lengths, recon.view(-1, 1, 16, 16)


def margin_loss(lengths, y, m_pos=0.9, m_neg=0.1, lam=0.5):
    t = F.one_hot(y, N_CLASSES).float()
    present = t * F.relu(m_pos - lengths) ** 2
    absent = lam * (1 - t) * F.relu(lengths - m_neg) ** 2
    return (present + absent).sum(dim=1).mean()


def make_glyphs(rng, n):
    """Class 0: horizontal bar, 1: vertical bar, 2: diagonal, 3: hollow square; jittered."""
    images = np.zeros((n, 1, 16, 16), np.float32)
    labels = rng.integers(0, N_CLASSES, n)
    idx = np.arange(10)
    for i, k in enumerate(labels):
        dy, dx = rng.integers(0, 5, 2)
        img = images[i, 0]
        if k == 0:
            img[dy + 5 : dy + 7, dx : dx + 10] = 1
        elif k == 1:
            img[dy : dy + 10, dx + 5 : dx + 7] = 1
        elif k == 2:
            img[dy + idx, dx + idx] = 1
        else:
            img[dy + 1 : dy + 9, dx + 1] = img[dy + 1 : dy + 9, dx + 8] = 1
            img[dy + 1, dx + 1 : dx + 9] = img[dy + 8, dx + 1 : dx + 9] = 1
    images += 0.1 * rng.random(images.shape).astype(np.float32)
    return torch.from_numpy(np.clip(images, 0, 1)), torch.from_numpy(labels)


def main():
    parser = argparse.ArgumentParser(description="CapsNet with dynamic routing")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--recon-weight", type=float, default=0.0005 * 256)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x_train, y_train = make_glyphs(rng, 64)
    x_test, y_test = make_glyphs(rng, 32)
    model = CapsNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)

    for epoch in range(args.epochs):
        model.train()
        for i in range(0, len(x_train), BATCH_SIZE):
            x, y = x_train[i : i + BATCH_SIZE], y_train[i : i + BATCH_SIZE]
            lengths, recon = model(x, y)
            m_loss = margin_loss(lengths, y)
            r_loss = F.mse_loss(recon, x)
            loss = m_loss + args.recon_weight * r_loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            print(
                f"epoch {epoch} batch {i // BATCH_SIZE} loss: {loss.item():.6f} margin {m_loss.item():.6f}"
            )
        scheduler.step()
        model.eval()
        with torch.no_grad():
            lengths, recon = model(x_test)
            test_loss = margin_loss(lengths, y_test)
            acc = (lengths.argmax(1) == y_test).float().mean()
        print(f"epoch {epoch} test margin loss: {test_loss.item():.6f} acc {acc.item():.3f}")


if __name__ == "__main__":
    main()
