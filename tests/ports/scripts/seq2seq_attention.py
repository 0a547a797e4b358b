"""An attention encoder-decoder (bidirectional GRU encoder, GRU decoder with Bahdanau or
Luong attention) that learns to reverse variable-length digit strings; padded source
positions are masked out of the attention, teacher forcing follows a fixed schedule."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PAD_IDX, SOS_IDX, EOS_IDX = 0, 1, 2
N_DIGITS = 8


class Encoder(nn.Module):
    def __init__(self, input_dim, emb_dim, enc_hid_dim, dec_hid_dim, dropout):
        super().__init__()
        self.embedding = nn.Embedding(input_dim, emb_dim, padding_idx=PAD_IDX)
        self.rnn = nn.GRU(emb_dim, enc_hid_dim, bidirectional=True)
        self.fc = nn.Linear(enc_hid_dim * 2, dec_hid_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src):
        # src = [src len, batch size]
        embedded = self.dropout(self.embedding(src))
        outputs, hidden = self.rnn(embedded)
        # hidden[-2] is the last forward state, hidden[-1] the last backward state
        hidden = torch.tanh(self.fc(torch.cat((hidden[-2, :, :], hidden[-1, :, :]), dim=1)))
        return outputs, hidden


class BahdanauAttention(nn.Module):
    def __init__(self, enc_hid_dim, dec_hid_dim):
        super().__init__()
        self.attn = nn.Linear((enc_hid_dim * 2) + dec_hid_dim, dec_hid_dim)
        self.v = nn.Linear(dec_hid_dim, 1, bias=False)

    def forward(self, hidden, encoder_outputs, mask):
        src_len = encoder_outputs.shape[0]
        hidden = hidden.unsqueeze(1).repeat(1, src_len, 1)
        encoder_outputs = encoder_outputs.permute(1, 0, 2)
        energy = torch.tanh(self.attn(torch.cat((hidden, encoder_outputs), dim=2)))
        attention = self.v(energy).squeeze(2)
        attention = attention.masked_fill(mask == 0, -1e10)
        return F.softmax(attention, dim=1)


class LuongAttention(nn.Module):
    """Luong's "general" score: h_t^T W h_s."""

    def __init__(self, enc_hid_dim, dec_hid_dim):
        super().__init__()
        self.W = nn.Linear(enc_hid_dim * 2, dec_hid_dim, bias=False)

    def forward(self, hidden, encoder_outputs, mask):
        keys = self.W(encoder_outputs.permute(1, 0, 2))  # [batch, src len, dec hid]
        scores = torch.bmm(keys, hidden.unsqueeze(2)).squeeze(2)
        scores = scores.masked_fill(mask == 0, -1e10)
        return F.softmax(scores, dim=1)


class Decoder(nn.Module):
    def __init__(self, output_dim, emb_dim, enc_hid_dim, dec_hid_dim, dropout, attention):
        super().__init__()
        self.output_dim = output_dim
        self.attention = attention
        self.embedding = nn.Embedding(output_dim, emb_dim)
        self.rnn = nn.GRU((enc_hid_dim * 2) + emb_dim, dec_hid_dim)
        self.fc_out = nn.Linear((enc_hid_dim * 2) + dec_hid_dim + emb_dim, output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input, hidden, encoder_outputs, mask):
        input = input.unsqueeze(0)
        embedded = self.dropout(self.embedding(input))
        a = self.attention(hidden, encoder_outputs, mask)
        a = a.unsqueeze(1)
        weighted = torch.bmm(a, encoder_outputs.permute(1, 0, 2))
        weighted = weighted.permute(1, 0, 2)
        rnn_input = torch.cat((embedded, weighted), dim=2)
        output, hidden = self.rnn(rnn_input, hidden.unsqueeze(0))
        assert (output == hidden).all()
        embedded, output, weighted = embedded.squeeze(0), output.squeeze(0), weighted.squeeze(0)
        prediction = self.fc_out(torch.cat((output, weighted, embedded), dim=1))
        return prediction, hidden.squeeze(0), a.squeeze(1)


class Seq2Seq(nn.Module):
    def __init__(self, encoder, decoder, src_pad_idx):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.src_pad_idx = src_pad_idx

    def create_mask(self, src):
        return (src != self.src_pad_idx).permute(1, 0)

    def forward(self, src, trg, teacher_forcing):
        """teacher_forcing: one bool per decoding step (a fixed schedule)."""
        trg_len = trg.shape[0]
        outputs = []
        encoder_outputs, hidden = self.encoder(src)
        input = trg[0, :]
        mask = self.create_mask(src)
        for t in range(1, trg_len):
            output, hidden, _ = self.decoder(input, hidden, encoder_outputs, mask)
            outputs.append(output)
            top1 = output.argmax(1)
            input = trg[t] if teacher_forcing[t - 1] else top1
        return torch.stack(outputs)  # [trg len - 1, batch, output dim]

    @torch.no_grad()
    def greedy_decode(self, src, max_len):
        encoder_outputs, hidden = self.encoder(src)
        mask = self.create_mask(src)
        input = torch.full((src.shape[1],), SOS_IDX, dtype=torch.long)
        tokens, attentions = [], []
        for _ in range(max_len):
            output, hidden, a = self.decoder(input, hidden, encoder_outputs, mask)
            input = output.argmax(1)
            tokens.append(input)
            attentions.append(a)
        return torch.stack(tokens), torch.stack(attentions)


def make_batch(rng, batch_size, max_len):
    lengths = rng.integers(3, max_len + 1, batch_size)
    src_len, trg_len = max_len, max_len + 2
    src = np.full((src_len, batch_size), PAD_IDX, dtype=np.int64)
    trg = np.full((trg_len, batch_size), PAD_IDX, dtype=np.int64)
    for b, n in enumerate(lengths):
        digits = rng.integers(0, N_DIGITS, n) + 3
        src[:n, b] = digits
        trg[0, b] = SOS_IDX
        trg[1 : n + 1, b] = digits[::-1]
        trg[n + 1, b] = EOS_IDX
    return torch.from_numpy(src), torch.from_numpy(trg)


def init_weights(m):
    for name, param in m.named_parameters():
        if "weight" in name:
            nn.init.normal_(param.data, mean=0, std=0.01)
        else:
            nn.init.constant_(param.data, 0)


def main():
    parser = argparse.ArgumentParser(description="seq2seq with attention on a reversal task")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-len", type=int, default=6)
    parser.add_argument("--attention", choices=["bahdanau", "luong"], default="bahdanau")
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--clip", type=float, default=1.0)
    args = parser.parse_args()

    vocab = N_DIGITS + 3
    emb_dim, enc_hid, dec_hid = 16, 24, 24
    attn_cls = BahdanauAttention if args.attention == "bahdanau" else LuongAttention
    enc = Encoder(vocab, emb_dim, enc_hid, dec_hid, dropout=0.0)
    dec = Decoder(
        vocab, emb_dim, enc_hid, dec_hid, dropout=0.0, attention=attn_cls(enc_hid, dec_hid)
    )
    model = Seq2Seq(enc, dec, PAD_IDX)
    model.apply(init_weights)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"The model has {n_trainable:,} trainable parameters")

    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
    criterion = nn.CrossEntropyLoss(ignore_index=PAD_IDX)

    rng = np.random.default_rng(0)
    train = [make_batch(rng, args.batch_size, args.max_len) for _ in range(args.batches)]
    valid_src, valid_trg = make_batch(rng, 32, args.max_len)
    trg_steps = args.max_len + 1

    for epoch in range(args.epochs):
        # teacher forcing fades out: the first steps keep it longest
        ratio = max(0.0, 1.0 - epoch / args.epochs)
        schedule = [t < round(ratio * trg_steps) for t in range(trg_steps)]
        model.train()
        epoch_loss = 0.0
        for src, trg in train:
            optimizer.zero_grad()
            output = model(src, trg, schedule)
            output_dim = output.shape[-1]
            loss = criterion(output.view(-1, output_dim), trg[1:].reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            epoch_loss += loss.item()
        scheduler.step()

        model.eval()
        with torch.no_grad():
            output = model(valid_src, valid_trg, [False] * trg_steps)
            valid_loss = criterion(output.view(-1, output.shape[-1]), valid_trg[1:].reshape(-1))
            tokens, attn = model.greedy_decode(valid_src, trg_steps)
            keep = valid_trg[1:] != PAD_IDX
            tok_acc = ((tokens == valid_trg[1:]) & keep).sum().item() / keep.sum().item()
            pad_attn = (attn * (valid_src == PAD_IDX).permute(1, 0).unsqueeze(0)).sum().item()
        print(
            f"Epoch: {epoch + 1:02} | Train Loss: {epoch_loss / len(train):.4f} | "
            f"Val. Loss: {valid_loss.item():.4f} | token acc {tok_acc:.3f} | "
            f"lr {scheduler.get_last_lr()[0]:.5f} | attention on padding {pad_attn:.1e}"
        )


if __name__ == "__main__":
    main()
