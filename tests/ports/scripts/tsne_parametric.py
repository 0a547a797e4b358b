"""Parametric t-SNE (van der Maaten, 2009): an MLP maps 20-D points from Gaussian clusters to
2-D. Input affinities per batch come from F.pdist distances scattered into a square matrix
with torch.triu_indices, a vectorised bisection over the Gaussian precisions that hits a
target perplexity (torch.where updates, float64 by torch.set_default_dtype or explicit
.double()), symmetrised P; output affinities from a Student-t kernel on torch.cdist; the loss
is KL(P || Q) through nn.KLDivLoss(reduction="sum") on log Q, with early exaggeration for the
first epochs. Evaluation: trustworthiness-like kNN preservation with topk."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


def squareform(condensed, n):
    i, j = torch.triu_indices(n, n, offset=1)
    full = condensed.new_zeros(n, n)
    full[i, j] = condensed
    full[j, i] = condensed
    return full


def input_affinities(x, perplexity, iters=40):
    """Symmetric P from conditional Gaussians whose entropy matches log(perplexity)."""
    n = len(x)
    sq = squareform(F.pdist(x), n) ** 2
    target = torch.log(torch.tensor(perplexity, dtype=sq.dtype))
    beta = torch.ones(n, 1, dtype=sq.dtype)
    lo = torch.full_like(beta, 0.0)
    hi = torch.full_like(beta, float("inf"))
    off_diag = ~torch.eye(n, dtype=torch.bool)
    for _ in range(iters):
        logits = (-sq * beta).masked_fill(~off_diag, float("-inf"))
        p = torch.softmax(logits, dim=1)
        entropy = -(p * torch.log(p.clamp_min(1e-30))).sum(1, keepdim=True)
        too_flat = entropy > target  # entropy too high: sharpen (raise beta)
        lo = torch.where(too_flat, beta, lo)
        hi = torch.where(too_flat, hi, beta)
        beta = torch.where(torch.isinf(hi), beta * 2, (lo + hi) / 2)
    p = (p + p.T) / (2 * n)
    return p.clamp_min(1e-12)


def output_log_affinities(y, dof=1.0):
    n = len(y)
    sq = torch.cdist(y, y) ** 2
    kernel = (1 + sq / dof) ** (-(dof + 1) / 2)
    kernel = kernel * (1 - torch.eye(n, dtype=y.dtype))
    q = kernel / kernel.sum()
    return torch.log(q.clamp_min(1e-12))


def knn_preservation(x, y, k=5):
    dx = torch.cdist(x, x) + torch.eye(len(x), dtype=x.dtype) * 1e9
    dy = torch.cdist(y, y) + torch.eye(len(y), dtype=y.dtype) * 1e9
    nx = dx.topk(k, largest=False).indices
    ny = dy.topk(k, largest=False).indices
    hits = (nx[:, :, None] == ny[:, None, :]).any(-1).float()
    return hits.mean().item()


def main():
    parser = argparse.ArgumentParser(description="Parametric t-SNE")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--perplexity", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", default="float64-default",
                        choices=["float64-default", "float32", "double-affinities"])  # fmt: skip
    parser.add_argument("--exaggeration-epochs", type=int, default=2)
    args = parser.parse_args()

    if args.precision == "float64-default":
        torch.set_default_dtype(torch.float64)
    centers = torch.randn(6, 20) * 4
    labels = torch.randint(0, 6, (384,))
    data = centers[labels] + torch.randn(384, 20)
    data = data.to(torch.get_default_dtype())

    model = nn.Sequential(
        nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.KLDivLoss(reduction="sum")
    batches = []
    for start in range(0, len(data), args.batch_size):
        xb = data[start : start + args.batch_size]
        if args.precision == "double-affinities":
            p = input_affinities(xb.double(), args.perplexity).float()
        else:
            p = input_affinities(xb, args.perplexity)
        batches.append((xb, p))

    for epoch in range(args.epochs):
        exaggeration = 4.0 if epoch < args.exaggeration_epochs else 1.0
        total = 0.0
        for xb, p in batches:
            log_q = output_log_affinities(model(xb))
            loss = criterion(log_q, p * exaggeration)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        with torch.no_grad():
            emb = model(data)
            kept = knn_preservation(data, emb)
            plain = sum(criterion(output_log_affinities(model(xb)), p).item() for xb, p in batches)
        print(
            f"epoch {epoch} kl loss {total / len(batches):.6f} plain kl loss "
            f"{plain / len(batches):.6f} knn kept {kept:.4f} dtype {str(emb.dtype)[6:]}"
        )


if __name__ == "__main__":
    main()
