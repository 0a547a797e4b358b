"""Autoformer (Wu et al., 2021) for multivariate forecasting, the parts that differ from a
Transformer: series decomposition by a moving average (AvgPool1d over replicate-padded
series), and Auto-Correlation attention: period scores from torch.fft.rfft / irfft of
queries times conjugate keys, the top-k delays by torch.topk on their batch mean, values
aggregated by torch.roll per delay (training) and by torch.gather on a doubled series with
delay indices (inference), softmax weights over the chosen delays. Trained with AdamW and
a linear-warmup LambdaLR on sines with trends; MSE and MAE on a held-out window."""

import argparse
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=3)
args = p.parse_args()
torch.manual_seed(0)

L_IN, L_OUT, N_VARS = 48, 12, 3


class MovingAvg(nn.Module):
    def __init__(self, kernel):
        super().__init__()
        self.kernel = kernel
        self.pool = nn.AvgPool1d(kernel, stride=1)

    def forward(self, x):  # (b, l, d)
        front = x[:, :1].repeat(1, (self.kernel - 1) // 2, 1)
        end = x[:, -1:].repeat(1, (self.kernel - 1) // 2, 1)
        x = torch.cat([front, x, end], 1)
        return self.pool(x.permute(0, 2, 1)).permute(0, 2, 1)


class Decomp(nn.Module):
    def __init__(self, kernel=7):
        super().__init__()
        self.avg = MovingAvg(kernel)

    def forward(self, x):
        trend = self.avg(x)
        return x - trend, trend


class AutoCorrelation(nn.Module):
    def __init__(self, d_model, heads=2, factor=1):
        super().__init__()
        self.heads, self.factor = heads, factor
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.o = nn.Linear(d_model, d_model)

    def delays_train(self, values, corr):
        b, h, c, length = values.shape
        top_k = int(self.factor * math.log(length))
        mean = corr.mean(1).mean(1)  # (b, length)
        index = torch.topk(mean.mean(0), top_k, dim=-1)[1]
        weights = torch.stack([mean[:, index[i]] for i in range(top_k)], -1)
        weights = torch.softmax(weights, -1)
        agg = torch.zeros_like(values)
        for i in range(top_k):
            pattern = torch.roll(values, -int(index[i]), -1)
            agg = agg + pattern * weights[:, i].view(b, 1, 1, 1)
        return agg

    def delays_infer(self, values, corr):
        b, h, c, length = values.shape
        top_k = int(self.factor * math.log(length))
        init = torch.arange(length).view(1, 1, 1, -1).repeat(b, h, c, 1)
        mean = corr.mean(1).mean(1)
        weights, delay = torch.topk(mean, top_k, dim=-1)
        weights = torch.softmax(weights, -1)
        doubled = values.repeat(1, 1, 1, 2)
        agg = torch.zeros_like(values)
        for i in range(top_k):
            idx = init + delay[:, i].view(b, 1, 1, 1)
            agg = agg + torch.gather(doubled, -1, idx) * weights[:, i].view(b, 1, 1, 1)
        return agg

    def forward(self, x):
        b, length, d = x.shape
        h = self.heads
        q = self.q(x).view(b, length, h, -1).permute(0, 2, 3, 1)  # (b, h, c, l)
        k = self.k(x).view(b, length, h, -1).permute(0, 2, 3, 1)
        v = self.v(x).view(b, length, h, -1).permute(0, 2, 3, 1)
        qf, kf = torch.fft.rfft(q, dim=-1), torch.fft.rfft(k, dim=-1)
        corr = torch.fft.irfft(qf * torch.conj(kf), n=length, dim=-1)
        agg = self.delays_train(v, corr) if self.training else self.delays_infer(v, corr)
        return self.o(agg.permute(0, 3, 1, 2).reshape(b, length, d))


class Layer(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.attn = AutoCorrelation(d_model)
        self.ff = nn.Sequential(nn.Conv1d(d_model, 2 * d_model, 1), nn.GELU(),
                                nn.Conv1d(2 * d_model, d_model, 1))  # fmt: skip
        self.d1, self.d2 = Decomp(), Decomp()

    def forward(self, x):
        x, _ = self.d1(x + self.attn(x))
        y = self.ff(x.transpose(1, 2)).transpose(1, 2)
        x, trend = self.d2(x + y)
        return x, trend


class Model(nn.Module):
    def __init__(self, d_model=16):
        super().__init__()
        self.embed = nn.Conv1d(N_VARS, d_model, 3, padding=1, padding_mode="circular")
        self.layers = nn.ModuleList([Layer(d_model), Layer(d_model)])
        self.decomp = Decomp()
        self.season_head = nn.Linear(L_IN, L_OUT)
        self.trend_head = nn.Linear(L_IN, L_OUT)
        self.proj = nn.Linear(d_model, N_VARS)

    def forward(self, x):  # (b, L_IN, N_VARS)
        season, trend = self.decomp(x)
        h = self.embed(season.transpose(1, 2)).transpose(1, 2)
        for layer in self.layers:
            h, _ = layer(h)
        s = self.proj(self.season_head(h.transpose(1, 2)).transpose(1, 2))
        t = self.trend_head(trend.transpose(1, 2)).transpose(1, 2)
        return s + t


def make_series(n):
    t = torch.arange(L_IN + L_OUT).float()
    periods = torch.tensor([6.0, 8.0, 12.0])
    phase = torch.rand(n, 1, N_VARS) * 2 * math.pi
    slope = torch.randn(n, 1, N_VARS) * 0.02
    s = torch.sin(2 * math.pi * t[None, :, None] / periods + phase) + slope * t[None, :, None]
    s = s + 0.1 * torch.randn(n, L_IN + L_OUT, N_VARS)
    return s[:, :L_IN], s[:, L_IN:]


xtr, ytr = make_series(64)
xte, yte = make_series(16)
model = Model()
opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 5))
for epoch in range(args.epochs):
    model.train()
    total = 0.0
    for i in range(0, 64, 16):
        loss = F.mse_loss(model(xtr[i : i + 16]), ytr[i : i + 16])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item()
    model.eval()
    with torch.no_grad():
        pred = model(xte)
        mse, mae = F.mse_loss(pred, yte).item(), F.l1_loss(pred, yte).item()
    print(f"epoch {epoch} train loss {total / 4:.6f} test loss {mse:.6f} mae loss {mae:.6f}")
