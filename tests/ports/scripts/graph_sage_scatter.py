"""GraphSAGE (Hamilton et al., 2017) with PyG-style message passing written in plain torch:
neighbour aggregation with Tensor.scatter_reduce_ (mean and amax, include_self=False) and
index_add_, degree normalisation from torch.bincount, a sampled mini-batch subgraph whose
node ids are relabelled with torch.unique(return_inverse=True), neighbour sampling with
torch.randint, and a link-prediction objective with negative sampling on a synthetic
stochastic block model graph."""

import torch
import torch.nn as nn
import torch.nn.functional as F

N_NODES = 120
N_BLOCKS = 4
FEAT = 16


def make_graph():
    block = torch.arange(N_NODES) % N_BLOCKS
    src = torch.randint(0, N_NODES, (900,))
    dst = torch.randint(0, N_NODES, (900,))
    same = block[src] == block[dst]
    keep = same | (torch.rand(900) < 0.1)
    src, dst = src[keep], dst[keep]
    keep = src != dst
    src, dst = src[keep], dst[keep]
    edge_index = torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])
    # coalesce: drop duplicate edges
    key = torch.unique(edge_index[0] * N_NODES + edge_index[1])
    edge_index = torch.stack([torch.div(key, N_NODES, rounding_mode="floor"), key % N_NODES])
    x = F.one_hot(block, N_BLOCKS).float() @ torch.randn(N_BLOCKS, FEAT)
    x = x + 0.8 * torch.randn(N_NODES, FEAT)
    return x, edge_index, block


def scatter(src, index, dim_size, reduce):
    out = torch.zeros(dim_size, src.size(1), dtype=src.dtype)
    idx = index.unsqueeze(1).expand_as(src)
    return out.scatter_reduce_(0, idx, src, reduce=reduce, include_self=False)


class SAGEConv(nn.Module):
    def __init__(self, in_dim, out_dim, aggr="mean"):
        super().__init__()
        self.aggr = aggr
        self.lin_l = nn.Linear(in_dim, out_dim)
        self.lin_r = nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, x, edge_index):
        src, dst = edge_index
        msg = x[src]
        if self.aggr == "sum_norm":
            # symmetric degree normalisation with index_add_
            deg = torch.bincount(dst, minlength=x.size(0)).float().clamp(min=1)
            w = (deg[src] * deg[dst]).rsqrt().unsqueeze(1)
            agg = torch.zeros_like(x).index_add_(0, dst, msg * w)
        else:
            agg = scatter(msg, dst, x.size(0), self.aggr)
        return self.lin_l(agg) + self.lin_r(x)


class SAGE(nn.Module):
    def __init__(self, in_dim, hidden, out_dim, aggrs):
        super().__init__()
        dims = [in_dim, hidden, out_dim]
        self.convs = nn.ModuleList(SAGEConv(dims[i], dims[i + 1], aggrs[i]) for i in range(2))

    def forward(self, x, edge_index):
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            if i < len(self.convs) - 1:
                x = F.relu(x)
                x = F.normalize(x, p=2.0, dim=-1)
        return x


def sample_neighbours(edge_index, seeds, fanout):
    """One hop of uniform neighbour sampling (with replacement), as in PyG's NeighborLoader."""
    src, dst = edge_index
    order = torch.argsort(dst, stable=True)
    src, dst = src[order], dst[order]
    deg = torch.bincount(dst, minlength=N_NODES)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(deg, 0)])
    seeds = seeds[deg[seeds] > 0]
    pick = torch.randint(0, 1 << 30, (seeds.numel(), fanout)) % deg[seeds].unsqueeze(1)
    e = (ptr[seeds].unsqueeze(1) + pick).reshape(-1)
    return torch.stack([src[e], dst[e]])


def link_logits(z, pairs):
    return (z[pairs[0]] * z[pairs[1]]).sum(dim=-1)


def main():
    torch.manual_seed(0)
    x, edge_index, block = make_graph()
    print(f"graph nodes {N_NODES} edges {edge_index.size(1)} "
          f"mean degree loss {torch.bincount(edge_index[1]).float().mean().item():.4f}")  # fmt: skip
    for aggrs in (("mean", "amax"), ("sum_norm", "mean")):
        model = SAGE(FEAT, 32, 16, aggrs)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for step in range(1, 26):
            # mini-batch of positive edges, their 2-hop sampled neighbourhood, relabelled
            pos = edge_index[:, torch.randint(0, edge_index.size(1), (16,))]
            neg = torch.randint(0, N_NODES, (2, 16))
            seeds = torch.cat([pos.reshape(-1), neg.reshape(-1)])
            hop1 = sample_neighbours(edge_index, torch.unique(seeds), 3)
            hop2 = sample_neighbours(edge_index, torch.unique(hop1[0]), 3)
            sub_edges = torch.cat([hop1, hop2], dim=1)
            nodes, inverse = torch.unique(torch.cat([seeds, sub_edges.reshape(-1)]),
                                          return_inverse=True)  # fmt: skip
            local_seeds = inverse[: seeds.numel()]
            local_edges = inverse[seeds.numel() :].view(2, -1)
            z = model(x[nodes], local_edges)
            pos_local = local_seeds[:32].view(2, -1)
            neg_local = local_seeds[32:].view(2, -1)
            pos_out, neg_out = link_logits(z, pos_local), link_logits(z, neg_local)
            loss = F.binary_cross_entropy_with_logits(
                torch.cat([pos_out, neg_out]),
                torch.cat([torch.ones_like(pos_out), torch.zeros_like(neg_out)]),
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % 5 == 0:
                print(f"[{'+'.join(aggrs)}] step {step} nodes {nodes.numel()} "
                      f"loss {loss.item():.5f}")  # fmt: skip
        with torch.no_grad():
            z = model(x, edge_index)
            same = block[:, None] == block[None, :]
            sim = z @ z.t()
            score = sim[same].mean() - sim[~same].mean()
            pos_out = link_logits(z, edge_index)
            neg_out = link_logits(z, torch.randint(0, N_NODES, (2, edge_index.size(1))))
            auc = (pos_out[:, None] > neg_out[None, :]).float().mean()
        print(f"[{'+'.join(aggrs)}] full graph auc {auc.item():.4f} "
              f"block margin loss {-score.item():.5f}")  # fmt: skip


if __name__ == "__main__":
    main()
