"""Neural Turing Machine (Graves et al., 2014) on the copy task: an nn.LSTMCell or
nn.RNNCell(nonlinearity="relu") controller with one read and one write head over an external
memory; content addressing by F.cosine_similarity, interpolation with the previous weighting,
a circular 3-tap shift (torch.roll stack, or F.pad(mode="circular") + unfold), sharpening by
a learnt power; erase/add writes through torch.outer-style broadcasting and torch.addcmul.
Random binary sequences come from torch.randint; the loss is BCE with logits on the recalled
half; RMSprop(momentum=0.9) with clip_grad_value_."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


class Head(nn.Module):
    """Parameters of one addressing step: key, strength, gate, shift, sharpening."""

    def __init__(self, hidden, width, shift="roll"):
        super().__init__()
        self.width = width
        self.shift = shift
        self.proj = nn.Linear(hidden, width + 1 + 1 + 3 + 1)

    def address(self, h, memory, prev_w):
        key, beta, gate, shift, gamma = torch.split(self.proj(h), [self.width, 1, 1, 3, 1], dim=-1)
        beta = F.softplus(beta)
        gate = torch.sigmoid(gate)
        shift = torch.softmax(shift, dim=-1)
        gamma = 1 + F.softplus(gamma)
        similarity = F.cosine_similarity(memory, key.unsqueeze(1), dim=-1, eps=1e-8)
        w = torch.softmax(beta * similarity, dim=-1)
        w = gate * w + (1 - gate) * prev_w
        if self.shift == "roll":
            taps = torch.stack([torch.roll(w, s, dims=-1) for s in (1, 0, -1)], dim=-1)
            w = (taps * shift.unsqueeze(1)).sum(-1)
        else:
            padded = F.pad(w.unsqueeze(1), (1, 1), mode="circular").squeeze(1)
            windows = padded.unfold(-1, 3, 1)  # (B, N, 3): w[i-1], w[i], w[i+1]
            w = (windows * shift.unsqueeze(1)).sum(-1)
        w = w.clamp_min(1e-12) ** gamma
        return w / w.sum(-1, keepdim=True)


class NTM(nn.Module):
    def __init__(self, bits, hidden=64, slots=16, width=12, controller="lstm", shift="roll"):
        super().__init__()
        self.slots, self.width = slots, width
        inp = bits + 1 + width
        if controller == "lstm":
            self.cell = nn.LSTMCell(inp, hidden)
        else:
            self.cell = nn.RNNCell(inp, hidden, nonlinearity="relu")
        self.read_head = Head(hidden, width, shift)
        self.write_head = Head(hidden, width, shift)
        self.erase_add = nn.Linear(hidden, 2 * width)
        self.out = nn.Linear(hidden + width, bits)
        self.register_buffer("memory_bias", torch.full((slots, width), 1e-6))

    def forward(self, x):
        batch, steps, _ = x.shape
        memory = self.memory_bias.expand(batch, -1, -1).clone()
        read = x.new_zeros(batch, self.width)
        h = x.new_zeros(batch, self.cell.hidden_size)
        c = x.new_zeros(batch, self.cell.hidden_size)
        w_read = x.new_zeros(batch, self.slots)
        w_read[:, 0] = 1.0
        w_write = w_read.clone()
        outputs = []
        for t in range(steps):
            inp = torch.cat([x[:, t], read], dim=-1)
            if isinstance(self.cell, nn.LSTMCell):
                h, c = self.cell(inp, (h, c))
            else:
                h = self.cell(inp, h)
            w_write = self.write_head.address(h, memory, w_write)
            erase, add = self.erase_add(h).chunk(2, dim=-1)
            erase = torch.sigmoid(erase)
            memory = memory * (1 - w_write.unsqueeze(-1) * erase.unsqueeze(1))
            memory = torch.addcmul(memory, w_write.unsqueeze(-1), torch.tanh(add).unsqueeze(1))
            w_read = self.read_head.address(h, memory, w_read)
            read = torch.bmm(w_read.unsqueeze(1), memory).squeeze(1)
            outputs.append(self.out(torch.cat([h, read], dim=-1)))
        return torch.stack(outputs, dim=1)


def copy_batch(batch, length, bits):
    seq = torch.randint(0, 2, (batch, length, bits)).float()
    inp = torch.zeros(batch, 2 * length + 1, bits + 1)
    inp[:, :length, :bits] = seq
    inp[:, length, bits] = 1.0  # delimiter
    return inp, seq


def main():
    parser = argparse.ArgumentParser(description="NTM copy task")
    parser.add_argument("--controller", default="lstm", choices=["lstm", "rnn"])
    parser.add_argument("--shift", default="roll", choices=["roll", "pad"])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--length", type=int, default=5)
    parser.add_argument("--bits", type=int, default=6)
    args = parser.parse_args()

    model = NTM(args.bits, controller=args.controller, shift=args.shift)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3, momentum=0.9, alpha=0.95)
    criterion = nn.BCEWithLogitsLoss()
    running = 0.0
    for step in range(1, args.steps + 1):
        inp, target = copy_batch(8, args.length, args.bits)
        logits = model(inp)[:, args.length + 1 :]
        loss = criterion(logits, target)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_value_(model.parameters(), 10.0)
        optimizer.step()
        running += loss.item()
        if step % 5 == 0:
            with torch.no_grad():
                errors = ((logits > 0).float() != target).float().sum(-1).mean().item()
            print(f"step {step} loss {running / 5:.6f} bit errors per sequence {errors:.2f}")
            running = 0.0


if __name__ == "__main__":
    main()
