"""Sentence classification with a multichannel text CNN (Kim, 2014) over an imbalanced
synthetic corpus, with the torch.utils.data plumbing of a real project: a map-style Dataset of
variable-length token lists, random_split into Subsets, a custom batch Sampler that buckets
sentences of similar length, a WeightedRandomSampler that rebalances the classes, a collate_fn
padding with pad_sequence. The word vectors come from a "pretrained" matrix through
nn.Embedding.from_pretrained: one frozen (static) copy and one fine-tuned copy with a
padding_idx. Convolutions of several widths, max-over-time pooling, Adadelta."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset, Sampler, WeightedRandomSampler, random_split

PAD = 0


class SentenceDataset(Dataset):
    """Class c sentences draw most words from topic c's vocabulary, some from a shared one."""

    def __init__(self, n, vocab_size=60, n_classes=3, seed=0):
        rng = np.random.default_rng(seed)
        topic = (vocab_size - 1) // (n_classes + 1)
        self.labels = rng.choice(n_classes, size=n, p=[0.6, 0.3, 0.1])  # imbalanced
        self.sentences = []
        for c in self.labels:
            length = rng.integers(4, 15)
            own = rng.integers(1 + c * topic, 1 + (c + 1) * topic, length)
            shared = rng.integers(1 + n_classes * topic, vocab_size, length)
            self.sentences.append(np.where(rng.random(length) < 0.6, own, shared))

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, idx):
        return torch.tensor(self.sentences[idx], dtype=torch.long), int(self.labels[idx])


class BucketBatchSampler(Sampler):
    """Yields lists of indices whose sentences have similar lengths, buckets in random order."""

    def __init__(self, lengths, batch_size, shuffle=True):
        self.lengths = lengths
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __iter__(self):
        order = sorted(range(len(self.lengths)), key=lambda i: (self.lengths[i], i))
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.shuffle:
            perm = torch.argsort(torch.rand(len(batches))).tolist()
            batches = [batches[i] for i in perm]
        yield from batches

    def __len__(self):
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size


def collate_batch(batch, min_len=4):
    tokens, labels = zip(*batch)
    lengths = torch.tensor([len(t) for t in tokens])
    padded = pad_sequence(list(tokens), batch_first=True, padding_value=PAD)
    if padded.size(1) < min_len:  # the widest filter needs this many positions
        padded = F.pad(padded, (0, min_len - padded.size(1)), value=PAD)
    return padded, lengths, torch.tensor(labels)


class TextCNN(nn.Module):
    def __init__(self, vectors, n_classes, kernel_sizes=(2, 3, 4), n_filters=8, dropout=0.5):
        super().__init__()
        self.static = nn.Embedding.from_pretrained(vectors, freeze=True)
        self.tuned = nn.Embedding.from_pretrained(vectors.clone(), freeze=False, padding_idx=PAD)
        dim = 2 * vectors.size(1)
        self.convs = nn.ModuleList([nn.Conv1d(dim, n_filters, k) for k in kernel_sizes])
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(n_filters * len(kernel_sizes), n_classes)

    def forward(self, tokens):
        x = torch.cat([self.static(tokens), self.tuned(tokens)], dim=2)  # (N, T, 2D)
        x = x.transpose(1, 2)
        feats = [F.relu(conv(x)) for conv in self.convs]  # (N, n_filters, T - k + 1)
        pooled = [F.max_pool1d(f, f.size(2)).squeeze(2) for f in feats]  # max over time
        return self.fc(self.dropout(torch.cat(pooled, dim=1)))


def evaluate(model, loader):
    model.eval()
    total, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for tokens, _, labels in loader:
            logits = model(tokens)
            total += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(1) == labels).sum().item()
            n += labels.numel()
    model.train()
    return total / n, correct / n


def main():
    parser = argparse.ArgumentParser(description="Text CNN with samplers")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--embed-dim", type=int, default=12)
    args = parser.parse_args()

    dataset = SentenceDataset(120)
    train_set, val_set = random_split(dataset, [0.75, 0.25])
    vocab_size = 60
    vectors = torch.from_numpy(
        np.random.default_rng(1).standard_normal((vocab_size, args.embed_dim)).astype(np.float32)
    )
    vectors[PAD] = 0.0

    lengths = [len(dataset.sentences[i]) for i in train_set.indices]
    bucket_loader = DataLoader(
        train_set,
        batch_sampler=BucketBatchSampler(lengths, args.batch_size),
        collate_fn=collate_batch,
    )
    train_labels = torch.tensor([int(dataset.labels[i]) for i in train_set.indices])
    class_count = torch.bincount(train_labels)
    sample_weights = (1.0 / class_count.float())[train_labels]
    balanced_loader = DataLoader(
        train_set,
        batch_size=args.batch_size,
        sampler=WeightedRandomSampler(sample_weights, num_samples=len(train_set), replacement=True),
        collate_fn=collate_batch,
        drop_last=True,
    )
    val_loader = DataLoader(val_set, batch_size=32, collate_fn=collate_batch)

    model = TextCNN(vectors, n_classes=3)
    optimizer = torch.optim.Adadelta(
        filter(lambda p: p.requires_grad, model.parameters()), lr=1.0, rho=0.95
    )
    for epoch in range(args.epochs):
        # first epoch in length buckets, later ones class-balanced
        loader = bucket_loader if epoch == 0 else balanced_loader
        for i, (tokens, _, labels) in enumerate(loader):
            loss = F.cross_entropy(model(tokens), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            print(f"epoch {epoch} batch {i} width {tokens.size(1)} loss: {loss.item():.6f}")
        val_loss, val_acc = evaluate(model, val_loader)
        print(f"epoch {epoch} val loss: {val_loss:.6f} acc {val_acc:.3f}")
    assert model.static.weight.grad is None and model.tuned.weight.grad[PAD].abs().sum() == 0


if __name__ == "__main__":
    main()
