"""A VQ-VAE (van den Oord et al., 2017) on synthetic 16x16 shape images: a convolutional
encoder/decoder with GroupNorm and SiLU, a codebook (nn.Embedding) searched for the nearest
code, the straight-through estimator, the commitment loss, and the codebook learnt either by
gradient (codebook loss) or by exponential moving averages of the assigned encoder outputs
(index_add_ under torch.no_grad, Laplace-smoothed cluster sizes); perplexity of the code usage
from torch.bincount, and a test pass that looks codes up with torch.cdist."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class VectorQuantizer(nn.Module):
    def __init__(self, num_embeddings, embedding_dim, beta=0.25, ema=True, decay=0.9, eps=1e-5):
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.beta = beta
        self.ema = ema
        self.decay = decay
        self.eps = eps
        self.embedding = nn.Embedding(num_embeddings, embedding_dim)
        self.embedding.weight.data.uniform_(-1.0 / num_embeddings, 1.0 / num_embeddings)
        if ema:
            self.embedding.weight.requires_grad_(False)
            self.register_buffer("cluster_size", torch.zeros(num_embeddings))
            self.register_buffer("embed_avg", torch.zeros(num_embeddings, embedding_dim))
            self.register_buffer("initted", torch.tensor(False))

    def codes(self, flat):
        # ||z||^2 + ||e||^2 - 2 z.e, the expanded squared distance to every code
        w = self.embedding.weight
        d = flat.pow(2).sum(1, keepdim=True) + w.pow(2).sum(1) - 2 * flat @ w.t()
        return torch.argmin(d, dim=1)

    @torch.no_grad()
    def ema_update(self, flat, indices):
        if not self.initted:
            # the running average starts from the codebook itself
            self.embed_avg.copy_(self.embedding.weight)
            self.cluster_size.fill_(1.0)
            self.initted.fill_(True)
        onehot = F.one_hot(indices, self.num_embeddings).type(flat.dtype)
        self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        embed_sum = torch.zeros_like(self.embed_avg).index_add_(0, indices, flat)
        self.embed_avg.mul_(self.decay).add_(embed_sum, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.num_embeddings * self.eps) * n
        self.embedding.weight.copy_(self.embed_avg / smoothed.unsqueeze(1))

    def forward(self, z):
        z = z.permute(0, 2, 3, 1).contiguous()  # (B, H, W, D)
        flat = z.view(-1, self.embedding_dim)
        indices = self.codes(flat)
        z_q = self.embedding(indices).view(z.shape)
        if self.training and self.ema:
            self.ema_update(flat.detach(), indices)
            loss = self.beta * F.mse_loss(z, z_q.detach())
        else:
            loss = F.mse_loss(z_q, z.detach()) + self.beta * F.mse_loss(z, z_q.detach())
        z_q = z + (z_q - z).detach()  # straight-through: the decoder's gradient reaches z
        counts = torch.bincount(indices, minlength=self.num_embeddings).float()
        avg_probs = counts / indices.numel()
        perplexity = torch.exp(-torch.sum(avg_probs * torch.log(avg_probs + 1e-10)))
        return z_q.permute(0, 3, 1, 2).contiguous(), loss, perplexity, indices


class VQVAE(nn.Module):
    def __init__(self, hidden=32, num_embeddings=16, embedding_dim=8, ema=True):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, hidden // 2, 4, stride=2, padding=1),  # 16 -> 8
            nn.GroupNorm(4, hidden // 2),
            nn.SiLU(),
            nn.Conv2d(hidden // 2, hidden, 4, stride=2, padding=1),  # 8 -> 4
            nn.GroupNorm(8, hidden),
            nn.SiLU(),
            nn.Conv2d(hidden, embedding_dim, 1),
        )
        self.vq = VectorQuantizer(num_embeddings, embedding_dim, ema=ema)
        self.decoder = nn.Sequential(
            nn.Conv2d(embedding_dim, hidden, 3, padding=1),
            nn.GroupNorm(8, hidden),
            nn.SiLU(),
            nn.ConvTranspose2d(hidden, hidden // 2, 4, stride=2, padding=1),  # 4 -> 8
            nn.GroupNorm(4, hidden // 2),
            nn.SiLU(),
            nn.ConvTranspose2d(hidden // 2, 1, 4, stride=2, padding=1),  # 8 -> 16
        )

    def forward(self, x):
        z_q, vq_loss, perplexity, _ = self.vq(self.encoder(x))
        return self.decoder(z_q), vq_loss, perplexity


def make_shapes(rng, n, size=16):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    imgs = np.zeros((n, 1, size, size), dtype=np.float32)
    for i in range(n):
        cy, cx = rng.uniform(4, 12, 2)
        r = rng.uniform(2.0, 4.5)
        if rng.random() < 0.5:
            imgs[i, 0] = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r) * rng.uniform(0.5, 1.0)
        else:
            imgs[i, 0] = ((abs(yy - cy) < r) & (abs(xx - cx) < r)) * rng.uniform(0.5, 1.0)
    return torch.from_numpy(imgs)


def train(args, data, test, ema):
    tag = "ema" if ema else "grad"
    model = VQVAE(ema=ema)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, amsgrad=False)
    data_variance = data.var().item()
    for epoch in range(args.epochs):
        model.train()
        totals = np.zeros(3)
        for i in range(0, len(data), args.batch_size):
            x = data[i : i + args.batch_size]
            x_hat, vq_loss, perplexity = model(x)
            recon = F.mse_loss(x_hat, x) / data_variance
            loss = recon + vq_loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            totals += [recon.item(), vq_loss.item(), perplexity.item()]
        steps = len(data) // args.batch_size
        print(
            f"[{tag}] epoch {epoch} recon loss: {totals[0] / steps:.6f} "
            f"vq loss: {totals[1] / steps:.6f} perplexity {totals[2] / steps:.3f}"
        )

    model.eval()
    with torch.no_grad():
        z = model.encoder(test).permute(0, 2, 3, 1)
        flat = z.reshape(-1, z.shape[-1])
        # the same nearest codes through torch.cdist
        idx = torch.cdist(flat, model.vq.embedding.weight).argmin(dim=1)
        agree = (idx == model.vq.codes(flat)).float().mean().item()
        z_q = model.vq.embedding(idx).view(z.shape).permute(0, 3, 1, 2)
        test_loss = F.mse_loss(model.decoder(z_q), test).item() / data_variance
        used = torch.unique(idx).numel()
    print(f"[{tag}] test recon loss: {test_loss:.6f} codes used {used} cdist agrees {agree:.3f}")


def main():
    parser = argparse.ArgumentParser(description="VQ-VAE on synthetic shapes")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    data = make_shapes(rng, 256)
    test = make_shapes(rng, 64)
    train(args, data, test, ema=True)
    train(args, data, test, ema=False)


if __name__ == "__main__":
    main()
