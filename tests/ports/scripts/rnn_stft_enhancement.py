"""Single-channel speech enhancement by spectral masking, in the style of the RNN mask
estimators (RNNoise and its PyTorch descendants), on synthetic voiced utterances of varying
length in white noise and mains hum. Waveforms are batched with pad_sequence, turned into
complex spectrograms by torch.stft (Hann window); the magnitudes (abs) and phases (angle) are
split, the log-magnitude frames of each utterance (cut to its length with unpad_sequence) go
through a bidirectional two-layer nn.RNN as a pack_sequence, come back with unpack_sequence,
and a sigmoid mask rebuilds the spectrum with torch.polar (or, with --rebuild complex,
torch.complex of the masked real and imaginary parts); torch.istft returns the waveform. The
loss is the negative scale-invariant SNR on the valid samples plus a HuberLoss on the
log-magnitudes."""

import argparse
import math

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_sequence, pad_sequence, unpack_sequence, unpad_sequence

N_FFT, HOP = 64, 16


def utterance(length):
    t = torch.arange(length).float() / 8000
    f0 = 180 + 40 * torch.sin(2 * math.pi * 3 * t + 6.28 * torch.rand(1))
    phase = 2 * math.pi * torch.cumsum(f0, 0) / 8000
    envelope = 0.5 * (1 + torch.sin(2 * math.pi * 4 * t)) ** 2
    voiced = sum(torch.sin(k * phase) / k for k in range(1, 6))
    clean = 0.3 * envelope * voiced
    noise = 0.15 * torch.randn(length) + 0.1 * torch.sin(2 * math.pi * 50 * t * 8)
    return clean, clean + noise


def make_set(n):
    lengths = (640 + (torch.rand(n) * 640).long()).tolist()
    pairs = [utterance(n_) for n_ in lengths]
    return [p[0] for p in pairs], [p[1] for p in pairs], lengths


class MaskNet(nn.Module):
    def __init__(self, n_freq, hidden=24):
        super().__init__()
        self.rnn = nn.RNN(n_freq, hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.out = nn.Linear(2 * hidden, n_freq)

    def forward(self, frames):
        packed = self.rnn(pack_sequence(frames, enforce_sorted=False))[0]
        return [torch.sigmoid(self.out(seq)) for seq in unpack_sequence(packed)]


def si_snr(est, ref, mask):
    est, ref = est * mask, ref * mask
    n = mask.sum(1, keepdim=True)
    est = est - (est.sum(1, keepdim=True) / n) * mask
    ref = ref - (ref.sum(1, keepdim=True) / n) * mask
    proj = (est * ref).sum(1, keepdim=True) / (ref.pow(2).sum(1, keepdim=True) + 1e-8) * ref
    noise = est - proj
    return 10 * torch.log10(proj.pow(2).sum(1) / (noise.pow(2).sum(1) + 1e-8) + 1e-8)


def enhance(model, noisy, lengths, rebuild):
    window = torch.hann_window(N_FFT)
    spec = torch.stft(noisy, N_FFT, HOP, window=window, return_complex=True)  # B, F, T
    mag, phase = spec.abs(), spec.angle()
    log_mag = torch.log1p(mag).transpose(1, 2)  # B, T, F
    frames = torch.tensor([n // HOP + 1 for n in lengths])
    masks = model(unpad_sequence(log_mag, frames, batch_first=True))
    mask = pad_sequence(masks, batch_first=True).transpose(1, 2)
    if rebuild == "polar":
        est = torch.polar(mag * mask, phase)
    else:
        est = torch.complex(spec.real * mask, spec.imag * mask)
    wave = torch.istft(est, N_FFT, HOP, window=window, length=noisy.shape[1])
    return wave, torch.log1p(est.abs())


def main():
    parser = argparse.ArgumentParser(description="RNN spectral-mask speech enhancement")
    parser.add_argument("--rebuild", default="polar", choices=["polar", "complex"])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()

    clean, noisy, lengths = make_set(32)
    clean_val, noisy_val, lengths_val = make_set(16)
    model = MaskNet(N_FFT // 2 + 1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    huber = nn.HuberLoss(delta=0.5)

    def batch(cl, no, ln):
        valid = pad_sequence([torch.ones(n) for n in ln], batch_first=True)
        return pad_sequence(cl, batch_first=True), pad_sequence(no, batch_first=True), valid

    for epoch in range(args.epochs):
        total = 0.0
        for i in range(0, len(clean), args.batch):
            ln = lengths[i : i + args.batch]
            ref, mix, valid = batch(clean[i : i + args.batch], noisy[i : i + args.batch], ln)
            wave, log_mag = enhance(model, mix, ln, args.rebuild)
            target = torch.log1p(torch.stft(ref, N_FFT, HOP, window=torch.hann_window(N_FFT),
                                            return_complex=True).abs())  # fmt: skip
            loss = -si_snr(wave, ref, valid).mean() + huber(log_mag, target)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            total += loss.item()
        with torch.no_grad():
            ref, mix, valid = batch(clean_val, noisy_val, lengths_val)
            wave, _ = enhance(model, mix, lengths_val, args.rebuild)
            gain = (si_snr(wave, ref, valid) - si_snr(mix, ref, valid)).mean()
        print(
            f"epoch {epoch} loss {total / (len(clean) // args.batch):.6f} "
            f"val loss {-si_snr(wave, ref, valid).mean().item():.6f} si-snr gain {gain.item():.3f}"
        )


if __name__ == "__main__":
    main()
