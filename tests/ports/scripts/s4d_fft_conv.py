"""S4D (Gu et al., 2022) and a Hyena operator (Poli et al., 2023) in the manner of their
standalone reference files. S4D: a diagonal state-space kernel computed from complex
parameters (C kept as a real nn.Parameter through torch.view_as_real / view_as_complex, or
with --complex-params as a complex nn.Parameter that AdamW updates directly,
A = -exp(log_A_real) + i A_imag, dt = exp(log_dt)), the Vandermonde product with einsum and
.real, applied as a long convolution by torch.fft.rfft / irfft at twice the length, a skip D,
GELU and a Conv1d + GLU output; the SSM parameters carry an `_optim` attribute that gives them
their own optimizer group (lower lr, no weight decay), as in the reference's setup_optimizer.
The kernel is checked against a direct F.conv1d with the flipped kernel and against the
recurrent view (complex state h = exp(dt A) h + (exp(dt A) - 1) / A u step by step). Hyena:
input projection into three branches, a short depthwise causal Conv1d, an implicit long
filter (an MLP with a learnt-frequency Sin activation over complex-exponential positional
features, times an exponential decay window), fftconv with norm="forward", and
multiplicative gating. Pre-norm residual stacks on a long-range recall regression task,
AdamW with parameter groups and CosineAnnealingLR."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class S4DKernel(nn.Module):
    """Generates the convolution kernel of a diagonal SSM from its complex parameters."""

    def __init__(self, d_model, N=16, dt_min=0.001, dt_max=0.1, lr=None,  # noqa: N803
                 complex_params=False):  # fmt: skip
        super().__init__()
        H = d_model
        log_dt = torch.rand(H) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        C = torch.randn(H, N // 2, dtype=torch.cfloat)
        self.complex_params = complex_params
        self.C = nn.Parameter(C if complex_params else torch.view_as_real(C))
        self.register("log_dt", log_dt, lr)
        log_A_real = torch.log(0.5 * torch.ones(H, N // 2))
        A_imag = math.pi * torch.arange(N // 2).float().repeat(H, 1)
        self.register("log_A_real", log_A_real, lr)
        self.register("A_imag", A_imag, lr)

    def discretize(self):
        dt = torch.exp(self.log_dt)  # (H)
        C = self.C if self.complex_params else torch.view_as_complex(self.C)  # (H N)
        A = -torch.exp(self.log_A_real) + 1j * self.A_imag  # (H N)
        dtA = A * dt.unsqueeze(-1)  # (H N)
        return dtA, A, C

    def forward(self, L):  # noqa: N803
        dtA, A, C = self.discretize()
        K = dtA.unsqueeze(-1) * torch.arange(L, device=A.device)  # (H N L)
        C = C * (torch.exp(dtA) - 1.0) / A
        K = 2 * torch.einsum("hn, hnl -> hl", C, torch.exp(K)).real
        return K

    def register(self, name, tensor, lr=None):
        """A parameter with its own optimizer settings (or a buffer when lr == 0)."""
        if lr == 0.0:
            self.register_buffer(name, tensor)
        else:
            self.register_parameter(name, nn.Parameter(tensor))
            optim = {"weight_decay": 0.0}
            if lr is not None:
                optim["lr"] = lr
            getattr(self, name)._optim = optim


class S4D(nn.Module):
    def __init__(self, d_model, d_state=16, dropout=0.0, transposed=True, **kernel_args):
        super().__init__()
        self.h = d_model
        self.n = d_state
        self.transposed = transposed
        self.D = nn.Parameter(torch.randn(self.h))
        self.kernel = S4DKernel(self.h, N=self.n, **kernel_args)
        self.activation = nn.GELU()
        self.dropout = nn.Dropout(dropout) if dropout > 0.0 else nn.Identity()
        self.output_linear = nn.Sequential(
            nn.Conv1d(self.h, 2 * self.h, kernel_size=1),
            nn.GLU(dim=-2),
        )
        self.mode = "fft"

    def forward(self, u):
        """Input and output shape (B, H, L)."""
        if not self.transposed:
            u = u.transpose(-1, -2)
        L = u.size(-1)
        k = self.kernel(L=L)  # (H L)
        if self.mode == "fft":
            k_f = torch.fft.rfft(k, n=2 * L)  # (H L)
            u_f = torch.fft.rfft(u, n=2 * L)  # (B H L)
            y = torch.fft.irfft(u_f * k_f, n=2 * L)[..., :L]  # (B H L)
        elif self.mode == "direct":
            # causal convolution: left padding and the kernel flipped (conv1d correlates)
            y = F.conv1d(F.pad(u, (L - 1, 0)), k.flip(-1).unsqueeze(1), groups=self.h)
        else:
            y = self.recurrent(u)
        y = y + u * self.D.unsqueeze(-1)
        y = self.dropout(self.activation(y))
        y = self.output_linear(y)
        if not self.transposed:
            y = y.transpose(-1, -2)
        return y

    def recurrent(self, u):
        """The same SSM run as a recurrence over a complex state."""
        dtA, A, C = self.kernel.discretize()
        dA = torch.exp(dtA)  # (H N)
        dB = (dA - 1.0) / A
        h = torch.zeros(u.shape[0], self.h, self.n // 2, dtype=torch.cfloat)
        ys = []
        for t in range(u.shape[-1]):
            h = dA * h + dB * u[..., t, None]
            ys.append(2 * torch.einsum("bhn,hn->bh", h, C).real)
        return torch.stack(ys, dim=-1)


class Sin(nn.Module):
    def __init__(self, dim, w=10, train_freq=True):
        super().__init__()
        self.freq = nn.Parameter(w * torch.ones(1, dim)) if train_freq else w * torch.ones(1, dim)

    def forward(self, x):
        return torch.sin(self.freq * x)


class PositionalEmbedding(nn.Module):
    def __init__(self, emb_dim, seq_len):
        """Complex exponential positional embeddings for the implicit filter."""
        super().__init__()
        self.seq_len = seq_len
        t = torch.linspace(0, 1, self.seq_len)[None, :, None]  # 1, L, 1
        bands = (emb_dim - 1) // 2
        t_rescaled = torch.linspace(0, seq_len - 1, seq_len)[None, :, None]
        w = 2 * math.pi * t_rescaled / seq_len  # 1, L, 1
        f = torch.linspace(1e-4, bands - 1, bands)[None, None]
        z = torch.exp(-1j * f * w)
        z = torch.cat([t, z.real, z.imag], dim=-1)
        self.register_buffer("z", z)
        self.register_buffer("t", t)

    def forward(self, L):  # noqa: N803
        return self.z[:, :L], self.t[:, :L]


class ExponentialModulation(nn.Module):
    def __init__(self, d_model, fast_decay_pct=0.3, slow_decay_pct=1.5, target=1e-2, shift=0.0):
        super().__init__()
        self.shift = shift
        max_decay = math.log(target) / fast_decay_pct
        min_decay = math.log(target) / slow_decay_pct
        deltas = torch.linspace(min_decay, max_decay, d_model)[None, None]
        self.register_buffer("deltas", deltas)

    def forward(self, t, x):
        decay = torch.exp(-t * self.deltas.abs())
        return x * (decay + self.shift)


class HyenaFilter(nn.Module):
    """An implicit long filter: h(t) = window(t) * MLP(positional features of t)."""

    def __init__(self, d_model, emb_dim=5, order=16, seq_len=64, w=1):
        super().__init__()
        self.d_model = d_model
        self.bias = nn.Parameter(torch.randn(self.d_model))
        self.pos_emb = PositionalEmbedding(emb_dim, seq_len)
        act = Sin(dim=order, w=w)
        self.implicit_filter = nn.Sequential(
            nn.Linear(emb_dim, order), act,
            nn.Linear(order, order), act,
            nn.Linear(order, d_model, bias=False),
        )  # fmt: skip
        self.modulation = ExponentialModulation(d_model)

    def filter(self, L):  # noqa: N803
        z, t = self.pos_emb(L)
        h = self.implicit_filter(z)
        return self.modulation(t, h)

    def forward(self, x, L, k, bias):  # noqa: N803
        return fftconv(x, k, bias)


def fftconv(u, k, D):  # noqa: N803
    seqlen = u.shape[-1]
    fft_size = 2 * seqlen
    k_f = torch.fft.rfft(k, n=fft_size) / fft_size
    u_f = torch.fft.rfft(u.to(dtype=k.dtype), n=fft_size)
    y = torch.fft.irfft(u_f * k_f, n=fft_size, norm="forward")[..., :seqlen]
    out = y + u * D.unsqueeze(-1)
    return out.to(dtype=u.dtype)


class HyenaOperator(nn.Module):
    def __init__(self, d_model, l_max, order=2, filter_order=16):
        super().__init__()
        self.d_model, self.l_max, self.order = d_model, l_max, order
        inner_width = d_model * (order + 1)
        self.in_proj = nn.Linear(d_model, inner_width)
        self.out_proj = nn.Linear(d_model, d_model)
        self.short_filter = nn.Conv1d(inner_width, inner_width, 3, padding=2, groups=inner_width)
        self.filter_fn = HyenaFilter(d_model * (order - 1), order=filter_order, seq_len=l_max)

    def forward(self, u):
        l = u.size(-2)  # noqa: E741 - the reference's name
        l_filter = min(l, self.l_max)
        u = self.in_proj(u).transpose(1, 2)  # b l d -> b d l
        uc = self.short_filter(u)[..., :l_filter]
        *x, v = uc.split(self.d_model, dim=1)
        k = self.filter_fn.filter(l_filter)[0]  # l d
        k = k.transpose(0, 1).reshape(self.order - 1, self.d_model, l_filter)
        bias = self.filter_fn.bias.reshape(self.order - 1, self.d_model)
        for o, x_i in enumerate(reversed(x[1:])):
            v = v * x_i
            v = self.filter_fn(v, l_filter, k=k[o], bias=bias[o])
        y = (v * x[0]).transpose(1, 2)
        return self.out_proj(y)


class Model(nn.Module):
    def __init__(self, d_input, d_output, d_model=32, n_layers=2, mixer="s4d", l_max=64,
                 lr=1e-3, complex_params=False):  # fmt: skip
        super().__init__()
        self.mixer = mixer
        self.encoder = nn.Linear(d_input, d_model)
        if mixer == "s4d":
            layers = [S4D(d_model, lr=lr, complex_params=complex_params) for _ in range(n_layers)]
        else:
            layers = [HyenaOperator(d_model, l_max) for _ in range(n_layers)]
        self.layers = nn.ModuleList(layers)
        self.norms = nn.ModuleList([nn.LayerNorm(d_model) for _ in range(n_layers)])
        self.decoder = nn.Linear(d_model, d_output)

    def set_mode(self, mode):
        for layer in self.layers:
            layer.mode = mode

    def forward(self, x):
        x = self.encoder(x)  # (B, L, d_input) -> (B, L, d_model)
        for layer, norm in zip(self.layers, self.norms):
            z = norm(x)  # pre-norm
            if self.mixer == "s4d":
                z = layer(z.transpose(-1, -2)).transpose(-1, -2)
            else:
                z = layer(z)
            x = z + x
        return self.decoder(x)


def setup_optimizer(model, lr, weight_decay, epochs):
    """The reference's setup: parameters with an `_optim` attribute get their own groups."""
    all_parameters = list(model.parameters())
    params = [p for p in all_parameters if not hasattr(p, "_optim")]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    hps = [p._optim for p in all_parameters if hasattr(p, "_optim")]
    hps = [dict(s) for s in sorted(list(dict.fromkeys(frozenset(hp.items()) for hp in hps)))]
    for hp in hps:
        params = [p for p in all_parameters if getattr(p, "_optim", None) == hp]
        optimizer.add_param_group({"params": params, **hp})
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    for i, group in enumerate(optimizer.param_groups):
        print(f"optimizer group {i}: {len(group['params'])} tensors, lr {group['lr']:.1e}, "
              f"weight decay {group['weight_decay']}")  # fmt: skip
    return optimizer, scheduler


def delay_task(rng, n, seq_len, delay):
    """Recall a smoothed noise signal `delay` steps later, and its running sign."""
    x = rng.standard_normal((n, seq_len + 2)).astype(np.float32)
    x = (x[:, :-2] + x[:, 1:-1] + x[:, 2:]) / 3.0
    y = np.zeros((n, seq_len, 2), np.float32)
    y[:, delay:, 0] = x[:, :-delay]
    y[:, :, 1] = np.tanh(np.cumsum(x, 1) / 4.0)
    return torch.from_numpy(x[..., None]), torch.from_numpy(y)


def main():
    parser = argparse.ArgumentParser(description="S4D / Hyena long convolutions")
    parser.add_argument("--mixer", choices=["s4d", "hyena"], default="s4d")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--delay", type=int, default=20)
    parser.add_argument("--complex-params", action="store_true")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x_train, y_train = delay_task(rng, 256, args.seq_len, args.delay)
    x_test, y_test = delay_task(rng, 64, args.seq_len, args.delay)
    train = torch.utils.data.TensorDataset(x_train, y_train)
    loader = torch.utils.data.DataLoader(train, batch_size=args.batch_size, shuffle=True)

    model = Model(1, 2, mixer=args.mixer, l_max=args.seq_len, lr=args.lr / 3,
                  complex_params=args.complex_params)  # fmt: skip
    optimizer, scheduler = setup_optimizer(model, args.lr, 0.01, args.epochs)

    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = F.mse_loss(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.item()
        scheduler.step()
        model.eval()
        with torch.no_grad():
            test_loss = F.mse_loss(model(x_test), y_test)
        print(f"epoch {epoch} train loss {total / len(loader):.5f} "
              f"test loss {test_loss.item():.5f} lr {scheduler.get_last_lr()[0]:.2e}")  # fmt: skip

    model.eval()
    if args.mixer == "s4d":
        with torch.no_grad():
            out_fft = model(x_test[:8])
            model.set_mode("direct")
            out_direct = model(x_test[:8])
            model.set_mode("recurrent")
            out_rec = model(x_test[:8])
            model.set_mode("fft")
        print(f"fft loss {F.mse_loss(out_fft, y_test[:8]).item():.5f} "
              f"direct conv loss {F.mse_loss(out_direct, y_test[:8]).item():.5f} "
              f"recurrent loss {F.mse_loss(out_rec, y_test[:8]).item():.5f}")  # fmt: skip
        print(f"conv gap {(out_fft - out_direct).abs().max().item():.1e} "
              f"recurrence gap {(out_fft - out_rec).abs().max().item():.1e}")  # fmt: skip
        # gradients flow into the complex parameters through both views
        grads = []
        for mode in ("fft", "recurrent"):
            model.set_mode(mode)
            model.zero_grad()
            F.mse_loss(model(x_test[:8]), y_test[:8]).backward()
            kernel = model.layers[0].kernel
            c_grad = kernel.C.grad
            if kernel.complex_params:
                c_grad = torch.view_as_real(c_grad)
            grads.append(torch.cat([c_grad.flatten(), kernel.log_dt.grad,
                                    kernel.log_A_real.grad.flatten()]))  # fmt: skip
        print(f"kernel grad norm loss {grads[0].norm().item():.5f} "
              f"recurrent grad norm loss {grads[1].norm().item():.5f}")  # fmt: skip
    else:
        with torch.no_grad():
            k = model.layers[0].filter_fn.filter(args.seq_len)[0]
        print(f"implicit filter norm loss {k.norm().item():.5f} "
              f"decay ratio {(k[-1].abs().mean() / k[0].abs().mean()).item():.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
