"""A GRU encoder-decoder trained on sequence reversal, then decoded with beam search in the
style of fairseq / OpenNMT sequence generators: variable-length batches padded with
nn.utils.rnn.pad_sequence, teacher forcing with ignore_index, and a batched beam search
with topk over flattened (beam x vocab) scores, index_select/gather to reorder hidden states,
-inf masking of finished beams, a length penalty and early stopping bookkeeping."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

PAD, BOS, EOS = 0, 1, 2
VOCAB = 12
MAX_LEN = 9


class Seq2Seq(nn.Module):
    def __init__(self, vocab, emb=24, hidden=48):
        super().__init__()
        self.src_emb = nn.Embedding(vocab, emb, padding_idx=PAD)
        self.tgt_emb = nn.Embedding(vocab, emb, padding_idx=PAD)
        self.encoder = nn.GRU(emb, hidden, batch_first=True)
        self.decoder = nn.GRU(emb, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def encode(self, src):
        _, h = self.encoder(self.src_emb(src))
        return h

    def decode_step(self, tokens, h):
        out, h = self.decoder(self.tgt_emb(tokens), h)
        return F.log_softmax(self.out(out[:, -1]), dim=-1), h

    def forward(self, src, tgt_in):
        h = self.encode(src)
        out, _ = self.decoder(self.tgt_emb(tgt_in), h)
        return self.out(out)


def make_batch(n):
    lengths = torch.randint(2, 5, (n,))
    srcs, tgts_in, tgts_out = [], [], []
    for length in lengths.tolist():
        seq = torch.randint(3, VOCAB, (length,))
        rev = seq.flip(0)
        srcs.append(seq)
        tgts_in.append(torch.cat([torch.tensor([BOS]), rev]))
        tgts_out.append(torch.cat([rev, torch.tensor([EOS])]))
    return (
        pad_sequence(srcs, batch_first=True, padding_value=PAD),
        pad_sequence(tgts_in, batch_first=True, padding_value=PAD),
        pad_sequence(tgts_out, batch_first=True, padding_value=PAD),
    )


@torch.no_grad()
def beam_search(model, src, beam_size=3, max_len=MAX_LEN, len_penalty=0.6):
    bsz = src.size(0)
    h = model.encode(src)  # 1 x B x H
    # replicate each sentence beam_size times
    new_order = torch.arange(bsz).view(-1, 1).repeat(1, beam_size).view(-1)
    h = h.index_select(1, new_order)
    tokens = torch.full((bsz * beam_size, 1), BOS, dtype=torch.long)
    scores = torch.zeros(bsz, beam_size)
    scores[:, 1:] = float("-inf")  # only the first beam is live at step 0
    finished = torch.zeros(bsz * beam_size, dtype=torch.bool)
    done = torch.zeros(bsz, dtype=torch.bool)
    best = [None] * bsz
    best_score = torch.full((bsz,), float("-inf"))
    for step in range(max_len):
        lprobs, h = model.decode_step(tokens[:, -1:], h)
        lprobs[:, PAD] = float("-inf")
        # finished hypotheses only extend with PAD at no cost
        lprobs = lprobs.masked_fill(finished.unsqueeze(1), float("-inf"))
        lprobs[finished, PAD] = 0.0
        cand = scores.view(-1, 1) + lprobs
        cand = cand.view(bsz, -1)
        top_scores, top_idx = torch.topk(cand, beam_size, dim=1)
        beam_idx = torch.div(top_idx, VOCAB, rounding_mode="floor")
        word_idx = top_idx.fmod(VOCAB)
        flat = (beam_idx + torch.arange(bsz).unsqueeze(1) * beam_size).view(-1)
        tokens = torch.cat([tokens.index_select(0, flat), word_idx.view(-1, 1)], dim=1)
        h = h.index_select(1, flat)
        finished = finished.gather(0, flat) | (word_idx.view(-1) == EOS)
        scores = top_scores
        # record hypotheses that just ended, normalised by length ** len_penalty
        just_ended = (word_idx == EOS) & ~done.unsqueeze(1)
        for b, k in torch.nonzero(just_ended).tolist():
            normed = scores[b, k] / ((step + 1) ** len_penalty)
            if normed > best_score[b]:
                best_score[b] = normed
                best[b] = tokens[b * beam_size + k, 1:]
        # early stopping: a sentence is done once its best live beam cannot win
        live = scores.masked_fill(finished.view(bsz, beam_size), float("-inf"))
        bound = live.max(dim=1).values / (max_len**len_penalty)
        done = done | (bound < best_score) | finished.view(bsz, beam_size).all(dim=1)
        if bool(done.all()):
            break
    for b in range(bsz):
        if best[b] is None:
            k = int(scores[b].argmax())
            best[b] = tokens[b * beam_size + k, 1:]
            best_score[b] = scores[b, k] / (tokens.size(1) - 1) ** len_penalty
    return best, best_score


def main():
    torch.manual_seed(0)
    model = Seq2Seq(VOCAB)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    criterion = nn.CrossEntropyLoss(ignore_index=PAD)
    for step in range(1, 121):
        src, tgt_in, tgt_out = make_batch(32)
        logits = model(src, tgt_in)
        loss = criterion(logits.reshape(-1, VOCAB), tgt_out.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 20 == 0:
            print(f"step {step} loss {loss.item():.5f}")

    model.eval()
    src, _, tgt_out = make_batch(16)
    hyps, hyp_scores = beam_search(model, src)
    hyps = pad_sequence(hyps, batch_first=True, padding_value=PAD)
    width = max(hyps.size(1), tgt_out.size(1))
    hyps = F.pad(hyps, (0, width - hyps.size(1)), value=PAD)
    ref = F.pad(tgt_out, (0, width - tgt_out.size(1)), value=PAD)
    exact = (hyps == ref).all(dim=1).float().mean()
    print(f"beam exact match {exact.item():.3f}")
    print(f"beam score loss {-hyp_scores.mean().item():.5f}")


if __name__ == "__main__":
    main()
