"""Transformer-XL (Dai et al., 2019) in the manner of the authors' PyTorch code: segment-level
recurrence (each layer's hidden states cached as detached memory under torch.no_grad and
concatenated to the next segment's keys and values), relative positional attention with
sinusoidal embeddings of the distances (torch.ger with an inv_freq buffer), the learnt global
content and position biases r_w_bias / r_r_bias, the _rel_shift trick (a zero column padded
on, a view to the transposed shape, the first row dropped), a causal mask over memory plus
segment from torch.triu(..., diagonal=1 + mlen) applied with masked_fill_, post-norm blocks,
an ordered LM iterator over batchified data (view(bsz, -1).t().contiguous()), Adam with a
warm-up + cosine LambdaLR and gradient clipping; the loss is F.cross_entropy or
nn.AdaptiveLogSoftmaxWithLoss. The task repeats random phrases at a period longer than a
segment, so the memory is what lets the model predict them; evaluation runs with and without
memory."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class PositionalEmbedding(nn.Module):
    def __init__(self, demb):
        super().__init__()
        self.demb = demb
        inv_freq = 1 / (10000 ** (torch.arange(0.0, demb, 2.0) / demb))
        self.register_buffer("inv_freq", inv_freq)

    def forward(self, pos_seq, bsz=None):
        sinusoid_inp = torch.ger(pos_seq, self.inv_freq)
        pos_emb = torch.cat([sinusoid_inp.sin(), sinusoid_inp.cos()], dim=-1)
        if bsz is not None:
            return pos_emb[:, None, :].expand(-1, bsz, -1)
        return pos_emb[:, None, :]


class PositionwiseFF(nn.Module):
    def __init__(self, d_model, d_inner, dropout):
        super().__init__()
        self.CoreNet = nn.Sequential(
            nn.Linear(d_model, d_inner), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(d_inner, d_model), nn.Dropout(dropout),
        )  # fmt: skip
        self.layer_norm = nn.LayerNorm(d_model)

    def forward(self, inp):
        return self.layer_norm(inp + self.CoreNet(inp))


class RelPartialLearnableMultiHeadAttn(nn.Module):
    def __init__(self, n_head, d_model, d_head, dropout, dropatt=0.0):
        super().__init__()
        self.n_head, self.d_model, self.d_head = n_head, d_model, d_head
        self.qkv_net = nn.Linear(d_model, 3 * n_head * d_head, bias=False)
        self.drop = nn.Dropout(dropout)
        self.dropatt = nn.Dropout(dropatt)
        self.o_net = nn.Linear(n_head * d_head, d_model, bias=False)
        self.layer_norm = nn.LayerNorm(d_model)
        self.scale = 1 / (d_head**0.5)
        self.r_net = nn.Linear(d_model, n_head * d_head, bias=False)

    @staticmethod
    def _rel_shift(x):
        """Aligns scores by relative distance: row i shifted left by qlen - 1 - i."""
        zero_pad_shape = (x.size(0), 1) + x.size()[2:]
        zero_pad = torch.zeros(zero_pad_shape, device=x.device, dtype=x.dtype)
        x_padded = torch.cat([zero_pad, x], dim=1)
        x_padded_shape = (x.size(1) + 1, x.size(0)) + x.size()[2:]
        x_padded = x_padded.view(*x_padded_shape)
        return x_padded[1:].view_as(x)

    def forward(self, w, r, r_w_bias, r_r_bias, attn_mask=None, mems=None):
        qlen, rlen, bsz = w.size(0), r.size(0), w.size(1)
        if mems is not None:
            cat = torch.cat([mems, w], 0)
            w_heads = self.qkv_net(cat)
            r_head_k = self.r_net(r)
            w_head_q, w_head_k, w_head_v = torch.chunk(w_heads, 3, dim=-1)
            w_head_q = w_head_q[-qlen:]
        else:
            w_heads = self.qkv_net(w)
            r_head_k = self.r_net(r)
            w_head_q, w_head_k, w_head_v = torch.chunk(w_heads, 3, dim=-1)
        klen = w_head_k.size(0)

        w_head_q = w_head_q.view(qlen, bsz, self.n_head, self.d_head)
        w_head_k = w_head_k.view(klen, bsz, self.n_head, self.d_head)
        w_head_v = w_head_v.view(klen, bsz, self.n_head, self.d_head)
        r_head_k = r_head_k.view(rlen, self.n_head, self.d_head)

        # content-based scores (a) + (c), position-based scores (b) + (d)
        rw_head_q = w_head_q + r_w_bias
        AC = torch.einsum("ibnd,jbnd->ijbn", (rw_head_q, w_head_k))
        rr_head_q = w_head_q + r_r_bias
        BD = torch.einsum("ibnd,jnd->ijbn", (rr_head_q, r_head_k))
        BD = self._rel_shift(BD)

        attn_score = AC + BD
        attn_score.mul_(self.scale)
        if attn_mask is not None and attn_mask.any().item():
            if attn_mask.dim() == 2:
                attn_score = attn_score.float().masked_fill(
                    attn_mask[None, :, :, None], -float("inf")
                )
            elif attn_mask.dim() == 3:
                attn_score = attn_score.float().masked_fill(attn_mask[:, :, :, None], -float("inf"))

        attn_prob = F.softmax(attn_score, dim=1)
        attn_prob = self.dropatt(attn_prob)
        attn_vec = torch.einsum("ijbn,jbnd->ibnd", (attn_prob, w_head_v))
        attn_vec = attn_vec.contiguous().view(attn_vec.size(0), attn_vec.size(1),
                                              self.n_head * self.d_head)  # fmt: skip
        attn_out = self.drop(self.o_net(attn_vec))
        return self.layer_norm(w + attn_out)


class RelPartialLearnableDecoderLayer(nn.Module):
    def __init__(self, n_head, d_model, d_head, d_inner, dropout, dropatt=0.0):
        super().__init__()
        self.dec_attn = RelPartialLearnableMultiHeadAttn(n_head, d_model, d_head, dropout, dropatt)
        self.pos_ff = PositionwiseFF(d_model, d_inner, dropout)

    def forward(self, dec_inp, r, r_w_bias, r_r_bias, dec_attn_mask=None, mems=None):
        output = self.dec_attn(dec_inp, r, r_w_bias, r_r_bias, attn_mask=dec_attn_mask, mems=mems)
        return self.pos_ff(output)


class MemTransformerLM(nn.Module):
    def __init__(self, n_token, n_layer=2, n_head=2, d_model=32, d_head=16, d_inner=64,
                 dropout=0.1, tgt_len=16, mem_len=16, adaptive=False, cutoffs=(8, 16)):  # fmt: skip
        super().__init__()
        self.n_token, self.d_model, self.n_head, self.d_head = n_token, d_model, n_head, d_head
        self.word_emb = nn.Embedding(n_token, d_model)
        self.emb_scale = d_model**0.5
        self.drop = nn.Dropout(dropout)
        self.n_layer, self.tgt_len, self.mem_len = n_layer, tgt_len, mem_len
        self.layers = nn.ModuleList(
            [RelPartialLearnableDecoderLayer(n_head, d_model, d_head, d_inner, dropout)
             for _ in range(n_layer)]
        )  # fmt: skip
        self.pos_emb = PositionalEmbedding(d_model)
        self.r_w_bias = nn.Parameter(torch.Tensor(self.n_head, self.d_head))
        self.r_r_bias = nn.Parameter(torch.Tensor(self.n_head, self.d_head))
        nn.init.normal_(self.r_w_bias, 0.0, 0.02)
        nn.init.normal_(self.r_r_bias, 0.0, 0.02)
        self.adaptive = adaptive
        if adaptive:
            self.crit = nn.AdaptiveLogSoftmaxWithLoss(
                d_model, n_token, list(cutoffs), div_value=2.0
            )
        else:
            self.out_layer = nn.Linear(d_model, n_token)

    def reset_length(self, tgt_len, mem_len):
        self.tgt_len, self.mem_len = tgt_len, mem_len

    def init_mems(self):
        if self.mem_len > 0:
            param = next(self.parameters())
            return [torch.empty(0, dtype=param.dtype, device=param.device)
                    for _ in range(self.n_layer + 1)]  # fmt: skip
        return None

    def _update_mems(self, hids, mems, qlen, mlen):
        if mems is None:
            return None
        assert len(hids) == len(mems), "len(hids) != len(mems)"
        # the memory is the last mem_len states of cached memory plus this segment, detached
        with torch.no_grad():
            new_mems = []
            end_idx = mlen + max(0, qlen)
            beg_idx = max(0, end_idx - self.mem_len)
            for i in range(len(hids)):
                cat = torch.cat([mems[i], hids[i]], dim=0)
                new_mems.append(cat[beg_idx:end_idx].detach())
        return new_mems

    def _forward(self, dec_inp, mems=None):
        qlen, bsz = dec_inp.size()
        word_emb = self.word_emb(dec_inp) * self.emb_scale
        mlen = mems[0].size(0) if mems is not None else 0
        klen = mlen + qlen
        dec_attn_mask = torch.triu(word_emb.new_ones(qlen, klen), diagonal=1 + mlen).bool()[
            :, :, None
        ]

        hids = []
        pos_seq = torch.arange(klen - 1, -1, -1.0, device=word_emb.device, dtype=word_emb.dtype)
        pos_emb = self.pos_emb(pos_seq)
        core_out = self.drop(word_emb)
        pos_emb = self.drop(pos_emb)
        hids.append(core_out)
        for i, layer in enumerate(self.layers):
            mems_i = None if mems is None else mems[i]
            core_out = layer(core_out, pos_emb, self.r_w_bias, self.r_r_bias,
                             dec_attn_mask=dec_attn_mask, mems=mems_i)  # fmt: skip
            hids.append(core_out)
        core_out = self.drop(core_out)
        new_mems = self._update_mems(hids, mems, qlen, mlen)
        return core_out, new_mems

    def forward(self, data, target, *mems):
        if not mems:
            mems = self.init_mems()
        tgt_len = target.size(0)
        hidden, new_mems = self._forward(data, mems=mems)
        pred_hid = hidden[-tgt_len:]
        flat = pred_hid.reshape(-1, pred_hid.size(-1))
        if self.adaptive:
            loss = -self.crit(flat, target.reshape(-1)).output
        else:
            logits = self.out_layer(flat)
            loss = F.cross_entropy(logits, target.reshape(-1), reduction="none")
        loss = loss.view(tgt_len, -1)
        if new_mems is None:
            return [loss]
        return [loss] + new_mems


class LMOrderedIterator:
    def __init__(self, data, bsz, bptt):
        self.bsz, self.bptt = bsz, bptt
        self.n_step = data.size(0) // bsz
        data = data.narrow(0, 0, self.n_step * bsz)
        self.data = data.view(bsz, -1).t().contiguous()  # (T, bsz): each column one stream
        self.n_batch = (self.n_step + self.bptt - 1) // self.bptt

    def get_batch(self, i):
        seq_len = min(self.bptt, self.data.size(0) - 1 - i)
        end_idx = i + seq_len
        data = self.data[i:end_idx]
        target = self.data[i + 1 : i + 1 + seq_len]
        return data, target, seq_len

    def __iter__(self):
        for i in range(0, self.data.size(0) - 1, self.bptt):
            yield self.get_batch(i)


def make_corpus(rng, n_token, length, period):
    """Random phrases of `period` tokens, each repeated a few times: predictable only by
    looking back `period` tokens, further than one segment."""
    out = []
    while len(out) < length:
        phrase = rng.integers(0, n_token, period)
        for _ in range(3):
            out.extend(phrase.tolist())
    return torch.tensor(out[:length], dtype=torch.long)


def evaluate(model, iterator, mem_len):
    model.eval()
    model.reset_length(model.tgt_len, mem_len)
    total_loss, total_len = 0.0, 0
    with torch.no_grad():
        mems = tuple()
        for data, target, seq_len in iterator:
            ret = model(data, target, *mems)
            loss, mems = ret[0], ret[1:]
            total_loss += seq_len * loss.mean().float().item()
            total_len += seq_len
    model.train()
    return total_loss / total_len


def main():
    parser = argparse.ArgumentParser(description="Transformer-XL segment recurrence")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--tgt-len", type=int, default=16)
    parser.add_argument("--mem-len", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--adaptive", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n_token, period = 24, 20
    train_data = make_corpus(rng, n_token, 8 * 240, period)
    valid_data = make_corpus(rng, n_token, 4 * 120, period)
    tr_iter = LMOrderedIterator(train_data, args.batch_size, args.tgt_len)
    va_iter = LMOrderedIterator(valid_data, 4, args.tgt_len)

    model = MemTransformerLM(n_token, tgt_len=args.tgt_len, mem_len=args.mem_len,
                             adaptive=args.adaptive)  # fmt: skip
    n_all = sum(p.nelement() for p in model.parameters())
    print(f"#params = {n_all}")
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    max_step = args.epochs * tr_iter.n_batch
    warmup = 4

    def lr_lambda(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, max_step - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)

    model.train()
    train_step = 0
    for epoch in range(args.epochs):
        mems = tuple()
        epoch_loss, n = 0.0, 0
        for batch, (data, target, _) in enumerate(tr_iter):
            model.zero_grad()
            ret = model(data, target, *mems)
            loss, mems = ret[0], ret[1:]
            loss = loss.float().mean()
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
            optimizer.step()
            scheduler.step()
            train_step += 1
            epoch_loss += loss.item()
            n += 1
            if batch % 5 == 4:
                print(f"| epoch {epoch} step {train_step} | lr {scheduler.get_last_lr()[0]:.3g} "
                      f"| loss {loss.item():5.4f} | grad norm {grad_norm.item():.4f}")  # fmt: skip
        print(f"epoch {epoch} mean loss {epoch_loss / n:.5f} memory {tuple(mems[0].shape)} "
              f"requires_grad {mems[0].requires_grad}")  # fmt: skip

    with_mem = evaluate(model, va_iter, args.mem_len)
    without = evaluate(model, va_iter, 0)
    print(f"valid loss with memory {with_mem:.5f} | valid loss without memory {without:.5f} "
          f"| ppl {math.exp(with_mem):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
