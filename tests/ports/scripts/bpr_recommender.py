"""Implicit-feedback recommendation with Bayesian personalized ranking (Rendle et al., 2009)
on synthetic user-item interactions. A user is an ID embedding plus the recency-weighted sum
of the items in their history, through nn.EmbeddingBag(mode="sum") with per_sample_weights:
flat ids with start offsets in training, a padded 2-d batch with a padding_idx at evaluation,
and F.embedding_bag with include_last_offset=True at the end (all must agree). Negatives from
torch.randint, the BPR loss -logsigmoid(pos - neg) with L2 regularization of the rows used,
Adamax; evaluation ranks all items with the training items masked out (masked_fill with -inf),
recall@k and NDCG@k from torch.topk."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

N_USERS, N_ITEMS, DIM, TOP_K = 48, 60, 16, 10


class HistoryBPR(nn.Module):
    def __init__(self, n_users, n_items, dim):
        super().__init__()
        self.pad = n_items
        self.user_emb = nn.Embedding(n_users, dim)
        self.history = nn.EmbeddingBag(n_items + 1, dim, mode="sum", padding_idx=self.pad)
        self.item_emb = nn.Embedding(n_items, dim)
        self.item_bias = nn.Embedding(n_items, 1)
        nn.init.normal_(self.user_emb.weight, std=0.1)
        nn.init.normal_(self.item_emb.weight, std=0.1)
        nn.init.zeros_(self.item_bias.weight)

    def user_vectors(self, users, hist_ids, hist_offsets=None, hist_weights=None):
        return self.user_emb(users) + self.history(
            hist_ids, hist_offsets, per_sample_weights=hist_weights
        )

    def score(self, user_vec, items):
        return (user_vec * self.item_emb(items)).sum(-1) + self.item_bias(items).squeeze(-1)

    def forward(self, users, pos, neg, hist_ids, hist_offsets, hist_weights):
        u = self.user_vectors(users, hist_ids, hist_offsets, hist_weights)
        return self.score(u, pos), self.score(u, neg), u


def make_interactions(rng, n_users, n_items, per_user=8):
    """Users and items have latent tastes; each user interacts with items close to theirs.
    The last interaction of each user is held out for testing."""
    user_taste = rng.standard_normal((n_users, 4))
    item_taste = rng.standard_normal((n_items, 4))
    histories = []
    for u in range(n_users):
        logits = item_taste @ user_taste[u] * 1.5
        p = np.exp(logits - logits.max())
        histories.append(rng.choice(n_items, size=per_user, replace=False, p=p / p.sum()).tolist())
    return histories


def recency_weights(n, decay=0.8):
    w = decay ** np.arange(n - 1, -1, -1, dtype=np.float32)
    return w / w.sum()


def flat_histories(histories, users):
    """Flat ids, offsets with a final end offset, and per-id weights for EmbeddingBag."""
    ids, offsets, weights = [], [0], []
    for u in users.tolist():
        ids += histories[u]
        weights.append(recency_weights(len(histories[u])))
        offsets.append(len(ids))
    return torch.tensor(ids), torch.tensor(offsets), torch.from_numpy(np.concatenate(weights))


def padded_histories(histories, pad):
    width = max(len(h) for h in histories)
    ids = torch.full((len(histories), width), pad, dtype=torch.long)
    weights = torch.zeros(len(histories), width)
    for u, h in enumerate(histories):
        ids[u, : len(h)] = torch.tensor(h)
        weights[u, : len(h)] = torch.from_numpy(recency_weights(len(h)))
    return ids, weights


def evaluate(model, train_hist, test_items):
    model.eval()
    with torch.no_grad():
        ids, weights = padded_histories(train_hist, model.pad)
        users = torch.arange(len(train_hist))
        u = model.user_vectors(users, ids, hist_weights=weights)
        scores = u @ model.item_emb.weight.t() + model.item_bias.weight.t()
        seen = torch.zeros(len(train_hist), N_ITEMS, dtype=torch.bool)
        for row, h in enumerate(train_hist):
            seen[row, h] = True
        # the test item against the mean of all unseen items, as a held-out BPR loss
        mean_unseen = scores.masked_fill(seen, 0.0).sum(1) / (~seen).sum(1)
        test_loss = -F.logsigmoid(model.score(u, test_items) - mean_unseen).mean()
        top = torch.topk(scores.masked_fill(seen, float("-inf")), TOP_K, dim=1).indices
        hits = top == test_items.unsqueeze(1)
        recall = hits.any(dim=1).float().mean()
        ranks = torch.arange(1, TOP_K + 1, dtype=torch.float32)
        ndcg = (hits.float() / torch.log2(ranks + 1)).sum(dim=1).mean()
    model.train()
    return recall.item(), ndcg.item(), test_loss.item(), u


def main():
    parser = argparse.ArgumentParser(description="BPR with EmbeddingBag user histories")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-2)
    parser.add_argument("--reg", type=float, default=1e-4)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    histories = make_interactions(rng, N_USERS, N_ITEMS)
    train_hist = [h[:-1] for h in histories]
    test_items = torch.tensor([h[-1] for h in histories])
    pairs = torch.tensor([(u, i) for u, h in enumerate(train_hist) for i in h])
    loader = DataLoader(
        TensorDataset(pairs[:, 0], pairs[:, 1]), batch_size=args.batch_size, shuffle=True
    )

    model = HistoryBPR(N_USERS, N_ITEMS, DIM)
    optimizer = torch.optim.Adamax(model.parameters(), lr=args.lr)
    for epoch in range(args.epochs):
        total = 0.0
        for step, (users, pos) in enumerate(loader):
            neg = torch.randint(0, N_ITEMS, (users.size(0),))
            hist_ids, hist_offsets, hist_weights = flat_histories(train_hist, users)
            # the module's bags take start offsets only: drop the closing one
            pos_score, neg_score, u = model(
                users, pos, neg, hist_ids, hist_offsets[:-1], hist_weights
            )
            reg = (
                u.pow(2).sum(1)
                + model.item_emb(pos).pow(2).sum(1)
                + model.item_emb(neg).pow(2).sum(1)
            ).mean()
            loss = -F.logsigmoid(pos_score - neg_score).mean() + args.reg * reg
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * users.size(0)
            if step % 2 == 0:
                print(f"epoch {epoch} step {step} loss: {loss.item():.6f}")
        recall, ndcg, test_loss, _ = evaluate(model, train_hist, test_items)
        print(
            f"epoch {epoch} train loss: {total / len(pairs):.6f} test loss: {test_loss:.6f} "
            f"recall@{TOP_K} {recall:.3f} ndcg@{TOP_K} {ndcg:.4f}"
        )

    # the flat (offsets) and padded (padding_idx) forms of the history give the same users
    users = torch.arange(N_USERS)
    ids, offsets, weights = flat_histories(train_hist, users)
    with torch.no_grad():
        bags = F.embedding_bag(
            ids,
            model.history.weight,
            offsets,
            mode="sum",
            per_sample_weights=weights,
            include_last_offset=True,
            padding_idx=model.pad,
        )
        flat = model.user_emb(users) + bags
    _, _, _, padded = evaluate(model, train_hist, test_items)
    print(f"flat vs padded max difference {(flat - padded).abs().max().item():.2e}")
    assert math.isclose((flat - padded).abs().max().item(), 0.0, abs_tol=1e-5)


if __name__ == "__main__":
    main()
