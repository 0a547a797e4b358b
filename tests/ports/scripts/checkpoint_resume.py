"""Training that is interrupted and resumed from a checkpoint: model, optimizer and LR
scheduler state saved with torch.save, restored into fresh objects with
torch.load(weights_only=True), and training continued. The resumed losses must equal those
of the uninterrupted run. The model uses activation checkpointing; part-way through training
a learnable logit scale joins the optimizer as a new parameter group and the stem is frozen."""

import argparse
import os
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parameters_to_vector
from torch.optim.lr_scheduler import CosineAnnealingWarmRestarts, LinearLR, SequentialLR
from torch.utils.checkpoint import checkpoint
from torch.utils.data import DataLoader, TensorDataset


class ResidualBlock(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(self.norm(x))))


class Net(nn.Module):
    def __init__(self, in_dim=16, dim=32, depth=3, num_classes=3, grad_checkpointing=True):
        super().__init__()
        self.stem = nn.Sequential(nn.Linear(in_dim, dim), nn.Tanh())
        self.blocks = nn.ModuleList([ResidualBlock(dim, 2 * dim) for _ in range(depth)])
        self.gates = nn.Parameter(torch.zeros(depth))  # ReZero-style residual gates
        self.head = nn.Linear(dim, num_classes)
        self.logit_scale = nn.Parameter(torch.ones(1), requires_grad=False)
        self.grad_checkpointing = grad_checkpointing

    def forward(self, x):
        x = self.stem(x)
        for i, block in enumerate(self.blocks):
            if self.grad_checkpointing and self.training:
                y = checkpoint(block, x, use_reentrant=False)
            else:
                y = block(x)
            x = x + self.gates[i] * y
        return self.head(x) * self.logit_scale


def make_optimizer(model, lr):
    params = [p for n, p in model.named_parameters() if n != "logit_scale"]
    return torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)


def make_scheduler(optimizer, warmup):
    warm = LinearLR(optimizer, start_factor=0.1, total_iters=warmup)
    cosine = CosineAnnealingWarmRestarts(optimizer, T_0=6, T_mult=2, eta_min=1e-4)
    return SequentialLR(optimizer, schedulers=[warm, cosine], milestones=[warmup]), [warm, cosine]


def configure_epoch(model, optimizer, schedulers, epoch, args):
    """Schedule-dependent changes, applied at the start of an epoch."""
    if epoch == args.scale_epoch:
        model.logit_scale.requires_grad_(True)
        lr = 5e-3
        optimizer.add_param_group(
            {"params": [model.logit_scale], "lr": lr, "initial_lr": lr, "weight_decay": 0.0}
        )
        for s in schedulers:  # the new group follows the schedule too
            s.base_lrs.append(lr)
    if epoch == args.freeze_epoch:
        model.stem.requires_grad_(False)


def train_epoch(model, loader, optimizer, scheduler, epoch, args, tag):
    model.train()
    total = 0.0
    for x, y in loader:
        logits = model(x)
        l2 = parameters_to_vector(p for p in model.parameters() if p.requires_grad).pow(2).sum()
        loss = F.cross_entropy(logits, y) + args.l2 * l2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        total += loss.item()
    lrs = " ".join(f"{g['lr']:.5f}" for g in optimizer.param_groups)
    print(f"[{tag}] epoch {epoch} lr {lrs} train loss: {total / len(loader):.6f}")


def evaluate(model, x, y, tag):
    model.eval()
    with torch.no_grad():
        loss = F.cross_entropy(model(x), y)
    print(f"[{tag}] val loss: {loss.item():.6f}")
    return loss.item()


def main():
    parser = argparse.ArgumentParser(description="Checkpoint and resume")
    parser.add_argument("--epochs", type=int, default=7)
    parser.add_argument("--interrupt-after", type=int, default=2)
    parser.add_argument("--scale-epoch", type=int, default=4)
    parser.add_argument("--freeze-epoch", type=int, default=5)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--l2", type=float, default=1e-4)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    w = rng.standard_normal((16, 3)).astype(np.float32)
    x_np = rng.standard_normal((320, 16)).astype(np.float32)
    y_np = (np.tanh(x_np) @ w + 0.3 * rng.standard_normal((320, 3))).argmax(1).astype(np.int64)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    loader = DataLoader(TensorDataset(x[:256], y[:256]), batch_size=64, shuffle=True)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ckpt.pt")

        # uninterrupted run, checkpointing along the way
        model = Net()
        optimizer = make_optimizer(model, args.lr)
        scheduler, parts = make_scheduler(optimizer, args.warmup)
        for epoch in range(args.epochs):
            configure_epoch(model, optimizer, parts, epoch, args)
            train_epoch(model, loader, optimizer, scheduler, epoch, args, "full")
            if epoch == args.interrupt_after:
                state = {
                    "model": model.state_dict(),
                    "optim": optimizer.state_dict(),
                    "sched": scheduler.state_dict(),
                    "epoch": epoch,
                }
                torch.save(state, path)
        full_val = evaluate(model, x[256:], y[256:], "full")
        full_vec = parameters_to_vector(model.parameters()).detach().clone()

        # a fresh process would start here
        model2 = Net()
        optimizer2 = make_optimizer(model2, args.lr)
        scheduler2, parts2 = make_scheduler(optimizer2, args.warmup)
        ckpt = torch.load(path, weights_only=True)
        model2.load_state_dict(ckpt["model"])
        optimizer2.load_state_dict(ckpt["optim"])
        scheduler2.load_state_dict(ckpt["sched"])
        start = ckpt["epoch"] + 1
        print(f"resuming at epoch {start}, lr {optimizer2.param_groups[0]['lr']:.5f}")
        for epoch in range(start, args.epochs):
            configure_epoch(model2, optimizer2, parts2, epoch, args)
            train_epoch(model2, loader, optimizer2, scheduler2, epoch, args, "resumed")
        resumed_val = evaluate(model2, x[256:], y[256:], "resumed")
        diff = (parameters_to_vector(model2.parameters()) - full_vec).abs().max().item()
        print(
            f"max parameter difference {diff:.3e}, val loss gap {abs(resumed_val - full_val):.3e}"
        )
        frozen = sum(p.numel() for p in model2.parameters() if not p.requires_grad)
        print(f"frozen parameters {frozen}, param groups {len(optimizer2.param_groups)}")


if __name__ == "__main__":
    main()
