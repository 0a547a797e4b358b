"""GATv2 (Brody et al., 2022) node classification written without a graph library, as
PyG-free research code does: edge lists, per-destination softmax through
scatter_reduce("amax", include_self=False) and index_add_, neighbourhood pooling through
Tensor.index_reduce_ ("mean", "amax", "prod" with include_self=False), edge dropout,
degree features from torch.bincount, a random node split through torch.randperm, and
early stopping on validation loss with a best-state copy."""

import argparse
import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=30)
args = p.parse_args()
torch.manual_seed(0)

n_nodes, n_feat, n_classes = 120, 8, 3
labels = torch.randint(0, n_classes, (n_nodes,))
feats = torch.randn(n_nodes, n_feat) + F.one_hot(labels, n_feat).float() * 1.5
# homophilous random graph: more edges within a class
src, dst = [], []
for i in range(n_nodes):
    for j in torch.randint(0, n_nodes, (6,)).tolist():
        if j != i and (labels[i] == labels[j] or torch.rand(1).item() < 0.3):
            src += [i, j]
            dst += [j, i]
edge_index = torch.tensor([src, dst])
self_loops = torch.arange(n_nodes).repeat(2, 1)
edge_index = torch.cat([edge_index, self_loops], 1)
degree = torch.bincount(edge_index[1], minlength=n_nodes).float()
perm = torch.randperm(n_nodes)
train_idx, val_idx, test_idx = perm[:60], perm[60:90], perm[90:]


def segment_softmax(scores, index, n):
    # scores: (E, heads); softmax over the edges that share a destination
    amax = torch.full((n, scores.shape[1]), float("-inf")).scatter_reduce(
        0, index[:, None].expand_as(scores), scores, "amax", include_self=False
    )
    e = (scores - amax[index]).exp()
    denom = torch.zeros(n, scores.shape[1]).index_add_(0, index, e)
    return e / denom[index].clamp_min(1e-16)


class GATv2Layer(nn.Module):
    def __init__(self, d_in, d_out, heads=2, concat=True):
        super().__init__()
        self.heads, self.d_out, self.concat = heads, d_out, concat
        self.w_src = nn.Linear(d_in, heads * d_out)
        self.w_dst = nn.Linear(d_in, heads * d_out)
        self.att = nn.Parameter(torch.randn(heads, d_out) * 0.3)

    def forward(self, x, edge_index, edge_drop=0.0):
        s, d = edge_index
        if self.training and edge_drop > 0:
            keep = torch.rand(s.numel()) < 1 - edge_drop
            keep |= s == d  # self loops stay
            s, d = s[keep], d[keep]
        xs = self.w_src(x).view(-1, self.heads, self.d_out)
        xd = self.w_dst(x).view(-1, self.heads, self.d_out)
        scores = (F.leaky_relu(xs[s] + xd[d], 0.2) * self.att).sum(-1)
        alpha = segment_softmax(scores, d, x.shape[0])
        msg = xs[s] * alpha[..., None]
        out = torch.zeros(x.shape[0], self.heads, self.d_out).index_add_(0, d, msg)
        return out.flatten(1) if self.concat else out.mean(1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = GATv2Layer(n_feat + 3, 8, heads=2)
        self.l2 = GATv2Layer(16, n_classes, heads=2, concat=False)
        self.drop = nn.Dropout(0.3)

    def forward(self, x, edge_index):
        s, d = edge_index
        # neighbourhood statistics of the raw features as extra inputs
        first = x[:, 0]
        mean = torch.zeros(n_nodes).index_reduce_(0, d, first[s], "mean", include_self=False)
        amax = torch.zeros(n_nodes).index_reduce_(0, d, first[s], "amax", include_self=False)
        prod = torch.ones(n_nodes).index_reduce_(
            0, d, torch.sigmoid(first[s]), "prod", include_self=False
        )
        x = torch.cat([x, torch.stack([mean, amax, prod.log() / degree], 1)], 1)
        h = F.elu(self.l1(x, edge_index, edge_drop=0.2))
        h = self.drop(h)
        return self.l2(h, edge_index)


model = Net()
opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
best, best_state, patience = float("inf"), None, 0
for epoch in range(args.epochs):
    model.train()
    out = model(feats, edge_index)
    loss = F.cross_entropy(out[train_idx], labels[train_idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    model.eval()
    with torch.no_grad():
        out = model(feats, edge_index)
        val = F.cross_entropy(out[val_idx], labels[val_idx]).item()
    if val < best:
        best, best_state, patience = val, copy.deepcopy(model.state_dict()), 0
    else:
        patience += 1
    if epoch % 5 == 4:
        print(f"epoch {epoch} train loss {loss.item():.6f} val loss {val:.6f} patience {patience}")

model.load_state_dict(best_state)
model.eval()
with torch.no_grad():
    out = model(feats, edge_index)
    test = F.cross_entropy(out[test_idx], labels[test_idx]).item()
    acc = (out[test_idx].argmax(1) == labels[test_idx]).float().mean().item()
print(f"best val loss {best:.6f} test loss {test:.6f} acc {acc:.3f}")
