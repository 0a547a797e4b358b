"""E(n)-equivariant graph network (Satorras et al., 2021) on random 3-D point clouds batched
into one disjoint graph: radius-graph edges from torch.cdist within each cloud (mask,
torch.where / nonzero), edge messages from invariant squared distances, node aggregation with
Tensor.index_add_ (sum) or torch.scatter_reduce(reduce="mean" / "amax", include_self=False),
equivariant coordinate updates averaged by scatter_reduce mean, graph readout by index_add_ and
a per-graph count (torch.bincount); trained with AdamW to regress an invariant energy and to
denoise coordinates. A rotation check with a random orthogonal matrix from torch.linalg.qr
reports the equivariance error."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def radius_graph(pos, batch, radius):
    """Directed edges (src -> dst) between distinct points of one cloud closer than radius."""
    with torch.no_grad():
        dist = torch.cdist(pos, pos)
        same = batch[:, None] == batch[None, :]
        not_self = ~torch.eye(len(pos), dtype=torch.bool)
        adj = (dist < radius) & same & not_self
    src, dst = torch.where(adj)
    return torch.stack([src, dst])


def scatter(src, index, num_nodes, reduce):
    out = src.new_zeros(num_nodes, src.shape[1])
    if reduce == "sum":
        return out.index_add_(0, index, src)
    idx = index.unsqueeze(-1).expand_as(src)
    return out.scatter_reduce(0, idx, src, reduce=reduce, include_self=False)


class EGCL(nn.Module):
    """One E(n)-equivariant layer: invariant messages, scalar-weighted coordinate shifts."""

    def __init__(self, hidden, edge_dim=0, reduce="sum"):
        super().__init__()
        self.reduce = reduce
        self.edge_mlp = nn.Sequential(
            nn.Linear(2 * hidden + 1 + edge_dim, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
        )
        self.node_mlp = nn.Sequential(
            nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden)
        )
        last = nn.Linear(hidden, 1, bias=False)
        nn.init.xavier_uniform_(last.weight, gain=0.01)
        self.coord_mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), last)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, h, pos, edge_index):
        src, dst = edge_index
        rel = pos[dst] - pos[src]
        d2 = (rel**2).sum(-1, keepdim=True)
        m = self.edge_mlp(torch.cat([h[dst], h[src], d2], dim=-1))
        # coordinates move along relative vectors, averaged over the incoming edges
        shift = rel / (d2.sqrt() + 1.0) * self.coord_mlp(m)
        pos = pos + scatter(shift, dst, len(h), "mean")
        agg = scatter(m, dst, len(h), self.reduce)
        h = self.norm(h + self.node_mlp(torch.cat([h, agg], dim=-1)))
        return h, pos


class EGNN(nn.Module):
    def __init__(self, in_dim, hidden=32, layers=3, reduce="sum"):
        super().__init__()
        self.embed = nn.Linear(in_dim, hidden)
        self.layers = nn.ModuleList([EGCL(hidden, reduce=reduce) for _ in range(layers)])
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, x, pos, batch, num_graphs, radius):
        edge_index = radius_graph(pos, batch, radius)
        h = self.embed(x)
        for layer in self.layers:
            h, pos = layer(h, pos, edge_index)
        node_energy = self.head(h)
        energy = torch.zeros(num_graphs, 1).index_add_(0, batch, node_energy)
        counts = torch.bincount(batch, minlength=num_graphs).clamp(min=1).unsqueeze(-1)
        return (energy / counts).squeeze(-1), pos, edge_index.shape[1]


def make_clouds(rng, num_graphs, min_nodes=6, max_nodes=12, types=4):
    """Clouds of typed points; the target energy is a pairwise Lennard-Jones-like sum."""
    xs, poss, batch, energies = [], [], [], []
    for g in range(num_graphs):
        n = int(rng.integers(min_nodes, max_nodes + 1))
        pos = rng.standard_normal((n, 3)) * 1.2
        kind = rng.integers(0, types, n)
        d = np.linalg.norm(pos[:, None] - pos[None], axis=-1) + np.eye(n)
        strength = 0.5 + 0.25 * (kind[:, None] + kind[None])
        pair = strength * (np.exp(-d) - 0.5 * np.exp(-0.5 * d))
        energies.append((np.triu(pair, 1).sum()) / n)
        xs.append(np.eye(types)[kind])
        poss.append(pos)
        batch.append(np.full(n, g))
    cat = np.concatenate
    return (
        torch.tensor(cat(xs), dtype=torch.float32),
        torch.tensor(cat(poss), dtype=torch.float32),
        torch.tensor(cat(batch), dtype=torch.long),
        torch.tensor(energies, dtype=torch.float32),
    )


def main():
    parser = argparse.ArgumentParser(description="EGNN on random point clouds")
    parser.add_argument("--reduce", default="sum", choices=["sum", "mean", "amax"])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--graphs", type=int, default=48)
    parser.add_argument("--batch-graphs", type=int, default=12)
    parser.add_argument("--radius", type=float, default=2.0)
    parser.add_argument("--lr", type=float, default=2e-3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    clouds = [make_clouds(rng, args.batch_graphs) for _ in range(args.graphs // args.batch_graphs)]
    e_mean = torch.cat([c[3] for c in clouds]).mean()
    e_std = torch.cat([c[3] for c in clouds]).std()

    model = EGNN(in_dim=4, reduce=args.reduce)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)

    for epoch in range(args.epochs):
        model.train()
        total, total_edges = 0.0, 0
        for x, pos, batch, energy in clouds:
            noise = 0.05 * torch.randn(pos.shape)
            pred, new_pos, n_edges = model(x, pos + noise, batch, args.batch_graphs, args.radius)
            energy_loss = F.mse_loss(pred, (energy - e_mean) / e_std)
            denoise_loss = F.mse_loss(new_pos, pos)
            loss = energy_loss + denoise_loss
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
            optimizer.step()
            total += loss.item()
            total_edges += n_edges
        print(f"epoch {epoch} loss {total / len(clouds):.6f} edges {total_edges}")

    # rotation (and translation) equivariance of the trained network
    model.eval()
    x, pos, batch, _ = clouds[0]
    q, r = torch.linalg.qr(torch.randn(3, 3))
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    shift = torch.randn(1, 3)
    with torch.no_grad():
        e1, p1, _ = model(x, pos, batch, args.batch_graphs, args.radius)
        e2, p2, _ = model(x, pos @ q.T + shift, batch, args.batch_graphs, args.radius)
    inv_err = (e1 - e2).abs().max().item()
    eqv_err = (p1 @ q.T + shift - p2).abs().max().item()
    orth_err = (q @ q.T - torch.eye(3)).abs().max().item()
    print(f"equivariance loss {max(inv_err, eqv_err):.6f} orthogonality {orth_err:.2e}")
    print(f"eval energy loss {F.mse_loss(e1, (clouds[0][3] - e_mean) / e_std).item():.6f}")


if __name__ == "__main__":
    main()
