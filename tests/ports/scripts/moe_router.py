"""A small mixture-of-experts classifier: a top-2 softmax router with renormalised gates,
experts stored as one (E, d, h) parameter, sparse dispatch with torch.where/index_add_
checked against a dense einsum combine, a Switch-style load-balancing loss, RMSNorm,
SGD with Nesterov momentum and OneCycleLR."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def _norm(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def forward(self, x):
        return self._norm(x.float()).type_as(x) * self.weight


class MoELayer(nn.Module):
    def __init__(self, dim, hidden, num_experts, top_k=2):
        super().__init__()
        self.num_experts = num_experts
        self.top_k = top_k
        self.router = nn.Linear(dim, num_experts, bias=False)
        self.w_in = nn.Parameter(torch.empty(num_experts, dim, hidden))
        self.b_in = nn.Parameter(torch.zeros(num_experts, hidden))
        self.w_out = nn.Parameter(torch.empty(num_experts, hidden, dim))
        nn.init.normal_(self.w_in, std=dim**-0.5)
        nn.init.normal_(self.w_out, std=hidden**-0.5)

    def route(self, x):
        logits = self.router(x)
        probs = F.softmax(logits, dim=-1, dtype=torch.float)
        topk_probs, topk_idx = torch.topk(probs, k=self.top_k, dim=-1)
        gates = topk_probs / topk_probs.sum(dim=-1, keepdim=True)
        return probs, gates.to(x.dtype), topk_idx

    def forward(self, x, dense=False):
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        probs, gates, topk_idx = self.route(x)
        if dense:
            out = self._dense(x, gates, topk_idx)
        else:
            out = self._sparse(x, gates, topk_idx)
        # load-balancing loss (Switch Transformer): fraction routed (first choice) x mean prob
        tokens_per_expert = F.one_hot(topk_idx[:, 0], self.num_experts).float().mean(0)
        prob_per_expert = probs.mean(0)
        aux_loss = self.num_experts * torch.sum(tokens_per_expert * prob_per_expert)
        return out.view(shape), aux_loss, topk_idx

    def _sparse(self, x, gates, topk_idx):
        out = torch.zeros_like(x)
        for e in range(self.num_experts):
            token_idx, slot = torch.where(topk_idx == e)
            if token_idx.numel() == 0:
                continue
            h = F.silu(x[token_idx] @ self.w_in[e] + self.b_in[e])
            y = (h @ self.w_out[e]) * gates[token_idx, slot].unsqueeze(-1)
            out.index_add_(0, token_idx, y)
        return out

    def _dense(self, x, gates, topk_idx):
        combine = torch.zeros(x.size(0), self.num_experts, dtype=x.dtype)
        combine.scatter_add_(1, topk_idx, gates)
        h = F.silu(torch.einsum("nd,edh->neh", x, self.w_in) + self.b_in)
        y = torch.einsum("neh,ehd->ned", h, self.w_out)
        return torch.einsum("ne,ned->nd", combine, y)


class MoEClassifier(nn.Module):
    def __init__(self, in_dim, dim, hidden, num_experts, num_classes):
        super().__init__()
        self.embed = nn.Linear(in_dim, dim)
        self.norm1 = RMSNorm(dim)
        self.moe = MoELayer(dim, hidden, num_experts)
        self.norm2 = RMSNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x, dense=False):
        h = self.embed(x)
        moe_out, aux, idx = self.moe(self.norm1(h), dense=dense)
        h = h + moe_out
        return self.head(self.norm2(h)), aux, idx


def make_data(rng, n, in_dim, num_classes):
    centers = rng.standard_normal((num_classes * 2, in_dim)) * 2.0
    comp = rng.integers(0, num_classes * 2, n)
    x = centers[comp] + rng.standard_normal((n, in_dim))
    y = comp % num_classes  # every class is a union of two clusters
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))


def main():
    parser = argparse.ArgumentParser(description="mixture-of-experts router")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-lr", type=float, default=0.1)
    parser.add_argument("--aux-weight", type=float, default=0.01)
    parser.add_argument("--num-experts", type=int, default=4)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    in_dim, num_classes = 8, 3
    x_train, y_train = make_data(rng, 512, in_dim, num_classes)
    x_test, y_test = make_data(np.random.default_rng(0), 256, in_dim, num_classes)
    x_test = x_test + 0.1 * torch.from_numpy(rng.standard_normal(x_test.shape).astype(np.float32))

    model = MoEClassifier(in_dim, 16, 32, args.num_experts, num_classes)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=args.max_lr, momentum=0.9, nesterov=True, weight_decay=1e-4
    )
    steps_per_epoch = (len(x_train) + args.batch_size - 1) // args.batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.max_lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch
    )
    criterion = nn.CrossEntropyLoss()

    for epoch in range(1, args.epochs + 1):
        model.train()
        total, total_aux = 0.0, 0.0
        counts = torch.zeros(args.num_experts, dtype=torch.long)
        for i in range(0, len(x_train), args.batch_size):
            xb, yb = x_train[i : i + args.batch_size], y_train[i : i + args.batch_size]
            logits, aux, idx = model(xb)
            loss = criterion(logits, yb) + args.aux_weight * aux
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item()
            total_aux += aux.item()
            counts += torch.bincount(idx.flatten(), minlength=args.num_experts)
        model.eval()
        with torch.no_grad():
            logits, aux, idx = model(x_test)
            dense_logits, _, _ = model(x_test, dense=True)
            test_loss = criterion(logits, y_test)
            acc = (logits.argmax(-1) == y_test).float().mean().item()
            gap = (logits - dense_logits).abs().max().item()
        print(
            f"epoch {epoch} train loss: {total / steps_per_epoch:.5f} aux loss: "
            f"{total_aux / steps_per_epoch:.5f} test loss: {test_loss.item():.5f} acc {acc:.3f} "
            f"lr {scheduler.get_last_lr()[0]:.5f} sparse/dense gap {gap < 1e-4}"
        )
        print(
            f"  expert load {counts.tolist()} test first-choice {torch.bincount(idx[:, 0], minlength=args.num_experts).tolist()}"
        )

    # gradients through the two dispatch paths agree
    model.zero_grad()
    logits, aux, _ = model(x_test[:32])
    criterion(logits, y_test[:32]).backward()
    g_sparse = model.moe.w_in.grad.clone()
    model.zero_grad()
    logits, aux, _ = model(x_test[:32], dense=True)
    criterion(logits, y_test[:32]).backward()
    g_dense = model.moe.w_in.grad.clone()
    print(
        f"expert grad norm {g_sparse.norm().item():.5f} dense/sparse grads match {torch.allclose(g_sparse, g_dense, atol=1e-6)}"
    )


if __name__ == "__main__":
    main()
