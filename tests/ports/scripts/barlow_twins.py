"""Barlow Twins (Zbontar et al., 2021) in the manner of facebookresearch/barlowtwins, on
synthetic textured images: two augmented views per image made with tensor ops only (random crops
gathered by advanced indexing with arange grids plus per-image offsets, horizontal flips with
torch.where over flip(-1), random grey-scale and brightness), a conv backbone with a
Linear-BatchNorm1d-ReLU projector and an affine-free BatchNorm1d on the embeddings (all made
SyncBatchNorm by convert_sync_batchnorm, as in the original), the cross-correlation loss
(on-diagonal pulled to one, the off-diagonal entries taken by the flatten()[:-1].view(n - 1, n +
1)[:, 1:] trick, scaled by lambda), and the LARS optimizer as a torch.optim.Optimizer subclass
whose second param group (biases and BatchNorm weights) skips both weight decay and the
layer-wise trust ratio, with a warm-up + cosine learning rate set by hand on each group and a
GradScaler that is off on CPU."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim


def off_diagonal(x):
    # return a flattened view of the off-diagonal elements of a square matrix
    n, m = x.shape
    assert n == m
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


class Backbone(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d((1, 1)),
        )
        self.out_dim = 2 * width

    def forward(self, x):
        return torch.flatten(self.features(x), 1)


class BarlowTwins(nn.Module):
    def __init__(self, projector="64-64-64", lambd=0.0051, batch_size=32):
        super().__init__()
        self.lambd = lambd
        self.batch_size = batch_size
        self.backbone = Backbone()
        sizes = [self.backbone.out_dim] + list(map(int, projector.split("-")))
        layers = []
        for i in range(len(sizes) - 2):
            layers.append(nn.Linear(sizes[i], sizes[i + 1], bias=False))
            layers.append(nn.BatchNorm1d(sizes[i + 1]))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Linear(sizes[-2], sizes[-1], bias=False))
        self.projector = nn.Sequential(*layers)
        # normalization layer for the representations z1 and z2
        self.bn = nn.BatchNorm1d(sizes[-1], affine=False)

    def forward(self, y1, y2):
        z1 = self.projector(self.backbone(y1))
        z2 = self.projector(self.backbone(y2))
        # empirical cross-correlation matrix
        c = self.bn(z1).T @ self.bn(z2)
        c.div_(self.batch_size)
        on_diag = torch.diagonal(c).add_(-1).pow_(2).sum()
        off_diag = off_diagonal(c).pow_(2).sum()
        return on_diag + self.lambd * off_diag


class LARS(optim.Optimizer):
    def __init__(self, params, lr, weight_decay=0, momentum=0.9, eta=0.001,
                 weight_decay_filter=False, lars_adaptation_filter=False):  # fmt: skip
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, eta=eta,
                        weight_decay_filter=weight_decay_filter,
                        lars_adaptation_filter=lars_adaptation_filter)  # fmt: skip
        super().__init__(params, defaults)

    def exclude_bias_and_norm(self, p):
        return p.ndim == 1

    @torch.no_grad()
    def step(self):
        for g in self.param_groups:
            for p in g["params"]:
                dp = p.grad
                if dp is None:
                    continue
                if not g["weight_decay_filter"] or not self.exclude_bias_and_norm(p):
                    dp = dp.add(p, alpha=g["weight_decay"])
                if not g["lars_adaptation_filter"] or not self.exclude_bias_and_norm(p):
                    param_norm = torch.norm(p)
                    update_norm = torch.norm(dp)
                    one = torch.ones_like(param_norm)
                    q = torch.where(
                        param_norm > 0.0,
                        torch.where(update_norm > 0, (g["eta"] * param_norm / update_norm), one),
                        one,
                    )
                    dp = dp.mul(q)
                param_state = self.state[p]
                if "mu" not in param_state:
                    param_state["mu"] = torch.zeros_like(p)
                mu = param_state["mu"]
                mu.mul_(g["momentum"]).add_(dp)
                p.add_(mu, alpha=-g["lr"])


def adjust_learning_rate(args, optimizer, step, total_steps, warmup_steps):
    max_steps = total_steps
    base_lr = args.batch_size / 256
    if step < warmup_steps:
        lr = base_lr * (step + 1) / warmup_steps
    else:
        step -= warmup_steps
        max_steps -= warmup_steps
        q = 0.5 * (1 + math.cos(math.pi * step / max_steps))
        end_lr = base_lr * 0.001
        lr = base_lr * q + end_lr * (1 - q)
    optimizer.param_groups[0]["lr"] = lr * args.learning_rate_weights
    optimizer.param_groups[1]["lr"] = lr * args.learning_rate_biases
    return lr


class Transform:
    """Two random views of a batch of images, with tensor ops only."""

    def __init__(self, crop=12):
        self.crop = crop

    def view(self, images):
        n, c, h, w = images.shape
        top = torch.randint(0, h - self.crop + 1, (n,))
        left = torch.randint(0, w - self.crop + 1, (n,))
        rows = (top[:, None] + torch.arange(self.crop)[None, :])[:, None, :, None]
        cols = (left[:, None] + torch.arange(self.crop)[None, :])[:, None, None, :]
        batch = torch.arange(n)[:, None, None, None]
        chans = torch.arange(c)[None, :, None, None]
        out = images[batch, chans, rows, cols]
        flip = (torch.rand(n) < 0.5).view(n, 1, 1, 1)
        out = torch.where(flip, out.flip(-1), out)
        grey = (torch.rand(n) < 0.2).view(n, 1, 1, 1)
        out = torch.where(grey, out.mean(dim=1, keepdim=True).expand_as(out), out)
        brightness = 1 + 0.4 * (torch.rand(n, 1, 1, 1) - 0.5)
        return (out * brightness).clamp(-1, 1)

    def __call__(self, images):
        return self.view(images), self.view(images)


def make_textures(rng, n, size=16, classes=4):
    """Checkerboards and stripes at four orientations/frequencies, random colours."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    labels = rng.integers(0, classes, n)
    images = np.empty((n, 3, size, size), dtype=np.float32)
    for i, k in enumerate(labels):
        phase = rng.uniform(0, 2 * np.pi)
        if k == 0:
            pattern = np.sin(0.9 * xx + phase)
        elif k == 1:
            pattern = np.sin(0.9 * yy + phase)
        elif k == 2:
            pattern = np.sin(0.9 * xx + phase) * np.sin(0.9 * yy)
        else:
            pattern = np.sin(0.6 * (xx + yy) + phase)
        color = rng.uniform(0.3, 1.0, 3).astype(np.float32)
        images[i] = color[:, None, None] * pattern[None] + rng.normal(0, 0.05, (3, size, size))
    return torch.from_numpy(images.clip(-1, 1)), torch.from_numpy(labels)


def main():
    parser = argparse.ArgumentParser(description="Barlow Twins on synthetic textures")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate-weights", type=float, default=0.2)
    parser.add_argument("--learning-rate-biases", type=float, default=0.0048)
    parser.add_argument("--weight-decay", type=float, default=1e-6)
    parser.add_argument("--eta", type=float, default=0.1)
    parser.add_argument("--lambd", type=float, default=0.0051)
    parser.add_argument("--projector", default="64-64-64")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x_train, y_train = make_textures(rng, 128)
    x_test, y_test = make_textures(rng, 64)

    torch.backends.cudnn.benchmark = True
    model = BarlowTwins(args.projector, args.lambd, args.batch_size)
    model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # plain batch norm in one process
    param_weights = []
    param_biases = []
    for param in model.parameters():
        if param.ndim == 1:
            param_biases.append(param)
        else:
            param_weights.append(param)
    parameters = [{"params": param_weights}, {"params": param_biases}]
    optimizer = LARS(parameters, lr=0, weight_decay=args.weight_decay, eta=args.eta,
                     weight_decay_filter=True, lars_adaptation_filter=True)  # fmt: skip
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    transform = Transform()

    steps_per_epoch = len(x_train) // args.batch_size
    total_steps = args.epochs * steps_per_epoch
    step = 0
    for epoch in range(args.epochs):
        model.train()
        running = 0.0
        for i in range(0, len(x_train), args.batch_size):
            y1, y2 = transform(x_train[i : i + args.batch_size])
            lr = adjust_learning_rate(args, optimizer, step, total_steps, steps_per_epoch)
            optimizer.zero_grad()
            with torch.autocast("cpu", enabled=False):
                loss = model.forward(y1, y2)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            running += loss.item()
            step += 1
        print(f"epoch {epoch} loss: {running / steps_per_epoch:.6f} lr {lr:.5f}")

    # the embeddings' cross-correlation on held-out images, and a linear probe on the backbone
    model.eval()
    with torch.no_grad():
        v1, v2 = transform(x_test)
        z1 = model.bn(model.projector(model.backbone(v1)))
        z2 = model.bn(model.projector(model.backbone(v2)))
        c = z1.T @ z2 / len(x_test)
        print(
            f"test diag loss: {(torch.diagonal(c) - 1).pow(2).mean().item():.6f} "
            f"off-diagonal loss: {off_diagonal(c).pow(2).mean().item():.6f}"
        )
        f_train = model.backbone(x_train[:, :, 2:14, 2:14])
        f_test = model.backbone(x_test[:, :, 2:14, 2:14])
    mean, std = f_train.mean(0), f_train.std(0) + 1e-6
    f_train, f_test = (f_train - mean) / std, (f_test - mean) / std
    probe = nn.Linear(f_train.shape[1], 4)
    probe_opt = optim.SGD(probe.parameters(), lr=0.1, momentum=0.9)
    for epoch in range(5):
        for i in range(0, len(f_train), args.batch_size):
            loss = F.cross_entropy(
                probe(f_train[i : i + args.batch_size]), y_train[i : i + args.batch_size]
            )
            probe_opt.zero_grad()
            loss.backward()
            probe_opt.step()
        with torch.no_grad():
            out = probe(f_test)
            acc = (out.argmax(1) == y_test).float().mean()
        print(f"probe epoch {epoch} loss: {F.cross_entropy(out, y_test).item():.6f} acc {acc:.3f}")


if __name__ == "__main__":
    main()
