"""A Kolmogorov-Arnold network (Liu et al., 2024) in the manner of the popular efficient-kan:
KANLinear layers whose learnable activations are B-splines on a grid buffer (the bases computed
by the Cox-de Boor recursion with broadcast comparisons and slicing), plus a SiLU base branch, a
standalone spline scaler, spline coefficients fitted to curves by torch.linalg.lstsq, the grid
adapted to the data's quantiles (torch.sort, linspace indices, concatenate) with the coefficients
refitted so the layer's function is kept, and the L1 + entropy regularisation, trained on a
symbolic regression target with Adam or LBFGS and an ExponentialLR schedule."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class KANLinear(nn.Module):
    def __init__(self, in_features, out_features, grid_size=5, spline_order=3, scale_noise=0.1,
                 scale_base=1.0, scale_spline=1.0, enable_standalone_scale_spline=True,
                 base_activation=nn.SiLU, grid_eps=0.02, grid_range=(-1, 1)):  # fmt: skip
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.grid_size = grid_size
        self.spline_order = spline_order

        h = (grid_range[1] - grid_range[0]) / grid_size
        grid = (
            (torch.arange(-spline_order, grid_size + spline_order + 1) * h + grid_range[0])
            .expand(in_features, -1)
            .contiguous()
        )
        self.register_buffer("grid", grid)

        self.base_weight = nn.Parameter(torch.empty(out_features, in_features))
        self.spline_weight = nn.Parameter(
            torch.empty(out_features, in_features, grid_size + spline_order)
        )
        if enable_standalone_scale_spline:
            self.spline_scaler = nn.Parameter(torch.empty(out_features, in_features))

        self.scale_noise = scale_noise
        self.scale_base = scale_base
        self.scale_spline = scale_spline
        self.enable_standalone_scale_spline = enable_standalone_scale_spline
        self.base_activation = base_activation()
        self.grid_eps = grid_eps
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.kaiming_uniform_(self.base_weight, a=math.sqrt(5) * self.scale_base)
        with torch.no_grad():
            noise = (
                (torch.rand(self.grid_size + 1, self.in_features, self.out_features) - 1 / 2)
                * self.scale_noise
                / self.grid_size
            )
            self.spline_weight.data.copy_(
                (self.scale_spline if not self.enable_standalone_scale_spline else 1.0)
                * self.curve2coeff(self.grid.T[self.spline_order : -self.spline_order], noise)
            )
            if self.enable_standalone_scale_spline:
                nn.init.kaiming_uniform_(self.spline_scaler, a=math.sqrt(5) * self.scale_spline)

    def b_splines(self, x):
        """The B-spline bases of x: (batch, in_features) -> (batch, in, grid_size + order)."""
        assert x.dim() == 2 and x.size(1) == self.in_features
        grid = self.grid  # (in_features, grid_size + 2 * spline_order + 1)
        x = x.unsqueeze(-1)
        bases = ((x >= grid[:, :-1]) & (x < grid[:, 1:])).to(x.dtype)
        for k in range(1, self.spline_order + 1):
            bases = (
                (x - grid[:, : -(k + 1)]) / (grid[:, k:-1] - grid[:, : -(k + 1)]) * bases[:, :, :-1]
            ) + (
                (grid[:, k + 1 :] - x) / (grid[:, k + 1 :] - grid[:, 1:(-k)]) * bases[:, :, 1:]
            )  # fmt: skip
        assert bases.size() == (x.size(0), self.in_features, self.grid_size + self.spline_order)
        return bases.contiguous()

    def curve2coeff(self, x, y):
        """Spline coefficients that interpolate the curves (x, y) in the least-squares sense.

        x: (batch, in_features), y: (batch, in_features, out_features)
        -> (out_features, in_features, grid_size + spline_order)."""
        A = self.b_splines(x).transpose(0, 1)  # (in_features, batch, coeff)
        B = y.transpose(0, 1)  # (in_features, batch, out_features)
        solution = torch.linalg.lstsq(A, B).solution  # (in_features, coeff, out_features)
        result = solution.permute(2, 0, 1)
        assert result.size() == (
            self.out_features,
            self.in_features,
            self.grid_size + self.spline_order,
        )
        return result.contiguous()

    @property
    def scaled_spline_weight(self):
        return self.spline_weight * (
            self.spline_scaler.unsqueeze(-1) if self.enable_standalone_scale_spline else 1.0
        )

    def forward(self, x):
        original_shape = x.shape
        x = x.reshape(-1, self.in_features)
        base_output = F.linear(self.base_activation(x), self.base_weight)
        spline_output = F.linear(
            self.b_splines(x).view(x.size(0), -1),
            self.scaled_spline_weight.view(self.out_features, -1),
        )
        output = base_output + spline_output
        return output.reshape(*original_shape[:-1], self.out_features)

    @torch.no_grad()
    def update_grid(self, x, margin=0.01):
        batch = x.size(0)
        splines = self.b_splines(x).permute(1, 0, 2)  # (in, batch, coeff)
        orig_coeff = self.scaled_spline_weight.permute(1, 2, 0)  # (in, coeff, out)
        unreduced_spline_output = torch.bmm(splines, orig_coeff).permute(1, 0, 2)

        # sort each channel individually to collect the data distribution
        x_sorted = torch.sort(x, dim=0)[0]
        grid_adaptive = x_sorted[
            torch.linspace(0, batch - 1, self.grid_size + 1, dtype=torch.int64, device=x.device)
        ]
        uniform_step = (x_sorted[-1] - x_sorted[0] + 2 * margin) / self.grid_size
        grid_uniform = (
            torch.arange(self.grid_size + 1, dtype=torch.float32, device=x.device).unsqueeze(1)
            * uniform_step
            + x_sorted[0]
            - margin
        )
        grid = self.grid_eps * grid_uniform + (1 - self.grid_eps) * grid_adaptive
        grid = torch.concatenate(
            [
                grid[:1]
                - uniform_step
                * torch.arange(self.spline_order, 0, -1, device=x.device).unsqueeze(1),
                grid,
                grid[-1:]
                + uniform_step
                * torch.arange(1, self.spline_order + 1, device=x.device).unsqueeze(1),
            ],
            dim=0,
        )
        self.grid.copy_(grid.T)
        coeff = self.curve2coeff(x, unreduced_spline_output)
        if self.enable_standalone_scale_spline:
            # the refitted curves already include the scaler: take it out again
            coeff = coeff / self.spline_scaler.unsqueeze(-1)
        self.spline_weight.data.copy_(coeff)

    def regularization_loss(self, regularize_activation=1.0, regularize_entropy=1.0):
        l1_fake = self.spline_weight.abs().mean(-1)
        regularization_loss_activation = l1_fake.sum()
        p = l1_fake / regularization_loss_activation
        regularization_loss_entropy = -torch.sum(p * p.log())
        return (
            regularize_activation * regularization_loss_activation
            + regularize_entropy * regularization_loss_entropy
        )


class KAN(nn.Module):
    def __init__(self, layers_hidden, grid_size=5, spline_order=3):
        super().__init__()
        self.layers = nn.ModuleList(
            KANLinear(i, o, grid_size=grid_size, spline_order=spline_order)
            for i, o in zip(layers_hidden, layers_hidden[1:])
        )

    def forward(self, x, update_grid=False):
        for layer in self.layers:
            if update_grid:
                layer.update_grid(x)
            x = layer(x)
        return x

    def regularization_loss(self, regularize_activation=1.0, regularize_entropy=1.0):
        return sum(
            layer.regularization_loss(regularize_activation, regularize_entropy)
            for layer in self.layers
        )


def target_fn(x):
    # f(x1, x2) = exp(sin(pi x1) + x2^2), the pykan tutorial's example
    return torch.exp(torch.sin(math.pi * x[:, :1]) + x[:, 1:] ** 2)


def main():
    parser = argparse.ArgumentParser(description="KAN symbolic regression")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--optimizer", choices=["adam", "lbfgs"], default="adam")
    parser.add_argument("--grid-size", type=int, default=5)
    parser.add_argument("--lamb", type=float, default=1e-3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x_train = torch.from_numpy(rng.uniform(-1, 1, (256, 2)).astype(np.float32))
    x_test = torch.from_numpy(rng.uniform(-1, 1, (128, 2)).astype(np.float32))
    y_train, y_test = target_fn(x_train), target_fn(x_test)

    model = KAN([2, 5, 1], grid_size=args.grid_size)
    if args.optimizer == "lbfgs":
        optimizer = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=5, history_size=10,
                                      line_search_fn="strong_wolfe")  # fmt: skip
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.98)

    update_every = args.steps // 3
    for step in range(args.steps):
        if step > 0 and step % update_every == 0 and step < args.steps - 1:
            with torch.no_grad():
                before = F.mse_loss(model(x_train), y_train)
                model(x_train, update_grid=True)
                after = F.mse_loss(model(x_train), y_train)
            grid = model.layers[0].grid
            print(
                f"step {step} grid update: loss {before.item():.6f} -> {after.item():.6f}, "
                f"grid span {(grid[:, -1] - grid[:, 0]).mean().item():.4f}"
            )

        def closure():
            optimizer.zero_grad()
            pred = model(x_train)
            mse = F.mse_loss(pred, y_train)
            loss = mse + args.lamb * model.regularization_loss()
            loss.backward()
            return loss

        loss = optimizer.step(closure)
        scheduler.step()
        if step % 10 == 0 or step == args.steps - 1:
            with torch.no_grad():
                test_mse = F.mse_loss(model(x_test), y_test)
                reg = model.regularization_loss()
            print(
                f"step {step} train loss: {loss.item():.6f} test loss: {test_mse.item():.6f} "
                f"reg {reg.item():.4f}"
            )

    # the learnt first-layer activations, sampled on a line
    with torch.no_grad():
        xs = torch.linspace(-1, 1, 9)[:, None].expand(-1, 2).contiguous()
        bases = model.layers[0].b_splines(xs)
        print(f"bases partition-of-unity error {(bases.sum(-1) - 1).abs().max().item():.6f}")
        print(f"activation loss: {model.layers[0](xs).abs().mean().item():.6f}")


if __name__ == "__main__":
    main()
