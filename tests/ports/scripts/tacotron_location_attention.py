"""A tiny Tacotron 2 (Shen et al., 2018) on synthetic text-to-"mel" pairs: an embedding,
Conv1d/BatchNorm1d encoder and a bidirectional LSTM over packed sequences
(pack_padded_sequence with enforce_sorted=False); an autoregressive decoder of two
nn.LSTMCells with a prenet whose dropout stays on at inference, location-sensitive attention
(a Conv1d over the previous and cumulative attention weights, masked_fill of padded inputs with
-inf, softmax, torch.bmm context), a reduction factor of two frames per step, a stop-token
head trained with BCEWithLogitsLoss(pos_weight=...), a Conv1d postnet with a residual, masked
MSE losses and a guided-attention prior; the batches are built with pad_sequence in a
collate_fn, trained with teacher forcing, Adam and a warm-up LambdaLR, and decoded free-running
for evaluation."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
from torch.utils.data import DataLoader, Dataset

N_SYMBOLS, N_MELS, R = 10, 8, 2


def lengths_to_mask(lengths, max_len=None):
    """True at padded positions."""
    max_len = max_len or int(lengths.max())
    return torch.arange(max_len).unsqueeze(0) >= lengths.unsqueeze(1)


class SyntheticSpeech(Dataset):
    """Symbol strings (1..9, 0 pads) whose frames are each symbol's spectrum held for a
    symbol-specific duration, with a decaying envelope and noise."""

    def __init__(self, n, seed):
        rng = np.random.default_rng(seed)
        table = np.random.default_rng(123).uniform(-1, 1, (N_SYMBOLS, N_MELS)).astype(np.float32)
        durations = 1 + np.arange(N_SYMBOLS) % 3
        self.items = []
        for _ in range(n):
            text = rng.integers(1, N_SYMBOLS, rng.integers(3, 7))
            frames = []
            for s in text:
                for k in range(durations[s]):
                    frames.append(table[s] * (1.0 - 0.25 * k))
            mel = np.stack(frames) + 0.05 * rng.standard_normal((len(frames), N_MELS))
            self.items.append((torch.from_numpy(text), torch.from_numpy(mel.astype(np.float32))))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def collate(batch):
    """Pad texts and mels (mels to a multiple of the reduction factor); gate targets are 1
    from the last real frame on."""
    texts, mels = zip(*batch)
    text_lengths = torch.tensor([len(t) for t in texts])
    mel_lengths = torch.tensor([len(m) for m in mels])
    text = pad_sequence(texts, batch_first=True, padding_value=0)
    mel = pad_sequence(mels, batch_first=True)
    extra = (-mel.shape[1]) % R
    mel = F.pad(mel, (0, 0, 0, extra))
    gate = (torch.arange(mel.shape[1]).unsqueeze(0) >= (mel_lengths - 1).unsqueeze(1)).float()
    return text, text_lengths, mel, mel_lengths, gate


class Encoder(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.embedding = nn.Embedding(N_SYMBOLS, dim, padding_idx=0)
        self.convs = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(dim, dim, 5, padding=2, bias=False),
                nn.BatchNorm1d(dim),
                nn.ReLU(),
                nn.Dropout(0.5),
            )
            for _ in range(2)
        )
        self.lstm = nn.LSTM(dim, dim // 2, batch_first=True, bidirectional=True)

    def forward(self, text, lengths):
        x = self.embedding(text).transpose(1, 2)
        for conv in self.convs:
            x = conv(x)
        packed = pack_padded_sequence(x.transpose(1, 2), lengths, batch_first=True,
                                      enforce_sorted=False)  # fmt: skip
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=text.shape[1])
        return out


class Prenet(nn.Module):
    """Two ReLU layers whose dropout is applied in training and at inference alike."""

    def __init__(self, in_dim, dim, p=0.5):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(in_dim, dim, bias=False), nn.Linear(dim, dim)])
        self.dropout = nn.Dropout(p)

    def forward(self, x):
        for layer in self.layers:
            x = F.dropout(F.relu(layer(x)), p=self.dropout.p, training=True)
        return x


class LocationSensitiveAttention(nn.Module):
    """e_j = v^T tanh(W s + V h_j + U f_j), f = conv([previous, cumulative] weights)."""

    def __init__(self, query_dim, memory_dim, attn_dim, n_filters=8, kernel_size=7):
        super().__init__()
        self.query_layer = nn.Linear(query_dim, attn_dim, bias=False)
        self.memory_layer = nn.Linear(memory_dim, attn_dim, bias=False)
        self.location_conv = nn.Conv1d(
            2, n_filters, kernel_size, padding=(kernel_size - 1) // 2, bias=False
        )
        self.location_dense = nn.Linear(n_filters, attn_dim, bias=False)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def forward(self, query, memory, processed_memory, weights_cat, mask):
        location = self.location_dense(self.location_conv(weights_cat).transpose(1, 2))
        energies = self.v(
            torch.tanh(self.query_layer(query).unsqueeze(1) + processed_memory + location)
        ).squeeze(-1)
        energies = energies.masked_fill(mask, -float("inf"))
        weights = F.softmax(energies, dim=1)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)
        return context, weights


class Decoder(nn.Module):
    def __init__(self, memory_dim, rnn_dim=48, prenet_dim=32, attn_dim=24):
        super().__init__()
        self.rnn_dim, self.memory_dim = rnn_dim, memory_dim
        self.prenet = Prenet(N_MELS, prenet_dim)
        self.attention_rnn = nn.LSTMCell(prenet_dim + memory_dim, rnn_dim)
        self.attention = LocationSensitiveAttention(rnn_dim, memory_dim, attn_dim)
        self.decoder_rnn = nn.LSTMCell(rnn_dim + memory_dim, rnn_dim)
        self.mel_proj = nn.Linear(rnn_dim + memory_dim, N_MELS * R)
        self.gate_proj = nn.Linear(rnn_dim + memory_dim, 1)

    def init_states(self, memory):
        batch, steps, _ = memory.shape
        zeros = memory.new_zeros
        return {
            "att": (zeros(batch, self.rnn_dim), zeros(batch, self.rnn_dim)),
            "dec": (zeros(batch, self.rnn_dim), zeros(batch, self.rnn_dim)),
            "weights": zeros(batch, steps),
            "cumulative": zeros(batch, steps),
            "context": zeros(batch, self.memory_dim),
        }

    def step(self, frame, memory, processed, mask, s):
        x = torch.cat([self.prenet(frame), s["context"]], dim=-1)
        s["att"] = self.attention_rnn(x, s["att"])
        weights_cat = torch.stack([s["weights"], s["cumulative"]], dim=1)
        s["context"], s["weights"] = self.attention(s["att"][0], memory, processed,
                                                    weights_cat, mask)  # fmt: skip
        s["cumulative"] = s["cumulative"] + s["weights"]
        s["dec"] = self.decoder_rnn(torch.cat([s["att"][0], s["context"]], dim=-1), s["dec"])
        out = torch.cat([s["dec"][0], s["context"]], dim=-1)
        return self.mel_proj(out).view(-1, R, N_MELS), self.gate_proj(out), s["weights"]

    def forward(self, memory, mask, targets=None, steps=None):
        """Teacher-forced when targets (B, T, n_mels) are given, else free-running."""
        batch = memory.shape[0]
        steps = targets.shape[1] // R if targets is not None else steps
        processed = self.attention.memory_layer(memory)
        s = self.init_states(memory)
        frame = memory.new_zeros(batch, N_MELS)  # the <GO> frame
        mels, gates, alignments = [], [], []
        for i in range(steps):
            mel, gate, weights = self.step(frame, memory, processed, mask, s)
            mels.append(mel)
            gates.append(gate.expand(-1, R))
            alignments.append(weights)
            frame = targets[:, i * R + R - 1] if targets is not None else mel[:, -1]
        return torch.cat(mels, 1), torch.cat(gates, 1), torch.stack(alignments, 1)


class Postnet(nn.Module):
    def __init__(self, dim=32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(N_MELS, dim, 5, padding=2, bias=False), nn.BatchNorm1d(dim), nn.Tanh(),
            nn.Dropout(0.5),
            nn.Conv1d(dim, N_MELS, 5, padding=2, bias=False), nn.BatchNorm1d(N_MELS),
        )  # fmt: skip

    def forward(self, mel):
        return mel + self.net(mel.transpose(1, 2)).transpose(1, 2)


class Tacotron2(nn.Module):
    def __init__(self, dim=32):
        super().__init__()
        self.encoder = Encoder(dim)
        self.decoder = Decoder(dim)
        self.postnet = Postnet()

    def forward(self, text, text_lengths, mel=None, steps=None):
        memory = self.encoder(text, text_lengths)
        mask = lengths_to_mask(text_lengths, text.shape[1])
        mel_out, gate, align = self.decoder(memory, mask, mel, steps)
        return mel_out, self.postnet(mel_out), gate, align


def guided_attention(text_lengths, mel_lengths, steps, g=0.2):
    """Penalty 1 - exp(-(n/N - t/T)^2 / 2g^2): alignments should move along the diagonal."""
    n = torch.arange(text_lengths.max()).float().unsqueeze(0) / text_lengths.unsqueeze(1)
    t = (torch.arange(steps).float() * R).unsqueeze(0) / mel_lengths.unsqueeze(1)
    return 1.0 - torch.exp(-((n.unsqueeze(1) - t.unsqueeze(2)) ** 2) / (2 * g * g))


def tacotron_loss(outputs, mel, mel_lengths, gate_target, text_lengths, gate_bce):
    mel_out, mel_post, gate, align = outputs
    frame_mask = (~lengths_to_mask(mel_lengths, mel.shape[1])).unsqueeze(-1).float()
    denom = frame_mask.sum() * N_MELS
    mel_loss = (F.mse_loss(mel_out, mel, reduction="none") * frame_mask).sum() / denom
    post_loss = (F.mse_loss(mel_post, mel, reduction="none") * frame_mask).sum() / denom
    gate_loss = gate_bce(gate, gate_target)
    valid = (~lengths_to_mask(text_lengths)).unsqueeze(1) & (frame_mask[:, ::R] > 0)
    prior = guided_attention(text_lengths, mel_lengths, align.shape[1])
    attn_loss = (align * prior).masked_select(valid).mean()
    return mel_loss + post_loss + gate_loss + attn_loss, (mel_loss, gate_loss, attn_loss)


def main():
    parser = argparse.ArgumentParser(description="tiny Tacotron 2")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--warmup", type=int, default=4)
    args = parser.parse_args()

    train_loader = DataLoader(SyntheticSpeech(64, seed=0), batch_size=args.batch_size,
                              shuffle=True, collate_fn=collate)  # fmt: skip
    val_batch = collate(list(SyntheticSpeech(16, seed=1)))

    model = Tacotron2()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-6)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / args.warmup)
    )
    gate_bce = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(4.0))

    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for text, text_lengths, mel, mel_lengths, gate in train_loader:
            outputs = model(text, text_lengths, mel)
            loss, _ = tacotron_loss(outputs, mel, mel_lengths, gate, text_lengths, gate_bce)
            optimizer.zero_grad()
            loss.backward()
            grad_norm = nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            total += loss.item()

        model.eval()
        text, text_lengths, mel, mel_lengths, gate = val_batch
        with torch.no_grad():
            outputs = model(text, text_lengths, mel)
            val_loss, (mel_loss, gate_loss, attn_loss) = tacotron_loss(
                outputs, mel, mel_lengths, gate, text_lengths, gate_bce
            )
            # free-running decoding for as many steps as the targets have
            free_mel, free_post, free_gate, _ = model(text, text_lengths, steps=mel.shape[1] // R)
            mask = (~lengths_to_mask(mel_lengths, mel.shape[1])).unsqueeze(-1)
            free_loss = F.mse_loss(free_post.masked_select(mask), mel.masked_select(mask))
            stops = (torch.sigmoid(free_gate) > 0.5).float().argmax(dim=1)
        print(
            f"epoch {epoch} train loss {total / len(train_loader):.6f} val loss "
            f"{val_loss.item():.6f} mel loss {mel_loss.item():.6f} gate loss "
            f"{gate_loss.item():.6f} attn loss {attn_loss.item():.6f} free-run loss "
            f"{free_loss.item():.6f} grad norm {grad_norm.item():.3f} "
            f"stop err {(stops - mel_lengths + 1).abs().float().mean().item():.2f}"
        )


if __name__ == "__main__":
    main()
