"""Set Transformer (Lee et al., 2019): induced set attention blocks encode a padded batch
of variable-size sets, pooling by multihead attention reads it out, and the model learns
a permutation-invariant statistic of each set (its maximum and its spread)."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset


class SetsDataset(Dataset):
    def __init__(self, n_sets, min_size, max_size, rng):
        self.sets = []
        for _ in range(n_sets):
            size = int(rng.integers(min_size, max_size + 1))
            self.sets.append(rng.normal(rng.normal(), 1.0, size=(size, 1)).astype(np.float32))

    def __len__(self):
        return len(self.sets)

    def __getitem__(self, i):
        x = torch.from_numpy(self.sets[i])
        return x, torch.stack([x.max(), x.std()])


def collate(batch):
    xs, ys = zip(*batch)
    lengths = torch.tensor([len(x) for x in xs])
    padded = pad_sequence(list(xs), batch_first=True)
    # True where a position is padding, as key_padding_mask expects
    mask = torch.arange(padded.size(1)).unsqueeze(0) >= lengths.unsqueeze(1)
    return padded, mask, torch.stack(ys)


class MAB(nn.Module):
    """Multihead attention block: LayerNorm(H + rFF(H)), H = LayerNorm(Q + Attn(Q, K, K))."""

    def __init__(self, dim, num_heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.ln0 = nn.LayerNorm(dim)
        self.ln1 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, q, k, key_padding_mask=None):
        h, _ = self.attn(q, k, k, key_padding_mask=key_padding_mask, need_weights=False)
        h = self.ln0(q + h)
        return self.ln1(h + self.ff(h))


class ISAB(nn.Module):
    def __init__(self, dim_in, dim, num_heads, num_inducing):
        super().__init__()
        self.inducing = nn.Parameter(torch.empty(1, num_inducing, dim))
        nn.init.xavier_uniform_(self.inducing)
        self.proj = nn.Linear(dim_in, dim) if dim_in != dim else nn.Identity()
        self.mab0 = MAB(dim, num_heads)
        self.mab1 = MAB(dim, num_heads)

    def forward(self, x, mask):
        x = self.proj(x)
        h = self.mab0(self.inducing.expand(x.size(0), -1, -1), x, key_padding_mask=mask)
        return self.mab1(x, h)


class PMA(nn.Module):
    def __init__(self, dim, num_heads, num_seeds):
        super().__init__()
        self.seeds = nn.Parameter(torch.empty(1, num_seeds, dim))
        nn.init.xavier_uniform_(self.seeds)
        self.mab = MAB(dim, num_heads)

    def forward(self, x, mask):
        return self.mab(self.seeds.expand(x.size(0), -1, -1), x, key_padding_mask=mask)


class SetTransformer(nn.Module):
    def __init__(self, dim_in=1, dim=32, num_heads=4, num_inducing=8, dim_out=2):
        super().__init__()
        self.enc = nn.ModuleList(
            [ISAB(dim_in, dim, num_heads, num_inducing), ISAB(dim, dim, num_heads, num_inducing)]
        )
        self.pool = PMA(dim, num_heads, num_seeds=1)
        self.dec = nn.Linear(dim, dim_out)

    def forward(self, x, mask):
        for block in self.enc:
            x = block(x, mask)
        return self.dec(self.pool(x, mask).squeeze(1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    train = DataLoader(
        SetsDataset(512, 3, 16, rng), batch_size=32, shuffle=True, collate_fn=collate
    )
    val = DataLoader(SetsDataset(128, 3, 16, rng), batch_size=64, collate_fn=collate)
    model = SetTransformer()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.8)
    for epoch in range(args.epochs):
        model.train()
        total, n = 0.0, 0
        for x, mask, y in train:
            loss = F.smooth_l1_loss(model(x, mask), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            n += len(y)
        scheduler.step()
        model.eval()
        val_total, val_n = 0.0, 0
        with torch.no_grad():
            for x, mask, y in val:
                val_total += F.smooth_l1_loss(model(x, mask), y, reduction="sum").item() / 2
                val_n += len(y)
        print(f"epoch {epoch} train_loss {total / n:.5f} val_loss {val_total / val_n:.5f}")

    # the model is invariant to the order of the elements and to the padding length
    model.eval()
    with torch.no_grad():
        x, mask, _ = next(iter(val))
        perm = torch.randperm(x.size(1))
        lengths = (~mask).sum(1)
        shuffled = torch.stack(
            [torch.cat([xi[:n][perm[perm < n]], xi[n:]]) for xi, n in zip(x, lengths.tolist())]
        )
        longer = F.pad(x, (0, 0, 0, 3))
        longer_mask = F.pad(mask, (0, 3), value=True)
        base = model(x, mask)
        print(f"invariance loss {(model(shuffled, mask) - base).abs().max().item():.6f}")
        print(f"padding loss {(model(longer, longer_mask) - base).abs().max().item():.6f}")


if __name__ == "__main__":
    main()
