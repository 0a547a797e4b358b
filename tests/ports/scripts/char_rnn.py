"""A character-level LSTM language model (after pytorch/examples: word_language_model)."""

import argparse

import torch
import torch.nn as nn


class RNNModel(nn.Module):
    def __init__(self, ntoken, ninp, nhid, nlayers):
        super().__init__()
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers)
        self.decoder = nn.Linear(nhid, ntoken)
        self.nlayers, self.nhid = nlayers, nhid

    def forward(self, input, hidden):
        emb = self.encoder(input)
        output, hidden = self.rnn(emb, hidden)
        decoded = self.decoder(output)
        decoded = decoded.view(-1, decoded.size(-1))
        return nn.functional.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (
            weight.new_zeros(self.nlayers, bsz, self.nhid),
            weight.new_zeros(self.nlayers, bsz, self.nhid),
        )


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bptt", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    text = "the quick brown fox jumps over the lazy dog " * 6
    chars = sorted(set(text))
    data = torch.tensor([chars.index(c) for c in text], dtype=torch.long)
    bsz = 4
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz).view(bsz, -1).t().contiguous()
    model = RNNModel(len(chars), 8, 16, 2)
    criterion = nn.NLLLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    for epoch in range(args.epochs):
        hidden = model.init_hidden(bsz)
        for batch, i in enumerate(range(0, data.size(0) - 1, args.bptt)):
            seq_len = min(args.bptt, len(data) - 1 - i)
            inp, target = data[i : i + seq_len], data[i + 1 : i + 1 + seq_len].reshape(-1)
            model.zero_grad()
            hidden = repackage_hidden(hidden)
            output, hidden = model(inp, hidden)
            loss = criterion(output, target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
            optimizer.step()
            print(f"| epoch {epoch} | batch {batch} | loss {loss.item():.5f}")


if __name__ == "__main__":
    main()
