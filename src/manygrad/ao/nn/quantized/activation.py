"""Quantized activations, dropout and batch norm (``torch.ao.nn.quantized``): quantized
tensors in and out, computed as PyTorch's x86 kernels (see ``ao._qops``).

Example:
    >>> act = Hardswish(scale=0.05, zero_point=10)
    >>> y = act(mg.quantize_per_tensor(x, 0.1, 64, mg.quint8))
"""

from __future__ import annotations

import warnings

import numpy as np

from .... import dtypes as D
from ....creation import tensor, zeros
from ....nn import BatchNorm2d as _FloatBatchNorm2d
from ....nn import Module, Sequential
from ... import _qops
from ...qtensor import quantize_per_tensor
from ._state import QParamsOnlyState
from .modules import _observed_qparams


class ReLU6(Module):
    """``min(max(x, 0), 6)`` on the codes (the input's qparams)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def _get_name(self) -> str:
        return "QuantizedReLU6"

    def forward(self, x):
        return _qops.clamp(x, 0.0, 6.0)

    @classmethod
    def from_float(cls, mod: Module, use_precomputed_fake_quant: bool = False) -> ReLU6:
        return cls(getattr(mod, "inplace", False))


class _Requantizing(QParamsOnlyState, Module):
    """An activation whose output is requantized with its own ``scale`` / ``zero_point``."""

    _op = ""
    _f32 = True  # NOTE: PyTorch keeps the qparams in buffers: the output scale is float32

    def __init__(self, scale: float, zero_point: int, device=None, dtype=None):
        super().__init__()
        self.scale, self.zero_point = float(scale), int(zero_point)
        if self._f32:
            self.scale = float(np.float32(scale))

    def _get_name(self) -> str:
        return "Quantized" + type(self).__name__

    def forward(self, x):
        return _qops.unary(self._op, x, self.scale, self.zero_point, self._slope())

    def _slope(self) -> float:
        return 0.01

    def _save_qparams(self, destination, prefix: str) -> None:
        if self._f32:  # NOTE: float32 buffers in PyTorch; plain attributes (no entries) else
            super()._save_qparams(destination, prefix)

    def _load_qparams(self, state_dict, prefix, missing_keys, strict) -> None:
        if self._f32:
            super()._load_qparams(state_dict, prefix, missing_keys, strict)

    @classmethod
    def from_float(cls, mod: Module, use_precomputed_fake_quant: bool = False):
        scale, zero_point = _observed_qparams(mod, cls.__name__)
        return cls._from(mod, scale, zero_point)

    @classmethod
    def _from(cls, mod, scale, zero_point):
        return cls(scale, zero_point)


class Hardswish(_Requantizing):
    """``x * relu6(x + 3) / 6``, requantized."""

    _op = "hardswish"


class Sigmoid(_Requantizing):
    """``1 / (1 + exp(-x))``, requantized (PyTorch's fixed qparams: scale 1/256, zero point 0)."""

    _op = "sigmoid"
    _f32 = False

    def __init__(self, output_scale: float, output_zero_point: int):
        super().__init__(output_scale, output_zero_point)
        self.output_scale, self.output_zero_point = float(output_scale), int(output_zero_point)


class Softmax(Module):
    """Softmax of a quantized tensor along ``dim``, quantized with ``scale`` / ``zero_point``
    (PyTorch's kernel: the dequantized values' softmax, quantized)."""

    def __init__(self, dim=None, scale: float = 1.0, zero_point: int = 0):
        super().__init__()
        self.dim, self.scale, self.zero_point = dim, scale, zero_point

    def _get_name(self) -> str:
        return "QuantizedSoftmax"

    def extra_repr(self) -> str:
        return f"dim={self.dim}"

    def forward(self, input):
        import manygrad as mg

        from ...qtensor import quantize_per_tensor as quantize

        x = _qops.per_tensor(self._get_name(), input)
        dim = self.dim
        if dim is None:  # NOTE: PyTorch's legacy choice of dim
            dim = 0 if x.ndim in (0, 1, 3) else 1
        y = mg.softmax(x.dequantize(), dim)
        return quantize(y, float(self.scale), int(self.zero_point), x.dtype)

    @classmethod
    def from_float(cls, mod: Module, use_precomputed_fake_quant: bool = False) -> Softmax:
        scale, zero_point = mod.activation_post_process.calculate_qparams()
        return cls(mod.dim, float(scale), int(zero_point))


class LeakyReLU(_Requantizing):
    """``x > 0 ? x : negative_slope * x``, requantized."""

    _op = "leaky_relu"

    def __init__(self, scale: float, zero_point: int, negative_slope: float = 1e-2,
                 inplace: bool = False, device=None, dtype=None):  # fmt: skip
        super().__init__(scale, zero_point)
        self.negative_slope, self.inplace = negative_slope, inplace

    def _slope(self) -> float:
        return self.negative_slope

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"

    @classmethod
    def _from(cls, mod, scale, zero_point):
        return cls(scale, zero_point, mod.negative_slope, mod.inplace)


class ELU(_Requantizing):
    """``x > 0 ? x : alpha * (exp(x) - 1)``, requantized."""

    _op = "elu"
    _f32 = False

    def __init__(self, scale: float, zero_point: int, alpha: float = 1.0):
        super().__init__(scale, zero_point)
        self.alpha = alpha

    def _slope(self) -> float:
        return self.alpha

    @classmethod
    def _from(cls, mod, scale, zero_point):
        return cls(scale, zero_point, mod.alpha)


class PReLU(Module):
    """``x`` for x >= 0, ``weight * x`` otherwise, on the codes (``ao._qops.prelu``); the
    weight is a quint8 per-tensor quantized tensor of 1 or C values, requantized output."""

    def __init__(self, output_scale: float, output_zero_point: int, num_parameters: int = 1):
        super().__init__()
        self.num_parameters = num_parameters
        self.scale, self.zero_point = output_scale, output_zero_point
        self.set_weight(quantize_per_tensor(zeros(num_parameters), 1.0, 0, D.quint8))

    def set_weight(self, w) -> None:
        self.weight = w

    def _get_name(self) -> str:
        return "QuantizedPReLU"

    def forward(self, input):
        return _qops.prelu(input, self.weight, self.scale, self.zero_point)

    @classmethod
    def from_float(cls, mod: Module, use_precomputed_fake_quant: bool = False) -> PReLU:
        scale, zero_point = _observed_qparams(mod, "PReLU")
        q = cls(scale, zero_point, mod.num_parameters)
        w = mod.weight.detach().float()
        obs = mod.qconfig.weight()
        obs(w)
        if obs.dtype is not D.quint8:
            warnings.warn(f"PReLU's weight observer should have dtype quint8 but got "
                          f"{obs.dtype}", stacklevel=2)  # fmt: skip
        ws, wz = obs.calculate_qparams()
        q.set_weight(quantize_per_tensor(w, float(ws.reshape(-1)[0]), int(wz.reshape(-1)[0]),
                                         D.quint8))  # fmt: skip
        return q


class Dropout(Module):
    """Dropout of a quantized model: the identity (quantized models run in eval mode)."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        self.p, self.inplace = p, inplace

    def _get_name(self) -> str:
        return "QuantizedDropout"

    def forward(self, x):
        return x

    @classmethod
    def from_float(cls, mod: Module, use_precomputed_fake_quant: bool = False) -> Dropout:
        return cls(mod.p, mod.inplace)


class BatchNorm2d(_FloatBatchNorm2d):
    """Batch norm of quantized (N, C, H, W) tensors with the running statistics (eval mode),
    requantized with ``scale`` / ``zero_point`` buffers."""

    _ndim = 4
    _relu = False

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 device=None, dtype=None):  # fmt: skip
        super().__init__(num_features, eps, momentum)
        self.register_buffer("scale", tensor(1.0))
        self.register_buffer("zero_point", tensor(0))

    def _get_name(self) -> str:
        return "QuantizedBatchNorm2d"

    def forward(self, x):
        x = _qops.per_tensor(self._get_name(), x)
        if x.ndim != self._ndim:
            raise ValueError(f"{self._get_name()}: expected input of {self._ndim} dims (N, C, "
                             f"{'D, ' if self._ndim == 5 else ''}H, W), got shape "
                             f"{tuple(x.shape)}")  # fmt: skip
        return _qops.batch_norm(x, self.weight, self.bias, self.running_mean,
                                self.running_var, self.eps, float(self.scale),
                                int(self.zero_point), self._relu)  # fmt: skip

    @classmethod
    def from_float(cls, mod: Module, use_precomputed_fake_quant: bool = False) -> BatchNorm2d:
        obs = mod.activation_post_process
        scale, zero_point = obs.calculate_qparams()
        bn = mod[0] if isinstance(mod, Sequential) else mod  # NOTE: a fused BNReLU
        q = cls(bn.num_features, bn.eps)
        q.weight, q.bias = bn.weight, bn.bias
        q.running_mean, q.running_var = bn.running_mean, bn.running_var
        q.scale, q.zero_point = scale, zero_point
        return q


class BatchNorm3d(BatchNorm2d):
    """Batch norm of quantized (N, C, D, H, W) tensors (eval mode statistics)."""

    _ndim = 5

    def _get_name(self) -> str:
        return "QuantizedBatchNorm3d"


__all__ = ["BatchNorm2d", "BatchNorm3d", "Dropout", "ELU", "Hardswish", "LeakyReLU", "PReLU",
           "ReLU6", "Sigmoid", "Softmax"]  # fmt: skip
