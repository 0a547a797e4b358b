"""Eager-mode quantization workflows, as ``torch.ao.quantization``: ``prepare`` (attach
observers), ``convert`` (swap in quantized modules), ``prepare_qat`` and
``quantize_dynamic``.

Example (post-training static quantization):
    >>> model.qconfig = default_qconfig          # model starts with QuantStub, ends with DeQuantStub
    >>> prepare(model, inplace=True)
    >>> model(calibration_batch)
    >>> convert(model, inplace=True)
"""

from __future__ import annotations

import copy
import warnings

from ... import dtypes as D
from ... import nn
from ..nn import intrinsic as nni
from ..nn import qat as nnqat
from ..nn import quantized as nnq
from ..nn.intrinsic import qat as nniqat
from ..nn.intrinsic import quantized as nniq
from ..nn.quantized import dynamic as nnqd
from .qconfig import (
    DeQuantStub,
    QuantStub,
    default_dynamic_qconfig,
    float16_dynamic_qconfig,
    float_qparams_weight_only_qconfig,
    per_channel_dynamic_qconfig,
)

DEFAULT_STATIC_QUANT_MODULE_MAPPINGS = {
    QuantStub: nnq.Quantize, DeQuantStub: nnq.DeQuantize, nn.Linear: nnq.Linear,
    nn.Conv1d: nnq.Conv1d, nn.Conv2d: nnq.Conv2d, nn.BatchNorm2d: nnq.BatchNorm2d,
    nn.ReLU6: nnq.ReLU6, nn.Hardswish: nnq.Hardswish, nn.LeakyReLU: nnq.LeakyReLU,
    nn.ELU: nnq.ELU, nn.Dropout: nnq.Dropout, nnq.FloatFunctional: nnq.QFunctional,
    nn.Conv3d: nnq.Conv3d, nn.ConvTranspose1d: nnq.ConvTranspose1d,
    nn.ConvTranspose2d: nnq.ConvTranspose2d, nn.ConvTranspose3d: nnq.ConvTranspose3d,
    nn.BatchNorm3d: nnq.BatchNorm3d, nn.PReLU: nnq.PReLU,
    nn.Embedding: nnq.Embedding, nn.EmbeddingBag: nnq.EmbeddingBag, nn.LayerNorm: nnq.LayerNorm,
    nn.GroupNorm: nnq.GroupNorm, nn.InstanceNorm1d: nnq.InstanceNorm1d,
    nn.InstanceNorm2d: nnq.InstanceNorm2d, nn.InstanceNorm3d: nnq.InstanceNorm3d,
    nni.ConvReLU1d: nniq.ConvReLU1d, nni.ConvReLU2d: nniq.ConvReLU2d,
    nni.ConvReLU3d: nniq.ConvReLU3d, nni.LinearReLU: nniq.LinearReLU,
    nni.BNReLU2d: nniq.BNReLU2d, nni.BNReLU3d: nniq.BNReLU3d,
    nniqat.ConvBn1d: nnq.Conv1d, nniqat.ConvBn2d: nnq.Conv2d, nniqat.ConvBn3d: nnq.Conv3d,
    nniqat.ConvBnReLU1d: nniq.ConvReLU1d, nniqat.ConvBnReLU2d: nniq.ConvReLU2d,
    nniqat.ConvBnReLU3d: nniq.ConvReLU3d, nniqat.ConvReLU2d: nniq.ConvReLU2d,
    nniqat.ConvReLU3d: nniq.ConvReLU3d, nniqat.LinearReLU: nniq.LinearReLU,
    nniqat.LinearBn1d: nnq.Linear,
    nnqat.Linear: nnq.Linear, nnqat.Conv2d: nnq.Conv2d, nnqat.Conv3d: nnq.Conv3d,
}  # fmt: skip
DEFAULT_QAT_MODULE_MAPPINGS = {
    nn.Conv2d: nnqat.Conv2d, nn.Conv3d: nnqat.Conv3d, nn.Linear: nnqat.Linear,
    nni.ConvBn1d: nniqat.ConvBn1d, nni.ConvBn2d: nniqat.ConvBn2d, nni.ConvBn3d: nniqat.ConvBn3d,
    nni.ConvBnReLU1d: nniqat.ConvBnReLU1d, nni.ConvBnReLU2d: nniqat.ConvBnReLU2d,
    nni.ConvBnReLU3d: nniqat.ConvBnReLU3d, nni.ConvReLU2d: nniqat.ConvReLU2d,
    nni.ConvReLU3d: nniqat.ConvReLU3d, nni.LinearReLU: nniqat.LinearReLU,
    nni.LinearBn1d: nniqat.LinearBn1d,
}  # fmt: skip
DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS = {
    nn.Linear: nnqd.Linear, nn.LSTM: nnqd.LSTM, nn.GRU: nnqd.GRU, nn.LSTMCell: nnqd.LSTMCell,
    nn.GRUCell: nnqd.GRUCell, nn.RNNCell: nnqd.RNNCell, nn.Embedding: nnq.Embedding,
    nn.EmbeddingBag: nnq.EmbeddingBag, nni.LinearReLU: nniq.dynamic.LinearReLU,
}  # fmt: skip
# float modules PyTorch's convert would swap, that manygrad has no quantized version of
_NOT_YET: tuple = ()


def _special_act_post_process() -> dict:
    from .fake_quantize import (
        default_fixed_qparams_range_0to1_fake_quant,
        default_fixed_qparams_range_neg1to1_fake_quant,
    )

    return {nn.Hardsigmoid: default_fixed_qparams_range_0to1_fake_quant,
            nn.Sigmoid: default_fixed_qparams_range_0to1_fake_quant,
            nn.Softmax: default_fixed_qparams_range_0to1_fake_quant,
            nn.Tanh: default_fixed_qparams_range_neg1to1_fake_quant}  # fmt: skip


def _leaf_types() -> set:
    return set(DEFAULT_STATIC_QUANT_MODULE_MAPPINGS) | set(DEFAULT_QAT_MODULE_MAPPINGS)


def propagate_qconfig_(module: nn.Module, qconfig_dict: dict | None = None,
                       prepare_custom_config_dict=None) -> None:  # fmt: skip
    """Give every submodule the ``qconfig`` of its nearest configured ancestor
    (``qconfig_dict`` keys: module types or qualified names)."""
    qconfig_dict = qconfig_dict or {}

    def visit(mod, parent_qconfig, prefix):
        qc = qconfig_dict.get(type(mod), parent_qconfig)
        qc = qconfig_dict.get(prefix, qc)
        qc = getattr(mod, "qconfig", qc)
        mod.qconfig = qc
        for name, child in mod.named_children():
            visit(child, qc, f"{prefix}.{name}" if prefix else name)

    visit(module, qconfig_dict.get("", None), "")


def _observer_forward_hook(self, input, output):
    return self.activation_post_process(output)


def _add_observers(mod: nn.Module, leaves: set) -> None:
    special = _special_act_post_process()
    for child in mod.children():
        if type(child) is nn.Dropout:  # NOTE: as PyTorch's, dropout is never observed
            continue
        if child.training and type(child) in special:  # NOTE: QAT: a fixed output grid
            if getattr(child, "qconfig", None) is not None:
                child.add_module("activation_post_process", special[type(child)]())
                child.register_forward_hook(_observer_forward_hook)
        elif isinstance(child, nnq.FloatFunctional):  # NOTE: its ops call the observer
            if getattr(child, "qconfig", None) is not None:
                child.activation_post_process = child.qconfig.activation()
        elif type(child) in leaves:
            qc = getattr(child, "qconfig", None)
            if qc is not None and not isinstance(child, DeQuantStub):
                child.add_module("activation_post_process", qc.activation())
                child.register_forward_hook(_observer_forward_hook)
        elif not isinstance(child, nni._FusedModule):
            _add_observers(child, leaves)


def prepare(model: nn.Module, inplace: bool = False, allow_list=None,
            observer_non_leaf_module_list=None, prepare_custom_config_dict=None):  # fmt: skip
    """Attach an observer (``activation_post_process``) to the output of every module that
    will be quantized (those with a ``qconfig``); run calibration data through the model
    next, then ``convert``."""
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model)
    if not any(getattr(m, "qconfig", None) is not None for m in model.modules()):
        warnings.warn(
            "None of the submodule got qconfig applied. Make sure you passed correct "
            "configuration through `qconfig_dict` or by assigning the `.qconfig` attribute "
            "directly on submodules",
            stacklevel=2,
        )
    _add_observers(model, _leaf_types())
    return model


def prepare_qat(model: nn.Module, mapping=None, inplace: bool = False):
    """Swap Linear/Conv2d (and fused ones) for their QAT versions, whose weights are
    fake-quantized, and attach fake-quantizing observers to activations (the model must be
    in training mode)."""
    if not model.training:
        raise RuntimeError("prepare_qat only works on models in training mode; call "
                           "model.train() first")  # fmt: skip
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model)
    convert(model, DEFAULT_QAT_MODULE_MAPPINGS if mapping is None else mapping, inplace=True,
            remove_qconfig=False)  # fmt: skip
    return prepare(model, inplace=True)


def _swap(mod: nn.Module, mapping: dict, not_yet: tuple):
    qc = getattr(mod, "qconfig", None)
    t = type(mod)
    if t in mapping and (qc is not None or t is DeQuantStub):
        return mapping[t].from_float(mod)
    if qc is not None and t.__name__ in not_yet and t.__module__.startswith("manygrad.nn"):
        raise NotImplementedError(
            f"convert: a quantized {t.__name__} is not supported by manygrad yet; keep it in "
            f"float (set its .qconfig = None and wrap it in DeQuantStub/QuantStub)"
        )
    return mod


def _convert(mod: nn.Module, mapping: dict, not_yet: tuple) -> None:
    for name, child in list(mod.named_children()):
        if not isinstance(child, nni._FusedModule) and type(child) not in mapping:
            _convert(child, mapping, not_yet)
        new = _swap(child, mapping, not_yet)
        if new is not child:
            new.train(child.training)
            setattr(mod, name, new)


def _clean(mod: nn.Module) -> None:
    for m in mod.modules():
        app = m._modules.get("activation_post_process")
        if app is not None and not isinstance(app, nn.Identity):
            if isinstance(m, nnq.FloatFunctional):
                m._modules["activation_post_process"] = nn.Identity()
            else:
                del m._modules["activation_post_process"]
            for k, h in list(m._forward_hooks.items()):
                if h is _observer_forward_hook:
                    del m._forward_hooks[k]
        if "qconfig" in m.__dict__:
            del m.__dict__["qconfig"]


def convert(module: nn.Module, mapping=None, inplace: bool = False, remove_qconfig: bool = True,
            is_reference: bool = False, convert_custom_config_dict=None,
            use_precomputed_fake_quant: bool = False):  # fmt: skip
    """Swap every observed module for its quantized version (``mapping``, default PyTorch's
    static one restricted to what manygrad has), using the qparams its observers chose."""
    if is_reference:
        raise NotImplementedError("convert(is_reference=True) is not supported by manygrad")
    if not inplace:
        module = copy.deepcopy(module)
    _convert(module, DEFAULT_STATIC_QUANT_MODULE_MAPPINGS if mapping is None else mapping,
             _NOT_YET)  # fmt: skip
    if remove_qconfig:
        _clean(module)
    return module


def quantize_dynamic(model: nn.Module, qconfig_spec=None, dtype=D.qint8, mapping=None,
                     inplace: bool = False):  # fmt: skip
    """Swap ``nn.Linear``, ``nn.LSTM``, ``nn.GRU`` and the RNN cells (or the modules
    ``qconfig_spec`` names) for dynamically quantized ones: int8 (or float16) weights now,
    activations quantized per call at run time.

    Args:
        model: the float model.
        qconfig_spec: a set of module types, or a dict of types / qualified names to
            QConfigs (default: Linear, LSTM, GRU, LSTMCell, GRUCell, RNNCell).
        dtype: ``torch.qint8``, ``torch.float16`` (weights kept as float16, computed in
            float32) or ``torch.quint8`` (Embedding / EmbeddingBag, float qparams); it picks
            the default QConfig of a set and the default spec.
        mapping: float type -> dynamic module type.
        inplace: change ``model`` itself instead of a copy.

    Example:
        >>> q = quantize_dynamic(model, {nn.Linear, nn.LSTM}, dtype=torch.qint8)
    """
    qconfigs = {D.qint8: default_dynamic_qconfig, D.float16: float16_dynamic_qconfig,
                D.quint8: float_qparams_weight_only_qconfig}  # fmt: skip
    if qconfig_spec is None or isinstance(qconfig_spec, set):
        if dtype not in qconfigs:
            raise NotImplementedError(
                f"quantize_dynamic: dtype {dtype} is not supported by manygrad; use "
                "torch.qint8, torch.float16 or torch.quint8 (embeddings)"
            )
        if qconfig_spec is None and dtype is D.quint8:
            qconfig_spec = {nn.Embedding, nn.EmbeddingBag}
        elif qconfig_spec is None:
            qconfig_spec = {nn.Linear, nn.LSTM, nn.GRU, nn.LSTMCell, nn.RNNCell, nn.GRUCell}
        qconfig_spec = dict.fromkeys(qconfig_spec, qconfigs[dtype])
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    propagate_qconfig_(model, qconfig_spec)
    _convert(model, DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS if mapping is None else mapping, ())
    _clean(model)
    return model


def quantize_qat(model: nn.Module, run_fn, run_args, inplace: bool = False):
    """Quantization-aware training in one call: ``prepare_qat``, ``run_fn(model, *run_args)``
    (the training), convert."""
    if not inplace:
        model = copy.deepcopy(model)
    model.train()
    prepare_qat(model, inplace=True)
    run_fn(model, *run_args) if isinstance(run_args, (list, tuple)) else run_fn(model, run_args)
    convert(model, inplace=True)
    return model


def get_default_static_quant_module_mappings() -> dict:
    """A copy of the float -> quantized module mapping ``convert`` uses."""
    return dict(DEFAULT_STATIC_QUANT_MODULE_MAPPINGS)


def get_default_qat_module_mappings() -> dict:
    """A copy of the float -> QAT module mapping ``prepare_qat`` uses."""
    return dict(DEFAULT_QAT_MODULE_MAPPINGS)


def get_default_dynamic_quant_module_mappings() -> dict:
    """A copy of the float -> dynamically quantized module mapping ``quantize_dynamic`` uses."""
    return dict(DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS)


def get_embedding_qat_module_mappings() -> dict:
    """``prepare_qat``'s mapping with ``nn.Embedding`` / ``nn.EmbeddingBag`` swapped for their
    QAT versions too."""
    return {**DEFAULT_QAT_MODULE_MAPPINGS, nn.Embedding: nnqat.Embedding,
            nn.EmbeddingBag: nnqat.EmbeddingBag}  # fmt: skip


def get_embedding_static_quant_module_mappings() -> dict:
    """``convert``'s mapping with the QAT embeddings swapped for quantized ones too."""
    return {**DEFAULT_STATIC_QUANT_MODULE_MAPPINGS, nnqat.Embedding: nnq.Embedding,
            nnqat.EmbeddingBag: nnq.EmbeddingBag}  # fmt: skip


def get_static_quant_module_class(float_module_class, additional_static_quant_mapping=None,
                                  is_reference: bool = False):  # fmt: skip
    """The quantized module class ``convert`` swaps ``float_module_class`` for."""
    if is_reference:
        raise NotImplementedError("reference quantized modules are not supported by manygrad")
    mapping = {**DEFAULT_STATIC_QUANT_MODULE_MAPPINGS, **(additional_static_quant_mapping or {})}
    if float_module_class not in mapping:
        raise AssertionError(f"Floating point module class {float_module_class} does not have a "
                             "corresponding quantized module class")  # fmt: skip
    return copy.deepcopy(mapping[float_module_class])


def get_dynamic_quant_module_class(float_module_class, additional_dynamic_quant_mapping=None):
    """The dynamically quantized module class for ``float_module_class``."""
    mapping = {**DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS, **(additional_dynamic_quant_mapping or {})}
    if float_module_class not in mapping:
        raise AssertionError(f"Floating point module class {float_module_class} does not have a "
                             "corresponding quantized module class")  # fmt: skip
    return copy.deepcopy(mapping[float_module_class])


def swap_module(mod: nn.Module, mapping: dict, custom_module_class_mapping=None,
                use_precomputed_fake_quant: bool = False) -> nn.Module:  # fmt: skip
    """``mod`` swapped for ``mapping[type(mod)].from_float(mod)`` when it has a qconfig (or is
    a DeQuantStub), else ``mod`` itself."""
    new = _swap(mod, mapping, _NOT_YET)
    if new is not mod:
        new.train(mod.training)
    return new


def quantize(model: nn.Module, run_fn, run_args, mapping=None, inplace: bool = False):
    """Post-training static quantization in one call: prepare, ``run_fn(model, *run_args)``
    to calibrate, convert."""
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    prepare(model, inplace=True)
    run_fn(model, *run_args) if isinstance(run_args, (list, tuple)) else run_fn(model, run_args)
    convert(model, mapping, inplace=True)
    return model


__all__ = [
    "DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS", "DEFAULT_QAT_MODULE_MAPPINGS",
    "DEFAULT_STATIC_QUANT_MODULE_MAPPINGS", "convert", "per_channel_dynamic_qconfig", "prepare",
    "get_default_dynamic_quant_module_mappings", "get_default_qat_module_mappings",
    "get_embedding_qat_module_mappings", "get_embedding_static_quant_module_mappings",
    "get_default_static_quant_module_mappings", "get_dynamic_quant_module_class",
    "get_static_quant_module_class", "prepare_qat", "propagate_qconfig_", "quantize",
    "quantize_dynamic", "quantize_qat", "swap_module",
]  # fmt: skip
