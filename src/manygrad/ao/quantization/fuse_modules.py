"""``fuse_modules``: merge conv/linear + batch norm + ReLU runs into one module, so that they
quantize as one (batch norm folded into the weights, ReLU into the requantization).

For post-training quantization (``fuse_modules``, eval mode) the batch norm is folded into
the convolution now; for quantization-aware training (``fuse_modules_qat``) conv + batch norm
become ``nni.ConvBn*d`` / ``nni.ConvBnReLU*d`` / ``nni.LinearBn1d``, which ``prepare_qat``
turns into modules that train with the batch norm folded as ``convert`` will fold it.

Example:
    >>> model.eval()
    >>> fuse_modules(model, [["conv", "bn", "relu"], ["fc", "relu2"]], inplace=True)
"""

from __future__ import annotations

import copy

from ... import nn
from ...nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval
from ...nn.utils.parametrize import type_before_parametrizations
from ..nn import intrinsic as nni

_CONV_BN = {nn.Conv1d: nni.ConvBn1d, nn.Conv2d: nni.ConvBn2d, nn.Conv3d: nni.ConvBn3d}
_CONV_BN_RELU = {nn.Conv1d: nni.ConvBnReLU1d, nn.Conv2d: nni.ConvBnReLU2d,
                 nn.Conv3d: nni.ConvBnReLU3d}  # fmt: skip
_CONV_RELU = {nn.Conv1d: nni.ConvReLU1d, nn.Conv2d: nni.ConvReLU2d, nn.Conv3d: nni.ConvReLU3d}


def _same_mode(*mods) -> None:
    if len({m.training for m in mods}) != 1:
        names = " and ".join(type(m).__name__ for m in mods)
        raise AssertionError(f"{names} must all be in the same mode (train or eval); call "
                             "model.train() or model.eval() before fusing")  # fmt: skip


def _eval_only(*mods) -> None:
    if mods[0].training:
        raise AssertionError("Fusion only for eval! Call model.eval() before fuse_modules (or "
                             "use fuse_modules_qat for quantization-aware training)")  # fmt: skip


def _qat_bn_checks(features: int, bn, what: str) -> None:
    if bn.num_features != features:
        raise AssertionError(f"Output channel of {what} must match num_features of "
                             f"{type(bn).__name__}.")  # fmt: skip
    if not bn.affine:
        raise AssertionError(f"Only support fusing {type(bn).__name__} with affine set to True")
    if not bn.track_running_stats:
        raise AssertionError(f"Only support fusing {type(bn).__name__} with "
                             "tracking_running_stats set to True")  # fmt: skip


def fuse_conv_bn(is_qat: bool, conv, bn):
    """``conv`` then ``bn`` as one module: ``nni.ConvBn*d`` for QAT, else the folded conv."""
    _same_mode(conv, bn)
    if is_qat:
        _qat_bn_checks(conv.out_channels, bn, type(conv).__name__)
        cls = _CONV_BN.get(type(conv))
        if cls is None:
            raise NotImplementedError(f"Cannot fuse train modules: {(conv, bn)}")
        return cls(conv, bn)
    _eval_only(conv, bn)
    return fuse_conv_bn_eval(conv, bn)


def fuse_conv_bn_relu(is_qat: bool, conv, bn, relu):
    """``conv``, ``bn``, ``relu`` as one module (``nni.ConvBnReLU*d`` for QAT, else
    ``nni.ConvReLU*d`` around the folded conv)."""
    _same_mode(conv, bn, relu)
    if is_qat:
        _qat_bn_checks(conv.out_channels, bn, type(conv).__name__)
        cls = _CONV_BN_RELU.get(type(conv))
        if cls is None:
            raise NotImplementedError(f"Cannot fuse train modules: {(conv, bn, relu)}")
        return cls(conv, bn, relu)
    cls = _CONV_RELU.get(type(conv))
    if cls is None:
        raise NotImplementedError(f"Cannot fuse eval modules: {(conv, bn, relu)}")
    _eval_only(conv, bn)
    return cls(fuse_conv_bn_eval(conv, bn), relu)


def fuse_linear_bn(is_qat: bool, linear, bn):
    """``linear`` then ``bn`` (``BatchNorm1d``): ``nni.LinearBn1d`` for QAT, else folded."""
    _same_mode(linear, bn)
    if is_qat:
        _qat_bn_checks(linear.out_features, bn, "Linear")
        return nni.LinearBn1d(linear, bn)
    _eval_only(linear, bn)
    return fuse_linear_bn_eval(linear, bn)


def fuse_convtranspose_bn(is_qat: bool, convt, bn):
    """A transposed convolution with its batch norm folded in (post-training only)."""
    _same_mode(convt, bn)
    if is_qat:
        raise NotImplementedError("Fusing ConvTranspose+BatchNorm not yet supported in QAT.")
    _eval_only(convt, bn)
    return fuse_conv_bn_eval(convt, bn, transpose=True)


def _pair(cls):
    def fuser_method(is_qat, m1, m2):
        return cls(m1, m2)

    return fuser_method


_DEFAULT_OP_LIST_TO_FUSER_METHOD = {
    (nn.Conv1d, nn.BatchNorm1d): fuse_conv_bn,
    (nn.Conv1d, nn.BatchNorm1d, nn.ReLU): fuse_conv_bn_relu,
    (nn.Conv2d, nn.BatchNorm2d): fuse_conv_bn,
    (nn.Conv2d, nn.BatchNorm2d, nn.ReLU): fuse_conv_bn_relu,
    (nn.Conv3d, nn.BatchNorm3d): fuse_conv_bn,
    (nn.Conv3d, nn.BatchNorm3d, nn.ReLU): fuse_conv_bn_relu,
    (nn.Conv1d, nn.ReLU): _pair(nni.ConvReLU1d),
    (nn.Conv2d, nn.ReLU): _pair(nni.ConvReLU2d),
    (nn.Conv3d, nn.ReLU): _pair(nni.ConvReLU3d),
    (nn.Linear, nn.BatchNorm1d): fuse_linear_bn,
    (nn.Linear, nn.ReLU): _pair(nni.LinearReLU),
    (nn.BatchNorm2d, nn.ReLU): _pair(nni.BNReLU2d),
    (nn.BatchNorm3d, nn.ReLU): _pair(nni.BNReLU3d),
    (nn.ConvTranspose1d, nn.BatchNorm1d): fuse_convtranspose_bn,
    (nn.ConvTranspose2d, nn.BatchNorm2d): fuse_convtranspose_bn,
    (nn.ConvTranspose3d, nn.BatchNorm3d): fuse_convtranspose_bn,
}


def get_fuser_method(op_list: tuple, additional_fuser_method_mapping=None):
    """The function that fuses modules of the types ``op_list`` (``fuser(is_qat, *mods)``)."""
    mapping = {**_DEFAULT_OP_LIST_TO_FUSER_METHOD, **(additional_fuser_method_mapping or {})}
    method = mapping.get(tuple(op_list))
    if method is None:
        names = ", ".join(t.__name__ for t in op_list)
        known = "; ".join("(" + ", ".join(t.__name__ for t in k) + ")"
                          for k in _DEFAULT_OP_LIST_TO_FUSER_METHOD)  # fmt: skip
        raise AssertionError(f"did not find fuser method for: ({names}); manygrad fuses {known}, "
                             "plus fuse_custom_config_dict['additional_fuser_method_mapping']")  # fmt: skip
    return method


def fuse_known_modules(mod_list: list, is_qat: bool, additional_fuser_method_mapping=None) -> list:
    """The fused module followed by ``nn.Identity()`` for each other module of ``mod_list``;
    pre-forward hooks of the first module and forward hooks of the last move to the fused one."""
    types = tuple(type_before_parametrizations(m) for m in mod_list)
    fused = get_fuser_method(types, additional_fuser_method_mapping)(is_qat, *mod_list)
    for hook in mod_list[0]._forward_pre_hooks.values():
        fused.register_forward_pre_hook(hook)
    mod_list[0]._forward_pre_hooks.clear()
    for hook in mod_list[-1]._forward_hooks.values():
        fused.register_forward_hook(hook)
    mod_list[-1]._forward_hooks.clear()
    if isinstance(fused, nni._FusedModule):  # NOTE: the container takes its parts' mode
        fused.train(mod_list[0].training)
    out = [fused]
    for _ in mod_list[1:]:
        ident = nn.Identity()
        ident.train(mod_list[0].training)
        out.append(ident)
    return out


def _get(model, name: str):
    mod = model
    for part in name.split("."):
        if not hasattr(mod, part):
            raise AttributeError(f"fuse_modules: the model has no submodule {name!r}")
        mod = getattr(mod, part)
    return mod


def _set(model, name: str, value) -> None:
    *parents, last = name.split(".")
    mod = model
    for part in parents:
        mod = getattr(mod, part)
    setattr(mod, last, value)


def _fuse_modules(model, modules_to_fuse, is_qat: bool, inplace: bool, fuser_func,
                  fuse_custom_config_dict):  # fmt: skip
    if not inplace:
        model = copy.deepcopy(model)
    extra = (fuse_custom_config_dict or {}).get("additional_fuser_method_mapping", {})
    groups = modules_to_fuse
    if groups and all(isinstance(n, str) for n in groups):
        groups = [groups]
    for names in groups:
        new = fuser_func([_get(model, n) for n in names], is_qat, extra)
        for n, m in zip(names, new):
            _set(model, n, m)
    return model


def fuse_modules(model: nn.Module, modules_to_fuse, inplace: bool = False,
                 fuser_func=fuse_known_modules, fuse_custom_config_dict=None) -> nn.Module:  # fmt: skip
    """Fuse each list of submodule names into its first module (the rest become
    ``nn.Identity``), for post-training quantization; batch norm needs eval mode.

    Args:
        model: the model.
        modules_to_fuse: a list of names (one group) or a list of such lists.
        inplace: change ``model`` itself instead of a copy.
        fuser_func: ``fuser_func(modules, is_qat, additional_mapping)`` -> the new modules.
        fuse_custom_config_dict: ``{"additional_fuser_method_mapping": {types: fuser}}``.
    """
    return _fuse_modules(model, modules_to_fuse, False, inplace, fuser_func,
                         fuse_custom_config_dict)  # fmt: skip


def fuse_modules_qat(model: nn.Module, modules_to_fuse, inplace: bool = False,
                     fuser_func=fuse_known_modules, fuse_custom_config_dict=None) -> nn.Module:  # fmt: skip
    """``fuse_modules`` for quantization-aware training: conv/linear + batch norm become
    ``nni.ConvBn*d`` / ``ConvBnReLU*d`` / ``LinearBn1d`` (in train or eval mode), which
    ``prepare_qat`` swaps for their QAT versions."""
    return _fuse_modules(model, modules_to_fuse, True, inplace, fuser_func,
                         fuse_custom_config_dict)  # fmt: skip
