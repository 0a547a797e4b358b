"""A transformer MLP whose fused SwiGLU and RMSNorm are registered as custom operators, the
way kernel libraries expose them to PyTorch: torch.library.custom_op("mylib::...",
mutates_args=()) with a type-annotated Python implementation, register_fake for shape
propagation, register_autograd with a setup_context that saves tensors on ctx and a backward
written by hand (each returning None for non-tensor inputs), an in-place custom op declared
with mutates_args=("buf",) (an activation-statistics counter), calls through both the
returned function and torch.ops.mylib.<name>, torch.library.opcheck on sample inputs, and a
comparison of the custom ops' gradients with the autograd of the reference formulas."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


@torch.library.custom_op("mylib::swiglu", mutates_args=())
def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    return F.silu(gate) * up


@swiglu.register_fake
def _(gate, up):
    torch._check(gate.shape == up.shape)
    return torch.empty_like(gate)


def _swiglu_setup(ctx, inputs, output):
    gate, up = inputs
    ctx.save_for_backward(gate, up)


def _swiglu_backward(ctx, grad):
    gate, up = ctx.saved_tensors
    sig = torch.sigmoid(gate)
    silu = gate * sig
    d_gate = grad * up * (sig + silu * (1 - sig))
    d_up = grad * silu
    return d_gate, d_up


swiglu.register_autograd(_swiglu_backward, setup_context=_swiglu_setup)


@torch.library.custom_op("mylib::rms_norm", mutates_args=())
def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    rstd = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return x * rstd * weight


@rms_norm.register_fake
def _(x, weight, eps):
    return torch.empty_like(x)


def _rms_setup(ctx, inputs, output):
    x, weight, eps = inputs
    ctx.eps = eps
    ctx.save_for_backward(x, weight)


def _rms_backward(ctx, grad):
    x, weight = ctx.saved_tensors
    rstd = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + ctx.eps)
    xhat = x * rstd
    gw = (grad * xhat).reshape(-1, x.shape[-1]).sum(0)
    gxhat = grad * weight
    gx = rstd * (gxhat - xhat * (gxhat * xhat).mean(-1, keepdim=True))
    return gx, gw, None


torch.library.register_autograd("mylib::rms_norm", _rms_backward, setup_context=_rms_setup)


@torch.library.custom_op("mylib::count_active", mutates_args=("buf",))
def count_active(x: torch.Tensor, buf: torch.Tensor) -> None:
    buf.add_((x > 0).sum(dim=tuple(range(x.dim() - 1))).to(buf.dtype))


class Block(nn.Module):
    def __init__(self, d, hidden, fused):
        super().__init__()
        self.norm_w = nn.Parameter(torch.ones(d))
        self.w_gate = nn.Linear(d, hidden, bias=False)
        self.w_up = nn.Linear(d, hidden, bias=False)
        self.w_down = nn.Linear(hidden, d, bias=False)
        self.register_buffer("active", torch.zeros(hidden))
        self.fused = fused

    def forward(self, x):
        if self.fused:
            h = torch.ops.mylib.rms_norm(x, self.norm_w, 1e-6)
            gate, up = self.w_gate(h), self.w_up(h)
            count_active(gate.detach(), self.active)
            a = swiglu(gate, up)
        else:
            h = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.norm_w
            gate, up = self.w_gate(h), self.w_up(h)
            self.active += (gate > 0).sum(dim=(0, 1)).float()
            a = F.silu(gate) * up
        return x + self.w_down(a)


class Model(nn.Module):
    def __init__(self, vocab, d, hidden, layers, fused):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList([Block(d, hidden, fused) for _ in range(layers)])
        self.out = nn.Linear(d, vocab)

    def forward(self, idx):
        x = self.emb(idx)
        for b in self.blocks:
            x = b(x)
        return self.out(x)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--reference", action="store_true", help="plain formulas, no custom ops")
    args = parser.parse_args()
    torch.manual_seed(0)

    gate = torch.randn(3, 5, requires_grad=True)
    up = torch.randn(3, 5, requires_grad=True)
    torch.library.opcheck(swiglu, (gate, up))
    torch.library.opcheck(torch.ops.mylib.rms_norm.default, (gate, up[0], 1e-6))
    out = swiglu(gate, up)
    g1 = torch.autograd.grad(out.pow(2).sum(), (gate, up))
    g2 = torch.autograd.grad((F.silu(gate) * up).pow(2).sum(), (gate, up))
    print(f"swiglu grad max diff {max((a - b).abs().max().item() for a, b in zip(g1, g2)):.2e}")
    w = torch.randn(5, requires_grad=True)
    r = rms_norm(gate, w, 1e-6)
    g1 = torch.autograd.grad(r.sin().sum(), (gate, w))
    ref = gate * torch.rsqrt(gate.pow(2).mean(-1, keepdim=True) + 1e-6) * w
    g2 = torch.autograd.grad(ref.sin().sum(), (gate, w))
    print(f"rms_norm grad max diff {max((a - b).abs().max().item() for a, b in zip(g1, g2)):.2e}")

    vocab, T = 16, 12
    data = torch.randint(0, vocab, (64, T + 1))
    data[:, 1:] = (data[:, :-1] * 5 + 3) % vocab
    model = Model(vocab, 24, 48, 2, fused=not args.reference)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    for epoch in range(args.epochs):
        for i in range(0, 64, 16):
            batch = data[i : i + 16]
            logits = model(batch[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, vocab), batch[:, 1:].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
        active = model.blocks[0].active
        print(
            f"epoch {epoch}: loss {loss.item():.5f} active fraction {active.sum().item() / (active.numel() * 16 * T * 4 * (epoch + 1)):.4f}"
        )


if __name__ == "__main__":
    main()
