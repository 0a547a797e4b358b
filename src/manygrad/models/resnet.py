"""CIFAR-style ResNet (He et al., "Deep Residual Learning for Image Recognition", 2015).

Three stages of basic blocks (3x3 conv - BN - ReLU - 3x3 conv - BN, plus the shortcut) at
widths 16/32/64, a global average pool and one linear layer. ``num_blocks=(n, n, n)`` gives
ResNet-(6n+2); the default ``(1, 1, 1)`` is the small ResNet-8. Weight names follow
torchvision's ResNet (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0``,
``fc``).
"""

from __future__ import annotations

from .. import nn
from ..nn import functional as F


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 conv) shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNet(nn.Module):
    """CIFAR-style ResNet classifier.

    Args:
        num_blocks: basic blocks per stage (default ``(1, 1, 1)``: ResNet-8).
        widths: channels per stage (default ``(16, 32, 64)``).
        in_channels: input channels (default 3).
        num_classes: outputs (default 10).

    Example:
        >>> model = ResNet(in_channels=1)
        >>> model(mg.randn(2, 1, 8, 8)).shape
        manygrad.Size([2, 10])
    """

    def __init__(
        self,
        num_blocks: tuple[int, ...] | list[int] = (1, 1, 1),
        widths: tuple[int, ...] | list[int] = (16, 32, 64),
        in_channels: int = 3,
        num_classes: int = 10,
    ):
        super().__init__()
        if len(num_blocks) != len(widths):
            raise ValueError(
                f"ResNet: num_blocks {tuple(num_blocks)} and widths {tuple(widths)} "
                "must have the same length (one entry per stage)"
            )
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        planes = widths[0]
        for i, (n, w) in enumerate(zip(num_blocks, widths)):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                blocks.append(BasicBlock(planes, w, stride if j == 0 else 1))
                planes = w
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_stages = len(widths)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(planes, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(self.avgpool(x).flatten(1))
