"""A DenseNet-BC (Huang et al., 2017) on synthetic 16x16 textures: dense blocks whose layers
concatenate every earlier feature map with torch.cat, bottleneck 1x1 convolutions (BN-ReLU-
Conv), memory-efficient dense layers that recompute the bottleneck in the backward pass with
torch.utils.checkpoint.checkpoint(use_reentrant=False), compressing transition layers with
AvgPool2d, a global average pool and a linear classifier; SGD with Nesterov momentum and
weight decay (not on BatchNorm or biases), and MultiStepLR."""

import argparse
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp


class _DenseLayer(nn.Module):
    def __init__(self, num_input_features, growth_rate, bn_size, drop_rate, memory_efficient):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(
            num_input_features, bn_size * growth_rate, kernel_size=1, stride=1, bias=False
        )
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(
            bn_size * growth_rate, growth_rate, kernel_size=3, stride=1, padding=1, bias=False
        )
        self.drop_rate = float(drop_rate)
        self.memory_efficient = memory_efficient

    def bn_function(self, inputs):
        concated_features = torch.cat(inputs, 1)
        return self.conv1(self.relu1(self.norm1(concated_features)))

    def any_requires_grad(self, inputs):
        return any(t.requires_grad for t in inputs)

    def call_checkpoint_bottleneck(self, inputs):
        def closure(*inputs):
            return self.bn_function(inputs)

        return cp.checkpoint(closure, *inputs, use_reentrant=False)

    def forward(self, input):  # noqa: A002
        prev_features = [input] if isinstance(input, torch.Tensor) else input
        if self.memory_efficient and self.any_requires_grad(prev_features):
            bottleneck_output = self.call_checkpoint_bottleneck(prev_features)
        else:
            bottleneck_output = self.bn_function(prev_features)
        new_features = self.conv2(self.relu2(self.norm2(bottleneck_output)))
        if self.drop_rate > 0:
            new_features = F.dropout(new_features, p=self.drop_rate, training=self.training)
        return new_features


class _DenseBlock(nn.ModuleDict):
    def __init__(self, num_layers, num_input_features, bn_size, growth_rate, drop_rate, mem):
        super().__init__()
        for i in range(num_layers):
            layer = _DenseLayer(
                num_input_features + i * growth_rate, growth_rate, bn_size, drop_rate, mem
            )
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, init_features):
        features = [init_features]
        for _name, layer in self.items():
            new_features = layer(features)
            features.append(new_features)
        return torch.cat(features, 1)


class _Transition(nn.Sequential):
    def __init__(self, num_input_features, num_output_features):
        super().__init__()
        self.norm = nn.BatchNorm2d(num_input_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(
            num_input_features, num_output_features, kernel_size=1, stride=1, bias=False
        )
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    def __init__(
        self,
        growth_rate=8,
        block_config=(3, 3),
        num_init_features=16,
        bn_size=2,
        compression=0.5,
        drop_rate=0.0,
        num_classes=4,
        memory_efficient=True,
    ):
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                [
                    ("conv0", nn.Conv2d(3, num_init_features, 3, padding=1, bias=False)),
                    ("norm0", nn.BatchNorm2d(num_init_features)),
                    ("relu0", nn.ReLU(inplace=True)),
                ]
            )
        )
        num_features = num_init_features
        for i, num_layers in enumerate(block_config):
            block = _DenseBlock(
                num_layers, num_features, bn_size, growth_rate, drop_rate, memory_efficient
            )
            self.features.add_module(f"denseblock{i + 1}", block)
            num_features = num_features + num_layers * growth_rate
            if i != len(block_config) - 1:
                out_features = int(num_features * compression)
                trans = _Transition(num_features, out_features)
                self.features.add_module(f"transition{i + 1}", trans)
                num_features = out_features
        self.features.add_module("norm5", nn.BatchNorm2d(num_features))
        self.classifier = nn.Linear(num_features, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        features = self.features(x)
        out = F.relu(features, inplace=True)
        out = F.adaptive_avg_pool2d(out, (1, 1))
        out = torch.flatten(out, 1)
        return self.classifier(out)


def make_textures(rng, n, size=16, num_classes=4):
    """Each class is a sinusoidal grating of its own orientation, plus noise."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    labels = rng.integers(0, num_classes, n)
    imgs = np.empty((n, 3, size, size), dtype=np.float32)
    for i, c in enumerate(labels):
        angle = np.pi * c / num_classes
        freq = rng.uniform(0.6, 0.9)
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy) + phase)
        imgs[i] = wave[None] * rng.uniform(0.5, 1.0, (3, 1, 1)) + 0.3 * rng.standard_normal(
            (3, size, size)
        )
    return torch.from_numpy(imgs), torch.from_numpy(labels)


def main():
    parser = argparse.ArgumentParser(description="DenseNet-BC on synthetic textures")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--no-checkpoint", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x_train, y_train = make_textures(rng, 192)
    x_test, y_test = make_textures(rng, 64)
    train_set = torch.utils.data.TensorDataset(x_train, y_train)
    loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True)

    model = DenseNet(memory_efficient=not args.no_checkpoint)
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": 1e-4}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        momentum=0.9,
        nesterov=True,
    )
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[2, 3], gamma=0.1)
    criterion = nn.CrossEntropyLoss()

    for epoch in range(args.epochs):
        model.train()
        total, seen = 0.0, 0
        for x, y in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * x.size(0)
            seen += x.size(0)
        scheduler.step()
        model.eval()
        with torch.no_grad():
            logits = model(x_test)
            test_loss = criterion(logits, y_test).item()
            acc = (logits.argmax(1) == y_test).float().mean().item()
        print(
            f"epoch {epoch} lr {scheduler.get_last_lr()[0]:.4f} train loss {total / seen:.6f} "
            f"test loss {test_loss:.6f} acc {acc:.3f}"
        )


if __name__ == "__main__":
    main()
