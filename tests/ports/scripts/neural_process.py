"""A conditional neural process (Garnelo et al., 2018) on random sine functions: each task's
points are split into context and target sets by torch.randperm, the context is encoded point
by point and mean-aggregated (masked, so that tasks in a batch may have different context
sizes), the representation is expanded over the targets, and the decoder's Normal predictive
is trained by its log-likelihood (an Independent Normal over the target points).
--latent adds the latent path of a neural process (Garnelo et al., 2018b): a Normal over a
global latent, sampled by rsample, with the KL of the posterior given all points from the
prior given the context by torch.distributions.kl_divergence. --attention makes the
deterministic path attentive (Kim et al., 2019): each target point attends over the context
points' encodings with nn.MultiheadAttention, the padding of short contexts masked out by
key_padding_mask."""

import argparse
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Independent, Normal, kl_divergence


def mlp(sizes):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class SetEncoder(nn.Module):
    """Encodes (x, y) pairs one by one and takes the masked mean over the set."""

    def __init__(self, out, hidden=32):
        super().__init__()
        self.net = mlp([2, hidden, hidden, out])

    def forward(self, x, y, mask):
        r = self.net(torch.cat([x, y], dim=-1))
        mask = mask.unsqueeze(-1).to(r.dtype)
        return (r * mask).sum(1) / mask.sum(1).clamp_min(1.0)


class AttentiveEncoder(nn.Module):
    """Per target point: attention over the encoded context pairs, queried by the target x."""

    def __init__(self, out, hidden=32, heads=4):
        super().__init__()
        self.net = mlp([2, hidden, hidden, out])
        self.key = nn.Linear(1, out)
        self.query = nn.Linear(1, out)
        self.attn = nn.MultiheadAttention(out, heads, batch_first=True)

    def forward(self, x, y, mask, x_tgt):
        values = self.net(torch.cat([x, y], dim=-1))
        r, weights = self.attn(
            self.query(x_tgt), self.key(x), values, key_padding_mask=~mask,
            need_weights=True, average_attn_weights=True,
        )  # fmt: skip
        return r, weights


class NeuralProcess(nn.Module):
    def __init__(self, r_dim=32, z_dim=8, latent=False, attention=False):
        super().__init__()
        self.latent = latent
        self.attention = attention
        self.det_encoder = AttentiveEncoder(r_dim) if attention else SetEncoder(r_dim)
        if latent:
            self.lat_encoder = SetEncoder(2 * z_dim)
        self.decoder = mlp([1 + r_dim + (z_dim if latent else 0), 32, 32, 2])

    def latent_dist(self, x, y, mask):
        mu, raw = self.lat_encoder(x, y, mask).chunk(2, dim=-1)
        return Normal(mu, 0.1 + 0.9 * torch.sigmoid(raw))

    def forward(self, x_ctx, y_ctx, ctx_mask, x_tgt, y_tgt=None):
        n_tgt = x_tgt.shape[1]
        if self.attention:
            r, self.last_weights = self.det_encoder(x_ctx, y_ctx, ctx_mask, x_tgt)
            rep = [r]
        else:
            r = self.det_encoder(x_ctx, y_ctx, ctx_mask)
            rep = [r.unsqueeze(1).expand(-1, n_tgt, -1)]
        kl = None
        if self.latent:
            prior = self.latent_dist(x_ctx, y_ctx, ctx_mask)
            if y_tgt is not None:  # training: sample from the posterior given all targets
                full = torch.ones(x_tgt.shape[:2], dtype=torch.bool)
                posterior = self.latent_dist(x_tgt, y_tgt, full)
                z = posterior.rsample()
                kl = kl_divergence(posterior, prior).sum(-1)
            else:
                z = prior.loc
            rep.append(z.unsqueeze(1).expand(-1, n_tgt, -1))
        h = self.decoder(torch.cat([x_tgt, *rep], dim=-1))
        mu, raw_sigma = h.unbind(-1)
        sigma = 0.1 + 0.9 * F.softplus(raw_sigma)
        return Independent(Normal(mu, sigma), 1), kl


def sample_tasks(batch, n_points, max_context):
    """Sine curves y = a sin(x - b); returns context and target sets with a context mask."""
    a = 0.5 + 1.5 * torch.rand(batch, 1)
    b = math.pi * torch.rand(batch, 1)
    x = 8.0 * torch.rand(batch, n_points) - 4.0
    y = a * torch.sin(x - b)
    perm = torch.stack([torch.randperm(n_points) for _ in range(batch)])
    x, y = x.gather(1, perm).unsqueeze(-1), y.gather(1, perm).unsqueeze(-1)
    n_ctx = torch.randint(3, max_context + 1, (batch,))
    ctx_mask = torch.arange(max_context).expand(batch, -1) < n_ctx.unsqueeze(1)
    return x[:, :max_context], y[:, :max_context], ctx_mask, x, y


def main():
    parser = argparse.ArgumentParser(description="conditional / latent neural process")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--points", type=int, default=24)
    parser.add_argument("--max-context", type=int, default=10)
    parser.add_argument("--latent", action="store_true")
    parser.add_argument("--attention", action="store_true")
    args = parser.parse_args()

    model = NeuralProcess(latent=args.latent, attention=args.attention)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, betas=(0.9, 0.99))
    val = sample_tasks(64, args.points, args.max_context)

    running = []
    for step in range(1, args.steps + 1):
        model.train()
        x_ctx, y_ctx, mask, x_tgt, y_tgt = sample_tasks(args.batch_size, args.points,
                                                        args.max_context)  # fmt: skip
        dist, kl = model(x_ctx, y_ctx, mask, x_tgt, y_tgt)
        nll = -dist.log_prob(y_tgt.squeeze(-1)) / args.points
        loss = nll.mean() if kl is None else (nll + kl / args.points).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running.append(loss.item())
        if step % 10 == 0:
            model.eval()
            with torch.no_grad():
                x_ctx, y_ctx, mask, x_tgt, y_tgt = val
                pred, _ = model(x_ctx, y_ctx, mask, x_tgt)
                val_nll = -pred.log_prob(y_tgt.squeeze(-1)).mean() / args.points
                mse = F.mse_loss(pred.mean, y_tgt.squeeze(-1))
                width = pred.stddev.mean()
            extra = ""
            if args.attention:  # how much attention the nearest context point gets
                w = model.last_weights  # (batch, targets, context), padding given 0
                near = (x_tgt - x_ctx.transpose(1, 2)).abs().masked_fill(~mask[:, None], 1e9)
                extra = f" nearest weight {w.gather(2, near.argmin(2, keepdim=True)).mean():.4f}"
            print(
                f"step {step} train loss {sum(running) / len(running):.6f} "
                f"val loss {val_nll.item():.6f} mse loss {mse.item():.6f} "
                f"sigma {width.item():.4f}" + extra
            )
            running = []


if __name__ == "__main__":
    main()
