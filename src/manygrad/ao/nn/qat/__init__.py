"""``torch.ao.nn.qat``: float layers for quantization-aware training, whose weight passes
through ``qconfig.weight()`` (a FakeQuantize) on every forward; ``prepare_qat`` swaps them in
and ``convert`` turns them into quantized modules."""

from __future__ import annotations

from .... import nn
from ....nn import functional as F


def _from_float(cls, mod, fused: bool):
    base = mod[0] if fused else mod
    qconfig = getattr(mod, "qconfig", None)
    if qconfig is None:
        raise RuntimeError(f"{cls.__name__}.from_float: the module has no qconfig; set "
                           "model.qconfig before prepare_qat")  # fmt: skip
    q = cls._blank(base, qconfig)
    q.weight, q.bias = base.weight, base.bias
    return q


def _set_qconfig(mod, qconfig) -> None:
    if qconfig is None:
        raise ValueError(f"{type(mod).__name__}: qconfig must be given")
    mod.qconfig = qconfig
    mod.weight_fake_quant = qconfig.weight()


class Linear(nn.Linear):
    """``nn.Linear`` whose weight is fake-quantized (``weight_fake_quant``)."""

    _FUSED = False

    def __init__(self, in_features, out_features, bias=True, qconfig=None):
        super().__init__(in_features, out_features, bias)
        _set_qconfig(self, qconfig)

    @classmethod
    def _blank(cls, base, qconfig):
        return cls(base.in_features, base.out_features, base.bias is not None, qconfig=qconfig)

    def forward(self, x):
        y = F.linear(x, self.weight_fake_quant(self.weight), self.bias)
        return F.relu(y) if self._FUSED else y

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        return _from_float(cls, mod, cls._FUSED)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` whose weight is fake-quantized (``weight_fake_quant``)."""

    _FUSED = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", qconfig=None):  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode)  # fmt: skip
        _set_qconfig(self, qconfig)

    @classmethod
    def _blank(cls, b, qconfig):
        return cls(b.in_channels, b.out_channels, b.kernel_size, b.stride, b.padding,
                   b.dilation, b.groups, b.bias is not None, b.padding_mode, qconfig=qconfig)  # fmt: skip

    def forward(self, x):
        x, pad = self._padded(x)
        w = self.weight_fake_quant(self.weight)
        y = F.conv2d(x, w, self.bias, self.stride, pad, self.dilation, self.groups)
        return F.relu(y) if self._FUSED else y

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        return _from_float(cls, mod, cls._FUSED)


__all__ = ["Conv2d", "Linear"]
