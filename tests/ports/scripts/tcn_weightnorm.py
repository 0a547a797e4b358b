"""A temporal convolutional network on the adding problem (after locuslab/TCN, Bai et al. 2018):
residual blocks of two dilated causal Conv1d layers under weight normalization
(torch.nn.utils.parametrizations.weight_norm), causality by padding both sides and chomping
the right or by F.pad on the left only, 1x1 downsampling on the residual path, dilations
doubling per level, Adam with gradient clipping. The target is the sum of the two marked
values in a long random sequence."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import weight_norm


class Chomp1d(nn.Module):
    def __init__(self, chomp_size):
        super().__init__()
        self.chomp_size = chomp_size

    def forward(self, x):
        return x[:, :, : -self.chomp_size].contiguous()


class CausalPad1d(nn.Module):
    """Left padding only, so output t sees inputs up to t."""

    def __init__(self, padding):
        super().__init__()
        self.padding = padding

    def forward(self, x):
        return F.pad(x, (self.padding, 0))


class TemporalBlock(nn.Module):
    def __init__(
        self, n_inputs, n_outputs, kernel_size, stride, dilation, padding, dropout=0.2, pad="chomp"
    ):
        super().__init__()
        layers = []
        for i, (c_in, c_out) in enumerate([(n_inputs, n_outputs), (n_outputs, n_outputs)]):
            if pad == "chomp":
                conv = nn.Conv1d(
                    c_in, c_out, kernel_size, stride=stride, padding=padding, dilation=dilation
                )
                causal = [weight_norm(conv), Chomp1d(padding)]
            else:
                conv = nn.Conv1d(c_in, c_out, kernel_size, stride=stride, dilation=dilation)
                causal = [CausalPad1d(padding), weight_norm(conv)]
            setattr(self, f"conv{i + 1}", conv)
            layers += causal + [nn.ReLU(), nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers)
        self.downsample = nn.Conv1d(n_inputs, n_outputs, 1) if n_inputs != n_outputs else None
        self.relu = nn.ReLU()
        self.init_weights()

    def init_weights(self):
        # the direction parameters v of the normalized weights (g stays the initial norm)
        self.conv1.parametrizations.weight.original1.data.normal_(0, 0.01)
        self.conv2.parametrizations.weight.original1.data.normal_(0, 0.01)
        if self.downsample is not None:
            self.downsample.weight.data.normal_(0, 0.01)

    def forward(self, x):
        out = self.net(x)
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(out + res)


class TemporalConvNet(nn.Module):
    def __init__(self, num_inputs, num_channels, kernel_size=2, dropout=0.2, pad="chomp"):
        super().__init__()
        layers = []
        num_levels = len(num_channels)
        for i in range(num_levels):
            dilation_size = 2**i
            in_channels = num_inputs if i == 0 else num_channels[i - 1]
            out_channels = num_channels[i]
            layers += [
                TemporalBlock(
                    in_channels,
                    out_channels,
                    kernel_size,
                    stride=1,
                    dilation=dilation_size,
                    padding=(kernel_size - 1) * dilation_size,
                    dropout=dropout,
                    pad=pad,
                )
            ]
        self.network = nn.Sequential(*layers)

    def forward(self, x):
        return self.network(x)


class TCN(nn.Module):
    def __init__(self, input_size, output_size, num_channels, kernel_size, dropout, pad):
        super().__init__()
        self.tcn = TemporalConvNet(
            input_size, num_channels, kernel_size=kernel_size, dropout=dropout, pad=pad
        )
        self.linear = nn.Linear(num_channels[-1], output_size)
        self.init_weights()

    def init_weights(self):
        self.linear.weight.data.normal_(0, 0.01)

    def forward(self, x):
        y1 = self.tcn(x)
        return self.linear(y1[:, :, -1])


def data_generator(n, seq_length, rng):
    """
    Args:
        n: # of data in the set
        seq_length: Length of the adding problem data
    """
    X_num = torch.rand([n, 1, seq_length])
    X_mask = torch.zeros([n, 1, seq_length])
    Y = torch.zeros([n, 1])
    for i in range(n):
        positions = rng.choice(seq_length, size=2, replace=False)
        X_mask[i, 0, positions[0]] = 1
        X_mask[i, 0, positions[1]] = 1
        Y[i, 0] = X_num[i, 0, positions[0]] + X_num[i, 0, positions[1]]
    X = torch.cat((X_num, X_mask), dim=1)
    return X, Y


def main():
    parser = argparse.ArgumentParser(description="Sequence Modeling - The Adding Problem")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--ksize", type=int, default=3)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--seq_len", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-2)
    parser.add_argument("--nhid", type=int, default=16)
    parser.add_argument("--pad", choices=["chomp", "left"], default="chomp")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    input_channels = 2
    n_classes = 1
    print("Producing data...")
    X_train, Y_train = data_generator(512, args.seq_len, rng)
    X_test, Y_test = data_generator(64, args.seq_len, rng)

    channel_sizes = [args.nhid] * args.levels
    model = TCN(input_channels, n_classes, channel_sizes, args.ksize, args.dropout, args.pad)
    receptive_field = 1 + 2 * (args.ksize - 1) * (2**args.levels - 1)
    print(f"receptive field {receptive_field} for sequences of {args.seq_len}")
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    for epoch in range(1, args.epochs + 1):
        model.train()
        batch_idx = 1
        total_loss = 0
        for i in range(0, X_train.size(0), args.batch_size):
            if i + args.batch_size > X_train.size(0):
                x, y = X_train[i:], Y_train[i:]
            else:
                x, y = X_train[i : (i + args.batch_size)], Y_train[i : (i + args.batch_size)]
            optimizer.zero_grad()
            output = model(x)
            loss = F.mse_loss(output, y)
            loss.backward()
            if args.clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            batch_idx += 1
            total_loss += loss.item()
        print(f"Train Epoch: {epoch:2d} \tLoss: {total_loss / (batch_idx - 1):.6f}")

        model.eval()
        with torch.no_grad():
            output = model(X_test)
            test_loss = F.mse_loss(output, Y_test)
        # causality check: changing the last step leaves earlier outputs unchanged
        with torch.no_grad():
            x = X_test[:2].clone()
            h1 = model.tcn(x)
            x[:, 0, -1] += 1.0
            h2 = model.tcn(x)
            leak = (h1[:, :, :-1] - h2[:, :, :-1]).abs().max()
        g = model.tcn.network[0].conv1.parametrizations.weight.original0
        print(
            f"\nTest set: Average loss: {test_loss.item():.6f} causal leak {leak.item():.1e} "
            f"g norm {g.norm().item():.4f}\n"
        )


if __name__ == "__main__":
    main()
