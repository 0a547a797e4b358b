"""Training from streamed and map-style records with torch.utils.data's plumbing: an
IterableDataset of "log shards" that splits its shards among DataLoader workers through
get_worker_info (2 worker processes, a worker_init_fn), two of them joined by ChainDataset,
records as dicts batched by default_collate (nested dicts, ints, floats, tensors), map-style
datasets joined by ConcatDataset and cut by random_split with a seeded generator, class
rebalancing by WeightedRandomSampler, a BatchSampler over a SequentialSampler and a
collate_fn that pads variable-length token lists; the model (a mean of nn.Embedding vectors
with a padding_idx beside LayerNorm'd numeric features) trains with AdamW, a LambdaLR warmup
and a per-record weighted cross entropy."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import (
    BatchSampler,
    ChainDataset,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    SequentialSampler,
    WeightedRandomSampler,
    default_collate,
    get_worker_info,
    random_split,
)

N_NUMERIC, VOCAB, N_CLASSES, MAX_TOKENS = 5, 20, 3, 6


def make_record(rng, label=None):
    """One event: numeric features, a bag of token ids and a class (rare class 2)."""
    if label is None:
        label = int(rng.choice(N_CLASSES, p=[0.5, 0.38, 0.12]))
    centre = np.array([1.0, -1.0, 0.5, 0.0, -0.5]) * (label - 1)
    numeric = centre + 0.8 * rng.standard_normal(N_NUMERIC)
    n_tokens = int(rng.integers(1, MAX_TOKENS + 1))
    tokens = rng.integers(0, VOCAB, n_tokens)
    tokens[: n_tokens // 2 + 1] = (tokens[: n_tokens // 2 + 1] % 6) + 6 * label  # class words
    return {
        "numeric": numeric.astype(np.float32),
        "tokens": tokens.tolist(),
        "meta": {"shard": -1, "weight": float(1.0 + 0.5 * (label == 2))},
        "label": label,
    }


class LogShards(IterableDataset):
    """Records from a list of shards (each one generated from its seed); with workers, shard
    k goes to worker k % num_workers, so that every record is read exactly once."""

    def __init__(self, seeds, records_per_shard):
        super().__init__()
        self.seeds, self.records_per_shard = list(seeds), records_per_shard

    def shards_for_this_worker(self):
        info = get_worker_info()
        if info is None:
            return self.seeds
        return self.seeds[info.id :: info.num_workers]

    def __iter__(self):
        for seed in self.shards_for_this_worker():
            rng = np.random.default_rng(seed)
            for _ in range(self.records_per_shard):
                record = make_record(rng)
                record["meta"]["shard"] = seed
                yield to_tensors(record)


class EventTable(Dataset):
    """A map-style table of records with a fixed class for every row."""

    def __init__(self, seed, labels):
        rng = np.random.default_rng(seed)
        self.rows = [to_tensors(make_record(rng, int(c))) for c in labels]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        return self.rows[index]


def to_tensors(record):
    record = dict(record)
    record["numeric"] = torch.from_numpy(record["numeric"])
    record["tokens"] = torch.tensor(record["tokens"], dtype=torch.long)
    return record


def pad_collate(records):
    """default_collate for everything but the ragged token lists, which are padded."""
    tokens = [r["tokens"] for r in records]
    batch = default_collate([{k: v for k, v in r.items() if k != "tokens"} for r in records])
    padded = torch.full((len(tokens), MAX_TOKENS), VOCAB, dtype=torch.long)  # VOCAB = padding
    for i, t in enumerate(tokens):
        padded[i, : len(t)] = t
    batch["tokens"] = padded
    batch["n_tokens"] = torch.tensor([len(t) for t in tokens])
    return batch


def seed_worker(worker_id):
    np.random.seed(1000 + worker_id)


class EventClassifier(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB + 1, 12, padding_idx=VOCAB)
        self.numeric = nn.Sequential(nn.Linear(N_NUMERIC, 16), nn.LayerNorm(16), nn.GELU())
        self.head = nn.Sequential(
            nn.Linear(16 + 12, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, N_CLASSES)
        )

    def forward(self, batch):
        emb = self.embedding(batch["tokens"])  # padding rows are zero vectors
        bag = emb.sum(dim=1) / batch["n_tokens"].unsqueeze(1).to(emb.dtype)
        return self.head(torch.cat([self.numeric(batch["numeric"]), bag], dim=1))


def weighted_loss(logits, batch):
    per_record = F.cross_entropy(logits, batch["label"], reduction="none")
    weights = batch["meta"]["weight"].to(per_record.dtype)
    return (per_record * weights).sum() / weights.sum()


def main():
    parser = argparse.ArgumentParser(description="streaming and map-style data pipelines")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()

    stream = ChainDataset([LogShards([11, 12, 13, 14], 16), LogShards([21, 22], 16)])
    stream_loader = DataLoader(
        stream,
        batch_size=args.batch_size,
        collate_fn=pad_collate,
        num_workers=args.workers,
        worker_init_fn=seed_worker,
    )
    rng = np.random.default_rng(0)
    table = ConcatDataset(
        [EventTable(1, rng.choice(N_CLASSES, 40, p=[0.6, 0.3, 0.1])), EventTable(2, [2] * 4)]
    )
    train_table, val_table = random_split(
        table, [0.75, 0.25], generator=torch.Generator().manual_seed(42)
    )
    train_labels = torch.tensor([int(train_table[i]["label"]) for i in range(len(train_table))])
    class_counts = torch.bincount(train_labels, minlength=N_CLASSES).float()
    sample_weights = (1.0 / class_counts)[train_labels]
    sampler = WeightedRandomSampler(sample_weights, num_samples=len(train_table), replacement=True)
    table_loader = DataLoader(
        train_table, batch_size=args.batch_size, sampler=sampler, collate_fn=pad_collate
    )
    val_loader = DataLoader(
        val_table,
        batch_sampler=BatchSampler(SequentialSampler(val_table), batch_size=8, drop_last=False),
        collate_fn=pad_collate,
    )

    model = EventClassifier()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warmup = 4
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * 0.97**step
    )

    print(f"table sizes {table.cumulative_sizes} train {len(train_table)} val {len(val_table)}")
    for epoch in range(args.epochs):
        model.train()
        stream_total, n_stream, shards = 0.0, 0, set()
        for batch in stream_loader:
            optimizer.zero_grad()
            loss = weighted_loss(model(batch), batch)
            loss.backward()
            optimizer.step()
            scheduler.step()
            stream_total += loss.item()
            n_stream += 1
            shards.update(batch["meta"]["shard"].tolist())
        table_total, seen = 0.0, torch.zeros(N_CLASSES)
        for batch in table_loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(batch), batch["label"], label_smoothing=0.05)
            loss.backward()
            optimizer.step()
            table_total += loss.item()
            seen += torch.bincount(batch["label"], minlength=N_CLASSES)
        model.eval()
        correct, val_total, count = 0, 0.0, 0
        with torch.no_grad():
            for batch in val_loader:
                logits = model(batch)
                val_total += F.cross_entropy(logits, batch["label"], reduction="sum").item()
                correct += (logits.argmax(1) == batch["label"]).sum().item()
                count += len(batch["label"])
        print(
            f"epoch {epoch} stream loss {stream_total / n_stream:.6f} ({n_stream} batches, "
            f"shards {sorted(shards)}) table loss {table_total / len(table_loader):.6f} "
            f"(classes seen {seen.tolist()}) val loss {val_total / count:.6f} "
            f"acc {correct / count:.4f} lr {scheduler.get_last_lr()[0]:.6f}"
        )


if __name__ == "__main__":
    main()
