"""A graph isomorphism network (GIN, Xu et al., 2019) for graph classification, written
without torch_scatter: graphs are batched as one disjoint union with a graph index per node,
neighbour sums use index_add_, graph readouts use scatter_reduce (sum, amax) and
index_reduce_ (mean), and the input features are one-hot degree buckets from torch.bincount
and torch.bucketize. Each layer's MLP has BatchNorm1d; the readouts of all layers are
concatenated (jumping knowledge), as in the paper; no linear layer before a batch norm has a
bias. The task: tell one ring from two rings of the same total size (each ring with a chord).
--readout picks the pooling, --learn-eps makes the GIN eps a parameter."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def make_graph(rng, kind):
    """A ring of n nodes (kind 0) or two rings (kind 1), each ring with one chord."""
    n = int(rng.integers(8, 15))
    sizes = [n] if kind == 0 else [n // 2, n - n // 2]
    edges, start = [], 0
    for m in sizes:
        edges += [(start + i, start + (i + 1) % m) for i in range(m)]
        a, b = rng.choice(m, 2, replace=False)
        edges.append((start + int(a), start + int(b)))
        start += m
    e = np.array(edges).T
    return n, np.concatenate([e, e[::-1]], axis=1)  # both directions


def collate(graphs):
    """Disjoint union of (n, edge_index, label) graphs: node offsets and a graph index."""
    edge_index, batch, labels, offset = [], [], [], 0
    for g, (n, e, y) in enumerate(graphs):
        edge_index.append(e + offset)
        batch.append(np.full(n, g))
        labels.append(y)
        offset += n
    return (
        torch.from_numpy(np.concatenate(edge_index, axis=1)),
        torch.from_numpy(np.concatenate(batch)),
        torch.tensor(labels),
    )


def degree_features(edge_index, num_nodes, boundaries):
    deg = torch.bincount(edge_index[1], minlength=num_nodes)
    bucket = torch.bucketize(deg, boundaries, right=True)
    return F.one_hot(bucket, len(boundaries) + 1).float()


class GINConv(nn.Module):
    def __init__(self, d_in, d_out, learn_eps):
        super().__init__()
        if learn_eps:
            self.eps = nn.Parameter(torch.zeros(1))
        else:
            self.register_buffer("eps", torch.zeros(1))
        # NOTE: no biases: a batch norm follows each linear layer (the outer one in GIN)
        self.mlp = nn.Sequential(
            nn.Linear(d_in, d_out, bias=False), nn.BatchNorm1d(d_out), nn.ReLU(),
            nn.Linear(d_out, d_out, bias=False),
        )  # fmt: skip

    def forward(self, h, edge_index):
        src, dst = edge_index
        agg = torch.zeros_like(h).index_add_(0, dst, h[src])
        return self.mlp((1 + self.eps) * h + agg)


def readout(h, batch, num_graphs, how):
    d = h.shape[1]
    if how == "mean":
        out = h.new_zeros(num_graphs, d)
        return out.index_reduce_(0, batch, h, "mean", include_self=False)
    index = batch.unsqueeze(1).expand(-1, d)
    reduce = "sum" if how == "sum" else "amax"
    return h.new_zeros(num_graphs, d).scatter_reduce(0, index, h, reduce, include_self=False)


class GIN(nn.Module):
    def __init__(self, d_in, hidden, n_layers, n_classes, learn_eps, how):
        super().__init__()
        self.how = how
        dims = [d_in] + [hidden] * n_layers
        self.convs = nn.ModuleList(GINConv(a, b, learn_eps) for a, b in zip(dims, dims[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(n_layers))
        self.heads = nn.ModuleList(nn.Linear(d, n_classes) for d in dims)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x, edge_index, batch, num_graphs):
        hs = [x]
        h = x
        for conv, norm in zip(self.convs, self.norms):
            h = F.relu(norm(conv(h, edge_index)))
            hs.append(h)
        score = 0
        for h, head in zip(hs, self.heads):
            score = score + self.dropout(head(readout(h, batch, num_graphs, self.how)))
        return score


def main():
    parser = argparse.ArgumentParser(description="GIN graph classification")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--graphs", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--readout", choices=["sum", "mean", "max"], default="sum")
    parser.add_argument("--learn-eps", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    data = []
    for i in range(args.graphs + 32):
        n, e = make_graph(rng, i % 2)
        data.append((n, e, i % 2))
    train, test = data[: args.graphs], data[args.graphs :]
    boundaries = torch.tensor([1, 2, 3, 4])

    model = GIN(5, 32, 3, 2, args.learn_eps, args.readout)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)

    def run(graphs):
        edge_index, batch, y = collate(graphs)
        x = degree_features(edge_index, batch.numel(), boundaries)
        return model(x, edge_index, batch, len(graphs)), y

    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for i in range(0, len(train), args.batch_size):
            logits, y = run(train[i : i + args.batch_size])
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
        scheduler.step()
        model.eval()
        with torch.no_grad():
            logits, y = run(test)
            test_loss = F.cross_entropy(logits, y)
            acc = (logits.argmax(1) == y).float().mean()
        print(
            f"epoch {epoch} train loss {total / len(train):.6f} test loss {test_loss.item():.6f} "
            f"acc {acc.item():.4f}"
        )
    if args.learn_eps:
        print("eps", " ".join(f"{conv.eps.item():.5f}" for conv in model.convs))


if __name__ == "__main__":
    main()
