"""Helpers of the quantizable models: plain ReLUs for fusion, post-training quantization
with torchvision's recipe, fusion for eager or QAT workflows, the builders' legacy
``pretrained=`` that depends on ``quantize``, and the pooling the quantized models call
(float or quantized tensors alike)."""

from __future__ import annotations

import functools
from typing import Any

import manygrad as mg

from .... import nn
from ....ao import quantization as Q
from ....nn import functional as F
from .._api import _build, _ovewrite_named_param, handle_legacy_interface

# NOTE: PyTorch's engines on x86 machines; manygrad's quantized kernels sum exactly in
# int32 whichever engine is named (see manygrad.backends.quantized)
_ENGINES = ("qnnpack", "onednn", "x86", "fbgemm")


def _replace_relu(module: nn.Module) -> None:
    """Every ``nn.ReLU`` / ``nn.ReLU6`` (exactly those types) becomes ``nn.ReLU()``, not in
    place: the fusions take (conv, bn, ReLU), and ReLU6 clips to 6 where the
    requantization would not."""
    reassign = {}
    for name, mod in module.named_children():
        _replace_relu(mod)
        if type(mod) is nn.ReLU or type(mod) is nn.ReLU6:
            reassign[name] = nn.ReLU(inplace=False)
    for key, value in reassign.items():
        module._modules[key] = value


def quantize_model(model: nn.Module, backend: str) -> None:
    """Post-training static quantization in place, as torchvision's builders do: eval
    mode, the QConfig of ``backend``'s released checkpoints (min-max activations; weights
    per channel for fbgemm, per tensor for qnnpack), ``fuse_model()``, observers, one
    calibration batch of 1 x 3 x 299 x 299 uniform noise, convert.

    Args:
        model: a quantizable model (``fuse_model``, QuantStub / DeQuantStub).
        backend: ``"fbgemm"`` or ``"qnnpack"`` (``"x86"``, ``"onednn"`` as fbgemm).
    """
    if backend not in _ENGINES:
        raise RuntimeError(
            f"Quantized backend not supported: {backend!r}; use one of {list(_ENGINES)}"
        )
    mg.backends.quantized.engine = backend
    dummy = mg.rand(1, 3, 299, 299)
    model.eval()
    weight = (
        Q.default_weight_observer if backend == "qnnpack" else Q.default_per_channel_weight_observer
    )
    model.qconfig = Q.QConfig(activation=Q.default_observer, weight=weight)
    model.fuse_model()
    Q.prepare(model, inplace=True)
    model(dummy)
    Q.convert(model, inplace=True)


def _fuse_modules(
    model: nn.Module, modules_to_fuse: list[str] | list[list[str]], is_qat: bool | None, **kwargs
):
    """``fuse_modules`` (or ``fuse_modules_qat`` when ``is_qat``; default: the model's
    training mode)."""
    if is_qat is None:
        is_qat = model.training
    method = Q.fuse_modules_qat if is_qat else Q.fuse_modules
    return method(model, modules_to_fuse, **kwargs)


def _legacy_interface(quantized_default, float_default):
    """``handle_legacy_interface`` whose ``pretrained=True`` means the quantized weights
    with ``quantize=True`` and the float ones without."""

    def outer(builder):
        @functools.wraps(builder)
        def inner(*args: Any, **kwargs: Any):
            default = quantized_default if kwargs.get("quantize", False) else float_default
            return handle_legacy_interface(default)(builder)(*args, **kwargs)

        return inner

    return outer


def _avg_pool2d(x, kernel_size: int, stride: int, padding: int = 0):
    return F.avg_pool2d(x, kernel_size, stride, padding)


def _mean_hw(x):
    return x.mean([2, 3])


def _quantized_build(make, weights, progress, quantize, backend):
    """The model of ``make()``: float (weights through ``_build``, on the meta device) or
    quantized (built and calibrated for real, then the checkpoint over it)."""
    if not quantize:
        return _build(make, weights, progress)
    model = make()
    quantize_model(model, backend)
    if weights is not None:
        model.load_state_dict(weights.get_state_dict(progress=progress, check_hash=True))
    return model


def _backend(kwargs: dict, weights, default: str) -> str:
    if weights is not None:
        _ovewrite_named_param(kwargs, "num_classes", len(weights.meta["categories"]))
        if "backend" in weights.meta:
            _ovewrite_named_param(kwargs, "backend", weights.meta["backend"])
    return kwargs.pop("backend", default)
