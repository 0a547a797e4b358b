"""A small MobileNetV3 in the manner of torchvision's mobilenetv3.py: inverted residual blocks
with depthwise convolutions (groups=channels), squeeze-and-excitation through
adaptive_avg_pool2d and Hardsigmoid, ReLU6 / Hardswish activations, BatchNorm with
torchvision's eps and momentum, the model and its inputs in channels_last memory format,
CrossEntropyLoss with label smoothing, and the reference recipe's LinearLR warmup followed by
CosineAnnealingLR through SequentialLR."""

import argparse
from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def _make_divisible(v, divisor=8, min_value=None):
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # round down by no more than 10%
        new_v += divisor
    return new_v


class ConvNormActivation(nn.Sequential):
    def __init__(self, in_planes, out_planes, kernel_size=3, stride=1, groups=1,
                 norm_layer=None, activation_layer=nn.ReLU6):  # fmt: skip
        padding = (kernel_size - 1) // 2
        layers = [
            nn.Conv2d(
                in_planes, out_planes, kernel_size, stride, padding, groups=groups, bias=False
            ),
            norm_layer(out_planes),
        ]
        if activation_layer is not None:
            layers.append(activation_layer(inplace=True))
        super().__init__(*layers)
        self.out_channels = out_planes


class SqueezeExcitation(nn.Module):
    def __init__(self, input_channels, squeeze_channels):
        super().__init__()
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x):
        scale = F.adaptive_avg_pool2d(x, 1)
        scale = self.fc2(self.activation(self.fc1(scale)))
        return x * self.scale_activation(scale)


class BlockConfig:
    def __init__(self, in_ch, kernel, expanded, out_ch, use_se, activation, stride):
        self.input_channels = _make_divisible(in_ch)
        self.kernel = kernel
        self.expanded_channels = _make_divisible(expanded)
        self.out_channels = _make_divisible(out_ch)
        self.use_se = use_se
        self.use_hs = activation == "HS"
        self.stride = stride


class InvertedResidual(nn.Module):
    def __init__(self, cnf, norm_layer):
        super().__init__()
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        activation_layer = nn.Hardswish if cnf.use_hs else nn.ReLU6
        layers = []
        if cnf.expanded_channels != cnf.input_channels:  # expand
            layers.append(ConvNormActivation(cnf.input_channels, cnf.expanded_channels, 1,
                                             norm_layer=norm_layer,
                                             activation_layer=activation_layer))  # fmt: skip
        layers.append(  # depthwise
            ConvNormActivation(cnf.expanded_channels, cnf.expanded_channels, cnf.kernel,
                               stride=cnf.stride, groups=cnf.expanded_channels,
                               norm_layer=norm_layer, activation_layer=activation_layer)
        )  # fmt: skip
        if cnf.use_se:
            squeeze = _make_divisible(cnf.expanded_channels // 4)
            layers.append(SqueezeExcitation(cnf.expanded_channels, squeeze))
        layers.append(  # project, linear bottleneck
            ConvNormActivation(cnf.expanded_channels, cnf.out_channels, 1,
                               norm_layer=norm_layer, activation_layer=None)
        )  # fmt: skip
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        result = self.block(x)
        if self.use_res_connect:
            result = result + x
        return result


class MobileNetV3(nn.Module):
    def __init__(self, settings, last_channel, num_classes=5, dropout=0.2):
        super().__init__()
        norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        first = settings[0].input_channels
        layers = [ConvNormActivation(3, first, 3, stride=2, norm_layer=norm_layer,
                                     activation_layer=nn.Hardswish)]  # fmt: skip
        for cnf in settings:
            layers.append(InvertedResidual(cnf, norm_layer))
        last_in = settings[-1].out_channels
        last_conv = 6 * last_in
        layers.append(ConvNormActivation(last_in, last_conv, 1, norm_layer=norm_layer,
                                         activation_layer=nn.Hardswish))  # fmt: skip
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(last_conv, last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(last_channel, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.classifier(x)


def tiny_settings():
    bneck = partial(BlockConfig)
    return [
        bneck(16, 3, 16, 16, True, "RE", 2),
        bneck(16, 3, 48, 24, False, "RE", 2),
        bneck(24, 3, 56, 24, False, "RE", 1),
        bneck(24, 5, 64, 40, True, "HS", 2),
        bneck(40, 5, 120, 40, True, "HS", 1),
    ]


def make_images(rng, n, size=32, classes=5):
    """Coloured blobs: the class sets which channel is bright and where."""
    x = rng.normal(0.0, 0.4, size=(n, 3, size, size)).astype(np.float32)
    y = rng.integers(0, classes, size=n)
    for i, c in enumerate(y):
        r0 = 4 + 5 * c
        x[i, c % 3, r0 : r0 + 6, :] += 1.0
        x[i, (c + 1) % 3, :, r0 : r0 + 6] += 0.5
    return torch.from_numpy(x), torch.from_numpy(y)


def main():
    parser = argparse.ArgumentParser(description="MobileNetV3 in channels_last")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--warmup-steps", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x_train, y_train = make_images(rng, 128)
    x_val, y_val = make_images(rng, 64)

    model = MobileNetV3(tiny_settings(), last_channel=64)
    model = model.to(memory_format=torch.channels_last)
    dw = model.features[1].block[0][0]
    print(
        f"depthwise groups {dw.groups} weight {tuple(dw.weight.shape)} channels_last "
        f"{model.features[0][0].weight.is_contiguous(memory_format=torch.channels_last)}"
    )

    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": 4e-5}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, momentum=0.9, nesterov=True,
    )  # fmt: skip
    total_steps = args.epochs * (len(x_train) // args.batch_size)
    warmup = torch.optim.lr_scheduler.LinearLR(
        optimizer, start_factor=0.1, total_iters=args.warmup_steps
    )
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=total_steps - args.warmup_steps
    )
    scheduler = torch.optim.lr_scheduler.SequentialLR(
        optimizer, schedulers=[warmup, cosine], milestones=[args.warmup_steps]
    )

    for epoch in range(args.epochs):
        model.train()
        for i in range(0, len(x_train), args.batch_size):
            xb = x_train[i : i + args.batch_size].to(memory_format=torch.channels_last)
            yb = y_train[i : i + args.batch_size]
            out = model(xb)
            loss = criterion(out, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            print(f"epoch {epoch} step {i // args.batch_size} loss {loss.item():.5f} "
                  f"lr {scheduler.get_last_lr()[0]:.4f}")  # fmt: skip
        model.eval()
        with torch.no_grad():
            logits = model(x_val.contiguous(memory_format=torch.channels_last))
            val_loss = F.cross_entropy(logits, y_val)
            acc = (logits.argmax(1) == y_val).float().mean().item()
        bn = model.features[0][1]
        print(f"epoch {epoch} val loss {val_loss.item():.5f} acc {acc:.3f} "
              f"bn running mean loss {bn.running_mean.abs().mean().item():.6f} "
              f"batches {bn.num_batches_tracked.item()}")  # fmt: skip

    with torch.no_grad():
        feats = model.features(x_val[:4].to(memory_format=torch.channels_last))
        plain = model.features(x_val[:4].contiguous())
    print(f"features {tuple(feats.shape)} layout gap loss {(feats - plain).abs().max().item():.3e}")


if __name__ == "__main__":
    main()
