"""A ConvLSTM next-frame predictor (Shi et al., 2015) on synthetic moving squares: a
ConvLSTMCell whose four gates come from one convolution over torch.cat([x, h], dim=1), split
with torch.split (or Tensor.chunk), sigmoid/tanh gate updates, a two-layer encoder unrolled
over time with a Python list and torch.stack, a 1x1 convolution reading out logits of the next
frame, BCEWithLogitsLoss (or MSE on the sigmoid), Adam with amsgrad=True and a
ReduceLROnPlateau; evaluation rolls the model out autoregressively on its own predictions."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvLSTMCell(nn.Module):
    def __init__(self, input_dim, hidden_dim, kernel_size, bias=True, use_chunk=False):
        super().__init__()
        self.input_dim = input_dim
        self.hidden_dim = hidden_dim
        self.padding = kernel_size[0] // 2, kernel_size[1] // 2
        self.use_chunk = use_chunk
        self.conv = nn.Conv2d(
            in_channels=self.input_dim + self.hidden_dim,
            out_channels=4 * self.hidden_dim,
            kernel_size=kernel_size,
            padding=self.padding,
            bias=bias,
        )

    def forward(self, input_tensor, cur_state):
        h_cur, c_cur = cur_state
        combined = torch.cat([input_tensor, h_cur], dim=1)
        combined_conv = self.conv(combined)
        if self.use_chunk:
            cc_i, cc_f, cc_o, cc_g = combined_conv.chunk(4, dim=1)
        else:
            cc_i, cc_f, cc_o, cc_g = torch.split(combined_conv, self.hidden_dim, dim=1)
        i = torch.sigmoid(cc_i)
        f = torch.sigmoid(cc_f)
        o = torch.sigmoid(cc_o)
        g = torch.tanh(cc_g)
        c_next = f * c_cur + i * g
        h_next = o * torch.tanh(c_next)
        return h_next, c_next

    def init_hidden(self, batch_size, image_size):
        height, width = image_size
        weight = self.conv.weight
        return (
            torch.zeros(batch_size, self.hidden_dim, height, width, device=weight.device),
            torch.zeros(batch_size, self.hidden_dim, height, width, device=weight.device),
        )


class ConvLSTM(nn.Module):
    def __init__(self, input_dim, hidden_dims, kernel_size, use_chunk=False):
        super().__init__()
        cells = []
        for i, hidden in enumerate(hidden_dims):
            cur_input_dim = input_dim if i == 0 else hidden_dims[i - 1]
            cells.append(ConvLSTMCell(cur_input_dim, hidden, kernel_size, use_chunk=use_chunk))
        self.cell_list = nn.ModuleList(cells)

    def forward(self, input_tensor, hidden_state=None):
        """input_tensor: (B, T, C, H, W); returns the last layer's outputs and every state."""
        b, seq_len, _, h, w = input_tensor.size()
        if hidden_state is None:
            hidden_state = [cell.init_hidden(b, (h, w)) for cell in self.cell_list]
        cur_layer_input = input_tensor
        last_states = []
        for layer_idx, cell in enumerate(self.cell_list):
            h_t, c_t = hidden_state[layer_idx]
            output_inner = []
            for t in range(seq_len):
                h_t, c_t = cell(cur_layer_input[:, t, :, :, :], (h_t, c_t))
                output_inner.append(h_t)
            cur_layer_input = torch.stack(output_inner, dim=1)
            last_states.append((h_t, c_t))
        return cur_layer_input, last_states


class NextFramePredictor(nn.Module):
    def __init__(self, hidden_dims=(8, 8), use_chunk=False):
        super().__init__()
        self.convlstm = ConvLSTM(1, list(hidden_dims), (3, 3), use_chunk=use_chunk)
        self.readout = nn.Conv2d(hidden_dims[-1], 1, kernel_size=1)

    def forward(self, frames, state=None):
        out, state = self.convlstm(frames, state)
        b, t, c, h, w = out.shape
        logits = self.readout(out.reshape(b * t, c, h, w)).view(b, t, 1, h, w)
        return logits, state

    @torch.no_grad()
    def rollout(self, context, steps):
        logits, state = self(context)
        frame = torch.sigmoid(logits[:, -1:])
        preds = []
        for _ in range(steps):
            preds.append(frame)
            logits, state = self(frame, state)
            frame = torch.sigmoid(logits)
        return torch.cat(preds, dim=1)


def moving_squares(rng, n, t=8, size=12, side=3):
    video = np.zeros((n, t, 1, size, size), dtype=np.float32)
    for i in range(n):
        pos = rng.uniform(0, size - side, 2)
        vel = rng.choice([-1.0, 1.0], 2) * rng.uniform(0.5, 1.2, 2)
        for k in range(t):
            for d in range(2):
                if not 0 <= pos[d] + vel[d] <= size - side:
                    vel[d] = -vel[d]
                pos[d] += vel[d]
            y, x = int(round(pos[0])), int(round(pos[1]))
            video[i, k, 0, y : y + side, x : x + side] = 1.0
    return torch.from_numpy(video)


def main():
    parser = argparse.ArgumentParser(description="ConvLSTM next-frame prediction")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--loss", choices=["bce", "mse"], default="bce")
    parser.add_argument("--chunk", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    train_video = moving_squares(rng, 48)
    test_video = moving_squares(rng, 16)
    model = NextFramePredictor(use_chunk=args.chunk)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, amsgrad=True)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=0)
    bce = nn.BCEWithLogitsLoss()

    def criterion(logits, target):
        if args.loss == "bce":
            return bce(logits, target)
        return F.mse_loss(torch.sigmoid(logits), target)

    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        batches = 0
        for i in range(0, len(train_video), args.batch_size):
            clip = train_video[i : i + args.batch_size]
            inputs, targets = clip[:, :-1], clip[:, 1:]
            logits, _ = model(inputs)
            loss = criterion(logits, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
            batches += 1
        model.eval()
        with torch.no_grad():
            logits, _ = model(test_video[:, :-1])
            val_loss = criterion(logits, test_video[:, 1:]).item()
            future = model.rollout(test_video[:, :4], steps=4)
            rollout_loss = F.mse_loss(future, test_video[:, 4:]).item()
        scheduler.step(val_loss)
        print(
            f"epoch {epoch} train loss {total / batches:.6f} val loss {val_loss:.6f} "
            f"rollout mse loss {rollout_loss:.6f} lr {optimizer.param_groups[0]['lr']:.5f}"
        )


if __name__ == "__main__":
    main()
