"""word2vec (Mikolov et al., 2013) on a synthetic corpus, trained as recommender and word2vec
programs do: with sparse embedding gradients. Skip-gram with negative sampling uses two
nn.Embedding(sparse=True) tables and optim.SparseAdam (negatives drawn from the unigram^0.75
distribution with torch.rand + torch.searchsorted); a CBOW phase then averages padded
context windows with nn.EmbeddingBag(mode="mean", sparse=True, padding_idx) under Adagrad,
while a dense output layer trains with SGD. Checks along the way: the gradients are sparse
(indices, values, coalesce, to_dense), zero_grad, the optimizer's state dict round trip,
and nearest neighbours by cosine similarity."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

TOPICS = {
    "animals": ["cat", "dog", "horse", "cow", "sheep", "goat"],
    "food": ["bread", "cheese", "apple", "rice", "soup", "cake"],
    "city": ["street", "car", "bus", "train", "tower", "bridge"],
}
COMMON = ["the", "a", "and", "with", "near"]


def make_corpus(rng, n_sentences=160, length=8):
    """Sentences that stay on one topic, with common words mixed in."""
    names = sorted(TOPICS)
    sentences = []
    for _ in range(n_sentences):
        words = TOPICS[names[rng.integers(len(names))]]
        sentences.append([words[rng.integers(len(words))] if rng.random() < 0.7
                          else COMMON[rng.integers(len(COMMON))] for _ in range(length)])  # fmt: skip
    return sentences


def skipgram_pairs(sentences, word_to_ix, window):
    pairs = []
    for s in sentences:
        ids = [word_to_ix[w] for w in s]
        for i, c in enumerate(ids):
            for j in range(max(0, i - window), min(len(ids), i + window + 1)):
                if j != i:
                    pairs.append((c, ids[j]))
    return torch.tensor(pairs)


def cbow_windows(sentences, word_to_ix, window, pad):
    ctx, tgt = [], []
    for s in sentences:
        ids = [word_to_ix[w] for w in s]
        for i, t in enumerate(ids):
            row = [ids[j] if 0 <= j < len(ids) else pad
                   for j in range(i - window, i + window + 1) if j != i]  # fmt: skip
            ctx.append(row)
            tgt.append(t)
    return torch.tensor(ctx), torch.tensor(tgt)


class SkipGram(nn.Module):
    def __init__(self, vocab, dim):
        super().__init__()
        self.center = nn.Embedding(vocab, dim, sparse=True)
        self.context = nn.Embedding(vocab, dim, sparse=True)

    def forward(self, center, context, negatives):
        c = self.center(center)  # (B, d)
        pos = (c * self.context(context)).sum(-1)
        neg = torch.bmm(self.context(negatives), c.unsqueeze(2)).squeeze(2)  # (B, K)
        return -(F.logsigmoid(pos) + F.logsigmoid(-neg).sum(1)).mean()


def nearest(table, ix_to_word, word_to_ix, word, k=3):
    vecs = F.normalize(table.detach(), dim=1)
    sims = vecs @ vecs[word_to_ix[word]]
    sims[word_to_ix[word]] = -2.0
    return [ix_to_word[i] for i in torch.topk(sims, k).indices.tolist()]


def main():
    parser = argparse.ArgumentParser(description="word2vec with sparse embedding gradients")
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--negatives", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    sentences = make_corpus(rng)
    vocab = sorted({w for s in sentences for w in s})
    word_to_ix = {w: i for i, w in enumerate(vocab)}
    ix_to_word = dict(enumerate(vocab))
    counts = torch.zeros(len(vocab))
    for s in sentences:
        for w in s:
            counts[word_to_ix[w]] += 1
    unigram = counts**0.75
    cdf = torch.cumsum(unigram / unigram.sum(), 0)

    # --- skip-gram with negative sampling: sparse tables, SparseAdam
    model = SkipGram(len(vocab), args.dim)
    opt = torch.optim.SparseAdam(model.parameters(), lr=0.02)
    pairs = skipgram_pairs(sentences, word_to_ix, window=2)
    perm = torch.from_numpy(rng.permutation(len(pairs)))
    pairs = pairs[perm]
    for epoch in range(args.epochs):
        total = 0.0
        for step, start in enumerate(range(0, len(pairs), args.batch_size)):
            batch = pairs[start : start + args.batch_size]
            u = torch.rand(len(batch), args.negatives)
            negatives = torch.searchsorted(cdf, u).clamp(max=len(vocab) - 1)
            loss = model(batch[:, 0], batch[:, 1], negatives)
            opt.zero_grad()
            loss.backward()
            if epoch == 0 and step == 0:
                g = model.center.weight.grad
                dense = g.to_dense()
                rows = g.coalesce().indices()[0]
                print(f"grad sparse {g.is_sparse} nnz {g._nnz()} rows {len(rows)} "
                      f"dense-rows {int((dense.abs().sum(1) > 0).sum())} "
                      f"sum {dense.sum().item():.6f}")  # fmt: skip
            opt.step()
            total += loss.item() * len(batch)
            if step % 4 == 0:
                print(f"sgns epoch {epoch} step {step} loss: {loss.item():.6f}")
        print(f"sgns epoch {epoch} mean loss: {total / len(pairs):.6f}")

    state = opt.state_dict()
    resumed = torch.optim.SparseAdam(model.parameters(), lr=0.02)
    resumed.load_state_dict(state)
    print(f"state steps {[resumed.state_dict()['state'][i]['step'] for i in (0, 1)]}")
    for word in ("cat", "bread", "train"):
        print(word, "->", nearest(model.center.weight, ix_to_word, word_to_ix, word))

    # --- CBOW: mean of a padded context window, EmbeddingBag(sparse=True) under Adagrad
    pad = len(vocab)
    bag = nn.EmbeddingBag(len(vocab) + 1, args.dim, mode="mean", sparse=True, padding_idx=pad)
    out = nn.Linear(args.dim, len(vocab))
    opt_bag = torch.optim.Adagrad(bag.parameters(), lr=0.1)
    opt_out = torch.optim.SGD(out.parameters(), lr=0.2, momentum=0.9)
    pad_row = bag.weight[pad].detach().clone()
    ctx, tgt = cbow_windows(sentences, word_to_ix, window=2, pad=pad)
    for epoch in range(2):
        for step, start in enumerate(range(0, len(ctx), args.batch_size)):
            logits = out(bag(ctx[start : start + args.batch_size]))
            loss = F.cross_entropy(logits, tgt[start : start + args.batch_size])
            opt_bag.zero_grad(set_to_none=False)
            opt_out.zero_grad()
            loss.backward()
            g = bag.weight.grad
            assert g.is_sparse and not (g.coalesce().indices() == pad).any()
            opt_bag.step()
            opt_out.step()
            if step % 4 == 0:
                print(f"cbow epoch {epoch} step {step} loss: {loss.item():.6f}")
    print(f"padding row untouched {torch.equal(bag.weight[pad].detach(), pad_row)}")
    print("cat ->", nearest(bag.weight[:pad], ix_to_word, word_to_ix, "cat"))


if __name__ == "__main__":
    main()
