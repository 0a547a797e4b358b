"""VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", 2014), with and without batch norm, as torchvision builds it."""

# ruff: noqa: N801 (torchvision's class names: VGG11_Weights, ...)
from __future__ import annotations

from typing import Any

from ... import nn
from ._api import (
    WeightsEnum,
    _build,
    _imagenet_weights,
    _ovewrite_named_param,
    _set_num_classes,
    handle_legacy_interface,
    register_model,
)

__all__ = [
    "VGG",
    "VGG11_Weights",
    "VGG11_BN_Weights",
    "VGG13_Weights",
    "VGG13_BN_Weights",
    "VGG16_Weights",
    "VGG16_BN_Weights",
    "VGG19_Weights",
    "VGG19_BN_Weights",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
]


class VGG(nn.Module):
    """A convolutional ``features`` stack, a 7x7 adaptive average pool and three linear
    layers with dropout.

    Args:
        features: the conv stack (``make_layers``), ending in 512 channels.
        num_classes: outputs (default 1000).
        init_weights: torchvision's init (default True): kaiming-normal convs (fan_out),
            N(0, 0.01) linears, zero biases.
        dropout: the classifier's dropout (default 0.5).
    """

    def __init__(
        self,
        features: nn.Module,
        num_classes: int = 1000,
        init_weights: bool = True,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.constant_(m.bias, 0)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.01)
                    nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def make_layers(cfg: list[str | int], batch_norm: bool = False) -> nn.Sequential:
    """The conv stack of a VGG config: ints are 3x3 conv widths, ``"M"`` a 2x2 max pool."""
    layers: list[nn.Module] = []
    in_channels = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            conv = nn.Conv2d(in_channels, int(v), kernel_size=3, padding=1)
            layers += (
                [conv, nn.BatchNorm2d(int(v)), nn.ReLU(True)]
                if batch_norm
                else [
                    conv,
                    nn.ReLU(True),
                ]
            )
            in_channels = int(v)
    return nn.Sequential(*layers)


cfgs: dict[str, list[str | int]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M"]
    + [512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def _vgg(cfg: str, batch_norm: bool, weights: WeightsEnum | None, progress: bool, **kw: Any):
    if weights is not None:
        _ovewrite_named_param(kw, "init_weights", False)
        _set_num_classes(kw, weights)
    return _build(
        lambda: VGG(make_layers(cfgs[cfg], batch_norm=batch_norm), **kw), weights, progress
    )


_URL = "https://download.pytorch.org/models/"
_RECIPE = "https://github.com/pytorch/vision/tree/main/references/classification#alexnet-and-vgg"


def _w(file: str, n: int, a1: float, a5: float, **kw: Any):
    kw.setdefault("recipe", _RECIPE)
    return _imagenet_weights(_URL + file, n, a1, a5, min_size=(32, 32), **kw)


class VGG11_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("vgg11-8a719046.pth", 132863336, 69.02, 88.628)
    DEFAULT = IMAGENET1K_V1


class VGG11_BN_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("vgg11_bn-6002323d.pth", 132868840, 70.37, 89.81)
    DEFAULT = IMAGENET1K_V1


class VGG13_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("vgg13-19584684.pth", 133047848, 69.928, 89.246)
    DEFAULT = IMAGENET1K_V1


class VGG13_BN_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("vgg13_bn-abd245e5.pth", 133053736, 71.586, 90.374)
    DEFAULT = IMAGENET1K_V1


class VGG16_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("vgg16-397923af.pth", 138357544, 71.592, 90.382)
    # NOTE: the SSD backbone's features (amdegroot's port): no classifier, inputs in
    # [0, 255] with the mean subtracted (std 1/255 undoes the preset's rescaling)
    IMAGENET1K_FEATURES = _w(
        "vgg16_features-amdegroot-88682ab5.pth",
        138357544,
        float("nan"),
        float("nan"),
        num_classes=None,
        recipe="https://github.com/amdegroot/ssd.pytorch#training-ssd",
        mean=(0.48235, 0.45882, 0.40784),
        std=(1.0 / 255.0, 1.0 / 255.0, 1.0 / 255.0),
    )
    DEFAULT = IMAGENET1K_V1


class VGG16_BN_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("vgg16_bn-6c64b313.pth", 138365992, 73.36, 91.516)
    DEFAULT = IMAGENET1K_V1


class VGG19_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("vgg19-dcbb9e9d.pth", 143667240, 72.376, 90.876)
    DEFAULT = IMAGENET1K_V1


class VGG19_BN_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("vgg19_bn-c79401a0.pth", 143678248, 74.218, 91.842)
    DEFAULT = IMAGENET1K_V1


def _builder(name: str, cfg: str, bn: bool, enum: type[WeightsEnum]):
    @register_model(name)
    @handle_legacy_interface(enum.IMAGENET1K_V1)
    def build(*, weights=None, progress: bool = True, **kwargs: Any) -> VGG:
        weights = enum.verify(weights)
        return _vgg(cfg, bn, weights, progress, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__annotations__["weights"] = enum | None
    layers = {"A": 11, "B": 13, "D": 16, "E": 19}[cfg]
    build.__doc__ = (
        f"VGG-{layers}{' with batch norm' if bn else ''}.\n\n    Args:\n"
        f"        weights: ``{enum.__name__}`` entry (or its name) to load (default None).\n"
        "        progress: show a download progress bar (default True).\n"
        "        **kwargs: passed to ``VGG`` (``num_classes``, ``dropout``, ...).\n"
    )
    return build


vgg11 = _builder("vgg11", "A", False, VGG11_Weights)
vgg11_bn = _builder("vgg11_bn", "A", True, VGG11_BN_Weights)
vgg13 = _builder("vgg13", "B", False, VGG13_Weights)
vgg13_bn = _builder("vgg13_bn", "B", True, VGG13_BN_Weights)
vgg16 = _builder("vgg16", "D", False, VGG16_Weights)
vgg16_bn = _builder("vgg16_bn", "D", True, VGG16_BN_Weights)
vgg19 = _builder("vgg19", "E", False, VGG19_Weights)
vgg19_bn = _builder("vgg19_bn", "E", True, VGG19_BN_Weights)
