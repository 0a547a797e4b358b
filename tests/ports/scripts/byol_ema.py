"""BYOL (Grill et al., 2020) in the manner of the popular byol-pytorch wrapper, on synthetic
textured images: two augmented views per image (random crops by torch.randint slicing,
horizontal flips with torch.flip, brightness jitter and noise), an online encoder with an MLP
projector and predictor (Linear, BatchNorm1d, ReLU), a target network made by copy.deepcopy with
requires_grad_(False) and moved towards the online one by an exponential moving average under
torch.no_grad (mul_/add_ with alpha, or torch._foreach_lerp_) with a cosine momentum schedule,
the symmetric normalized-MSE loss (2 - 2 cos), and a linear probe on the frozen encoder."""

import argparse
import copy
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def MLP(dim, projection_size, hidden_size=64):
    return nn.Sequential(
        nn.Linear(dim, hidden_size),
        nn.BatchNorm1d(hidden_size),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_size, projection_size),
    )


class Encoder(nn.Module):
    def __init__(self, width=16, feat_dim=32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(2 * width, feat_dim),
        )

    def forward(self, x):
        return self.net(x)


class NetWrapper(nn.Module):
    """The encoder followed by the projector: representation and projection."""

    def __init__(self, net, feat_dim, projection_size, hidden_size):
        super().__init__()
        self.net = net
        self.projector = MLP(feat_dim, projection_size, hidden_size)

    def forward(self, x):
        representation = self.net(x)
        return self.projector(representation), representation


def loss_fn(x, y):
    x = F.normalize(x, dim=-1, p=2)
    y = F.normalize(y, dim=-1, p=2)
    return 2 - 2 * (x * y).sum(dim=-1)


def set_requires_grad(model, val):
    for p in model.parameters():
        p.requires_grad = val


class BYOL(nn.Module):
    def __init__(self, net, feat_dim=32, projection_size=16, hidden_size=64, foreach=False):
        super().__init__()
        self.online_encoder = NetWrapper(net, feat_dim, projection_size, hidden_size)
        self.online_predictor = MLP(projection_size, projection_size, hidden_size)
        self.target_encoder = None
        self.foreach = foreach

    def _get_target_encoder(self):
        # made lazily at the first forward, after the online weights are final
        if self.target_encoder is None:
            target = copy.deepcopy(self.online_encoder)
            set_requires_grad(target, False)
            self.target_encoder = target
        return self.target_encoder

    @torch.no_grad()
    def update_moving_average(self, beta):
        online = list(self.online_encoder.parameters())
        target = list(self.target_encoder.parameters())
        if self.foreach:
            torch._foreach_lerp_(target, online, 1 - beta)
        else:
            for p_t, p_o in zip(target, online):
                p_t.mul_(beta).add_(p_o.detach(), alpha=1 - beta)

    def forward(self, view_one, view_two):
        images = torch.cat((view_one, view_two), dim=0)
        online_projections, _ = self.online_encoder(images)
        online_predictions = self.online_predictor(online_projections)
        pred_one, pred_two = online_predictions.chunk(2, dim=0)
        with torch.no_grad():
            target_encoder = self._get_target_encoder()
            target_projections, _ = target_encoder(images)
            target_projections = target_projections.detach()
            target_one, target_two = target_projections.chunk(2, dim=0)
        loss_one = loss_fn(pred_one, target_two.detach())
        loss_two = loss_fn(pred_two, target_one.detach())
        return (loss_one + loss_two).mean()


def augment(images, crop=12):
    """A random crop per image (torch.randint offsets), a random horizontal flip, brightness
    jitter and Gaussian noise."""
    n, _, h, w = images.shape
    tops = torch.randint(0, h - crop + 1, (n,))
    lefts = torch.randint(0, w - crop + 1, (n,))
    views = torch.stack(
        [img[:, t : t + crop, s : s + crop] for img, t, s in zip(images, tops.tolist(), lefts.tolist())]
    )  # fmt: skip
    flip = torch.rand(n) < 0.5
    views = torch.where(flip[:, None, None, None], torch.flip(views, dims=[3]), views)
    brightness = 0.8 + 0.4 * torch.rand(n, 1, 1, 1)
    return views * brightness + 0.05 * torch.randn(views.shape)


def make_textures(rng, n, size=16, classes=4):
    """Oriented stripes: the class is the orientation, with random colour, phase and frequency."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    labels = rng.integers(0, classes, n)
    images = np.empty((n, 3, size, size), dtype=np.float32)
    for i, c in enumerate(labels):
        theta = np.pi * c / classes
        freq = rng.uniform(0.6, 1.0)
        wave = np.sin(freq * (np.cos(theta) * xx + np.sin(theta) * yy) + rng.uniform(0, 2 * np.pi))
        color = rng.uniform(0.3, 1.0, 3).astype(np.float32)
        images[i] = color[:, None, None] * wave[None]
    return torch.from_numpy(images), torch.from_numpy(labels)


def cosine_momentum(base, step, total):
    return 1 - (1 - base) * (math.cos(math.pi * step / total) + 1) / 2


def main():
    parser = argparse.ArgumentParser(description="BYOL on synthetic stripes")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--base-momentum", type=float, default=0.9)
    parser.add_argument("--foreach", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x_train, y_train = make_textures(rng, 128)
    x_test, y_test = make_textures(rng, 64)

    encoder = Encoder()
    learner = BYOL(encoder, foreach=args.foreach)
    optimizer = torch.optim.Adam(learner.parameters(), lr=args.lr)
    total = args.epochs * (len(x_train) // args.batch_size)
    step = 0
    for epoch in range(args.epochs):
        learner.train()
        running = 0.0
        for i in range(0, len(x_train), args.batch_size):
            images = x_train[i : i + args.batch_size]
            loss = learner(augment(images), augment(images))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            tau = cosine_momentum(args.base_momentum, step, total)
            learner.update_moving_average(tau)
            running += loss.item()
            step += 1
        with torch.no_grad():
            online = torch.cat([p.flatten() for p in learner.online_encoder.parameters()])
            target = torch.cat([p.flatten() for p in learner.target_encoder.parameters()])
            distance = (online - target).norm()
        print(
            f"epoch {epoch} loss: {running / (len(x_train) // args.batch_size):.6f} "
            f"momentum {tau:.4f} online-target distance {distance.item():.4f}"
        )

    # linear evaluation of the frozen encoder
    encoder.requires_grad_(False)
    encoder.eval()
    with torch.no_grad():
        f_train, f_test = encoder(x_train[:, :, 2:14, 2:14]), encoder(x_test[:, :, 2:14, 2:14])
    probe = nn.Linear(f_train.shape[1], 4)
    probe_opt = torch.optim.Adam(probe.parameters(), lr=1e-2)
    mean, std = f_train.mean(0), f_train.std(0)
    f_train, f_test = (f_train - mean) / std, (f_test - mean) / std
    for epoch in range(6):
        for i in range(0, len(f_train), args.batch_size):
            loss = F.cross_entropy(
                probe(f_train[i : i + args.batch_size]), y_train[i : i + args.batch_size]
            )
            probe_opt.zero_grad()
            loss.backward()
            probe_opt.step()
        with torch.no_grad():
            out = probe(f_test)
            test_loss = F.cross_entropy(out, y_test)
            acc = (out.argmax(1) == y_test).float().mean()
        print(f"probe epoch {epoch} test loss: {test_loss.item():.6f} acc {acc.item():.3f}")
    trainable = sum(p.requires_grad for p in learner.target_encoder.parameters())
    print(f"target trainable tensors {trainable}")


if __name__ == "__main__":
    main()
