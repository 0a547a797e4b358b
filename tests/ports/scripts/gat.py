"""A graph attention network (after pytorch/examples: gat), dense adjacency, synthetic graph."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class GraphAttentionLayer(nn.Module):
    def __init__(
        self, in_features, out_features, n_heads, concat=False, dropout=0.4, leaky_relu_slope=0.2
    ):
        super().__init__()
        self.n_heads = n_heads
        self.concat = concat
        self.dropout = dropout
        if concat:
            self.out_features = out_features
            assert out_features % n_heads == 0
            self.n_hidden = out_features // n_heads
        else:
            self.n_hidden = out_features
        self.W = nn.Parameter(torch.empty(size=(in_features, self.n_hidden * n_heads)))
        self.a = nn.Parameter(torch.empty(size=(n_heads, 2 * self.n_hidden, 1)))
        self.leakyrelu = nn.LeakyReLU(leaky_relu_slope)
        self.softmax = nn.Softmax(dim=1)
        nn.init.xavier_normal_(self.W)
        nn.init.xavier_normal_(self.a)

    def _get_attention_scores(self, h_transformed):
        source_scores = torch.matmul(h_transformed, self.a[:, : self.n_hidden, :])
        target_scores = torch.matmul(h_transformed, self.a[:, self.n_hidden :, :])
        e = source_scores + target_scores.mT
        return self.leakyrelu(e)

    def forward(self, h, adj_mat):
        n_nodes = h.shape[0]
        h_transformed = torch.mm(h, self.W)
        h_transformed = F.dropout(h_transformed, self.dropout, training=self.training)
        h_transformed = h_transformed.view(n_nodes, self.n_heads, self.n_hidden).permute(1, 0, 2)
        e = self._get_attention_scores(h_transformed)
        connectivity_mask = -9e16 * torch.ones_like(e)
        e = torch.where(adj_mat > 0, e, connectivity_mask)
        attention = F.softmax(e, dim=-1)
        attention = F.dropout(attention, self.dropout, training=self.training)
        h_prime = torch.matmul(attention, h_transformed)
        if self.concat:
            h_prime = h_prime.permute(1, 0, 2).contiguous().view(n_nodes, self.out_features)
        else:
            h_prime = h_prime.mean(dim=0)
        return h_prime


class GAT(nn.Module):
    def __init__(
        self,
        in_features,
        n_hidden,
        n_heads,
        num_classes,
        concat=False,
        dropout=0.4,
        leaky_relu_slope=0.2,
    ):
        super().__init__()
        self.gat1 = GraphAttentionLayer(
            in_features=in_features,
            out_features=n_hidden,
            n_heads=n_heads,
            concat=concat,
            dropout=dropout,
            leaky_relu_slope=leaky_relu_slope,
        )
        self.gat2 = GraphAttentionLayer(
            in_features=n_hidden,
            out_features=num_classes,
            n_heads=1,
            concat=False,
            dropout=dropout,
            leaky_relu_slope=leaky_relu_slope,
        )

    def forward(self, input_tensor, adj_mat):
        x = self.gat1(input_tensor, adj_mat)
        x = F.elu(x)
        x = self.gat2(x, adj_mat)
        return F.log_softmax(x, dim=1)


def main():
    parser = argparse.ArgumentParser(description="PyTorch Graph Attention Network")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--l2", type=float, default=5e-4)
    parser.add_argument("--dropout-p", type=float, default=0.0)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, nfeat, ncls = 30, 10, 3
    labels_np = rng.integers(0, ncls, n)
    same = labels_np[:, None] == labels_np[None, :]
    adj = (rng.random((n, n)) < np.where(same, 0.35, 0.05)).astype(np.float32)
    adj = np.maximum(adj, adj.T) + np.eye(n, dtype=np.float32)
    onehot = np.eye(ncls, dtype=np.float32)[labels_np]
    feats = rng.random((n, nfeat)).astype(np.float32)
    feats[:, :ncls] += onehot
    features, adj_mat = torch.tensor(feats), torch.tensor(adj)
    labels = torch.tensor(labels_np)
    idx_train, idx_test = torch.arange(0, 20), torch.arange(20, 30)
    gat_net = GAT(
        in_features=nfeat,
        n_hidden=8,
        n_heads=2,
        num_classes=ncls,
        concat=False,
        dropout=args.dropout_p,
        leaky_relu_slope=0.2,
    )
    optimizer = torch.optim.Adam(gat_net.parameters(), lr=args.lr, weight_decay=args.l2)
    criterion = nn.NLLLoss()
    for epoch in range(args.epochs):
        gat_net.train()
        optimizer.zero_grad()
        y = gat_net(features, adj_mat)
        loss = criterion(y[idx_train], labels[idx_train])
        loss.backward()
        optimizer.step()
        gat_net.eval()
        with torch.no_grad():
            out = gat_net(features, adj_mat)
            test_loss = criterion(out[idx_test], labels[idx_test])
        print(f"Epoch: {epoch:03d} train loss: {loss.item():.5f} test loss: {test_loss.item():.5f}")


if __name__ == "__main__":
    main()
