"""Variable-length sequence classification with PyTorch's masked reductions instead of
hand-written padding arithmetic: sequences padded with nn.utils.rnn.pad_sequence
(batch_first, padding_value=0), a boolean mask from the lengths (torch.arange < lengths),
attention pooling with torch.masked.softmax over the valid positions (and
torch.masked.log_softmax for an entropy regulariser), statistics pooling with
torch.masked.mean / torch.masked.std / torch.masked.amax / torch.masked.logsumexp (dims and
keepdim as in torch.sum), torch.masked.normalize of the pooled vector, and torch.masked.sum
for a per-sequence token count; --pooling plain uses masked_fill and sums by hand, which must
give the same model. A MaskedTensor (torch.masked.masked_tensor) summarises the lengths."""

import argparse
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

warnings.filterwarnings("ignore", message=".*MaskedTensors.*prototype.*")


class MaskedPool(nn.Module):
    def __init__(self, d, use_masked):
        super().__init__()
        self.score = nn.Linear(d, 1)
        self.use_masked = use_masked

    def forward(self, h, mask):
        s = self.score(h).squeeze(-1)  # (B, T)
        if self.use_masked:
            attn = torch.masked.softmax(s, dim=1, mask=mask)
            log_attn = torch.masked.log_softmax(s, dim=1, mask=mask)
            m3 = mask.unsqueeze(-1).expand_as(h)
            mean = torch.masked.mean(h, dim=1, mask=m3)
            std = torch.masked.std(h, dim=1, unbiased=True, mask=m3)
            mx = torch.masked.amax(h, dim=1, mask=m3)
            lse = torch.masked.logsumexp(h, dim=1, mask=m3)
        else:
            s = s.masked_fill(~mask, float("-inf"))
            attn = torch.softmax(s, dim=1)
            log_attn = torch.log_softmax(s, dim=1)
            m = mask.unsqueeze(-1).to(h.dtype)
            n = m.sum(1)
            mean = (h * m).sum(1) / n
            std = (((h - mean.unsqueeze(1)) * m) ** 2).sum(1).div(n - 1).sqrt()
            mx = h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)
            lse = torch.logsumexp(h.masked_fill(~mask.unsqueeze(-1), float("-inf")), dim=1)
        attn = torch.nan_to_num(attn, nan=0.0)
        pooled = torch.einsum("bt,btd->bd", attn, h)
        entropy = -(attn * torch.where(mask, log_attn, torch.zeros_like(log_attn))).sum(1)
        return torch.cat([pooled, mean, std, mx, lse], dim=1), entropy


class Model(nn.Module):
    def __init__(self, vocab, d, classes, use_masked):
        super().__init__()
        self.emb = nn.Embedding(vocab, d, padding_idx=0)
        self.conv = nn.Conv1d(d, d, 3, padding=1)
        self.pool = MaskedPool(d, use_masked)
        self.head = nn.Linear(5 * d, classes)
        self.use_masked = use_masked

    def forward(self, tokens, mask):
        h = self.emb(tokens)
        h = h + torch.tanh(self.conv(h.transpose(1, 2)).transpose(1, 2))
        z, entropy = self.pool(h, mask)
        if self.use_masked:
            z = torch.masked.normalize(z, 2.0, dim=1, mask=torch.ones_like(z, dtype=torch.bool))
        else:
            z = F.normalize(z, p=2.0, dim=1)
        return self.head(z * 4), entropy


def make_batch(n, vocab):
    seqs, labels = [], []
    for _ in range(n):
        length = int(torch.randint(3, 14, (1,)))
        seq = torch.randint(1, vocab, (length,))
        label = int((seq == 1).any()) + 2 * int(length > 8)
        seqs.append(seq)
        labels.append(label)
    lengths = torch.tensor([len(s) for s in seqs])
    tokens = pad_sequence(seqs, batch_first=True, padding_value=0)
    mask = torch.arange(tokens.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    return tokens, mask, lengths, torch.tensor(labels)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--pooling", choices=["masked", "plain"], default="masked")
    args = parser.parse_args()
    torch.manual_seed(0)

    vocab = 12
    batches = [make_batch(32, vocab) for _ in range(6)]
    val = make_batch(64, vocab)
    lengths_mt = torch.masked.masked_tensor(val[2].float(), val[2] > 8)
    print(
        f"long sequences: {int(torch.masked.sum(val[2].float(), mask=val[2] > 8).item() > 0)}, masked tensor mean {lengths_mt.mean().get_data().item():.3f}"
    )

    model = Model(vocab, 16, 4, use_masked=args.pooling == "masked")
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for epoch in range(args.epochs):
        model.train()
        for tokens, mask, _, labels in batches:
            logits, entropy = model(tokens, mask)
            loss = F.cross_entropy(logits, labels) + 0.01 * entropy.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            logits, entropy = model(val[0], val[1])
            vloss = F.cross_entropy(logits, val[3])
            acc = (logits.argmax(1) == val[3]).float().mean()
        print(
            f"epoch {epoch}: train loss {loss.item():.5f} val loss {vloss.item():.5f} acc {acc.item():.3f} entropy {entropy.mean().item():.4f}"
        )


if __name__ == "__main__":
    main()
