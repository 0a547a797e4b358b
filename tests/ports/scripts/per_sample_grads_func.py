"""Per-sample gradients with torch.func, in the manner of PyTorch's tutorials: vmap(grad(...))
over functional_call, checked against a loop of ordinary backward calls; jacrev / jacfwd /
hessian and Hessian-vector products (torch.autograd.functional.hvp and jvp-of-grad); the
empirical neural tangent kernel from vmap(jacrev) over the parameter dict; model ensembling
with stack_module_state; then DP-SGD training with clipped, noised per-sample gradients."""

import argparse
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, hessian, jacfwd, jacrev, jvp, stack_module_state, vmap


class SimpleCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.fc1 = nn.Linear(16 * 2 * 2, 32)
        self.fc2 = nn.Linear(32, 3)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


def make_data(rng, n):
    """8x8 images with one of three textures plus noise."""
    y = rng.integers(0, 3, size=n)
    base = np.stack(
        [
            np.tile([1.0, -1.0], 32).reshape(8, 8),
            np.tile([[1.0], [-1.0]], (4, 8)),
            np.eye(8) * 2.0 - 0.25,
        ]
    )
    x = base[y][:, None] + rng.normal(0.0, 0.5, size=(n, 1, 8, 8))
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)


def main():
    parser = argparse.ArgumentParser(description="per-sample gradients and DP-SGD")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--noise-multiplier", type=float, default=0.3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    data, targets = make_data(rng, 256)
    model = SimpleCNN()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)

    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def compute_loss(params, buffers, sample, target):
        batch = sample.unsqueeze(0)
        target = target.unsqueeze(0)
        predictions = functional_call(model, (params, buffers), (batch,))
        return F.cross_entropy(predictions, target)

    ft_compute_sample_grad = vmap(grad(compute_loss), in_dims=(None, None, 0, 0))

    # 1) per-sample gradients: vmap(grad) against a loop of backward calls
    xb, yb = data[:16], targets[:16]
    ft_grads = ft_compute_sample_grad(params, buffers, xb, yb)
    loop_grads = {k: [] for k in params}
    for i in range(len(xb)):
        model.zero_grad()
        F.cross_entropy(model(xb[i : i + 1]), yb[i : i + 1]).backward()
        for k, p in model.named_parameters():
            loop_grads[k].append(p.grad.clone())
    diff = max((ft_grads[k] - torch.stack(loop_grads[k])).abs().max().item() for k in params)
    print(f"per-sample grads {tuple(ft_grads['conv1.weight'].shape)} max diff loss {diff:.3e}")
    norms = torch.stack([g.flatten(1).norm(dim=1) for g in ft_grads.values()], 1).norm(dim=1)
    print(f"mean per-sample grad norm loss {norms.mean().item():.5f}")

    # 2) Jacobians and Hessians of a small function of the input
    def f(x):
        return torch.sin(x) * x.pow(2).sum() + torch.tanh(x).cumsum(0)

    x0 = torch.linspace(-1.0, 1.0, 5)
    jr, jf = jacrev(f)(x0), jacfwd(f)(x0)
    ja = torch.autograd.functional.jacobian(f, x0)
    print(f"jacobian loss {jr.sum().item():.6f} jacrev-jacfwd gap loss {(jr - jf).abs().max().item():.3e} "
          f"autograd gap loss {(jr - ja).abs().max().item():.3e}")  # fmt: skip

    def energy(x):
        return (x.sin() * x.roll(1)).sum() + 0.5 * x.pow(4).sum()

    v = torch.linspace(0.5, -0.5, 5)
    _, hvp_ag = torch.autograd.functional.hvp(energy, x0, v)
    _, hvp_fwd = jvp(grad(energy), (x0,), (v,))
    hvp_dense = hessian(energy)(x0) @ v
    print(f"hvp loss {hvp_ag.sum().item():.6f} forward-over-reverse gap loss "
          f"{(hvp_fwd - hvp_ag).abs().max().item():.3e} dense gap loss "
          f"{(hvp_dense - hvp_ag).abs().max().item():.3e}")  # fmt: skip

    # 3) the empirical NTK: Jacobians with respect to the parameter dict, one per sample
    def fnet_single(params, x):
        return functional_call(model, params, (x.unsqueeze(0),)).squeeze(0)

    def empirical_ntk(params, x1, x2):
        jac1 = vmap(jacrev(fnet_single), (None, 0))(params, x1)
        jac1 = [j.flatten(2) for j in jac1.values()]
        jac2 = vmap(jacrev(fnet_single), (None, 0))(params, x2)
        jac2 = [j.flatten(2) for j in jac2.values()]
        result = torch.stack([torch.einsum("Naf,Mbf->NMab", j1, j2) for j1, j2 in zip(jac1, jac2)])
        return result.sum(0)

    params = {k: v.detach() for k, v in model.named_parameters()}
    ntk = empirical_ntk(params, data[:4], data[:4])
    asym = (ntk - ntk.permute(1, 0, 3, 2)).abs().max().item()
    hess = hessian(lambda p: compute_loss(p, buffers, data[0], targets[0]))(params)
    print(
        f"ntk {tuple(ntk.shape)} trace loss {ntk.diagonal(0, 0, 1).diagonal(0, 0, 1).sum().item():.5f} "
        f"asymmetry loss {asym:.3e} fc2 hessian loss {hess['fc2.bias']['fc2.weight'].abs().sum().item():.6f}"
    )

    # 4) an ensemble of models evaluated with one vmap over stacked parameters
    models = [copy.deepcopy(model) for _ in range(3)]
    with torch.no_grad():
        for i, m in enumerate(models):
            for p in m.parameters():
                p.mul_(1.0 + 0.1 * i)
    ens_params, ens_buffers = stack_module_state(models)

    def fmodel(params, buffers, x):
        return functional_call(model, (params, buffers), (x,))

    ens_out = vmap(fmodel, in_dims=(0, 0, None))(ens_params, ens_buffers, xb)
    with torch.no_grad():
        loop_out = torch.stack([m(xb) for m in models])
    print(
        f"ensemble out {tuple(ens_out.shape)} gap loss {(ens_out - loop_out).abs().max().item():.3e}"
    )

    # 5) DP-SGD: clip every sample's gradient, sum, add Gaussian noise, average
    for step in range(args.steps):
        idx = torch.from_numpy(rng.integers(0, len(data), args.batch_size))
        xb, yb = data[idx], targets[idx]
        params = {k: v.detach() for k, v in model.named_parameters()}
        per_sample = ft_compute_sample_grad(params, buffers, xb, yb)
        flat_norms = torch.stack([g.flatten(1).norm(2, dim=1) for g in per_sample.values()], 1)
        total_norm = flat_norms.norm(2, dim=1)
        clip_factor = (args.max_grad_norm / (total_norm + 1e-6)).clamp(max=1.0)
        for name, p in model.named_parameters():
            g = torch.einsum("i,i...->...", clip_factor, per_sample[name])
            noise = torch.randn(p.shape) * args.noise_multiplier * args.max_grad_norm
            p.grad = (g + noise) / args.batch_size
        optimizer.step()
        with torch.no_grad():
            loss = F.cross_entropy(model(xb), yb)
        clipped = (total_norm > args.max_grad_norm).float().mean().item()
        print(f"step {step:02d} loss {loss.item():.5f} clipped {clipped:.2f}")

    with torch.no_grad():
        logits = model(data)
        acc = (logits.argmax(1) == targets).float().mean().item()
    print(f"final loss {F.cross_entropy(logits, targets).item():.5f} accuracy {acc:.3f}")


if __name__ == "__main__":
    main()
