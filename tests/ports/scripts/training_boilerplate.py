"""The boilerplate of a typical research training script, run on a machine without CUDA:
device selection with torch.cuda.is_available(), cudnn.benchmark, TF32 and matmul-precision
switches, torch.cuda.amp's GradScaler and autocast created with enabled=False (the old
spelling, still everywhere), pin_memory and non_blocking copies, an optional torch.compile,
channels_last, gradient accumulation with clip_grad_norm_ returning the norm, a warmup +
cosine schedule through SequentialLR, EMA of weights by torch.lerp_, seeded workers'
init_fn, a checkpoint dict with RNG state, and evaluation under inference_mode."""

import argparse
import io
import math
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--accum", type=int, default=2)
p.add_argument("--compile", action="store_true")
args = p.parse_args()


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def seed_worker(worker_id):
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


seed_everything(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
use_amp = device.type == "cuda"
torch.backends.cudnn.benchmark = True
torch.backends.cudnn.deterministic = False
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
torch.set_float32_matmul_precision("high")


class Net(nn.Module):
    def __init__(self, n_classes=5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(32, n_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def make_data(n, n_classes=5):
    y = torch.arange(n) % n_classes
    x = torch.randn(n, 3, 12, 12) * 0.5
    for c in range(n_classes):
        x[y == c, c % 3, :, : 2 + 2 * (c // 3)] += 1.5
    return x, y


xtr, ytr = make_data(160)
xte, yte = make_data(60)
g = torch.Generator()
g.manual_seed(0)
train_loader = DataLoader(
    TensorDataset(xtr, ytr),
    batch_size=16,
    shuffle=True,
    num_workers=0,
    pin_memory=torch.cuda.is_available(),
    worker_init_fn=seed_worker,
    generator=g,
    drop_last=True,
)
test_loader = DataLoader(TensorDataset(xte, yte), batch_size=30)

model = Net().to(device).to(memory_format=torch.channels_last)
if args.compile and hasattr(torch, "compile"):
    model = torch.compile(model)
decay, no_decay = [], []
for name, param in model.named_parameters():
    (no_decay if param.ndim <= 1 or name.endswith(".bias") else decay).append(param)
optimizer = torch.optim.AdamW(
    [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
    lr=3e-3,
    betas=(0.9, 0.95),
)
steps_per_epoch = len(train_loader) // args.accum
warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=2)
cosine = torch.optim.lr_scheduler.CosineAnnealingLR(
    optimizer, T_max=max(1, args.epochs * steps_per_epoch - 2), eta_min=1e-4
)
scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[2])
scaler = torch.cuda.amp.GradScaler(enabled=use_amp)
ema = {k: v.detach().clone() for k, v in model.state_dict().items()}


def update_ema(model, ema, momentum=0.9):
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                ema[k].lerp_(v, 1 - momentum)
            else:
                ema[k].copy_(v)


def evaluate(state=None):
    net = model
    if state is not None:
        net = Net().to(device)
        net.load_state_dict(state)
    net.eval()
    total, correct, loss_sum = 0, 0, 0.0
    with torch.inference_mode():
        for x, y in test_loader:
            x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            y = y.to(device, non_blocking=True)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
                out = net(x)
            loss_sum += F.cross_entropy(out, y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
            total += y.numel()
    net.train()
    return loss_sum / total, correct / total


for epoch in range(args.epochs):
    model.train()
    running, norms = 0.0, []
    optimizer.zero_grad(set_to_none=True)
    for step, (x, y) in enumerate(train_loader):
        x = x.to(device, non_blocking=True).to(memory_format=torch.channels_last)
        y = y.to(device, non_blocking=True)
        with torch.cuda.amp.autocast(enabled=use_amp):
            logits = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=0.1) / args.accum
        scaler.scale(loss).backward()
        running += loss.item()
        if (step + 1) % args.accum == 0:
            scaler.unscale_(optimizer)
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            norms.append(float(norm))
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            update_ema(model, ema)
    test_loss, acc = evaluate()
    ema_loss, ema_acc = evaluate(ema)
    lr = optimizer.param_groups[0]["lr"]
    print(
        f"epoch {epoch} train loss {running / steps_per_epoch:.6f} test loss {test_loss:.6f} "
        f"ema loss {ema_loss:.6f} grad norm {sum(norms) / len(norms):.6f} "
        f"lr {lr:.6f} acc {acc:.3f} ema acc {ema_acc:.3f}"
    )

buf = io.BytesIO()
torch.save(
    {
        "epoch": args.epochs,
        "model": model.state_dict(),
        "ema": ema,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": torch.get_rng_state(),
        "np_rng": np.random.get_state(),
        "py_rng": random.getstate(),
    },
    buf,
)
buf.seek(0)
ckpt = torch.load(buf, weights_only=False)
model.load_state_dict(ckpt["model"])
optimizer.load_state_dict(ckpt["optimizer"])
scheduler.load_state_dict(ckpt["scheduler"])
scaler.load_state_dict(ckpt["scaler"])
torch.set_rng_state(ckpt["rng"])
resumed_loss, _ = evaluate()
print(
    f"resumed loss {resumed_loss:.6f} lr {scheduler.get_last_lr()[0]:.6f} "
    f"math {math.isfinite(resumed_loss)}"
)
