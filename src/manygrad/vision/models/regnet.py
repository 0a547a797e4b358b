"""RegNet X and Y (Radosavovic et al., "Designing Network Design Spaces", 2020), as
torchvision builds them: stages of residual bottlenecks (grouped 3x3, squeeze-excitation in
Y) whose widths follow a quantized linear rule (``BlockParams.from_init_params``)."""

# ruff: noqa: N801 (torchvision's class names: RegNet_Y_400MF_Weights, ...)
from __future__ import annotations

import functools
import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import manygrad as mg

from ... import nn
from ..ops.misc import Conv2dNormActivation, SqueezeExcitation
from ._api import (
    WeightsEnum,
    _build,
    _imagenet_weights,
    _make_divisible,
    _set_num_classes,
    handle_legacy_interface,
    register_model,
)

_SIZES_Y = ["400MF", "800MF", "1_6GF", "3_2GF", "8GF", "16GF", "32GF", "128GF"]
_SIZES_X = ["400MF", "800MF", "1_6GF", "3_2GF", "8GF", "16GF", "32GF"]
__all__ = [
    "RegNet",
    *[f"RegNet_Y_{s}_Weights" for s in _SIZES_Y],
    *[f"RegNet_X_{s}_Weights" for s in _SIZES_X],
    *[f"regnet_y_{s.lower()}" for s in _SIZES_Y],
    *[f"regnet_x_{s.lower()}" for s in _SIZES_X],
]


class SimpleStemIN(Conv2dNormActivation):
    """The ImageNet stem: 3x3 stride-2 convolution, norm, activation."""

    def __init__(
        self,
        width_in: int,
        width_out: int,
        norm_layer: Callable[..., nn.Module],
        activation_layer: Callable[..., nn.Module],
    ):
        super().__init__(
            width_in, width_out, kernel_size=3, stride=2, norm_layer=norm_layer,
            activation_layer=activation_layer,
        )  # fmt: skip


class BottleneckTransform(nn.Sequential):
    """1x1 (``a``), grouped 3x3 with the stride (``b``), squeeze-excitation (``se``, when
    ``se_ratio``), 1x1 without activation (``c``)."""

    def __init__(
        self,
        width_in: int,
        width_out: int,
        stride: int,
        norm_layer: Callable[..., nn.Module],
        activation_layer: Callable[..., nn.Module],
        group_width: int,
        bottleneck_multiplier: float,
        se_ratio: float | None,
    ):
        conv = functools.partial(Conv2dNormActivation, norm_layer=norm_layer)
        w_b = int(round(width_out * bottleneck_multiplier))
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["a"] = conv(width_in, w_b, kernel_size=1, activation_layer=activation_layer)
        layers["b"] = conv(w_b, w_b, kernel_size=3, stride=stride, groups=w_b // group_width,
                           activation_layer=activation_layer)  # fmt: skip
        if se_ratio:
            # NOTE: the squeeze width is relative to the block's input, not the bottleneck
            layers["se"] = SqueezeExcitation(
                input_channels=w_b,
                squeeze_channels=int(round(se_ratio * width_in)),
                activation=activation_layer,
            )
        layers["c"] = conv(w_b, width_out, kernel_size=1, activation_layer=None)
        super().__init__(layers)


class ResBottleneckBlock(nn.Module):
    """``activation(x + f(x))``, x projected (1x1, norm) when the width or stride changes."""

    def __init__(
        self,
        width_in: int,
        width_out: int,
        stride: int,
        norm_layer: Callable[..., nn.Module],
        activation_layer: Callable[..., nn.Module],
        group_width: int = 1,
        bottleneck_multiplier: float = 1.0,
        se_ratio: float | None = None,
    ):
        super().__init__()
        self.proj = None
        if width_in != width_out or stride != 1:
            self.proj = Conv2dNormActivation(
                width_in, width_out, kernel_size=1, stride=stride, norm_layer=norm_layer,
                activation_layer=None,
            )  # fmt: skip
        self.f = BottleneckTransform(
            width_in, width_out, stride, norm_layer, activation_layer, group_width,
            bottleneck_multiplier, se_ratio,
        )  # fmt: skip
        self.activation = activation_layer(inplace=True)

    def forward(self, x):
        skip = x if self.proj is None else self.proj(x)
        return self.activation(skip + self.f(x))


class AnyStage(nn.Sequential):
    """``depth`` blocks of one width; the first takes the stride. Blocks are named
    ``block{stage_index}-{i}``, as in the checkpoints."""

    def __init__(
        self,
        width_in: int,
        width_out: int,
        stride: int,
        depth: int,
        block_constructor: Callable[..., nn.Module],
        norm_layer: Callable[..., nn.Module],
        activation_layer: Callable[..., nn.Module],
        group_width: int,
        bottleneck_multiplier: float,
        se_ratio: float | None = None,
        stage_index: int = 0,
    ):
        super().__init__()
        for i in range(depth):
            block = block_constructor(
                width_in if i == 0 else width_out, width_out, stride if i == 0 else 1,
                norm_layer, activation_layer, group_width, bottleneck_multiplier, se_ratio,
            )  # fmt: skip
            self.add_module(f"block{stage_index}-{i}", block)


class BlockParams:
    """Per-stage settings of a RegNet: ``depths``, ``widths``, ``group_widths``,
    ``bottleneck_multipliers``, ``strides`` and the ``se_ratio``."""

    def __init__(
        self,
        depths: list[int],
        widths: list[int],
        group_widths: list[int],
        bottleneck_multipliers: list[float],
        strides: list[int],
        se_ratio: float | None = None,
    ):
        self.depths = depths
        self.widths = widths
        self.group_widths = group_widths
        self.bottleneck_multipliers = bottleneck_multipliers
        self.strides = strides
        self.se_ratio = se_ratio

    @classmethod
    def from_init_params(
        cls,
        depth: int,
        w_0: int,
        w_a: float,
        w_m: float,
        group_width: int,
        bottleneck_multiplier: float = 1.0,
        se_ratio: float | None = None,
        **kwargs: Any,
    ) -> BlockParams:
        """The stages of the design space's rule: block ``j`` is ``w_0 + w_a * j`` wide,
        snapped to ``w_0 * w_m ** round(log_{w_m}(width / w_0))`` and to a multiple of 8;
        runs of equal widths form the stages (each with stride 2).

        Args:
            depth: blocks in all. w_0: the first width (a multiple of 8). w_a: the slope
            (>= 0). w_m: the step between stage widths in log space (> 1).
            group_width: channels per group of the 3x3 convolutions.
            bottleneck_multiplier: default 1.0. se_ratio: default None (no SE).
            **kwargs: ignored (a builder's other arguments pass through).
        """
        quant, stride = 8, 2
        if w_a < 0 or w_0 <= 0 or w_m <= 1 or w_0 % 8 != 0:
            raise ValueError(
                f"Invalid RegNet settings: need w_a >= 0, w_0 > 0 and a multiple of 8, "
                f"w_m > 1; got w_0={w_0}, w_a={w_a}, w_m={w_m}"
            )
        # NOTE: in float32 tensors on the CPU (whatever the default device), rounded as
        # torchvision rounds them: float64 would snap a few borderline widths otherwise
        widths_cont = mg.arange(depth, device="cpu") * w_a + w_0
        capacity = mg.round(mg.log(widths_cont / w_0) / math.log(w_m))
        snapped = mg.round(mg.divide(w_0 * mg.pow(w_m, capacity), quant)) * quant
        block_widths = snapped.int().tolist()
        num_stages = len(set(block_widths))
        # a stage starts wherever the width changes
        starts = [i for i, w in enumerate(block_widths) if i == 0 or w != block_widths[i - 1]]
        stage_widths = [block_widths[i] for i in starts]
        stage_depths = [b - a for a, b in zip(starts, starts[1:] + [depth])]
        strides = [stride] * num_stages
        multipliers = [bottleneck_multiplier] * num_stages
        group_widths = [group_width] * num_stages
        stage_widths, group_widths = cls._adjust_widths_groups_compatibilty(
            stage_widths, multipliers, group_widths
        )
        return cls(stage_depths, stage_widths, group_widths, multipliers, strides, se_ratio)

    def _get_expanded_params(self):
        return zip(
            self.widths, self.strides, self.depths, self.group_widths, self.bottleneck_multipliers
        )

    @staticmethod
    def _adjust_widths_groups_compatibilty(
        stage_widths: list[int], bottleneck_ratios: list[float], group_widths: list[int]
    ) -> tuple[list[int], list[int]]:
        """Stage widths whose bottleneck widths are multiples of their group widths (group
        widths capped at the bottleneck width)."""
        widths = [int(w * b) for w, b in zip(stage_widths, bottleneck_ratios)]
        group_widths_min = [min(g, w_bot) for g, w_bot in zip(group_widths, widths)]
        ws_bot = [_make_divisible(w_bot, g) for w_bot, g in zip(widths, group_widths_min)]
        stage_widths = [int(w_bot / b) for w_bot, b in zip(ws_bot, bottleneck_ratios)]
        return stage_widths, group_widths_min


class RegNet(nn.Module):
    """A RegNet from its ``BlockParams``: stem, stages ``trunk_output.block1..``, average
    pool, ``fc``.

    Args:
        block_params: the stages.
        num_classes: outputs (default 1000).
        stem_width: default 32.
        stem_type, block_type: default ``SimpleStemIN``, ``ResBottleneckBlock``.
        norm_layer: default ``nn.BatchNorm2d``. activation: default ``nn.ReLU``.

    Example:
        >>> model = RegNet(BlockParams.from_init_params(4, 24, 36.0, 2.5, 8), num_classes=10)
    """

    def __init__(
        self,
        block_params: BlockParams,
        num_classes: int = 1000,
        stem_width: int = 32,
        stem_type: Callable[..., nn.Module] | None = None,
        block_type: Callable[..., nn.Module] | None = None,
        norm_layer: Callable[..., nn.Module] | None = None,
        activation: Callable[..., nn.Module] | None = None,
    ):
        super().__init__()
        stem_type = SimpleStemIN if stem_type is None else stem_type
        norm_layer = nn.BatchNorm2d if norm_layer is None else norm_layer
        block_type = ResBottleneckBlock if block_type is None else block_type
        activation = nn.ReLU if activation is None else activation
        self.stem = stem_type(3, stem_width, norm_layer, activation)
        current = stem_width
        stages = []
        for i, (width, stride, depth, group_width, mult) in enumerate(
            block_params._get_expanded_params()
        ):
            stage = AnyStage(
                current, width, stride, depth, block_type, norm_layer, activation, group_width,
                mult, block_params.se_ratio, stage_index=i + 1,
            )  # fmt: skip
            stages.append((f"block{i + 1}", stage))
            current = width
        self.trunk_output = nn.Sequential(OrderedDict(stages))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(in_features=current, out_features=num_classes)
        # ResNet-style init (no conv biases: every conv feeds a norm)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, mean=0.0, std=math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0.0, std=0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.avgpool(self.trunk_output(self.stem(x)))
        return self.fc(x.flatten(start_dim=1))


def _regnet(block_params: BlockParams, weights, progress: bool, **kwargs: Any) -> RegNet:
    _set_num_classes(kwargs, weights)
    norm_layer = kwargs.pop(
        "norm_layer", functools.partial(nn.BatchNorm2d, eps=1e-05, momentum=0.1)
    )
    return _build(lambda: RegNet(block_params, norm_layer=norm_layer, **kwargs), weights, progress)


_URL = "https://download.pytorch.org/models/"
_REF = "https://github.com/pytorch/vision/tree/main/references/classification"
_RECIPE = "https://github.com/pytorch/vision/issues/3995#new-recipe"
_SWAG = "https://github.com/facebookresearch/SWAG"
_SWAG_LICENSE = "https://github.com/facebookresearch/SWAG/blob/main/LICENSE"
_SWAG_LINEAR = "https://github.com/pytorch/vision/pull/5793"


# a checkpoint per line: file, num_params, acc@1, acc@5, GFLOPs (_ops), MB (_file_size)
def _w(file: str, num_params: int, acc1: float, acc5: float, ops: float, size: float, **kw):
    return _imagenet_weights(_URL + file, num_params, acc1, acc5, _ops=ops, _file_size=size, **kw)


# fmt: off
class RegNet_Y_400MF_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("regnet_y_400mf-c65dace8.pth", 4344144, 74.046, 91.716, 0.402, 16.806,
                       recipe=_REF + "#small-models")
    IMAGENET1K_V2 = _w("regnet_y_400mf-e6988f5f.pth", 4344144, 75.804, 92.742, 0.402, 16.806,
                       resize_size=232, recipe=_RECIPE)
    DEFAULT = IMAGENET1K_V2


class RegNet_Y_800MF_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("regnet_y_800mf-1b27b58c.pth", 6432512, 76.42, 93.136, 0.834, 24.774,
                       recipe=_REF + "#small-models")
    IMAGENET1K_V2 = _w("regnet_y_800mf-58fc7688.pth", 6432512, 78.828, 94.502, 0.834, 24.774,
                       resize_size=232, recipe=_RECIPE)
    DEFAULT = IMAGENET1K_V2


class RegNet_Y_1_6GF_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("regnet_y_1_6gf-b11a554e.pth", 11202430, 77.95, 93.966, 1.612, 43.152,
                       recipe=_REF + "#small-models")
    IMAGENET1K_V2 = _w("regnet_y_1_6gf-0d7bc02a.pth", 11202430, 80.876, 95.444, 1.612, 43.152,
                       resize_size=232, recipe=_RECIPE)
    DEFAULT = IMAGENET1K_V2


class RegNet_Y_3_2GF_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("regnet_y_3_2gf-b5a9779c.pth", 19436338, 78.948, 94.576, 3.176, 74.567,
                       recipe=_REF + "#medium-models")
    IMAGENET1K_V2 = _w("regnet_y_3_2gf-9180c971.pth", 19436338, 81.982, 95.972, 3.176, 74.567,
                       resize_size=232, recipe=_RECIPE)
    DEFAULT = IMAGENET1K_V2


class RegNet_Y_8GF_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("regnet_y_8gf-d0d0e4a8.pth", 39381472, 80.032, 95.048, 8.473, 150.701,
                       recipe=_REF + "#medium-models")
    IMAGENET1K_V2 = _w("regnet_y_8gf-dc2b1b54.pth", 39381472, 82.828, 96.33, 8.473, 150.701,
                       resize_size=232, recipe=_RECIPE)
    DEFAULT = IMAGENET1K_V2


class RegNet_Y_16GF_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("regnet_y_16gf-9e6ed7dd.pth", 83590140, 80.424, 95.24, 15.912, 319.49,
                       recipe=_REF + "#large-models")
    IMAGENET1K_V2 = _w("regnet_y_16gf-3e4a00f9.pth", 83590140, 82.886, 96.328, 15.912, 319.49,
                       resize_size=232, recipe=_RECIPE)
    IMAGENET1K_SWAG_E2E_V1 = _w("regnet_y_16gf_swag-43afe44d.pth", 83590140, 86.012, 98.054, 46.735,
                                319.49, crop_size=384, resize_size=384, interpolation="bicubic",
                                recipe=_SWAG, license=_SWAG_LICENSE)
    IMAGENET1K_SWAG_LINEAR_V1 = _w("regnet_y_16gf_lc_swag-f3ec0043.pth", 83590140, 83.976, 97.244,
                                   15.912, 319.49, resize_size=224, interpolation="bicubic",
                                   recipe=_SWAG_LINEAR, license=_SWAG_LICENSE)
    DEFAULT = IMAGENET1K_V2


class RegNet_Y_32GF_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("regnet_y_32gf-4dee3f7a.pth", 145046770, 80.878, 95.34, 32.28, 554.076,
                       recipe=_REF + "#large-models")
    IMAGENET1K_V2 = _w("regnet_y_32gf-8db6d4b5.pth", 145046770, 83.368, 96.498, 32.28, 554.076,
                       resize_size=232, recipe=_RECIPE)
    IMAGENET1K_SWAG_E2E_V1 = _w("regnet_y_32gf_swag-04fdfa75.pth", 145046770, 86.838, 98.362,
                                94.826, 554.076, crop_size=384, resize_size=384,
                                interpolation="bicubic", recipe=_SWAG, license=_SWAG_LICENSE)
    IMAGENET1K_SWAG_LINEAR_V1 = _w("regnet_y_32gf_lc_swag-e1583746.pth", 145046770, 84.622, 97.48,
                                   32.28, 554.076, resize_size=224, interpolation="bicubic",
                                   recipe=_SWAG_LINEAR, license=_SWAG_LICENSE)
    DEFAULT = IMAGENET1K_V2


class RegNet_Y_128GF_Weights(WeightsEnum):
    IMAGENET1K_SWAG_E2E_V1 = _w("regnet_y_128gf_swag-c8ce3e52.pth", 644812894, 88.228, 98.682,
                                374.57, 2461.564, crop_size=384, resize_size=384,
                                interpolation="bicubic", recipe=_SWAG, license=_SWAG_LICENSE)
    IMAGENET1K_SWAG_LINEAR_V1 = _w("regnet_y_128gf_lc_swag-cbe8ce12.pth", 644812894, 86.068, 97.844,
                                   127.518, 2461.564, resize_size=224, interpolation="bicubic",
                                   recipe=_SWAG_LINEAR, license=_SWAG_LICENSE)
    DEFAULT = IMAGENET1K_SWAG_E2E_V1


class RegNet_X_400MF_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("regnet_x_400mf-adf1edd5.pth", 5495976, 72.834, 90.95, 0.414, 21.258,
                       recipe=_REF + "#small-models")
    IMAGENET1K_V2 = _w("regnet_x_400mf-62229a5f.pth", 5495976, 74.864, 92.322, 0.414, 21.257,
                       resize_size=232, recipe=_RECIPE + "-with-fixres")
    DEFAULT = IMAGENET1K_V2


class RegNet_X_800MF_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("regnet_x_800mf-ad17e45c.pth", 7259656, 75.212, 92.348, 0.8, 27.945,
                       recipe=_REF + "#small-models")
    IMAGENET1K_V2 = _w("regnet_x_800mf-94a99ebd.pth", 7259656, 77.522, 93.826, 0.8, 27.945,
                       resize_size=232, recipe=_RECIPE + "-with-fixres")
    DEFAULT = IMAGENET1K_V2


class RegNet_X_1_6GF_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("regnet_x_1_6gf-e3633e7f.pth", 9190136, 77.04, 93.44, 1.603, 35.339,
                       recipe=_REF + "#small-models")
    IMAGENET1K_V2 = _w("regnet_x_1_6gf-a12f2b72.pth", 9190136, 79.668, 94.922, 1.603, 35.339,
                       resize_size=232, recipe=_RECIPE + "-with-fixres")
    DEFAULT = IMAGENET1K_V2


class RegNet_X_3_2GF_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("regnet_x_3_2gf-f342aeae.pth", 15296552, 78.364, 93.992, 3.177, 58.756,
                       recipe=_REF + "#medium-models")
    IMAGENET1K_V2 = _w("regnet_x_3_2gf-7071aa85.pth", 15296552, 81.196, 95.43, 3.177, 58.756,
                       resize_size=232, recipe=_RECIPE)
    DEFAULT = IMAGENET1K_V2


class RegNet_X_8GF_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("regnet_x_8gf-03ceed89.pth", 39572648, 79.344, 94.686, 7.995, 151.456,
                       recipe=_REF + "#medium-models")
    IMAGENET1K_V2 = _w("regnet_x_8gf-2b70d774.pth", 39572648, 81.682, 95.678, 7.995, 151.456,
                       resize_size=232, recipe=_RECIPE)
    DEFAULT = IMAGENET1K_V2


class RegNet_X_16GF_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("regnet_x_16gf-2007eb11.pth", 54278536, 80.058, 94.944, 15.941, 207.627,
                       recipe=_REF + "#medium-models")
    IMAGENET1K_V2 = _w("regnet_x_16gf-ba3796d7.pth", 54278536, 82.716, 96.196, 15.941, 207.627,
                       resize_size=232, recipe=_RECIPE)
    DEFAULT = IMAGENET1K_V2


class RegNet_X_32GF_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("regnet_x_32gf-9d47f8d0.pth", 107811560, 80.622, 95.248, 31.736, 412.039,
                       recipe=_REF + "#large-models")
    IMAGENET1K_V2 = _w("regnet_x_32gf-6eb8fdc6.pth", 107811560, 83.014, 96.288, 31.736, 412.039,
                       resize_size=232, recipe=_RECIPE)
    DEFAULT = IMAGENET1K_V2
# fmt: on


@register_model()
@handle_legacy_interface(RegNet_Y_400MF_Weights.IMAGENET1K_V1)
def regnet_y_400mf(
    *, weights: RegNet_Y_400MF_Weights | None = None, progress: bool = True, **kwargs: Any
) -> RegNet:
    """RegNetY-400MF.

    Args:
        weights: ``RegNet_Y_400MF_Weights`` entry (or its name) to load (default None).
        progress: show a download progress bar (default True).
        **kwargs: passed to ``RegNet`` (``num_classes``, ``stem_width``, ``norm_layer``
            (default batch norm eps 1e-5, momentum 0.1), ``activation``, ...).

    Example:
        >>> model = regnet_y_400mf(num_classes=10)
    """
    weights = RegNet_Y_400MF_Weights.verify(weights)
    params = BlockParams.from_init_params(
        depth=16, w_0=48, w_a=27.89, w_m=2.09, group_width=8, se_ratio=0.25, **kwargs
    )
    return _regnet(params, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(RegNet_Y_800MF_Weights.IMAGENET1K_V1)
def regnet_y_800mf(
    *, weights: RegNet_Y_800MF_Weights | None = None, progress: bool = True, **kwargs: Any
) -> RegNet:
    """RegNetY-800MF (arguments as ``regnet_y_400mf``)."""
    weights = RegNet_Y_800MF_Weights.verify(weights)
    params = BlockParams.from_init_params(
        depth=14, w_0=56, w_a=38.84, w_m=2.4, group_width=16, se_ratio=0.25, **kwargs
    )
    return _regnet(params, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(RegNet_Y_1_6GF_Weights.IMAGENET1K_V1)
def regnet_y_1_6gf(
    *, weights: RegNet_Y_1_6GF_Weights | None = None, progress: bool = True, **kwargs: Any
) -> RegNet:
    """RegNetY-1.6GF (arguments as ``regnet_y_400mf``)."""
    weights = RegNet_Y_1_6GF_Weights.verify(weights)
    params = BlockParams.from_init_params(
        depth=27, w_0=48, w_a=20.71, w_m=2.65, group_width=24, se_ratio=0.25, **kwargs
    )
    return _regnet(params, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(RegNet_Y_3_2GF_Weights.IMAGENET1K_V1)
def regnet_y_3_2gf(
    *, weights: RegNet_Y_3_2GF_Weights | None = None, progress: bool = True, **kwargs: Any
) -> RegNet:
    """RegNetY-3.2GF (arguments as ``regnet_y_400mf``)."""
    weights = RegNet_Y_3_2GF_Weights.verify(weights)
    params = BlockParams.from_init_params(
        depth=21, w_0=80, w_a=42.63, w_m=2.66, group_width=24, se_ratio=0.25, **kwargs
    )
    return _regnet(params, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(RegNet_Y_8GF_Weights.IMAGENET1K_V1)
def regnet_y_8gf(
    *, weights: RegNet_Y_8GF_Weights | None = None, progress: bool = True, **kwargs: Any
) -> RegNet:
    """RegNetY-8GF (arguments as ``regnet_y_400mf``)."""
    weights = RegNet_Y_8GF_Weights.verify(weights)
    params = BlockParams.from_init_params(
        depth=17, w_0=192, w_a=76.82, w_m=2.19, group_width=56, se_ratio=0.25, **kwargs
    )
    return _regnet(params, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(RegNet_Y_16GF_Weights.IMAGENET1K_V1)
def regnet_y_16gf(
    *, weights: RegNet_Y_16GF_Weights | None = None, progress: bool = True, **kwargs: Any
) -> RegNet:
    """RegNetY-16GF (arguments as ``regnet_y_400mf``)."""
    weights = RegNet_Y_16GF_Weights.verify(weights)
    params = BlockParams.from_init_params(
        depth=18, w_0=200, w_a=106.23, w_m=2.48, group_width=112, se_ratio=0.25, **kwargs
    )
    return _regnet(params, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(RegNet_Y_32GF_Weights.IMAGENET1K_V1)
def regnet_y_32gf(
    *, weights: RegNet_Y_32GF_Weights | None = None, progress: bool = True, **kwargs: Any
) -> RegNet:
    """RegNetY-32GF (arguments as ``regnet_y_400mf``)."""
    weights = RegNet_Y_32GF_Weights.verify(weights)
    params = BlockParams.from_init_params(
        depth=20, w_0=232, w_a=115.89, w_m=2.53, group_width=232, se_ratio=0.25, **kwargs
    )
    return _regnet(params, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(None)
def regnet_y_128gf(
    *, weights: RegNet_Y_128GF_Weights | None = None, progress: bool = True, **kwargs: Any
) -> RegNet:
    """RegNetY-128GF (arguments as ``regnet_y_400mf``)."""
    weights = RegNet_Y_128GF_Weights.verify(weights)
    params = BlockParams.from_init_params(
        depth=27, w_0=456, w_a=160.83, w_m=2.52, group_width=264, se_ratio=0.25, **kwargs
    )
    return _regnet(params, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(RegNet_X_400MF_Weights.IMAGENET1K_V1)
def regnet_x_400mf(
    *, weights: RegNet_X_400MF_Weights | None = None, progress: bool = True, **kwargs: Any
) -> RegNet:
    """RegNetX-400MF (arguments as ``regnet_y_400mf``)."""
    weights = RegNet_X_400MF_Weights.verify(weights)
    params = BlockParams.from_init_params(
        depth=22, w_0=24, w_a=24.48, w_m=2.54, group_width=16, **kwargs
    )
    return _regnet(params, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(RegNet_X_800MF_Weights.IMAGENET1K_V1)
def regnet_x_800mf(
    *, weights: RegNet_X_800MF_Weights | None = None, progress: bool = True, **kwargs: Any
) -> RegNet:
    """RegNetX-800MF (arguments as ``regnet_y_400mf``)."""
    weights = RegNet_X_800MF_Weights.verify(weights)
    params = BlockParams.from_init_params(
        depth=16, w_0=56, w_a=35.73, w_m=2.28, group_width=16, **kwargs
    )
    return _regnet(params, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(RegNet_X_1_6GF_Weights.IMAGENET1K_V1)
def regnet_x_1_6gf(
    *, weights: RegNet_X_1_6GF_Weights | None = None, progress: bool = True, **kwargs: Any
) -> RegNet:
    """RegNetX-1.6GF (arguments as ``regnet_y_400mf``)."""
    weights = RegNet_X_1_6GF_Weights.verify(weights)
    params = BlockParams.from_init_params(
        depth=18, w_0=80, w_a=34.01, w_m=2.25, group_width=24, **kwargs
    )
    return _regnet(params, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(RegNet_X_3_2GF_Weights.IMAGENET1K_V1)
def regnet_x_3_2gf(
    *, weights: RegNet_X_3_2GF_Weights | None = None, progress: bool = True, **kwargs: Any
) -> RegNet:
    """RegNetX-3.2GF (arguments as ``regnet_y_400mf``)."""
    weights = RegNet_X_3_2GF_Weights.verify(weights)
    params = BlockParams.from_init_params(
        depth=25, w_0=88, w_a=26.31, w_m=2.25, group_width=48, **kwargs
    )
    return _regnet(params, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(RegNet_X_8GF_Weights.IMAGENET1K_V1)
def regnet_x_8gf(
    *, weights: RegNet_X_8GF_Weights | None = None, progress: bool = True, **kwargs: Any
) -> RegNet:
    """RegNetX-8GF (arguments as ``regnet_y_400mf``)."""
    weights = RegNet_X_8GF_Weights.verify(weights)
    params = BlockParams.from_init_params(
        depth=23, w_0=80, w_a=49.56, w_m=2.88, group_width=120, **kwargs
    )
    return _regnet(params, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(RegNet_X_16GF_Weights.IMAGENET1K_V1)
def regnet_x_16gf(
    *, weights: RegNet_X_16GF_Weights | None = None, progress: bool = True, **kwargs: Any
) -> RegNet:
    """RegNetX-16GF (arguments as ``regnet_y_400mf``)."""
    weights = RegNet_X_16GF_Weights.verify(weights)
    params = BlockParams.from_init_params(
        depth=22, w_0=216, w_a=55.59, w_m=2.1, group_width=128, **kwargs
    )
    return _regnet(params, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(RegNet_X_32GF_Weights.IMAGENET1K_V1)
def regnet_x_32gf(
    *, weights: RegNet_X_32GF_Weights | None = None, progress: bool = True, **kwargs: Any
) -> RegNet:
    """RegNetX-32GF (arguments as ``regnet_y_400mf``)."""
    weights = RegNet_X_32GF_Weights.verify(weights)
    params = BlockParams.from_init_params(
        depth=23, w_0=320, w_a=69.86, w_m=2.0, group_width=168, **kwargs
    )
    return _regnet(params, weights, progress, **kwargs)
