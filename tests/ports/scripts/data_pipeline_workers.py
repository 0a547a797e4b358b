"""The input pipeline of a production training script: a map-style dataset of dict samples
(namedtuple metadata, variable-length sequences padded by a custom collate_fn with
pad_sequence), an IterableDataset sharded across DataLoader workers through get_worker_info
(num_workers=2, persistent_workers, prefetch_factor, worker_init_fn), DistributedSampler
splitting an epoch between ranks (padding and drop_last), a
BatchSampler over a SequentialSampler with drop_last, ConcatDataset / Subset / ChainDataset,
and default_collate of nested structures; the model trains on the sorted union."""

import argparse
import collections

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence
from torch.utils.data import (
    BatchSampler,
    ChainDataset,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    SequentialSampler,
    Subset,
    get_worker_info,
)
from torch.utils.data.dataloader import default_collate
from torch.utils.data.distributed import DistributedSampler

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=2)
args = p.parse_args()
torch.manual_seed(0)

Meta = collections.namedtuple("Meta", ["source", "length"])
VOCAB = 20
lengths = torch.randint(3, 9, (64,))
sequences = [torch.randint(1, VOCAB, (int(n),)) for n in lengths]
targets = torch.stack([s.float().mean() / VOCAB for s in sequences])


class SeqDataset(Dataset):
    def __init__(self, lo, hi, source):
        self.lo, self.hi, self.source = lo, hi, source

    def __len__(self):
        return self.hi - self.lo

    def __getitem__(self, i):
        j = self.lo + i
        return {
            "tokens": sequences[j],
            "target": targets[j],
            "meta": Meta(self.source, len(sequences[j])),
        }


class Stream(IterableDataset):
    """Indices lo..hi, split between the workers by stride."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        for j in range(self.lo + start, self.hi, step):
            yield j, sequences[j].sum().item()


def collate(batch):
    tokens = [b["tokens"] for b in batch]
    lens = torch.tensor([len(t) for t in tokens])
    return {
        "tokens": pad_sequence(tokens, batch_first=True, padding_value=0),
        "lengths": lens,
        "target": torch.stack([b["target"] for b in batch]),
        "meta": default_collate([b["meta"] for b in batch]),
    }


def seed_worker(worker_id):
    torch.manual_seed(1000 + worker_id)


full = ConcatDataset([SeqDataset(0, 40, "a"), SeqDataset(40, 64, "b")])
train = Subset(full, list(range(0, 56)))
val = Subset(full, list(range(56, 64)))
print("sizes", len(full), len(train), len(val), full.cumulative_sizes)

# the two ranks of a data-parallel run each see half an epoch; together they cover it once
# (NOTE: unshuffled: the port harness replaces randperm with one shared stream)
seen = []
for rank in range(2):
    sampler = DistributedSampler(val, num_replicas=3, rank=rank, shuffle=False)
    sampler.set_epoch(1)
    seen.append(list(sampler))
print("ranks", seen, len(DistributedSampler(val, num_replicas=3, rank=2, drop_last=True)))

stream = ChainDataset([Stream(0, 10), Stream(50, 60)])
loader = DataLoader(stream, batch_size=4, num_workers=2, persistent_workers=True,
                    prefetch_factor=2, worker_init_fn=seed_worker)  # fmt: skip
got = sorted(int(j) for idx, _ in loader for j in idx)
print("stream", got == list(range(10)) + list(range(50, 60)), len(got))
sums = sorted(float(s) for _, s in ((i, s) for batch in loader for i, s in zip(*batch)))
print(f"stream sum {sum(sums):.1f}")


class Reader(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 12, padding_idx=0)
        self.gru = nn.GRU(12, 16, batch_first=True)
        self.out = nn.Linear(16, 1)

    def forward(self, tokens, lengths):
        packed = pack_padded_sequence(self.emb(tokens), lengths, batch_first=True,
                                      enforce_sorted=False)  # fmt: skip
        _, h = self.gru(packed)
        return self.out(h[-1]).squeeze(1)


model = Reader()
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
batches = BatchSampler(SequentialSampler(train), batch_size=12, drop_last=True)
train_loader = DataLoader(train, batch_sampler=batches, collate_fn=collate, num_workers=2)
val_loader = DataLoader(val, batch_size=8, collate_fn=collate)
for epoch in range(args.epochs):
    total, n = 0.0, 0
    for batch in train_loader:
        pred = model(batch["tokens"], batch["lengths"])
        loss = F.mse_loss(pred, batch["target"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
        n += 1
    with torch.no_grad():
        vb = next(iter(val_loader))
        val_loss = F.mse_loss(model(vb["tokens"], vb["lengths"]), vb["target"]).item()
    sources = "".join(vb["meta"].source)
    print(
        f"epoch {epoch} train loss {total / n:.6f} val loss {val_loss:.6f} batches {n} "
        f"sources {sources} max len {int(vb['meta'].length.max())}"
    )
