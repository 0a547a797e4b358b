"""A hypernetwork (Ha et al., 2016) that writes the weights of a small regression network
for each task of a sine-wave family, from a learnt task embedding. The target network
is run statelessly with torch.func.functional_call; one inner gradient step on the
support points (differentiated through with create_graph=True) adapts the generated
weights before the query loss, and the final weights are loaded back into the module
with vector_to_parameters."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call
from torch.nn.utils import parameters_to_vector, vector_to_parameters


class TargetNet(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.fc1 = nn.Linear(1, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x):
        x = torch.tanh(self.fc1(x))
        x = torch.tanh(self.fc2(x))
        return self.out(x)


class HyperNetwork(nn.Module):
    """Maps a task embedding to a full parameter vector of the target network, as a
    learnt offset from the target's own initial weights."""

    def __init__(self, target, num_tasks, embed_dim=8, hidden=32, scale=0.5):
        super().__init__()
        self.shapes = [(name, p.shape) for name, p in target.named_parameters()]
        self.register_buffer("base", parameters_to_vector(target.parameters()).detach().clone())
        self.task_embedding = nn.Embedding(num_tasks, embed_dim)
        self.net = nn.Sequential(
            nn.Linear(embed_dim, hidden), nn.ReLU(), nn.Linear(hidden, self.base.numel())
        )
        self.scale = scale

    def forward(self, task_ids):
        flat = self.base + self.scale * self.net(self.task_embedding(task_ids))
        return flat

    def unflatten(self, flat):
        sizes = [math.prod(shape) for _, shape in self.shapes]
        chunks = torch.split(flat, sizes)
        return {name: c.view(shape) for (name, shape), c in zip(self.shapes, chunks)}


def sample_points(amp, phase, n, rng):
    x = rng.uniform(-5, 5, size=(n, 1)).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy((amp * np.sin(x + phase)).astype(np.float32))


def adapted_loss(target, params, xs, ys, xq, yq, inner_lr):
    support = F.mse_loss(functional_call(target, params, (xs,), strict=True), ys)
    grads = torch.autograd.grad(support, list(params.values()), create_graph=True)
    fast = {name: p - inner_lr * g for (name, p), g in zip(params.items(), grads)}
    return support, F.mse_loss(functional_call(target, fast, (xq,)), yq)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    num_tasks, tasks_per_batch, inner_lr = 12, 4, 0.05
    amps = rng.uniform(0.5, 2.0, num_tasks)
    phases = rng.uniform(0, math.pi, num_tasks)

    target = TargetNet()
    x_eval = torch.linspace(-5, 5, 50).unsqueeze(1)
    with torch.no_grad():
        y_eval = float(amps[0]) * torch.sin(x_eval + float(phases[0]))
        print(f"untrained target loss {F.mse_loss(target(x_eval), y_eval).item():.5f}")
    hyper = HyperNetwork(target, num_tasks)
    n_params = sum(p.numel() for p in target.parameters())
    print(
        f"target params {n_params} hypernetwork params {sum(p.numel() for p in hyper.parameters())}"
    )
    optimizer = torch.optim.Adam(hyper.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.5)

    for step in range(1, args.steps + 1):
        task_ids = torch.from_numpy(rng.choice(num_tasks, tasks_per_batch, replace=False))
        flat = hyper(task_ids)
        outer, inner = 0.0, 0.0
        for t, weights in zip(task_ids.tolist(), flat.unbind(0)):
            xs, ys = sample_points(amps[t], phases[t], 10, rng)
            xq, yq = sample_points(amps[t], phases[t], 10, rng)
            support, query = adapted_loss(
                target, hyper.unflatten(weights), xs, ys, xq, yq, inner_lr
            )
            outer = outer + query
            inner += support.item()
        outer = outer / tasks_per_batch
        optimizer.zero_grad()
        outer.backward()
        grad_norm = torch.linalg.vector_norm(
            torch.stack([p.grad.norm() for p in hyper.parameters()])
        )
        optimizer.step()
        scheduler.step()
        if step % 10 == 0:
            print(
                f"step {step} support_loss {inner / tasks_per_batch:.5f} "
                f"query_loss {outer.item():.5f} grad_norm {grad_norm.item():.4f}"
            )

    # load task 0's generated weights into the target module and run it the ordinary way
    with torch.no_grad():
        flat0 = hyper(torch.tensor([0]))[0]
        vector_to_parameters(flat0, target.parameters())
        direct = F.mse_loss(target(x_eval), y_eval)
        stateless = F.mse_loss(functional_call(target, hyper.unflatten(flat0), (x_eval,)), y_eval)
    assert torch.allclose(parameters_to_vector(target.parameters()), flat0)
    print(f"task0 eval loss {direct.item():.5f} functional loss {stateless.item():.5f}")


if __name__ == "__main__":
    main()
