"""A categorical VAE with the Gumbel-softmax relaxation (Jang et al., 2017; Maddison et al.,
2017) on binarized synthetic stroke images: an MLP encoder giving logits of N categorical
latents with K classes each, Gumbel noise drawn with torch.rand as -log(-log(U)), the relaxed
sample softmax((logits + g) / tau) with tau annealed by exp(-rate * step), the straight-through
hard sample (a one-hot from argmax via scatter_, plus (y_hard - y).detach() + y), the KL to a
uniform prior from torch.log/softmax, a Bernoulli reconstruction loss
(F.binary_cross_entropy_with_logits, summed per image), Adam; the test pass decodes the argmax
codes (no noise) and reports the reconstruction loss."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def sample_gumbel(shape, eps=1e-20):
    u = torch.rand(shape)
    return -torch.log(-torch.log(u + eps) + eps)


def gumbel_softmax_sample(logits, temperature):
    y = logits + sample_gumbel(logits.size())
    return F.softmax(y / temperature, dim=-1)


def gumbel_softmax(logits, temperature, hard=False):
    y = gumbel_softmax_sample(logits, temperature)
    if not hard:
        return y
    index = y.max(dim=-1, keepdim=True)[1]
    y_hard = torch.zeros_like(y).scatter_(-1, index, 1.0)
    # straight-through: the forward pass is one-hot, the gradient is the relaxed sample's
    return (y_hard - y).detach() + y


class CategoricalVAE(nn.Module):
    def __init__(self, image_dim=144, latent_dim=8, categorical_dim=4, hidden=(128, 64)):
        super().__init__()
        self.latent_dim = latent_dim
        self.categorical_dim = categorical_dim
        self.fc1 = nn.Linear(image_dim, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], latent_dim * categorical_dim)
        self.fc4 = nn.Linear(latent_dim * categorical_dim, hidden[1])
        self.fc5 = nn.Linear(hidden[1], hidden[0])
        self.fc6 = nn.Linear(hidden[0], image_dim)
        self.relu = nn.ReLU()

    def encode(self, x):
        h1 = self.relu(self.fc1(x))
        h2 = self.relu(self.fc2(h1))
        return self.fc3(h2)

    def decode(self, z):
        h4 = self.relu(self.fc4(z))
        h5 = self.relu(self.fc5(h4))
        return self.fc6(h5)  # logits of the Bernoulli pixels

    def forward(self, x, temp, hard):
        q = self.encode(x.view(x.size(0), -1))
        q_y = q.view(q.size(0), self.latent_dim, self.categorical_dim)
        z = gumbel_softmax(q_y, temp, hard)
        return self.decode(z.view(z.size(0), -1)), F.softmax(q_y, dim=-1)

    @torch.no_grad()
    def reconstruct(self, x):
        q = self.encode(x.view(x.size(0), -1)).view(x.size(0), self.latent_dim, -1)
        z = F.one_hot(q.argmax(dim=-1), self.categorical_dim).float()
        return self.decode(z.view(z.size(0), -1))


def loss_function(recon_logits, x, qy, categorical_dim, eps=1e-20):
    bce = F.binary_cross_entropy_with_logits(
        recon_logits, x.view(x.size(0), -1), reduction="sum"
    ) / x.size(0)
    log_ratio = torch.log(qy * categorical_dim + eps)
    kld = torch.sum(qy * log_ratio, dim=-1).mean(dim=0).sum()
    return bce + kld, bce, kld


def make_strokes(rng, n, size=12):
    """Binarized images of one or two thick line segments."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    imgs = np.zeros((n, 1, size, size), dtype=np.float32)
    for i in range(n):
        for _ in range(rng.integers(1, 3)):
            p0, p1 = rng.uniform(1, size - 1, 2), rng.uniform(1, size - 1, 2)
            d = p1 - p0
            t = ((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / max(d @ d, 1e-6)
            t = np.clip(t, 0, 1)
            dist = np.hypot(xx - (p0[0] + t * d[0]), yy - (p0[1] + t * d[1]))
            imgs[i, 0] = np.maximum(imgs[i, 0], (dist < 1.2).astype(np.float32))
    return torch.from_numpy(imgs)


def main():
    parser = argparse.ArgumentParser(description="Gumbel-softmax categorical VAE")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--temp", type=float, default=1.0)
    parser.add_argument("--temp-min", type=float, default=0.5)
    parser.add_argument("--anneal-rate", type=float, default=0.01)
    parser.add_argument("--soft", action="store_true", help="relaxed samples, no straight-through")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    train = make_strokes(rng, 256)
    test = make_strokes(rng, 64)
    model = CategoricalVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    temp = args.temp
    step = 0
    for epoch in range(args.epochs):
        model.train()
        totals = np.zeros(3)
        batches = 0
        for i in range(0, len(train), args.batch_size):
            x = train[i : i + args.batch_size]
            optimizer.zero_grad()
            recon, qy = model(x, temp, hard=not args.soft)
            loss, bce, kld = loss_function(recon, x, qy, model.categorical_dim)
            loss.backward()
            optimizer.step()
            totals += [loss.item(), bce.item(), kld.item()]
            batches += 1
            step += 1
            if step % 4 == 0:
                temp = max(args.temp * math.exp(-args.anneal_rate * step), args.temp_min)
        model.eval()
        recon = model.reconstruct(test)
        test_loss = F.binary_cross_entropy_with_logits(
            recon, test.view(len(test), -1), reduction="sum"
        ).item() / len(test)
        print(
            f"epoch {epoch} tau {temp:.4f} loss {totals[0] / batches:.5f} "
            f"bce loss {totals[1] / batches:.5f} kl loss {totals[2] / batches:.6f} "
            f"test recon loss {test_loss:.5f}"
        )


if __name__ == "__main__":
    main()
