"""Multi-task learning weighted by homoscedastic uncertainty (Kendall, Gal and Cipolla, 2018):
one shared trunk, a regression head and a classification head, their losses weighed by learnt
log-variances. Trained by Adagrad (lr_decay, weight decay, an initial accumulator) under
ReduceLROnPlateau on the validation loss; a few training rows carry corrupted (infinite)
targets, and clip_grad_norm_(error_if_nonfinite=True) makes their batches raise, so that the
loop skips them. --weighting gaussian-nll replaces the hand-written regression term with
nn.GaussianNLLLoss over a predicted variance."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class MultiTaskNet(nn.Module):
    def __init__(self, n_in, n_classes, hidden=32):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU()
        )
        self.reg_head = nn.Linear(hidden, 2)  # mean and log-variance of the target
        self.cls_head = nn.Linear(hidden, n_classes)

    def forward(self, x):
        h = self.trunk(x)
        mean, log_var = self.reg_head(h).unbind(-1)
        return mean, log_var, self.cls_head(h)


class UncertaintyWeighting(nn.Module):
    """L = sum_i exp(-s_i) L_i / c_i + s_i / 2 with s_i = log sigma_i^2 (c = 2 for regression)."""

    def __init__(self, n_tasks=2):
        super().__init__()
        self.log_vars = nn.Parameter(torch.zeros(n_tasks))

    def forward(self, reg_loss, cls_loss):
        precision = torch.exp(-self.log_vars)
        return 0.5 * precision[0] * reg_loss + precision[1] * cls_loss + 0.5 * self.log_vars.sum()


def make_data(rng, n, n_in, n_classes):
    x = rng.normal(size=(n, n_in)).astype(np.float32)
    w_reg = rng.normal(size=n_in)
    w_cls = rng.normal(size=(n_in, n_classes))
    noise = 0.1 + 0.4 * (x[:, 0] > 0)  # the regression noise depends on the input
    y_reg = np.sin(x @ w_reg) + noise * rng.normal(size=n)
    y_cls = np.argmax(x @ w_cls + 0.5 * rng.normal(size=(n, n_classes)), axis=1)
    return x, y_reg.astype(np.float32), y_cls.astype(np.int64)


def task_losses(model, x, y_reg, y_cls, args, gnll):
    mean, log_var, logits = model(x)
    if args.weighting == "gaussian-nll":
        reg = gnll(mean, y_reg, log_var.exp())
    else:
        reg = F.mse_loss(mean, y_reg)
    cls = F.cross_entropy(logits, y_cls, label_smoothing=0.05)
    return reg, cls, logits


def main():
    parser = argparse.ArgumentParser(description="uncertainty-weighted multi-task learning")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--weighting", choices=["uncertainty", "gaussian-nll"],
                        default="uncertainty")  # fmt: skip
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n_in, n_classes = 6, 3
    x, y_reg, y_cls = make_data(rng, 320, n_in, n_classes)
    y_reg[[37, 200]] = np.inf  # two corrupted sensor readings in the training rows
    train = TensorDataset(*map(torch.from_numpy, (x[:256], y_reg[:256], y_cls[:256])))
    val_x, val_reg, val_cls = map(torch.from_numpy, (x[256:], y_reg[256:], y_cls[256:]))
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True)

    model = MultiTaskNet(n_in, n_classes)
    weighting = UncertaintyWeighting()
    gnll = nn.GaussianNLLLoss(full=True, eps=1e-4)
    optimizer = torch.optim.Adagrad(
        [
            {"params": list(model.parameters()), "weight_decay": 1e-4},
            {"params": list(weighting.parameters()), "lr": args.lr / 2},
        ],
        lr=args.lr,
        lr_decay=1e-3,
        initial_accumulator_value=0.1,
    )
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode="min",
        factor=0.5,
        patience=1,
        threshold=0.1,
        cooldown=1,
        min_lr=[1e-3, 1e-3],
    )

    for epoch in range(args.epochs):
        model.train()
        total, steps, skipped, norms = 0.0, 0, 0, []
        for xb, rb, cb in loader:
            optimizer.zero_grad(set_to_none=True)
            reg, cls, _ = task_losses(model, xb, rb, cb, args, gnll)
            loss = weighting(reg, cls)
            loss.backward()
            params = list(model.parameters()) + list(weighting.parameters())
            try:
                norm = nn.utils.clip_grad_norm_(params, max_norm=2.0, error_if_nonfinite=True)
            except RuntimeError:
                skipped += 1
                continue
            optimizer.step()
            norms.append(norm)
            total += loss.item()
            steps += 1
        model.eval()
        with torch.no_grad():
            reg, cls, logits = task_losses(model, val_x, val_reg, val_cls, args, gnll)
            val = weighting(reg, cls)
            acc = (logits.argmax(-1) == val_cls).float().mean()
        scheduler.step(val)
        sigma = torch.exp(0.5 * weighting.log_vars.detach())
        print(
            f"epoch {epoch} train loss {total / steps:.6f} val loss {val.item():.6f} "
            f"reg loss {reg.item():.6f} cls loss {cls.item():.6f} acc {acc.item():.4f} "
            f"grad norm {torch.stack(norms).mean().item():.5f} skipped {skipped} "
            f"sigma {sigma[0].item():.4f} {sigma[1].item():.4f} "
            f"lr {optimizer.param_groups[0]['lr']:.5f} {scheduler.get_last_lr()[1]:.5f}"
        )


if __name__ == "__main__":
    main()
