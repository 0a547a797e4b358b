"""A character-aware language model (Kim et al., 2016; the token encoder of ELMo): each word's
characters are embedded and run through Conv1d filters of several widths, max-pooled over
time, passed through highway layers (sigmoid transform gates), then an LSTM over the words,
with nn.AdaptiveLogSoftmaxWithLoss (frequency-sorted clusters) as the output layer."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class Highway(nn.Module):
    """y = g * relu(W_h x) + (1 - g) * x with g = sigmoid(W_g x); the gate bias starts
    negative so each layer begins close to the identity (the carry gate)."""

    def __init__(self, input_dim, num_layers=2, activation=F.relu):
        super().__init__()
        self.input_dim = input_dim
        self.layers = nn.ModuleList(
            [nn.Linear(input_dim, input_dim * 2) for _ in range(num_layers)]
        )
        self.activation = activation
        for layer in self.layers:
            layer.bias[input_dim:].data.fill_(1)

    def forward(self, inputs):
        current_input = inputs
        for layer in self.layers:
            projected_input = layer(current_input)
            linear_part = current_input
            nonlinear_part, gate = projected_input.chunk(2, dim=-1)
            nonlinear_part = self.activation(nonlinear_part)
            gate = torch.sigmoid(gate)
            current_input = gate * linear_part + (1 - gate) * nonlinear_part
        return current_input


class CharCNNEmbedder(nn.Module):
    def __init__(self, n_chars, char_dim, filters, n_highway, out_dim):
        super().__init__()
        self.char_embedding = nn.Embedding(n_chars, char_dim, padding_idx=0)
        self.convs = nn.ModuleList(
            [nn.Conv1d(char_dim, num, kernel_size=width, bias=True) for width, num in filters]
        )
        n_filters = sum(num for _, num in filters)
        self.highway = Highway(n_filters, n_highway)
        self.projection = nn.Linear(n_filters, out_dim)

    def forward(self, chars):
        # chars (batch, seq, max_chars) -> (batch, seq, out_dim)
        batch, seq, max_chars = chars.shape
        x = self.char_embedding(chars.reshape(-1, max_chars)).transpose(1, 2)  # (B*S, C, L)
        convs = []
        for conv in self.convs:
            convolved = conv(x)
            convolved, _ = torch.max(convolved, dim=-1)  # max over time
            convs.append(torch.tanh(convolved))
        token = torch.cat(convs, dim=-1)
        token = self.highway(token)
        return self.projection(token).view(batch, seq, -1)


class CharLM(nn.Module):
    def __init__(self, n_chars, vocab, cutoffs, hidden=32, head_bias=False):
        super().__init__()
        self.embedder = CharCNNEmbedder(n_chars, 8, [(1, 8), (2, 8), (3, 16), (4, 16)], 2, hidden)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.out = nn.AdaptiveLogSoftmaxWithLoss(
            hidden, vocab, cutoffs=cutoffs, div_value=2.0, head_bias=head_bias
        )

    def forward(self, chars, targets):
        h, _ = self.lstm(self.embedder(chars))
        h = h.reshape(-1, h.size(-1))
        return self.out(h, targets.reshape(-1)), h


def build_corpus(rng, vocab, n_sent, seq):
    """Words are random letter strings; word ids are sorted by a Zipf frequency so that the
    adaptive softmax's head holds the frequent ones; the next word depends on the last."""
    letters = np.arange(1, 27)
    spellings = [rng.choice(letters, int(rng.integers(2, 7))) for _ in range(vocab)]
    zipf = 1.0 / np.arange(1, vocab + 1)
    follow = rng.integers(0, vocab, (vocab, 3))
    words = np.zeros((n_sent, seq + 1), dtype=np.int64)
    for s in range(n_sent):
        w = int(rng.choice(vocab, p=zipf / zipf.sum()))
        for t in range(seq + 1):
            words[s, t] = w
            if rng.random() < 0.6:
                w = int(follow[w, int(rng.integers(0, 3))])
            else:
                w = int(rng.choice(vocab, p=zipf / zipf.sum()))
    chars = np.zeros((n_sent, seq + 1, 8), dtype=np.int64)
    for s in range(n_sent):
        for t in range(seq + 1):
            sp = spellings[words[s, t]]
            chars[s, t, 0] = 27  # begin-of-word
            chars[s, t, 1 : 1 + len(sp)] = sp
            chars[s, t, 1 + len(sp)] = 28  # end-of-word
    return torch.from_numpy(chars), torch.from_numpy(words)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--cutoffs", type=int, nargs="+", default=[8, 24])
    parser.add_argument("--head-bias", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    vocab = 48
    chars, words = build_corpus(rng, vocab, 96, 10)
    train = TensorDataset(chars[:80, :-1], words[:80, 1:])
    val_chars, val_words = chars[80:, :-1], words[80:, 1:]
    loader = DataLoader(train, batch_size=16, shuffle=True)

    model = CharLM(29, vocab, args.cutoffs, head_bias=args.head_bias)
    optimizer = torch.optim.Adam(model.parameters(), lr=4e-3)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
    for epoch in range(1, args.epochs + 1):
        model.train()
        total = 0.0
        for c, w in loader:
            (output, loss), _ = model(c, w)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            total += loss.item()
        scheduler.step()
        model.eval()
        with torch.no_grad():
            (output, val_loss), h = model(val_chars, val_words)
            log_probs = model.out.log_prob(h)
            full_nll = F.nll_loss(log_probs, val_words.reshape(-1))
            pred = model.out.predict(h)
            acc = (pred == val_words.reshape(-1)).float().mean().item()
        print(
            f"epoch {epoch} train loss {total / len(loader):.5f} val loss {val_loss.item():.5f} "
            f"log_prob loss {full_nll.item():.5f} ppl {full_nll.exp().item():.3f} acc {acc:.3f}"
            f" mass {log_probs.exp().sum(1).mean().item():.4f}"
        )


if __name__ == "__main__":
    main()
