"""Quantizable MobileNet V3-Large (torchvision's ``models.quantization.mobilenetv3``): the
squeeze-excitation's product and the residual add in ``FloatFunctional``s, the hard
sigmoid gate, QuantStub / DeQuantStub and ``fuse_model()``."""

# ruff: noqa: N801 (torchvision's class name MobileNet_V3_Large_QuantizedWeights)
from __future__ import annotations

from typing import Any

from .... import nn
from ....ao import quantization as Q
from ....ao.nn import quantized as nnq
from ...ops.misc import Conv2dNormActivation, SqueezeExcitation
from .._api import WeightsEnum, _build, register_model
from ..mobilenetv3 import (
    InvertedResidual,
    InvertedResidualConfig,
    MobileNet_V3_Large_Weights,
    MobileNetV3,
    _mobilenet_v3_conf,
)
from ._meta import _QAT_DOCS, _QAT_RECIPE, _quantized_weights
from .utils import _backend, _fuse_modules, _legacy_interface, _replace_relu

__all__ = ["QuantizableMobileNetV3", "MobileNet_V3_Large_QuantizedWeights", "mobilenet_v3_large"]


class QuantizableSqueezeExcitation(SqueezeExcitation):
    """Squeeze-excitation with a hard-sigmoid gate and its product in ``skip_mul``."""

    _version = 2

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs["scale_activation"] = nn.Hardsigmoid
        super().__init__(*args, **kwargs)
        self.skip_mul = nnq.FloatFunctional()

    def forward(self, input):  # noqa: A002 - torchvision's name
        return self.skip_mul.mul(self._scale(input), input)

    def fuse_model(self, is_qat: bool | None = None) -> None:
        _fuse_modules(self, ["fc1", "activation"], is_qat, inplace=True)


class QuantizableInvertedResidual(InvertedResidual):
    """``InvertedResidual`` with ``QuantizableSqueezeExcitation`` and the shortcut add in
    ``skip_add``."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, se_layer=QuantizableSqueezeExcitation, **kwargs)
        self.skip_add = nnq.FloatFunctional()

    def forward(self, x):
        if self.use_res_connect:
            return self.skip_add.add(x, self.block(x))
        return self.block(x)


class QuantizableMobileNetV3(MobileNetV3):
    """``MobileNetV3`` between a ``QuantStub`` and a ``DeQuantStub``; arguments as
    ``MobileNetV3``'s."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.quant = Q.QuantStub()
        self.dequant = Q.DeQuantStub()

    def forward(self, x):
        return self.dequant(self._forward_impl(self.quant(x)))

    def fuse_model(self, is_qat: bool | None = None) -> None:
        """Fuse conv + bn (+ relu; hard-swish stays apart) in place, and each
        squeeze-excitation's fc1 + relu."""
        for m in self.modules():
            if type(m) is Conv2dNormActivation:
                names = ["0", "1"]
                if len(m) == 3 and type(m[2]) is nn.ReLU:
                    names.append("2")
                _fuse_modules(m, names, is_qat, inplace=True)
            elif type(m) is QuantizableSqueezeExcitation:
                m.fuse_model(is_qat)


def _mobilenet_v3_model(
    inverted_residual_setting: list[InvertedResidualConfig],
    last_channel: int,
    weights: WeightsEnum | None,
    progress: bool,
    quantize: bool,
    **kwargs: Any,
) -> QuantizableMobileNetV3:
    backend = _backend(kwargs, weights, "qnnpack")

    # NOTE: as torchvision, the int8 model comes from its QAT checkpoint: fused conv + batch
    # norm QAT modules, prepare_qat, the checkpoint loaded over them, then convert
    def make():
        model = QuantizableMobileNetV3(inverted_residual_setting, last_channel,
                                       block=QuantizableInvertedResidual, **kwargs)  # fmt: skip
        _replace_relu(model)
        return model

    if not quantize:
        return _build(make, weights, progress)
    model = make()
    model.fuse_model(is_qat=True)
    model.qconfig = Q.get_default_qat_qconfig(backend)
    Q.prepare_qat(model, inplace=True)
    if weights is not None:
        model.load_state_dict(weights.get_state_dict(progress=progress, check_hash=True))
    Q.convert(model, inplace=True)
    return model.eval()


class MobileNet_V3_Large_QuantizedWeights(WeightsEnum):
    IMAGENET1K_QNNPACK_V1 = _quantized_weights(
        "mobilenet_v3_large_qnnpack-5bcacf28.pth", 5483032,
        MobileNet_V3_Large_Weights.IMAGENET1K_V1, 73.004, 90.858, 0.217, 21.554,
        backend="qnnpack", docs=_QAT_DOCS,
        recipe=_QAT_RECIPE + "qat-mobilenetv3",
    )  # fmt: skip
    DEFAULT = IMAGENET1K_QNNPACK_V1


@register_model(name="quantized_mobilenet_v3_large")
@_legacy_interface(
    MobileNet_V3_Large_QuantizedWeights.IMAGENET1K_QNNPACK_V1,
    MobileNet_V3_Large_Weights.IMAGENET1K_V1,
)
def mobilenet_v3_large(
    *,
    weights: MobileNet_V3_Large_QuantizedWeights | MobileNet_V3_Large_Weights | None = None,
    progress: bool = True,
    quantize: bool = False,
    **kwargs: Any,
) -> QuantizableMobileNetV3:
    """MobileNet V3-Large: quantizable in float (``quantize=False``) or int8
    (``quantize=True``, made as torchvision makes it from its quantization-aware-training
    checkpoint).

    Args:
        weights: ``MobileNet_V3_Large_QuantizedWeights`` entries with ``quantize=True``, the
            float model's ``MobileNet_V3_Large_Weights`` otherwise; a name, or None (random).
        progress: show the download's progress (default True).
        quantize: return the int8 model (default False).
        **kwargs: for ``QuantizableMobileNetV3`` and ``_mobilenet_v3_conf``.

    Example:
        >>> model = mobilenet_v3_large(weights="DEFAULT").eval()
        >>> model.fuse_model()
    """
    enum = MobileNet_V3_Large_QuantizedWeights if quantize else MobileNet_V3_Large_Weights
    weights = enum.verify(weights)
    inverted_residual_setting, last_channel = _mobilenet_v3_conf("mobilenet_v3_large", **kwargs)
    return _mobilenet_v3_model(
        inverted_residual_setting, last_channel, weights, progress, quantize, **kwargs
    )
