"""MobileNetV3 (Howard et al., "Searching for MobileNetV3", 2019), small and large, as
torchvision builds it."""

# ruff: noqa: N801 (torchvision's class names: MobileNet_V3_Large_Weights, ...)
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ... import nn
from ..ops.misc import Conv2dNormActivation
from ..ops.misc import SqueezeExcitation as SElayer
from ._api import (
    WeightsEnum,
    _build,
    _imagenet_weights,
    _make_divisible,
    _set_num_classes,
    handle_legacy_interface,
    register_model,
)
from .mobilenetv2 import _init_mobilenet

__all__ = [
    "MobileNetV3",
    "MobileNet_V3_Large_Weights",
    "MobileNet_V3_Small_Weights",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
]


class InvertedResidualConfig:
    """One bottleneck's row of the architecture table, channels scaled by ``width_mult``."""

    def __init__(
        self,
        input_channels: int,
        kernel: int,
        expanded_channels: int,
        out_channels: int,
        use_se: bool,
        activation: str,
        stride: int,
        dilation: int,
        width_mult: float,
    ):
        self.input_channels = self.adjust_channels(input_channels, width_mult)
        self.kernel = kernel
        self.expanded_channels = self.adjust_channels(expanded_channels, width_mult)
        self.out_channels = self.adjust_channels(out_channels, width_mult)
        self.use_se = use_se
        self.use_hs = activation == "HS"
        self.stride = stride
        self.dilation = dilation

    @staticmethod
    def adjust_channels(channels: int, width_mult: float) -> int:
        return _make_divisible(channels * width_mult, 8)


_HARD_SE = functools.partial(SElayer, scale_activation=nn.Hardsigmoid)


class InvertedResidual(nn.Module):
    """Expand, depthwise (optionally squeeze-excite), project; ReLU or hard-swish."""

    def __init__(
        self,
        cnf: InvertedResidualConfig,
        norm_layer: Callable[..., nn.Module],
        se_layer: Callable[..., nn.Module] = _HARD_SE,
    ):
        super().__init__()
        if not (1 <= cnf.stride <= 2):
            raise ValueError(f"illegal stride value {cnf.stride} (MobileNetV3 uses 1 or 2)")
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        layers: list[nn.Module] = []
        act = nn.Hardswish if cnf.use_hs else nn.ReLU
        if cnf.expanded_channels != cnf.input_channels:
            layers.append(
                Conv2dNormActivation(
                    cnf.input_channels,
                    cnf.expanded_channels,
                    kernel_size=1,
                    norm_layer=norm_layer,
                    activation_layer=act,
                )
            )
        stride = 1 if cnf.dilation > 1 else cnf.stride
        layers.append(
            Conv2dNormActivation(
                cnf.expanded_channels,
                cnf.expanded_channels,
                kernel_size=cnf.kernel,
                stride=stride,
                dilation=cnf.dilation,
                groups=cnf.expanded_channels,
                norm_layer=norm_layer,
                activation_layer=act,
            )
        )
        if cnf.use_se:
            squeeze_channels = _make_divisible(cnf.expanded_channels // 4, 8)
            layers.append(se_layer(cnf.expanded_channels, squeeze_channels))
        layers.append(
            Conv2dNormActivation(
                cnf.expanded_channels,
                cnf.out_channels,
                kernel_size=1,
                norm_layer=norm_layer,
                activation_layer=None,
            )
        )
        self.block = nn.Sequential(*layers)
        self.out_channels = cnf.out_channels
        self._is_cn = cnf.stride > 1

    def forward(self, x):
        result = self.block(x)
        return result + x if self.use_res_connect else result


class MobileNetV3(nn.Module):
    """MobileNetV3 from an architecture table.

    Args:
        inverted_residual_setting: the bottlenecks' ``InvertedResidualConfig`` rows.
        last_channel: the classifier's hidden width.
        num_classes: outputs (default 1000).
        block: the bottleneck class (default ``InvertedResidual``).
        norm_layer: the norm class (default ``BatchNorm2d(eps=0.001, momentum=0.01)``).
        dropout: in the classifier (default 0.2).
    """

    def __init__(
        self,
        inverted_residual_setting: list[InvertedResidualConfig],
        last_channel: int,
        num_classes: int = 1000,
        block: Callable[..., nn.Module] | None = None,
        norm_layer: Callable[..., nn.Module] | None = None,
        dropout: float = 0.2,
        **kwargs: Any,
    ):
        super().__init__()
        if not inverted_residual_setting:
            raise ValueError("The inverted_residual_setting should not be empty")
        if not all(isinstance(s, InvertedResidualConfig) for s in inverted_residual_setting):
            raise TypeError("The inverted_residual_setting should be List[InvertedResidualConfig]")
        block = InvertedResidual if block is None else block
        if norm_layer is None:
            norm_layer = functools.partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        first = inverted_residual_setting[0].input_channels
        layers: list[nn.Module] = [
            Conv2dNormActivation(
                3,
                first,
                kernel_size=3,
                stride=2,
                norm_layer=norm_layer,
                activation_layer=nn.Hardswish,
            )
        ]
        layers += [block(cnf, norm_layer) for cnf in inverted_residual_setting]
        last_in = inverted_residual_setting[-1].out_channels
        last_out = 6 * last_in
        layers.append(
            Conv2dNormActivation(
                last_in,
                last_out,
                kernel_size=1,
                norm_layer=norm_layer,
                activation_layer=nn.Hardswish,
            )
        )
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(last_out, last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(last_channel, num_classes),
        )
        _init_mobilenet(self)

    def _forward_impl(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))

    def forward(self, x):
        return self._forward_impl(x)


def _mobilenet_v3_conf(
    arch: str,
    width_mult: float = 1.0,
    reduced_tail: bool = False,
    dilated: bool = False,
    **kwargs: Any,
) -> tuple[list[InvertedResidualConfig], int]:
    rd = 2 if reduced_tail else 1  # halve the last blocks (for detection backbones)
    d = 2 if dilated else 1
    conf = functools.partial(InvertedResidualConfig, width_mult=width_mult)
    adjust = functools.partial(InvertedResidualConfig.adjust_channels, width_mult=width_mult)
    if arch == "mobilenet_v3_large":
        setting = [
            conf(16, 3, 16, 16, False, "RE", 1, 1),
            conf(16, 3, 64, 24, False, "RE", 2, 1),
            conf(24, 3, 72, 24, False, "RE", 1, 1),
            conf(24, 5, 72, 40, True, "RE", 2, 1),
            conf(40, 5, 120, 40, True, "RE", 1, 1),
            conf(40, 5, 120, 40, True, "RE", 1, 1),
            conf(40, 3, 240, 80, False, "HS", 2, 1),
            conf(80, 3, 200, 80, False, "HS", 1, 1),
            conf(80, 3, 184, 80, False, "HS", 1, 1),
            conf(80, 3, 184, 80, False, "HS", 1, 1),
            conf(80, 3, 480, 112, True, "HS", 1, 1),
            conf(112, 3, 672, 112, True, "HS", 1, 1),
            conf(112, 5, 672, 160 // rd, True, "HS", 2, d),
            conf(160 // rd, 5, 960 // rd, 160 // rd, True, "HS", 1, d),
            conf(160 // rd, 5, 960 // rd, 160 // rd, True, "HS", 1, d),
        ]
        last_channel = adjust(1280 // rd)
    elif arch == "mobilenet_v3_small":
        setting = [
            conf(16, 3, 16, 16, True, "RE", 2, 1),
            conf(16, 3, 72, 24, False, "RE", 2, 1),
            conf(24, 3, 88, 24, False, "RE", 1, 1),
            conf(24, 5, 96, 40, True, "HS", 2, 1),
            conf(40, 5, 240, 40, True, "HS", 1, 1),
            conf(40, 5, 240, 40, True, "HS", 1, 1),
            conf(40, 5, 120, 48, True, "HS", 1, 1),
            conf(48, 5, 144, 48, True, "HS", 1, 1),
            conf(48, 5, 288, 96 // rd, True, "HS", 2, d),
            conf(96 // rd, 5, 576 // rd, 96 // rd, True, "HS", 1, d),
            conf(96 // rd, 5, 576 // rd, 96 // rd, True, "HS", 1, d),
        ]
        last_channel = adjust(1024 // rd)
    else:
        raise ValueError(f"Unsupported model type {arch}")
    return setting, last_channel


def _mobilenet_v3(setting, last_channel, weights, progress, **kwargs: Any) -> MobileNetV3:
    _set_num_classes(kwargs, weights)
    return _build(lambda: MobileNetV3(setting, last_channel, **kwargs), weights, progress)


_URL = "https://download.pytorch.org/models/"
_V1_RECIPE = (
    "https://github.com/pytorch/vision/tree/main/references/classification#mobilenetv3-large--small"
)


class MobileNet_V3_Large_Weights(WeightsEnum):
    IMAGENET1K_V1 = _imagenet_weights(
        _URL + "mobilenet_v3_large-8738ca79.pth", 5483032, 74.042, 91.34, recipe=_V1_RECIPE
    )
    IMAGENET1K_V2 = _imagenet_weights(
        _URL + "mobilenet_v3_large-5c1a4163.pth",
        5483032,
        75.274,
        92.566,
        resize_size=232,
        recipe="https://github.com/pytorch/vision/issues/3995#new-recipe-with-reg-tuning",
    )
    DEFAULT = IMAGENET1K_V2


class MobileNet_V3_Small_Weights(WeightsEnum):
    IMAGENET1K_V1 = _imagenet_weights(
        _URL + "mobilenet_v3_small-047dcff4.pth", 2542856, 67.668, 87.402, recipe=_V1_RECIPE
    )
    DEFAULT = IMAGENET1K_V1


@register_model()
@handle_legacy_interface(MobileNet_V3_Large_Weights.IMAGENET1K_V1)
def mobilenet_v3_large(
    *, weights: MobileNet_V3_Large_Weights | None = None, progress: bool = True, **kwargs: Any
) -> MobileNetV3:
    """MobileNetV3-Large.

    Args:
        weights: ``MobileNet_V3_Large_Weights`` entry (or its name) to load (default None).
        progress: show a download progress bar (default True).
        **kwargs: ``width_mult``, ``reduced_tail``, ``dilated`` and ``MobileNetV3``'s
            (``num_classes``, ``dropout``, ...).
    """
    weights = MobileNet_V3_Large_Weights.verify(weights)
    setting, last_channel = _mobilenet_v3_conf("mobilenet_v3_large", **kwargs)
    return _mobilenet_v3(setting, last_channel, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(MobileNet_V3_Small_Weights.IMAGENET1K_V1)
def mobilenet_v3_small(
    *, weights: MobileNet_V3_Small_Weights | None = None, progress: bool = True, **kwargs: Any
) -> MobileNetV3:
    """MobileNetV3-Small (arguments as ``mobilenet_v3_large``)."""
    weights = MobileNet_V3_Small_Weights.verify(weights)
    setting, last_channel = _mobilenet_v3_conf("mobilenet_v3_small", **kwargs)
    return _mobilenet_v3(setting, last_channel, weights, progress, **kwargs)
