"""Statically quantized modules (``torch.ao.nn.quantized``): quint8 activations in and out,
int8 weights, int32 accumulation and fbgemm's requantization (see ``ao._qmath``).

``convert`` makes them from float modules whose observers chose the qparams.

Example:
    >>> qlin = Linear.from_float(observed_linear)   # after prepare + calibration
    >>> y = qlin(mg.quantize_per_tensor(x, 0.05, 64, mg.quint8))
"""

from __future__ import annotations

from .... import dtypes as D
from ....creation import zeros
from ....nn import Module
from ....tensor import Tensor
from ... import _qmath
from ...qtensor import (
    QTensor,
    _make,
    per_channel_affine,
    per_channel_affine_float_qparams,
    per_channel_symmetric,
    quantize_per_channel,
    quantize_per_tensor,
)
from ._state import LinearPackedParams, PackedLinearState, WeightBiasState


def _observed_qparams(mod: Module, name: str) -> tuple[float, int]:
    obs = getattr(mod, "activation_post_process", None)
    if obs is None:
        raise RuntimeError(
            f"{name}.from_float: the float module has no activation_post_process; run "
            "torch.ao.quantization.prepare(model) and a calibration pass before convert"
        )
    scale, zero_point = obs.calculate_qparams()
    return float(scale.reshape(-1)[0]), int(zero_point.reshape(-1)[0])


def _observed_float(mod: Module, name: str, use_precomputed_fake_quant: bool = False):
    """``(float layer, weight observer that has seen its weight, scale, zero_point)`` of an
    observed (or fused, or QAT) float module being converted.

    A QAT module's own ``weight_fake_quant`` sees the final weight once more (as PyTorch's
    convert does), after a QAT ConvBn / LinearBn has its batch norm folded into its weight
    and bias for good."""
    base = mod[0] if _is_fused(mod) else mod
    wpp = getattr(mod, "weight_fake_quant", None)
    if wpp is None:
        wpp = mod.qconfig.weight()
        wpp(base.weight)
    else:
        from ....nn.utils.fusion import fuse_conv_bn_weights, fuse_linear_bn_weights
        from ..intrinsic.qat import LinearBn1d, _BnFolded

        if isinstance(mod, _BnFolded):
            bn = mod.bn
            fuse = fuse_linear_bn_weights if isinstance(mod, LinearBn1d) else fuse_conv_bn_weights
            mod.weight, mod.bias = fuse(mod.weight, mod.bias, bn.running_mean, bn.running_var,
                                        bn.eps, bn.weight, bn.bias)  # fmt: skip
        if not use_precomputed_fake_quant:
            wpp(mod.weight)
    scale, zero_point = _observed_qparams(mod, name)
    return base, wpp, scale, zero_point


def quantize_weight(weight: Tensor, observer) -> QTensor:
    """``weight`` quantized with the qparams ``observer`` (already run on it) chose."""
    scale, zero_point = observer.calculate_qparams()
    w = weight.detach().float()
    if observer.qscheme is per_channel_affine_float_qparams:  # NOTE: float zero points
        return quantize_per_channel(w, scale.float(), zero_point.float(),
                                    getattr(observer, "ch_axis", 0), observer.dtype)  # fmt: skip
    if observer.qscheme in (per_channel_affine, per_channel_symmetric):
        return quantize_per_channel(w, scale.double(), zero_point.long(),
                                    getattr(observer, "ch_axis", 0), observer.dtype)  # fmt: skip
    return quantize_per_tensor(w, float(scale), int(zero_point), observer.dtype)


def weight_qparams(w: QTensor, shape):
    """Codes minus zero points (int64) and the float32 scales of a quantized weight."""
    codes = w._data.astype("int64")
    if w._axis is None:
        return codes - w._zp, _qmath._F32(w._scale)
    return codes - w._zp.reshape(shape), w._scale.astype("float32")


def _check_input(name: str, x) -> QTensor:
    if not isinstance(x, QTensor) or x._axis is not None or x.dtype is not D.quint8:
        got = x.dtype if isinstance(x, Tensor) else type(x).__name__
        raise RuntimeError(
            f"{name}: expected a per-tensor quint8 quantized input, got {got}; put a "
            "QuantStub (or torch.quantize_per_tensor) in front of it"
        )
    return x


class Quantize(Module):
    """float -> quint8/qint8 with fixed ``scale`` and ``zero_point`` (from a QuantStub)."""

    def __init__(self, scale, zero_point, dtype, factory_kwargs=None):
        super().__init__()
        self.register_buffer("scale", Tensor._wrap(_as1(scale, "float32")))
        self.register_buffer("zero_point", Tensor._wrap(_as1(zero_point, "int64")))
        self.dtype = dtype

    def forward(self, x: Tensor) -> QTensor:
        return quantize_per_tensor(x, float(self.scale), int(self.zero_point), self.dtype)

    @classmethod
    def from_float(cls, mod: Module, use_precomputed_fake_quant: bool = False) -> Quantize:
        obs = getattr(mod, "activation_post_process", None)
        if obs is None:
            raise RuntimeError("Quantize.from_float: the QuantStub has no observer; run prepare")
        scale, zero_point = obs.calculate_qparams()
        return cls(float(scale), int(zero_point), obs.dtype)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, zero_point={self.zero_point}, dtype={self.dtype}"


def _as1(v, dt):
    import numpy as np

    return np.array([float(v) if dt == "float32" else int(v)], dtype=dt)


class DeQuantize(Module):
    """quantized -> float32."""

    def forward(self, xq):
        return xq.dequantize()

    @classmethod
    def from_float(cls, mod: Module, use_precomputed_fake_quant: bool = False) -> DeQuantize:
        return cls()


class Linear(PackedLinearState, Module):
    """``y = x W^T + b`` on quantized tensors: quint8 ``x``, int8 ``W`` (per tensor or per
    channel), float ``b``; the output is quint8 with this module's ``scale``/``zero_point``."""

    _FLOAT = "Linear"
    _relu = False
    _version = 3

    def __init__(self, in_features: int, out_features: int, bias_: bool = True,
                 dtype=D.qint8):  # fmt: skip
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._packed_params = LinearPackedParams(dtype)
        w = quantize_per_tensor(zeros(out_features, in_features), 1.0, 0, dtype)
        self.set_weight_bias(w, zeros(out_features) if bias_ else None)
        self.scale, self.zero_point = 1.0, 0

    def _get_name(self) -> str:
        return "Quantized" + type(self).__name__

    def weight(self) -> QTensor:
        return self._packed_params._weight

    def bias(self) -> Tensor | None:
        return self._packed_params._bias

    def set_weight_bias(self, w: QTensor, b: Tensor | None) -> None:
        self._packed_params.set_weight_bias(w, b)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, scale="
                f"{self.scale}, zero_point={self.zero_point}, qscheme={self.weight().qscheme()}")  # fmt: skip

    def forward(self, x: QTensor) -> QTensor:
        x = _check_input(self._get_name(), x)
        a = x._data.reshape(-1, self.in_features).astype("int64") - x._zp
        w, ws = weight_qparams(self.weight(), (-1, 1))
        acc = _qmath.int_matmul(a, w)
        b = None if self.bias() is None else self.bias()._data
        codes = _qmath.requantize(acc, x._scale, ws, b, self.scale, self.zero_point, D.quint8,
                                  self._relu, (1, -1))  # fmt: skip
        codes = codes.reshape(*x.shape[:-1], self.out_features)
        return _make(codes, D.quint8, self.scale, self.zero_point, None, x._device)

    @classmethod
    def from_float(cls, mod: Module, use_precomputed_fake_quant: bool = False):
        lin, wpp, scale, zero_point = _observed_float(mod, cls.__name__, use_precomputed_fake_quant)
        q = cls(lin.in_features, lin.out_features, lin.bias is not None)
        q.set_weight_bias(quantize_weight(lin.weight, wpp), lin.bias)
        q.scale, q.zero_point = scale, zero_point
        return q


def _channels_last(q: QTensor) -> QTensor:
    """Mark a quantized convolution's output as PyTorch's x86 kernels lay it out (channels
    last): ops whose rounding depends on the layout (``mean``) read the mark."""
    q._channels_last = True
    return q


def _is_fused(mod: Module) -> bool:
    from ..intrinsic import _FusedModule

    return isinstance(mod, _FusedModule)


class Conv2d(WeightBiasState, Module):
    """2-d convolution on quantized tensors (quint8 in and out, int8 weight, float bias)."""

    _relu = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", dtype=D.qint8):  # fmt: skip
        super().__init__()
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
        if padding_mode != "zeros":
            raise NotImplementedError(
                f"quantized Conv2d: padding_mode {padding_mode!r} is not supported by manygrad; "
                "use 'zeros'"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = pair(kernel_size), pair(stride)
        self.padding, self.dilation = pair(padding), pair(dilation)
        self.padding_mode = padding_mode
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        w = quantize_per_tensor(zeros(*shape), 1.0, 0, dtype)
        self.set_weight_bias(w, zeros(out_channels) if bias else None)
        self.scale, self.zero_point = 1.0, 0

    _get_name = Linear._get_name

    def weight(self) -> QTensor:
        return self._weight

    def bias(self) -> Tensor | None:
        return self._bias

    def set_weight_bias(self, w: QTensor, b: Tensor | None) -> None:
        self._weight, self._bias = w, (None if b is None else b.detach().float())

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}, scale={self.scale}, zero_point={self.zero_point}")  # fmt: skip
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self._bias is not None else ", bias=False")

    def forward(self, x: QTensor) -> QTensor:
        x = _check_input(self._get_name(), x)
        if x.ndim != 4:
            raise ValueError(f"{self._get_name()}: input shape must be (N, C, H, W), got "
                             f"{tuple(x.shape)}")  # fmt: skip
        return self._conv(x, x._data, self._weight, self.stride, self.padding, self.dilation)

    def _conv(self, x: QTensor, codes, weight: QTensor, stride, padding, dilation) -> QTensor:
        from ....ops import conv2d

        w, ws = weight_qparams(weight, (-1,) + (1,) * (weight.ndim - 1))
        dev = x._device
        a = Tensor._wrap((codes.astype("int64") - x._zp).astype("float64"), dev)
        # NOTE: int8 x uint8 products summed in float64 are exact (the int32 accumulator)
        acc = conv2d(a, Tensor._wrap(w.reshape(w.shape[0], w.shape[1], -1, w.shape[-1])
                                     .astype("float64"), dev), None, stride, padding,
                     dilation, self.groups)._data  # fmt: skip
        b = None if self._bias is None else self._bias._data
        codes = _qmath.requantize(acc, x._scale, ws, b, self.scale, self.zero_point, D.quint8,
                                  self._relu, (1, -1, 1, 1))  # fmt: skip
        return _channels_last(_make(codes, D.quint8, self.scale, self.zero_point, None, dev))

    @classmethod
    def from_float(cls, mod: Module, use_precomputed_fake_quant: bool = False):
        conv, wpp, scale, zero_point = _observed_float(
            mod, cls.__name__, use_precomputed_fake_quant
        )
        q = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                conv.padding, conv.dilation, conv.groups, conv.bias is not None,
                conv.padding_mode)  # fmt: skip
        q.set_weight_bias(quantize_weight(conv.weight, wpp), conv.bias)
        q.scale, q.zero_point = scale, zero_point
        return q


class Conv1d(Conv2d):
    """1-d convolution on quantized (N, C, L) tensors, run as a (N, C, 1, L) Conv2d."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", dtype=D.qint8):  # fmt: skip
        one = lambda v: (v,) if isinstance(v, int) else tuple(v)  # noqa: E731
        super().__init__(in_channels, out_channels, (1, *one(kernel_size)), 1, 0, 1, groups,
                         bias, padding_mode, dtype)  # fmt: skip
        self.kernel_size, self.stride = one(kernel_size), one(stride)
        self.padding, self.dilation = one(padding), one(dilation)
        w = quantize_per_tensor(zeros(out_channels, in_channels // groups, *self.kernel_size),
                                1.0, 0, dtype)  # fmt: skip
        self.set_weight_bias(w, self._bias)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s.replace(", padding=(0,)", "").replace(", dilation=(1,)", "")

    def forward(self, x: QTensor) -> QTensor:
        x = _check_input(self._get_name(), x)
        if x.ndim != 3:
            raise ValueError(f"{self._get_name()}: input shape must be (N, C, L), got "
                             f"{tuple(x.shape)}")  # fmt: skip
        n, c, length = x.shape
        y = self._conv(x, x._data.reshape(n, c, 1, length), self._weight, (1, *self.stride),
                       (0, *self.padding), (1, *self.dilation))  # fmt: skip
        return y.reshape(y.shape[0], y.shape[1], y.shape[3])
