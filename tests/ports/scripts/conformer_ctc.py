"""A small Conformer (Gulati et al., 2020) on synthetic speech-like feature sequences: a
Conv2d subsampling front end, Macaron feed-forward halves, nn.MultiheadAttention with a
key_padding_mask for the padded frames, the convolution module (pointwise Conv1d, F.glu,
depthwise Conv1d, BatchNorm1d, SiLU, pointwise Conv1d), LayerNorm, trained with CTC
(F.ctc_loss on log_softmax over (T, N, C)) or with frame-level cross-entropy that ignores
the padded frames (ignore_index), AdamW with gradient clipping and a Noam-style LambdaLR."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class FeedForwardModule(nn.Module):
    def __init__(self, d_model, expansion=4, dropout=0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(d_model),
            nn.Linear(d_model, d_model * expansion),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Linear(d_model * expansion, d_model),
            nn.Dropout(dropout),
        )

    def forward(self, x):
        return self.net(x)


class ConvModule(nn.Module):
    def __init__(self, d_model, kernel_size=7, dropout=0.1):
        super().__init__()
        self.layer_norm = nn.LayerNorm(d_model)
        self.pointwise_conv1 = nn.Conv1d(d_model, 2 * d_model, kernel_size=1)
        self.depthwise_conv = nn.Conv1d(d_model, d_model, kernel_size, padding=kernel_size // 2,
                                        groups=d_model, bias=False)  # fmt: skip
        self.batch_norm = nn.BatchNorm1d(d_model)
        self.activation = nn.SiLU()
        self.pointwise_conv2 = nn.Conv1d(d_model, d_model, kernel_size=1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, pad_mask=None):
        x = self.layer_norm(x).transpose(1, 2)  # (B, C, T)
        x = F.glu(self.pointwise_conv1(x), dim=1)
        if pad_mask is not None:
            # padded frames must not leak into real ones through the depthwise kernel
            x = x.masked_fill(pad_mask.unsqueeze(1), 0.0)
        x = self.activation(self.batch_norm(self.depthwise_conv(x)))
        x = self.dropout(self.pointwise_conv2(x))
        return x.transpose(1, 2)


class ConformerBlock(nn.Module):
    def __init__(self, d_model, n_heads, kernel_size=7, dropout=0.1, attn_dropout=0.0):
        super().__init__()
        self.ff1 = FeedForwardModule(d_model, dropout=dropout)
        self.attn_norm = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_heads, dropout=attn_dropout,
                                          batch_first=True)  # fmt: skip
        self.attn_dropout = nn.Dropout(dropout)
        self.conv = ConvModule(d_model, kernel_size, dropout)
        self.ff2 = FeedForwardModule(d_model, dropout=dropout)
        self.final_norm = nn.LayerNorm(d_model)

    def forward(self, x, key_padding_mask=None):
        x = x + 0.5 * self.ff1(x)
        h = self.attn_norm(x)
        h, _ = self.attn(h, h, h, key_padding_mask=key_padding_mask, need_weights=False)
        x = x + self.attn_dropout(h)
        x = x + self.conv(x, key_padding_mask)
        x = x + 0.5 * self.ff2(x)
        return self.final_norm(x)


class Conv2dSubsampling(nn.Module):
    """Two stride-2 3x3 convolutions over (time, frequency): the sequence gets 4x shorter."""

    def __init__(self, n_mels, d_model, channels=8):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, 3, stride=2),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2),
            nn.ReLU(),
        )
        freq = ((n_mels - 1) // 2 - 1) // 2
        self.out = nn.Linear(channels * freq, d_model)

    def forward(self, x, lengths):
        x = self.conv(x.unsqueeze(1))  # (B, C, T', F')
        b, c, t, f = x.size()
        x = self.out(x.permute(0, 2, 1, 3).reshape(b, t, c * f))
        lengths = torch.div(lengths - 1, 2, rounding_mode="floor")
        lengths = torch.div(lengths - 1, 2, rounding_mode="floor")
        return x, lengths


class Conformer(nn.Module):
    def __init__(self, n_mels, num_classes, d_model=32, n_heads=4, n_layers=2, dropout=0.1):
        super().__init__()
        self.subsample = Conv2dSubsampling(n_mels, d_model)
        self.input_dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            [ConformerBlock(d_model, n_heads, dropout=dropout) for _ in range(n_layers)]
        )
        self.classifier = nn.Linear(d_model, num_classes)

    def forward(self, feats, lengths):
        x, lengths = self.subsample(feats, lengths)
        x = self.input_dropout(x)
        t = x.size(1)
        pad_mask = torch.arange(t, device=x.device)[None, :] >= lengths[:, None]
        for layer in self.layers:
            x = layer(x, key_padding_mask=pad_mask)
        return self.classifier(x), lengths, pad_mask


def make_batch(rng, batch, n_mels, vocab, max_frames=64):
    """Each token is a 16-frame chunk with its own spectral band pattern plus noise."""
    patterns = np.sin(np.arange(vocab)[:, None] * np.linspace(0.3, 3.0, n_mels)[None, :])
    n_tokens = rng.integers(2, max_frames // 16 + 1, batch)
    frames = n_tokens * 16 - rng.integers(0, 4, batch)
    feats = rng.normal(0, 0.3, (batch, max_frames, n_mels)).astype(np.float32)
    targets = np.zeros((batch, max_frames // 16), dtype=np.int64)
    frame_labels = np.full((batch, max_frames // 4), -100, dtype=np.int64)
    for b in range(batch):
        toks = rng.integers(1, vocab, n_tokens[b])
        targets[b, : n_tokens[b]] = toks
        for j, tok in enumerate(toks):
            feats[b, j * 16 : (j + 1) * 16] += patterns[tok]
            frame_labels[b, j * 4 : (j + 1) * 4] = tok
        feats[b, frames[b] :] = 0.0
    return (torch.from_numpy(feats), torch.from_numpy(frames), torch.from_numpy(targets),
            torch.from_numpy(n_tokens), torch.from_numpy(frame_labels))  # fmt: skip


def compute_loss(model, batch, objective):
    feats, frames, targets, n_tokens, frame_labels = batch
    logits, out_lengths, _ = model(feats, frames)
    if objective == "ctc":
        log_probs = logits.log_softmax(-1).transpose(0, 1)  # (T, N, C)
        return F.ctc_loss(log_probs, targets, out_lengths, n_tokens, blank=0,
                          reduction="mean", zero_infinity=True)  # fmt: skip
    t = logits.size(1)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)),
                           frame_labels[:, :t].reshape(-1), ignore_index=-100)  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description="Conformer on synthetic speech features")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--objective", choices=["ctc", "frame-ce"], default="ctc")
    parser.add_argument("--lr", type=float, default=2e-3)
    args = parser.parse_args()

    n_mels, vocab = 20, 6
    rng = np.random.default_rng(0)
    train = [make_batch(rng, args.batch_size, n_mels, vocab) for _ in range(args.steps)]
    held_out = make_batch(rng, 16, n_mels, vocab)
    model = Conformer(n_mels, vocab)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98),
                                  eps=1e-9, weight_decay=1e-3)  # fmt: skip
    warmup = 4
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, (warmup / (s + 1)) ** 0.5)
    )
    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for batch in train:
            loss = compute_loss(model, batch, args.objective)
            optimizer.zero_grad()
            loss.backward()
            grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
            optimizer.step()
            scheduler.step()
            total += loss.item()
        model.eval()
        with torch.no_grad():
            val = compute_loss(model, held_out, args.objective).item()
            logits, out_lengths, pad_mask = model(held_out[0], held_out[1])
            best = logits.argmax(-1).masked_fill(pad_mask, 0)
        print(f"epoch {epoch} train loss {total / len(train):.6f} val loss {val:.6f} "
              f"grad norm {grad_norm.item():.4f} blanks {(best == 0).float().mean().item():.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
