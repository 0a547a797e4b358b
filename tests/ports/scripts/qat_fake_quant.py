"""Quantization-aware training of a small CNN on synthetic images with fake quantization
written by hand: a torch.autograd.Function with a straight-through estimator (torch.round,
clamp, the gradient masked to the representable range by a mask kept with
ctx.save_for_backward, None for the scale and range arguments), activation observers that track a
running min/max by exponential moving average in register_buffer(persistent=True) and keep
the derived scale / zero point in non-persistent buffers, per-channel symmetric weight
quantization (amin/amax over dims with keepdim), BatchNorm folded into the convolution's
weight and bias at eval (torch.no_grad, torch.sqrt, view/reshape), a round trip through
state_dict into a fresh model, and float vs fake-quantized eval losses; --bits sets the width."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class FakeQuantize(torch.autograd.Function):
    """Quantize-dequantize; the gradient passes straight through inside [qmin, qmax]."""

    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin, qmax):
        q = torch.round(x / scale) + zero_point
        inside = (q >= qmin) & (q <= qmax)
        ctx.save_for_backward(inside)
        return (torch.clamp(q, qmin, qmax) - zero_point) * scale

    @staticmethod
    def backward(ctx, grad_output):
        (inside,) = ctx.saved_tensors
        return grad_output * inside.to(grad_output.dtype), None, None, None, None


fake_quantize = FakeQuantize.apply


class ActObserver(nn.Module):
    """Asymmetric per-tensor activation quantizer with an EMA min/max observer."""

    def __init__(self, bits=8, momentum=0.1):
        super().__init__()
        self.qmin, self.qmax = 0, 2**bits - 1
        self.momentum = momentum
        self.register_buffer("running_min", torch.zeros(()))
        self.register_buffer("running_max", torch.zeros(()))
        self.register_buffer("initialized", torch.tensor(False))
        # derived from the running range; rebuilt after loading, so not saved
        self.register_buffer("scale", torch.ones(()), persistent=False)
        self.register_buffer("zero_point", torch.zeros(()), persistent=False)
        self.enabled = True

    @torch.no_grad()
    def observe(self, x):
        lo, hi = x.min(), x.max()
        if not self.initialized:
            self.running_min.copy_(lo)
            self.running_max.copy_(hi)
            self.initialized.fill_(True)
        else:
            self.running_min.lerp_(lo, self.momentum)
            self.running_max.lerp_(hi, self.momentum)
        self.update_qparams()

    @torch.no_grad()
    def update_qparams(self):
        lo = torch.clamp(self.running_min, max=0.0)
        hi = torch.clamp(self.running_max, min=0.0)
        scale = torch.clamp((hi - lo) / (self.qmax - self.qmin), min=1e-8)
        self.scale.copy_(scale)
        self.zero_point.copy_(
            torch.clamp(self.qmin - torch.round(lo / scale), self.qmin, self.qmax)
        )

    def forward(self, x):
        if self.training:
            self.observe(x)
        if not self.enabled:
            return x
        return fake_quantize(x, self.scale, self.zero_point, self.qmin, self.qmax)


def quantize_weight_per_channel(w, bits):
    """Symmetric per-output-channel fake quantization of a conv or linear weight."""
    qmax = 2 ** (bits - 1) - 1
    dims = tuple(range(1, w.dim()))
    w_min = w.detach().amin(dim=dims, keepdim=True)
    w_max = w.detach().amax(dim=dims, keepdim=True)
    scale = torch.maximum(w_max.abs(), w_min.abs()).clamp(min=1e-8) / qmax
    return fake_quantize(w, scale, torch.zeros_like(scale), -qmax - 1, qmax)


class QConvBNReLU(nn.Module):
    def __init__(self, c_in, c_out, bits, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.act_q = ActObserver(bits)
        self.bits = bits
        self.quantize = True
        self.folded = None

    @torch.no_grad()
    def fold(self):
        """Fold BatchNorm's running statistics into the convolution (for inference)."""
        std = torch.sqrt(self.bn.running_var + self.bn.eps)
        factor = self.bn.weight / std
        weight = self.conv.weight * factor.view(-1, 1, 1, 1)
        bias = self.bn.bias - self.bn.running_mean * factor
        self.folded = (weight, bias)

    def forward(self, x):
        if self.folded is not None:
            weight, bias = self.folded
            if self.quantize:
                weight = quantize_weight_per_channel(weight, self.bits)
            y = F.relu(F.conv2d(x, weight, bias, stride=self.conv.stride, padding=1))
        else:
            weight = self.conv.weight
            if self.quantize:
                weight = quantize_weight_per_channel(weight, self.bits)
            y = F.conv2d(x, weight, None, stride=self.conv.stride, padding=1)
            y = F.relu(self.bn(y))
        self.act_q.enabled = self.quantize
        return self.act_q(y)


class QCNN(nn.Module):
    def __init__(self, bits=8, num_classes=4, width=8):
        super().__init__()
        self.input_q = ActObserver(bits)
        self.blocks = nn.Sequential(
            QConvBNReLU(1, width, bits),
            QConvBNReLU(width, 2 * width, bits, stride=2),
            QConvBNReLU(2 * width, 2 * width, bits, stride=2),
        )
        self.fc = nn.Linear(2 * width, num_classes)
        self.bits = bits

    def set_quantize(self, flag):
        self.input_q.enabled = flag
        for block in self.blocks:
            block.quantize = flag

    def fold_bn(self):
        for block in self.blocks:
            block.fold()

    def forward(self, x):
        x = self.input_q(x)
        x = self.blocks(x)
        x = x.mean(dim=(2, 3))
        weight = self.fc.weight
        if self.input_q.enabled:
            weight = quantize_weight_per_channel(weight, self.bits)
        return F.linear(x, weight, self.fc.bias)


def make_images(rng, n, size=12, num_classes=4):
    """Oriented bars (horizontal, vertical, two diagonals) with noise."""
    labels = rng.integers(0, num_classes, n)
    images = 0.3 * rng.standard_normal((n, 1, size, size))
    r = np.arange(size)
    for i, c in enumerate(labels):
        k = int(rng.integers(2, size - 2))
        if c == 0:
            images[i, 0, k, :] += 1.0
        elif c == 1:
            images[i, 0, :, k] += 1.0
        elif c == 2:
            images[i, 0, r, r] += 1.0
        else:
            images[i, 0, r, size - 1 - r] += 1.0
    return torch.tensor(images, dtype=torch.float32), torch.tensor(labels)


@torch.no_grad()
def evaluate(model, x, y):
    model.eval()
    return F.cross_entropy(model(x), y).item(), (model(x).argmax(1) == y).float().mean().item()


def main():
    parser = argparse.ArgumentParser(description="Quantization-aware training")
    parser.add_argument("--bits", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x_train, y_train = make_images(rng, 192)
    x_test, y_test = make_images(rng, 96)
    model = QCNN(bits=args.bits)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    for epoch in range(args.epochs):
        model.train()
        # float warm-up for the first epoch, then quantization-aware training
        model.set_quantize(epoch > 0)
        total = 0.0
        for i in range(0, len(x_train), args.batch_size):
            xb, yb = x_train[i : i + args.batch_size], y_train[i : i + args.batch_size]
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(xb)
        test_loss, acc = evaluate(model, x_test, y_test)
        print(
            f"epoch {epoch} loss {total / len(x_train):.6f} test loss {test_loss:.6f} acc {acc:.3f}"
        )

    # a fresh model from the state dict: the non-persistent qparams are rebuilt from the ranges
    state = model.state_dict()
    assert not any(k.endswith(("scale", "zero_point")) for k in state), sorted(state)
    deployed = QCNN(bits=args.bits)
    deployed.load_state_dict(state)
    for m in deployed.modules():
        if isinstance(m, ActObserver):
            m.update_qparams()
    deployed.eval()
    deployed.set_quantize(False)
    float_loss, float_acc = evaluate(deployed, x_test, y_test)
    deployed.fold_bn()
    folded_loss, _ = evaluate(deployed, x_test, y_test)
    deployed.set_quantize(True)
    quant_loss, quant_acc = evaluate(deployed, x_test, y_test)
    print(f"float eval loss {float_loss:.6f} acc {float_acc:.3f}")
    print(f"bn-folded eval loss {folded_loss:.6f}")
    print(f"fake-quant eval loss {quant_loss:.6f} acc {quant_acc:.3f}")


if __name__ == "__main__":
    main()
