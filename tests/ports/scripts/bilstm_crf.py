"""A BiLSTM-CRF named-entity tagger (after the PyTorch "Advanced: Making Dynamic Decisions"
tutorial, batched): packed BiLSTM emissions, a linear-chain CRF whose partition function runs
the forward algorithm with logsumexp over the transition matrix, gold path scores gathered
from emissions and transitions, masked by sentence length, and batched Viterbi decoding with
max/argmax and backtracking."""

import argparse

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

PAD = 0


class CRF(nn.Module):
    def __init__(self, num_tags):
        super().__init__()
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))  # [from, to]
        self.start_transitions = nn.Parameter(torch.empty(num_tags))
        self.end_transitions = nn.Parameter(torch.empty(num_tags))
        nn.init.uniform_(self.transitions, -0.1, 0.1)
        nn.init.uniform_(self.start_transitions, -0.1, 0.1)
        nn.init.uniform_(self.end_transitions, -0.1, 0.1)

    def _score(self, emissions, tags, mask):
        # emissions (B, T, K), tags (B, T), mask (B, T) bool
        batch, seq_len, _ = emissions.shape
        maskf = mask.float()
        emit = emissions.gather(2, tags.unsqueeze(-1)).squeeze(-1)  # (B, T)
        score = self.start_transitions[tags[:, 0]] + (emit * maskf).sum(1)
        trans = self.transitions[tags[:, :-1], tags[:, 1:]]  # (B, T-1)
        score = score + (trans * maskf[:, 1:]).sum(1)
        last = mask.long().sum(1) - 1
        last_tags = tags.gather(1, last.unsqueeze(1)).squeeze(1)
        return score + self.end_transitions[last_tags]

    def _partition(self, emissions, mask):
        seq_len = emissions.size(1)
        alpha = self.start_transitions + emissions[:, 0]  # (B, K)
        for t in range(1, seq_len):
            # (B, K_from, 1) + (K_from, K_to) + (B, 1, K_to) -> logsumexp over K_from
            nxt = torch.logsumexp(
                alpha.unsqueeze(2) + self.transitions + emissions[:, t].unsqueeze(1), dim=1
            )
            alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)
        return torch.logsumexp(alpha + self.end_transitions, dim=1)

    def forward(self, emissions, tags, mask, reduction="mean"):
        """Negative log-likelihood: per sentence averaged, summed, or per token averaged."""
        nll = self._partition(emissions, mask) - self._score(emissions, tags, mask)
        if reduction == "sum":
            return nll.sum()
        if reduction == "token_mean":
            return nll.sum() / mask.float().sum()
        return nll.mean()

    @torch.no_grad()
    def decode(self, emissions, mask):
        batch, seq_len, _ = emissions.shape
        score = self.start_transitions + emissions[:, 0]
        history = []
        for t in range(1, seq_len):
            cand = score.unsqueeze(2) + self.transitions.unsqueeze(0)  # (B, K_from, K_to)
            best, idx = cand.max(dim=1)
            nxt = best + emissions[:, t]
            score = torch.where(mask[:, t].unsqueeze(1), nxt, score)
            history.append(idx)
        score = score + self.end_transitions
        best_score, best_last = score.max(dim=1)
        lengths = mask.long().sum(1)
        paths = []
        for b in range(batch):
            n = int(lengths[b])
            tag = int(best_last[b])
            path = [tag]
            for hist in reversed(history[: n - 1]):
                tag = int(hist[b, tag])
                path.append(tag)
            path.reverse()
            paths.append(path)
        return best_score, paths


class BiLSTMCRF(nn.Module):
    def __init__(self, vocab_size, num_tags, embedding_dim, hidden_dim):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim // 2, bidirectional=True, batch_first=True)
        self.hidden2tag = nn.Linear(hidden_dim, num_tags)
        self.crf = CRF(num_tags)

    def emissions(self, tokens, lengths):
        packed = pack_padded_sequence(
            self.embedding(tokens), lengths, batch_first=True, enforce_sorted=False
        )
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=tokens.size(1))
        return self.hidden2tag(out)

    def neg_log_likelihood(self, tokens, lengths, tags, reduction="mean"):
        mask = tokens != PAD
        return self.crf(self.emissions(tokens, lengths), tags, mask, reduction)

    def forward(self, tokens, lengths):
        mask = tokens != PAD
        return self.crf.decode(self.emissions(tokens, lengths), mask)


def make_corpus(rng, n, vocab_size):
    """BIO tags: entity words (ids >= vocab_size // 2) start an entity (B=1) or continue one
    (I=2) when the previous word was an entity word too; other words are O=0."""
    sents, tags = [], []
    for _ in range(n):
        length = int(rng.integers(3, 10))
        words = rng.integers(1, vocab_size, length)
        is_ent = words >= vocab_size // 2
        t = np.zeros(length, dtype=np.int64)
        for i in range(length):
            if is_ent[i]:
                t[i] = 2 if i > 0 and is_ent[i - 1] else 1
        sents.append(words)
        tags.append(t)
    return sents, tags


def collate(sents, tags):
    lengths = torch.tensor([len(s) for s in sents])
    x = pad_sequence([torch.from_numpy(s) for s in sents], batch_first=True, padding_value=PAD)
    y = pad_sequence([torch.from_numpy(t) for t in tags], batch_first=True, padding_value=0)
    return x, y, lengths


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--reduction", choices=["mean", "sum", "token_mean"], default="mean")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    vocab_size = 20
    train_s, train_t = make_corpus(rng, 64, vocab_size)
    val_s, val_t = make_corpus(rng, 16, vocab_size)
    model = BiLSTMCRF(vocab_size, 3, embedding_dim=8, hidden_dim=16)
    lr = args.lr / 16 if args.reduction == "sum" else args.lr
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    x_val, y_val, len_val = collate(val_s, val_t)
    for epoch in range(1, args.epochs + 1):
        model.train()
        total = 0.0
        for start in range(0, len(train_s), args.batch_size):
            x, y, lengths = collate(
                train_s[start : start + args.batch_size], train_t[start : start + args.batch_size]
            )
            model.zero_grad()
            loss = model.neg_log_likelihood(x, lengths, y, args.reduction)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            total += loss.item()
        n_batches = (len(train_s) + args.batch_size - 1) // args.batch_size
        model.eval()
        with torch.no_grad():
            val_loss = model.neg_log_likelihood(x_val, len_val, y_val, args.reduction)
            scores, paths = model(x_val, len_val)
        correct = sum(
            int((torch.tensor(p) == y_val[b, : len(p)]).sum()) for b, p in enumerate(paths)
        )
        print(
            f"epoch {epoch} train loss {total / n_batches:.5f} val loss {val_loss.item():.5f} "
            f"viterbi score {scores.mean().item():.4f} tag acc {correct / int(len_val.sum()):.3f}"
        )
    print("first path", paths[0], "gold", y_val[0, : len(paths[0])].tolist())


if __name__ == "__main__":
    main()
