"""Deep CCA (Andrew et al., 2013) on two synthetic views of a shared latent: two MLPs are
trained to maximise the total canonical correlation of their outputs. The regularised
covariances are whitened by torch.linalg.eigh (inverse square roots) or by
torch.linalg.cholesky_ex and torch.linalg.solve_triangular; the correlations are the
singular values of the whitened cross-covariance (torch.linalg.svdvals for all of them, or
the square roots of torch.linalg.eigvalsh(T^T T) for the top k). With --objective mi the
networks maximise the Gaussian mutual information instead, from torch.linalg.slogdet of the
joint covariance and of torch.block_diag of the two marginal ones. Test correlations come
from the two leading linear CCA directions fitted by torch.linalg.svd on the training
outputs."""

import argparse

import torch
import torch.nn as nn


def make_views(n, latent=3):
    z = torch.randn(n, latent)
    a1, a2 = torch.randn(latent, 8), torch.randn(latent, 10)
    v1 = torch.tanh(z @ a1) + 0.3 * torch.randn(n, 8)
    v2 = torch.sin(z @ a2) + 0.3 * torch.randn(n, 10)
    return v1, v2


def covariances(h1, h2, r=1e-3):
    m = h1.shape[0]
    h1, h2 = h1 - h1.mean(0), h2 - h2.mean(0)
    s11 = h1.T @ h1 / (m - 1) + r * torch.eye(h1.shape[1])
    s22 = h2.T @ h2 / (m - 1) + r * torch.eye(h2.shape[1])
    s12 = h1.T @ h2 / (m - 1)
    return s11, s22, s12


def inv_sqrt(s):
    evals, evecs = torch.linalg.eigh(s)
    return evecs @ torch.diag(evals.clamp(min=1e-9).rsqrt()) @ evecs.T


def whitened(s11, s22, s12, method):
    if method == "eigh":
        return inv_sqrt(s11) @ s12 @ inv_sqrt(s22)
    l1, info1 = torch.linalg.cholesky_ex(s11)
    l2, info2 = torch.linalg.cholesky_ex(s22)
    if int(info1) or int(info2):
        raise RuntimeError("covariance is not positive definite")
    t = torch.linalg.solve_triangular(l1, s12, upper=False)
    return torch.linalg.solve_triangular(l2, t.T, upper=False).T


def cca_loss(h1, h2, method, top_k):
    s11, s22, s12 = covariances(h1, h2)
    if method == "mi":
        joint = torch.cat([torch.cat([s11, s12], 1), torch.cat([s12.T, s22], 1)], 0)
        _, logdet_joint = torch.linalg.slogdet(joint)
        _, logdet_marg = torch.linalg.slogdet(torch.block_diag(s11, s22))
        return 0.5 * (logdet_joint - logdet_marg)
    t = whitened(s11, s22, s12, method)
    if top_k:
        evals = torch.linalg.eigvalsh(t.T @ t)
        return -evals[-top_k:].clamp(min=1e-9).sqrt().sum()
    return -torch.linalg.svdvals(t).sum()


def mlp(n_in, n_out):
    return nn.Sequential(nn.Linear(n_in, 32), nn.Sigmoid(), nn.Linear(32, 32), nn.Sigmoid(),
                         nn.Linear(32, n_out))  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description="Deep CCA")
    parser.add_argument("--objective", default="eigh", choices=["eigh", "cholesky", "mi"])
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()

    v1, v2 = make_views(768)
    v1, t1, v2, t2 = v1[:512], v1[512:], v2[:512], v2[512:]
    f1, f2 = mlp(8, 4), mlp(10, 4)
    opt = torch.optim.RMSprop(list(f1.parameters()) + list(f2.parameters()), lr=2e-3)

    for epoch in range(args.epochs):
        total = 0.0
        for i in range(0, len(v1), args.batch):
            loss = cca_loss(f1(v1[i : i + args.batch]), f2(v2[i : i + args.batch]),
                            args.objective, args.top_k)  # fmt: skip
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        with torch.no_grad():
            h1, h2 = f1(v1), f2(v2)
            s11, s22, s12 = covariances(h1, h2)
            w1, w2 = inv_sqrt(s11), inv_sqrt(s22)
            u, s, vh = torch.linalg.svd(w1 @ s12 @ w2)
            # the two leading canonical pairs (the trailing ones are nearly degenerate)
            a, b = w1 @ u[:, :2], w2 @ vh[:2].T
            p1, p2 = (f1(t1) - h1.mean(0)) @ a, (f2(t2) - h2.mean(0)) @ b
            p1, p2 = p1 - p1.mean(0), p2 - p2.mean(0)
            corr = (p1 * p2).sum(0) / (p1.norm(dim=0) * p2.norm(dim=0))
        print(
            f"epoch {epoch} loss {total / (len(v1) // args.batch):.6f} "
            f"test loss {-corr.sum().item():.6f} train corr {s.sum().item():.4f}"
        )


if __name__ == "__main__":
    main()
