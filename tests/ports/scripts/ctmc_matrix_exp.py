"""A continuous-time Markov model of sequence evolution (the GTR substitution model of
phylogenetics) fitted by maximum likelihood: exchangeabilities and stationary frequencies from
softplus / softmax parameters, the rate matrix Q built with torch.diag_embed and its rows made
to sum to zero, normalised to one expected substitution per unit time, and transition
probabilities P(t) = torch.linalg.matrix_exp(Q t) for a batch of branch lengths (broadcast
over a leading dimension), the log-likelihood of observed (from, to, t) pairs through
torch.gather; a second part learns a rotation through the matrix exponential of a
skew-symmetric matrix (expRNN's parametrisation; --param cayley uses the Cayley map through
torch.linalg.solve instead) to align two point clouds. Adam on both."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


class GTR(nn.Module):
    def __init__(self, n_states=4):
        super().__init__()
        self.n = n_states
        n_pairs = n_states * (n_states - 1) // 2
        self.rates = nn.Parameter(torch.zeros(n_pairs))
        self.freq_logits = nn.Parameter(torch.zeros(n_states))
        self.register_buffer("iu", torch.triu_indices(n_states, n_states, offset=1))

    def rate_matrix(self):
        pi = torch.softmax(self.freq_logits, dim=0)
        s = torch.zeros(self.n, self.n, dtype=pi.dtype)
        s = s.index_put((self.iu[0], self.iu[1]), F.softplus(self.rates))
        s = s + s.T
        q = s * pi.unsqueeze(0)
        q = q - torch.diag_embed(q.sum(dim=1))
        mu = -(pi * torch.diagonal(q)).sum()
        return q / mu, pi

    def forward(self, src, dst, t):
        q, pi = self.rate_matrix()
        p = torch.linalg.matrix_exp(q.unsqueeze(0) * t.view(-1, 1, 1))
        rows = p[torch.arange(len(src)), src]
        lik = rows.gather(1, dst.unsqueeze(1)).squeeze(1)
        return -(torch.log(pi[src]) + torch.log(lik.clamp_min(1e-12))).mean()


def simulate(n, true_q, true_pi):
    t = 0.05 + torch.rand(n) * 1.5
    src = torch.multinomial(true_pi, n, replacement=True)
    p = torch.linalg.matrix_exp(true_q.unsqueeze(0) * t.view(-1, 1, 1))
    u = torch.rand(n, 1)
    dst = (p[torch.arange(n), src].cumsum(1) < u).sum(1).clamp(max=3)
    return src, dst, t


def skew(v, n):
    a = torch.zeros(n, n)
    iu = torch.triu_indices(n, n, offset=1)
    a = a.index_put((iu[0], iu[1]), v)
    return a - a.T


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--param", choices=["expm", "cayley"], default="expm")
    args = parser.parse_args()
    torch.manual_seed(0)

    with torch.no_grad():
        true = GTR()
        true.rates.copy_(torch.tensor([0.5, 2.0, 0.3, 0.4, 1.8, 0.6]))
        true.freq_logits.copy_(torch.tensor([0.2, -0.1, 0.3, -0.4]))
        tq, tpi = true.rate_matrix()
        src, dst, t = simulate(512, tq, tpi)

    model = GTR()
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for epoch in range(args.epochs):
        for i in range(0, 512, 128):
            loss = model(src[i : i + 128], dst[i : i + 128], t[i : i + 128])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            full = model(src, dst, t)
            q, _ = model.rate_matrix()
            err = (q - tq).abs().max()
        print(f"epoch {epoch}: gtr loss {full.item():.6f} |Q - Q*|max {err.item():.4f}")

    # a rotation aligning two point clouds, parametrised by a skew-symmetric generator
    n = 3
    points = torch.randn(64, n)
    with torch.no_grad():
        target_rot = torch.linalg.matrix_exp(skew(torch.tensor([0.7, -0.4, 0.9]), n))
    target = points @ target_rot.T + 0.01 * torch.randn(64, n)
    gen = nn.Parameter(torch.zeros(n * (n - 1) // 2))
    opt = torch.optim.Adam([gen], lr=0.05)
    eye = torch.eye(n)
    for step in range(30):
        a = skew(gen, n)
        if args.param == "expm":
            rot = torch.linalg.matrix_exp(a)
        else:
            rot = torch.linalg.solve(eye - 0.5 * a, eye + 0.5 * a)
        loss = F.mse_loss(points @ rot.T, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 5 == 4:
            ortho = (rot.T @ rot - eye).abs().max()
            print(
                f"step {step}: rotation loss {loss.item():.6f} det {torch.linalg.det(rot).item():.4f} ortho {ortho.item():.1e}"
            )


if __name__ == "__main__":
    main()
