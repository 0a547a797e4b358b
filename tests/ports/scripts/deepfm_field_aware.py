"""Factorization-machine CTR models on categorical fields: DeepFM (Guo et al., 2017), whose FM
part and MLP share one embedding table, and a field-aware FM (FFM, Juan et al., 2016), whose
feature keeps one latent vector per other field. Pairwise terms are written with torch.einsum
(the FM's in O(F k) by the square-of-sum identity, the FFM's over all field pairs picked by
torch.triu_indices); the tables are nn.Embedding(max_norm=...), renormalised in place on
lookup; the loss is binary_cross_entropy on sigmoid outputs with per-example weights (clicks
upweighted), and the optimizer RMSprop(centered=True) with momentum."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class FeaturesLinear(nn.Module):
    def __init__(self, n_features):
        super().__init__()
        self.fc = nn.Embedding(n_features, 1)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.fc(x).sum(dim=1).squeeze(-1) + self.bias


class DeepFM(nn.Module):
    def __init__(self, field_dims, k, max_norm, hidden=(32, 16)):
        super().__init__()
        self.register_buffer("offsets", torch.tensor([0, *np.cumsum(field_dims)[:-1]]))
        n = int(sum(field_dims))
        self.linear = FeaturesLinear(n)
        self.embedding = nn.Embedding(n, k, max_norm=max_norm)
        layers, d = [], len(field_dims) * k
        for h in hidden:
            # NOTE: no bias: the batch norm after it removes any (its gradient is rounding
            # noise, which RMSprop would scale up to full-size steps)
            layers += [nn.Linear(d, h, bias=False), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(0.2)]
            d = h
        self.mlp = nn.Sequential(*layers, nn.Linear(d, 1))

    def forward(self, x):
        x = x + self.offsets
        v = self.embedding(x)  # (B, F, k)
        square_of_sum = torch.einsum("bfk->bk", v) ** 2
        sum_of_square = torch.einsum("bfk,bfk->bk", v, v)
        fm = 0.5 * (square_of_sum - sum_of_square).sum(1)
        deep = self.mlp(v.flatten(1)).squeeze(1)
        return torch.sigmoid(self.linear(x) + fm + deep)


class FieldAwareFM(nn.Module):
    def __init__(self, field_dims, k, max_norm):
        super().__init__()
        self.register_buffer("offsets", torch.tensor([0, *np.cumsum(field_dims)[:-1]]))
        n_fields = len(field_dims)
        n = int(sum(field_dims))
        self.linear = FeaturesLinear(n)
        # one table per field: row i of table j is feature i's vector towards field j
        self.embeddings = nn.ModuleList(
            nn.Embedding(n, k, max_norm=max_norm, norm_type=2.0) for _ in range(n_fields)
        )
        rows, cols = torch.triu_indices(n_fields, n_fields, offset=1)
        self.register_buffer("rows", rows)
        self.register_buffer("cols", cols)

    def forward(self, x):
        x = x + self.offsets
        # v[b, i, j] = vector of field i's feature towards field j
        v = torch.stack([emb(x) for emb in self.embeddings], dim=2)  # (B, F, F, k)
        pairs = torch.einsum("bijk,bjik->bij", v, v)  # <v_i,f_j, v_j,f_i>
        ffm = pairs[:, self.rows, self.cols].sum(1)
        return torch.sigmoid(self.linear(x) + ffm)


def make_data(rng, n, field_dims, k_true=3):
    x = np.stack([rng.integers(0, d, n) for d in field_dims], axis=1)
    latent = [rng.normal(0, 0.7, (d, k_true)) for d in field_dims]
    logit = -1.0
    for i in range(len(field_dims)):
        for j in range(i + 1, len(field_dims)):
            logit = logit + (latent[i][x[:, i]] * latent[j][x[:, j]]).sum(1)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


def main():
    parser = argparse.ArgumentParser(description="DeepFM / field-aware FM")
    parser.add_argument("--model", choices=["deepfm", "ffm"], default="deepfm")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--max-norm", type=float, default=0.5)
    args = parser.parse_args()

    field_dims = [7, 5, 9, 4]
    rng = np.random.default_rng(0)
    x, y = make_data(rng, 640, field_dims)
    train = torch.utils.data.TensorDataset(x[:512], y[:512])
    loader = torch.utils.data.DataLoader(train, batch_size=args.batch_size, shuffle=True)
    val_x, val_y = x[512:], y[512:]
    pos_weight = 2.0

    if args.model == "deepfm":
        model = DeepFM(field_dims, args.k, args.max_norm)
    else:
        model = FieldAwareFM(field_dims, args.k, args.max_norm)
    optimizer = torch.optim.RMSprop(
        model.parameters(), lr=3e-3, alpha=0.9, momentum=0.5, centered=True, weight_decay=1e-5
    )

    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for xb, yb in loader:
            p = model(xb)
            weight = torch.where(yb > 0, pos_weight, 1.0)
            loss = F.binary_cross_entropy(p, yb, weight=weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(yb)
        model.eval()
        with torch.no_grad():
            p = model(val_x)
            val_loss = F.binary_cross_entropy(p, val_y)
            acc = ((p > 0.5).float() == val_y).float().mean()
            tables = [model.embedding] if args.model == "deepfm" else list(model.embeddings)
            max_row = max(t.weight.norm(dim=1).max() for t in tables)
        print(
            f"epoch {epoch} train loss {total / len(train):.6f} val loss {val_loss.item():.6f} "
            f"acc {acc.item():.4f} max row norm {max_row.item():.5f}"
        )


if __name__ == "__main__":
    main()
