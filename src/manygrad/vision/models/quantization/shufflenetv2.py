"""Quantizable ShuffleNet V2 (torchvision's ``models.quantization.shufflenetv2``): the
branches concatenated by a ``FloatFunctional``, QuantStub / DeQuantStub and
``fuse_model()``; ``quantize=True`` gives the int8 model."""

# ruff: noqa: N801 (torchvision's class names: ShuffleNet_V2_X0_5_QuantizedWeights, ...)
from __future__ import annotations

from typing import Any

from ....ao import quantization as Q
from ....ao.nn import quantized as nnq
from .. import shufflenetv2
from .._api import WeightsEnum, register_model
from ..shufflenetv2 import (
    ShuffleNet_V2_X0_5_Weights,
    ShuffleNet_V2_X1_0_Weights,
    ShuffleNet_V2_X1_5_Weights,
    ShuffleNet_V2_X2_0_Weights,
)
from ._meta import _quantized_weights
from .utils import (
    _backend,
    _fuse_modules,
    _legacy_interface,
    _mean_hw,
    _quantized_build,
    _replace_relu,
)

__all__ = [
    "QuantizableShuffleNetV2",
    "ShuffleNet_V2_X0_5_QuantizedWeights",
    "ShuffleNet_V2_X1_0_QuantizedWeights",
    "ShuffleNet_V2_X1_5_QuantizedWeights",
    "ShuffleNet_V2_X2_0_QuantizedWeights",
    "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5",
    "shufflenet_v2_x2_0",
]


class QuantizableInvertedResidual(shufflenetv2.InvertedResidual):
    """ShuffleNet V2's block with its concatenation in a ``FloatFunctional`` (``cat``)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.cat = nnq.FloatFunctional()

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = self.cat.cat([x1, self.branch2(x2)], dim=1)
        else:
            out = self.cat.cat([self.branch1(x), self.branch2(x)], dim=1)
        return shufflenetv2.channel_shuffle(out, 2)


class QuantizableShuffleNetV2(shufflenetv2.ShuffleNetV2):
    """``ShuffleNetV2`` of ``QuantizableInvertedResidual``s between a ``QuantStub`` and a
    ``DeQuantStub``."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, inverted_residual=QuantizableInvertedResidual, **kwargs)
        self.quant = Q.QuantStub()
        self.dequant = Q.DeQuantStub()

    def _forward_impl(self, x):
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        return self.fc(_mean_hw(x))  # NOTE: a quantized mean too (utils._requantized)

    def forward(self, x):
        return self.dequant(self._forward_impl(self.quant(x)))

    def fuse_model(self, is_qat: bool | None = None) -> None:
        """Fuse conv + bn (+ relu) runs in place (the same outputs, in floating point)."""
        for name, m in self._modules.items():
            if name in ["conv1", "conv5"] and m is not None:
                _fuse_modules(m, [["0", "1", "2"]], is_qat, inplace=True)
        for m in self.modules():
            if type(m) is QuantizableInvertedResidual:
                if len(m.branch1._modules.items()) > 0:
                    _fuse_modules(m.branch1, [["0", "1"], ["2", "3", "4"]], is_qat, inplace=True)
                groups = [["0", "1", "2"], ["3", "4"], ["5", "6", "7"]]
                _fuse_modules(m.branch2, groups, is_qat, inplace=True)


def _shufflenetv2(
    stages_repeats: list[int],
    stages_out_channels: list[int],
    *,
    weights: WeightsEnum | None,
    progress: bool,
    quantize: bool,
    **kwargs: Any,
) -> QuantizableShuffleNetV2:
    backend = _backend(kwargs, weights, "fbgemm")

    def make():
        model = QuantizableShuffleNetV2(stages_repeats, stages_out_channels, **kwargs)
        _replace_relu(model)
        return model

    return _quantized_build(make, weights, progress, quantize, backend)


_NEW_RECIPE = "https://github.com/pytorch/vision/pull/5906"


class ShuffleNet_V2_X0_5_QuantizedWeights(WeightsEnum):
    IMAGENET1K_FBGEMM_V1 = _quantized_weights(
        "shufflenetv2_x0.5_fbgemm-00845098.pth", 1366792, ShuffleNet_V2_X0_5_Weights.IMAGENET1K_V1,
        57.972, 79.78, 0.04, 1.501,
    )  # fmt: skip
    DEFAULT = IMAGENET1K_FBGEMM_V1


class ShuffleNet_V2_X1_0_QuantizedWeights(WeightsEnum):
    IMAGENET1K_FBGEMM_V1 = _quantized_weights(
        "shufflenetv2_x1_fbgemm-1e62bb32.pth", 2278604, ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1,
        68.36, 87.582, 0.145, 2.334,
    )  # fmt: skip
    DEFAULT = IMAGENET1K_FBGEMM_V1


class ShuffleNet_V2_X1_5_QuantizedWeights(WeightsEnum):
    IMAGENET1K_FBGEMM_V1 = _quantized_weights(
        "shufflenetv2_x1_5_fbgemm-d7401f05.pth", 3503624, ShuffleNet_V2_X1_5_Weights.IMAGENET1K_V1,
        72.052, 90.7, 0.296, 3.672, resize_size=232, recipe=_NEW_RECIPE,
    )  # fmt: skip
    DEFAULT = IMAGENET1K_FBGEMM_V1


class ShuffleNet_V2_X2_0_QuantizedWeights(WeightsEnum):
    IMAGENET1K_FBGEMM_V1 = _quantized_weights(
        "shufflenetv2_x2_0_fbgemm-5cac526c.pth", 7393996, ShuffleNet_V2_X2_0_Weights.IMAGENET1K_V1,
        75.354, 92.488, 0.583, 7.467, resize_size=232, recipe=_NEW_RECIPE,
    )  # fmt: skip
    DEFAULT = IMAGENET1K_FBGEMM_V1


def _builder(enum, float_enum, repeats, channels, weights, progress, quantize, kwargs):
    weights = (enum if quantize else float_enum).verify(weights)
    return _shufflenetv2(repeats, channels, weights=weights, progress=progress,
                         quantize=quantize, **kwargs)  # fmt: skip


@register_model(name="quantized_shufflenet_v2_x0_5")
@_legacy_interface(
    ShuffleNet_V2_X0_5_QuantizedWeights.IMAGENET1K_FBGEMM_V1,
    ShuffleNet_V2_X0_5_Weights.IMAGENET1K_V1,
)
def shufflenet_v2_x0_5(
    *,
    weights: ShuffleNet_V2_X0_5_QuantizedWeights | ShuffleNet_V2_X0_5_Weights | None = None,
    progress: bool = True,
    quantize: bool = False,
    **kwargs: Any,
) -> QuantizableShuffleNetV2:
    """ShuffleNet V2 0.5x: quantizable in float or int8 (``quantize=True``).

    Args:
        weights: the quantized weights (with ``quantize=True``) or the float ones, an
            entry's name, or None (default: random).
        progress: show the download's progress (default True).
        quantize: return the int8 model (fbgemm's recipe) (default False).
        **kwargs: for ``QuantizableShuffleNetV2`` (``num_classes``).

    Example:
        >>> model = shufflenet_v2_x0_5(weights="DEFAULT", quantize=True)
    """
    return _builder(ShuffleNet_V2_X0_5_QuantizedWeights, ShuffleNet_V2_X0_5_Weights, [4, 8, 4],
                    [24, 48, 96, 192, 1024], weights, progress, quantize, kwargs)  # fmt: skip


@register_model(name="quantized_shufflenet_v2_x1_0")
@_legacy_interface(
    ShuffleNet_V2_X1_0_QuantizedWeights.IMAGENET1K_FBGEMM_V1,
    ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1,
)
def shufflenet_v2_x1_0(
    *,
    weights: ShuffleNet_V2_X1_0_QuantizedWeights | ShuffleNet_V2_X1_0_Weights | None = None,
    progress: bool = True,
    quantize: bool = False,
    **kwargs: Any,
) -> QuantizableShuffleNetV2:
    """ShuffleNet V2 1.0x: quantizable in float or int8 (``quantize=True``); arguments as
    ``shufflenet_v2_x0_5``'s.

    Example:
        >>> model = shufflenet_v2_x1_0(weights="DEFAULT", quantize=True)
    """
    return _builder(ShuffleNet_V2_X1_0_QuantizedWeights, ShuffleNet_V2_X1_0_Weights, [4, 8, 4],
                    [24, 116, 232, 464, 1024], weights, progress, quantize, kwargs)  # fmt: skip


@register_model(name="quantized_shufflenet_v2_x1_5")
@_legacy_interface(
    ShuffleNet_V2_X1_5_QuantizedWeights.IMAGENET1K_FBGEMM_V1,
    ShuffleNet_V2_X1_5_Weights.IMAGENET1K_V1,
)
def shufflenet_v2_x1_5(
    *,
    weights: ShuffleNet_V2_X1_5_QuantizedWeights | ShuffleNet_V2_X1_5_Weights | None = None,
    progress: bool = True,
    quantize: bool = False,
    **kwargs: Any,
) -> QuantizableShuffleNetV2:
    """ShuffleNet V2 1.5x: quantizable in float or int8 (``quantize=True``); arguments as
    ``shufflenet_v2_x0_5``'s.

    Example:
        >>> model = shufflenet_v2_x1_5(weights="DEFAULT", quantize=True)
    """
    return _builder(ShuffleNet_V2_X1_5_QuantizedWeights, ShuffleNet_V2_X1_5_Weights, [4, 8, 4],
                    [24, 176, 352, 704, 1024], weights, progress, quantize, kwargs)  # fmt: skip


@register_model(name="quantized_shufflenet_v2_x2_0")
@_legacy_interface(
    ShuffleNet_V2_X2_0_QuantizedWeights.IMAGENET1K_FBGEMM_V1,
    ShuffleNet_V2_X2_0_Weights.IMAGENET1K_V1,
)
def shufflenet_v2_x2_0(
    *,
    weights: ShuffleNet_V2_X2_0_QuantizedWeights | ShuffleNet_V2_X2_0_Weights | None = None,
    progress: bool = True,
    quantize: bool = False,
    **kwargs: Any,
) -> QuantizableShuffleNetV2:
    """ShuffleNet V2 2.0x: quantizable in float or int8 (``quantize=True``); arguments as
    ``shufflenet_v2_x0_5``'s.

    Example:
        >>> model = shufflenet_v2_x2_0(weights="DEFAULT", quantize=True)
    """
    return _builder(ShuffleNet_V2_X2_0_QuantizedWeights, ShuffleNet_V2_X2_0_Weights, [4, 8, 4],
                    [24, 244, 488, 976, 2048], weights, progress, quantize, kwargs)  # fmt: skip
