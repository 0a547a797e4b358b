"""DeepAR (Salinas et al., 2020) in the manner of the public PyTorch ports: an autoregressive
two-layer nn.LSTM fed the previous (scaled) value, time covariates and a series embedding,
whose output layer gives the parameters of a torch.distributions likelihood
(NegativeBinomial(total_count=1/alpha, logits=log(mu * alpha)) for counts, or a StudentT
with df = 2 + softplus rescaled by a TransformedDistribution with an AffineTransform, as
pytorch-forecasting does), mean scaling by 1 + the context average, the negative log_prob as the
loss over context and prediction ranges, the forget-gate bias set to one through the LSTM's
_all_weights, and a forecast by ancestral sampling: the network is unrolled one step at a
time from its (h, c) state, each sample fed back as the next input, with uniforms from a
seeded torch.Generator turned into counts by the inverse CDF (log_prob over a grid of counts,
cumsum, torch.searchsorted). Sample paths are scored by quantile (rho) loss from
torch.quantile and by the normalised deviation."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import AffineTransform, NegativeBinomial, StudentT, TransformedDistribution
from torch.utils.data import DataLoader, TensorDataset


class DeepAR(nn.Module):
    def __init__(self, num_series, num_covariates, embedding_dim=4, hidden_size=32,
                 num_layers=2, likelihood="negbin"):  # fmt: skip
        super().__init__()
        self.likelihood = likelihood
        self.embedding = nn.Embedding(num_series, embedding_dim)
        self.lstm = nn.LSTM(
            input_size=1 + num_covariates + embedding_dim, hidden_size=hidden_size,
            num_layers=num_layers, bias=True, batch_first=False, dropout=0.0,
        )  # fmt: skip
        # initialise the forget gate bias to 1, as the reference ports do
        for names in self.lstm._all_weights:
            for name in filter(lambda n: "bias" in n, names):
                bias = getattr(self.lstm, name)
                n = bias.size(0)
                start, end = n // 4, n // 2
                bias.data[start:end].fill_(1.0)
        n_params = 2 if likelihood == "negbin" else 3
        self.distribution_proj = nn.Linear(hidden_size * num_layers, n_params)

    def step(self, z_prev, covariates, idx, hidden, cell):
        """One time step: inputs of shape (batch, ...) -> distribution parameters, new state."""
        onehot_embed = self.embedding(idx)
        lstm_input = torch.cat((z_prev.unsqueeze(-1), covariates, onehot_embed), dim=1)
        output, (hidden, cell) = self.lstm(lstm_input.unsqueeze(0), (hidden, cell))
        # use h from all layers, as in the public DeepAR port
        hidden_permute = hidden.permute(1, 2, 0).contiguous().view(hidden.shape[1], -1)
        return self.distribution_proj(hidden_permute), hidden, cell

    def distribution(self, params, v):
        """Parameters (unscaled network outputs) and scale v -> the predictive distribution."""
        if self.likelihood == "negbin":
            mu = F.softplus(params[..., 0]) * v
            alpha = F.softplus(params[..., 1]) / v.sqrt() + 1e-4
            return NegativeBinomial(total_count=1.0 / alpha, logits=torch.log(mu * alpha))
        df = 2.0 + F.softplus(params[..., 0])
        base = StudentT(df, params[..., 1], F.softplus(params[..., 2]) + 1e-3)
        return TransformedDistribution(base, [AffineTransform(loc=0.0, scale=v)])

    def init_state(self, batch_size):
        shape = (self.lstm.num_layers, batch_size, self.lstm.hidden_size)
        return torch.zeros(shape), torch.zeros(shape)

    def forward(self, z, covariates, idx, v):
        """Teacher forcing over the window: z (T, B), covariates (T, B, C) -> parameters."""
        hidden, cell = self.init_state(z.shape[1])
        z_prev = torch.cat([torch.zeros_like(z[:1]), z[:-1]], 0) / v
        params = []
        for t in range(z.shape[0]):
            p, hidden, cell = self.step(z_prev[t], covariates[t], idx, hidden, cell)
            params.append(p)
        return torch.stack(params, 0)

    @torch.no_grad()
    def sample(self, z_cond, covariates, idx, v, horizon, num_samples, generator, max_count):
        """Ancestral sampling: warm up on the conditioning range, then sample step by step."""
        T_cond, B = z_cond.shape
        hidden, cell = self.init_state(B)
        z_prev = torch.cat([torch.zeros_like(z_cond[:1]), z_cond[:-1]], 0) / v
        for t in range(T_cond):
            p, hidden, cell = self.step(z_prev[t], covariates[t], idx, hidden, cell)
        # one path per sample: repeat the state and inputs along the batch
        hidden = hidden.repeat_interleave(num_samples, dim=1)
        cell = cell.repeat_interleave(num_samples, dim=1)
        idx_s = idx.repeat_interleave(num_samples)
        v_s = v.repeat_interleave(num_samples)
        last = z_cond[-1].repeat_interleave(num_samples)
        grid = torch.arange(max_count + 1, dtype=torch.float32)
        paths = []
        for t in range(horizon):
            cov = covariates[T_cond + t].repeat_interleave(num_samples, dim=0)
            p, hidden, cell = self.step(last / v_s, cov, idx_s, hidden, cell)
            dist = self.distribution(p, v_s)
            if self.likelihood == "negbin":
                # inverse CDF on a grid of counts: pmf (K+1, N) -> cdf (N, K+1)
                cdf = dist.log_prob(grid[:, None]).exp().cumsum(0).t().contiguous()
                u = torch.rand(cdf.shape[0], 1, generator=generator)
                draw = torch.searchsorted(cdf, u).squeeze(1).clamp(max=max_count).float()
            else:
                # t = loc + scale * z / sqrt(chi2_df / df), chi2 by the Wilson-Hilferty cube
                base = dist.base_dist
                z1 = torch.randn(base.loc.shape, generator=generator)
                z2 = torch.randn(base.loc.shape, generator=generator)
                c = 2.0 / (9.0 * base.df)
                ratio = (1.0 - c + z2 * c.sqrt()).clamp(min=0.05) ** 3
                draw = base.loc + base.scale * z1 * ratio.rsqrt()
                for transform in dist.transforms:
                    draw = transform(draw)
            paths.append(draw)
            last = draw
        return torch.stack(paths, 0).view(horizon, B, num_samples).permute(2, 0, 1)


def make_counts(rng, num_series, length, period):
    t = np.arange(length)
    level = rng.uniform(3.0, 20.0, (num_series, 1))
    season = 1.0 + 0.6 * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi, (num_series, 1)))
    rate = level * season
    r = 5.0
    counts = rng.negative_binomial(r, r / (r + rate))
    return counts.astype(np.float32)


def time_features(length, period):
    t = np.arange(length)
    return np.stack(
        [np.sin(2 * np.pi * t / period), np.cos(2 * np.pi * t / period), t / length - 0.5], 1
    ).astype(np.float32)


def quantile_loss(samples, target, rho):
    """The rho-risk of the paper: 2 * sum(|q - y| weighted by rho) / sum(|y|)."""
    q = torch.quantile(samples, rho, dim=0)
    diff = target - q
    loss = torch.where(diff >= 0, rho * diff, (rho - 1) * diff)
    return 2 * loss.sum() / target.abs().sum()


def main():
    parser = argparse.ArgumentParser(description="DeepAR with a NegativeBinomial likelihood")
    parser.add_argument("--likelihood", choices=["negbin", "studentt"], default="negbin")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    num_series, length, period = 8, 120, 24
    cond, horizon = 24, 8
    window = cond + horizon
    counts = make_counts(rng, num_series, length, period)
    if args.likelihood == "studentt":
        counts = np.log1p(counts)  # real-valued targets for the Student t
    feats = time_features(length, period)
    train_end = length - horizon

    # training windows: (T, ...) slices of every series, scaled by 1 + context mean
    starts = rng.integers(0, train_end - window + 1, 128)
    series = rng.integers(0, num_series, 128)
    z = np.stack([counts[s, a : a + window] for s, a in zip(series, starts)])
    cov = np.stack([feats[a : a + window] for a in starts])
    v = 1.0 + z[:, :cond].mean(1)
    dataset = TensorDataset(torch.from_numpy(z), torch.from_numpy(cov),
                            torch.from_numpy(series), torch.from_numpy(v.astype(np.float32)))  # fmt: skip
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True)

    model = DeepAR(num_series, feats.shape[1], likelihood=args.likelihood)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    for epoch in range(args.epochs):
        total = 0.0
        for zb, covb, idxb, vb in loader:
            zb, covb = zb.t(), covb.permute(1, 0, 2)  # time first
            params = model(zb, covb, idxb, vb)
            dist = model.distribution(params, vb)
            loss = -dist.log_prob(zb).mean()
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            total += loss.item()
        print(f"epoch {epoch} nll loss {total / len(loader):.5f}")

    # predictive moments on the last training window
    model.eval()
    zb, covb, idxb, vb = dataset[:8]
    with torch.no_grad():
        dist = model.distribution(model(zb.t(), covb.permute(1, 0, 2), idxb, vb), vb)
        eval_nll = -dist.log_prob(zb.t()).mean()
        if isinstance(dist, TransformedDistribution):  # moments through the affine map
            v_t = dist.transforms[0].scale
            mean, variance = dist.base_dist.mean * v_t, dist.base_dist.variance * v_t**2
        else:
            mean, variance = dist.mean, dist.variance
        mean_gap = (mean - zb.t()).abs().mean()
    print(f"eval nll loss {eval_nll.item():.5f} mean abs error loss {mean_gap.item():.5f} "
          f"variance {variance.mean().item():.4f}")  # fmt: skip

    # forecast the held-out range of every series
    idx = torch.arange(num_series)
    z_cond = torch.from_numpy(counts[:, train_end - cond : train_end]).t()
    cov_all = torch.from_numpy(feats[train_end - cond :]).unsqueeze(1).expand(-1, num_series, -1)
    v_all = 1.0 + z_cond.mean(0)
    generator = torch.Generator().manual_seed(42)
    max_count = int(math.ceil(counts.max() * 2))
    samples = model.sample(z_cond, cov_all.contiguous(), idx, v_all, horizon, args.samples,
                           generator, max_count)  # fmt: skip
    target = torch.from_numpy(counts[:, train_end:]).t()
    median = samples.median(dim=0).values
    nd = (median - target).abs().sum() / target.abs().sum()
    print(f"samples {tuple(samples.shape)} rho50 loss {quantile_loss(samples, target, 0.5).item():.4f} "
          f"rho90 loss {quantile_loss(samples, target, 0.9).item():.4f} nd loss {nd.item():.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
