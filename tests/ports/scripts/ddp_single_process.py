"""The skeleton of a DistributedDataParallel training script run as a single process, as
people debug one before launching it with torchrun: environment defaults for MASTER_ADDR /
MASTER_PORT / RANK / WORLD_SIZE, dist.init_process_group("gloo") with a file:// init_method
(or --init env: the environment's), DistributedSampler with set_epoch (shuffle=False here), DDP around the
model, no_sync() for gradient accumulation, dist.all_reduce of the summed loss and sample
count for the epoch metric (ReduceOp.SUM), dist.barrier, a rank-0-only checkpoint of
model.module.state_dict() loaded back into a plain model, and destroy_process_group."""

import argparse
import os
import tempfile

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: N817
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset


def setup(init):
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29513")
    rank = int(os.environ.get("RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    if init == "env":
        dist.init_process_group("gloo", rank=rank, world_size=world_size)
    else:
        path = os.path.join(tempfile.mkdtemp(), "rendezvous")
        dist.init_process_group(
            "gloo", init_method=f"file://{path}", rank=rank, world_size=world_size
        )
    return rank, world_size


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--accum", type=int, default=2)
    parser.add_argument("--init", choices=["env", "file"], default="file")
    args = parser.parse_args()
    rank, world_size = setup(args.init)
    print(
        f"rank {dist.get_rank()} of {dist.get_world_size()}, backend {dist.get_backend()}, initialized {dist.is_initialized()}"
    )
    torch.manual_seed(0)

    x = torch.randn(256, 10)
    w = torch.randn(10, 1)
    y = torch.sin(x @ w) + 0.05 * torch.randn(256, 1)
    dataset = TensorDataset(x, y)
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=False)
    loader = DataLoader(dataset, batch_size=16, sampler=sampler)

    model = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 1))
    ddp_model = DDP(model)
    opt = torch.optim.SGD(ddp_model.parameters(), lr=0.05, momentum=0.9)

    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        ddp_model.train()
        total = torch.zeros(2)
        for step, (xb, yb) in enumerate(loader):
            last = (step + 1) % args.accum == 0
            if not last:
                with ddp_model.no_sync():
                    loss = F.mse_loss(ddp_model(xb), yb) / args.accum
                    loss.backward()
            else:
                loss = F.mse_loss(ddp_model(xb), yb) / args.accum
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
            total += torch.tensor([loss.item() * args.accum * len(xb), len(xb)])
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        if rank == 0:
            print(
                f"epoch {epoch}: loss {total[0].item() / total[1].item():.6f} samples {int(total[1].item())}"
            )
        dist.barrier()

    path = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
    if rank == 0:
        torch.save({"model": ddp_model.module.state_dict(), "epoch": args.epochs}, path)
    dist.barrier()
    plain = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 1))
    state = torch.load(path, map_location="cpu")
    plain.load_state_dict(state["model"])
    with torch.no_grad():
        print(
            f"reloaded eval loss {F.mse_loss(plain(x), y).item():.6f} from epoch {state['epoch']}"
        )
    dist.destroy_process_group()
    print(f"initialized after destroy: {dist.is_initialized()}")


if __name__ == "__main__":
    main()
