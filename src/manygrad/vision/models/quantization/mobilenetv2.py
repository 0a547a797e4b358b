"""Quantizable MobileNet V2 (torchvision's ``models.quantization.mobilenetv2``): the
residual add in a ``FloatFunctional``, plain ReLUs in place of ReLU6 (so that conv + bn +
relu fuse), QuantStub / DeQuantStub and ``fuse_model()``; ``quantize=True`` gives the int8
model."""

# ruff: noqa: N801 (torchvision's class name MobileNet_V2_QuantizedWeights)
from __future__ import annotations

from typing import Any

from .... import nn
from ....ao import quantization as Q
from ....ao.nn import quantized as nnq
from ...ops.misc import Conv2dNormActivation
from .._api import WeightsEnum, register_model
from ..mobilenetv2 import InvertedResidual, MobileNet_V2_Weights, MobileNetV2
from ._meta import _QAT_DOCS, _QAT_RECIPE, _quantized_weights
from .utils import _backend, _fuse_modules, _legacy_interface, _quantized_build, _replace_relu

__all__ = ["QuantizableMobileNetV2", "MobileNet_V2_QuantizedWeights", "mobilenet_v2"]


class QuantizableInvertedResidual(InvertedResidual):
    """``InvertedResidual`` whose shortcut add is a ``FloatFunctional`` (``skip_add``)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.skip_add = nnq.FloatFunctional()

    def forward(self, x):
        if self.use_res_connect:
            return self.skip_add.add(x, self.conv(x))
        return self.conv(x)

    def fuse_model(self, is_qat: bool | None = None) -> None:
        # the projection: a bare conv and its norm
        for idx in range(len(self.conv)):
            if type(self.conv[idx]) is nn.Conv2d:
                _fuse_modules(self.conv, [str(idx), str(idx + 1)], is_qat, inplace=True)


class QuantizableMobileNetV2(MobileNetV2):
    """``MobileNetV2`` between a ``QuantStub`` and a ``DeQuantStub``; arguments as
    ``MobileNetV2``'s (``block`` is ``QuantizableInvertedResidual`` in the builder)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.quant = Q.QuantStub()
        self.dequant = Q.DeQuantStub()

    def forward(self, x):
        return self.dequant(self._forward_impl(self.quant(x)))

    def fuse_model(self, is_qat: bool | None = None) -> None:
        """Fuse conv + bn (+ relu) runs in place (the same outputs, in floating point)."""
        for m in self.modules():
            if type(m) is Conv2dNormActivation:
                _fuse_modules(m, ["0", "1", "2"], is_qat, inplace=True)
            if type(m) is QuantizableInvertedResidual:
                m.fuse_model(is_qat)


class MobileNet_V2_QuantizedWeights(WeightsEnum):
    IMAGENET1K_QNNPACK_V1 = _quantized_weights(
        "mobilenet_v2_qnnpack_37f702c5.pth", 3504872, MobileNet_V2_Weights.IMAGENET1K_V1, 71.658,
        90.15, 0.301, 3.423, backend="qnnpack", docs=_QAT_DOCS,
        recipe=_QAT_RECIPE + "qat-mobilenetv2",
    )  # fmt: skip
    DEFAULT = IMAGENET1K_QNNPACK_V1


@register_model(name="quantized_mobilenet_v2")
@_legacy_interface(
    MobileNet_V2_QuantizedWeights.IMAGENET1K_QNNPACK_V1, MobileNet_V2_Weights.IMAGENET1K_V1
)
def mobilenet_v2(
    *,
    weights: MobileNet_V2_QuantizedWeights | MobileNet_V2_Weights | None = None,
    progress: bool = True,
    quantize: bool = False,
    **kwargs: Any,
) -> QuantizableMobileNetV2:
    """MobileNet V2: quantizable in float (``quantize=False``) or int8 (``quantize=True``).

    Args:
        weights: ``MobileNet_V2_QuantizedWeights`` entries with ``quantize=True``, the float
            model's without; an entry's name, or None (default: random).
        progress: show the download's progress (default True).
        quantize: return the int8 model (default False).
        **kwargs: for ``QuantizableMobileNetV2``; ``backend`` (default "qnnpack").

    Example:
        >>> model = mobilenet_v2(weights="DEFAULT", quantize=True)
    """
    weights = (MobileNet_V2_QuantizedWeights if quantize else MobileNet_V2_Weights).verify(weights)
    backend = _backend(kwargs, weights, "qnnpack")

    def make():
        model = QuantizableMobileNetV2(block=QuantizableInvertedResidual, **kwargs)
        _replace_relu(model)
        return model

    return _quantized_build(make, weights, progress, quantize, backend)
