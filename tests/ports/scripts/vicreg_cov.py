"""VICReg (Bardes, Ponce & LeCun, 2022) in the manner of facebookresearch/vicreg: two augmented
views through a shared backbone and an expander MLP (nn.Sequential built from a "512-512-512"
spec string, BatchNorm1d + ReLU, a bias-free last layer), the invariance term (F.mse_loss),
the variance term (a hinge on torch.sqrt(x.var(dim=0) + 1e-4)) and the covariance term
(off-diagonal entries through flatten()[:-1].view(n - 1, n + 1)[:, 1:], or --cov torch for
torch.cov on the transposed batch), weights 25 / 25 / 1, trunc_normal_ initialisation of the
linear layers, and LARS (layer-wise adaptive rate scaling with exclusion of biases and norm
parameters, written as a torch.optim.Optimizer subclass with @torch.no_grad step) with a
warm-up cosine schedule; a linear probe on frozen features at the end."""

import argparse
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def Projector(spec, embedding):
    sizes = [embedding] + list(map(int, spec.split("-")))
    layers = []
    for i in range(len(sizes) - 2):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        layers.append(nn.BatchNorm1d(sizes[i + 1]))
        layers.append(nn.ReLU(True))
    layers.append(nn.Linear(sizes[-2], sizes[-1], bias=False))
    return nn.Sequential(*layers)


def off_diagonal(x):
    n, m = x.shape
    assert n == m
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


class VICReg(nn.Module):
    def __init__(self, in_dim, embedding, spec, cov_mode):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Linear(in_dim, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, embedding)
        )
        self.projector = Projector(spec, embedding)
        self.num_features = int(spec.split("-")[-1])
        self.cov_mode = cov_mode
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)

    def forward(self, x, y):
        x = self.projector(self.backbone(x))
        y = self.projector(self.backbone(y))
        repr_loss = F.mse_loss(x, y)
        x = x - x.mean(dim=0)
        y = y - y.mean(dim=0)
        std_x = torch.sqrt(x.var(dim=0) + 0.0001)
        std_y = torch.sqrt(y.var(dim=0) + 0.0001)
        std_loss = torch.mean(F.relu(1 - std_x)) / 2 + torch.mean(F.relu(1 - std_y)) / 2
        if self.cov_mode == "torch":
            cov_x, cov_y = torch.cov(x.T), torch.cov(y.T)
        else:
            n = x.size(0)
            cov_x = (x.T @ x) / (n - 1)
            cov_y = (y.T @ y) / (n - 1)
        cov_loss = off_diagonal(cov_x).pow_(2).sum().div(self.num_features) + off_diagonal(
            cov_y
        ).pow_(2).sum().div(self.num_features)
        loss = 25.0 * repr_loss + 25.0 * std_loss + 1.0 * cov_loss
        return loss, repr_loss, std_loss, cov_loss


def exclude_bias_and_norm(p):
    return p.ndim == 1


class LARS(torch.optim.Optimizer):
    def __init__(self, params, lr, weight_decay=0, momentum=0.9, eta=0.001,
                 weight_decay_filter=None, lars_adaptation_filter=None):  # fmt: skip
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, eta=eta,
                        weight_decay_filter=weight_decay_filter,
                        lars_adaptation_filter=lars_adaptation_filter)  # fmt: skip
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self):
        for g in self.param_groups:
            for p in g["params"]:
                dp = p.grad
                if dp is None:
                    continue
                if g["weight_decay_filter"] is None or not g["weight_decay_filter"](p):
                    dp = dp.add(p, alpha=g["weight_decay"])
                if g["lars_adaptation_filter"] is None or not g["lars_adaptation_filter"](p):
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


def adjust_learning_rate(optimizer, step, total, warmup, base_lr):
    if step < warmup:
        lr = base_lr * step / warmup
    else:
        step -= warmup
        total -= warmup
        q = 0.5 * (1 + math.cos(math.pi * step / total))
        lr = base_lr * q + base_lr * 0.001 * (1 - q)
    for g in optimizer.param_groups:
        g["lr"] = lr
    return lr


def augment(x, noise):
    scale = 1.0 + 0.2 * (torch.rand(x.size(0), 1) - 0.5)
    mask = (torch.rand_like(x) > 0.15).float()
    return x * scale * mask + noise * torch.randn_like(x)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--cov", choices=["manual", "torch"], default="manual")
    parser.add_argument("--mlp", default="64-64-64")
    args = parser.parse_args()
    torch.manual_seed(0)

    n, d, k = 256, 20, 4
    centers = torch.randn(k, d) * 2
    labels = torch.randint(0, k, (n,))
    data = centers[labels] + 0.5 * torch.randn(n, d)

    model = VICReg(d, 16, args.mlp, args.cov)
    optimizer = LARS(model.parameters(), lr=0, weight_decay=1e-6,
                     weight_decay_filter=exclude_bias_and_norm,
                     lars_adaptation_filter=exclude_bias_and_norm)  # fmt: skip
    bs = 64
    total = args.epochs * (n // bs)
    step = 0
    for epoch in range(args.epochs):
        for i in range(0, n, bs):
            xb = data[i : i + bs]
            lr = adjust_learning_rate(optimizer, step, total, warmup=3, base_lr=0.2 * bs / 256)
            loss, inv, var, cov = model(augment(xb, 0.1), augment(xb, 0.1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
        print(f"epoch {epoch}: loss {loss.item():.5f} inv_loss {inv.item():.5f} "
              f"var_loss {var.item():.5f} cov_loss {cov.item():.5f} lr {lr:.4f}")  # fmt: skip

    model.eval()
    with torch.no_grad():
        feats = model.backbone(data)
    probe = nn.Linear(16, k)
    opt = torch.optim.SGD(probe.parameters(), lr=0.5, momentum=0.9)
    for _ in range(20):
        loss = F.cross_entropy(probe(feats), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    acc = (probe(feats).argmax(1) == labels).float().mean()
    print(f"probe loss {loss.item():.5f} acc {acc.item():.3f}")


if __name__ == "__main__":
    main()
