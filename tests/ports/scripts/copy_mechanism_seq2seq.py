"""A pointer-generator summariser (See et al., 2017) on a toy "copy the rare words" task: a
bidirectional GRU encoder, an attentive GRU decoder, a p_gen gate that mixes the generator's
vocabulary distribution with the attention distribution, scatter_add_ of attention weights
into an extended vocabulary (source-only words get temporary ids beyond the vocabulary), and
the coverage loss sum_i min(a_i, c_i)."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

PAD, UNK, BOS, EOS = 0, 1, 2, 3


class CopyDataset(Dataset):
    """Source: random words from a large id space; only ids below `vocab` are in the model's
    vocabulary. Target: the source words at even positions, then EOS. Out-of-vocabulary words
    can only be produced by copying."""

    def __init__(self, n, vocab, id_space, src_len, seed):
        rng = np.random.default_rng(seed)
        self.vocab = vocab
        self.items = []
        for _ in range(n):
            src = rng.integers(4, id_space, src_len)
            self.items.append((src, np.append(src[::2], EOS)))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        src, tgt = self.items[i]
        oovs = sorted({int(w) for w in src if w >= self.vocab})
        oov_id = {w: self.vocab + k for k, w in enumerate(oovs)}
        src_in = [int(w) if w < self.vocab else UNK for w in src]
        src_ext = [int(w) if w < self.vocab else oov_id[int(w)] for w in src]
        tgt_ext = [int(w) if w < self.vocab else oov_id[int(w)] for w in tgt]
        dec_in = [BOS] + [w if w < self.vocab else UNK for w in tgt_ext[:-1]]
        return (
            torch.tensor(src_in),
            torch.tensor(src_ext),
            torch.tensor(dec_in),
            torch.tensor(tgt_ext),
            len(oovs),
        )


def collate(batch):
    src, src_ext, dec_in, tgt, n_oov = zip(*batch)
    return (
        torch.stack(src),
        torch.stack(src_ext),
        torch.stack(dec_in),
        torch.stack(tgt),
        max(n_oov),
    )


class PointerGenerator(nn.Module):
    def __init__(self, vocab, emb, hidden):
        super().__init__()
        self.vocab = vocab
        self.embedding = nn.Embedding(vocab, emb, padding_idx=PAD)
        self.encoder = nn.GRU(emb, hidden, batch_first=True, bidirectional=True)
        self.reduce = nn.Linear(2 * hidden, hidden)
        self.W_h = nn.Linear(2 * hidden, hidden, bias=False)
        self.W_s = nn.Linear(hidden, hidden)
        self.w_c = nn.Linear(1, hidden, bias=False)
        self.v = nn.Linear(hidden, 1, bias=False)
        self.decoder = nn.GRUCell(emb + 2 * hidden, hidden)
        self.out = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.Linear(hidden, vocab))
        self.p_gen = nn.Linear(2 * hidden + hidden + emb, 1)

    def forward(self, src, src_ext, dec_in, n_oov, use_coverage=True):
        batch, src_len = src.shape
        enc, h_n = self.encoder(self.embedding(src))  # (B, S, 2H)
        enc_feat = self.W_h(enc)
        s = torch.tanh(self.reduce(torch.cat([h_n[0], h_n[1]], dim=-1)))
        context = torch.zeros(batch, enc.size(-1))
        coverage = torch.zeros(batch, src_len)
        extra = torch.zeros(batch, n_oov)
        final_dists, cov_losses = [], []
        for t in range(dec_in.size(1)):
            y = self.embedding(dec_in[:, t])
            s = self.decoder(torch.cat([y, context], dim=-1), s)
            feat = enc_feat + self.W_s(s).unsqueeze(1)
            if use_coverage:
                feat = feat + self.w_c(coverage.unsqueeze(-1))
            attn = F.softmax(self.v(torch.tanh(feat)).squeeze(-1), dim=-1)  # (B, S)
            context = torch.bmm(attn.unsqueeze(1), enc).squeeze(1)
            if use_coverage:
                cov_losses.append(torch.sum(torch.min(attn, coverage), dim=1))
                coverage = coverage + attn
            p_gen = torch.sigmoid(self.p_gen(torch.cat([context, s, y], dim=-1)))
            vocab_dist = F.softmax(self.out(torch.cat([s, context], dim=-1)), dim=-1)
            vocab_dist = torch.cat([p_gen * vocab_dist, extra], dim=1)
            # repeated source words add up their attention: scatter_add_, not scatter_
            vocab_dist.scatter_add_(1, src_ext, (1 - p_gen) * attn)
            final_dists.append(vocab_dist)
        cov = torch.stack(cov_losses, 1) if cov_losses else None
        return torch.stack(final_dists, dim=1), cov


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--cov-weight", type=float, default=1.0)
    parser.add_argument("--no-coverage", action="store_true")
    args = parser.parse_args()

    vocab, id_space = 16, 24
    train = CopyDataset(128, vocab, id_space, src_len=8, seed=0)
    val = CopyDataset(32, vocab, id_space, src_len=8, seed=1)
    train_loader = DataLoader(train, batch_size=16, shuffle=True, collate_fn=collate)
    val_loader = DataLoader(val, batch_size=32, collate_fn=collate)
    model = PointerGenerator(vocab, emb=12, hidden=16)
    optimizer = torch.optim.Adagrad(model.parameters(), lr=0.15, initial_accumulator_value=0.1)
    use_cov = not args.no_coverage
    for epoch in range(1, args.epochs + 1):
        model.train()
        total_nll, total_cov = 0.0, 0.0
        for src, src_ext, dec_in, tgt, n_oov in train_loader:
            dists, cov = model(src, src_ext, dec_in, n_oov, use_cov)
            gold = torch.gather(dists, 2, tgt.unsqueeze(2)).squeeze(2)
            nll = -torch.log(gold + 1e-12).mean()
            loss = nll + args.cov_weight * cov.mean() if use_cov else nll
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 2.0)
            optimizer.step()
            total_nll += nll.item()
            total_cov += cov.mean().item() if use_cov else 0.0
        model.eval()
        with torch.no_grad():
            src, src_ext, dec_in, tgt, n_oov = next(iter(val_loader))
            dists, _ = model(src, src_ext, dec_in, n_oov, use_cov)
            val_loss = F.nll_loss(torch.log(dists + 1e-12).transpose(1, 2), tgt)
            pred = dists.argmax(-1)
            oov = tgt >= vocab
            oov_acc = (pred[oov] == tgt[oov]).float().mean().item()
            mass = dists.sum(-1)
        n = len(train_loader)
        print(
            f"epoch {epoch} nll loss {total_nll / n:.5f} coverage loss {total_cov / n:.5f} "
            f"val loss {val_loss.item():.5f} token acc {(pred == tgt).float().mean().item():.3f} "
            f"oov copy acc {oov_acc:.3f} mass {mass.min().item():.4f}"
        )


if __name__ == "__main__":
    main()
