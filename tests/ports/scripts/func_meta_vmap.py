"""Batched MAML with torch.func, in the manner of functorch's maml-omniglot example: the inner
loop is a dict of fast weights updated with grad(...) over functional_call, vmap runs it over a
batch of tasks at once (in_dims for the shared weights and the per-task data), and an outer
Adam step follows. A small curvature check computes hessian and jacrev of the support loss
with respect to the last layer, and a Newton step on that layer (torch.linalg.solve) is
compared with plain gradient steps."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, grad_and_value, hessian, jacrev, vmap


class Regressor(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, hidden))
        self.act = nn.SiLU()
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        return self.head(self.act(self.body(x)))


def sample_tasks(rng, n_tasks, k_shot, k_query):
    amp = rng.uniform(0.5, 2.0, size=(n_tasks, 1, 1))
    phase = rng.uniform(0.0, np.pi, size=(n_tasks, 1, 1))
    xs = rng.uniform(-3.0, 3.0, size=(n_tasks, k_shot + k_query, 1))
    ys = amp * np.sin(xs + phase)
    xs, ys = torch.from_numpy(xs.astype(np.float32)), torch.from_numpy(ys.astype(np.float32))
    return xs[:, :k_shot], ys[:, :k_shot], xs[:, k_shot:], ys[:, k_shot:]


def main():
    parser = argparse.ArgumentParser(description="batched MAML with torch.func")
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--tasks", type=int, default=6)
    parser.add_argument("--k-shot", type=int, default=8)
    parser.add_argument("--k-query", type=int, default=12)
    parser.add_argument("--inner-steps", type=int, default=2)
    parser.add_argument("--inner-lr", type=float, default=0.05)
    parser.add_argument("--meta-lr", type=float, default=3e-3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    model = Regressor()
    meta_opt = torch.optim.Adam(model.parameters(), lr=args.meta_lr)

    def loss_fn(params, x, y):
        return F.mse_loss(functional_call(model, params, (x,)), y)

    def inner_adapt(params, x, y):
        fast = dict(params)
        for _ in range(args.inner_steps):
            grads = grad(loss_fn)(fast, x, y)
            fast = {k: w - args.inner_lr * grads[k] for k, w in fast.items()}
        return fast

    def task_loss(params, xs, ys, xq, yq):
        fast = inner_adapt(params, xs, ys)
        return loss_fn(fast, xq, yq)

    batched_task_loss = vmap(task_loss, in_dims=(None, 0, 0, 0, 0))

    for it in range(args.iterations):
        xs, ys, xq, yq = sample_tasks(rng, args.tasks, args.k_shot, args.k_query)
        params = dict(model.named_parameters())
        losses = batched_task_loss(params, xs, ys, xq, yq)
        meta_loss = losses.mean()
        meta_opt.zero_grad()
        meta_loss.backward()
        meta_opt.step()
        print(
            f"iter {it:02d} meta loss {meta_loss.item():.6f} "
            f"worst task loss {losses.max().item():.6f}"
        )

    # per-task support gradients and values in one call
    xs, ys, xq, yq = sample_tasks(rng, args.tasks, args.k_shot, args.k_query)
    params = {k: v.detach() for k, v in model.named_parameters()}
    grads, values = vmap(grad_and_value(loss_fn), in_dims=(None, 0, 0))(params, xs, ys)
    gnorm = torch.stack([g.flatten(1).norm(dim=1) for g in grads.values()], 1).norm(dim=1)
    print(f"support loss {values.mean().item():.6f} grad norm loss {gnorm.mean().item():.6f}")

    # curvature of the support loss in the head's weights, by hessian and by jacrev of grad
    feats = model.act(model.body(xs[0])).detach()

    def head_loss(w, b):
        return F.mse_loss(feats @ w.t() + b, ys[0])

    w0, b0 = params["head.weight"], params["head.bias"]
    h_ww = hessian(head_loss)(w0, b0)
    h_ww2 = jacrev(jacrev(head_loss))(w0, b0)
    h_full = hessian(head_loss, argnums=(0, 1))(w0, b0)
    print(
        f"hessian trace loss {h_ww.reshape(w0.numel(), -1).trace().item():.6f} "
        f"jacrev gap loss {(h_ww - h_ww2).abs().max().item():.3e} "
        f"cross term loss {h_full[0][1].sum().item():.6f}"
    )

    # a damped Newton step on the head against plain gradient steps on the same task
    g_w, g_b = grad(head_loss, argnums=(0, 1))(w0, b0)
    hess = h_ww.reshape(w0.numel(), w0.numel()) + 1e-2 * torch.eye(w0.numel())
    step = torch.linalg.solve(hess, g_w.reshape(-1))
    w_newton = w0 - step.reshape(w0.shape)
    w_gd = w0.clone()
    for _ in range(10):
        w_gd = w_gd - args.inner_lr * grad(head_loss)(w_gd, b0)
    print(
        f"head before loss {head_loss(w0, b0).item():.6f} newton loss "
        f"{head_loss(w_newton, b0 - args.inner_lr * g_b).item():.6f} gd loss {head_loss(w_gd, b0).item():.6f}"
    )

    # query losses after adaptation, per task, without building a graph
    with torch.no_grad():
        # torch.func.grad computes its gradients even under no_grad
        post_losses = batched_task_loss(params, xs, ys, xq, yq)
    pre_losses = vmap(loss_fn, in_dims=(None, 0, 0), chunk_size=4)(params, xq, yq)
    for t in range(args.tasks):
        print(
            f"task {t} pre-adapt loss {pre_losses[t].item():.6f} "
            f"post-adapt loss {post_losses[t].item():.6f}"
        )


if __name__ == "__main__":
    main()
