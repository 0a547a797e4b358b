"""A CTC acoustic model decoded greedily and by prefix beam search with a bigram language model:
a 2-layer bidirectional nn.GRU (time-major, inter-layer dropout) over variable-length
synthetic "utterances" packed with pack_padded_sequence(enforce_sorted=False) and unpacked
with pad_packed_sequence, log_softmax over the time-major output, nn.CTCLoss(blank=0,
zero_infinity=True) with concatenated 1-D targets (one utterance too short for its
transcript, whose infinite loss is zeroed), reduction "mean" or "sum" (--reduction), Adam
with gradient clipping; greedy decoding through argmax and torch.unique_consecutive, a
bigram LM estimated with torch.bincount, CTC prefix beam search in log space, and the label
error rate from an edit distance."""

import argparse
import math
from collections import defaultdict

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

BLANK = 0
N_LABELS = 6  # labels 1..5, 0 is the blank
N_FEATS = 8


class AcousticModel(nn.Module):
    def __init__(self, n_feats, hidden, n_classes, dropout):
        super().__init__()
        self.proj = nn.Linear(n_feats, hidden)
        self.rnn = nn.GRU(hidden, hidden, num_layers=2, bidirectional=True, dropout=dropout)
        self.out = nn.Linear(2 * hidden, n_classes)

    def forward(self, feats, lengths):
        """feats (T, B, F), lengths (B,) -> log-probabilities (T, B, C)."""
        x = torch.tanh(self.proj(feats))
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, out_lengths = pad_packed_sequence(out, total_length=feats.size(0))
        return self.out(out).log_softmax(dim=-1), out_lengths


def make_utterances(rng, n, prototypes, transition):
    """Label sequences from a bigram source; each label sounds for 2-4 noisy frames of its
    prototype, sometimes followed by a frame of silence."""
    feats, labels = [], []
    for _ in range(n):
        length = int(rng.integers(2, 6))
        seq = [int(rng.integers(1, N_LABELS))]
        for _ in range(length - 1):
            seq.append(int(rng.choice(N_LABELS - 1, p=transition[seq[-1] - 1])) + 1)
        frames = []
        for lab in seq:
            for _ in range(int(rng.integers(2, 5))):
                frames.append(prototypes[lab] + 0.6 * rng.standard_normal(N_FEATS))
            if rng.random() < 0.3:
                frames.append(0.6 * rng.standard_normal(N_FEATS))
        feats.append(np.array(frames, dtype=np.float32))
        labels.append(seq)
    return feats, labels


def collate(feats, labels, truncate_first=False):
    lengths = torch.tensor([len(f) for f in feats])
    if truncate_first:
        # an utterance cut shorter than its transcript: CTC has no alignment for it
        lengths[0] = len(labels[0]) - 1
    x = torch.zeros(int(lengths.max()), len(feats), N_FEATS)
    for i, f in enumerate(feats):
        x[: lengths[i], i] = torch.from_numpy(f[: int(lengths[i])])
    targets = torch.cat([torch.tensor(s) for s in labels])
    target_lengths = torch.tensor([len(s) for s in labels])
    return x, lengths, targets, target_lengths


def greedy_decode(log_probs, lengths):
    best = log_probs.argmax(dim=-1)  # (T, B)
    hyps = []
    for b in range(best.size(1)):
        collapsed = torch.unique_consecutive(best[: lengths[b], b])
        hyps.append(collapsed[collapsed != BLANK].tolist())
    return hyps


def bigram_lm(labels):
    """log P(next | previous) with add-one smoothing; row 0 is the start of a sentence."""
    pairs = []
    for seq in labels:
        prev = [0] + seq[:-1]
        pairs.extend(p * N_LABELS + c for p, c in zip(prev, seq))
    counts = torch.bincount(torch.tensor(pairs), minlength=N_LABELS * N_LABELS).float()
    counts = counts.view(N_LABELS, N_LABELS)[:, 1:] + 1.0
    lm = torch.full((N_LABELS, N_LABELS), -math.inf)
    lm[:, 1:] = torch.log(counts / counts.sum(dim=1, keepdim=True))
    return lm


def logsumexp(*xs):
    m = max(xs)
    return m if m == -math.inf else m + math.log(sum(math.exp(x - m) for x in xs))


def prefix_beam_search(log_probs, lm, beam, alpha):
    """CTC prefix beam search over (T, C) log-probabilities, scoring each extension with
    alpha * log P_lm(label | previous label)."""
    lp = log_probs.tolist()
    lm = lm.tolist()
    beams = {(): (0.0, -math.inf)}  # prefix -> (log P ending in blank, ending in a label)
    for frame in lp:
        nxt = defaultdict(lambda: (-math.inf, -math.inf))
        for prefix, (pb, pnb) in beams.items():
            total = logsumexp(pb, pnb)
            b_, nb_ = nxt[prefix]
            nxt[prefix] = (logsumexp(b_, total + frame[BLANK]), nb_)
            last = prefix[-1] if prefix else 0
            for c in range(1, N_LABELS):
                score = frame[c] + alpha * lm[last][c]
                ext = prefix + (c,)
                b_, nb_ = nxt[ext]
                if c == last and prefix:
                    # a repeat needs a blank in between; without one it stays the same prefix
                    nxt[ext] = (b_, logsumexp(nb_, pb + score))
                    b2, nb2 = nxt[prefix]
                    nxt[prefix] = (b2, logsumexp(nb2, pnb + frame[c]))
                else:
                    nxt[ext] = (b_, logsumexp(nb_, total + score))
        ranked = sorted(nxt.items(), key=lambda kv: -logsumexp(*kv[1]))
        beams = dict(ranked[:beam])
    return list(max(beams.items(), key=lambda kv: logsumexp(*kv[1]))[0])


def edit_distance(a, b):
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def error_rate(hyps, refs):
    return sum(edit_distance(h, r) for h, r in zip(hyps, refs)) / sum(len(r) for r in refs)


def main():
    parser = argparse.ArgumentParser(description="BiGRU CTC with greedy and beam+LM decoding")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--hidden", type=int, default=24)
    # NOTE: 0 by default: the GRU's inter-layer dropout draws from the framework's own
    # stream, which the PyTorch/manygrad comparison cannot share
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--reduction", choices=["mean", "sum"], default="mean")
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--alpha", type=float, default=0.5)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    prototypes = 1.5 * rng.standard_normal((N_LABELS, N_FEATS)).astype(np.float32)
    transition = rng.dirichlet(np.full(N_LABELS - 1, 0.4), size=N_LABELS - 1)
    train_feats, train_labels = make_utterances(rng, 96, prototypes, transition)
    val_feats, val_labels = make_utterances(rng, 24, prototypes, transition)
    lm = bigram_lm(train_labels)

    model = AcousticModel(N_FEATS, args.hidden, N_LABELS, args.dropout)
    ctc = nn.CTCLoss(blank=BLANK, reduction=args.reduction, zero_infinity=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    val_x, val_len, val_targets, val_target_len = collate(val_feats, val_labels)

    for epoch in range(args.epochs):
        model.train()
        total, batches = 0.0, 0
        for i in range(0, len(train_feats), args.batch_size):
            x, lengths, targets, target_lengths = collate(
                train_feats[i : i + args.batch_size],
                train_labels[i : i + args.batch_size],
                truncate_first=(i == 0),
            )
            log_probs, _ = model(x, lengths)
            loss = ctc(log_probs, targets, lengths, target_lengths)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            per_utt = loss.item() / (len(lengths) if args.reduction == "sum" else 1)
            total += per_utt
            batches += 1

        model.eval()
        with torch.no_grad():
            log_probs, out_len = model(val_x, val_len)
            val_loss = ctc(log_probs, val_targets, val_len, val_target_len)
        if args.reduction == "sum":
            val_loss = val_loss / len(val_len)
        greedy = greedy_decode(log_probs, out_len)
        beamed = [
            prefix_beam_search(log_probs[: out_len[b], b], lm, args.beam, args.alpha)
            for b in range(len(val_labels))
        ]
        print(
            f"epoch {epoch} loss {total / batches:.6f} val loss {val_loss.item():.6f} "
            f"greedy LER {error_rate(greedy, val_labels):.4f} "
            f"beam+LM LER {error_rate(beamed, val_labels):.4f}"
        )
    print(f"example: ref {val_labels[0]} greedy {greedy[0]} beam {beamed[0]}")


if __name__ == "__main__":
    main()
