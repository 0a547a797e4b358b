"""Count regression of the kind ecology and epidemiology programs fit: a log-linear rate
from field embeddings whose pairwise interactions come from nn.Bilinear and from the upper
triangle of an outer product (torch.triu_indices / tril_indices), trained full-batch with
Rprop on PoissonNLLLoss (log_input=True, full=True with its Stirling term), then refit with
the rate itself as output (log_input=False) and a GaussianNLLLoss for the overdispersed
variance, evaluated by deviance with torch.xlogy and lgamma."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=60)
args = p.parse_args()
torch.manual_seed(0)

n, n_fields, vocab, dim = 256, 4, 7, 6
fields = torch.randint(0, vocab, (n, n_fields))
exposure = torch.rand(n) * 2 + 0.5
true_w = torch.randn(n_fields, vocab) * 0.4
log_rate = true_w.gather(1, fields.t()).sum(0) + 0.3 * (fields[:, 0] == fields[:, 1]).float()


def poisson_draws(lam, max_count=40):
    # Knuth's method, vectorised: the number of uniforms whose running product stays above
    # exp(-lam)
    threshold, prod = torch.exp(-lam), torch.ones_like(lam)
    k = torch.zeros_like(lam)
    for _ in range(max_count):
        prod = prod * torch.rand(lam.shape)
        k += (prod > threshold).float()
    return k


counts = poisson_draws(torch.exp(log_rate) * exposure)


class RateModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(n_fields * vocab, dim)
        self.bilinear = nn.Bilinear(dim, dim, 1)
        self.linear = nn.Linear(n_fields * dim, 1)
        iu = torch.triu_indices(n_fields, n_fields, offset=1)
        il = torch.tril_indices(n_fields, n_fields, offset=-1)
        self.register_buffer("iu", iu)
        self.register_buffer("il", il)

    def forward(self, fields, exposure):
        offsets = torch.arange(n_fields) * vocab
        e = self.emb(fields + offsets)  # (n, fields, dim)
        gram = e @ e.transpose(1, 2)  # (n, fields, fields)
        pairs = gram[:, self.iu[0], self.iu[1]].sum(1) - 0.5 * gram[:, self.il[0], self.il[1]].mean(
            1
        )
        inter = self.bilinear(e[:, 0], e[:, 1]).squeeze(1)
        return self.linear(e.flatten(1)).squeeze(1) + 0.1 * pairs + inter + exposure.log()


def deviance(counts, mu):
    return 2 * (torch.xlogy(counts, counts / mu) - (counts - mu)).sum()


model = RateModel()
opt = torch.optim.Rprop(model.parameters(), lr=0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 1.0))
loss_fn = nn.PoissonNLLLoss(log_input=True, full=True)
for step in range(args.steps):
    opt.zero_grad()
    loss = loss_fn(model(fields, exposure), counts)
    loss.backward()
    opt.step()
    if step % 15 == 14:
        with torch.no_grad():
            mu = model(fields, exposure).exp()
            lp = (counts * mu.log() - mu - torch.lgamma(counts + 1)).mean()
        print(
            f"step {step} poisson loss {loss.item():.6f} deviance {deviance(counts, mu):.4f} "
            f"loglik {lp.item():.6f}"
        )

# the rate itself as output (log_input=False), with a learned overdispersion for a Gaussian NLL
head = nn.Sequential(nn.Linear(1, 8), nn.Softplus(), nn.Linear(8, 1), nn.Softplus())
with torch.no_grad():
    base = model(fields, exposure).exp().unsqueeze(1)
opt2 = torch.optim.Rprop(head.parameters())
log_var = torch.zeros(1, requires_grad=True)
opt3 = torch.optim.Rprop([log_var], lr=0.05)
for step in range(args.steps // 2):
    opt2.zero_grad()
    opt3.zero_grad()
    rate = head(base).squeeze(1) + 1e-3
    loss = F.poisson_nll_loss(rate, counts, log_input=False, full=False, eps=1e-6)
    gl = F.gaussian_nll_loss(rate, counts, log_var.exp().expand_as(rate), full=True)
    (loss + 0.1 * gl).backward()
    opt2.step()
    opt3.step()
    if step % 10 == 9:
        print(
            f"refit {step} rate loss {loss.item():.6f} gaussian loss {gl.item():.6f} "
            f"var {log_var.exp().item():.4f}"
        )
