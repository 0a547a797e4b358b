"""RotNet self-supervision on synthetic shapes: every image is rotated by 0/90/180/270 degrees
with torch.rot90 (random horizontal flips with torch.flip first), the four copies are
torch.stack-ed into one batch and a small ResNet with GroupNorm and SiLU predicts the
rotation; AdamW with no weight decay on norms and biases, SequentialLR (LinearLR warm-up,
then CosineAnnealingLR). Afterwards a linear probe on the frozen features classifies the
shapes."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR
from torch.utils.data import DataLoader, Dataset


class ShapesDataset(Dataset):
    """Asymmetric shapes (L, T, arrow, wedge) drawn at random positions and scales."""

    def __init__(self, n, size=12, seed=0):
        rng = np.random.default_rng(seed)
        self.labels = rng.integers(0, 4, n)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        images = []
        for label in self.labels:
            cy, cx = rng.uniform(4, size - 4, 2)
            s = rng.uniform(2.0, 3.5)
            u, v = (xx - cx) / s, (yy - cy) / s
            box = (np.abs(u) < 1) & (np.abs(v) < 1)
            if label == 0:  # L
                m = box & ((u < -0.4) | (v > 0.4))
            elif label == 1:  # T
                m = box & ((v < -0.4) | (np.abs(u) < 0.3))
            elif label == 2:  # arrow pointing up
                m = box & (((v < 0.2) & (np.abs(u) < (v + 1) * 0.8)) | (np.abs(u) < 0.25))
            else:  # wedge in the lower right
                m = box & (v > -u - 0.2)
            noise = 0.15 * rng.standard_normal((size, size))
            images.append((m + noise).astype(np.float32))
        self.images = torch.from_numpy(np.stack(images)[:, None])
        self.labels = torch.from_numpy(self.labels.astype(np.int64))

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


def rotate_batch(images, flip_prob=0.5):
    """Four rotated copies of each (randomly flipped) image and the rotation labels."""
    flip = torch.rand(images.shape[0]) < flip_prob
    images = torch.where(flip[:, None, None, None], torch.flip(images, dims=[3]), images)
    rotated = torch.stack([torch.rot90(images, k, dims=(2, 3)) for k in range(4)], dim=1)
    labels = torch.arange(4).repeat(images.shape[0])
    return rotated.flatten(0, 1), labels


class ResBlock(nn.Module):
    def __init__(self, cin, cout, stride=1, groups=4):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.act = nn.SiLU()
        self.shortcut = (
            nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout
            else nn.Identity()
        )  # fmt: skip

    def forward(self, x):  # pre-activation ordering
        h = self.conv1(self.act(self.norm1(x)))
        h = self.conv2(self.act(self.norm2(h)))
        return h + self.shortcut(x)


class RotNet(nn.Module):
    def __init__(self, width=8, num_rotations=4):
        super().__init__()
        self.stem = nn.Conv2d(1, width, 3, padding=1, bias=False)
        self.features = nn.Sequential(
            ResBlock(width, width), ResBlock(width, 2 * width, stride=2),
            nn.GroupNorm(4, 2 * width), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.rotation_head = nn.Linear(2 * width, num_rotations)

    def forward(self, x, return_features=False):
        feats = self.features(self.stem(x))
        return feats if return_features else self.rotation_head(feats)


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description="rotation-prediction pretext task")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--warmup-epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-2)
    args = parser.parse_args()

    train_set, test_set = ShapesDataset(128, seed=0), ShapesDataset(64, seed=1)
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True)
    model = RotNet()
    optimizer = torch.optim.AdamW(param_groups(model, 0.05), lr=args.lr)
    steps = len(loader)
    warmup = LinearLR(optimizer, start_factor=0.1, total_iters=args.warmup_epochs * steps)
    cosine = CosineAnnealingLR(optimizer, T_max=(args.epochs - args.warmup_epochs) * steps,
                               eta_min=1e-4)  # fmt: skip
    scheduler = SequentialLR(optimizer, [warmup, cosine], milestones=[args.warmup_epochs * steps])

    for epoch in range(1, args.epochs + 1):
        model.train()
        total, correct, count = 0.0, 0, 0
        for images, _ in loader:
            inputs, targets = rotate_batch(images)
            logits = model(inputs)
            loss = F.cross_entropy(logits, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(targets)
            correct += (logits.argmax(1) == targets).sum().item()
            count += len(targets)
        model.eval()
        with torch.no_grad():
            inputs, targets = rotate_batch(test_set.images, flip_prob=0.0)
            test_loss = F.cross_entropy(model(inputs), targets).item()
        print(f"epoch {epoch} rotation loss {total / count:.5f} acc {correct / count:.3f} "
              f"test loss {test_loss:.5f} lr {scheduler.get_last_lr()[0]:.6f}")  # fmt: skip

    # linear probe on frozen features: which shape is it?
    model.requires_grad_(False)
    with torch.no_grad():
        train_feats = model(train_set.images, return_features=True)
        test_feats = model(test_set.images, return_features=True)
        mean, std = train_feats.mean(0), train_feats.std(0) + 1e-6
    probe = nn.Linear(train_feats.shape[1], 4)
    probe_opt = torch.optim.SGD(probe.parameters(), lr=0.5, momentum=0.9)
    for step in range(1, 31):
        loss = F.cross_entropy(probe((train_feats - mean) / std), train_set.labels)
        probe_opt.zero_grad()
        loss.backward()
        probe_opt.step()
        if step % 10 == 0:
            with torch.no_grad():
                test_logits = probe((test_feats - mean) / std)
                test_loss = F.cross_entropy(test_logits, test_set.labels).item()
                acc = (test_logits.argmax(1) == test_set.labels).float().mean().item()
            print(
                f"probe step {step} loss {loss.item():.5f} test loss {test_loss:.5f} acc {acc:.3f}"
            )


if __name__ == "__main__":
    main()
