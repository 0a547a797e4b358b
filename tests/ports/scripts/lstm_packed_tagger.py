"""A bidirectional LSTM sequence tagger over variable-length sentences: padded and packed
batches, masked accuracy, RMSprop and ReduceLROnPlateau on the validation loss."""

import argparse

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

PAD_IDX = 0
IGNORE = -100


class BiLSTMTagger(nn.Module):
    def __init__(
        self, vocab_size, tagset_size, embedding_dim, hidden_dim, num_layers=2, dropout=0.0
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_IDX)
        self.lstm = nn.LSTM(
            embedding_dim,
            hidden_dim,
            num_layers=num_layers,
            bidirectional=True,
            batch_first=True,
            dropout=dropout,
        )
        self.dropout = nn.Dropout(dropout)
        self.hidden2tag = nn.Linear(2 * hidden_dim, tagset_size)

    def forward(self, tokens, lengths):
        embedded = self.dropout(self.embedding(tokens))
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        packed_out, (h_n, c_n) = self.lstm(packed)
        out, out_lengths = pad_packed_sequence(
            packed_out, batch_first=True, total_length=tokens.size(1)
        )
        return self.hidden2tag(self.dropout(out)), h_n


def make_corpus(rng, n_sent, vocab_size, word_tag, ambiguous):
    """Each word has a tag given by its id; ambiguous words take the tag of the previous
    word instead, so the model needs context."""
    sents, tags = [], []
    for _ in range(n_sent):
        length = int(rng.integers(3, 12))
        words = rng.integers(1, vocab_size, length)
        t = word_tag[words].copy()
        for i in range(1, length):
            if ambiguous[words[i]]:
                t[i] = t[i - 1]
        sents.append(words)
        tags.append(t)
    return sents, tags


def collate(sents, tags):
    lengths = torch.tensor([len(s) for s in sents], dtype=torch.long)
    x = pad_sequence([torch.from_numpy(s) for s in sents], batch_first=True, padding_value=PAD_IDX)
    y = pad_sequence([torch.from_numpy(t) for t in tags], batch_first=True, padding_value=IGNORE)
    return x, y, lengths


def masked_accuracy(logits, targets):
    mask = targets != IGNORE
    pred = logits.argmax(dim=-1)
    correct = ((pred == targets) & mask).sum().item()
    return correct, mask.sum().item()


def main():
    parser = argparse.ArgumentParser(description="BiLSTM tagger with packed sequences")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.03)
    parser.add_argument("--optimizer", choices=["rmsprop", "adagrad"], default="rmsprop")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    vocab_size, n_tags = 30, 5
    word_tag = rng.integers(0, n_tags, vocab_size)
    ambiguous = rng.random(vocab_size) < 0.25
    train_s, train_t = make_corpus(rng, 64, vocab_size, word_tag, ambiguous)
    val_s, val_t = make_corpus(rng, 24, vocab_size, word_tag, ambiguous)

    model = BiLSTMTagger(vocab_size, n_tags, embedding_dim=12, hidden_dim=16)
    criterion = nn.CrossEntropyLoss(ignore_index=IGNORE)
    if args.optimizer == "rmsprop":
        optimizer = torch.optim.RMSprop(model.parameters(), lr=args.lr, alpha=0.9, momentum=0.1)
    else:
        optimizer = torch.optim.Adagrad(model.parameters(), lr=args.lr, lr_decay=1e-3)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=0.5, patience=0
    )

    x_val, y_val, len_val = collate(val_s, val_t)
    for epoch in range(1, args.epochs + 1):
        model.train()
        total_loss, correct, count = 0.0, 0, 0
        for start in range(0, len(train_s), args.batch_size):
            x, y, lengths = collate(
                train_s[start : start + args.batch_size], train_t[start : start + args.batch_size]
            )
            optimizer.zero_grad()
            logits, _ = model(x, lengths)
            loss = criterion(logits.view(-1, n_tags), y.view(-1))
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
            optimizer.step()
            total_loss += loss.item()
            c, m = masked_accuracy(logits, y)
            correct += c
            count += m
        n_batches = (len(train_s) + args.batch_size - 1) // args.batch_size
        model.eval()
        with torch.no_grad():
            logits, h_n = model(x_val, len_val)
            val_loss = criterion(logits.reshape(-1, n_tags), y_val.reshape(-1))
            vc, vm = masked_accuracy(logits, y_val)
        scheduler.step(val_loss.item())
        print(
            f"epoch {epoch} train loss: {total_loss / n_batches:.5f} acc {correct / count:.3f} "
            f"val loss: {val_loss.item():.5f} acc {vc / vm:.3f} "
            f"lr {optimizer.param_groups[0]['lr']:.4g} h_n {tuple(h_n.shape)}"
        )
    # padded positions of the unpacked output are exactly zero
    with torch.no_grad():
        emb = model.embedding(x_val)
        packed = pack_padded_sequence(emb, len_val, batch_first=True, enforce_sorted=False)
        out, lens = pad_packed_sequence(model.lstm(packed)[0], batch_first=True)
        pad_mask = torch.arange(out.size(1))[None, :] >= lens[:, None]
        print(
            f"padded outputs abs sum {out[pad_mask].abs().sum().item():.6f}, lengths {lens[:5].tolist()}"
        )


if __name__ == "__main__":
    main()
