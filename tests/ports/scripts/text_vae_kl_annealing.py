"""A sentence VAE (Bowman et al., 2016, after the public Sentence-VAE code): a GRU encoder over
packed sentences gives mu and logvar, z = mu + eps * std with eps from torch.randn_like, a GRU
decoder conditioned on z through its initial hidden state, word dropout that replaces decoder
inputs by UNK, a logistic or linear KL annealing schedule, and "free bits" (Kingma et al.,
2016) that clamp each latent dimension's KL from below."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.utils.data import DataLoader, Dataset

PAD, UNK, SOS, EOS = 0, 1, 2, 3


class MarkovSentences(Dataset):
    """Sentences from a sparse random Markov chain over words 4..V-1, padded to max_len."""

    def __init__(self, n, vocab, max_len, seed):
        rng = np.random.default_rng(seed)
        trans = rng.dirichlet(np.full(vocab - 4, 0.2), size=vocab - 4)
        self.data = []
        for _ in range(n):
            length = int(rng.integers(4, max_len - 1))
            w = [int(rng.integers(0, vocab - 4))]
            for _ in range(length - 1):
                w.append(int(rng.choice(vocab - 4, p=trans[w[-1]])))
            words = [x + 4 for x in w]
            inp = [SOS] + words + [PAD] * (max_len - 1 - length)
            tgt = words + [EOS] + [PAD] * (max_len - 1 - length)
            self.data.append((np.array(inp), np.array(tgt), length + 1))

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        inp, tgt, length = self.data[i]
        return {"input": torch.from_numpy(inp), "target": torch.from_numpy(tgt), "length": length}


class SentenceVAE(nn.Module):
    def __init__(self, vocab, emb, hidden, latent, word_dropout):
        super().__init__()
        self.word_dropout_rate = word_dropout
        self.embedding = nn.Embedding(vocab, emb, padding_idx=PAD)
        self.encoder_rnn = nn.GRU(emb, hidden, batch_first=True)
        self.decoder_rnn = nn.GRU(emb, hidden, batch_first=True)
        self.hidden2mean = nn.Linear(hidden, latent)
        self.hidden2logv = nn.Linear(hidden, latent)
        self.latent2hidden = nn.Linear(latent, hidden)
        self.outputs2vocab = nn.Linear(hidden, vocab)

    def forward(self, input_sequence, length):
        sorted_lengths, sorted_idx = torch.sort(length, descending=True)
        packed = pack_padded_sequence(
            self.embedding(input_sequence[sorted_idx]), sorted_lengths.tolist(), batch_first=True
        )
        _, hidden = self.encoder_rnn(packed)
        # NOTE: back to batch order at once: torch.sort leaves the order of equal lengths
        # unspecified, and the noise below must not depend on it
        _, reversed_idx = torch.sort(sorted_idx)
        hidden = hidden.squeeze(0)[reversed_idx]
        mean = self.hidden2mean(hidden)
        logv = self.hidden2logv(hidden)
        std = torch.exp(0.5 * logv)
        z = mean + torch.randn_like(std) * std  # reparameterization
        hidden = self.latent2hidden(z).unsqueeze(0)

        decoder_input = input_sequence
        if self.training and self.word_dropout_rate > 0:
            prob = torch.rand(input_sequence.size())
            prob[(input_sequence - SOS) * (input_sequence - PAD) == 0] = 1  # keep SOS and PAD
            decoder_input = input_sequence.clone()
            decoder_input[prob < self.word_dropout_rate] = UNK
        packed = pack_padded_sequence(
            self.embedding(decoder_input), length, batch_first=True, enforce_sorted=False
        )
        outputs, _ = self.decoder_rnn(packed, hidden)
        padded, _ = pad_packed_sequence(
            outputs, batch_first=True, total_length=input_sequence.size(1)
        )
        logp = F.log_softmax(self.outputs2vocab(padded), dim=-1)
        return logp, mean, logv, z


def kl_anneal_function(anneal, step, k, x0):
    if anneal == "logistic":
        return float(1 / (1 + np.exp(-k * (step - x0))))
    return min(1.0, step / x0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--anneal", choices=["logistic", "linear"], default="logistic")
    parser.add_argument("--word-dropout", type=float, default=0.25)
    parser.add_argument("--free-bits", type=float, default=0.1)
    args = parser.parse_args()

    vocab, max_len = 14, 10
    train = MarkovSentences(160, vocab, max_len, seed=0)
    val = MarkovSentences(40, vocab, max_len, seed=1)
    loader = DataLoader(train, batch_size=32, shuffle=True)
    model = SentenceVAE(vocab, emb=16, hidden=24, latent=6, word_dropout=args.word_dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    nll_fn = nn.NLLLoss(ignore_index=PAD, reduction="sum")
    step = 0

    def loss_fn(logp, target, mean, logv, step):
        nll = nll_fn(logp.reshape(-1, logp.size(-1)), target.reshape(-1))
        kl_per_dim = -0.5 * (1 + logv - mean.pow(2) - logv.exp())  # (B, latent)
        kl = kl_per_dim.sum()
        kl_free = kl_per_dim.mean(0).clamp(min=args.free_bits).sum() * mean.size(0)
        return nll, kl, kl_free, kl_anneal_function(args.anneal, step, 0.05, 20)

    for epoch in range(1, args.epochs + 1):
        model.train()
        sums = np.zeros(3)
        for batch in loader:
            batch_size = batch["input"].size(0)
            logp, mean, logv, z = model(batch["input"], batch["length"])
            nll, kl, kl_free, kl_weight = loss_fn(logp, batch["target"], mean, logv, step)
            loss = (nll + kl_weight * kl_free) / batch_size
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            sums += [loss.item(), nll.item() / batch_size, kl.item() / batch_size]
        model.eval()
        with torch.no_grad():
            batch = next(iter(DataLoader(val, batch_size=len(val))))
            logp, mean, logv, _ = model(batch["input"], batch["length"])
            nll, kl, _, _ = loss_fn(logp, batch["target"], mean, logv, step)
            n_words = (batch["target"] != PAD).sum().item()
            ppl = math.exp((nll.item() + kl.item()) / n_words)
            active = (mean.var(0) > 1e-2).sum().item()
        n = len(loader)
        print(
            f"epoch {epoch} loss {sums[0] / n:.5f} nll loss {sums[1] / n:.5f} "
            f"kl loss {sums[2] / n:.5f} kl weight {kl_weight:.4f} val elbo loss "
            f"{(nll.item() + kl.item()) / len(val):.5f} ppl {ppl:.3f} active units {active}"
        )


if __name__ == "__main__":
    main()
