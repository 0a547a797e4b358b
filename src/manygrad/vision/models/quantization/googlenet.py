"""Quantizable GoogLeNet (torchvision's ``models.quantization.googlenet``): conv-bn-ReLU
blocks that fuse, the Inception branches concatenated by a ``FloatFunctional``,
QuantStub / DeQuantStub and ``fuse_model()``; ``quantize=True`` gives the int8 model."""

# ruff: noqa: N801 (torchvision's class name GoogLeNet_QuantizedWeights)
from __future__ import annotations

import warnings
from typing import Any

from .... import nn
from ....ao import quantization as Q
from ....ao.nn import quantized as nnq
from ....nn import functional as F
from .._api import WeightsEnum, _ovewrite_named_param, register_model
from ..googlenet import BasicConv2d, GoogLeNet, GoogLeNet_Weights, Inception, InceptionAux
from ._meta import _quantized_weights
from .utils import _backend, _fuse_modules, _legacy_interface, _quantized_build, _replace_relu

__all__ = ["QuantizableGoogLeNet", "GoogLeNet_QuantizedWeights", "googlenet"]


class QuantizableBasicConv2d(BasicConv2d):
    """Conv, bn and a ReLU module of its own (``relu``), so that the three fuse."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))

    def fuse_model(self, is_qat: bool | None = None) -> None:
        _fuse_modules(self, ["conv", "bn", "relu"], is_qat, inplace=True)


class QuantizableInception(Inception):
    """``Inception`` of ``QuantizableBasicConv2d``s, its branches joined by ``cat``."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, conv_block=QuantizableBasicConv2d, **kwargs)
        self.cat = nnq.FloatFunctional()

    def forward(self, x):
        return self.cat.cat(self._forward(x), 1)


class QuantizableInceptionAux(InceptionAux):
    """``InceptionAux`` with a ReLU module (``relu``) after ``fc1``."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, conv_block=QuantizableBasicConv2d, **kwargs)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.conv(F.adaptive_avg_pool2d(x, (4, 4))).flatten(1)
        x = self.dropout(self.relu(self.fc1(x)))
        return self.fc2(x)


class QuantizableGoogLeNet(GoogLeNet):
    """``GoogLeNet`` of the quantizable blocks between a ``QuantStub`` and a
    ``DeQuantStub`` (the input transform stays in float, before them)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(
            *args,
            blocks=[QuantizableBasicConv2d, QuantizableInception, QuantizableInceptionAux],
            **kwargs,
        )
        self.quant = Q.QuantStub()
        self.dequant = Q.DeQuantStub()

    def forward(self, x):
        x = self.quant(self._transform_input(x))
        # NOTE: torchvision unpacks _forward's (x, aux2, aux1) as (x, aux1, aux2) here, so
        # its train-mode outputs carry the two auxiliary logits swapped; kept as it does
        x, aux1, aux2 = self._forward(x)
        return self.eager_outputs(self.dequant(x), aux2, aux1)

    def fuse_model(self, is_qat: bool | None = None) -> None:
        """Fuse every conv + bn + relu in place (the same outputs, in floating point)."""
        for m in self.modules():
            if type(m) is QuantizableBasicConv2d:
                m.fuse_model(is_qat)


class GoogLeNet_QuantizedWeights(WeightsEnum):
    IMAGENET1K_FBGEMM_V1 = _quantized_weights(
        "googlenet_fbgemm-c81f6644.pth", 6624904, GoogLeNet_Weights.IMAGENET1K_V1, 69.826,
        89.404, 1.498, 12.618, min_size=(15, 15),
    )  # fmt: skip
    DEFAULT = IMAGENET1K_FBGEMM_V1


@register_model(name="quantized_googlenet")
@_legacy_interface(GoogLeNet_QuantizedWeights.IMAGENET1K_FBGEMM_V1, GoogLeNet_Weights.IMAGENET1K_V1)
def googlenet(
    *,
    weights: GoogLeNet_QuantizedWeights | GoogLeNet_Weights | None = None,
    progress: bool = True,
    quantize: bool = False,
    **kwargs: Any,
) -> QuantizableGoogLeNet:
    """GoogLeNet: quantizable in float (``quantize=False``) or int8 (``quantize=True``).

    With weights, ``transform_input`` defaults to True and the auxiliary classifiers (not
    pretrained) are dropped unless ``aux_logits=True``, as in torchvision.

    Args:
        weights: ``GoogLeNet_QuantizedWeights`` entries with ``quantize=True``, the float
            model's without; an entry's name, or None (default: random).
        progress: show the download's progress (default True).
        quantize: return the int8 model (fbgemm's recipe) (default False).
        **kwargs: for ``QuantizableGoogLeNet`` (``num_classes``, ``aux_logits``, ...).

    Example:
        >>> model = googlenet(weights="DEFAULT", quantize=True)
    """
    weights = (GoogLeNet_QuantizedWeights if quantize else GoogLeNet_Weights).verify(weights)
    original_aux_logits = kwargs.get("aux_logits", False)
    if weights is not None:
        if "transform_input" not in kwargs:
            _ovewrite_named_param(kwargs, "transform_input", True)
        _ovewrite_named_param(kwargs, "aux_logits", True)
        _ovewrite_named_param(kwargs, "init_weights", False)
    backend = _backend(kwargs, weights, "fbgemm")

    def make():
        model = QuantizableGoogLeNet(**kwargs)
        _replace_relu(model)
        return model

    model = _quantized_build(make, weights, progress, quantize, backend)
    if weights is not None:
        if not original_aux_logits:
            model.aux_logits = False
            model.aux1 = None
            model.aux2 = None
        else:
            warnings.warn(
                "auxiliary heads in the pretrained googlenet model are NOT pretrained, so make "
                "sure to train them",
                stacklevel=2,
            )
    return model
