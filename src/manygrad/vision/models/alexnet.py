"""AlexNet (Krizhevsky et al., 2012), in the one-GPU form of "One weird trick..."
(Krizhevsky, 2014) that torchvision builds."""

# ruff: noqa: N801 (torchvision's class name AlexNet_Weights)
from __future__ import annotations

from typing import Any

from ... import nn
from ._api import (
    WeightsEnum,
    _build,
    _imagenet_weights,
    _set_num_classes,
    handle_legacy_interface,
    register_model,
)

__all__ = ["AlexNet", "AlexNet_Weights", "alexnet"]


class AlexNet(nn.Module):
    """Five convolutions, a 6x6 adaptive average pool and three linear layers.

    Args:
        num_classes: outputs (default 1000).
        dropout: the classifier's dropout (default 0.5).
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


class AlexNet_Weights(WeightsEnum):
    IMAGENET1K_V1 = _imagenet_weights(
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        61100840,
        56.522,
        79.066,
        min_size=(63, 63),
        recipe="https://github.com/pytorch/vision/tree/main/references/classification"
        "#alexnet-and-vgg",
    )
    DEFAULT = IMAGENET1K_V1


@register_model()
@handle_legacy_interface(AlexNet_Weights.IMAGENET1K_V1)
def alexnet(
    *, weights: AlexNet_Weights | None = None, progress: bool = True, **kwargs: Any
) -> AlexNet:
    """AlexNet.

    Args:
        weights: ``AlexNet_Weights`` entry (or its name) to load (default None: random).
        progress: show a download progress bar (default True).
        **kwargs: passed to ``AlexNet``.
    """
    weights = AlexNet_Weights.verify(weights)
    _set_num_classes(kwargs, weights)
    return _build(lambda: AlexNet(**kwargs), weights, progress)
