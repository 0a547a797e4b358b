"""Poincare embeddings (Nickel & Kiela, 2017) of a synthetic taxonomy (the transitive closure
of a random tree): an nn.Embedding in the unit ball, the hyperbolic distance through
torch.acosh (or the log form with torch.log1p), a softmax loss over one positive and sampled
negatives (F.cross_entropy on negated distances), and a user-written Riemannian SGD
(a torch.optim.Optimizer subclass with its own defaults, per-group "burn-in" scaling and
@torch.no_grad() step) that rescales Euclidean gradients by ((1 - |x|^2)^2) / 4 and
retracts into the ball with torch.renorm. Evaluation: mean rank of the true ancestors and
the mean average precision of the reconstruction."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 1e-5


class RiemannianSGD(torch.optim.Optimizer):
    def __init__(self, params, lr=0.1, burn_in_factor=1.0, max_norm=1 - EPS):
        defaults = dict(lr=lr, burn_in_factor=burn_in_factor, max_norm=max_norm)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr = group["lr"] * group["burn_in_factor"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                sq_norm = p.pow(2).sum(-1, keepdim=True)
                riemannian = p.grad * ((1 - sq_norm) ** 2 / 4)
                p.add_(riemannian, alpha=-lr)
                # rows that left the ball are pulled back just inside it
                p.copy_(torch.renorm(p, 2, 0, group["max_norm"]))
                state = self.state[p]
                state["steps"] = state.get("steps", 0) + 1
        return loss


def poincare_distance(u, v, form="acosh"):
    sq_u = u.pow(2).sum(-1).clamp(0, 1 - EPS)
    sq_v = v.pow(2).sum(-1).clamp(0, 1 - EPS)
    sq_dist = (u - v).pow(2).sum(-1)
    x = 1 + 2 * sq_dist / ((1 - sq_u) * (1 - sq_v))
    if form == "acosh":
        return torch.acosh(x.clamp_min(1 + 1e-7))
    # acosh(x) = log(x + sqrt(x^2 - 1)), written around x - 1 for small distances
    z = (x - 1).clamp_min(1e-7)
    return torch.log1p(z + torch.sqrt(z * (z + 2)))


def make_taxonomy(rng, depth=3, branching=3):
    parents = [-1]
    frontier = [0]
    for _ in range(depth):
        new = []
        for node in frontier:
            for _ in range(int(rng.integers(2, branching + 1))):
                parents.append(node)
                new.append(len(parents) - 1)
        frontier = new
    closure = []
    for child in range(1, len(parents)):
        node = parents[child]
        while node != -1:
            closure.append((child, node))
            node = parents[node]
    return len(parents), np.array(closure, dtype=np.int64)


def main():
    parser = argparse.ArgumentParser(description="Poincare embeddings")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--dim", type=int, default=5)
    parser.add_argument("--negatives", type=int, default=10)
    parser.add_argument("--distance", default="acosh", choices=["acosh", "log1p"])
    parser.add_argument("--burn-in", type=int, default=2)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    num_nodes, closure = make_taxonomy(rng)
    edges = torch.from_numpy(closure)
    adjacency = torch.zeros(num_nodes, num_nodes, dtype=torch.bool)
    adjacency[edges[:, 0], edges[:, 1]] = True
    adjacency |= adjacency.T.clone()
    adjacency |= torch.eye(num_nodes, dtype=torch.bool)

    embedding = nn.Embedding(num_nodes, args.dim)
    with torch.no_grad():
        embedding.weight.uniform_(-1e-3, 1e-3)
    optimizer = RiemannianSGD(embedding.parameters(), lr=0.3)
    batch_size = 32

    for epoch in range(args.epochs):
        burn_in = epoch < args.burn_in
        for group in optimizer.param_groups:
            group["burn_in_factor"] = 0.1 if burn_in else 1.0
        order = torch.randperm(len(edges))
        total = 0.0
        for start in range(0, len(edges), batch_size):
            batch = edges[order[start : start + batch_size]]
            candidates = torch.randint(0, num_nodes, (len(batch), args.negatives))
            # a negative that is in fact related to the child does not count
            related = adjacency[batch[:, :1], candidates]
            targets = torch.cat([batch[:, 1:], candidates], dim=1)
            u = embedding(batch[:, 0]).unsqueeze(1)
            v = embedding(targets)
            dist = poincare_distance(u, v, args.distance)
            logits = (-dist).masked_fill(torch.cat([torch.zeros_like(related[:, :1]), related], 1),
                                         float("-inf"))  # fmt: skip
            loss = F.cross_entropy(logits, torch.zeros(len(batch), dtype=torch.long))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)

        with torch.no_grad():
            w = embedding.weight
            all_dist = poincare_distance(w[:, None, :], w[None, :, :], args.distance)
            ranks, aps = [], []
            for node in range(1, num_nodes):
                related_nodes = adjacency[node].clone()
                related_nodes[node] = False
                d = all_dist[node].clone()
                d[node] = float("inf")
                order_n = torch.argsort(d)
                hits = related_nodes[order_n].float()
                positions = torch.nonzero(hits).squeeze(1).float() + 1
                precision = torch.cumsum(hits, 0)[hits.bool()] / positions
                aps.append(precision.mean())
                ranks.append(positions.mean())
            mean_rank = torch.stack(ranks).mean().item()
            mean_ap = torch.stack(aps).mean().item()
            norm = w.norm(dim=1).mean().item()
        phase = "burn-in" if burn_in else "train"
        print(
            f"epoch {epoch} {phase} loss {total / len(edges):.6f} mean rank {mean_rank:.3f} "
            f"map {mean_ap:.4f} mean norm {norm:.4f}"
        )


if __name__ == "__main__":
    main()
