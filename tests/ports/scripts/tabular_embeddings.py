"""A tabular model with categorical embeddings: single-valued categorical columns through
nn.Embedding, a multi-valued "tags" column through nn.EmbeddingBag(mode='mean') with offsets,
continuous features through BatchNorm1d. Two heads: a binary target trained with
BCEWithLogitsLoss(pos_weight) and a multi-label target trained with MultiLabelSoftMarginLoss."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class TabularNet(nn.Module):
    def __init__(self, cardinalities, n_tags, n_cont, n_labels, emb_dim=6, hidden=48):
        super().__init__()
        self.embeddings = nn.ModuleList([nn.Embedding(c, emb_dim) for c in cardinalities])
        self.tags = nn.EmbeddingBag(n_tags, emb_dim, mode="mean")
        self.bn_cont = nn.BatchNorm1d(n_cont)
        n_in = emb_dim * (len(cardinalities) + 1) + n_cont
        self.body = nn.Sequential(
            nn.Linear(n_in, hidden),
            nn.PReLU(),
            nn.BatchNorm1d(hidden),
            nn.Linear(hidden, hidden),
            nn.PReLU(hidden),
        )
        self.binary_head = nn.Linear(hidden, 1)
        self.multi_head = nn.Linear(hidden, n_labels)

    def forward(self, x_cat, tag_ids, tag_offsets, x_cont):
        embs = [emb(x_cat[:, i]) for i, emb in enumerate(self.embeddings)]
        embs.append(self.tags(tag_ids, tag_offsets))
        x = torch.cat(embs + [self.bn_cont(x_cont)], dim=1)
        h = self.body(x)
        return self.binary_head(h).squeeze(1), self.multi_head(h)


def make_data(rng, n, cardinalities, n_tags, n_cont, n_labels, max_tags=4):
    x_cat = np.stack([rng.integers(0, c, n) for c in cardinalities], 1).astype(np.int64)
    n_per_row = rng.integers(1, max_tags + 1, n)
    tag_matrix = np.full((n, max_tags), -1, dtype=np.int64)
    for i, k in enumerate(n_per_row):
        tag_matrix[i, :k] = rng.choice(n_tags, size=k, replace=False)
    x_cont = (
        rng.standard_normal((n, n_cont)) * [1.0, 10.0, 0.1, 3.0][:n_cont] + [0, 50, 1, -2][:n_cont]
    )
    x_cont = x_cont.astype(np.float32)
    score = (
        0.8 * (x_cat[:, 0] % 3 == 0)
        + 0.05 * (x_cont[:, 1] - 50)
        - 0.6 * (tag_matrix == 2).any(1)
        + 0.3 * rng.standard_normal(n)
    )
    y_bin = (score > 0.7).astype(np.float32)  # imbalanced: a minority of positives
    y_multi = np.stack(
        [
            (tag_matrix == 0).any(1) | (x_cat[:, 1] == 1),
            x_cont[:, 0] > 0.5,
            (x_cat[:, 2] + (tag_matrix == 5).any(1)) % 2 == 1,
        ],
        1,
    ).astype(np.float32)
    return x_cat, tag_matrix, x_cont, y_bin, y_multi


def bag_inputs(tag_rows):
    """Flatten a padded (-1) tag matrix into EmbeddingBag's 1-D input and offsets."""
    mask = tag_rows >= 0
    ids = tag_rows[mask]
    counts = mask.sum(1)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts, 0)[:-1]])
    return ids, offsets


def main():
    parser = argparse.ArgumentParser(description="Tabular model with embeddings")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--optimizer", choices=["nadam", "radam"], default="nadam")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    cardinalities, n_tags, n_cont, n_labels = [7, 4, 5], 10, 4, 3
    x_cat, tags, x_cont, y_bin, y_multi = make_data(
        rng, 400, cardinalities, n_tags, n_cont, n_labels
    )
    t = lambda a: torch.from_numpy(a)  # noqa: E731
    train = TensorDataset(
        t(x_cat[:320]), t(tags[:320]), t(x_cont[:320]), t(y_bin[:320]), t(y_multi[:320])
    )
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=False, drop_last=True)

    model = TabularNet(cardinalities, n_tags, n_cont, n_labels)
    pos_frac = y_bin[:320].mean()
    pos_weight = torch.tensor([(1 - pos_frac) / pos_frac], dtype=torch.float32)
    bce = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    mlsm = nn.MultiLabelSoftMarginLoss()
    if args.optimizer == "nadam":
        optimizer = torch.optim.NAdam(model.parameters(), lr=args.lr, weight_decay=1e-4)
    else:
        optimizer = torch.optim.RAdam(model.parameters(), lr=args.lr, weight_decay=1e-4)
    print(f"positive fraction {pos_frac:.3f}, pos_weight {pos_weight.item():.3f}")

    for epoch in range(args.epochs):
        model.train()
        tot_bin = tot_multi = 0.0
        correct = seen = 0
        for xc, tg, xn, yb, ym in loader:
            ids, offsets = bag_inputs(tg)
            logit_bin, logit_multi = model(xc, ids, offsets, xn)
            loss_bin = bce(logit_bin, yb)
            loss_multi = mlsm(logit_multi, ym)
            loss = loss_bin + 0.5 * loss_multi
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            tot_bin += loss_bin.item()
            tot_multi += loss_multi.item()
            pred = torch.sigmoid(logit_bin) > 0.5
            correct += (pred == yb.bool()).sum().item()
            seen += yb.numel()
        nb = len(loader)
        print(
            f"epoch {epoch} bce loss: {tot_bin / nb:.5f} multilabel loss: {tot_multi / nb:.5f} "
            f"train acc {correct / seen:.3f}"
        )

    model.eval()
    with torch.no_grad():
        xc, tg, xn = t(x_cat[320:]), t(tags[320:]), t(x_cont[320:])
        yb, ym = t(y_bin[320:]), t(y_multi[320:])
        ids, offsets = bag_inputs(tg)
        logit_bin, logit_multi = model(xc, ids, offsets, xn)
        probs = torch.sigmoid(logit_bin)
        pred = probs > 0.5
        tp = (pred & yb.bool()).sum().item()
        precision = tp / max(pred.sum().item(), 1)
        recall = tp / max(yb.sum().item(), 1)
        multi_pred = torch.sigmoid(logit_multi) > 0.5
        label_acc = (multi_pred == ym.bool()).float().mean(0)
        print(
            f"val bce loss: {bce(logit_bin, yb).item():.5f} precision {precision:.3f} recall {recall:.3f}"
        )
        print(f"val multilabel loss: {mlsm(logit_multi, ym).item():.5f}")
        print("per-label accuracy", " ".join(f"{a:.3f}" for a in label_acc.tolist()))
        q = torch.quantile(probs, torch.tensor([0.1, 0.5, 0.9]))
        print("probability quantiles", " ".join(f"{v:.4f}" for v in q.tolist()))
        print(f"median prob loss: {torch.quantile(probs, 0.5).item():.5f}")
        hist = torch.histc(probs, bins=5, min=0.0, max=1.0)
        print("probability histogram", hist.int().tolist())
        # the embedding table of the first column, looked up functionally
        table = model.embeddings[0].weight
        vecs = F.embedding(xc[:, 0], table)
        direct = model.embeddings[0](xc[:, 0])
        print(f"functional embedding gap {(vecs - direct).abs().max().item():.2e}")
        norms = F.embedding(torch.arange(cardinalities[0]), table, max_norm=0.5).norm(dim=1)
        print(f"embedding norm loss: {norms.mean().item():.5f}")
        print(f"table max row norm after renorm {table.norm(dim=1).max().item():.4f}")


if __name__ == "__main__":
    main()
