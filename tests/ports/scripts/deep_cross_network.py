"""Deep & Cross Network (Wang et al., 2017) for click-through-rate prediction on synthetic
impressions: per-field embeddings in an nn.ModuleDict, explicit feature crosses whose
weights live in nn.ParameterLists, a parallel deep tower, a class-weighted logistic loss,
AdamW with AMSGrad under a one-cycle schedule, and a rank-based AUC."""

import argparse

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

FIELDS = {"user": 30, "item": 40, "category": 8, "hour": 24}
N_DENSE = 5


def make_data(n, rng):
    cats = {name: rng.integers(0, card, n) for name, card in FIELDS.items()}
    dense = rng.normal(size=(n, N_DENSE)).astype(np.float32)
    user_bias = rng.normal(size=FIELDS["user"])
    item_bias = rng.normal(size=FIELDS["item"])
    cross = (cats["category"] % 3 == cats["hour"] % 3).astype(np.float64)
    logit = (
        user_bias[cats["user"]]
        + item_bias[cats["item"]]
        + 1.5 * cross
        + dense[:, 0] * dense[:, 1]
        + 0.5 * dense[:, 2]
        - 2.0
    )
    clicks = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    sparse = np.stack([cats[name] for name in FIELDS], 1).astype(np.int64)
    return torch.from_numpy(sparse), torch.from_numpy(dense), torch.from_numpy(clicks)


class CrossNetwork(nn.Module):
    """x_{l+1} = x_0 * (x_l . w_l) + b_l + x_l, one weight vector and bias per layer."""

    def __init__(self, dim, num_layers):
        super().__init__()
        self.kernels = nn.ParameterList(
            [nn.Parameter(nn.init.xavier_normal_(torch.empty(dim, 1))) for _ in range(num_layers)]
        )
        self.bias = nn.ParameterList([nn.Parameter(torch.zeros(dim)) for _ in range(num_layers)])

    def forward(self, x0):
        xl = x0
        for w, b in zip(self.kernels, self.bias):
            xw = torch.tensordot(xl, w, dims=([1], [0]))  # (batch, 1)
            xl = x0 * xw + b + xl
        return xl


class DCN(nn.Module):
    def __init__(self, embed_dim=6, cross_layers=3, hidden=(32, 16), dropout=0.1):
        super().__init__()
        self.embeddings = nn.ModuleDict(
            {name: nn.Embedding(card, embed_dim) for name, card in FIELDS.items()}
        )
        self.dense_norm = nn.BatchNorm1d(N_DENSE)
        dim = embed_dim * len(FIELDS) + N_DENSE
        self.cross = CrossNetwork(dim, cross_layers)
        layers, in_dim = [], dim
        for h in hidden:
            # no bias before a batch norm: the norm's shift takes its place
            layers += [
                nn.Linear(in_dim, h, bias=False),
                nn.BatchNorm1d(h),
                nn.ReLU(),
                nn.Dropout(dropout),
            ]
            in_dim = h
        self.deep = nn.Sequential(*layers)
        self.head = nn.Linear(dim + in_dim, 1)

    def forward(self, sparse, dense):
        embs = [self.embeddings[name](sparse[:, i]) for i, name in enumerate(self.embeddings)]
        x0 = torch.cat(embs + [self.dense_norm(dense)], dim=1)
        stacked = torch.cat([self.cross(x0), self.deep(x0)], dim=-1)
        return self.head(stacked).squeeze(-1)


def roc_auc(scores, labels):
    """Mann-Whitney AUC from the ranks of the scores (no ties in float scores)."""
    order = torch.argsort(scores)
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, scores.numel() + 1, dtype=scores.dtype)
    n_pos = labels.sum()
    n_neg = labels.numel() - n_pos
    return (ranks[labels.bool()].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    train = TensorDataset(*make_data(4096, rng))
    val_sparse, val_dense, val_y = make_data(512, rng)
    loader = DataLoader(train, batch_size=256, shuffle=True, drop_last=True)
    y_train = train.tensors[2]
    pos_weight = (y_train.numel() - y_train.sum()) / y_train.sum()
    print(f"click rate {y_train.mean().item():.4f} pos_weight {pos_weight.item():.4f}")

    model = DCN()
    # no weight decay on biases, norms and embeddings, as CTR code usually does
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "embeddings" in name else decay).append(p)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 1e-2}, {"params": no_decay, "weight_decay": 0.0}],
        lr=3e-3,
        amsgrad=True,
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=1e-2, epochs=args.epochs, steps_per_epoch=len(loader), pct_start=0.3
    )
    criterion = nn.BCEWithLogitsLoss(pos_weight=pos_weight.reshape(1))
    for epoch in range(args.epochs):
        model.train()
        total, batches = 0.0, 0
        for sparse, dense, y in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(sparse, dense), y)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
            optimizer.step()
            scheduler.step()
            total += loss.item()
            batches += 1
        model.eval()
        with torch.no_grad():
            logits = model(val_sparse, val_dense)
            val_loss = nn.functional.binary_cross_entropy_with_logits(logits, val_y)
            auc = roc_auc(torch.sigmoid(logits), val_y)
        print(
            f"epoch {epoch} lr {scheduler.get_last_lr()[0]:.6f} train_loss {total / batches:.5f} "
            f"val_logloss {val_loss.item():.5f} val_auc {auc.item():.4f}"
        )


if __name__ == "__main__":
    main()
