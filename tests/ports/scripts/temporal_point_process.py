"""A neural marked temporal point process in the style of RMTPP (Du et al., 2016) with the
softplus intensities of the neural Hawkes process (Mei and Eisner, 2017): a GRU reads the
variable-length event sequences (packed by pack_padded_sequence, unsorted), and after event j
each mark k has intensity lambda_k(t) = s_k softplus((w_k . h_j + a_k (t - t_j) + b_k) / s_k)
(F.softplus with beta=, threshold=; s_k learnt).
The log-likelihood sums log lambda of the observed events and subtracts the integral of the
total intensity, estimated by Monte Carlo with uniform times in each inter-event interval
(--integral trapezoid uses a fixed grid with torch.trapezoid instead). Event times are
torch.cumsum of the gaps; the mark distribution at an event is the intensities normalised
with torch.logsumexp."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def simulate(rng, n_seqs, trans, rates, max_len):
    """Sequences whose next mark depends on the last one and whose gap rate on the mark."""
    seqs, n_marks = [], len(rates)
    for _ in range(n_seqs):
        n = int(rng.integers(max_len // 2, max_len + 1))
        marks, gaps = [int(rng.integers(n_marks))], [float(rng.exponential(1.0))]
        for _ in range(n - 1):
            marks.append(int(rng.choice(n_marks, p=trans[marks[-1]])))
            gaps.append(float(rng.exponential(1.0 / rates[marks[-2]])))
        seqs.append((np.array(gaps, np.float32), np.array(marks)))
    return seqs


def pad(seqs):
    lengths = torch.tensor([len(g) for g, _ in seqs])
    gaps = torch.zeros(len(seqs), int(lengths.max()))
    marks = torch.zeros(len(seqs), int(lengths.max()), dtype=torch.long)
    for i, (g, m) in enumerate(seqs):
        gaps[i, : len(g)] = torch.from_numpy(g)
        marks[i, : len(m)] = torch.from_numpy(m)
    return gaps, marks, lengths


class NeuralTPP(nn.Module):
    def __init__(self, n_marks, beta, hidden=24, emb=8):
        super().__init__()
        self.n_marks = n_marks
        self.embed = nn.Embedding(n_marks + 1, emb, padding_idx=n_marks)  # n_marks: start
        self.rnn = nn.GRU(emb + 2, hidden, batch_first=True)
        self.proj = nn.Linear(hidden, n_marks)
        self.decay = nn.Parameter(torch.full((n_marks,), -0.1))
        self.log_scale = nn.Parameter(torch.zeros(n_marks))
        self.beta = beta

    def history(self, gaps, marks, lengths):
        """Hidden state after each event, shifted so that step j sees events before j."""
        b = gaps.shape[0]
        start = torch.full((b, 1), self.n_marks, dtype=torch.long)
        prev_marks = torch.cat([start, marks[:, :-1]], 1)
        prev_gaps = F.pad(gaps[:, :-1], (1, 0))
        feats = torch.cat(
            [self.embed(prev_marks), torch.log1p(prev_gaps).unsqueeze(-1),
             torch.cumsum(prev_gaps, 1).unsqueeze(-1) / 10.0],
            dim=-1,
        )  # fmt: skip
        packed = pack_padded_sequence(feats, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        h, _ = pad_packed_sequence(out, batch_first=True, total_length=gaps.shape[1])
        return h

    def intensity(self, h, dt):
        """lambda_k(t_j + dt) for every mark k; h (..., H), dt (...) -> (..., K)."""
        pre = self.proj(h) + self.decay * dt.unsqueeze(-1)
        scale = self.log_scale.exp()  # the neural Hawkes process's per-mark softness
        return scale * F.softplus(pre / scale, beta=self.beta, threshold=10.0)

    def forward(self, gaps, marks, lengths, n_samples, integral):
        h = self.history(gaps, marks, lengths)
        mask = torch.arange(gaps.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
        lam = self.intensity(h, gaps)  # intensities at the observed event times
        log_lam = torch.log(lam + 1e-8)
        event_ll = log_lam.gather(-1, marks.unsqueeze(-1)).squeeze(-1)
        mark_logp = event_ll - torch.logsumexp(log_lam, dim=-1)
        if integral == "mc":
            u = torch.rand(*gaps.shape, n_samples)
            t = u * gaps.unsqueeze(-1)
            total = self.intensity(h.unsqueeze(2).expand(-1, -1, n_samples, -1), t).sum(-1)
            compensator = total.mean(-1) * gaps
        else:
            grid = torch.linspace(0, 1, n_samples) * gaps.unsqueeze(-1)
            total = self.intensity(h.unsqueeze(2).expand(-1, -1, n_samples, -1), grid).sum(-1)
            compensator = torch.trapezoid(total, grid, dim=-1)
        ll = ((event_ll - compensator) * mask).sum()
        n_events = mask.sum()
        return -ll / n_events, (mark_logp * mask).sum() / n_events, h


def main():
    parser = argparse.ArgumentParser(description="neural temporal point process")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--beta", type=float, default=2.0)
    parser.add_argument("--integral", choices=["mc", "trapezoid"], default="mc")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n_marks = 3
    trans = rng.dirichlet(np.ones(n_marks) * 0.5, n_marks)
    rates = np.array([0.5, 1.0, 3.0])
    train = simulate(rng, 64, trans, rates, 16)
    test = pad(simulate(rng, 32, trans, rates, 16))

    model = NeuralTPP(n_marks, args.beta)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)

    for epoch in range(args.epochs):
        model.train()
        total, n = 0.0, 0
        for i in range(0, len(train), args.batch_size):
            gaps, marks, lengths = pad(train[i : i + args.batch_size])
            nll, _, _ = model(gaps, marks, lengths, args.samples, args.integral)
            optimizer.zero_grad()
            nll.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            total += nll.item()
            n += 1
        scheduler.step()
        model.eval()
        with torch.no_grad():
            gaps, marks, lengths = test
            nll, mark_ll, h = model(gaps, marks, lengths, 32, args.integral)
            # expected next gap under the mark-summed intensity, by the trapezoid rule
            grid = torch.linspace(0, 6, 61)
            lam = model.intensity(h[:, :1].unsqueeze(2).expand(-1, -1, 61, -1), grid).sum(-1)
            survival = torch.exp(-torch.cumulative_trapezoid(lam, grid, dim=-1))
            mean_gap = torch.trapezoid(F.pad(survival, (1, 0), value=1.0), grid, dim=-1).mean()
        print(
            f"epoch {epoch} train loss {total / n:.6f} test loss {nll.item():.6f} "
            f"mark loss {-mark_ll.item():.6f} mean gap {mean_gap.item():.4f}"
        )


if __name__ == "__main__":
    main()
