"""The mixed-precision training recipe on a small residual CNN: torch.amp.autocast around
the forward pass (bfloat16 on the CPU with --amp, disabled otherwise), a torch.amp.GradScaler
that scales the loss, unscale_s the gradients before clip_grad_norm_, skips the steps whose
gradients overflow (two batches are deliberately corrupted) and shrinks or grows its scale;
the residual body runs under torch.utils.checkpoint.checkpoint_sequential; the learning rate
follows CyclicLR (triangular2, with momentum cycling) or a ChainedScheduler of LinearLR warmup
and MultiplicativeLR decay. Half-way the model, optimizer, scheduler and scaler states are
saved with torch.save, loaded into fresh objects with torch.load, and training resumes."""

import argparse
import io

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import ChainedScheduler, CyclicLR, LinearLR, MultiplicativeLR
from torch.utils.checkpoint import checkpoint_sequential


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(y)))


class Net(nn.Module):
    def __init__(self, c=12, n_classes=4):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c),
                                  nn.ReLU())  # fmt: skip
        self.body = nn.Sequential(Block(c), nn.MaxPool2d(2), Block(c), Block(c))
        self.head = nn.Linear(c, n_classes)

    def forward(self, x):
        x = self.stem(x)
        if self.training:
            x = checkpoint_sequential(self.body, 2, x, use_reentrant=False)
        else:
            x = self.body(x)
        return self.head(x.mean((2, 3)))


def make_data(n, size=12):
    labels = torch.arange(n) % 4
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    patterns = torch.stack([torch.sin(xx * 0.8), torch.sin(yy * 0.8),
                            torch.sin((xx + yy) * 0.6), torch.cos((xx - yy) * 0.6)]).float()  # fmt: skip
    x = patterns[labels].unsqueeze(1) * torch.tensor([1.0, 0.5, -0.5]).view(1, 3, 1, 1)
    return x + 2.0 * torch.randn(n, 3, size, size), labels


def make_training(args, model):
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
    if args.schedule == "cyclic":
        sched = CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=4, mode="triangular2",
                         cycle_momentum=True, base_momentum=0.8, max_momentum=0.9)  # fmt: skip
    else:
        sched = ChainedScheduler([LinearLR(opt, start_factor=0.2, total_iters=6),
                                  MultiplicativeLR(opt, lambda step: 0.98)])  # fmt: skip
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12, growth_interval=3)
    return opt, sched, scaler


def main():
    parser = argparse.ArgumentParser(description="AMP with GradScaler")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    parser.add_argument("--schedule", default="cyclic", choices=["cyclic", "chained"])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()

    x, y = make_data(256)
    x_val, y_val = make_data(128)
    model = Net()
    opt, sched, scaler = make_training(args, model)
    corrupt = {5, 11}
    step = 0
    for epoch in range(args.epochs):
        model.train()
        total, skipped = 0.0, 0
        for i in range(0, len(x), args.batch):
            with torch.amp.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=args.amp):
                logits = model(x[i : i + args.batch])
                loss = F.cross_entropy(logits, y[i : i + args.batch])
            scaled = scaler.scale(loss)
            if step in corrupt:
                scaled = scaled * float("inf")
            opt.zero_grad(set_to_none=True)
            scaled.backward()
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=2.0)
            scale_before = scaler.get_scale()
            scaler.step(opt)
            scaler.update()
            skipped += int(scaler.get_scale() < scale_before)
            sched.step()
            total += loss.item()
            step += 1
        model.eval()
        with torch.no_grad():
            val = F.cross_entropy(model(x_val), y_val).item()
        print(
            f"epoch {epoch} loss {total / (len(x) // args.batch):.6f} val loss {val:.6f} "
            f"scale {scaler.get_scale():.0f} skipped {skipped} lr {opt.param_groups[0]['lr']:.5f}"
        )
        if epoch == args.epochs // 2 - 1:
            buffer = io.BytesIO()
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                        "sched": sched.state_dict(), "scaler": scaler.state_dict()}, buffer)  # fmt: skip
            buffer.seek(0)
            state = torch.load(buffer, weights_only=False)
            before = model(x_val[:8])
            model = Net()
            model.load_state_dict(state["model"])
            model.eval()
            torch.testing.assert_close(model(x_val[:8]), before)
            opt, sched, scaler = make_training(args, model)
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            scaler.load_state_dict(state["scaler"])


if __name__ == "__main__":
    main()
