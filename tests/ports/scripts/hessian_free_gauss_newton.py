"""Hessian-free optimisation (Martens, 2010) of a small MLP on two spirals: each outer step
solves (G + lambda I) d = -g by conjugate gradient, where G is the Gauss-Newton matrix
J^T H J of the softmax cross entropy. The products J v come from forward-mode AD
(torch.autograd.forward_ad dual tensors through torch.func.functional_call), from
torch.func.jvp, from torch.func.linearize, or from the double-backward trick; J^T u comes from
torch.func.vjp. Levenberg-Marquardt damping follows the reduction ratio of the quadratic
model; parameters are dicts of tensors updated with torch._foreach_add_."""

import argparse
import math

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, jvp, linearize, vjp


def spirals(n):
    t = torch.linspace(0.5, 3 * math.pi, n)
    a = torch.stack([t * torch.cos(t), t * torch.sin(t)], 1) / 5
    x = torch.cat([a, -a]) + 0.05 * torch.randn(2 * n, 2)
    y = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)])
    return x, y


def dot(a, b):
    return sum((a[k] * b[k]).sum() for k in a)


def scaled_add(a, b, alpha):
    return {k: a[k] + alpha * b[k] for k in a}


class GaussNewton:
    def __init__(self, model, params, x, mode):
        self.model, self.params, self.x, self.mode = model, params, x, mode

        def logits_of(p):
            return functional_call(model, p, (x,))

        self.logits_of = logits_of
        self.logits, self.vjp_fn = vjp(logits_of, params)
        self.probs = torch.softmax(self.logits.detach(), dim=-1)
        if mode == "linearize":
            _, self.jvp_fn = linearize(logits_of, params)

    def jv(self, v):
        if self.mode == "forward-ad":
            with fwAD.dual_level():
                dual = {k: fwAD.make_dual(p, v[k]) for k, p in self.params.items()}
                out = functional_call(self.model, dual, (self.x,))
                return fwAD.unpack_dual(out).tangent
        if self.mode == "jvp":
            return jvp(self.logits_of, (self.params,), (v,))[1]
        if self.mode == "linearize":
            return self.jvp_fn(v)
        # double backward: J v = d/du (u^T J v) where u^T J comes from a first backward
        p = {k: t.detach().requires_grad_() for k, t in self.params.items()}
        z = self.logits_of(p)
        u = torch.zeros_like(z, requires_grad=True)
        g = torch.autograd.grad(z, list(p.values()), u, create_graph=True)
        return torch.autograd.grad(g, u, list(v.values()))[0]

    def gv(self, v):
        jv = self.jv(v)
        p = self.probs
        # Hessian of the mean softmax cross entropy w.r.t. the logits, applied to J v
        hjv = (p * jv - p * (p * jv).sum(-1, keepdim=True)) / len(p)
        return self.vjp_fn(hjv)[0]


def conjugate_gradient(matvec, b, iters, damping):
    x = {k: torch.zeros_like(t) for k, t in b.items()}
    r = dict(b)
    d = dict(r)
    rr = dot(r, r)
    for _ in range(iters):
        ad = matvec(d)
        ad = scaled_add(ad, d, damping)
        alpha = rr / dot(d, ad)
        x = scaled_add(x, d, alpha)
        r = scaled_add(r, ad, -alpha)
        rr_new = dot(r, r)
        d = scaled_add(r, d, rr_new / rr)
        rr = rr_new
    return x


def main():
    parser = argparse.ArgumentParser(description="Hessian-free optimisation")
    parser.add_argument("--jvp", default="forward-ad",
                        choices=["forward-ad", "jvp", "linearize", "double-backward"])  # fmt: skip
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--cg-iters", type=int, default=8)
    args = parser.parse_args()

    x, y = spirals(96)
    model = nn.Sequential(nn.Linear(2, 24), nn.Tanh(), nn.Linear(24, 24), nn.Tanh(),
                          nn.Linear(24, 2))  # fmt: skip
    # a throwaway optimizer gives the parameters the framework's initial values
    torch.optim.SGD(model.parameters(), lr=0.0)
    params = {k: v.detach() for k, v in model.named_parameters()}
    damping = 1.0

    def loss_of(p):
        return F.cross_entropy(functional_call(model, p, (x,)), y)

    for step in range(args.steps):
        p_grad = {k: v.clone().requires_grad_() for k, v in params.items()}
        loss = loss_of(p_grad)
        grads = dict(zip(p_grad, torch.autograd.grad(loss, list(p_grad.values()))))
        gn = GaussNewton(model, params, x, args.jvp)
        direction = conjugate_gradient(gn.gv, {k: -g for k, g in grads.items()},
                                       args.cg_iters, damping)  # fmt: skip
        predicted = dot(grads, direction) + 0.5 * dot(direction, gn.gv(direction))
        names = list(params)
        new_values = [params[k].clone() for k in names]
        torch._foreach_add_(new_values, [direction[k] for k in names])
        candidate = dict(zip(names, new_values))
        with torch.no_grad():
            new_loss = loss_of(candidate)
        rho = ((new_loss - loss.detach()) / predicted).item()
        if rho < 0.25:
            damping *= 1.5
        elif rho > 0.75:
            damping /= 1.5
        if new_loss < loss:
            params = candidate
        with torch.no_grad():
            acc = (functional_call(model, params, (x,)).argmax(1) == y).float().mean().item()
        print(
            f"step {step} loss {loss.item():.6f} new loss {new_loss.item():.6f} "
            f"rho {rho:.4f} damping {damping:.4f} acc {acc:.3f}"
        )


if __name__ == "__main__":
    main()
