"""A small WaveNet (van den Oord et al., 2016) predicting the next sample of mu-law quantized
synthetic audio: causal dilated Conv1d layers (left padding by F.pad), gated activations
tanh(filter) * sigmoid(gate) from one conv split by torch.chunk, residual and skip 1x1 convs,
one-hot inputs from F.one_hot, cross-entropy over (N, C, T) logits. Mu-law companding with
torch.sign/log1p/expm1, Adam with ExponentialLR, and a short greedy generation loop that
feeds back its own outputs under torch.inference_mode."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

QUANT = 64  # quantization levels (8-bit audio would use 256)


def mu_law_encode(audio, quantization_channels=QUANT):
    mu = quantization_channels - 1
    magnitude = torch.log1p(mu * torch.abs(audio)) / math.log1p(mu)
    signal = torch.sign(audio) * magnitude
    return ((signal + 1) / 2 * mu + 0.5).long()  # [-1, 1] -> {0, ..., mu}


def mu_law_decode(output, quantization_channels=QUANT):
    mu = quantization_channels - 1
    signal = 2 * (output.float() / mu) - 1
    magnitude = torch.expm1(torch.abs(signal) * math.log1p(mu)) / mu
    return torch.sign(signal) * magnitude


class CausalConv1d(nn.Conv1d):
    def __init__(self, in_channels, out_channels, kernel_size, dilation=1, **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, **kwargs)
        self.left_pad = (kernel_size - 1) * dilation

    def forward(self, x):
        return super().forward(F.pad(x, (self.left_pad, 0)))


class ResidualBlock(nn.Module):
    def __init__(self, residual_channels, skip_channels, dilation, kernel_size=2):
        super().__init__()
        self.dilated = CausalConv1d(residual_channels, 2 * residual_channels, kernel_size, dilation)
        self.res_conv = nn.Conv1d(residual_channels, residual_channels, 1)
        self.skip_conv = nn.Conv1d(residual_channels, skip_channels, 1)

    def forward(self, x):
        filt, gate = torch.chunk(self.dilated(x), 2, dim=1)
        z = torch.tanh(filt) * torch.sigmoid(gate)
        return x + self.res_conv(z), self.skip_conv(z)


class WaveNet(nn.Module):
    def __init__(self, quant=QUANT, residual_channels=16, skip_channels=32, layers=4, stacks=2):
        super().__init__()
        self.quant = quant
        self.causal = CausalConv1d(quant, residual_channels, kernel_size=2)
        dilations = [2**i for i in range(layers)] * stacks
        self.blocks = nn.ModuleList(
            [ResidualBlock(residual_channels, skip_channels, d) for d in dilations]
        )
        self.post = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(skip_channels, skip_channels, 1),
            nn.ReLU(),
            nn.Conv1d(skip_channels, quant, 1),
        )
        self.receptive_field = 1 + sum(dilations) + 1

    def forward(self, ids):
        x = F.one_hot(ids, self.quant).float().transpose(1, 2)  # (N, T) -> (N, Q, T)
        x = self.causal(x)
        skips = 0
        for block in self.blocks:
            x, skip = block(x)
            skips = skips + skip
        return self.post(skips)  # (N, Q, T) logits for the next sample


def make_waves(rng, n, length):
    t = np.arange(length, dtype=np.float32)
    waves = []
    for _ in range(n):
        f1, f2 = rng.uniform(0.02, 0.12, 2)
        wave = 0.6 * np.sin(2 * np.pi * f1 * t + rng.uniform(0, 6))
        wave += 0.3 * np.sin(2 * np.pi * f2 * t) * np.exp(-t / length)
        waves.append(wave + 0.02 * rng.standard_normal(length))
    return torch.from_numpy(np.clip(np.stack(waves), -1, 1).astype(np.float32))


def main():
    parser = argparse.ArgumentParser(description="WaveNet on synthetic audio")
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--length", type=int, default=96)
    parser.add_argument("--lr", type=float, default=1e-2)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    model = WaveNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.95)
    rf = model.receptive_field

    for step in range(args.steps):
        ids = mu_law_encode(make_waves(rng, args.batch_size, args.length))
        logits = model(ids[:, :-1])
        # only positions that see a full receptive field count
        loss = F.cross_entropy(logits[:, :, rf - 1 :], ids[:, rf:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        print(f"step {step} loss: {loss.item():.6f} lr {scheduler.get_last_lr()[0]:.6f}")

    model.eval()
    with torch.inference_mode():
        ids = mu_law_encode(make_waves(rng, 2, args.length))
        test_logits = model(ids[:, :-1])
        test_loss = F.cross_entropy(test_logits[:, :, rf - 1 :], ids[:, rf:])
        print(f"test loss: {test_loss.item():.6f}")
        generated = ids[:, : rf + 1]
        for _ in range(8):
            next_id = model(generated[:, -rf:])[:, :, -1].argmax(dim=1, keepdim=True)
            generated = torch.cat([generated, next_id], dim=1)
        audio = mu_law_decode(generated[:, rf + 1 :])
        print("generated:", [round(v, 3) for v in audio[0].tolist()])


if __name__ == "__main__":
    main()
