"""``torch.ao.nn.intrinsic.qat``: fused modules for quantization-aware training.

``ConvBn*d`` / ``ConvBnReLU*d`` / ``LinearBn1d`` train the convolution (or linear layer) with
its batch norm folded in as it will be after ``convert``: the weight is scaled by
``bn.weight / sqrt(bn.running_var + eps)`` and fake-quantized, the product is unscaled and the
batch norm runs on it (so it keeps updating its statistics until ``freeze_bn_stats``).
``convert`` folds the batch norm into the weight and bias for good.

Example:
    >>> fuse_modules_qat(model, [["conv", "bn", "relu"]], inplace=True)   # -> nni.ConvBnReLU2d
    >>> prepare_qat(model, inplace=True)                                 # -> ConvBnReLU2d here
    >>> model.apply(freeze_bn_stats)        # late in training, as PyTorch's QAT recipes do
"""

from __future__ import annotations

import math

from ..... import creation, nn
from .....nn import functional as F
from .....nn import init
from .....nn.utils.fusion import fuse_conv_bn_weights, fuse_linear_bn_weights
from ... import intrinsic as nni
from ...qat import Conv1d as _QatConv1d
from ...qat import Conv2d as _QatConv2d
from ...qat import Conv3d as _QatConv3d
from ...qat import Linear as _QatLinear
from ...qat import _check_float


class LinearReLU(_QatLinear):
    """QAT ``Linear`` followed by ReLU (from a fused ``LinearReLU``)."""

    _FLOAT_MODULE = nni.LinearReLU
    _FUSED = True

    def to_float(self):
        return nni.LinearReLU(super().to_float(), nn.ReLU())


class ConvReLU1d(_QatConv1d):
    """QAT ``Conv1d`` followed by ReLU (from a fused ``ConvReLU1d``)."""

    _FLOAT_MODULE = nni.ConvReLU1d
    _FUSED = True


class ConvReLU2d(_QatConv2d):
    """QAT ``Conv2d`` followed by ReLU (from a fused ``ConvReLU2d``)."""

    _FLOAT_MODULE = nni.ConvReLU2d
    _FUSED = True


class ConvReLU3d(_QatConv3d):
    """QAT ``Conv3d`` followed by ReLU (from a fused ``ConvReLU3d``)."""

    _FLOAT_MODULE = nni.ConvReLU3d
    _FUSED = True


class _BnFolded:
    """Batch-norm state shared by the ConvBn and LinearBn QAT modules."""

    def _init_bn(self, bn_cls, features: int, eps, momentum, freeze_bn, bias: bool,
                 qconfig) -> None:  # fmt: skip
        if not qconfig:
            raise AssertionError("qconfig must be provided for QAT module")
        self.qconfig = qconfig
        self.freeze_bn = freeze_bn if self.training else True
        self.bn = bn_cls(features, eps, momentum, True, True)
        self.weight_fake_quant = qconfig.weight()  # NOTE: after bn, as PyTorch's state dicts
        if bias:
            self.bias = nn.Parameter(creation.empty(features))
        else:
            self.register_parameter("bias", None)
        self.reset_bn_parameters()
        if self.training and not freeze_bn:
            self.update_bn_stats()
        else:
            self.freeze_bn_stats()
        self._enable_slow_path_for_better_numerical_stability = False

    def _take(self, layer, bn):
        """Share the float modules' parameters and statistics (as PyTorch's from_float)."""
        self.weight, self.bias = layer.weight, layer.bias
        self.bn.weight, self.bn.bias = bn.weight, bn.bias
        self.bn.running_mean, self.bn.running_var = bn.running_mean, bn.running_var
        self.bn.num_batches_tracked = bn.num_batches_tracked
        return self

    def reset_running_stats(self) -> None:
        self.bn.reset_running_stats()

    def reset_bn_parameters(self) -> None:
        self.bn.reset_running_stats()
        init.uniform_(self.bn.weight)
        init.zeros_(self.bn.bias)
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def update_bn_stats(self):
        """Let the batch norm use batch statistics and update its running ones."""
        self.freeze_bn = False
        self.bn.training = True
        return self

    def freeze_bn_stats(self):
        """Use (and keep) the running statistics from now on."""
        self.freeze_bn = True
        self.bn.training = False
        return self

    def train(self, mode: bool = True):
        # NOTE: a frozen batch norm stays in eval mode through model.train()
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.__dict__["training"] = mode
        if not self.freeze_bn:
            for m in self.children():
                m.train(mode)
        return self

    def _folded(self, x, linear_fn, n_out: int):
        """``bn(y / s + b)`` where ``y = linear_fn(x, fq(W * s))``, ``s = gamma / running_std``."""
        bn = self.bn
        if bn.running_var is None:
            raise AssertionError("self.bn.running_var must not be None")
        running_std = (bn.running_var + bn.eps).sqrt()
        scale = bn.weight / running_std
        wshape = [1] * self.weight.ndim
        bshape = [1] * self.weight.ndim
        wshape[0] = bshape[1] = -1
        scaled = self.weight_fake_quant(self.weight * scale.reshape(wshape))
        zero = creation.zeros(n_out, device=scaled.device, dtype=x.dtype)
        y = linear_fn(x, scaled, zero) / scale.reshape(bshape)
        if self.bias is not None:
            y = y + self.bias.reshape(bshape)
        return bn(y)


class _ConvBnNd(_BnFolded):
    _FUSED = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=None, padding_mode="zeros", eps=1e-05,
                 momentum=0.1, freeze_bn=False, qconfig=None):  # fmt: skip
        self._FLOAT_CONV_MODULE.__init__(self, in_channels, out_channels, kernel_size, stride,
                                         padding, dilation, groups, False, padding_mode)  # fmt: skip
        self._init_bn(self._BN, out_channels, eps, momentum, freeze_bn, bool(bias), qconfig)

    def forward(self, x):
        if self._enable_slow_path_for_better_numerical_stability:
            raise NotImplementedError(
                f"{type(self).__name__}: the slow ConvBn path is not supported by manygrad; "
                "leave _enable_slow_path_for_better_numerical_stability False"
            )
        y = self._folded(x, self._conv_forward, self.out_channels)
        return F.relu(y) if self._FUSED else y

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        _check_float(cls, mod)
        conv, bn = mod[0], mod[1]
        q = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                conv.padding, conv.dilation, conv.groups, conv.bias is not None,
                conv.padding_mode, bn.eps, bn.momentum, False, mod.qconfig)  # fmt: skip
        return q._take(conv, bn)

    def to_float(self):
        """The float convolution with the batch norm folded in (``ConvReLU*d`` if fused)."""
        conv = self._FLOAT_CONV_MODULE(self.in_channels, self.out_channels, self.kernel_size,
                                       self.stride, self.padding, self.dilation, self.groups,
                                       self.bias is not None, self.padding_mode)  # fmt: skip
        conv.weight, conv.bias = fuse_conv_bn_weights(
            self.weight.detach(), None if self.bias is None else self.bias.detach(),
            self.bn.running_mean, self.bn.running_var, self.bn.eps, self.bn.weight,
            self.bn.bias,
        )  # fmt: skip
        out = self._FUSED_FLOAT(conv, nn.ReLU()) if self._FUSED else conv
        out.train(self.training)
        return out


def _convbn(name: str, conv, bn, fused_float, relu: bool, relu_float=None) -> type:
    attrs = {
        "_FLOAT_CONV_MODULE": conv, "_BN": bn, "_FLOAT_MODULE": fused_float, "_FUSED": relu,
        "_FUSED_FLOAT": relu_float, "__module__": __name__,
        "__doc__": f"QAT {conv.__name__} with its {bn.__name__} folded in"
        + (", then ReLU" if relu else "") + f" (from a fused ``{fused_float.__name__}``).",
    }  # fmt: skip
    return type(name, (_ConvBnNd, conv), attrs)


ConvBn1d = _convbn("ConvBn1d", nn.Conv1d, nn.BatchNorm1d, nni.ConvBn1d, False)
ConvBn2d = _convbn("ConvBn2d", nn.Conv2d, nn.BatchNorm2d, nni.ConvBn2d, False)
ConvBn3d = _convbn("ConvBn3d", nn.Conv3d, nn.BatchNorm3d, nni.ConvBn3d, False)
ConvBnReLU1d = _convbn("ConvBnReLU1d", nn.Conv1d, nn.BatchNorm1d, nni.ConvBnReLU1d, True,
                       nni.ConvReLU1d)  # fmt: skip
ConvBnReLU2d = _convbn("ConvBnReLU2d", nn.Conv2d, nn.BatchNorm2d, nni.ConvBnReLU2d, True,
                       nni.ConvReLU2d)  # fmt: skip
ConvBnReLU3d = _convbn("ConvBnReLU3d", nn.Conv3d, nn.BatchNorm3d, nni.ConvBnReLU3d, True,
                       nni.ConvReLU3d)  # fmt: skip


class LinearBn1d(_BnFolded, nn.Linear):
    """QAT ``Linear`` with its ``BatchNorm1d`` folded in (from a fused ``LinearBn1d``)."""

    _FLOAT_MODULE = nni.LinearBn1d

    def __init__(self, in_features, out_features, bias=True, eps=1e-05, momentum=0.1,
                 freeze_bn=False, qconfig=None):  # fmt: skip
        nn.Linear.__init__(self, in_features, out_features, bias)
        self._init_bn(nn.BatchNorm1d, out_features, eps, momentum, freeze_bn, bias, qconfig)

    def forward(self, x):
        return self._folded(x, F.linear, self.out_features)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        _check_float(cls, mod)
        lin, bn = mod[0], mod[1]
        q = cls(lin.in_features, lin.out_features, lin.bias is not None, bn.eps, bn.momentum,
                False, mod.qconfig)  # fmt: skip
        return q._take(lin, bn)

    def to_float(self):
        """The float ``Linear`` with the batch norm folded in."""
        lin = nn.Linear(self.in_features, self.out_features)
        lin.weight, lin.bias = fuse_linear_bn_weights(
            self.weight.detach(), None if self.bias is None else self.bias.detach(),
            self.bn.running_mean, self.bn.running_var, self.bn.eps, self.bn.weight,
            self.bn.bias,
        )  # fmt: skip
        return lin


# NOTE: as PyTorch's, the module-walking helpers leave LinearBn1d alone (call its methods)
_CONV_BN = (ConvBn1d, ConvBn2d, ConvBn3d, ConvBnReLU1d, ConvBnReLU2d, ConvBnReLU3d)


def update_bn_stats(mod) -> None:
    """``module.apply(update_bn_stats)``: let every fused ConvBn module's batch norm update
    its statistics again."""
    if type(mod) in _CONV_BN:
        mod.update_bn_stats()


def freeze_bn_stats(mod) -> None:
    """``module.apply(freeze_bn_stats)``: freeze the batch-norm statistics of every fused
    ConvBn module (they then use the running statistics)."""
    if type(mod) in _CONV_BN:
        mod.freeze_bn_stats()


__all__ = ["ConvBn1d", "ConvBn2d", "ConvBn3d", "ConvBnReLU1d", "ConvBnReLU2d", "ConvBnReLU3d",
           "ConvReLU1d", "ConvReLU2d", "ConvReLU3d", "LinearBn1d", "LinearReLU",
           "freeze_bn_stats", "update_bn_stats"]  # fmt: skip
