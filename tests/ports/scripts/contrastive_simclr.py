"""Contrastive representation learning in the manner of SimCLR (Chen et al., 2020) on synthetic
1-D signals: two augmented views per sample (noise, random flips, random masking), an encoder with
a projection head, the NT-Xent loss over the 2N x 2N cosine-similarity matrix, auxiliary triplet
and cosine-embedding terms, then a linear probe trained on the frozen encoder."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Encoder(nn.Module):
    def __init__(self, length=32, hidden=32, feat_dim=16):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(1, 8, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(8, 16, 3, padding=1),
            nn.ReLU(),
        )
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(16 * (length // 2), hidden), nn.ReLU())
        self.out = nn.Linear(hidden, feat_dim)

    def forward(self, x):
        return self.out(self.fc(self.conv(x.unsqueeze(1))))


class SimCLR(nn.Module):
    def __init__(self, length=32, feat_dim=16, proj_dim=8):
        super().__init__()
        self.encoder = Encoder(length, feat_dim=feat_dim)
        self.projector = nn.Sequential(
            nn.Linear(feat_dim, feat_dim), nn.ReLU(inplace=True), nn.Linear(feat_dim, proj_dim)
        )

    def forward(self, x):
        h = self.encoder(x)
        return h, self.projector(h)


def augment(x, noise=0.1, mask_p=0.15):
    """Gaussian jitter, a random time flip for half of the batch, random masking."""
    x = x + noise * torch.randn_like(x)
    flip = torch.rand(x.shape[0]) < 0.5
    x = torch.where(flip[:, None], torch.flip(x, dims=[1]), x)
    keep = (torch.rand(x.shape) > mask_p).float()
    return x * keep


def nt_xent(z1, z2, temperature=0.5):
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    labels = torch.cat([torch.arange(n) + n, torch.arange(n)])
    return F.cross_entropy(sim, labels)


def make_signals(rng, n, length=32, classes=4):
    t = np.linspace(0, 1, length, dtype=np.float32)
    y = rng.integers(0, classes, n)
    phase = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    amp = rng.uniform(0.5, 1.5, n).astype(np.float32)
    x = amp[:, None] * np.sin(2 * np.pi * (y[:, None] + 1) * t[None] + phase[:, None])
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)


def main():
    parser = argparse.ArgumentParser(description="SimCLR-style pretraining + linear probe")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--probe-epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--temperature", type=float, default=0.5)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x_train, y_train = make_signals(rng, 128)
    x_test, y_test = make_signals(rng, 64)

    model = SimCLR()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-6)
    triplet = nn.TripletMarginLoss(margin=1.0, p=2)
    cosine = nn.CosineEmbeddingLoss(margin=0.2)

    for epoch in range(args.epochs):
        model.train()
        totals = np.zeros(3)
        for i in range(0, len(x_train), args.batch_size):
            x = x_train[i : i + args.batch_size]
            v1, v2 = augment(x), augment(x)
            h1, z1 = model(v1)
            h2, z2 = model(v2)
            loss_nce = nt_xent(z1, z2, args.temperature)
            # negatives: the other view of a shifted sample in the batch
            neg = torch.roll(h2, shifts=1, dims=0)
            loss_tri = triplet(h1, h2, neg)
            target = torch.cat([torch.ones(len(x)), -torch.ones(len(x))])
            loss_cos = cosine(torch.cat([z1, z1]), torch.cat([z2, torch.roll(z2, 1, 0)]), target)
            loss = loss_nce + 0.1 * loss_tri + 0.1 * loss_cos
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            totals += [loss_nce.item(), loss_tri.item(), loss_cos.item()]
        steps = len(x_train) // args.batch_size
        print(
            f"epoch {epoch} nt_xent loss: {totals[0] / steps:.6f} "
            f"triplet loss: {totals[1] / steps:.6f} cosine loss: {totals[2] / steps:.6f}"
        )

    # linear evaluation protocol: frozen encoder, a fresh linear classifier
    encoder = model.encoder
    encoder.requires_grad_(False)
    encoder.eval()
    with torch.no_grad():
        f_train, f_test = encoder(x_train), encoder(x_test)
    probe = nn.Linear(f_train.shape[1], 4)
    probe_opt = torch.optim.SGD(probe.parameters(), lr=0.1, momentum=0.9)
    for epoch in range(args.probe_epochs):
        for i in range(0, len(f_train), args.batch_size):
            logits = probe(f_train[i : i + args.batch_size])
            loss = F.cross_entropy(logits, y_train[i : i + args.batch_size])
            probe_opt.zero_grad()
            loss.backward()
            probe_opt.step()
        with torch.no_grad():
            out = probe(f_test)
            test_loss = F.cross_entropy(out, y_test).item()
            acc = (out.argmax(1) == y_test).float().mean().item()
        print(
            f"probe epoch {epoch} loss: {loss.item():.6f} test loss: {test_loss:.6f} acc {acc:.3f}"
        )
    frozen = not any(p.requires_grad for p in encoder.parameters())
    print(f"encoder frozen: {frozen}")


if __name__ == "__main__":
    main()
