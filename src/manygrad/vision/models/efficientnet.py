"""EfficientNet B0-B7 (Tan & Le, "EfficientNet: Rethinking Model Scaling for
Convolutional Neural Networks", 2019) and EfficientNetV2 S/M/L (Tan & Le, "EfficientNetV2:
Smaller Models and Faster Training", 2021), as torchvision builds them."""

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
    *[f"EfficientNet_B{i}_Weights" for i in range(8)],
    *[f"EfficientNet_V2_{s}_Weights" for s in "SML"],
    *[f"efficientnet_b{i}" for i in range(8)],
    *[f"efficientnet_v2_{s}" for s in "sml"],
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


class FusedMBConvConfig(_MBConvConfig):
    """One stage of EfficientNetV2's Table 4 built from ``FusedMBConv`` blocks (no width or
    depth scaling)."""

    def __init__(
        self,
        expand_ratio: float,
        kernel: int,
        stride: int,
        input_channels: int,
        out_channels: int,
        num_layers: int,
        block: Callable[..., nn.Module] | None = None,
    ):
        super().__init__(
            expand_ratio, kernel, stride, input_channels, out_channels, num_layers,
            FusedMBConv if block is None else block,
        )  # fmt: skip


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


class FusedMBConv(nn.Module):
    """EfficientNetV2's early block: one full ``kernel`` convolution that expands (SiLU),
    a 1x1 projection (none when ``expand_ratio`` is 1: the convolution maps straight to
    the output); the residual branch is dropped per sample with stochastic depth."""

    def __init__(
        self,
        cnf: FusedMBConvConfig,
        stochastic_depth_prob: float,
        norm_layer: Callable[..., nn.Module],
    ):
        super().__init__()
        if not (1 <= cnf.stride <= 2):
            raise ValueError(f"illegal stride value {cnf.stride} (EfficientNet uses 1 or 2)")
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        expanded = cnf.adjust_channels(cnf.input_channels, cnf.expand_ratio)
        conv = functools.partial(Conv2dNormActivation, norm_layer=norm_layer)
        if expanded != cnf.input_channels:
            layers = [
                conv(cnf.input_channels, expanded, kernel_size=cnf.kernel, stride=cnf.stride,
                     activation_layer=nn.SiLU),
                conv(expanded, cnf.out_channels, kernel_size=1, activation_layer=None),
            ]  # fmt: skip
        else:
            layers = [
                conv(cnf.input_channels, cnf.out_channels, kernel_size=cnf.kernel,
                     stride=cnf.stride, activation_layer=nn.SiLU),
            ]  # fmt: skip
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")
        self.out_channels = cnf.out_channels

    def forward(self, x):
        result = self.block(x)
        if self.use_res_connect:
            result = self.stochastic_depth(result) + x
        return result


class EfficientNet(nn.Module):
    """EfficientNet V1 or V2 from a table of ``MBConvConfig`` / ``FusedMBConvConfig``
    stages.

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
        if not (
            isinstance(inverted_residual_setting, Sequence)
            and all(isinstance(s, _MBConvConfig) for s in inverted_residual_setting)
        ):
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


def _efficientnet_conf(arch: str, **kwargs: Any) -> tuple[list[_MBConvConfig], int | None]:
    """The stages of ``arch`` ("efficientnet_b<i>" with ``width_mult`` and ``depth_mult``,
    or "efficientnet_v2_<s|m|l>") and the last convolution's width (None: 4x its input)."""
    if arch.startswith("efficientnet_b"):
        conf = functools.partial(
            MBConvConfig, width_mult=kwargs.pop("width_mult"), depth_mult=kwargs.pop("depth_mult")
        )
        setting = [
            conf(1, 3, 1, 32, 16, 1),
            conf(6, 3, 2, 16, 24, 2),
            conf(6, 5, 2, 24, 40, 2),
            conf(6, 3, 2, 40, 80, 3),
            conf(6, 5, 1, 80, 112, 3),
            conf(6, 5, 2, 112, 192, 4),
            conf(6, 3, 1, 192, 320, 1),
        ]
        return setting, None
    fused, mb = FusedMBConvConfig, MBConvConfig
    # (expand, kernel, stride, in, out, layers) per stage: EfficientNetV2's Table 4 (S) and
    # its scaled-up M and L
    if arch.startswith("efficientnet_v2_s"):
        setting = [
            fused(1, 3, 1, 24, 24, 2),
            fused(4, 3, 2, 24, 48, 4),
            fused(4, 3, 2, 48, 64, 4),
            mb(4, 3, 2, 64, 128, 6),
            mb(6, 3, 1, 128, 160, 9),
            mb(6, 3, 2, 160, 256, 15),
        ]
    elif arch.startswith("efficientnet_v2_m"):
        setting = [
            fused(1, 3, 1, 24, 24, 3),
            fused(4, 3, 2, 24, 48, 5),
            fused(4, 3, 2, 48, 80, 5),
            mb(4, 3, 2, 80, 160, 7),
            mb(6, 3, 1, 160, 176, 14),
            mb(6, 3, 2, 176, 304, 18),
            mb(6, 3, 1, 304, 512, 5),
        ]
    elif arch.startswith("efficientnet_v2_l"):
        setting = [
            fused(1, 3, 1, 32, 32, 4),
            fused(4, 3, 2, 32, 64, 7),
            fused(4, 3, 2, 64, 96, 7),
            mb(4, 3, 2, 96, 192, 10),
            mb(6, 3, 1, 192, 224, 19),
            mb(6, 3, 2, 224, 384, 25),
            mb(6, 3, 1, 384, 640, 7),
        ]
    else:
        raise ValueError(f"Unsupported model type {arch}")
    return setting, 1280


def _efficientnet(
    inverted_residual_setting, dropout, last_channel, weights, progress, **kwargs: Any
) -> EfficientNet:
    _set_num_classes(kwargs, weights)
    return _build(
        lambda: EfficientNet(
            inverted_residual_setting, dropout, last_channel=last_channel, **kwargs
        ),
        weights,
        progress,
    )


_URL = "https://download.pytorch.org/models/"


# a checkpoint per line: file, num_params, acc@1, acc@5, GFLOPs (_ops), MB (_file_size)
def _w(file: str, num_params: int, acc1: float, acc5: float, ops: float, size: float, **kw):
    return _imagenet_weights(_URL + file, num_params, acc1, acc5, _ops=ops, _file_size=size, **kw)


_V1_RECIPE = "https://github.com/pytorch/vision/tree/main/references/classification#efficientnet-v1"
_V2_RECIPE = "https://github.com/pytorch/vision/tree/main/references/classification#efficientnet-v2"
_TUNED_RECIPE = "https://github.com/pytorch/vision/issues/3995#new-recipe-with-lr-wd-crop-tuning"
# NOTE: B5-B7 (ported from TensorFlow by lukemelas) and V2 keep their batch norm settings
_BN_TF = functools.partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
_BN_V2 = functools.partial(nn.BatchNorm2d, eps=1e-03)


# fmt: off
class EfficientNet_B0_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("efficientnet_b0_rwightman-7f5810bc.pth", 5288548, 77.692, 93.532, 0.386,
                       20.451, resize_size=256, interpolation="bicubic", recipe=_V1_RECIPE)
    DEFAULT = IMAGENET1K_V1


class EfficientNet_B1_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("efficientnet_b1_rwightman-bac287d4.pth", 7794184, 78.642, 94.186, 0.687,
                       30.134, crop_size=240, resize_size=256, interpolation="bicubic",
                       recipe=_V1_RECIPE)
    IMAGENET1K_V2 = _w("efficientnet_b1-c27df63c.pth", 7794184, 79.838, 94.934, 0.687, 30.136,
                       crop_size=240, resize_size=255, recipe=_TUNED_RECIPE)
    DEFAULT = IMAGENET1K_V2


class EfficientNet_B2_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("efficientnet_b2_rwightman-c35c1473.pth", 9109994, 80.608, 95.31, 1.088,
                       35.174, crop_size=288, resize_size=288, interpolation="bicubic",
                       recipe=_V1_RECIPE)
    DEFAULT = IMAGENET1K_V1


class EfficientNet_B3_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("efficientnet_b3_rwightman-b3899882.pth", 12233232, 82.008, 96.054, 1.827,
                       47.184, crop_size=300, resize_size=320, interpolation="bicubic",
                       recipe=_V1_RECIPE)
    DEFAULT = IMAGENET1K_V1


class EfficientNet_B4_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("efficientnet_b4_rwightman-23ab8bcd.pth", 19341616, 83.384, 96.594, 4.394,
                       74.489, crop_size=380, resize_size=384, interpolation="bicubic",
                       recipe=_V1_RECIPE)
    DEFAULT = IMAGENET1K_V1


class EfficientNet_B5_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("efficientnet_b5_lukemelas-1a07897c.pth", 30389784, 83.444, 96.628, 10.266,
                       116.864, crop_size=456, resize_size=456, interpolation="bicubic",
                       recipe=_V1_RECIPE)
    DEFAULT = IMAGENET1K_V1


class EfficientNet_B6_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("efficientnet_b6_lukemelas-24a108a5.pth", 43040704, 84.008, 96.916, 19.068,
                       165.362, crop_size=528, resize_size=528, interpolation="bicubic",
                       recipe=_V1_RECIPE)
    DEFAULT = IMAGENET1K_V1


class EfficientNet_B7_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("efficientnet_b7_lukemelas-c5b4e57e.pth", 66347960, 84.122, 96.908, 37.746,
                       254.675, crop_size=600, resize_size=600, interpolation="bicubic",
                       recipe=_V1_RECIPE)
    DEFAULT = IMAGENET1K_V1


class EfficientNet_V2_S_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("efficientnet_v2_s-dd5fe13b.pth", 21458488, 84.228, 96.878, 8.366, 82.704,
                       min_size=(33, 33), crop_size=384, resize_size=384, recipe=_V2_RECIPE)
    DEFAULT = IMAGENET1K_V1


class EfficientNet_V2_M_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("efficientnet_v2_m-dc08266a.pth", 54139356, 85.112, 97.156, 24.582, 208.01,
                       min_size=(33, 33), crop_size=480, resize_size=480, recipe=_V2_RECIPE)
    DEFAULT = IMAGENET1K_V1


class EfficientNet_V2_L_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("efficientnet_v2_l-59c71312.pth", 118515272, 85.808, 97.788, 56.08, 454.573,
                       min_size=(33, 33), crop_size=480, resize_size=480, interpolation="bicubic",
                       mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), recipe=_V2_RECIPE)
    DEFAULT = IMAGENET1K_V1
# fmt: on


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

    Example:
        >>> model = efficientnet_b0(num_classes=10)
    """
    weights = EfficientNet_B0_Weights.verify(weights)
    setting, last_channel = _efficientnet_conf("efficientnet_b0", width_mult=1.0, depth_mult=1.0)
    return _efficientnet(
        setting,
        kwargs.pop("dropout", 0.2),
        last_channel,
        weights,
        progress,
        **kwargs,
    )


@register_model()
@handle_legacy_interface(EfficientNet_B1_Weights.IMAGENET1K_V1)
def efficientnet_b1(
    *, weights: EfficientNet_B1_Weights | None = None, progress: bool = True, **kwargs: Any
) -> EfficientNet:
    """EfficientNet-B1 (arguments as ``efficientnet_b0``; dropout 0.2)."""
    weights = EfficientNet_B1_Weights.verify(weights)
    setting, last_channel = _efficientnet_conf("efficientnet_b1", width_mult=1.0, depth_mult=1.1)
    return _efficientnet(
        setting,
        kwargs.pop("dropout", 0.2),
        last_channel,
        weights,
        progress,
        **kwargs,
    )


@register_model()
@handle_legacy_interface(EfficientNet_B2_Weights.IMAGENET1K_V1)
def efficientnet_b2(
    *, weights: EfficientNet_B2_Weights | None = None, progress: bool = True, **kwargs: Any
) -> EfficientNet:
    """EfficientNet-B2 (arguments as ``efficientnet_b0``; dropout 0.3)."""
    weights = EfficientNet_B2_Weights.verify(weights)
    setting, last_channel = _efficientnet_conf("efficientnet_b2", width_mult=1.1, depth_mult=1.2)
    return _efficientnet(
        setting,
        kwargs.pop("dropout", 0.3),
        last_channel,
        weights,
        progress,
        **kwargs,
    )


@register_model()
@handle_legacy_interface(EfficientNet_B3_Weights.IMAGENET1K_V1)
def efficientnet_b3(
    *, weights: EfficientNet_B3_Weights | None = None, progress: bool = True, **kwargs: Any
) -> EfficientNet:
    """EfficientNet-B3 (arguments as ``efficientnet_b0``; dropout 0.3)."""
    weights = EfficientNet_B3_Weights.verify(weights)
    setting, last_channel = _efficientnet_conf("efficientnet_b3", width_mult=1.2, depth_mult=1.4)
    return _efficientnet(
        setting,
        kwargs.pop("dropout", 0.3),
        last_channel,
        weights,
        progress,
        **kwargs,
    )


@register_model()
@handle_legacy_interface(EfficientNet_B4_Weights.IMAGENET1K_V1)
def efficientnet_b4(
    *, weights: EfficientNet_B4_Weights | None = None, progress: bool = True, **kwargs: Any
) -> EfficientNet:
    """EfficientNet-B4 (arguments as ``efficientnet_b0``; dropout 0.4)."""
    weights = EfficientNet_B4_Weights.verify(weights)
    setting, last_channel = _efficientnet_conf("efficientnet_b4", width_mult=1.4, depth_mult=1.8)
    return _efficientnet(
        setting,
        kwargs.pop("dropout", 0.4),
        last_channel,
        weights,
        progress,
        **kwargs,
    )


@register_model()
@handle_legacy_interface(EfficientNet_B5_Weights.IMAGENET1K_V1)
def efficientnet_b5(
    *, weights: EfficientNet_B5_Weights | None = None, progress: bool = True, **kwargs: Any
) -> EfficientNet:
    """EfficientNet-B5 (arguments as ``efficientnet_b0``; dropout 0.4; batch norm eps 1e-3,
    momentum 0.01)."""
    weights = EfficientNet_B5_Weights.verify(weights)
    setting, last_channel = _efficientnet_conf("efficientnet_b5", width_mult=1.6, depth_mult=2.2)
    return _efficientnet(
        setting,
        kwargs.pop("dropout", 0.4),
        last_channel,
        weights,
        progress,
        norm_layer=_BN_TF,
        **kwargs,
    )


@register_model()
@handle_legacy_interface(EfficientNet_B6_Weights.IMAGENET1K_V1)
def efficientnet_b6(
    *, weights: EfficientNet_B6_Weights | None = None, progress: bool = True, **kwargs: Any
) -> EfficientNet:
    """EfficientNet-B6 (arguments as ``efficientnet_b0``; dropout 0.5; batch norm eps 1e-3,
    momentum 0.01)."""
    weights = EfficientNet_B6_Weights.verify(weights)
    setting, last_channel = _efficientnet_conf("efficientnet_b6", width_mult=1.8, depth_mult=2.6)
    return _efficientnet(
        setting,
        kwargs.pop("dropout", 0.5),
        last_channel,
        weights,
        progress,
        norm_layer=_BN_TF,
        **kwargs,
    )


@register_model()
@handle_legacy_interface(EfficientNet_B7_Weights.IMAGENET1K_V1)
def efficientnet_b7(
    *, weights: EfficientNet_B7_Weights | None = None, progress: bool = True, **kwargs: Any
) -> EfficientNet:
    """EfficientNet-B7 (arguments as ``efficientnet_b0``; dropout 0.5; batch norm eps 1e-3,
    momentum 0.01)."""
    weights = EfficientNet_B7_Weights.verify(weights)
    setting, last_channel = _efficientnet_conf("efficientnet_b7", width_mult=2.0, depth_mult=3.1)
    return _efficientnet(
        setting,
        kwargs.pop("dropout", 0.5),
        last_channel,
        weights,
        progress,
        norm_layer=_BN_TF,
        **kwargs,
    )


@register_model()
@handle_legacy_interface(EfficientNet_V2_S_Weights.IMAGENET1K_V1)
def efficientnet_v2_s(
    *, weights: EfficientNet_V2_S_Weights | None = None, progress: bool = True, **kwargs: Any
) -> EfficientNet:
    """EfficientNetV2-S (arguments as ``efficientnet_b0``; dropout 0.2; batch norm eps 1e-3)."""
    weights = EfficientNet_V2_S_Weights.verify(weights)
    setting, last_channel = _efficientnet_conf("efficientnet_v2_s")
    return _efficientnet(
        setting,
        kwargs.pop("dropout", 0.2),
        last_channel,
        weights,
        progress,
        norm_layer=_BN_V2,
        **kwargs,
    )


@register_model()
@handle_legacy_interface(EfficientNet_V2_M_Weights.IMAGENET1K_V1)
def efficientnet_v2_m(
    *, weights: EfficientNet_V2_M_Weights | None = None, progress: bool = True, **kwargs: Any
) -> EfficientNet:
    """EfficientNetV2-M (arguments as ``efficientnet_b0``; dropout 0.3; batch norm eps 1e-3)."""
    weights = EfficientNet_V2_M_Weights.verify(weights)
    setting, last_channel = _efficientnet_conf("efficientnet_v2_m")
    return _efficientnet(
        setting,
        kwargs.pop("dropout", 0.3),
        last_channel,
        weights,
        progress,
        norm_layer=_BN_V2,
        **kwargs,
    )


@register_model()
@handle_legacy_interface(EfficientNet_V2_L_Weights.IMAGENET1K_V1)
def efficientnet_v2_l(
    *, weights: EfficientNet_V2_L_Weights | None = None, progress: bool = True, **kwargs: Any
) -> EfficientNet:
    """EfficientNetV2-L (arguments as ``efficientnet_b0``; dropout 0.4; batch norm eps 1e-3)."""
    weights = EfficientNet_V2_L_Weights.verify(weights)
    setting, last_channel = _efficientnet_conf("efficientnet_v2_l")
    return _efficientnet(
        setting,
        kwargs.pop("dropout", 0.4),
        last_channel,
        weights,
        progress,
        norm_layer=_BN_V2,
        **kwargs,
    )
