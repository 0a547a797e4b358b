"""An RNN transducer (Graves, 2012) on synthetic "speech": a Conv1d-subsampled nn.GRU encoder
over packed feature sequences, a prediction network (nn.Embedding with the blank as start
symbol, nn.GRU), an additive joint network giving F.log_softmax scores on the (T, U+1) lattice,
and the transducer loss written in torch ops: the forward variables are filled one
anti-diagonal at a time with torch.logsumexp over the blank and emit moves (gather on skewed
index grids, torch.where masks for cells outside each utterance), and read at each utterance's
own (T, U) corner by advanced indexing; a second recursion over time uses torch.logcumsumexp
and checks the first. Greedy transducer decoding and an edit distance report the error rate."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

BLANK, N_LABELS, N_FEATS = 0, 6, 12
NEG = -1e4  # a log-probability for impossible lattice cells (finite: no inf - inf in backward)


def make_utterances(rng, n):
    """Label strings (1..5) spoken as 2-4 noisy frames of each label's feature vector, with
    silent frames in between; returns lists of (frames, labels) tensors."""
    table = np.random.default_rng(7).standard_normal((N_LABELS, N_FEATS)).astype(np.float32)
    feats, labels = [], []
    for _ in range(n):
        y = rng.integers(1, N_LABELS, rng.integers(2, 6))
        frames = [np.zeros((rng.integers(0, 3), N_FEATS), np.float32)]
        for label in y:
            frames.append(np.repeat(table[label][None], rng.integers(2, 5), 0))
            frames.append(np.zeros((rng.integers(0, 2), N_FEATS), np.float32))
        x = np.concatenate(frames) + 0.3 * rng.standard_normal((1, N_FEATS)).astype(np.float32)
        x = x + 0.2 * rng.standard_normal(x.shape).astype(np.float32)
        feats.append(torch.from_numpy(x.astype(np.float32)))
        labels.append(torch.from_numpy(y))
    return feats, labels


def batches(feats, labels, batch_size):
    for i in range(0, len(feats), batch_size):
        f, y = feats[i : i + batch_size], labels[i : i + batch_size]
        yield (
            pad_sequence(f, batch_first=True),
            torch.tensor([len(t) for t in f]),
            pad_sequence(y, batch_first=True, padding_value=BLANK),
            torch.tensor([len(t) for t in y]),
        )


class Encoder(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.subsample = nn.Conv1d(N_FEATS, hidden, kernel_size=3, stride=2, padding=1)
        self.rnn = nn.GRU(hidden, hidden, num_layers=2, batch_first=True)

    def forward(self, x, lengths):
        x = F.relu(self.subsample(x.transpose(1, 2))).transpose(1, 2)
        lengths = torch.div(lengths - 1, 2, rounding_mode="floor") + 1
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out, lengths


class Predictor(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.embed = nn.Embedding(N_LABELS, hidden)
        self.rnn = nn.GRU(hidden, hidden, batch_first=True)

    def forward(self, labels, state=None):
        # the blank doubles as the start-of-sequence symbol
        start = torch.full((labels.shape[0], 1), BLANK, dtype=torch.long)
        out, state = self.rnn(self.embed(torch.cat([start, labels], dim=1)), state)
        return out, state

    def step(self, label, state):
        out, state = self.rnn(self.embed(label.view(1, 1)), state)
        return out[:, 0], state


class Joint(nn.Module):
    def __init__(self, hidden, joint_dim):
        super().__init__()
        self.enc_proj = nn.Linear(hidden, joint_dim)
        self.pred_proj = nn.Linear(hidden, joint_dim, bias=False)
        self.out = nn.Linear(joint_dim, N_LABELS)

    def forward(self, enc, pred):
        """enc (B, T, H), pred (B, U+1, H) -> log-probs (B, T, U+1, V)."""
        h = torch.tanh(self.enc_proj(enc).unsqueeze(2) + self.pred_proj(pred).unsqueeze(1))
        return F.log_softmax(self.out(h), dim=-1)


class Transducer(nn.Module):
    def __init__(self, hidden=32, joint_dim=32):
        super().__init__()
        self.encoder = Encoder(hidden)
        self.predictor = Predictor(hidden)
        self.joint = Joint(hidden, joint_dim)

    def forward(self, x, x_lengths, labels):
        enc, enc_lengths = self.encoder(x, x_lengths)
        pred, _ = self.predictor(labels)
        return self.joint(enc, pred), enc_lengths

    @torch.no_grad()
    def greedy(self, x, length, max_symbols=3):
        enc, enc_len = self.encoder(x.unsqueeze(0), torch.tensor([length]))
        state, hyp = None, []
        pred, state = self.predictor.step(torch.tensor(BLANK), state)
        for t in range(int(enc_len)):
            for _ in range(max_symbols):
                logp = self.joint(enc[:, t : t + 1], pred.unsqueeze(1))[0, 0, 0]
                k = int(logp.argmax())
                if k == BLANK:
                    break
                hyp.append(k)
                pred, state = self.predictor.step(torch.tensor(k), state)
        return hyp


def lattice_scores(log_probs, labels):
    """Blank and emit log-probabilities on the lattice: blank[b, t, u] moves t -> t+1,
    emit[b, t, u] emits labels[b, u] and moves u -> u+1 (zero-padded past U)."""
    blank = log_probs[..., BLANK]
    idx = labels.unsqueeze(1).unsqueeze(-1).expand(-1, log_probs.shape[1], -1, -1)
    emit = log_probs[:, :, :-1].gather(-1, idx).squeeze(-1)
    return blank, F.pad(emit, (0, 1), value=NEG)


def rnnt_loss_diagonal(log_probs, labels, enc_lengths, label_lengths):
    """-log P(y|x) by the forward variables, one anti-diagonal (t + u = d) at a time:
    alpha[t, u] = logsumexp(alpha[t-1, u] + blank[t-1, u], alpha[t, u-1] + emit[t, u-1])."""
    batch, T, U1, _ = log_probs.shape
    blank, emit = lattice_scores(log_probs, labels)
    t_idx = torch.arange(T)
    inside = (t_idx.view(1, T) < enc_lengths.view(-1, 1)).unsqueeze(-1) & (
        torch.arange(U1).view(1, 1, U1) <= label_lengths.view(-1, 1, 1)
    )
    blank = blank.masked_fill(~inside, NEG)
    # no label is emitted past the last one
    emit = emit.masked_fill(~inside | (emit == NEG), NEG)

    def diagonal(scores, d):
        """scores[b, t, d - t] for every t (NEG where d - t falls off the lattice)."""
        u = d - t_idx
        valid = (u >= 0) & (u < U1)
        picked = scores.gather(2, u.clamp(0, U1 - 1).view(1, T, 1).expand(batch, T, 1))
        return torch.where(valid, picked.squeeze(-1), torch.full_like(picked.squeeze(-1), NEG))

    alpha = torch.where(t_idx == 0, torch.zeros(batch, T), torch.full((batch, T), NEG))
    alphas = [alpha]
    for d in range(1, T + U1 - 1):
        from_blank = alpha + diagonal(blank, d - 1)  # cell (t, d-1-t) -> (t+1, d-1-t)
        from_blank = F.pad(from_blank[:, :-1], (1, 0), value=NEG)
        from_emit = alpha + diagonal(emit, d - 1)  # cell (t, d-1-t) -> (t, d-t)
        alpha = torch.logsumexp(torch.stack([from_blank, from_emit]), dim=0)
        alphas.append(alpha)
    alphas = torch.stack(alphas, dim=1)  # (B, D, T)
    last_t = enc_lengths - 1
    corner = alphas[torch.arange(batch), last_t + label_lengths, last_t]
    final_blank = blank[torch.arange(batch), last_t, label_lengths]
    return -(corner + final_blank)


def rnnt_loss_time_scan(log_probs, labels, enc_lengths, label_lengths):
    """The same loss, one frame at a time: along u the recursion is a log-space prefix sum,
    alpha[t, u] = c[u] + logcumsumexp(a - c)[u] with a[k] = alpha[t-1, k] + blank[t-1, k]
    and c the running sum of emits."""
    batch, T, U1, _ = log_probs.shape
    blank, emit = lattice_scores(log_probs, labels)
    inside_u = torch.arange(U1).view(1, U1) <= label_lengths.view(-1, 1)
    emit = emit.masked_fill(~inside_u.unsqueeze(1), NEG)
    c = F.pad(torch.cumsum(emit[..., :-1], dim=-1), (1, 0))  # (B, T, U+1)
    alpha = c[:, 0]
    rows = [alpha]
    for t in range(1, T):
        a = alpha + blank[:, t - 1]
        alpha = c[:, t] + torch.logcumsumexp(a - c[:, t], dim=-1)
        rows.append(alpha)
    alphas = torch.stack(rows, dim=1)  # (B, T, U+1)
    b = torch.arange(batch)
    last_t = enc_lengths - 1
    return -(alphas[b, last_t, label_lengths] + blank[b, last_t, label_lengths])


def edit_distance(a, b):
    d = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, y in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (x != y))
    return d[-1]


def main():
    parser = argparse.ArgumentParser(description="RNN transducer")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-2)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    train_x, train_y = make_utterances(rng, 48)
    val_x, val_y = make_utterances(rng, 8)

    model = Transducer()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-2)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
    for epoch in range(args.epochs):
        model.train()
        total, frames = 0.0, 0
        for x, x_len, y, y_len in batches(train_x, train_y, args.batch_size):
            log_probs, enc_len = model(x, x_len, y)
            per_utt = rnnt_loss_diagonal(log_probs, y, enc_len, y_len)
            loss = (per_utt / y_len).mean()
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            total += per_utt.sum().item()
            frames += int(y_len.sum())
        scheduler.step()

        model.eval()
        x, x_len, y, y_len = next(batches(val_x, val_y, len(val_x)))
        with torch.no_grad():
            log_probs, enc_len = model(x, x_len, y)
            val = rnnt_loss_diagonal(log_probs, y, enc_len, y_len)
            scan = rnnt_loss_time_scan(log_probs, y, enc_len, y_len)
        print(
            f"epoch {epoch} train loss {total / frames:.6f} val loss {val.mean().item():.6f} "
            f"scan loss {scan.mean().item():.6f} max gap {(val - scan).abs().max().item():.1e}"
        )

    errors = sum(
        edit_distance(model.greedy(xi[:n], n), yi.tolist())
        for xi, n, yi in zip(val_x, x_len.tolist(), val_y)
    )
    print(f"greedy label error rate {errors / int(y_len.sum()):.3f}")


if __name__ == "__main__":
    main()
