"""A deep equilibrium model (Bai et al., 2019) in the style of the public "implicit layers"
tutorial: the layer's output is the fixed point z* = f(z*, x) of a small residual cell with
nn.GroupNorm, found without autograd by Anderson acceleration (a bordered linear system per
sample, torch.linalg.solve) or plain forward iteration; one extra f(z*, x) call re-engages the
autograd tape, and a tensor hook (register_hook) replaces the incoming gradient by the
solution of the implicit backward fixed point g = J^T g + grad, computed with
torch.autograd.grad(create_graph=False, retain_graph=True). With --jacobian-free the hook is
skipped (the "phantom gradient" of Fung et al., 2022). Trained with Adam, CosineAnnealingLR
and gradient clipping on a synthetic spiral classification task."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


class ResNetCell(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden)
        self.lin2 = nn.Linear(hidden, dim)
        self.norm1 = nn.GroupNorm(4, hidden)
        self.norm2 = nn.GroupNorm(4, dim)

    def forward(self, z, x):
        # NOTE: the 0.3 keeps the map contractive, so that the solvers converge
        y = self.norm1(F.relu(self.lin1(z)))
        return torch.tanh(self.norm2(x + 0.3 * self.lin2(y)))


def anderson(f, x0, m=4, lam=1e-4, max_iter=30, tol=1e-4, beta=1.0):
    """Anderson acceleration for the fixed point x = f(x), per row of a (batch, d) tensor."""
    bsz, d = x0.shape
    X = torch.zeros(bsz, m, d, dtype=x0.dtype)
    F_ = torch.zeros(bsz, m, d, dtype=x0.dtype)
    X[:, 0], F_[:, 0] = x0, f(x0)
    X[:, 1], F_[:, 1] = F_[:, 0], f(F_[:, 0])
    H = torch.zeros(bsz, m + 1, m + 1, dtype=x0.dtype)
    H[:, 0, 1:] = H[:, 1:, 0] = 1
    y = torch.zeros(bsz, m + 1, 1, dtype=x0.dtype)
    y[:, 0] = 1
    res = []
    for k in range(2, max_iter):
        n = min(k, m)
        G = F_[:, :n] - X[:, :n]
        H[:, 1 : n + 1, 1 : n + 1] = (
            torch.bmm(G, G.transpose(1, 2)) + lam * torch.eye(n, dtype=x0.dtype)[None]
        )
        alpha = torch.linalg.solve(H[:, : n + 1, : n + 1], y[:, : n + 1])[:, 1 : n + 1, 0]
        X[:, k % m] = (
            beta * (alpha[:, None] @ F_[:, :n])[:, 0]
            + (1 - beta) * (alpha[:, None] @ X[:, :n])[:, 0]
        )
        F_[:, k % m] = f(X[:, k % m])
        res.append((F_[:, k % m] - X[:, k % m]).norm().item() / (1e-5 + F_[:, k % m].norm().item()))
        if res[-1] < tol:
            break
    return X[:, k % m], res


def forward_iteration(f, x0, max_iter=30, tol=1e-4):
    f0, res = f(x0), []
    for _ in range(max_iter):
        x = f0
        f0 = f(x)
        res.append((f0 - x).norm().item() / (1e-5 + f0.norm().item()))
        if res[-1] < tol:
            break
    return f0, res


class DEQFixedPoint(nn.Module):
    def __init__(self, f, solver, jacobian_free=False, **kwargs):
        super().__init__()
        self.f, self.solver, self.kwargs = f, solver, kwargs
        self.jacobian_free = jacobian_free

    def forward(self, x):
        with torch.no_grad():
            z, self.forward_res = self.solver(
                lambda z: self.f(z, x), torch.zeros_like(x), **self.kwargs
            )
        z = self.f(z, x)
        if self.training and not self.jacobian_free:
            z0 = z.clone().detach().requires_grad_()
            f0 = self.f(z0, x)

            def backward_hook(grad):
                g, self.backward_res = self.solver(
                    lambda y: torch.autograd.grad(f0, z0, y, retain_graph=True)[0] + grad,
                    grad,
                    **self.kwargs,
                )
                return g

            z.register_hook(backward_hook)
        return z


def spirals(n):
    t = torch.rand(n) * 3.0 + 0.5
    label = torch.arange(n) % 3
    angle = t * 2.2 + label.float() * (2 * torch.pi / 3)
    pts = torch.stack([t * torch.cos(angle), t * torch.sin(angle)], 1) / 3.5
    return pts + 0.05 * torch.randn(n, 2), label


def main():
    parser = argparse.ArgumentParser(description="Deep equilibrium model")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--solver", choices=["anderson", "forward"], default="anderson")
    parser.add_argument("--jacobian-free", action="store_true")
    args = parser.parse_args()

    torch.manual_seed(0)
    dim = 16
    x, y = spirals(192)
    x_val, y_val = spirals(96)
    solver = anderson if args.solver == "anderson" else forward_iteration
    model = nn.Sequential(
        nn.Linear(2, dim), nn.LayerNorm(dim),
        DEQFixedPoint(ResNetCell(dim, 32), solver, jacobian_free=args.jacobian_free, tol=1e-4, max_iter=25),
        nn.Linear(dim, 3),
    )  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    steps = args.epochs * (len(x) // args.batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=1e-4)
    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for i in range(0, len(x), args.batch):
            loss = F.cross_entropy(model(x[i : i + args.batch]), y[i : i + args.batch])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total += loss.item()
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            val = F.cross_entropy(logits, y_val).item()
            err = (logits.argmax(1) != y_val).float().mean().item()
        print(
            f"epoch {epoch} train loss {total / (len(x) // args.batch):.6f} val loss {val:.6f} error loss {err:.6f}"
        )


if __name__ == "__main__":
    main()
