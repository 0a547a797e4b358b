"""Quantizable Inception v3 (torchvision's ``models.quantization.inception``): conv-bn-ReLU
blocks that fuse, the branches concatenated by ``FloatFunctional``s, QuantStub /
DeQuantStub and ``fuse_model()``; ``quantize=True`` gives the int8 model."""

# ruff: noqa: N801 (torchvision's class name Inception_V3_QuantizedWeights)
from __future__ import annotations

from typing import Any

from .... import nn
from ....ao import quantization as Q
from ....ao.nn import quantized as nnq
from .. import inception as inception_module
from .._api import WeightsEnum, _build, _ovewrite_named_param, register_model
from ..inception import Inception_V3_Weights
from ._meta import _quantized_weights
from .utils import (
    _avg_pool2d,
    _backend,
    _fuse_modules,
    _legacy_interface,
    _replace_relu,
    quantize_model,
)

__all__ = ["QuantizableInception3", "Inception_V3_QuantizedWeights", "inception_v3"]


class QuantizableBasicConv2d(inception_module.BasicConv2d):
    """Conv, bn and a ReLU module of its own (``relu``), so that the three fuse."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))

    def fuse_model(self, is_qat: bool | None = None) -> None:
        _fuse_modules(self, ["conv", "bn", "relu"], is_qat, inplace=True)


def _pool(x):
    # NOTE: the blocks' 3x3 average pool, also on quantized tensors (see utils._requantized)
    return _avg_pool2d(x, kernel_size=3, stride=1, padding=1)


class QuantizableInceptionA(inception_module.InceptionA):
    """``InceptionA`` of ``QuantizableBasicConv2d``s, its branches joined by ``myop``."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, conv_block=QuantizableBasicConv2d, **kwargs)
        self.myop = nnq.FloatFunctional()

    def _forward(self, x) -> list:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return [self.branch1x1(x), b5, b3, self.branch_pool(_pool(x))]

    def forward(self, x):
        return self.myop.cat(self._forward(x), 1)


class QuantizableInceptionB(inception_module.InceptionB):
    """``InceptionB`` of ``QuantizableBasicConv2d``s, its branches joined by ``myop``."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, conv_block=QuantizableBasicConv2d, **kwargs)
        self.myop = nnq.FloatFunctional()

    def forward(self, x):
        return self.myop.cat(self._forward(x), 1)


class QuantizableInceptionC(inception_module.InceptionC):
    """``InceptionC`` of ``QuantizableBasicConv2d``s, its branches joined by ``myop``."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, conv_block=QuantizableBasicConv2d, **kwargs)
        self.myop = nnq.FloatFunctional()

    def _forward(self, x) -> list:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return [self.branch1x1(x), b7, d, self.branch_pool(_pool(x))]

    def forward(self, x):
        return self.myop.cat(self._forward(x), 1)


class QuantizableInceptionD(inception_module.InceptionD):
    """``InceptionD`` of ``QuantizableBasicConv2d``s, its branches joined by ``myop``."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, conv_block=QuantizableBasicConv2d, **kwargs)
        self.myop = nnq.FloatFunctional()

    def forward(self, x):
        return self.myop.cat(self._forward(x), 1)


class QuantizableInceptionE(inception_module.InceptionE):
    """``InceptionE`` of ``QuantizableBasicConv2d``s: its split 3x3 branches joined by
    ``myop1`` and ``myop2``, the four branches by ``myop3``."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, conv_block=QuantizableBasicConv2d, **kwargs)
        self.myop1 = nnq.FloatFunctional()
        self.myop2 = nnq.FloatFunctional()
        self.myop3 = nnq.FloatFunctional()

    def _forward(self, x) -> list:
        b3 = self.branch3x3_1(x)
        b3 = self.myop1.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = self.myop2.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        return [self.branch1x1(x), b3, d, self.branch_pool(_pool(x))]

    def forward(self, x):
        return self.myop3.cat(self._forward(x), 1)


class QuantizableInceptionAux(inception_module.InceptionAux):
    """``InceptionAux`` of ``QuantizableBasicConv2d``s."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, conv_block=QuantizableBasicConv2d, **kwargs)


class QuantizableInception3(inception_module.Inception3):
    """``Inception3`` of the quantizable blocks between a ``QuantStub`` and a
    ``DeQuantStub`` (the input transform stays in float, before them)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(
            *args,
            inception_blocks=[
                QuantizableBasicConv2d,
                QuantizableInceptionA,
                QuantizableInceptionB,
                QuantizableInceptionC,
                QuantizableInceptionD,
                QuantizableInceptionE,
                QuantizableInceptionAux,
            ],
            **kwargs,
        )
        self.quant = Q.QuantStub()
        self.dequant = Q.DeQuantStub()

    def forward(self, x):
        x, aux = self._forward(self.quant(self._transform_input(x)))
        return self.eager_outputs(self.dequant(x), aux)

    def fuse_model(self, is_qat: bool | None = None) -> None:
        """Fuse every conv + bn + relu in place (the same outputs, in floating point)."""
        for m in self.modules():
            if type(m) is QuantizableBasicConv2d:
                m.fuse_model(is_qat)


class Inception_V3_QuantizedWeights(WeightsEnum):
    IMAGENET1K_FBGEMM_V1 = _quantized_weights(
        "inception_v3_google_fbgemm-a2837893.pth", 27161264, Inception_V3_Weights.IMAGENET1K_V1,
        77.176, 93.354, 5.713, 23.146, crop_size=299, resize_size=342, min_size=(75, 75),
    )  # fmt: skip
    DEFAULT = IMAGENET1K_FBGEMM_V1


@register_model(name="quantized_inception_v3")
@_legacy_interface(
    Inception_V3_QuantizedWeights.IMAGENET1K_FBGEMM_V1, Inception_V3_Weights.IMAGENET1K_V1
)
def inception_v3(
    *,
    weights: Inception_V3_QuantizedWeights | Inception_V3_Weights | None = None,
    progress: bool = True,
    quantize: bool = False,
    **kwargs: Any,
) -> QuantizableInception3:
    """Inception v3: quantizable in float (``quantize=False``) or int8 (``quantize=True``).

    With weights, ``transform_input`` defaults to True and the auxiliary classifier is
    dropped unless ``aux_logits=True``, as in torchvision.

    Args:
        weights: ``Inception_V3_QuantizedWeights`` entries with ``quantize=True``, the float
            model's without; an entry's name, or None (default: random).
        progress: show the download's progress (default True).
        quantize: return the int8 model (fbgemm's recipe) (default False).
        **kwargs: for ``QuantizableInception3`` (``num_classes``, ``aux_logits``, ...).

    Example:
        >>> model = inception_v3(weights="DEFAULT", quantize=True)
    """
    enum = Inception_V3_QuantizedWeights if quantize else Inception_V3_Weights
    weights = enum.verify(weights)
    original_aux_logits = kwargs.get("aux_logits", False)
    if weights is not None:
        if "transform_input" not in kwargs:
            _ovewrite_named_param(kwargs, "transform_input", True)
        _ovewrite_named_param(kwargs, "aux_logits", True)
    backend = _backend(kwargs, weights, "fbgemm")

    def make():
        model = QuantizableInception3(**kwargs)
        _replace_relu(model)
        return model

    if not quantize:
        model = _build(make, weights, progress)
    else:
        model = make()
        quantize_model(model, backend)
        if weights is not None and not original_aux_logits:
            # the quantized checkpoint has no auxiliary classifier
            model.aux_logits = False
            model.AuxLogits = None
        if weights is not None:
            model.load_state_dict(weights.get_state_dict(progress=progress, check_hash=True))
    if weights is not None and not quantize and not original_aux_logits:
        model.aux_logits = False
        model.AuxLogits = None
    return model
