"""A two-layer graph convolutional network (Kipf & Welling) with a dense adjacency matrix."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class GraphConvolution(nn.Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.FloatTensor(in_features, out_features))
        if bias:
            self.bias = nn.Parameter(torch.FloatTensor(out_features))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / np.sqrt(self.weight.size(1))
        self.weight.data.uniform_(-stdv, stdv)
        if self.bias is not None:
            self.bias.data.uniform_(-stdv, stdv)

    def forward(self, input, adj):
        support = torch.mm(input, self.weight)
        output = torch.mm(adj, support)
        return output + self.bias if self.bias is not None else output


class GCN(nn.Module):
    def __init__(self, nfeat, nhid, nclass, dropout):
        super().__init__()
        self.gc1 = GraphConvolution(nfeat, nhid)
        self.gc2 = GraphConvolution(nhid, nclass)
        self.dropout = dropout

    def forward(self, x, adj):
        x = F.relu(self.gc1(x, adj))
        x = F.dropout(x, self.dropout, training=False)
        x = self.gc2(x, adj)
        return F.log_softmax(x, dim=1)


def normalize(mx):
    rowsum = np.array(mx.sum(1))
    r_inv = np.power(rowsum, -1).flatten()
    r_inv[np.isinf(r_inv)] = 0.0
    return np.diag(r_inv) @ mx


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, nfeat, nclass = 40, 12, 3
    labels_np = rng.integers(0, nclass, n)
    same = labels_np[:, None] == labels_np[None, :]
    adj_np = (rng.random((n, n)) < np.where(same, 0.3, 0.03)).astype(np.float32)
    adj_np = np.maximum(adj_np, adj_np.T) + np.eye(n, dtype=np.float32)
    features = torch.FloatTensor(
        normalize(
            rng.random((n, nfeat)).astype(np.float32) + np.eye(nclass)[labels_np].repeat(4, 1)
        )
    )
    adj = torch.FloatTensor(normalize(adj_np))
    labels = torch.LongTensor(labels_np)
    idx_train, idx_val = torch.LongTensor(range(0, 25)), torch.LongTensor(range(25, 40))
    model = GCN(nfeat=nfeat, nhid=16, nclass=nclass, dropout=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05, weight_decay=5e-4)
    for epoch in range(args.epochs):
        model.train()
        optimizer.zero_grad()
        output = model(features, adj)
        loss_train = F.nll_loss(output[idx_train], labels[idx_train])
        acc = output[idx_train].max(1)[1].eq(labels[idx_train]).double().mean()
        loss_train.backward()
        optimizer.step()
        model.eval()
        output = model(features, adj)
        loss_val = F.nll_loss(output[idx_val], labels[idx_val])
        print(
            f"Epoch: {epoch + 1:04d} loss_train: {loss_train.item():.4f} acc_train: {acc.item():.4f} loss_val: {loss_val.item():.4f}"
        )


if __name__ == "__main__":
    main()
