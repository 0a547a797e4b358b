"""A spiking neural network trained with surrogate gradients (Neftci et al., 2019; the snnTorch
and SpyTorch tutorials): leaky integrate-and-fire neurons unrolled over time, a Heaviside spike
whose backward is the fast-sigmoid derivative (a torch.autograd.Function written in the new
style, with setup_context and ctx.mark_non_differentiable for the spike count it also returns),
reset by subtraction (with the reset term detached, as snnTorch does by default), learnable
per-layer decay rates kept in (0, 1) by torch.sigmoid, and Poisson rate-coded inputs
(torch.rand < intensity). The loss is cross entropy on the output membrane potentials summed
over time, or with --loss count an MSE on spike counts. A module forward-pre hook with kwargs
and a full backward hook record activity and gradient norms; training uses Adamax with
ExponentialLR."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


class FastSigmoidSpike(torch.autograd.Function):
    @staticmethod
    def forward(mem, slope):
        spk = (mem > 0).to(mem.dtype)
        return spk, spk.sum()

    @staticmethod
    def setup_context(ctx, inputs, output):
        mem, slope = inputs
        ctx.save_for_backward(mem)
        ctx.slope = slope
        ctx.mark_non_differentiable(output[1])

    @staticmethod
    def backward(ctx, grad_spk, grad_count):
        (mem,) = ctx.saved_tensors
        grad = grad_spk / (ctx.slope * mem.abs() + 1.0) ** 2 if ctx.needs_input_grad[0] else None
        return grad, None


class Leaky(nn.Module):
    def __init__(self, size, slope=25.0, threshold=1.0):
        super().__init__()
        self.beta_logit = nn.Parameter(torch.full((size,), 1.5))
        self.slope, self.threshold = slope, threshold

    def forward(self, cur, mem):
        beta = torch.sigmoid(self.beta_logit)
        reset = (mem - self.threshold > 0).float().detach()
        mem = beta * mem + cur - reset * self.threshold
        spk, count = FastSigmoidSpike.apply(mem - self.threshold, self.slope)
        return spk, mem, count


class SNN(nn.Module):
    def __init__(self, n_in=20, n_hidden=48, n_out=3, steps=16):
        super().__init__()
        self.steps = steps
        self.fc1 = nn.Linear(n_in, n_hidden)
        self.lif1 = Leaky(n_hidden)
        self.fc2 = nn.Linear(n_hidden, n_out)
        self.lif2 = Leaky(n_out)

    def forward(self, spikes):  # spikes: (steps, batch, n_in)
        mem1 = torch.zeros(spikes.shape[1], self.fc1.out_features)
        mem2 = torch.zeros(spikes.shape[1], self.fc2.out_features)
        spk_rec, mem_rec, total = [], [], 0.0
        for t in range(self.steps):
            spk1, mem1, c1 = self.lif1(self.fc1(spikes[t]), mem1)
            spk2, mem2, c2 = self.lif2(self.fc2(spk1), mem2)
            spk_rec.append(spk2)
            mem_rec.append(mem2)
            total = total + c1 + c2
        return torch.stack(spk_rec), torch.stack(mem_rec), total


def patterns(n, n_in=20, steps=16):
    labels = torch.arange(n) % 3
    protos = torch.tensor([[0.9, 0.1, 0.5], [0.1, 0.9, 0.2], [0.5, 0.3, 0.9]])
    idx = torch.arange(n_in) * 3 // n_in
    intensity = (protos[labels][:, idx] + 0.15 * torch.randn(n, n_in)).clamp(0, 1)
    spikes = (torch.rand(steps, n, n_in) < intensity).float()
    return spikes, labels


def main():
    parser = argparse.ArgumentParser(description="Spiking network with surrogate gradients")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--loss", choices=["membrane", "count"], default="membrane")
    args = parser.parse_args()

    torch.manual_seed(0)
    x, y = patterns(160)
    x_val, y_val = patterns(64)
    net = SNN()
    activity, grad_norms = [], []

    def pre_hook(module, args_, kwargs):
        activity.append(args_[0].mean().item())
        return None

    def backward_hook(module, grad_input, grad_output):
        grad_norms.append(grad_output[0].norm().item())

    net.fc2.register_forward_pre_hook(pre_hook, with_kwargs=True)
    net.fc1.register_full_backward_hook(backward_hook)
    opt = torch.optim.Adamax(net.parameters(), lr=5e-3)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    for epoch in range(args.epochs):
        net.train()
        total = 0.0
        activity.clear()
        grad_norms.clear()
        for i in range(0, x.shape[1], args.batch):
            spk, mem, count = net(x[:, i : i + args.batch])
            target = y[i : i + args.batch]
            if args.loss == "membrane":
                loss = F.cross_entropy(mem.sum(0), target)
            else:
                want = F.one_hot(target, 3).float() * 0.8 * net.steps + 0.2 * net.steps * (
                    1 - F.one_hot(target, 3).float()
                )
                loss = F.mse_loss(spk.sum(0), want) / net.steps
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        sched.step()
        net.eval()
        with torch.no_grad():
            spk, mem, count = net(x_val)
            val = F.cross_entropy(mem.sum(0), y_val).item()
            err = (spk.sum(0).argmax(1) != y_val).float().mean().item()
        print(
            f"epoch {epoch} train loss {total / (x.shape[1] // args.batch):.6f} val loss {val:.6f} "
            f"error loss {err:.6f} spikes {int(count.item())} hidden rate {sum(activity) / len(activity):.4f} "
            f"grad norm {sum(grad_norms) / len(grad_norms):.5f}"
        )


if __name__ == "__main__":
    main()
