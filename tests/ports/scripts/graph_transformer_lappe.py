"""Graph Transformer (Dwivedi & Bresson, 2020) with Laplacian eigenvector positional
encodings: eigenvectors of the symmetric normalised Laplacian from torch.linalg.eigh, with
random sign flips in training; attention restricted to graph edges by an adjacency mask;
graphs of different sizes batched by padding, with key padding masks and masked mean
pooling; a graph classification task on synthetic graphs (cycles versus paths)."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--pe-dim", type=int, default=4)
parser.add_argument("--full-attention", action="store_true", help="no adjacency mask")
args = parser.parse_args()


def laplacian_pe(adj, k):
    """The k smallest non-trivial eigenvectors of I - D^-1/2 A D^-1/2."""
    n = adj.shape[0]
    deg = adj.sum(-1).clamp(min=1)
    d_inv_sqrt = deg.pow(-0.5)
    lap = torch.eye(n, dtype=torch.float64) - d_inv_sqrt[:, None] * adj * d_inv_sqrt[None, :]
    evals, evecs = torch.linalg.eigh(lap)
    pe = evecs[:, 1 : k + 1].float()
    if pe.shape[1] < k:
        pe = F.pad(pe, (0, k - pe.shape[1]), value=0.0)
    # NOTE: eigenvectors are defined up to sign: fix each to a positive largest entry so the
    # encoding does not depend on the solver; training flips the signs at random
    idx = pe.abs().argmax(0)
    sign = torch.sign(pe[idx, torch.arange(k)])
    sign[sign == 0] = 1.0
    return pe * sign, evals[1 : k + 1].float()


class SyntheticGraphs(Dataset):
    def __init__(self, n_graphs, seed):
        rng = np.random.default_rng(seed)
        self.items = []
        for i in range(n_graphs):
            n = int(rng.integers(5, 10))
            adj = np.zeros((n, n))
            label = i % 2
            # a path (label 0) or a cycle (label 1), each with one chord
            for v in range(n if label else n - 1):
                adj[v, (v + 1) % n] = adj[(v + 1) % n, v] = 1
            a, b = 1, int(rng.integers(3, n - 1))
            adj[a, b] = adj[b, a] = 1
            # NOTE: random edge weights keep the Laplacian's spectrum free of repeated
            # eigenvalues, whose eigenvectors are any basis of the eigenspace, which then
            # depends on the solver (leaves sharing a neighbour repeat eigenvalue 1 whatever
            # the weights, so there are no trees here)
            w = rng.uniform(0.5, 1.5, size=(n, n))
            adj = adj * (w + w.T) / 2
            perm = rng.permutation(n)
            adj = adj[perm][:, perm]
            feats = np.stack([(adj > 0).sum(1) / 4.0, rng.normal(size=n) * 0.1], 1)
            adj_t = torch.tensor(adj, dtype=torch.float64)
            pe, _ = laplacian_pe(adj_t, args.pe_dim)
            self.items.append((torch.tensor(feats, dtype=torch.float32), adj_t.float(), pe, label))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def collate(batch):
    n_max = max(x.shape[0] for x, _, _, _ in batch)
    B = len(batch)
    x = torch.zeros(B, n_max, batch[0][0].shape[1])
    adj = torch.zeros(B, n_max, n_max)
    pe = torch.zeros(B, n_max, args.pe_dim)
    mask = torch.zeros(B, n_max, dtype=torch.bool)
    for i, (xi, ai, pi, _) in enumerate(batch):
        n = xi.shape[0]
        x[i, :n], adj[i, :n, :n], pe[i, :n], mask[i, :n] = xi, ai, pi, True
    y = torch.tensor([b[3] for b in batch])
    return x, adj, pe, mask, y


class GraphAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.dk = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, h, attn_mask):
        B, N, D = h.shape
        q, k, v = self.qkv(h).view(B, N, 3, self.heads, self.dk).permute(2, 0, 3, 1, 4)
        scores = torch.einsum("bhid,bhjd->bhij", q, k) / self.dk**0.5
        scores = scores.masked_fill(~attn_mask.unsqueeze(1), float("-inf"))
        attn = torch.softmax(scores, dim=-1)
        attn = torch.nan_to_num(attn, nan=0.0)  # padded rows attend to nothing
        out = torch.einsum("bhij,bhjd->bhid", attn, v).transpose(1, 2).reshape(B, N, D)
        return self.out(out)


class GTLayer(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.attn = GraphAttention(dim, heads)
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(0.1)

    def forward(self, h, attn_mask):
        h = self.norm1(h + self.dropout(self.attn(h, attn_mask)))
        return self.norm2(h + self.dropout(self.ffn(h)))


class GraphTransformer(nn.Module):
    def __init__(self, in_dim, pe_dim, dim=32, heads=4, layers=2, n_classes=2):
        super().__init__()
        self.embed_h = nn.Linear(in_dim, dim)
        self.embed_pe = nn.Linear(pe_dim, dim)
        self.layers = nn.ModuleList([GTLayer(dim, heads) for _ in range(layers)])
        self.readout = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, n_classes))

    def forward(self, x, adj, pe, mask):
        h = self.embed_h(x) + self.embed_pe(pe)
        eye = torch.eye(x.shape[1], dtype=torch.bool).unsqueeze(0)
        if args.full_attention:
            attn_mask = mask.unsqueeze(1) & mask.unsqueeze(2)
        else:
            attn_mask = ((adj > 0) | eye) & mask.unsqueeze(1) & mask.unsqueeze(2)
        for layer in self.layers:
            h = layer(h, attn_mask)
            h = h * mask.unsqueeze(-1)
        pooled = h.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return self.readout(pooled)


train_set, val_set = SyntheticGraphs(64, seed=0), SyntheticGraphs(16, seed=1)
train_loader = DataLoader(train_set, batch_size=16, shuffle=True, collate_fn=collate)
val_loader = DataLoader(val_set, batch_size=16, collate_fn=collate)
model = GraphTransformer(2, args.pe_dim)
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
scheduler = torch.optim.lr_scheduler.OneCycleLR(
    optimizer, max_lr=3e-3, total_steps=args.epochs * len(train_loader)
)
criterion = nn.CrossEntropyLoss()

for epoch in range(args.epochs):
    model.train()
    total = 0.0
    for x, adj, pe, mask, y in train_loader:
        sign_flip = torch.rand(pe.shape[0], 1, pe.shape[2])
        sign_flip = torch.where(sign_flip >= 0.5, 1.0, -1.0)
        logits = model(x, adj, pe * sign_flip, mask)
        loss = criterion(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item()
    model.eval()
    correct, val_loss = 0, 0.0
    with torch.no_grad():
        for x, adj, pe, mask, y in val_loader:
            logits = model(x, adj, pe, mask)
            val_loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(-1) == y).sum().item()
    print(f"epoch {epoch} train loss {total / len(train_loader):.5f} "
          f"val loss {val_loss / len(val_set):.5f} acc {correct / len(val_set):.3f}")  # fmt: skip
