"""Quantizable ResNet and ResNeXt (torchvision's ``models.quantization.resnet``): the float
blocks with their residual add-ReLU in a ``FloatFunctional``, ReLUs apart per use,
QuantStub / DeQuantStub around the network and ``fuse_model()``; with ``quantize=True``
the builders return the int8 model (fbgemm's recipe)."""

# ruff: noqa: N801 (torchvision's class names: ResNet18_QuantizedWeights, ...)
from __future__ import annotations

from typing import Any

from .... import nn
from ....ao import quantization as Q
from ....ao.nn import quantized as nnq
from .._api import WeightsEnum, _ovewrite_named_param, register_model
from ..resnet import (
    BasicBlock,
    Bottleneck,
    ResNet,
    ResNet18_Weights,
    ResNet50_Weights,
    ResNeXt101_32X8D_Weights,
    ResNeXt101_64X4D_Weights,
)
from ._meta import _quantized_weights
from .utils import _backend, _fuse_modules, _legacy_interface, _quantized_build, _replace_relu

__all__ = [
    "QuantizableResNet",
    "ResNet18_QuantizedWeights",
    "ResNet50_QuantizedWeights",
    "ResNeXt101_32X8D_QuantizedWeights",
    "ResNeXt101_64X4D_QuantizedWeights",
    "resnet18",
    "resnet50",
    "resnext101_32x8d",
    "resnext101_64x4d",
]


class QuantizableBasicBlock(BasicBlock):
    """``BasicBlock`` whose shortcut add and ReLU run as one ``add_relu``."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.add_relu = nnq.FloatFunctional()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.add_relu.add_relu(out, identity)

    def fuse_model(self, is_qat: bool | None = None) -> None:
        _fuse_modules(self, [["conv1", "bn1", "relu"], ["conv2", "bn2"]], is_qat, inplace=True)
        if self.downsample:
            _fuse_modules(self.downsample, ["0", "1"], is_qat, inplace=True)


class QuantizableBottleneck(Bottleneck):
    """``Bottleneck`` with one ReLU per use (``relu1``, ``relu2``) and the shortcut's
    add-ReLU in ``skip_add_relu``."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.skip_add_relu = nnq.FloatFunctional()
        self.relu1 = nn.ReLU(inplace=False)
        self.relu2 = nn.ReLU(inplace=False)

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.skip_add_relu.add_relu(out, identity)

    def fuse_model(self, is_qat: bool | None = None) -> None:
        groups = [["conv1", "bn1", "relu1"], ["conv2", "bn2", "relu2"], ["conv3", "bn3"]]
        _fuse_modules(self, groups, is_qat, inplace=True)
        if self.downsample:
            _fuse_modules(self.downsample, ["0", "1"], is_qat, inplace=True)


class QuantizableResNet(ResNet):
    """``ResNet`` between a ``QuantStub`` (``quant``) and a ``DeQuantStub`` (``dequant``).

    Example:
        >>> model = resnet18().eval()  # float, quantizable
        >>> model.fuse_model()         # conv + bn (+ relu) merged, the same outputs
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.quant = Q.QuantStub()
        self.dequant = Q.DeQuantStub()

    def forward(self, x):
        return self.dequant(self._forward_impl(self.quant(x)))

    def fuse_model(self, is_qat: bool | None = None) -> None:
        """Fuse conv + bn (+ relu) runs in place, for quantization (the outputs stay as
        they are, in floating point)."""
        _fuse_modules(self, ["conv1", "bn1", "relu"], is_qat, inplace=True)
        for m in self.modules():
            if type(m) is QuantizableBottleneck or type(m) is QuantizableBasicBlock:
                m.fuse_model(is_qat)


def _resnet(
    block: type[QuantizableBasicBlock | QuantizableBottleneck],
    layers: list[int],
    weights: WeightsEnum | None,
    progress: bool,
    quantize: bool,
    **kwargs: Any,
) -> QuantizableResNet:
    backend = _backend(kwargs, weights, "fbgemm")

    def make():
        model = QuantizableResNet(block, layers, **kwargs)
        _replace_relu(model)
        return model

    return _quantized_build(make, weights, progress, quantize, backend)


class ResNet18_QuantizedWeights(WeightsEnum):
    IMAGENET1K_FBGEMM_V1 = _quantized_weights(
        "resnet18_fbgemm_16fa66dd.pth", 11689512, ResNet18_Weights.IMAGENET1K_V1, 69.494,
        88.882, 1.814, 11.238,
    )  # fmt: skip
    DEFAULT = IMAGENET1K_FBGEMM_V1


class ResNet50_QuantizedWeights(WeightsEnum):
    IMAGENET1K_FBGEMM_V1 = _quantized_weights(
        "resnet50_fbgemm_bf931d71.pth", 25557032, ResNet50_Weights.IMAGENET1K_V1, 75.92,
        92.814, 4.089, 24.759,
    )  # fmt: skip
    IMAGENET1K_FBGEMM_V2 = _quantized_weights(
        "resnet50_fbgemm-23753f79.pth", 25557032, ResNet50_Weights.IMAGENET1K_V2, 80.282,
        94.976, 4.089, 24.953, resize_size=232,
    )  # fmt: skip
    DEFAULT = IMAGENET1K_FBGEMM_V2


class ResNeXt101_32X8D_QuantizedWeights(WeightsEnum):
    IMAGENET1K_FBGEMM_V1 = _quantized_weights(
        "resnext101_32x8_fbgemm_09835ccf.pth", 88791336,
        ResNeXt101_32X8D_Weights.IMAGENET1K_V1, 78.986, 94.48, 16.414, 86.034,
    )  # fmt: skip
    IMAGENET1K_FBGEMM_V2 = _quantized_weights(
        "resnext101_32x8_fbgemm-ee16d00c.pth", 88791336,
        ResNeXt101_32X8D_Weights.IMAGENET1K_V2, 82.574, 96.132, 16.414, 86.645,
        resize_size=232,
    )  # fmt: skip
    DEFAULT = IMAGENET1K_FBGEMM_V2


class ResNeXt101_64X4D_QuantizedWeights(WeightsEnum):
    IMAGENET1K_FBGEMM_V1 = _quantized_weights(
        "resnext101_64x4d_fbgemm-605a1cb3.pth", 83455272,
        ResNeXt101_64X4D_Weights.IMAGENET1K_V1, 82.898, 96.326, 15.46, 81.556,
        resize_size=232, recipe="https://github.com/pytorch/vision/pull/5935",
    )  # fmt: skip
    DEFAULT = IMAGENET1K_FBGEMM_V1


@register_model(name="quantized_resnet18")
@_legacy_interface(ResNet18_QuantizedWeights.IMAGENET1K_FBGEMM_V1, ResNet18_Weights.IMAGENET1K_V1)
def resnet18(
    *,
    weights: ResNet18_QuantizedWeights | ResNet18_Weights | None = None,
    progress: bool = True,
    quantize: bool = False,
    **kwargs: Any,
) -> QuantizableResNet:
    """ResNet-18: quantizable in float (``quantize=False``) or int8 (``quantize=True``).

    Args:
        weights: ``ResNet18_QuantizedWeights`` entries with ``quantize=True``,
            the float model's without; an entry's name, or None (default: random).
        progress: show the download's progress (default True).
        quantize: return the int8 model (fbgemm's recipe; CPU inference) (default False).
        **kwargs: for ``QuantizableResNet`` (``num_classes``, ...).

    Example:
        >>> model = resnet18(weights="DEFAULT", quantize=True)
    """
    weights = (ResNet18_QuantizedWeights if quantize else ResNet18_Weights).verify(weights)
    return _resnet(QuantizableBasicBlock, [2, 2, 2, 2], weights, progress, quantize, **kwargs)


@register_model(name="quantized_resnet50")
@_legacy_interface(ResNet50_QuantizedWeights.IMAGENET1K_FBGEMM_V1, ResNet50_Weights.IMAGENET1K_V1)
def resnet50(
    *,
    weights: ResNet50_QuantizedWeights | ResNet50_Weights | None = None,
    progress: bool = True,
    quantize: bool = False,
    **kwargs: Any,
) -> QuantizableResNet:
    """ResNet-50: quantizable in float (``quantize=False``) or int8 (``quantize=True``).

    Args:
        weights: ``ResNet50_QuantizedWeights`` entries with ``quantize=True``,
            the float model's without; an entry's name, or None (default: random).
        progress: show the download's progress (default True).
        quantize: return the int8 model (fbgemm's recipe; CPU inference) (default False).
        **kwargs: for ``QuantizableResNet`` (``num_classes``, ...).

    Example:
        >>> model = resnet50(weights="DEFAULT", quantize=True)
    """
    weights = (ResNet50_QuantizedWeights if quantize else ResNet50_Weights).verify(weights)
    return _resnet(QuantizableBottleneck, [3, 4, 6, 3], weights, progress, quantize, **kwargs)


@register_model(name="quantized_resnext101_32x8d")
@_legacy_interface(
    ResNeXt101_32X8D_QuantizedWeights.IMAGENET1K_FBGEMM_V1, ResNeXt101_32X8D_Weights.IMAGENET1K_V1
)
def resnext101_32x8d(
    *,
    weights: ResNeXt101_32X8D_QuantizedWeights | ResNeXt101_32X8D_Weights | None = None,
    progress: bool = True,
    quantize: bool = False,
    **kwargs: Any,
) -> QuantizableResNet:
    """ResNeXt-101 32x8d: quantizable in float (``quantize=False``) or int8 (``quantize=True``).

    Args:
        weights: ``ResNeXt101_32X8D_QuantizedWeights`` entries with ``quantize=True``,
            the float model's without; an entry's name, or None (default: random).
        progress: show the download's progress (default True).
        quantize: return the int8 model (fbgemm's recipe; CPU inference) (default False).
        **kwargs: for ``QuantizableResNet`` (``num_classes``, ...).

    Example:
        >>> model = resnext101_32x8d(weights="DEFAULT", quantize=True)
    """
    enum = ResNeXt101_32X8D_QuantizedWeights if quantize else ResNeXt101_32X8D_Weights
    weights = enum.verify(weights)
    _ovewrite_named_param(kwargs, "groups", 32)
    _ovewrite_named_param(kwargs, "width_per_group", 8)
    return _resnet(QuantizableBottleneck, [3, 4, 23, 3], weights, progress, quantize, **kwargs)


@register_model(name="quantized_resnext101_64x4d")
@_legacy_interface(
    ResNeXt101_64X4D_QuantizedWeights.IMAGENET1K_FBGEMM_V1, ResNeXt101_64X4D_Weights.IMAGENET1K_V1
)
def resnext101_64x4d(
    *,
    weights: ResNeXt101_64X4D_QuantizedWeights | ResNeXt101_64X4D_Weights | None = None,
    progress: bool = True,
    quantize: bool = False,
    **kwargs: Any,
) -> QuantizableResNet:
    """ResNeXt-101 64x4d: quantizable in float (``quantize=False``) or int8 (``quantize=True``).

    Args:
        weights: ``ResNeXt101_64X4D_QuantizedWeights`` entries with ``quantize=True``,
            the float model's without; an entry's name, or None (default: random).
        progress: show the download's progress (default True).
        quantize: return the int8 model (fbgemm's recipe; CPU inference) (default False).
        **kwargs: for ``QuantizableResNet`` (``num_classes``, ...).

    Example:
        >>> model = resnext101_64x4d(weights="DEFAULT", quantize=True)
    """
    enum = ResNeXt101_64X4D_QuantizedWeights if quantize else ResNeXt101_64X4D_Weights
    weights = enum.verify(weights)
    _ovewrite_named_param(kwargs, "groups", 64)
    _ovewrite_named_param(kwargs, "width_per_group", 4)
    return _resnet(QuantizableBottleneck, [3, 4, 23, 3], weights, progress, quantize, **kwargs)
