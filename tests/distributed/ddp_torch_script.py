"""A PyTorch DDP script, run unchanged by PyTorch (gloo) and by `manygrad run`, both under
`mpiexec -n 2`; test_ddp_groups.py compares what the two print.

It covers: a process group from new_group, find_unused_parameters, the fp16 compression
and allreduce hooks, join() with uneven inputs (divided by the ranks still training),
no_sync, gradient_as_bucket_view, static_graph, and the error for a parameter that got no
gradient. Values come from formulas, not random draws, so both libraries see the same.
"""

import json
import os

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: N817

env = os.environ  # the rank and size as MPICH's or Open MPI's mpiexec gives them
rank = int(env.get("PMI_RANK", env.get("OMPI_COMM_WORLD_RANK", "0")))
world = int(env.get("PMI_SIZE", env.get("OMPI_COMM_WORLD_SIZE", "1")))
dist.init_process_group("gloo", rank=rank, world_size=world)
f64 = torch.float64


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 4, dtype=f64)
        self.b = nn.Linear(4, 2, dtype=f64)
        self.c = nn.Linear(3, 2, dtype=f64)  # used on rank 0 only
        self.d = nn.Linear(2, 2, dtype=f64)  # never used

    def forward(self, x):
        y = self.b(torch.tanh(self.a(x)))
        if rank == 0:
            y = y + self.c(x)
        return y


def build(seed=0):
    m = Net()
    with torch.no_grad():
        for i, p in enumerate(m.parameters()):
            n = p.numel()
            p.copy_(torch.sin(torch.arange(n, dtype=f64) * 0.7 + i + seed).reshape(p.shape))
    return m


def batch(step):
    k = torch.arange(12, dtype=f64).reshape(4, 3)
    return torch.cos(k * (0.3 + 0.1 * rank) + step)


def params(model):
    return [p.detach().reshape(-1).tolist() for p in model.parameters()]


def grads(model):
    return [None if p.grad is None else p.grad.reshape(-1).tolist() for p in model.parameters()]


out = {}
group = dist.new_group(list(range(world)))

# find_unused_parameters + fp16 compression + join: rank r has 3 + r batches
model = DDP(build(), process_group=group, find_unused_parameters=True)
model.register_comm_hook(group, default_hooks.fp16_compress_hook)
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
with model.join(divide_by_initial_world_size=False):
    for step in range(3 + rank):
        opt.zero_grad()
        (model(batch(step)) ** 2).sum().backward()
        opt.step()
out["join_fp16"] = params(model)

# allreduce_hook, no_sync accumulation, gradient_as_bucket_view
model = DDP(build(1), process_group=group, find_unused_parameters=True,
            gradient_as_bucket_view=True)  # fmt: skip
model.register_comm_hook(group, default_hooks.allreduce_hook)
with model.no_sync():
    (model(batch(0)) ** 2).sum().backward()
(model(batch(1)) ** 2).sum().backward()
out["no_sync_view"] = grads(model)

# static_graph: the unused layer found in the first iteration
model = DDP(build(2), static_graph=True)
for step in range(2):
    (model(batch(step)) ** 2).mean().backward()
out["static"] = grads(model)

# without find_unused_parameters the next forward raises
model = DDP(build(3))
(model(batch(0)) ** 2).sum().backward()
out["strict_grads"] = grads(model)
try:
    model(batch(1))
except RuntimeError as e:
    line = [t for t in str(e).splitlines() if "did not receive grad" in t][0]
    out["strict_error"] = [str(e).split(".")[0], line.split(":")[1].split("(")[0].split()]

with open(os.path.join(os.environ["OUT_DIR"], f"rank{rank}.json"), "w") as f:
    json.dump(out, f)
dist.destroy_process_group()
