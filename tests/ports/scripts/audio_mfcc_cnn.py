"""Keyword-spotting style audio classifier in the manner of torchaudio tutorials, with the
front end written in plain torch: MFCCs from torch.stft with a Hann window, a power
spectrum, a triangular mel filterbank built with linspace/clamp, log-mel energies and a
DCT-II matrix from torch.cos; SpecAugment time and frequency masks made with arange
comparisons; a small CNN with BatchNorm2d and AdaptiveAvgPool2d trained with label
smoothing on synthetic tone/chirp "words"."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SR = 4000
N_FFT = 256
HOP = 64
N_MELS = 24
N_MFCC = 13
N_CLASSES = 4


def hz_to_mel(f):
    return 2595.0 * torch.log10(1.0 + f / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def melscale_fbanks(n_freqs, f_min, f_max, n_mels, sample_rate):
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_min, m_max = hz_to_mel(torch.tensor(f_min)), hz_to_mel(torch.tensor(f_max))
    m_pts = torch.linspace(m_min, m_max, n_mels + 2)
    f_pts = mel_to_hz(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)  # (n_freqs, n_mels + 2)
    down = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.max(torch.zeros(1), torch.min(down, up))


def create_dct(n_mfcc, n_mels):
    n = torch.arange(float(n_mels))
    k = torch.arange(float(n_mfcc)).unsqueeze(1)
    dct = torch.cos(math.pi / float(n_mels) * (n + 0.5) * k)  # (n_mfcc, n_mels)
    dct[0] *= 1.0 / math.sqrt(2.0)
    dct *= math.sqrt(2.0 / float(n_mels))
    return dct.t()


class MFCC(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT))
        self.register_buffer("fb", melscale_fbanks(N_FFT // 2 + 1, 20.0, SR / 2, N_MELS, SR))
        self.register_buffer("dct", create_dct(N_MFCC, N_MELS))

    def forward(self, wav):
        spec = torch.stft(wav, N_FFT, hop_length=HOP, win_length=N_FFT, window=self.window,
                          center=True, pad_mode="reflect", return_complex=True)  # fmt: skip
        power = spec.abs().pow(2.0)  # (B, freq, time)
        mel = torch.matmul(power.transpose(-1, -2), self.fb).transpose(-1, -2)
        log_mel = torch.log(mel + 1e-6)
        mfcc = torch.matmul(log_mel.transpose(-1, -2), self.dct).transpose(-1, -2)
        return mfcc  # (B, n_mfcc, time)


def spec_augment(x, max_f=3, max_t=4):
    # x: (B, 1, F, T); one frequency mask and one time mask per example
    b, _, n_f, n_t = x.shape
    f_width = (torch.rand(b) * max_f).long()
    f_start = (torch.rand(b) * (n_f - f_width)).long()
    t_width = (torch.rand(b) * max_t).long()
    t_start = (torch.rand(b) * (n_t - t_width)).long()
    f_idx = torch.arange(n_f).view(1, -1)
    t_idx = torch.arange(n_t).view(1, -1)
    f_mask = (f_idx >= f_start[:, None]) & (f_idx < (f_start + f_width)[:, None])
    t_mask = (t_idx >= t_start[:, None]) & (t_idx < (t_start + t_width)[:, None])
    mask = f_mask[:, None, :, None] | t_mask[:, None, None, :]
    return x.masked_fill(mask, 0.0)


class KWSNet(nn.Module):
    def __init__(self, n_classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d((1, 1)),
        )
        self.classifier = nn.Linear(32, n_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def synth_words(n, length=SR // 2):
    """Four 'words': a low tone, a high tone, an up-chirp and a down-chirp, with noise."""
    t = torch.arange(length) / SR
    labels = torch.randint(0, N_CLASSES, (n,))
    f0 = 300 + 200 * torch.rand(n, 1)
    rising = f0 + 1200 * t
    falling = f0 + 1200 * (t[-1] - t)
    freq = torch.stack([f0.expand(-1, length), 3 * f0.expand(-1, length), rising, falling], 1)
    freq = freq[torch.arange(n), labels]
    phase = 2 * math.pi * torch.cumsum(freq, dim=1) / SR
    env = torch.sin(math.pi * t / t[-1]).clamp(min=0)
    wav = env * torch.sin(phase) + 0.2 * torch.randn(n, length)
    return wav, labels


def main():
    torch.manual_seed(0)
    frontend = MFCC()
    model = KWSNet(N_CLASSES)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    wav_val, y_val = synth_words(64)
    with torch.no_grad():
        feats_val = frontend(wav_val).unsqueeze(1)
        mean, std = (
            feats_val.mean(dim=(0, 3), keepdim=True),
            feats_val.std(dim=(0, 3), keepdim=True),
        )
    print(f"mfcc shape {tuple(feats_val.shape)} mean abs loss {feats_val.abs().mean().item():.5f}")
    for step in range(1, 21):
        model.train()
        wav, y = synth_words(32)
        with torch.no_grad():
            feats = (frontend(wav).unsqueeze(1) - mean) / std
            feats = spec_augment(feats)
        logits = model(feats)
        loss = criterion(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 4 == 0:
            model.eval()
            with torch.no_grad():
                val_logits = model((feats_val - mean) / std)
                val_loss = F.cross_entropy(val_logits, y_val)
                acc = (val_logits.argmax(1) == y_val).float().mean()
            print(f"step {step} train loss {loss.item():.5f} val loss {val_loss.item():.5f} "
                  f"acc {acc.item():.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
