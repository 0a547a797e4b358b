"""A click-through-rate recommender in the style of DLRM (Naumov et al., 2019): multi-hot
categorical features pooled by nn.EmbeddingBag (mode="sum" with per_sample_weights for the
weighted item history, mode="mean" for the tags, both fed flat indices with offsets (include_last_offset for the tags), and a
2-D padded bag with padding_idx), sparse=True embedding tables trained by
torch.optim.SparseAdam beside a dense Adam for the MLPs, pairwise dot-product feature
interactions, and an imbalanced BCEWithLogitsLoss with pos_weight."""

import argparse

import numpy as np
import torch
import torch.nn as nn


class DLRM(nn.Module):
    def __init__(self, n_users, n_items, n_tags, n_dense, dim=8):
        super().__init__()
        self.user = nn.Embedding(n_users, dim, sparse=True)
        self.history = nn.EmbeddingBag(n_items, dim, mode="sum", sparse=True)
        self.tags = nn.EmbeddingBag(n_tags, dim, mode="mean", sparse=True, include_last_offset=True)
        # the candidate's genres arrive as a padded (batch, max_genres) tensor
        self.genres = nn.EmbeddingBag(n_tags + 1, dim, mode="max", padding_idx=n_tags)
        self.bottom = nn.Sequential(nn.Linear(n_dense, 16), nn.ReLU(), nn.Linear(16, dim))
        n_feats = 5
        n_pairs = n_feats * (n_feats - 1) // 2
        self.top = nn.Sequential(nn.Linear(dim + n_pairs, 32), nn.ReLU(), nn.Linear(32, 1))
        rows, cols = torch.triu_indices(n_feats, n_feats, offset=1)
        self.register_buffer("rows", rows)
        self.register_buffer("cols", cols)

    def forward(self, dense, users, hist, hist_offsets, hist_weights, tags, tag_offsets, genres):
        d = self.bottom(dense)
        feats = torch.stack(
            [
                d,
                self.user(users),
                self.history(hist, hist_offsets, per_sample_weights=hist_weights),
                self.tags(tags, tag_offsets),
                self.genres(genres),
            ],
            dim=1,
        )
        inter = torch.bmm(feats, feats.transpose(1, 2))[:, self.rows, self.cols]
        return self.top(torch.cat([d, inter], dim=1)).squeeze(1)


def make_batch(rng, batch, n_users, n_items, n_tags, n_dense, taste):
    users = rng.integers(0, n_users, batch)
    hist_len = rng.integers(1, 6, batch)
    hist = rng.integers(0, n_items, hist_len.sum())
    hist_w = rng.uniform(0.2, 1.0, hist_len.sum()).astype(np.float32)  # recency weights
    tag_len = rng.integers(1, 4, batch)
    tags = rng.integers(0, n_tags, tag_len.sum())
    genres = np.full((batch, 3), n_tags)
    for i in range(batch):
        k = rng.integers(1, 4)
        genres[i, :k] = rng.integers(0, n_tags, k)
    dense = rng.normal(size=(batch, n_dense)).astype(np.float32)
    # a click is likelier when the user's taste matches the tags; clicks are rare
    starts = np.concatenate([[0], np.cumsum(tag_len)[:-1]])
    score = np.array([taste[u, tags[s : s + n]].mean() for u, s, n in zip(users, starts, tag_len)])
    score += 0.5 * dense[:, 0] - 1.5
    clicks = (rng.random(batch) < 1 / (1 + np.exp(-2 * score))).astype(np.float32)
    offsets = lambda lens: torch.from_numpy(np.concatenate([[0], np.cumsum(lens)[:-1]]))  # noqa: E731
    last_offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(tag_len)]))
    return (
        torch.from_numpy(dense),
        torch.from_numpy(users),
        torch.from_numpy(hist),
        offsets(hist_len),
        torch.from_numpy(hist_w),
        torch.from_numpy(tags),
        last_offsets,
        torch.from_numpy(genres),
    ), torch.from_numpy(clicks)


def main():
    parser = argparse.ArgumentParser(description="DLRM-style CTR model with EmbeddingBag")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n_users, n_items, n_tags, n_dense = 40, 60, 12, 4
    taste = rng.normal(size=(n_users, n_tags))
    batches = [
        make_batch(rng, args.batch_size, n_users, n_items, n_tags, n_dense, taste)
        for _ in range(args.steps)
    ]
    test_x, test_y = make_batch(rng, 256, n_users, n_items, n_tags, n_dense, taste)

    model = DLRM(n_users, n_items, n_tags, n_dense)
    sparse_params = [model.user.weight, model.history.weight, model.tags.weight]
    ids = {id(p) for p in sparse_params}
    dense_params = [p for p in model.parameters() if id(p) not in ids]
    sparse_opt = torch.optim.SparseAdam(sparse_params, lr=args.lr)
    dense_opt = torch.optim.Adam(dense_params, lr=args.lr)

    pos_rate = torch.cat([y for _, y in batches]).mean()
    pos_weight = (1 - pos_rate) / pos_rate
    criterion = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    print(f"click rate {pos_rate.item():.4f} pos_weight {pos_weight.item():.4f}")

    for epoch in range(args.epochs):
        model.train()
        total, touched = 0.0, 0
        for x, y in batches:
            sparse_opt.zero_grad()
            dense_opt.zero_grad()
            loss = criterion(model(*x), y)
            loss.backward()
            grad = model.user.weight.grad
            assert grad.is_sparse
            rows = grad.coalesce().indices().unique().numel()
            sparse_opt.step()
            dense_opt.step()
            total += loss.item()
            touched += rows
        model.eval()
        with torch.no_grad():
            logits = model(*test_x)
            test_loss = criterion(logits, test_y)
            plain = nn.functional.binary_cross_entropy_with_logits(logits, test_y)
            acc = ((logits > 0).float() == test_y).float().mean()
        print(
            f"epoch {epoch} train loss {total / len(batches):.6f} test loss "
            f"{test_loss.item():.6f} unweighted loss {plain.item():.6f} acc {acc.item():.4f} "
            f"user rows {touched}"
        )


if __name__ == "__main__":
    main()
