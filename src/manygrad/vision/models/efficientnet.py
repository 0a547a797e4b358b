"""EfficientNet B0 and B1 (Tan & Le, "EfficientNet: Rethinking Model Scaling for
Convolutional Neural Networks", 2019), as torchvision builds them."""

# ruff: noqa: N801 (torchvision's class names: EfficientNet_B0_Weights, ...)
from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ... import nn
from ..ops.misc import Conv2dNormActivation, SqueezeExcitation
from ..ops.stochastic_depth import StochasticDepth
from ._api import (
    WeightsEnum,
    _build,
    _imagenet_weights,
    _make_divisible,
    _set_num_classes,
    handle_legacy_interface,
    register_model,
)

__all__ = [
    "EfficientNet",
    "EfficientNet_B0_Weights",
    "EfficientNet_B1_Weights",
    "efficientnet_b0",
    "efficientnet_b1",
]


@dataclass
class _MBConvConfig:
    expand_ratio: float
    kernel: int
    stride: int
    input_channels: int
    out_channels: int
    num_layers: int
    block: Callable[..., nn.Module]

    @staticmethod
    def adjust_channels(channels: int, width_mult: float, min_value: int | None = None) -> int:
        return _make_divisible(channels * width_mult, 8, min_value)


class MBConvConfig(_MBConvConfig):
    """One stage of the paper's Table 1, scaled by ``width_mult`` and ``depth_mult``."""

    def __init__(
        self,
        expand_ratio: float,
        kernel: int,
        stride: int,
        input_channels: int,
        out_channels: int,
        num_layers: int,
        width_mult: float = 1.0,
        depth_mult: float = 1.0,
        block: Callable[..., nn.Module] | None = None,
    ):
        super().__init__(
            expand_ratio,
            kernel,
            stride,
            self.adjust_channels(input_channels, width_mult),
            self.adjust_channels(out_channels, width_mult),
            self.adjust_depth(num_layers, depth_mult),
            MBConv if block is None else block,
        )

    @staticmethod
    def adjust_depth(num_layers: int, depth_mult: float) -> int:
        return int(math.ceil(num_layers * depth_mult))


class MBConv(nn.Module):
    """Expand (SiLU), depthwise (SiLU), squeeze-excite, project; the residual branch is
    dropped per sample with stochastic depth."""

    def __init__(
        self,
        cnf: MBConvConfig,
        stochastic_depth_prob: float,
        norm_layer: Callable[..., nn.Module],
        se_layer: Callable[..., nn.Module] = SqueezeExcitation,
    ):
        super().__init__()
        if not (1 <= cnf.stride <= 2):
            raise ValueError(f"illegal stride value {cnf.stride} (EfficientNet uses 1 or 2)")
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        layers: list[nn.Module] = []
        act = nn.SiLU
        expanded = cnf.adjust_channels(cnf.input_channels, cnf.expand_ratio)
        if expanded != cnf.input_channels:
            layers.append(
                Conv2dNormActivation(
                    cnf.input_channels,
                    expanded,
                    kernel_size=1,
                    norm_layer=norm_layer,
                    activation_layer=act,
                )
            )
        layers.append(
            Conv2dNormActivation(
                expanded,
                expanded,
                kernel_size=cnf.kernel,
                stride=cnf.stride,
                groups=expanded,
                norm_layer=norm_layer,
                activation_layer=act,
            )
        )
        squeeze_channels = max(1, cnf.input_channels // 4)
        layers.append(
            se_layer(
                expanded, squeeze_channels, activation=functools.partial(nn.SiLU, inplace=True)
            )
        )
        layers.append(
            Conv2dNormActivation(
                expanded,
                cnf.out_channels,
                kernel_size=1,
                norm_layer=norm_layer,
                activation_layer=None,
            )
        )
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")
        self.out_channels = cnf.out_channels

    def forward(self, x):
        result = self.block(x)
        if self.use_res_connect:
            result = self.stochastic_depth(result) + x
        return result


class EfficientNet(nn.Module):
    """EfficientNet from a table of ``MBConvConfig`` stages.

    Args:
        inverted_residual_setting: the stages.
        dropout: before the classifier.
        stochastic_depth_prob: the last block's drop probability; earlier blocks' grow
            linearly from 0 (default 0.2).
        num_classes: outputs (default 1000).
        norm_layer: the norm class (default ``nn.BatchNorm2d``).
        last_channel: the last conv's width (default None: 4x its input).
    """

    def __init__(
        self,
        inverted_residual_setting: Sequence[_MBConvConfig],
        dropout: float,
        stochastic_depth_prob: float = 0.2,
        num_classes: int = 1000,
        norm_layer: Callable[..., nn.Module] | None = None,
        last_channel: int | None = None,
    ):
        super().__init__()
        if not inverted_residual_setting:
            raise ValueError("The inverted_residual_setting should not be empty")
        if not all(isinstance(s, _MBConvConfig) for s in inverted_residual_setting):
            raise TypeError("The inverted_residual_setting should be List[MBConvConfig]")
        norm_layer = nn.BatchNorm2d if norm_layer is None else norm_layer
        first = inverted_residual_setting[0].input_channels
        layers: list[nn.Module] = [
            Conv2dNormActivation(
                3, first, kernel_size=3, stride=2, norm_layer=norm_layer, activation_layer=nn.SiLU
            )
        ]
        total = sum(cnf.num_layers for cnf in inverted_residual_setting)
        block_id = 0
        for cnf in inverted_residual_setting:
            stage: list[nn.Module] = []
            for _ in range(cnf.num_layers):
                block_cnf = copy.copy(cnf)
                if stage:
                    block_cnf.input_channels = block_cnf.out_channels
                    block_cnf.stride = 1
                sd_prob = stochastic_depth_prob * float(block_id) / total
                stage.append(block_cnf.block(block_cnf, sd_prob, norm_layer))
                block_id += 1
            layers.append(nn.Sequential(*stage))
        last_in = inverted_residual_setting[-1].out_channels
        last_out = last_channel if last_channel is not None else 4 * last_in
        layers.append(
            Conv2dNormActivation(
                last_in, last_out, kernel_size=1, norm_layer=norm_layer, activation_layer=nn.SiLU
            )
        )
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout, inplace=True), nn.Linear(last_out, num_classes)
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
                r = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -r, r)
                nn.init.zeros_(m.bias)

    def _forward_impl(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))

    def forward(self, x):
        return self._forward_impl(x)


def _efficientnet_conf(width_mult: float, depth_mult: float) -> list[MBConvConfig]:
    conf = functools.partial(MBConvConfig, width_mult=width_mult, depth_mult=depth_mult)
    return [
        conf(1, 3, 1, 32, 16, 1),
        conf(6, 3, 2, 16, 24, 2),
        conf(6, 5, 2, 24, 40, 2),
        conf(6, 3, 2, 40, 80, 3),
        conf(6, 5, 1, 80, 112, 3),
        conf(6, 5, 2, 112, 192, 4),
        conf(6, 3, 1, 192, 320, 1),
    ]


def _efficientnet(setting, dropout, weights, progress, **kwargs: Any) -> EfficientNet:
    _set_num_classes(kwargs, weights)
    return _build(lambda: EfficientNet(setting, dropout, **kwargs), weights, progress)


_URL = "https://download.pytorch.org/models/"
_V1_RECIPE = "https://github.com/pytorch/vision/tree/main/references/classification#efficientnet-v1"


class EfficientNet_B0_Weights(WeightsEnum):
    IMAGENET1K_V1 = _imagenet_weights(
        _URL + "efficientnet_b0_rwightman-7f5810bc.pth",
        5288548,
        77.692,
        93.532,
        resize_size=256,
        interpolation="bicubic",
        recipe=_V1_RECIPE,
    )
    DEFAULT = IMAGENET1K_V1


class EfficientNet_B1_Weights(WeightsEnum):
    IMAGENET1K_V1 = _imagenet_weights(
        _URL + "efficientnet_b1_rwightman-bac287d4.pth",
        7794184,
        78.642,
        94.186,
        crop_size=240,
        resize_size=256,
        interpolation="bicubic",
        recipe=_V1_RECIPE,
    )
    IMAGENET1K_V2 = _imagenet_weights(
        _URL + "efficientnet_b1-c27df63c.pth",
        7794184,
        79.838,
        94.934,
        crop_size=240,
        resize_size=255,
        recipe="https://github.com/pytorch/vision/issues/3995#new-recipe-with-lr-wd-crop-tuning",
    )
    DEFAULT = IMAGENET1K_V2


@register_model()
@handle_legacy_interface(EfficientNet_B0_Weights.IMAGENET1K_V1)
def efficientnet_b0(
    *, weights: EfficientNet_B0_Weights | None = None, progress: bool = True, **kwargs: Any
) -> EfficientNet:
    """EfficientNet-B0.

    Args:
        weights: ``EfficientNet_B0_Weights`` entry (or its name) to load (default None).
        progress: show a download progress bar (default True).
        **kwargs: passed to ``EfficientNet`` (``num_classes``, ``dropout`` (0.2),
            ``stochastic_depth_prob``, ``norm_layer``).
    """
    weights = EfficientNet_B0_Weights.verify(weights)
    setting = _efficientnet_conf(width_mult=1.0, depth_mult=1.0)
    return _efficientnet(setting, kwargs.pop("dropout", 0.2), weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(EfficientNet_B1_Weights.IMAGENET1K_V1)
def efficientnet_b1(
    *, weights: EfficientNet_B1_Weights | None = None, progress: bool = True, **kwargs: Any
) -> EfficientNet:
    """EfficientNet-B1 (arguments as ``efficientnet_b0``)."""
    weights = EfficientNet_B1_Weights.verify(weights)
    setting = _efficientnet_conf(width_mult=1.0, depth_mult=1.1)
    return _efficientnet(setting, kwargs.pop("dropout", 0.2), weights, progress, **kwargs)
