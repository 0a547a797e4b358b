"""N-BEATS (Oreshkin et al., 2020) in the manner of the authors' reference code: fully
connected blocks that emit expansion coefficients theta, a generic basis (a learnt linear
map) or interpretable trend and seasonality bases (fixed polynomial and Fourier matrices held
as non-persistent buffers, applied with torch.einsum), doubly residual stacking (each block
subtracts its backcast from the input, its forecast adds to the sum, both times an input
mask), the reference's divide_no_nan (NaN and inf zeroed through boolean-mask assignment),
sMAPE / MASE / MAPE losses, windows drawn from a synthetic seasonal panel through a
TensorDataset and DataLoader, Adam with gradient clipping and a MultiStepLR schedule."""

import argparse

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


def divide_no_nan(a, b):
    """a / b with 0/0 and x/0 set to zero, as in the reference implementation."""
    result = a / b
    result[result != result] = 0.0
    result[result == np.inf] = 0.0
    return result


def smape_2_loss(forecast, target, mask):
    return 200 * torch.mean(
        divide_no_nan(torch.abs(forecast - target), torch.abs(forecast.data) + torch.abs(target))
        * mask
    )


def mape_loss(forecast, target, mask):
    weights = divide_no_nan(mask, target)
    return torch.mean(torch.abs((forecast - target) * weights))


def mase_loss(insample, freq, forecast, target, mask):
    masep = torch.mean(torch.abs(insample[:, freq:] - insample[:, :-freq]), dim=1)
    masked_masep_inv = divide_no_nan(mask, masep[:, None])
    return torch.mean(torch.abs(target - forecast) * masked_masep_inv)


class NBeatsBlock(nn.Module):
    def __init__(self, input_size, theta_size, basis_function, layers, layer_size):
        super().__init__()
        self.layers = nn.ModuleList(
            [nn.Linear(in_features=input_size, out_features=layer_size)]
            + [nn.Linear(in_features=layer_size, out_features=layer_size) for _ in range(layers - 1)]
        )  # fmt: skip
        self.basis_parameters = nn.Linear(in_features=layer_size, out_features=theta_size)
        self.basis_function = basis_function

    def forward(self, x):
        block_input = x
        for layer in self.layers:
            block_input = torch.relu(layer(block_input))
        basis_parameters = self.basis_parameters(block_input)
        return self.basis_function(basis_parameters)


class NBeats(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.blocks = blocks

    def forward(self, x, input_mask):
        residuals = x.flip(dims=(1,))
        input_mask = input_mask.flip(dims=(1,))
        forecast = x[:, -1:]
        for block in self.blocks:
            backcast, block_forecast = block(residuals)
            residuals = (residuals - backcast) * input_mask
            forecast = forecast + block_forecast
        return forecast


class GenericBasis(nn.Module):
    def __init__(self, backcast_size, forecast_size):
        super().__init__()
        self.backcast_size = backcast_size
        self.forecast_size = forecast_size

    def forward(self, theta):
        return theta[:, : self.backcast_size], theta[:, -self.forecast_size :]


class TrendBasis(nn.Module):
    """Polynomial trend: theta @ [1, t, t^2, ...] over normalised time."""

    def __init__(self, degree_of_polynomial, backcast_size, forecast_size):
        super().__init__()
        self.polynomial_size = degree_of_polynomial + 1
        backcast_time = np.concatenate(
            [np.power(np.arange(backcast_size, dtype=np.float64) / backcast_size, i)[None, :]
             for i in range(self.polynomial_size)]
        )  # fmt: skip
        forecast_time = np.concatenate(
            [np.power(np.arange(forecast_size, dtype=np.float64) / forecast_size, i)[None, :]
             for i in range(self.polynomial_size)]
        )  # fmt: skip
        self.register_buffer(
            "backcast_time", torch.tensor(backcast_time, dtype=torch.float32), persistent=False
        )
        self.register_buffer(
            "forecast_time", torch.tensor(forecast_time, dtype=torch.float32), persistent=False
        )

    def forward(self, theta):
        backcast = torch.einsum("bp,pt->bt", theta[:, self.polynomial_size :], self.backcast_time)
        forecast = torch.einsum("bp,pt->bt", theta[:, : self.polynomial_size], self.forecast_time)
        return backcast, forecast


class SeasonalityBasis(nn.Module):
    """Fourier seasonality: theta @ [cos(2 pi k t), sin(2 pi k t)] for harmonics k."""

    def __init__(self, harmonics, backcast_size, forecast_size):
        super().__init__()
        frequency = np.append(
            np.zeros(1, dtype=np.float32),
            np.arange(harmonics, harmonics / 2 * forecast_size, dtype=np.float32) / harmonics,
        )[None, :]
        backcast_grid = (
            -2 * np.pi * (np.arange(backcast_size, dtype=np.float32)[:, None] / forecast_size)
            * frequency
        )  # fmt: skip
        forecast_grid = (
            2 * np.pi * (np.arange(forecast_size, dtype=np.float32)[:, None] / forecast_size)
            * frequency
        )  # fmt: skip
        self.register_buffer("backcast_cos_template",
                             torch.tensor(np.transpose(np.cos(backcast_grid)), dtype=torch.float32),
                             persistent=False)  # fmt: skip
        self.register_buffer("backcast_sin_template",
                             torch.tensor(np.transpose(np.sin(backcast_grid)), dtype=torch.float32),
                             persistent=False)  # fmt: skip
        self.register_buffer("forecast_cos_template",
                             torch.tensor(np.transpose(np.cos(forecast_grid)), dtype=torch.float32),
                             persistent=False)  # fmt: skip
        self.register_buffer("forecast_sin_template",
                             torch.tensor(np.transpose(np.sin(forecast_grid)), dtype=torch.float32),
                             persistent=False)  # fmt: skip

    def forward(self, theta):
        params_per_harmonic = theta.shape[1] // 4
        backcast_harmonics_cos = torch.einsum(
            "bp,pt->bt", theta[:, 2 * params_per_harmonic : 3 * params_per_harmonic],
            self.backcast_cos_template,
        )  # fmt: skip
        backcast_harmonics_sin = torch.einsum(
            "bp,pt->bt", theta[:, 3 * params_per_harmonic :], self.backcast_sin_template
        )
        backcast = backcast_harmonics_sin + backcast_harmonics_cos
        forecast_harmonics_cos = torch.einsum(
            "bp,pt->bt", theta[:, :params_per_harmonic], self.forecast_cos_template
        )
        forecast_harmonics_sin = torch.einsum(
            "bp,pt->bt", theta[:, params_per_harmonic : 2 * params_per_harmonic],
            self.forecast_sin_template,
        )  # fmt: skip
        forecast = forecast_harmonics_sin + forecast_harmonics_cos
        return backcast, forecast


def generic(input_size, output_size, stacks, layers, layer_size):
    return NBeats(
        nn.ModuleList(
            [NBeatsBlock(input_size=input_size, theta_size=input_size + output_size,
                         basis_function=GenericBasis(input_size, output_size),
                         layers=layers, layer_size=layer_size)
             for _ in range(stacks)]
        )
    )  # fmt: skip


def interpretable(input_size, output_size, trend_blocks, trend_layers, trend_layer_size,
                  degree_of_polynomial, seasonality_blocks, seasonality_layers,
                  seasonality_layer_size, num_of_harmonics):  # fmt: skip
    trend_block = NBeatsBlock(
        input_size=input_size, theta_size=2 * (degree_of_polynomial + 1),
        basis_function=TrendBasis(degree_of_polynomial, input_size, output_size),
        layers=trend_layers, layer_size=trend_layer_size,
    )  # fmt: skip
    seasonality_block = NBeatsBlock(
        input_size=input_size,
        theta_size=4 * int(np.ceil(num_of_harmonics / 2 * output_size) - (num_of_harmonics - 1)),
        basis_function=SeasonalityBasis(num_of_harmonics, input_size, output_size),
        layers=seasonality_layers, layer_size=seasonality_layer_size,
    )  # fmt: skip
    # weights shared across the blocks of a stack, as in the paper's interpretable model
    return NBeats(
        nn.ModuleList([trend_block for _ in range(trend_blocks)]
                      + [seasonality_block for _ in range(seasonality_blocks)])
    )  # fmt: skip


def make_panel(rng, n_series, length, season):
    t = np.arange(length, dtype=np.float64)
    level = rng.uniform(5.0, 10.0, (n_series, 1))
    slope = rng.uniform(-0.02, 0.05, (n_series, 1))
    amp = rng.uniform(0.5, 2.0, (n_series, 1))
    phase = rng.uniform(0, 2 * np.pi, (n_series, 1))
    noise = 0.1 * rng.standard_normal((n_series, length))
    return (level + slope * t + amp * np.sin(2 * np.pi * t / season + phase) + noise).astype(
        np.float32
    )


def sample_windows(rng, panel, insample_size, outsample_size, n):
    """Reference-style sampler: a cut point per window, history left-padded with a zero mask."""
    x = np.zeros((n, insample_size), np.float32)
    x_mask = np.zeros((n, insample_size), np.float32)
    y = np.zeros((n, outsample_size), np.float32)
    y_mask = np.zeros((n, outsample_size), np.float32)
    series = rng.integers(0, panel.shape[0], n)
    for i, s in enumerate(series):
        ts = panel[s]
        cut = rng.integers(insample_size // 2, len(ts) - 1)
        window = ts[max(0, cut - insample_size) : cut]
        x[i, -len(window) :] = window
        x_mask[i, -len(window) :] = 1.0
        target = ts[cut : min(len(ts), cut + outsample_size)]
        y[i, : len(target)] = target
        y_mask[i, : len(target)] = 1.0
    return x, x_mask, y, y_mask


def main():
    parser = argparse.ArgumentParser(description="N-BEATS on a synthetic seasonal panel")
    parser.add_argument("--model", choices=["generic", "interpretable"], default="generic")
    parser.add_argument("--loss", choices=["smape", "mase", "mape"], default="smape")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--horizon", type=int, default=6)
    parser.add_argument("--lookback", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    season = 12
    horizon = args.horizon
    insample = args.lookback * horizon
    panel = make_panel(rng, 16, 96, season)
    train, test = panel[:, :-horizon], panel[:, -horizon:]

    if args.model == "generic":
        model = generic(insample, horizon, stacks=4, layers=3, layer_size=64)
    else:
        model = interpretable(insample, horizon, trend_blocks=2, trend_layers=3,
                              trend_layer_size=64, degree_of_polynomial=2, seasonality_blocks=2,
                              seasonality_layers=3, seasonality_layer_size=64,
                              num_of_harmonics=1)  # fmt: skip
    n_params = sum(p.numel() for p in model.parameters())
    # shared blocks appear once in parameters() but under every name in the state dict
    print(f"parameters {n_params} state_dict entries {len(model.state_dict())}")

    x, x_mask, y, y_mask = sample_windows(rng, train, insample, horizon, 256)
    dataset = TensorDataset(*(torch.from_numpy(a) for a in (x, x_mask, y, y_mask)))
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, drop_last=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=[2 * len(loader), 3 * len(loader)], gamma=0.5
    )

    def training_loss(forecast, xb, yb, yb_mask):
        if args.loss == "smape":
            return smape_2_loss(forecast, yb, yb_mask)
        if args.loss == "mape":
            return mape_loss(forecast, yb, yb_mask)
        return mase_loss(xb, season // 2, forecast, yb, yb_mask)

    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for xb, xb_mask, yb, yb_mask in loader:
            optimizer.zero_grad()
            forecast = model(xb, xb_mask)
            loss = training_loss(forecast, xb, yb, yb_mask)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            total += loss.item()
        print(f"epoch {epoch} loss {total / len(loader):.5f} lr {scheduler.get_last_lr()[0]:.2e}")

    model.eval()
    with torch.no_grad():
        history = torch.from_numpy(train[:, -insample:])
        forecast = model(history, torch.ones_like(history))
        target = torch.from_numpy(test)
        ones = torch.ones_like(target)
        smape = smape_2_loss(forecast, target, ones)
        mase = mase_loss(torch.from_numpy(train), season, forecast, target, ones)
        naive = history[:, -season:][:, :horizon]
        naive_smape = smape_2_loss(naive, target, ones)
    print(f"test smape loss {smape.item():.4f} mase loss {mase.item():.4f} "
          f"seasonal naive smape loss {naive_smape.item():.4f}")  # fmt: skip

    # the masks matter: a zero-padded short history with and without its mask
    short = history.clone()
    short[:, : insample // 2] = 0.0
    mask = torch.ones_like(short)
    mask[:, : insample // 2] = 0.0
    with torch.no_grad():
        masked = model(short, mask)
        unmasked = model(short, torch.ones_like(short))
    print(f"masked history loss {smape_2_loss(masked, target, ones).item():.4f} "
          f"unmasked loss {smape_2_loss(unmasked, target, ones).item():.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
