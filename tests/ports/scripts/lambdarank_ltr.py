"""Learning to rank on synthetic query/document lists: an MLP scores every document of a
query (padded lists with a validity mask), trained with one of three objectives:
RankNet (pairwise logistic loss over the document pairs of torch.triu_indices, weighted by
F.binary_cross_entropy_with_logits), ListNet (top-one cross entropy between softmaxes of the
labels and of the scores, with masked_fill of the padding) or LambdaRank (pairwise lambdas
scaled by |delta NDCG| computed by hand from the ranks of torch.argsort, pushed into the
network with scores.backward(gradient=lambdas)). Evaluation: NDCG@5 through torch.sort,
torch.gather and log2 discounts."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def make_queries(rng, num_queries, max_docs, num_features):
    """Documents whose graded relevance (0..4) follows a hidden nonlinear score."""
    w = rng.standard_normal(num_features)
    feats = rng.standard_normal((num_queries, max_docs, num_features)).astype(np.float32)
    hidden = (
        feats @ w
        + 0.5 * np.sin(2 * feats[..., 0])
        + 0.3 * rng.standard_normal((num_queries, max_docs))
    )
    labels = np.clip(np.floor((hidden + 3) / 1.5), 0, 4).astype(np.float32)
    lengths = rng.integers(max_docs // 2, max_docs + 1, num_queries)
    mask = np.arange(max_docs)[None, :] < lengths[:, None]
    labels[~mask] = 0.0
    return torch.from_numpy(feats), torch.from_numpy(labels), torch.from_numpy(mask)


class Scorer(nn.Module):
    def __init__(self, num_features, hidden=32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(num_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x):
        return self.net(x).squeeze(-1)


def dcg(gains_sorted, k=None):
    positions = torch.arange(gains_sorted.shape[-1], dtype=torch.float32)
    discounts = 1.0 / torch.log2(positions + 2.0)
    if k is not None:
        discounts = discounts * (positions < k).float()
    return ((2.0**gains_sorted - 1.0) * discounts).sum(-1)


def ndcg_at_k(scores, labels, mask, k=5):
    scores = scores.masked_fill(~mask, float("-inf"))
    _, order = torch.sort(scores, dim=1, descending=True)
    got = dcg(torch.gather(labels, 1, order), k)
    ideal = dcg(torch.sort(labels, dim=1, descending=True).values, k)
    return (got / ideal.clamp_min(1e-9)).mean()


def ranknet_loss(scores, labels, mask):
    n = scores.shape[1]
    i, j = torch.triu_indices(n, n, offset=1)
    diff = scores[:, i] - scores[:, j]
    target = (labels[:, i] > labels[:, j]).float()
    valid = mask[:, i] & mask[:, j] & (labels[:, i] != labels[:, j])
    losses = F.binary_cross_entropy_with_logits(diff, target, weight=valid.float(), reduction="sum")
    return losses / valid.sum().clamp_min(1)


def listnet_loss(scores, labels, mask):
    target = F.softmax(labels.masked_fill(~mask, float("-inf")), dim=1)
    log_probs = F.log_softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
    return -(target * log_probs.masked_fill(~mask, 0.0)).sum(1).mean()


def lambdarank_lambdas(scores, labels, mask, sigma=1.0):
    """Gradient of the LambdaRank cost w.r.t. the scores, and the cost itself."""
    with torch.no_grad():
        s = scores.masked_fill(~mask, -1e4)
        ranks = torch.argsort(torch.argsort(s, dim=1, descending=True), dim=1).float()
        discount = 1.0 / torch.log2(ranks + 2.0)
        gains = 2.0**labels - 1.0
        ideal = dcg(torch.sort(labels, dim=1, descending=True).values).clamp_min(1e-9)
        # |NDCG change| when documents i and j swap places
        delta = (gains[:, :, None] - gains[:, None, :]) * (
            discount[:, :, None] - discount[:, None, :]
        )
        delta = delta.abs() / ideal[:, None, None]
        better = (labels[:, :, None] > labels[:, None, :]) & mask[:, :, None] & mask[:, None, :]
        diff = sigma * (s[:, :, None] - s[:, None, :])
        rho = torch.sigmoid(-diff)
        pair_lambda = sigma * rho * delta * better.float()
        lambdas = -(pair_lambda.sum(2) - pair_lambda.sum(1))
        cost = (F.softplus(-diff) * delta * better.float()).sum() / len(scores)
    return lambdas / len(scores), cost


def main():
    parser = argparse.ArgumentParser(description="Learning to rank")
    parser.add_argument("--objective", default="lambdarank",
                        choices=["ranknet", "listnet", "lambdarank"])  # fmt: skip
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    feats, labels, mask = make_queries(rng, 160, 12, 10)
    train = (feats[:128], labels[:128], mask[:128])
    test = (feats[128:], labels[128:], mask[128:])
    model = Scorer(10)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for start in range(0, 128, args.batch_size):
            x, y, m = (t[start : start + args.batch_size] for t in train)
            optimizer.zero_grad()
            scores = model(x)
            if args.objective == "ranknet":
                loss = ranknet_loss(scores, y, m)
                loss.backward()
            elif args.objective == "listnet":
                loss = listnet_loss(scores, y, m)
                loss.backward()
            else:
                lambdas, loss = lambdarank_lambdas(scores, y, m)
                scores.backward(gradient=lambdas)
            optimizer.step()
            total += loss.item()
        model.eval()
        with torch.no_grad():
            ndcg = ndcg_at_k(model(test[0]), test[1], test[2]).item()
        print(f"epoch {epoch} {args.objective} loss {total / 8:.6f} test ndcg@5 {ndcg:.4f}")


if __name__ == "__main__":
    main()
