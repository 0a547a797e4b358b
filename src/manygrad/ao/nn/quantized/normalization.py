"""Quantized ``LayerNorm``, ``GroupNorm`` and ``InstanceNorm1d/2d/3d``
(``torch.ao.nn.quantized``): quantized tensors in and out, output requantized with the
module's ``scale`` / ``zero_point`` buffers; codes identical to PyTorch's kernel
(``ao._qops.normalize``: statistics from integer sums of the codes, float32 arithmetic).

Example:
    >>> ln = LayerNorm([16], weight, bias, scale=0.05, zero_point=128)
    >>> y = ln(mg.quantize_per_tensor(x, 0.1, 64, mg.quint8))
"""

from __future__ import annotations

import math

from .... import nn
from ....creation import tensor
from ... import _qops


def _qparams(mod, scale, zero_point) -> None:
    mod.register_buffer("scale", tensor(float(scale)))
    mod.register_buffer("zero_point", tensor(int(zero_point)))


def _raw(t):
    return None if t is None else t.detach()._data


def _observed(mod):
    obs = getattr(mod, "activation_post_process", None)
    if obs is None:
        raise RuntimeError(
            f"{type(mod).__name__}.from_float: the float module has no "
            "activation_post_process; run torch.ao.quantization.prepare(model) and a "
            "calibration pass before convert"
        )
    scale, zero_point = obs.calculate_qparams()
    return float(scale.reshape(-1)[0]), int(zero_point.reshape(-1)[0])


class LayerNorm(nn.LayerNorm):
    """Layer norm of a quantized tensor over its last ``len(normalized_shape)`` dims."""

    def __init__(self, normalized_shape, weight, bias, scale, zero_point, eps: float = 1e-5,
                 elementwise_affine: bool = True, device=None, dtype=None):  # fmt: skip
        super().__init__(normalized_shape, eps=eps, elementwise_affine=elementwise_affine)
        self.weight, self.bias = weight, bias
        _qparams(self, scale, zero_point)

    def _get_name(self) -> str:
        return "QuantizedLayerNorm"

    def forward(self, input):
        x = _qops.per_tensor(self._get_name(), input)
        k = len(self.normalized_shape)
        if tuple(x.shape[x.ndim - k :]) != tuple(self.normalized_shape):
            raise ValueError(f"{self._get_name()}: the input's last dims {tuple(x.shape)} do "
                             f"not match normalized_shape {tuple(self.normalized_shape)}")  # fmt: skip
        rows = math.prod(x.shape[: x.ndim - k])
        return _qops.normalize(x, _raw(self.weight), _raw(self.bias), rows, self.eps,
                               float(self.scale), int(self.zero_point))  # fmt: skip

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        scale, zero_point = _observed(mod)
        return cls(mod.normalized_shape, mod.weight, mod.bias, scale, zero_point, mod.eps,
                   mod.elementwise_affine)  # fmt: skip


class GroupNorm(nn.GroupNorm):
    """Group norm of a quantized (N, C, ...) tensor, per-channel ``weight`` / ``bias``."""

    def __init__(self, num_groups: int, num_channels: int, weight, bias, scale, zero_point,
                 eps: float = 1e-5, affine: bool = True, device=None, dtype=None):  # fmt: skip
        super().__init__(num_groups, num_channels, eps, affine)
        self.weight, self.bias = weight, bias
        _qparams(self, scale, zero_point)

    def _get_name(self) -> str:
        return "QuantizedGroupNorm"

    def forward(self, input):
        x = _qops.per_tensor(self._get_name(), input)
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"{self._get_name()}: expected input of shape (N, "
                             f"{self.num_channels}, ...), got {tuple(x.shape)}")  # fmt: skip
        return _qops.normalize(x, _raw(self.weight), _raw(self.bias),
                               x.shape[0] * self.num_groups, self.eps, float(self.scale),
                               int(self.zero_point), channels=self.num_channels)  # fmt: skip

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        scale, zero_point = _observed(mod)
        return cls(mod.num_groups, mod.num_channels, mod.weight, mod.bias, scale, zero_point,
                   mod.eps, mod.affine)  # fmt: skip


def _instance_norm(base, dims: int):
    class InstanceNorm(base):
        __doc__ = f"Instance norm of a quantized (N, C, {'L' if dims == 1 else '...'}) tensor."

        def __init__(self, num_features: int, weight, bias, scale, zero_point,
                     eps: float = 1e-5, momentum: float = 0.1, affine: bool = False,
                     track_running_stats: bool = False, device=None, dtype=None):  # fmt: skip
            super().__init__(num_features, eps, momentum, affine, track_running_stats)
            self.weight, self.bias = weight, bias
            _qparams(self, scale, zero_point)

        def _get_name(self) -> str:
            return f"QuantizedInstanceNorm{dims}d"

        def forward(self, input):
            x = _qops.per_tensor(self._get_name(), input)
            if x.ndim != dims + 2 or x.shape[1] != self.num_features:
                raise ValueError(f"{self._get_name()}: expected input of shape (N, "
                                 f"{self.num_features}, ...) with {dims + 2} dims, got "
                                 f"{tuple(x.shape)}")  # fmt: skip
            c = self.num_features
            return _qops.normalize(x, _raw(self.weight), _raw(self.bias), x.shape[0] * c,
                                   self.eps, float(self.scale), int(self.zero_point),
                                   channels=c)  # fmt: skip

        @classmethod
        def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
            scale, zero_point = _observed(mod)
            return cls(mod.num_features, mod.weight, mod.bias, scale, zero_point, mod.eps,
                       mod.affine)  # fmt: skip

    name = f"InstanceNorm{dims}d"
    InstanceNorm.__name__ = InstanceNorm.__qualname__ = name
    return InstanceNorm


InstanceNorm1d = _instance_norm(nn.InstanceNorm1d, 1)
InstanceNorm2d = _instance_norm(nn.InstanceNorm2d, 2)
InstanceNorm3d = _instance_norm(nn.InstanceNorm3d, 3)

__all__ = ["GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LayerNorm"]
