"""Deep Sets (Zaheer et al., 2017) with a probabilistic head, batched the way graph libraries
batch variable-size inputs: all elements of all sets concatenated, with a `batch` vector naming
each element's set. Per-set sums by scatter_add_, means by index_add_ over torch.bincount
counts, maxima by scatter_reduce(reduce="amax", include_self=False); rho maps the pooled
features to the mean and log-scale of a torch.distributions.Normal trained by negative
log-likelihood. The target is the spread of the set's values, noisier for smaller sets."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Normal


def scatter_sum(src, index, num_segments):
    out = torch.zeros(num_segments, src.size(1), dtype=src.dtype)
    return out.scatter_add_(0, index.unsqueeze(1).expand_as(src), src)


def scatter_mean(src, index, num_segments):
    total = torch.zeros(num_segments, src.size(1), dtype=src.dtype).index_add_(0, index, src)
    count = torch.bincount(index, minlength=num_segments).clamp(min=1)
    return total / count.unsqueeze(1).to(src.dtype)


def scatter_max(src, index, num_segments):
    out = torch.zeros(num_segments, src.size(1), dtype=src.dtype)
    idx = index.unsqueeze(1).expand_as(src)
    return out.scatter_reduce(0, idx, src, reduce="amax", include_self=False)


class DeepSet(nn.Module):
    def __init__(self, in_dim=2, hidden=32, pooled=16):
        super().__init__()
        # phi: applied to every element independently
        self.phi = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, pooled),
        )
        # rho: applied to the pooled (sum, mean, max, log size) set representation
        self.rho = nn.Sequential(nn.Linear(3 * pooled + 1, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, x, batch, num_sets):
        h = self.phi(x)
        sizes = torch.bincount(batch, minlength=num_sets).float()
        pooled = torch.cat(
            [
                scatter_sum(h, batch, num_sets) / 10.0,
                scatter_mean(h, batch, num_sets),
                scatter_max(h, batch, num_sets),
                sizes.log().unsqueeze(1),
            ],
            dim=1,
        )
        loc, log_scale = self.rho(pooled).unbind(dim=1)
        return Normal(loc, F.softplus(log_scale) + 1e-3)


def make_sets(rng, n_sets, min_size=2, max_size=12):
    """Each set: points around a random centre with a random spread; target: the spread of
    the first coordinate plus noise shrinking with the set's size."""
    xs, batch, ys = [], [], []
    for s in range(n_sets):
        n = rng.integers(min_size, max_size + 1)
        spread = rng.uniform(0.2, 2.0)
        pts = rng.normal(rng.uniform(-2, 2, 2), spread, (n, 2))
        xs.append(pts)
        batch += [s] * n
        ys.append(pts[:, 0].std() + rng.normal(0, 0.5 / np.sqrt(n)))
    x = torch.from_numpy(np.concatenate(xs).astype(np.float32))
    return x, torch.tensor(batch), torch.tensor(ys, dtype=torch.float32)


def main():
    parser = argparse.ArgumentParser(description="Deep Sets with scatter pooling")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--sets-per-batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    train = [make_sets(rng, args.sets_per_batch) for _ in range(args.batches)]
    test_x, test_batch, test_y = make_sets(rng, 64)

    model = DeepSet()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-5)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)

    for epoch in range(1, args.epochs + 1):
        model.train()
        nll_sum = 0.0
        for x, batch, y in train:
            optimizer.zero_grad()
            dist = model(x, batch, args.sets_per_batch)
            loss = -dist.log_prob(y).mean()
            loss.backward()
            optimizer.step()
            nll_sum += loss.item()
        scheduler.step()

        model.eval()
        with torch.no_grad():
            dist = model(test_x, test_batch, 64)
            test_nll = -dist.log_prob(test_y).mean()
            mse = F.mse_loss(dist.mean, test_y)
            # is the predicted scale calibrated? fraction of targets inside +-1 stddev
            inside = ((test_y - dist.mean).abs() < dist.stddev).float().mean()
        print(
            f"epoch {epoch:2d} train nll loss: {nll_sum / len(train):.6f} "
            f"test nll loss: {test_nll.item():.6f} mse loss: {mse.item():.6f} "
            f"within 1 sd {inside.item():.3f} mean sd {dist.stddev.mean().item():.4f}"
        )

    # permutation invariance: shuffling the elements (and their set ids) changes nothing
    perm = torch.from_numpy(rng.permutation(len(test_x)))
    with torch.no_grad():
        shuffled = model(test_x[perm], test_batch[perm], 64)
    diff = (shuffled.mean - dist.mean).abs().max().item()
    print(f"max change under permutation {diff:.2e}; entropy loss: {dist.entropy().mean():.6f}")


if __name__ == "__main__":
    main()
