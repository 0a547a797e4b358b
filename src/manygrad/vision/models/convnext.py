"""ConvNeXt (Liu et al., "A ConvNet for the 2020s", 2022), as torchvision builds it:
depthwise 7x7 blocks with channels-last LayerNorm, an inverted MLP, layer scale and
stochastic depth; tiny, small, base and large."""

# ruff: noqa: N801 (torchvision's class names: ConvNeXt_Tiny_Weights, ...)
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import manygrad as mg

from ... import nn
from ...nn import functional as F
from ..ops.misc import Conv2dNormActivation, Permute
from ..ops.stochastic_depth import StochasticDepth
from ._api import (
    WeightsEnum,
    _build,
    _imagenet_weights,
    _set_num_classes,
    handle_legacy_interface,
    register_model,
)

__all__ = [
    "ConvNeXt",
    "ConvNeXt_Tiny_Weights",
    "ConvNeXt_Small_Weights",
    "ConvNeXt_Base_Weights",
    "ConvNeXt_Large_Weights",
    "convnext_tiny",
    "convnext_small",
    "convnext_base",
    "convnext_large",
]


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an (N, C, H, W) input (each pixel normalized on
    its own)."""

    def forward(self, x):
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                         self.eps)  # fmt: skip
        return x.permute(0, 3, 1, 2)


class CNBlock(nn.Module):
    """x + drop(layer_scale * (depthwise 7x7 -> LayerNorm -> Linear 4x -> GELU -> Linear)),
    the norm and linears channels-last."""

    def __init__(
        self,
        dim: int,
        layer_scale: float,
        stochastic_depth_prob: float,
        norm_layer: Callable[..., nn.Module] | None = None,
    ):
        super().__init__()
        if norm_layer is None:
            norm_layer = functools.partial(nn.LayerNorm, eps=1e-6)
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim, bias=True),
            Permute([0, 2, 3, 1]),
            norm_layer(dim),
            nn.Linear(in_features=dim, out_features=4 * dim, bias=True),
            nn.GELU(),
            nn.Linear(in_features=4 * dim, out_features=dim, bias=True),
            Permute([0, 3, 1, 2]),
        )
        self.layer_scale = nn.Parameter(mg.ones(dim, 1, 1) * layer_scale)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")

    def forward(self, x):
        return self.stochastic_depth(self.layer_scale * self.block(x)) + x


class CNBlockConfig:
    """One stage: ``num_layers`` blocks of ``input_channels``, then a 2x2 stride-2
    downsampling to ``out_channels`` (None: the last stage, no downsampling)."""

    def __init__(self, input_channels: int, out_channels: int | None, num_layers: int):
        self.input_channels = input_channels
        self.out_channels = out_channels
        self.num_layers = num_layers

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(input_channels={self.input_channels}, "
            f"out_channels={self.out_channels}, num_layers={self.num_layers})"
        )


class ConvNeXt(nn.Module):
    """ConvNeXt from a list of ``CNBlockConfig`` stages.

    Args:
        block_setting: the stages.
        stochastic_depth_prob: the last block's drop probability; earlier blocks' grow
            linearly from 0 (default 0.0).
        layer_scale: the initial per-channel scale of each residual branch (default 1e-6).
        num_classes: outputs (default 1000).
        block: the block class (default ``CNBlock``).
        norm_layer: the stem's, downsamplings' and head's norm (default ``LayerNorm2d``,
            eps 1e-6).

    Example:
        >>> model = ConvNeXt([CNBlockConfig(16, 32, 1), CNBlockConfig(32, None, 1)])
    """

    def __init__(
        self,
        block_setting: list[CNBlockConfig],
        stochastic_depth_prob: float = 0.0,
        layer_scale: float = 1e-6,
        num_classes: int = 1000,
        block: Callable[..., nn.Module] | None = None,
        norm_layer: Callable[..., nn.Module] | None = None,
        **kwargs: Any,
    ):
        super().__init__()
        if not block_setting:
            raise ValueError("The block_setting should not be empty")
        if not (
            isinstance(block_setting, Sequence)
            and all(isinstance(s, CNBlockConfig) for s in block_setting)
        ):
            raise TypeError("The block_setting should be List[CNBlockConfig]")
        block = CNBlock if block is None else block
        if norm_layer is None:
            norm_layer = functools.partial(LayerNorm2d, eps=1e-6)
        first = block_setting[0].input_channels
        layers: list[nn.Module] = [
            Conv2dNormActivation(
                3, first, kernel_size=4, stride=4, padding=0, norm_layer=norm_layer,
                activation_layer=None, bias=True,
            )
        ]  # fmt: skip
        total = sum(cnf.num_layers for cnf in block_setting)
        block_id = 0
        for cnf in block_setting:
            stage = []
            for _ in range(cnf.num_layers):
                sd_prob = stochastic_depth_prob * block_id / (total - 1.0)
                stage.append(block(cnf.input_channels, layer_scale, sd_prob))
                block_id += 1
            layers.append(nn.Sequential(*stage))
            if cnf.out_channels is not None:
                layers.append(
                    nn.Sequential(
                        norm_layer(cnf.input_channels),
                        nn.Conv2d(cnf.input_channels, cnf.out_channels, kernel_size=2, stride=2),
                    )
                )
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        last = block_setting[-1]
        last_out = last.out_channels if last.out_channels is not None else last.input_channels
        self.classifier = nn.Sequential(
            norm_layer(last_out), nn.Flatten(1), nn.Linear(last_out, num_classes)
        )
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _forward_impl(self, x):
        return self.classifier(self.avgpool(self.features(x)))

    def forward(self, x):
        return self._forward_impl(x)


def _convnext(block_setting, stochastic_depth_prob, weights, progress, **kwargs: Any) -> ConvNeXt:
    _set_num_classes(kwargs, weights)
    return _build(
        lambda: ConvNeXt(block_setting, stochastic_depth_prob=stochastic_depth_prob, **kwargs),
        weights,
        progress,
    )


_URL = "https://download.pytorch.org/models/"
_RECIPE = "https://github.com/pytorch/vision/tree/main/references/classification#convnext"


class ConvNeXt_Tiny_Weights(WeightsEnum):
    IMAGENET1K_V1 = _imagenet_weights(
        _URL + "convnext_tiny-983f1562.pth",
        28589128,
        82.52,
        96.146,
        min_size=(32, 32),
        resize_size=236,
        recipe=_RECIPE,
        _ops=4.456,
        _file_size=109.119,
    )
    DEFAULT = IMAGENET1K_V1


class ConvNeXt_Small_Weights(WeightsEnum):
    IMAGENET1K_V1 = _imagenet_weights(
        _URL + "convnext_small-0c510722.pth",
        50223688,
        83.616,
        96.65,
        min_size=(32, 32),
        resize_size=230,
        recipe=_RECIPE,
        _ops=8.684,
        _file_size=191.703,
    )
    DEFAULT = IMAGENET1K_V1


class ConvNeXt_Base_Weights(WeightsEnum):
    IMAGENET1K_V1 = _imagenet_weights(
        _URL + "convnext_base-6075fbad.pth",
        88591464,
        84.062,
        96.87,
        min_size=(32, 32),
        resize_size=232,
        recipe=_RECIPE,
        _ops=15.355,
        _file_size=338.064,
    )
    DEFAULT = IMAGENET1K_V1


class ConvNeXt_Large_Weights(WeightsEnum):
    IMAGENET1K_V1 = _imagenet_weights(
        _URL + "convnext_large-ea097f82.pth",
        197767336,
        84.414,
        96.976,
        min_size=(32, 32),
        resize_size=232,
        recipe=_RECIPE,
        _ops=34.361,
        _file_size=754.537,
    )
    DEFAULT = IMAGENET1K_V1


@register_model()
@handle_legacy_interface(ConvNeXt_Tiny_Weights.IMAGENET1K_V1)
def convnext_tiny(
    *, weights: ConvNeXt_Tiny_Weights | None = None, progress: bool = True, **kwargs: Any
) -> ConvNeXt:
    """ConvNeXt-Tiny.

    Args:
        weights: ``ConvNeXt_Tiny_Weights`` entry (or its name) to load (default None).
        progress: show a download progress bar (default True).
        **kwargs: passed to ``ConvNeXt`` (``num_classes``, ``stochastic_depth_prob``
            (0.1), ``layer_scale``, ``block``, ``norm_layer``).

    Example:
        >>> model = convnext_tiny(num_classes=10)
    """
    weights = ConvNeXt_Tiny_Weights.verify(weights)
    block_setting = [
        CNBlockConfig(96, 192, 3),
        CNBlockConfig(192, 384, 3),
        CNBlockConfig(384, 768, 9),
        CNBlockConfig(768, None, 3),
    ]
    stochastic_depth_prob = kwargs.pop("stochastic_depth_prob", 0.1)
    return _convnext(block_setting, stochastic_depth_prob, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(ConvNeXt_Small_Weights.IMAGENET1K_V1)
def convnext_small(
    *, weights: ConvNeXt_Small_Weights | None = None, progress: bool = True, **kwargs: Any
) -> ConvNeXt:
    """ConvNeXt-Small (arguments as ``convnext_tiny``; stochastic depth 0.4)."""
    weights = ConvNeXt_Small_Weights.verify(weights)
    block_setting = [
        CNBlockConfig(96, 192, 3),
        CNBlockConfig(192, 384, 3),
        CNBlockConfig(384, 768, 27),
        CNBlockConfig(768, None, 3),
    ]
    stochastic_depth_prob = kwargs.pop("stochastic_depth_prob", 0.4)
    return _convnext(block_setting, stochastic_depth_prob, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(ConvNeXt_Base_Weights.IMAGENET1K_V1)
def convnext_base(
    *, weights: ConvNeXt_Base_Weights | None = None, progress: bool = True, **kwargs: Any
) -> ConvNeXt:
    """ConvNeXt-Base (arguments as ``convnext_tiny``; stochastic depth 0.5)."""
    weights = ConvNeXt_Base_Weights.verify(weights)
    block_setting = [
        CNBlockConfig(128, 256, 3),
        CNBlockConfig(256, 512, 3),
        CNBlockConfig(512, 1024, 27),
        CNBlockConfig(1024, None, 3),
    ]
    stochastic_depth_prob = kwargs.pop("stochastic_depth_prob", 0.5)
    return _convnext(block_setting, stochastic_depth_prob, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(ConvNeXt_Large_Weights.IMAGENET1K_V1)
def convnext_large(
    *, weights: ConvNeXt_Large_Weights | None = None, progress: bool = True, **kwargs: Any
) -> ConvNeXt:
    """ConvNeXt-Large (arguments as ``convnext_tiny``; stochastic depth 0.5)."""
    weights = ConvNeXt_Large_Weights.verify(weights)
    block_setting = [
        CNBlockConfig(192, 384, 3),
        CNBlockConfig(384, 768, 3),
        CNBlockConfig(768, 1536, 27),
        CNBlockConfig(1536, None, 3),
    ]
    stochastic_depth_prob = kwargs.pop("stochastic_depth_prob", 0.5)
    return _convnext(block_setting, stochastic_depth_prob, weights, progress, **kwargs)
