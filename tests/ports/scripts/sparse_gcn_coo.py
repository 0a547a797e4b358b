"""A graph convolutional network whose normalised adjacency is a sparse COO tensor
(D^-1/2 (A + I) D^-1/2 built from an edge list, as in PyG-style GCN code), trained for
semi-supervised node classification on a small stochastic block model graph."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def make_graph(n, n_classes, n_feat, rng):
    labels = rng.integers(0, n_classes, n)
    same = labels[:, None] == labels[None, :]
    upper = np.triu(rng.random((n, n)) < np.where(same, 0.25, 0.02), k=1)
    src, dst = np.nonzero(upper)
    # an edge list with both directions and a few duplicates, as raw edge lists often have
    edges = np.concatenate(
        [np.stack([src, dst]), np.stack([dst, src]), np.stack([src[:5], dst[:5]])], 1
    )
    feats = rng.normal(size=(n, n_feat)).astype(np.float32)
    feats[:, :n_classes] += 1.5 * np.eye(n_classes, dtype=np.float32)[labels]
    return torch.from_numpy(edges).long(), torch.from_numpy(feats), torch.from_numpy(labels).long()


def gcn_norm(edge_index, num_nodes):
    """Symmetric normalisation of A + I as a coalesced sparse COO matrix."""
    loops = torch.arange(num_nodes).unsqueeze(0).repeat(2, 1)
    edge_index = torch.cat([edge_index, loops], dim=1)
    ones = torch.ones(edge_index.size(1))
    adj = torch.sparse_coo_tensor(edge_index, ones, (num_nodes, num_nodes))
    adj = adj.coalesce()  # sums the duplicate edges
    adj = torch.sparse_coo_tensor(
        adj.indices(), torch.ones_like(adj.values()), adj.shape
    ).coalesce()
    row, col = adj.indices()
    deg = torch.zeros(num_nodes).index_add_(0, row, adj.values())
    assert torch.equal(deg, torch.sparse.sum(adj, dim=1).to_dense())
    deg_inv_sqrt = deg.pow(-0.5)
    deg_inv_sqrt[deg_inv_sqrt == float("inf")] = 0
    norm = deg_inv_sqrt[row] * adj.values() * deg_inv_sqrt[col]
    out = torch.sparse_coo_tensor(adj.indices(), norm, adj.size()).coalesce()
    # the same scaling written as sparse * dense broadcasts
    scaled = adj * deg_inv_sqrt.view(-1, 1) * deg_inv_sqrt.view(1, -1)
    assert torch.allclose(scaled.to_dense(), out.to_dense())
    return out


class GraphConv(nn.Module):
    def __init__(self, in_features, out_features, use_spmm=False):
        super().__init__()
        self.lin = nn.Linear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.use_spmm = use_spmm
        nn.init.xavier_uniform_(self.lin.weight)

    def forward(self, x, adj):
        support = self.lin(x)
        out = torch.spmm(adj, support) if self.use_spmm else torch.sparse.mm(adj, support)
        return out + self.bias


class GCN(nn.Module):
    """Two graph convolutions; the first reweights every edge by a learnt gate."""

    def __init__(self, nfeat, nhid, nclass, nnz, dropout=0.5):
        super().__init__()
        self.conv1 = GraphConv(nfeat, nhid)
        self.conv2 = GraphConv(nhid, nclass, use_spmm=True)
        self.edge_gate = nn.Parameter(torch.zeros(nnz))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, adj):
        gate = 2 * torch.sigmoid(self.edge_gate)
        gated = torch.sparse_coo_tensor(
            adj.indices(), adj.values() * gate, adj.shape, is_coalesced=True
        )
        x = F.relu(self.conv1(self.dropout(x), gated))
        x = self.conv2(self.dropout(x), adj)
        return F.log_softmax(x, dim=-1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, n_classes = 60, 3
    edge_index, x, y = make_graph(n, n_classes, 10, rng)
    adj = gcn_norm(edge_index, n)
    assert adj.is_sparse and adj.is_coalesced()
    print(f"nodes {n} edges {edge_index.size(1)} nnz {adj._nnz()}")
    # the normalised adjacency is symmetric: its transpose has the same dense form
    assert torch.allclose(adj.t().to_dense(), adj.to_dense())
    train_mask = torch.zeros(n, dtype=torch.bool)
    train_mask[torch.arange(0, n, 4)] = True
    val_mask = ~train_mask
    model = GCN(x.size(1), 16, n_classes, adj._nnz())
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02, weight_decay=5e-4)
    best_val, best_state = float("inf"), None
    for epoch in range(1, args.epochs + 1):
        model.train()
        optimizer.zero_grad()
        out = model(x, adj)
        loss = F.nll_loss(out[train_mask], y[train_mask])
        loss.backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            out = model(x, adj)
            val_loss = F.nll_loss(out[val_mask], y[val_mask]).item()
            acc = (out.argmax(dim=-1)[val_mask] == y[val_mask]).float().mean().item()
        if val_loss < best_val:
            best_val = val_loss
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if epoch % 4 == 0:
            print(
                f"epoch {epoch:03d} train_loss {loss.item():.5f} val_loss {val_loss:.5f} val_acc {acc:.3f}"
            )
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        # the dense product gives the same predictions as the sparse one
        dense_out = model(x, adj.to_dense().to_sparse())
        test_loss = F.nll_loss(dense_out[val_mask], y[val_mask])
    print(f"best val_loss {best_val:.5f} reloaded loss {test_loss.item():.5f}")


if __name__ == "__main__":
    main()
