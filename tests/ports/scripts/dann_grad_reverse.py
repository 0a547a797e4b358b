"""Domain-adversarial training (DANN, Ganin et al., 2016) on two-moons: labelled source
points and rotated, shifted, unlabelled target points. A feature extractor feeds a label
classifier (cross entropy, or nn.MultiMarginLoss(p=2)) and, through a gradient reversal layer
(a torch.autograd.Function with the separate forward / setup_context form and
ctx.needs_input_grad), a domain discriminator (BCE with logits). The reversal weight follows
the paper's 2 / (1 + exp(-10 p)) - 1 schedule; the features for the domain gap metric come
from register_forward_hook; SGD with Nesterov momentum under a SequentialLR of ConstantLR and
PolynomialLR."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(x, alpha):
        return x.view_as(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, alpha = inputs
        ctx.alpha = alpha

    @staticmethod
    def backward(ctx, grad_output):
        grad_input = None
        if ctx.needs_input_grad[0]:
            grad_input = grad_output.neg() * ctx.alpha
        return grad_input, None


def grad_reverse(x, alpha=1.0):
    return GradientReversal.apply(x, alpha)


def two_moons(rng, n, noise=0.1):
    t = rng.uniform(0, math.pi, n)
    upper = np.stack([np.cos(t), np.sin(t)], 1)
    lower = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1)
    labels = rng.integers(0, 2, n)
    x = np.where(labels[:, None] == 0, upper, lower) + noise * rng.standard_normal((n, 2))
    return x.astype(np.float32), labels


class DANN(nn.Module):
    def __init__(self, hidden=32, num_classes=2):
        super().__init__()
        self.features = nn.Sequential(
            nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.classifier = nn.Linear(hidden, num_classes)
        self.discriminator = nn.Sequential(
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def forward(self, x, alpha=1.0):
        f = self.features(x)
        return self.classifier(f), self.discriminator(grad_reverse(f, alpha)).squeeze(-1)


def main():
    parser = argparse.ArgumentParser(description="DANN on two moons")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--class-loss", default="ce", choices=["ce", "multimargin"])
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    xs, ys = two_moons(rng, 256)
    xt, yt = two_moons(rng, 256)
    angle = math.radians(35)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    xt = (xt @ rot.T + np.array([0.3, -0.2])).astype(np.float32)
    xs, ys, xt, yt = map(torch.from_numpy, (xs, ys, xt, yt))

    model = DANN()
    class_criterion = nn.CrossEntropyLoss() if args.class_loss == "ce" else nn.MultiMarginLoss(p=2)
    domain_criterion = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                                weight_decay=1e-4)  # fmt: skip
    steps_per_epoch = len(xs) // args.batch_size
    total_steps = args.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.SequentialLR(
        optimizer,
        [
            torch.optim.lr_scheduler.ConstantLR(optimizer, factor=0.5, total_iters=steps_per_epoch),
            torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=total_steps, power=0.75),
        ],
        milestones=[steps_per_epoch],
    )

    captured = {}

    def keep_features(module, inputs, output):
        captured["features"] = output.detach()

    model.features.register_forward_hook(keep_features)

    step = 0
    for epoch in range(args.epochs):
        model.train()
        cls_total = dom_total = 0.0
        for i in range(steps_per_epoch):
            sl = slice(i * args.batch_size, (i + 1) * args.batch_size)
            p = step / total_steps
            alpha = 2.0 / (1.0 + math.exp(-10 * p)) - 1.0
            x = torch.cat([xs[sl], xt[sl]])
            domain = torch.cat([torch.zeros(args.batch_size), torch.ones(args.batch_size)])
            class_logits, domain_logits = model(x, alpha)
            class_loss = class_criterion(class_logits[: args.batch_size], ys[sl])
            domain_loss = domain_criterion(domain_logits, domain)
            loss = class_loss + domain_loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            cls_total += class_loss.item()
            dom_total += domain_loss.item()
            step += 1

        model.eval()
        with torch.no_grad():
            src_logits, _ = model(xs)
            f_src = captured["features"]
            tgt_logits, dom_logits = model(xt)
            f_tgt = captured["features"]
            tgt_loss = F.cross_entropy(tgt_logits, yt).item()
            tgt_acc = (tgt_logits.argmax(1) == yt).float().mean().item()
            src_acc = (src_logits.argmax(1) == ys).float().mean().item()
            gap = (f_src.mean(0) - f_tgt.mean(0)).norm().item()
        print(
            f"epoch {epoch} class loss {cls_total / steps_per_epoch:.6f} domain loss "
            f"{dom_total / steps_per_epoch:.6f} target loss {tgt_loss:.6f} "
            f"src acc {src_acc:.3f} tgt acc {tgt_acc:.3f} gap {gap:.4f} "
            f"lr {scheduler.get_last_lr()[0]:.5f}"
        )


if __name__ == "__main__":
    main()
