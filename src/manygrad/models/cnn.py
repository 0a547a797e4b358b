"""Small convolutional network: two 3x3 convs (32, 64) with max pooling, then 2 linear."""

from __future__ import annotations

from .. import nn
from ..nn import functional as F


class CNN(nn.Module):
    """conv3x3(32) - ReLU - maxpool2 - conv3x3(64) - ReLU - maxpool2 - fc - ReLU - fc.

    Args:
        in_channels: input channels (default 1).
        num_classes: outputs (default 10).
        image_size: height and width of the (square) input (default 28).
        channels: widths of the two convolutions (default ``(32, 64)``).
        hidden: width of the first linear layer (default 128).
        dropout: dropout before the last layer (default 0.0).

    Example:
        >>> model = CNN(image_size=8)
        >>> model(mg.randn(2, 1, 8, 8)).shape
        manygrad.Size([2, 10])
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int = 28,
        channels: tuple[int, int] | list[int] = (32, 64),
        hidden: int = 128,
        dropout: float = 0.0,
    ):
        super().__init__()
        c1, c2 = channels
        self.conv1 = nn.Conv2d(in_channels, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        side = image_size // 2 // 2
        if side < 1:
            raise ValueError(f"CNN: image_size must be at least 4, got {image_size}")
        self.fc1 = nn.Linear(c2 * side * side, hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(self.dropout(x))
