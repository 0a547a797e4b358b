"""A pointer network that learns to sort numbers (Vinyals et al., 2015): an LSTM encoder, an
LSTMCell decoder whose additive attention over the encoder states is itself the output
distribution, a masked log_softmax that excludes positions already chosen (masked_fill with
-inf), teacher forcing during training and greedy decoding for evaluation."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class Attention(nn.Module):
    """Bahdanau-style scoring: u_j = v^T tanh(W1 e_j + W2 d)."""

    def __init__(self, hidden):
        super().__init__()
        self.W1 = nn.Linear(hidden, hidden, bias=False)
        self.W2 = nn.Linear(hidden, hidden, bias=False)
        self.v = nn.Linear(hidden, 1, bias=False)

    def forward(self, enc_proj, dec_state, mask):
        scores = self.v(torch.tanh(enc_proj + self.W2(dec_state).unsqueeze(1))).squeeze(-1)
        return scores.masked_fill(mask, float("-inf"))


class PointerNet(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.embed = nn.Linear(1, hidden)
        self.encoder = nn.LSTM(hidden, hidden, batch_first=True)
        self.decoder = nn.LSTMCell(hidden, hidden)
        self.attn = Attention(hidden)
        self.start = nn.Parameter(torch.zeros(hidden).uniform_(-0.1, 0.1))

    def forward(self, x, targets=None):
        """x (B, N) numbers; targets (B, N) the sorting permutation for teacher forcing.
        Returns log-probabilities (B, N steps, N positions) and the chosen indices."""
        batch, n = x.shape
        emb = self.embed(x.unsqueeze(-1))  # (B, N, H)
        enc, (h, c) = self.encoder(emb)
        h, c = h[0], c[0]
        enc_proj = self.attn.W1(enc)
        mask = torch.zeros(batch, n, dtype=torch.bool)
        dec_in = self.start.unsqueeze(0).expand(batch, -1)
        log_probs, chosen = [], []
        arange = torch.arange(batch)
        for step in range(n):
            h, c = self.decoder(dec_in, (h, c))
            logits = self.attn(enc_proj, h, mask)
            logp = F.log_softmax(logits, dim=-1)
            log_probs.append(logp)
            idx = targets[:, step] if targets is not None else logp.argmax(dim=-1)
            chosen.append(idx)
            mask = mask.clone()
            mask[arange, idx] = True
            dec_in = emb[arange, idx]
        return torch.stack(log_probs, dim=1), torch.stack(chosen, dim=1)


def masked_nll(log_probs, targets):
    # masked entries are -inf but never targets: gather picks finite values only
    picked = log_probs.gather(2, targets.unsqueeze(-1)).squeeze(-1)
    return -picked.mean()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--n", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--loss", choices=["gather", "nll"], default="gather")
    args = parser.parse_args()

    g = torch.Generator().manual_seed(0)
    x_train = torch.rand(256, args.n, generator=g)
    x_val = torch.rand(64, args.n, generator=g)
    y_train = x_train.argsort(dim=1)
    y_val = x_val.argsort(dim=1)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch_size, shuffle=True)

    model = PointerNet(hidden=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.7)
    for epoch in range(1, args.epochs + 1):
        model.train()
        total = 0.0
        for xb, yb in loader:
            log_probs, _ = model(xb, yb)
            if args.loss == "nll":
                loss = F.nll_loss(log_probs.reshape(-1, args.n), yb.reshape(-1))
            else:
                loss = masked_nll(log_probs, yb)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
            optimizer.step()
            total += loss.item()
        scheduler.step()
        model.eval()
        with torch.no_grad():
            log_probs, pred = model(x_val)
            val_loss = masked_nll(log_probs, pred)
            exact = (pred == y_val).all(dim=1).float().mean().item()
            sorted_ok = (x_val.gather(1, pred).diff(dim=1) >= 0).float().mean().item()
            # greedy decoding never points twice at one position
            distinct = pred.sort(dim=1).values.eq(torch.arange(args.n)).all().item()
        print(
            f"epoch {epoch} train loss {total / len(loader):.5f} greedy loss {val_loss.item():.5f}"
            f" exact {exact:.3f} ordered pairs {sorted_ok:.3f} permutation {distinct}"
        )


if __name__ == "__main__":
    main()
