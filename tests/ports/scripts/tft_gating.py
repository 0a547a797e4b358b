"""Temporal Fusion Transformer (Lim et al., 2021) pieces in the manner of the public PyTorch
implementations: gated linear units (F.glu over a doubled Linear), gate-add-norm and gated
residual networks (ELU, an optional static context added without bias, a projected
residual), variable selection networks (one GRN per variable in an nn.ModuleDict, embeddings
for categorical inputs, a flattened GRN giving softmax weights, the weighted sum via
torch.matmul of the stacked outputs), static covariate encoders whose contexts select
variables, seed the LSTM encoder's (h, c) and enrich the temporal features, an LSTM encoder /
decoder with a gated skip (the encoder runs on a PackedSequence from pack_padded_sequence
with enforce_sorted=False, so windows may have shorter, right-padded histories, which
--variable-lengths draws), interpretable multi-head attention (per-head query and key
projections, one value projection shared by all heads, the heads' outputs averaged) over
encoder and decoder steps with a causal mask that also hides the padding, and a quantile
(pinball) loss over
[0.1, 0.5, 0.9]; Adam with ReduceLROnPlateau on the validation loss, and the mean attention
and variable weights printed as the model's interpretation."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import rnn as rnn_utils
from torch.utils.data import DataLoader, TensorDataset

QUANTILES = [0.1, 0.5, 0.9]


class GatedLinearUnit(nn.Module):
    def __init__(self, input_size, hidden_size=None, dropout=None):
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout is not None else None
        self.hidden_size = hidden_size or input_size
        self.fc = nn.Linear(input_size, self.hidden_size * 2)

    def forward(self, x):
        if self.dropout is not None:
            x = self.dropout(x)
        x = self.fc(x)
        return F.glu(x, dim=-1)


class GateAddNorm(nn.Module):
    def __init__(self, input_size, hidden_size=None, dropout=None):
        super().__init__()
        self.hidden_size = hidden_size or input_size
        self.glu = GatedLinearUnit(input_size, self.hidden_size, dropout=dropout)
        self.norm = nn.LayerNorm(self.hidden_size)

    def forward(self, x, skip):
        return self.norm(self.glu(x) + skip)


class GatedResidualNetwork(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, dropout=0.1, context_size=None,
                 residual=False):  # fmt: skip
        super().__init__()
        self.input_size, self.output_size, self.residual = input_size, output_size, residual
        residual_size = input_size if input_size > output_size or not residual else output_size
        self.resample = (
            nn.Linear(residual_size, output_size) if residual_size != output_size else None
        )
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.elu = nn.ELU()
        self.context = nn.Linear(context_size, hidden_size, bias=False) if context_size else None
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.gate_norm = GateAddNorm(hidden_size, output_size, dropout=dropout)

    def forward(self, x, context=None, residual=None):
        if residual is None:
            residual = x
        if self.resample is not None:
            residual = self.resample(residual)
        x = self.fc1(x)
        if context is not None:
            x = x + self.context(context)
        x = self.elu(x)
        x = self.fc2(x)
        return self.gate_norm(x, residual)


class VariableSelectionNetwork(nn.Module):
    def __init__(self, input_sizes, hidden_size, dropout=0.1, context_size=None):
        super().__init__()
        self.hidden_size = hidden_size
        self.input_sizes = input_sizes
        self.num_inputs = len(input_sizes)
        total = sum(input_sizes.values())
        self.flattened_grn = GatedResidualNetwork(total, min(hidden_size, self.num_inputs),
                                                  self.num_inputs, dropout, context_size,
                                                  residual=False)  # fmt: skip
        self.single_variable_grns = nn.ModuleDict(
            {name: GatedResidualNetwork(size, min(size, hidden_size), hidden_size, dropout)
             for name, size in input_sizes.items()}
        )  # fmt: skip
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x: dict, context=None):
        var_outputs, weight_inputs = [], []
        for name in self.input_sizes:
            variable_embedding = x[name]
            weight_inputs.append(variable_embedding)
            var_outputs.append(self.single_variable_grns[name](variable_embedding))
        var_outputs = torch.stack(var_outputs, dim=-1)  # (..., hidden, n_vars)
        flat_embedding = torch.cat(weight_inputs, dim=-1)
        sparse_weights = self.flattened_grn(flat_embedding, context)
        sparse_weights = self.softmax(sparse_weights).unsqueeze(-2)  # (..., 1, n_vars)
        outputs = var_outputs * sparse_weights
        outputs = outputs.sum(dim=-1)
        return outputs, sparse_weights


class ScaledDotProductAttention(nn.Module):
    def __init__(self, dropout=None, scale=True):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout) if dropout is not None else None
        self.softmax = nn.Softmax(dim=2)
        self.scale = scale

    def forward(self, q, k, v, mask=None):
        attn = torch.bmm(q, k.permute(0, 2, 1))
        if self.scale:
            dimension = torch.as_tensor(k.size(-1), dtype=attn.dtype, device=attn.device).sqrt()
            attn = attn / dimension
        if mask is not None:
            attn = attn.masked_fill(mask, -1e9)
        attn = self.softmax(attn)
        if self.dropout is not None:
            attn = self.dropout(attn)
        return torch.bmm(attn, v), attn


class InterpretableMultiHeadAttention(nn.Module):
    def __init__(self, n_head, d_model, dropout=0.0):
        super().__init__()
        self.n_head = n_head
        self.d_k = self.d_q = self.d_v = d_model // n_head
        self.dropout = nn.Dropout(p=dropout)
        self.v_layer = nn.Linear(d_model, self.d_v)
        self.q_layers = nn.ModuleList([nn.Linear(d_model, self.d_q) for _ in range(n_head)])
        self.k_layers = nn.ModuleList([nn.Linear(d_model, self.d_k) for _ in range(n_head)])
        self.attention = ScaledDotProductAttention()
        self.w_h = nn.Linear(self.d_v, d_model, bias=False)

    def forward(self, q, k, v, mask=None):
        heads, attns = [], []
        vs = self.v_layer(v)  # shared by all heads: the averaged weights stay interpretable
        for i in range(self.n_head):
            qs = self.q_layers[i](q)
            ks = self.k_layers[i](k)
            head, attn = self.attention(qs, ks, vs, mask)
            heads.append(self.dropout(head))
            attns.append(attn)
        head = torch.stack(heads, dim=2) if self.n_head > 1 else heads[0]
        attn = torch.stack(attns, dim=2)
        outputs = torch.mean(head, dim=2) if self.n_head > 1 else head
        outputs = self.dropout(self.w_h(outputs))
        return outputs, attn


class TemporalFusionTransformer(nn.Module):
    def __init__(self, n_series, n_weekdays, hidden_size=16, attention_heads=4, dropout=0.1,
                 quantiles=QUANTILES):  # fmt: skip
        super().__init__()
        h = hidden_size
        self.quantiles = quantiles
        # prescalers and embeddings turn every variable into a vector
        self.series_embedding = nn.Embedding(n_series, h)
        self.weekday_embedding = nn.Embedding(n_weekdays, h)
        self.prescalers = nn.ModuleDict({"target": nn.Linear(1, h), "time_idx": nn.Linear(1, h)})
        self.static_variable_selection = VariableSelectionNetwork({"series": h}, h, dropout)
        self.encoder_variable_selection = VariableSelectionNetwork(
            {"target": h, "time_idx": h, "weekday": h}, h, dropout, context_size=h
        )
        self.decoder_variable_selection = VariableSelectionNetwork(
            {"time_idx": h, "weekday": h}, h, dropout, context_size=h
        )
        self.static_context_variable_selection = GatedResidualNetwork(h, h, h, dropout)
        self.static_context_initial_hidden_lstm = GatedResidualNetwork(h, h, h, dropout)
        self.static_context_initial_cell_lstm = GatedResidualNetwork(h, h, h, dropout)
        self.static_context_enrichment = GatedResidualNetwork(h, h, h, dropout)
        self.lstm_encoder = nn.LSTM(h, h, num_layers=1, batch_first=True)
        self.lstm_decoder = nn.LSTM(h, h, num_layers=1, batch_first=True)
        self.post_lstm_gate_encoder = GatedLinearUnit(h, dropout=dropout)
        self.post_lstm_gate_decoder = self.post_lstm_gate_encoder
        self.post_lstm_add_norm_encoder = nn.LayerNorm(h)
        self.post_lstm_add_norm_decoder = self.post_lstm_add_norm_encoder
        self.static_enrichment = GatedResidualNetwork(h, h, h, dropout, context_size=h)
        self.multihead_attn = InterpretableMultiHeadAttention(attention_heads, h, dropout)
        self.post_attn_gate_norm = GateAddNorm(h, dropout=dropout)
        self.pos_wise_ff = GatedResidualNetwork(h, h, h, dropout)
        self.pre_output_gate_norm = GateAddNorm(h, dropout=None)
        self.output_layer = nn.Linear(h, len(quantiles))

    def get_attention_mask(self, encoder_lengths, max_encoder_length, decoder_length):
        """Decoder step i attends to the encoder's real steps and to decoder steps <= i."""
        decoder_mask = torch.triu(torch.ones(decoder_length, decoder_length, dtype=torch.bool),
                                  diagonal=1)  # fmt: skip
        encoder_mask = torch.arange(max_encoder_length)[None, :] >= encoder_lengths[:, None]
        return torch.cat(
            (encoder_mask.unsqueeze(1).expand(-1, decoder_length, -1),
             decoder_mask.unsqueeze(0).expand(encoder_lengths.size(0), -1, -1)),
            dim=2,
        )  # fmt: skip

    def forward(self, series, enc_lengths, enc_target, enc_time, enc_weekday, dec_time,
                dec_weekday):  # fmt: skip
        batch_size, enc_len = enc_target.shape
        dec_len = dec_time.shape[1]
        static_embedding, static_weights = self.static_variable_selection(
            {"series": self.series_embedding(series)}
        )
        static_context_variable_selection = self.static_context_variable_selection(static_embedding)
        ctx_enc = static_context_variable_selection[:, None].expand(-1, enc_len, -1)
        ctx_dec = static_context_variable_selection[:, None].expand(-1, dec_len, -1)
        embeddings_varying_encoder, encoder_sparse_weights = self.encoder_variable_selection(
            {"target": self.prescalers["target"](enc_target.unsqueeze(-1)),
             "time_idx": self.prescalers["time_idx"](enc_time.unsqueeze(-1)),
             "weekday": self.weekday_embedding(enc_weekday)},
            ctx_enc,
        )  # fmt: skip
        embeddings_varying_decoder, decoder_sparse_weights = self.decoder_variable_selection(
            {"time_idx": self.prescalers["time_idx"](dec_time.unsqueeze(-1)),
             "weekday": self.weekday_embedding(dec_weekday)},
            ctx_dec,
        )  # fmt: skip

        input_hidden = self.static_context_initial_hidden_lstm(static_embedding).unsqueeze(0)
        input_cell = self.static_context_initial_cell_lstm(static_embedding).unsqueeze(0)
        packed = rnn_utils.pack_padded_sequence(embeddings_varying_encoder, enc_lengths.cpu(),
                                                batch_first=True, enforce_sorted=False)  # fmt: skip
        encoder_output, (hidden, cell) = self.lstm_encoder(packed, (input_hidden, input_cell))
        encoder_output, _ = rnn_utils.pad_packed_sequence(encoder_output, batch_first=True,
                                                          total_length=enc_len)  # fmt: skip
        decoder_output, _ = self.lstm_decoder(embeddings_varying_decoder, (hidden, cell))

        lstm_output_encoder = self.post_lstm_gate_encoder(encoder_output)
        lstm_output_encoder = self.post_lstm_add_norm_encoder(
            lstm_output_encoder + embeddings_varying_encoder
        )
        lstm_output_decoder = self.post_lstm_gate_decoder(decoder_output)
        lstm_output_decoder = self.post_lstm_add_norm_decoder(
            lstm_output_decoder + embeddings_varying_decoder
        )
        lstm_output = torch.cat([lstm_output_encoder, lstm_output_decoder], dim=1)

        static_context_enrichment = self.static_context_enrichment(static_embedding)
        attn_input = self.static_enrichment(
            lstm_output, static_context_enrichment[:, None].expand(-1, enc_len + dec_len, -1)
        )
        attn_output, attn_weights = self.multihead_attn(
            q=attn_input[:, enc_len:], k=attn_input, v=attn_input,
            mask=self.get_attention_mask(enc_lengths, enc_len, dec_len),
        )  # fmt: skip
        attn_output = self.post_attn_gate_norm(attn_output, attn_input[:, enc_len:])
        output = self.pos_wise_ff(attn_output)
        output = self.pre_output_gate_norm(output, lstm_output[:, enc_len:])
        prediction = self.output_layer(output)
        return prediction, {
            "attention": attn_weights, "static_weights": static_weights,
            "encoder_weights": encoder_sparse_weights, "decoder_weights": decoder_sparse_weights,
        }  # fmt: skip


def quantile_loss(y_pred, target, quantiles=QUANTILES):
    """Pinball loss: for each quantile q, max(q * e, (q - 1) * e) with e = y - y_hat."""
    losses = []
    for i, q in enumerate(quantiles):
        errors = target - y_pred[..., i]
        losses.append(torch.max((q - 1) * errors, q * errors).unsqueeze(-1))
    return torch.cat(losses, dim=-1).sum(dim=-1).mean()


def make_data(rng, n_series, length):
    t = np.arange(length)
    weekday = t % 7
    level = rng.uniform(1.0, 3.0, (n_series, 1))
    weekly = np.array([0.0, 0.2, 0.4, 0.3, 0.1, -0.6, -0.4])
    y = level + weekly[weekday] * level + 0.01 * t + 0.1 * rng.standard_normal((n_series, length))
    return y.astype(np.float32), weekday.astype(np.int64)


def windows(y, weekday, starts, enc_len, dec_len, rng=None):
    """Encoder histories (right-padded when rng draws shorter ones), then the decoder range."""
    rows = [(s, a) for s in range(y.shape[0]) for a in starts]
    n = len(rows)
    lengths = np.full(n, enc_len) if rng is None else rng.integers(enc_len // 2, enc_len + 1, n)
    series = np.array([s for s, _ in rows])
    enc_t = np.zeros((n, enc_len), np.int64)
    enc_y = np.zeros((n, enc_len), np.float32)
    valid = np.zeros((n, enc_len), bool)
    for i, ((s, a), length) in enumerate(zip(rows, lengths)):
        first = a + enc_len - length
        enc_t[i, :length] = np.arange(first, a + enc_len)
        enc_y[i, :length] = y[s, first : a + enc_len]
        valid[i, :length] = True
    dec_t = np.stack([np.arange(a + enc_len, a + enc_len + dec_len) for _, a in rows])
    dec_y = np.stack([y[s, a + enc_len : a + enc_len + dec_len] for s, a in rows])
    scale = enc_y.sum(1, keepdims=True) / lengths[:, None]  # per-window, as GroupNormalizer
    enc_y, dec_y = (enc_y / scale).astype(np.float32), (dec_y / scale).astype(np.float32)
    return [torch.from_numpy(a) for a in (
        series, lengths.astype(np.int64), enc_y, (enc_t / 100.0).astype(np.float32) * valid,
        weekday[enc_t] * valid, (dec_t / 100.0).astype(np.float32), weekday[dec_t], dec_y,
    )]  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description="Temporal Fusion Transformer pieces")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--variable-lengths", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n_series, length, enc_len, dec_len = 6, 120, 21, 7
    y, weekday = make_data(rng, n_series, length)
    train = TensorDataset(*windows(y, weekday, range(0, 70, 3), enc_len, dec_len,
                                   rng if args.variable_lengths else None))  # fmt: skip
    valid = windows(y, weekday, [length - enc_len - dec_len], enc_len, dec_len)
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True)

    model = TemporalFusionTransformer(n_series, 7, attention_heads=args.heads)
    print(f"parameters {sum(p.numel() for p in model.parameters())}")
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5,
                                                           patience=0)  # fmt: skip

    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for *inputs, target in loader:
            prediction, _ = model(*inputs)
            loss = quantile_loss(prediction, target)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.1)
            optimizer.step()
            total += loss.item()
        model.eval()
        with torch.no_grad():
            prediction, _ = model(*valid[:-1])
            val_loss = quantile_loss(prediction, valid[-1])
        scheduler.step(val_loss)
        print(f"epoch {epoch} train loss {total / len(loader):.5f} val loss {val_loss.item():.5f} "
              f"lr {optimizer.param_groups[0]['lr']:.2e}")  # fmt: skip

    with torch.no_grad():
        prediction, interp = model(*valid[:-1])
    target = valid[-1]
    coverage = ((target >= prediction[..., 0]) & (target <= prediction[..., 2])).float().mean()
    p50 = F.l1_loss(prediction[..., 1], target)
    print(f"p50 mae loss {p50.item():.5f} 80% interval coverage {coverage.item():.3f}")
    attn = interp["attention"]  # (batch, decoder step, head, encoder + decoder step)
    print(
        f"attention shape {tuple(attn.shape)} future mass {attn[:, 0, :, enc_len + 1 :].sum().item():.1e}"
    )
    mean_attn = attn.mean(dim=(0, 1, 2))
    print(f"mean attention to the last encoder step loss {mean_attn[enc_len - 1].item():.5f}")
    enc_w = interp["encoder_weights"].mean(dim=(0, 1, 2))
    dec_w = interp["decoder_weights"].mean(dim=(0, 1, 2))
    print("encoder variable importance loss " + " ".join(f"{w:.4f}" for w in enc_w.tolist()))
    print("decoder variable importance loss " + " ".join(f"{w:.4f}" for w in dec_w.tolist()))


if __name__ == "__main__":
    main()
