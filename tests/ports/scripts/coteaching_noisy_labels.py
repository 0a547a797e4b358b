"""Co-teaching (Han et al., 2018) for learning with noisy labels, in the manner of the
authors' PyTorch code: two networks each pick the small-loss fraction of a batch (per-sample
F.cross_entropy(reduction="none"), torch.argsort, a forget rate that ramps up over the first
epochs) and train their peer on it; --select kthvalue takes the threshold with
torch.kthvalue instead of sorting, and --select topk with torch.topk(largest=False). Also
the symmetric-noise transition applied to the labels, a per-class recall through
torch.take_along_dim on a confusion matrix built with torch.bincount, and an "early
learning" monitor: torch.cummax of the clean-label accuracy over steps and the step of its
running maximum."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp(d, k):
    return nn.Sequential(
        nn.Linear(d, 48), nn.ReLU(), nn.Linear(48, 48), nn.ReLU(), nn.Linear(48, k)
    )


def small_loss_indices(loss, keep, mode):
    if mode == "argsort":
        return torch.argsort(loss.detach())[:keep]
    if mode == "topk":
        return torch.topk(loss.detach(), keep, largest=False, sorted=True).indices
    threshold, _ = torch.kthvalue(loss.detach(), keep)
    return torch.nonzero(loss.detach() <= threshold).squeeze(1)


def loss_coteaching(y1, y2, target, forget_rate, mode):
    loss_1 = F.cross_entropy(y1, target, reduction="none")
    loss_2 = F.cross_entropy(y2, target, reduction="none")
    keep = max(1, int((1 - forget_rate) * len(target)))
    ind_1 = small_loss_indices(loss_1, keep, mode)
    ind_2 = small_loss_indices(loss_2, keep, mode)
    # each network learns from the samples its peer trusts
    loss_1_update = F.cross_entropy(y1[ind_2], target[ind_2])
    loss_2_update = F.cross_entropy(y2[ind_1], target[ind_1])
    return loss_1_update, loss_2_update, ind_1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--noise-rate", type=float, default=0.4)
    parser.add_argument("--select", choices=["argsort", "kthvalue", "topk"], default="argsort")
    args = parser.parse_args()
    torch.manual_seed(0)

    n, d, k = 512, 10, 4
    centers = torch.randn(k, d) * 1.5
    clean = torch.randint(0, k, (n,))
    x = centers[clean] + torch.randn(n, d)
    flip = torch.rand(n) < args.noise_rate
    noisy = torch.where(flip, (clean + torch.randint(1, k, (n,))) % k, clean)
    print(f"actual noise rate {(noisy != clean).float().mean().item():.4f}")

    net1, net2 = mlp(d, k), mlp(d, k)
    opt1 = torch.optim.Adam(net1.parameters(), lr=2e-3)
    opt2 = torch.optim.Adam(net2.parameters(), lr=2e-3)
    rate_schedule = np.ones(args.epochs) * args.noise_rate
    rate_schedule[:3] = np.linspace(0, args.noise_rate, 3)

    bs = 64
    accs = []
    for epoch in range(args.epochs):
        pure = []
        for i in range(0, n, bs):
            xb, yb, cb = x[i : i + bs], noisy[i : i + bs], clean[i : i + bs]
            l1, l2, kept = loss_coteaching(
                net1(xb), net2(xb), yb, float(rate_schedule[epoch]), args.select
            )
            pure.append((yb[kept] == cb[kept]).float().mean())
            opt1.zero_grad()
            l1.backward()
            opt1.step()
            opt2.zero_grad()
            l2.backward()
            opt2.step()
            with torch.no_grad():
                accs.append((net1(x).argmax(1) == clean).float().mean())
        print(f"epoch {epoch}: loss1 {l1.item():.5f} loss2 {l2.item():.5f} "
              f"label precision {torch.stack(pure).mean().item():.4f}")  # fmt: skip

    curve = torch.stack(accs)
    best, where = torch.cummax(curve, dim=0)
    print(f"best clean acc {best[-1].item():.4f} first reached at step {where[-1].item()}")

    with torch.no_grad():
        pred = net1(x).argmax(1)
        confusion = torch.bincount(clean * k + pred, minlength=k * k).view(k, k)
        diag = torch.take_along_dim(confusion, torch.arange(k).unsqueeze(1), dim=1).squeeze(1)
        recall = diag.float() / confusion.sum(1).float()
        test_loss = F.cross_entropy(net1(x), clean)
    print(f"per-class recall {[round(r, 3) for r in recall.tolist()]}")
    print(f"clean loss {test_loss.item():.5f}")


if __name__ == "__main__":
    main()
