"""Adversarial training in the manner of madrylab's robustness library and yaodongyu/TRADES, on
synthetic images: a small CNN with BatchNorm2d and SiLU (smooth adversarial training), the PGD
attack (a random start inside the L-inf ball, steps along the sign of the input gradient from
torch.autograd.grad, projection back onto the ball with torch.clamp(min=x - eps, max=x + eps)
tensor bounds and onto [0, 1]), Madry's min-max objective or the TRADES loss (natural cross
entropy plus beta times a batchmean F.kl_div with log_target=True between the clean and
adversarial predictions), the model switched to eval() while attacking and back to train() for
the update (so the BatchNorm running statistics, a cumulative average with momentum=None, only
see the update's batches), SGD with Nesterov momentum, weight decay and a MultiStepLR schedule,
and clean / robust accuracy under a stronger PGD in eval mode."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class SmallCNN(nn.Module):
    """Conv-BN-activation blocks, a strided convolution to downsample. The activation is SiLU
    by default, as in smooth adversarial training (Xie et al., 2020): its gradient has no
    kink, which makes the inner maximisation easier (and, unlike ReLU and max-pooling, keeps
    the attack's input gradient continuous in the weights)."""

    def __init__(self, num_classes=4, activation="silu"):
        super().__init__()
        act = nn.SiLU if activation == "silu" else nn.ReLU
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16, momentum=None),  # a cumulative average: few batches here
            act(inplace=True),
            nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(32, momentum=None),
            act(inplace=True),
            nn.AdaptiveAvgPool2d(2),
        )
        self.classifier = nn.Linear(32 * 4, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def pgd_attack(model, x, y, eps, step_size, steps, loss="ce", random_start=True):
    """L-inf PGD; loss 'ce' maximises the cross entropy with the labels, 'kl' (TRADES) the
    KL divergence from the clean prediction."""
    was_training = model.training
    model.eval()
    if loss == "kl":
        with torch.no_grad():
            p_natural = F.log_softmax(model(x), dim=1)
    if loss == "kl" and not random_start:
        # TRADES' own start: so close to x that the KL gradient is a difference of nearly
        # equal softmaxes, and its signs are at the mercy of rounding
        x_adv = x.detach() + 0.001 * torch.randn(x.shape).detach()
    elif random_start:
        x_adv = x.detach() + (torch.rand(x.shape) * 2 - 1) * eps
        x_adv = torch.clamp(x_adv, 0.0, 1.0)
    else:
        x_adv = x.detach().clone()
    for _ in range(steps):
        x_adv.requires_grad_()
        with torch.enable_grad():
            if loss == "kl":
                loss_adv = F.kl_div(F.log_softmax(model(x_adv), dim=1), p_natural,
                                    reduction="sum", log_target=True)  # fmt: skip
            else:
                loss_adv = F.cross_entropy(model(x_adv), y)
        grad = torch.autograd.grad(loss_adv, [x_adv])[0]
        x_adv = x_adv.detach() + step_size * torch.sign(grad.detach())
        x_adv = torch.clamp(x_adv, min=x - eps, max=x + eps)
        x_adv = torch.clamp(x_adv, 0.0, 1.0)
    model.train(was_training)
    return x_adv.detach()


def trades_loss(model, x_natural, y, optimizer, step_size, epsilon, perturb_steps, beta,
                random_start=True):  # fmt: skip
    x_adv = pgd_attack(model, x_natural, y, epsilon, step_size, perturb_steps, loss="kl",
                       random_start=random_start)  # fmt: skip
    model.train()
    optimizer.zero_grad()
    logits = model(x_natural)
    logits_adv = model(x_adv)
    loss_natural = F.cross_entropy(logits, y)
    loss_robust = F.kl_div(F.log_softmax(logits_adv, dim=1), F.log_softmax(logits, dim=1),
                           reduction="batchmean", log_target=True)  # fmt: skip
    return loss_natural + beta * loss_robust


def make_images(rng, n, size=12, classes=4):
    """A bar at one of four positions/orientations on a noisy background, in [0.2, 0.8]
    (inside [0, 1] by more than epsilon: no flat clamped patches, whose equal activations
    would make max-pooling ties)."""
    labels = rng.integers(0, classes, n)
    images = rng.uniform(0.2, 0.4, (n, 1, size, size)).astype(np.float32)
    for i, c in enumerate(labels):
        k = rng.integers(3, size - 3)
        if c == 0:
            images[i, 0, k - 1 : k + 1, 2:-2] += 0.4
        elif c == 1:
            images[i, 0, 2:-2, k - 1 : k + 1] += 0.4
        elif c == 2:
            for j in range(2, size - 2):
                images[i, 0, j, j] += 0.4
        else:
            for j in range(2, size - 2):
                images[i, 0, j, size - 1 - j] += 0.4
    return torch.from_numpy(images.clip(0, 1)), torch.from_numpy(labels)


def evaluate(model, x, y, eps, step_size, steps):
    model.eval()
    with torch.no_grad():
        logits = model(x)
        clean_loss = F.cross_entropy(logits, y).item()
        clean_acc = (logits.argmax(1) == y).float().mean().item()
    x_adv = pgd_attack(model, x, y, eps, step_size, steps, random_start=False)
    with torch.no_grad():
        logits_adv = model(x_adv)
        robust_loss = F.cross_entropy(logits_adv, y).item()
        robust_acc = (logits_adv.argmax(1) == y).float().mean().item()
    return clean_loss, clean_acc, robust_loss, robust_acc


def main():
    parser = argparse.ArgumentParser(description="PGD / TRADES adversarial training")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--loss", choices=["pgd", "trades"], default="pgd")
    parser.add_argument("--epsilon", type=float, default=0.05)
    parser.add_argument("--step-size", type=float, default=0.02)
    parser.add_argument("--num-steps", type=int, default=3)
    parser.add_argument("--beta", type=float, default=6.0)
    parser.add_argument("--activation", choices=["silu", "relu"], default="silu")
    parser.add_argument(
        "--start",
        choices=["uniform", "gaussian"],
        default="uniform",
        help="TRADES attack start: uniform in the ball, or x + 0.001 N(0, 1)",
    )
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x_train, y_train = make_images(rng, 128)
    x_test, y_test = make_images(rng, 64)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch_size, shuffle=True)

    model = SmallCNN(activation=args.activation)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                                weight_decay=5e-4)  # fmt: skip
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[3], gamma=0.1)
    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for x, y in loader:
            if args.loss == "trades":
                loss = trades_loss(model, x, y, optimizer, args.step_size, args.epsilon,
                                   args.num_steps, args.beta, args.start == "uniform")  # fmt: skip
            else:
                x_adv = pgd_attack(model, x, y, args.epsilon, args.step_size, args.num_steps)
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x_adv), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(x)
        scheduler.step()
        clean_loss, clean_acc, robust_loss, robust_acc = evaluate(
            model, x_test, y_test, args.epsilon, args.step_size / 2, 6
        )
        bn = model.features[1]
        print(
            f"epoch {epoch} train loss: {total / len(x_train):.6f} "
            f"clean loss: {clean_loss:.6f} acc {clean_acc:.3f} "
            f"robust loss: {robust_loss:.6f} acc {robust_acc:.3f} "
            f"bn batches {bn.num_batches_tracked.item()} lr {scheduler.get_last_lr()[0]:.4f}"
        )


if __name__ == "__main__":
    main()
