"""Sequence classification with nn.TransformerEncoder (after the PyTorch transformer
tutorial): sinusoidal positions, a padding mask, mean pooling."""

import math

import numpy as np
import torch
import torch.nn as nn


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, max_len=64):
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, 1, d_model)
        pe[:, 0, 0::2] = torch.sin(position * div_term)
        pe[:, 0, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x):
        return x + self.pe[: x.size(0)]


class TransformerModel(nn.Module):
    def __init__(self, ntoken, d_model, nhead, d_hid, nlayers, nclass):
        super().__init__()
        self.pos_encoder = PositionalEncoding(d_model)
        encoder_layers = nn.TransformerEncoderLayer(d_model, nhead, d_hid, dropout=0.0)
        self.transformer_encoder = nn.TransformerEncoder(encoder_layers, nlayers)
        self.embedding = nn.Embedding(ntoken, d_model)
        self.d_model = d_model
        self.head = nn.Linear(d_model, nclass)

    def forward(self, src, pad_mask):
        src = self.embedding(src) * math.sqrt(self.d_model)
        src = self.pos_encoder(src)
        output = self.transformer_encoder(src, src_key_padding_mask=pad_mask)
        keep = (~pad_mask).t().unsqueeze(-1).float()
        pooled = (output * keep).sum(0) / keep.sum(0)
        return self.head(pooled)


def main():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 9, 48)
    tokens = rng.integers(1, 20, (48, 8))
    labels = torch.from_numpy((tokens[:, 0] > 10).astype(np.int64))
    pad = np.arange(8)[None, :] >= lengths[:, None]
    tokens[pad] = 0
    src = torch.from_numpy(tokens).t().contiguous()
    pad_mask = torch.from_numpy(pad)
    model = TransformerModel(20, 16, 2, 32, 2, 2)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 5, gamma=0.5)
    for epoch in range(12):
        model.train()
        optimizer.zero_grad()
        loss = criterion(model(src, pad_mask), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        scheduler.step()
        print(f"| epoch {epoch:3d} | lr {scheduler.get_last_lr()[0]:.4f} | loss {loss.item():.5f}")


if __name__ == "__main__":
    main()
