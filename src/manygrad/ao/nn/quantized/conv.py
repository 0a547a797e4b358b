"""Quantized ``Conv3d`` and ``ConvTranspose1d/2d/3d`` (``torch.ao.nn.quantized``):
quint8 activations in and out, int8 weights (per tensor or per channel for ``Conv3d``, per
tensor for the transposed ones, as PyTorch's x86 engine), float bias; exact int32 sums of
the codes and fbgemm's requantization (``ao._qmath.requantize``), as ``Conv2d``.

Example:
    >>> qconv = ConvTranspose2d.from_float(observed_conv_transpose)   # after prepare + calibration
    >>> y = qconv(mg.quantize_per_tensor(x, 0.05, 64, mg.quint8))
"""

from __future__ import annotations

from .... import dtypes as D
from ....creation import zeros
from ....tensor import Tensor
from ... import _qmath
from ...qtensor import (
    QTensor,
    _make,
    per_channel_affine,
    per_channel_symmetric,
    quantize_per_tensor,
)
from .modules import (
    Conv2d,
    _channels_last,
    _check_input,
    _observed_float,
    quantize_weight,
    weight_qparams,
)


def _tuple(v, n: int) -> tuple:
    return (v,) * n if isinstance(v, int) else tuple(v)


class _ConvNd(Conv2d):
    """Shared init, repr and requantization of the n-d quantized convolutions."""

    _dims = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", output_padding=0,
                 dtype=D.qint8):  # fmt: skip
        if padding_mode != "zeros":
            raise NotImplementedError(
                f"quantized {type(self).__name__}: padding_mode {padding_mode!r} is not "
                "supported by manygrad; use 'zeros'"
            )
        n = self._dims
        super().__init__(in_channels, out_channels, 1, bias=bias, groups=groups)
        self.kernel_size, self.stride = _tuple(kernel_size, n), _tuple(stride, n)
        self.padding, self.dilation = _tuple(padding, n), _tuple(dilation, n)
        self.output_padding = _tuple(output_padding, n)
        self.transposed = self._transposed
        shape = ((in_channels, out_channels // groups) if self._transposed else
                 (out_channels, in_channels // groups)) + self.kernel_size  # fmt: skip
        w = quantize_per_tensor(zeros(*shape), 1.0, 0, dtype)
        self.set_weight_bias(w, zeros(out_channels) if bias else None)

    def extra_repr(self) -> str:
        n = self._dims
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}, scale={self.scale}, zero_point={self.zero_point}")  # fmt: skip
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self._transposed and self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self._bias is not None else ", bias=False")

    def _input(self, x) -> QTensor:
        x = _check_input(self._get_name(), x)
        if x.ndim != self._dims + 2:
            raise ValueError(f"{self._get_name()}: input must have {self._dims + 2} dims (N, C, "
                             f"...), got shape {tuple(x.shape)}")  # fmt: skip
        if x.shape[1] != self.in_channels:
            raise ValueError(f"{self._get_name()}: expected {self.in_channels} input channels, "
                             f"got shape {tuple(x.shape)}")  # fmt: skip
        return x

    def _requantize(self, x: QTensor, acc, ws) -> QTensor:
        b = None if self._bias is None else self._bias._data
        shape = (1, -1) + (1,) * self._dims
        codes = _qmath.requantize(acc, x._scale, ws, b, self.scale, self.zero_point, D.quint8,
                                  self._relu, shape)  # fmt: skip
        return _channels_last(_make(codes, D.quint8, self.scale, self.zero_point, None,
                                    x._device))  # fmt: skip

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        conv, wpp, scale, zero_point = _observed_float(
            mod, cls.__name__, use_precomputed_fake_quant
        )
        if cls._transposed and wpp.qscheme in (per_channel_affine, per_channel_symmetric):
            raise RuntimeError(f"Per channel weight observer is not supported yet for "
                               f"{cls.__name__}; use a per-tensor weight observer (e.g. "
                               "torch.ao.quantization.default_qconfig)")  # fmt: skip
        kw = {"output_padding": conv.output_padding} if cls._transposed else {}
        q = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                conv.padding, dilation=conv.dilation, groups=conv.groups,
                bias=conv.bias is not None, **kw)  # fmt: skip
        q.set_weight_bias(quantize_weight(conv.weight, wpp), conv.bias)
        q.scale, q.zero_point = scale, zero_point
        return q


class Conv3d(_ConvNd):
    """3-d convolution on quantized (N, C, D, H, W) tensors."""

    _dims = 3

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None):  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode)  # fmt: skip

    def forward(self, x: QTensor) -> QTensor:
        from ....nn import functional as F

        x = self._input(x)
        w, ws = weight_qparams(self._weight, (-1, 1, 1, 1, 1))
        dev = x._device
        a = Tensor._wrap((x._data.astype("int64") - x._zp).astype("float64"), dev)
        # NOTE: int8 x uint8 products summed in float64 are exact (the int32 accumulator)
        acc = F.conv3d(a, Tensor._wrap(w.astype("float64"), dev), None, self.stride,
                       self.padding, self.dilation, self.groups)._data  # fmt: skip
        return self._requantize(x, acc, ws)


class ConvTranspose2d(_ConvNd):
    """Transposed 2-d convolution on quantized (N, C, H, W) tensors (per-tensor weight of
    shape (in_channels, out_channels // groups, kH, kW))."""

    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding)  # fmt: skip

    def forward(self, x: QTensor, output_size=None) -> QTensor:
        from ....nn import functional as F

        x = self._input(x)
        if output_size is not None:
            raise NotImplementedError(f"{self._get_name()}: output_size is not supported "
                                      "(as in PyTorch); set output_padding instead")  # fmt: skip
        w, ws = self._weight_codes()
        dev, n = x._device, self._dims
        a = Tensor._wrap((x._data.astype("int64") - x._zp).astype("float64"), dev)
        if n == 1:
            a = a.unsqueeze(2)
            w = w[:, :, None]
        one = lambda t, v: (v, *t) if n == 1 else t  # noqa: E731
        fn = F.conv_transpose3d if n == 3 else F.conv_transpose2d
        acc = fn(a, Tensor._wrap(w.astype("float64"), dev), None, one(self.stride, 1),
                 one(self.padding, 0), one(self.output_padding, 0), self.groups,
                 one(self.dilation, 1))._data  # fmt: skip
        if n == 1:
            acc = acc[:, :, 0]
        return self._requantize(x, acc, ws)

    def _weight_codes(self):
        w = self._weight
        if w._axis is not None:
            raise RuntimeError(f"{self._get_name()}: per-channel weights are not supported for "
                               "transposed convolutions (as in PyTorch's x86 engine)")  # fmt: skip
        return weight_qparams(w, None)


class ConvTranspose1d(ConvTranspose2d):
    """Transposed 1-d convolution on quantized (N, C, L) tensors."""

    _dims = 1


class ConvTranspose3d(ConvTranspose2d):
    """Transposed 3-d convolution on quantized (N, C, D, H, W) tensors."""

    _dims = 3


__all__ = ["Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]
