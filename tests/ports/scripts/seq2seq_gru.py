"""A GRU encoder-decoder that learns to reverse digit sequences (after the PyTorch
seq2seq translation tutorial), with teacher forcing."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import optim

SOS_token = 10


class EncoderRNN(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.embedding = nn.Embedding(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)

    def forward(self, input):
        output, hidden = self.gru(self.embedding(input))
        return output, hidden


class DecoderRNN(nn.Module):
    def __init__(self, hidden_size, output_size):
        super().__init__()
        self.embedding = nn.Embedding(output_size + 1, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, output_size)

    def forward(self, encoder_hidden, target_tensor):
        batch_size = target_tensor.size(0)
        decoder_input = torch.empty(batch_size, 1, dtype=torch.long).fill_(SOS_token)
        decoder_input = torch.cat([decoder_input, target_tensor[:, :-1]], dim=1)
        output, hidden = self.gru(F.relu(self.embedding(decoder_input)), encoder_hidden)
        return F.log_softmax(self.out(output), dim=-1), hidden


def main():
    rng = np.random.default_rng(0)
    src = torch.from_numpy(rng.integers(0, 10, (32, 5)))
    tgt = torch.flip(src, dims=[1])
    encoder, decoder = EncoderRNN(10, 16), DecoderRNN(16, 10)
    enc_opt = optim.Adam(encoder.parameters(), lr=0.01)
    dec_opt = optim.Adam(decoder.parameters(), lr=0.01)
    criterion = nn.NLLLoss()
    for epoch in range(1, 16):
        enc_opt.zero_grad()
        dec_opt.zero_grad()
        _, enc_hidden = encoder(src)
        dec_out, _ = decoder(enc_hidden, tgt)
        loss = criterion(dec_out.view(-1, dec_out.size(-1)), tgt.view(-1))
        loss.backward()
        enc_opt.step()
        dec_opt.step()
        print(f"epoch {epoch} loss {loss.item():.5f}")


if __name__ == "__main__":
    main()
