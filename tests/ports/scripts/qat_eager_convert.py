"""Eager-mode quantization-aware training as in PyTorch's QAT tutorial: a small CNN with
QuantStub / DeQuantStub and nn.quantized.FloatFunctional for the residual add,
fuse_modules_qat over (conv, bn, relu) and (conv, bn) groups, the "x86" (or --backend
qnnpack) default QAT qconfig, prepare_qat, training with fake quantization, then observers
disabled (apply(torch.ao.quantization.disable_observer)) and batch-norm statistics frozen
(apply(torch.ao.nn.intrinsic.qat.freeze_bn_stats)) for the last epochs, and convert to an
int8 model whose evaluation loss is compared with the fake-quantized one; the quantized
model's state_dict round-trips into a second converted model."""

import argparse
import copy

import torch
import torch.ao.nn.intrinsic.qat as nniqat
import torch.ao.quantization as tq
import torch.nn as nn
import torch.nn.functional as F


class ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.add = nn.quantized.FloatFunctional()
        self.relu2 = nn.ReLU()

    def forward(self, x):
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu2(self.add.add(y, x))


class Net(nn.Module):
    def __init__(self, classes=4):
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv = nn.Conv2d(1, 8, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.block = ResBlock(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, classes)
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        x = self.quant(x)
        x = self.block(self.relu(self.bn(self.conv(x))))
        x = self.fc(torch.flatten(self.pool(x), 1))
        return self.dequant(x)

    def fuse_model(self, is_qat=True):
        fuse = tq.fuse_modules_qat if is_qat else tq.fuse_modules
        fuse(self, [["conv", "bn", "relu"]], inplace=True)
        fuse(self.block, [["conv1", "bn1", "relu1"], ["conv2", "bn2"]], inplace=True)


def make_data(n):
    labels = torch.randint(0, 4, (n,))
    x = torch.randn(n, 1, 12, 12) * 0.3
    for c in range(4):
        rows = labels == c
        x[rows, 0, 3 * c : 3 * c + 3, :] += 1.0
    return x, labels


def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        out = model(x)
        return F.cross_entropy(out, y).item(), (out.argmax(1) == y).float().mean().item()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--backend", default="x86")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.backends.quantized.engine = args.backend

    x, y = make_data(256)
    xv, yv = make_data(128)

    model = Net()
    model.train()
    model.fuse_model(is_qat=True)
    model.qconfig = tq.get_default_qat_qconfig(args.backend)
    tq.prepare_qat(model, inplace=True)
    print(
        f"fused conv: {type(model.conv).__name__}, block conv2: {type(model.block.conv2).__name__}"
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    for epoch in range(args.epochs):
        model.train()
        if epoch == args.epochs - 2:
            model.apply(tq.disable_observer)
        if epoch == args.epochs - 1:
            model.apply(nniqat.freeze_bn_stats)
        for i in range(0, len(x), 32):
            loss = F.cross_entropy(model(x[i : i + 32]), y[i : i + 32])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        val_loss, acc = evaluate(model, xv, yv)
        print(
            f"epoch {epoch}: train loss {loss.item():.5f} qat val loss {val_loss:.5f} acc {acc:.3f}"
        )

    scale = model.conv.activation_post_process.scale
    print(f"first activation scale {scale.item():.6f}")
    quantized = tq.convert(copy.deepcopy(model).eval(), inplace=False)
    q_loss, q_acc = evaluate(quantized, xv, yv)
    print(f"int8 val loss {q_loss:.5f} acc {q_acc:.3f} ({type(quantized.conv).__name__})")

    fresh = Net()
    fresh.fuse_model(is_qat=True)
    fresh.qconfig = tq.get_default_qat_qconfig(args.backend)
    tq.prepare_qat(fresh, inplace=True)
    fresh = tq.convert(fresh.eval())
    fresh.load_state_dict(quantized.state_dict())
    r_loss, _ = evaluate(fresh, xv, yv)
    print(f"reloaded int8 val loss {r_loss:.5f}")


if __name__ == "__main__":
    main()
