"""Multi-layer perceptron: ``Flatten`` then ``Linear``/``ReLU`` layers."""

from __future__ import annotations

from .. import nn


class MLP(nn.Module):
    """A fully connected classifier; inputs of any shape are flattened first.

    Args:
        in_features: inputs per sample after flattening (default 64: 8x8 digits).
        hidden: width of each hidden layer (default ``(256, 128)``).
        num_classes: outputs (default 10).
        dropout: dropout after each hidden activation (default 0.0).

    Example:
        >>> model = MLP(64, hidden=(128,), num_classes=10)
        >>> model(mg.randn(4, 1, 8, 8)).shape
        manygrad.Size([4, 10])
    """

    def __init__(
        self,
        in_features: int = 64,
        hidden: tuple[int, ...] | list[int] = (256, 128),
        num_classes: int = 10,
        dropout: float = 0.0,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.flatten = nn.Flatten()
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(self.flatten(x))
