"""MAML on sine-wave regression (Finn et al., 2017): second-order and first-order meta-learning
with fast weights applied through torch.func.functional_call."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call


class SineNet(nn.Module):
    def __init__(self, hidden=40):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(1, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x):
        return self.net(x)


class MetaLearner(nn.Module):
    """Wraps a model so that a forward pass may run it with a dict of fast weights."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, weights=None):
        if weights is None:
            return self.model(x)
        return functional_call(self.model, weights, (x,))


def sample_task(rng, k_shot, k_query):
    amp = rng.uniform(0.1, 5.0)
    phase = rng.uniform(0.0, np.pi)
    xs = rng.uniform(-5.0, 5.0, size=(k_shot + k_query, 1)).astype(np.float32)
    ys = (amp * np.sin(xs + phase)).astype(np.float32)
    x, y = torch.from_numpy(xs), torch.from_numpy(ys)
    return x[:k_shot], y[:k_shot], x[k_shot:], y[k_shot:]


def adapt(model, params, x, y, inner_lr, steps, create_graph):
    fast = dict(params)
    for _ in range(steps):
        loss = F.mse_loss(model(x, fast), y)
        grads = torch.autograd.grad(loss, list(fast.values()), create_graph=create_graph)
        fast = {name: w - inner_lr * g for (name, w), g in zip(fast.items(), grads)}
    return fast


def meta_train(model, args, rng, first_order, tag):
    meta_opt = torch.optim.Adam(model.parameters(), lr=args.meta_lr)
    for it in range(args.iterations):
        meta_opt.zero_grad()
        params = dict(model.model.named_parameters())
        meta_loss = 0.0
        for _ in range(args.tasks):
            xs, ys, xq, yq = sample_task(rng, args.k_shot, args.k_query)
            fast = adapt(model, params, xs, ys, args.inner_lr, args.inner_steps, not first_order)
            if first_order:
                fast = {n: w.detach().requires_grad_() for n, w in fast.items()}
                q_loss = F.mse_loss(model(xq, fast), yq)
                grads = torch.autograd.grad(q_loss, list(fast.values()))
                for p, g in zip(params.values(), grads):
                    p.grad = g / args.tasks if p.grad is None else p.grad + g / args.tasks
            else:
                q_loss = F.mse_loss(model(xq, fast), yq)
                (q_loss / args.tasks).backward()
            meta_loss += q_loss.item()
        meta_opt.step()
        print(f"[{tag}] iter {it:02d} meta loss: {meta_loss / args.tasks:.5f}")


def evaluate(model, args, rng, tag):
    total_pre, total_post = 0.0, 0.0
    params = {n: p.detach() for n, p in model.model.named_parameters()}
    for _ in range(args.eval_tasks):
        xs, ys, xq, yq = sample_task(rng, args.k_shot, args.k_query)
        params_req = {n: p.clone().requires_grad_() for n, p in params.items()}
        with torch.no_grad():
            total_pre += F.mse_loss(model(xq, params), yq).item()
        fast = adapt(model, params_req, xs, ys, args.inner_lr, args.inner_steps, False)
        with torch.no_grad():
            total_post += F.mse_loss(model(xq, fast), yq).item()
    print(f"[{tag}] eval pre-adapt loss: {total_pre / args.eval_tasks:.5f}")
    print(f"[{tag}] eval post-adapt loss: {total_post / args.eval_tasks:.5f}")


def main():
    parser = argparse.ArgumentParser(description="MAML sine regression")
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--k-shot", type=int, default=10)
    parser.add_argument("--k-query", type=int, default=10)
    parser.add_argument("--inner-steps", type=int, default=2)
    parser.add_argument("--inner-lr", type=float, default=0.01)
    parser.add_argument("--meta-lr", type=float, default=1e-3)
    parser.add_argument("--eval-tasks", type=int, default=5)
    args = parser.parse_args()

    for first_order, tag in ((False, "maml"), (True, "fomaml")):
        rng = np.random.default_rng(0)
        model = MetaLearner(SineNet())
        meta_train(model, args, rng, first_order, tag)
        evaluate(model, args, rng, tag)


if __name__ == "__main__":
    main()
