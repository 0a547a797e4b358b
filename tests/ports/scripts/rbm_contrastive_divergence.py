"""A restricted Boltzmann machine trained by contrastive divergence (Hinton, 2002), in the style
of the public PyTorch RBM examples: binary visible and hidden units, Gibbs sampling by
`F.relu(torch.sign(p - torch.rand(p.size())))`, and the CD-k gradient obtained by
backpropagating the difference of free energies (F.softplus of the hidden pre-activations,
torch.addmm). With --persistent the negative chain carries over between batches (PCD,
Tieleman 2008). Evaluation reports the reconstruction cross entropy (torch.xlogy), the mean
free-energy gap, a log-likelihood from torch.distributions.Bernoulli, and an exact
log-partition function over all 2^8 hidden states (torch.cartesian_prod, torch.logsumexp)."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


class RBM(nn.Module):
    def __init__(self, n_vis=36, n_hin=8, k=2):
        super().__init__()
        self.W = nn.Parameter(torch.randn(n_hin, n_vis) * 1e-2)
        self.v_bias = nn.Parameter(torch.zeros(n_vis))
        self.h_bias = nn.Parameter(torch.zeros(n_hin))
        self.k = k

    def sample_from_p(self, p):
        return F.relu(torch.sign(p - torch.rand(p.size())))

    def v_to_h(self, v):
        p_h = torch.sigmoid(F.linear(v, self.W, self.h_bias))
        return p_h, self.sample_from_p(p_h)

    def h_to_v(self, h):
        p_v = torch.sigmoid(F.linear(h, self.W.t(), self.v_bias))
        return p_v, self.sample_from_p(p_v)

    def forward(self, v, chain=None):
        h_ = self.v_to_h(v if chain is None else chain)[1]
        for _ in range(self.k):
            p_v, v_ = self.h_to_v(h_)
            p_h, h_ = self.v_to_h(v_)
        return v, v_, p_v

    def free_energy(self, v):
        vbias_term = v.mv(self.v_bias)
        wx_b = torch.addmm(self.h_bias, v, self.W.t())
        hidden_term = F.softplus(wx_b).sum(dim=1)
        return (-hidden_term - vbias_term).mean()

    def log_partition(self):
        # exact over hidden states: log Z = logsumexp_h [c.h + sum_j softplus(b_j + (W^T h)_j)]
        states = torch.cartesian_prod(*[torch.tensor([0.0, 1.0])] * self.W.shape[0])
        return torch.logsumexp(
            states.mv(self.h_bias) + F.softplus(states @ self.W + self.v_bias).sum(1), 0
        )


def bars_and_stripes(n, side=6):
    # each image: a random subset of rows (or columns) switched on, with 5% pixel flips
    rows = (torch.rand(n, side) < 0.5).float()
    vertical = torch.rand(n) < 0.5
    img = rows[:, :, None].expand(n, side, side).clone()
    img[vertical] = img[vertical].transpose(1, 2)
    flip = (torch.rand(n, side, side) < 0.05).float()
    return (img + flip - 2 * img * flip).view(n, -1)


def main():
    parser = argparse.ArgumentParser(description="RBM with contrastive divergence")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--persistent", action="store_true")
    args = parser.parse_args()

    data = bars_and_stripes(256)
    test = bars_and_stripes(64)
    rbm = RBM(k=args.k)
    opt = torch.optim.SGD(rbm.parameters(), lr=0.5, momentum=0.5, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.7)
    chain = None
    for epoch in range(args.epochs):
        losses = []
        for i in range(0, len(data), args.batch):
            v = data[i : i + args.batch]
            if args.persistent and chain is not None and len(chain) == len(v):
                v, v1, _ = rbm(v, chain)
            else:
                v, v1, _ = rbm(v)
            chain = v1.detach()
            loss = rbm.free_energy(v) - rbm.free_energy(v1.detach())
            losses.append(loss.item())
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        with torch.no_grad():
            p_h = torch.sigmoid(F.linear(test, rbm.W, rbm.h_bias))
            p_v = torch.sigmoid(F.linear(p_h, rbm.W.t(), rbm.v_bias)).clamp(1e-6, 1 - 1e-6)
            recon = -(torch.xlogy(test, p_v) + torch.xlogy(1 - test, 1 - p_v)).sum(1).mean()
            bern = torch.distributions.Bernoulli(probs=p_v).log_prob(test).sum(1).mean()
            fe = test.shape[0] * rbm.free_energy(test)
            nll = fe / test.shape[0] + rbm.log_partition()
        print(
            f"epoch {epoch} cd loss {sum(losses) / len(losses):.6f} "
            f"recon loss {recon.item():.6f} bernoulli loss {-bern.item():.6f} "
            f"nll loss {nll.item():.6f}"
        )


if __name__ == "__main__":
    main()
