"""``fuse_modules``: merge conv/linear + batch norm + ReLU runs into one module, so that they
quantize as one (batch norm folded into the weights, ReLU into the requantization).

Example:
    >>> model.eval()
    >>> fuse_modules(model, [["conv", "bn", "relu"], ["fc", "relu2"]], inplace=True)
"""

from __future__ import annotations

import copy

from ... import nn
from ...nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval
from ..nn import intrinsic as nni


def _fuse(mods: list, is_qat: bool):
    types = tuple(type(m) for m in mods)
    names = tuple(t.__name__ for t in types)
    if (
        is_qat
        and any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in mods)
        and any(m.training for m in mods)
    ):
        raise NotImplementedError(
            f"fuse_modules_qat: training-mode fusion of {names} (ConvBn2d / ConvBnReLU2d QAT "
            "modules) is not supported by manygrad; fuse in eval mode (the batch norm is then "
            "folded into the conv) before prepare_qat"
        )
    if types == (nn.Conv2d, nn.BatchNorm2d):
        return fuse_conv_bn_eval(mods[0], mods[1])
    if types == (nn.Conv2d, nn.BatchNorm2d, nn.ReLU):
        return nni.ConvReLU2d(fuse_conv_bn_eval(mods[0], mods[1]), mods[2])
    if types == (nn.Conv2d, nn.ReLU):
        return nni.ConvReLU2d(mods[0], mods[1])
    if types == (nn.Linear, nn.ReLU):
        return nni.LinearReLU(mods[0], mods[1])
    if types == (nn.Linear, nn.BatchNorm1d):
        return fuse_linear_bn_eval(mods[0], mods[1])
    raise NotImplementedError(
        f"fuse_modules: cannot fuse {names}; manygrad fuses (Conv2d, BatchNorm2d), "
        "(Conv2d, BatchNorm2d, ReLU), (Conv2d, ReLU), (Linear, ReLU), (Linear, BatchNorm1d)"
    )


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


def _fuse_modules(model, modules_to_fuse, inplace: bool, is_qat: bool):
    if not inplace:
        model = copy.deepcopy(model)
    groups = modules_to_fuse
    if groups and all(isinstance(n, str) for n in groups):
        groups = [groups]
    for names in groups:
        mods = [_get(model, n) for n in names]
        fused = _fuse(mods, is_qat)
        fused.train(mods[0].training)
        _set(model, names[0], fused)
        for n in names[1:]:
            ident = nn.Identity()
            ident.train(mods[0].training)
            _set(model, n, ident)
    return model


def fuse_modules(model: nn.Module, modules_to_fuse, inplace: bool = False, fuser_func=None,
                 fuse_custom_config_dict=None) -> nn.Module:  # fmt: skip
    """Fuse each list of submodule names into its first module (the rest become
    ``nn.Identity``); batch norm needs eval mode.

    Args:
        model: the model.
        modules_to_fuse: a list of names (one group) or a list of such lists.
        inplace: change ``model`` itself instead of a copy.
    """
    if fuser_func is not None:
        raise NotImplementedError("fuse_modules: a custom fuser_func is not supported")
    return _fuse_modules(model, modules_to_fuse, inplace, is_qat=False)


def fuse_modules_qat(model: nn.Module, modules_to_fuse, inplace: bool = False, fuser_func=None,
                     fuse_custom_config_dict=None) -> nn.Module:  # fmt: skip
    """``fuse_modules`` for quantization-aware training (conv/linear + ReLU; batch norm only in
    eval mode, where it is folded)."""
    if fuser_func is not None:
        raise NotImplementedError("fuse_modules_qat: a custom fuser_func is not supported")
    return _fuse_modules(model, modules_to_fuse, inplace, is_qat=True)
