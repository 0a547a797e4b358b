"""Autograd plumbing that memory-saving and interpretability code uses: activations offloaded
through torch.autograd.graph.saved_tensors_hooks (packed to half precision and back),
Tensor.retain_grad on intermediates for saliency, tensor hooks that clip and record
gradients, register_multi_grad_hook over several outputs, a custom autograd.Function with
setup_context and generate_vmap_rule run under torch.func.vmap, walking grad_fn.next_functions
to count the leaves, detect_anomaly around a clean step, and a gradient penalty through
torch.autograd.grad(create_graph=True) on a network trained with SGD."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.graph import register_multi_grad_hook, saved_tensors_hooks

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=30)
args = p.parse_args()
torch.manual_seed(0)


class SoftClamp(torch.autograd.Function):
    """tanh-shaped clamp with a straight-through gradient scaled by 0.5 outside [-1, 1]."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return torch.tanh(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        (x,) = inputs
        ctx.save_for_backward(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.where(x.abs() <= 1, torch.ones_like(x), 0.5 * torch.ones_like(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 32)
        self.fc2 = nn.Linear(32, 32)
        self.fc3 = nn.Linear(32, 2)

    def forward(self, x):
        h = SoftClamp.apply(self.fc1(x))
        h = F.silu(self.fc2(h))
        return self.fc3(h)


packed_bytes = [0]


def pack(t):
    packed_bytes[0] += t.numel() * 2
    return t.dtype, t.to(torch.float16)


def unpack(saved):
    dtype, t = saved
    return t.to(dtype)


def count_leaves(fn, seen=None):
    # NOTE: the leaves (AccumulateGrad nodes) reached through next_functions; the nodes in
    # between depend on how each framework splits its ops (PyTorch's Linear is addmm + t)
    seen = set() if seen is None else seen
    if fn is None or fn in seen:
        return 0
    seen.add(fn)
    own = int(type(fn).__name__ == "AccumulateGrad")
    return own + sum(count_leaves(nxt, seen) for nxt, _ in fn.next_functions)


x = torch.randn(128, 6)
y = (x[:, 0] * x[:, 1] > 0).long()
model = Net()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
grad_norms = []
for step in range(args.steps):
    inp = x.clone().requires_grad_(True)
    with saved_tensors_hooks(pack, unpack):
        hidden = model.fc1(inp)
        hidden.retain_grad()
        hidden.register_hook(lambda g: g.clamp(-0.05, 0.05))
        out = model.fc3(F.silu(model.fc2(SoftClamp.apply(hidden))))
    loss = F.cross_entropy(out, y)
    # gradient penalty on the input gradient (double backward, outside the hooks)
    (g_in,) = torch.autograd.grad(loss, inp, create_graph=True)
    penalty = g_in.pow(2).sum(1).mean()
    opt.zero_grad()
    (loss + 0.1 * penalty).backward()
    grad_norms.append(hidden.grad.norm().item())
    opt.step()
    if step % 10 == 9:
        print(
            f"step {step} loss {loss.item():.6f} penalty loss {penalty.item():.6f} "
            f"hidden grad {sum(grad_norms) / len(grad_norms):.6f} "
            f"leaves {count_leaves(loss.grad_fn)}"
        )
print("packed", packed_bytes[0] > 0)

# saliency of a few samples from retain_grad, and a multi-output hook that sees all gradients
inp = x[:8].clone().requires_grad_(True)
a, b = model(inp).unbind(1)
seen = []
handle = register_multi_grad_hook(
    (a, b), lambda grads: seen.append(sum(g.abs().sum().item() for g in grads if g is not None))
)
(a.sum() - 2 * b.sum()).backward()
handle.remove()
print(f"saliency loss {inp.grad.abs().mean().item():.6f} multi {seen[0]:.4f}")

# the custom Function under vmap (per-sample) and under anomaly detection
per_sample = torch.func.vmap(lambda r: SoftClamp.apply(r * 2.0).sum())(x[:5])
jac = torch.func.vmap(torch.func.grad(lambda r: SoftClamp.apply(r * 2.0).sum()))(x[:5])
with torch.autograd.detect_anomaly():
    z = model(x[:16])
    F.cross_entropy(z, y[:16]).backward()
print(f"vmap loss {per_sample.sum().item():.6f} jac {jac.abs().sum().item():.6f}")
