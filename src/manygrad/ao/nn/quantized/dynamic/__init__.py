"""``torch.ao.nn.quantized.dynamic``: modules with int8 weights whose float inputs are
quantized per batch (the activation's scale and zero point come from its min and max).

Numerics as fbgemm's dynamic linear: the input quantized to quint8 over ``[min(x, 0),
max(x, 0)]`` with ``reduce_range`` (codes 0..127), int32 accumulation, and the float
output ``acc * (s_x * s_w) + bias`` rounded once.

Example:
    >>> qlin = Linear.from_float(float_linear_with_qconfig)
    >>> y = qlin(mg.randn(8, 16))   # float32 in, float32 out
"""

from __future__ import annotations

from ..... import dtypes as D
from .....nn import Module
from .....tensor import Tensor
from .... import _qmath
from .. import modules as _static
from ..modules import quantize_weight, weight_qparams


class Linear(_static.Linear):
    """Dynamically quantized ``nn.Linear``: int8 weight, float32 in and out."""

    _version = 4

    def __init__(self, in_features: int, out_features: int, bias_: bool = True,
                 dtype=D.qint8):  # fmt: skip
        if dtype is not D.qint8:
            raise NotImplementedError(
                f"dynamic Linear: dtype {dtype} is not supported by manygrad; use torch.qint8"
            )
        super().__init__(in_features, out_features, bias_, dtype)
        self.version = 4

    def _get_name(self) -> str:
        return "DynamicQuantizedLinear"

    def extra_repr(self) -> str:
        w = self.weight()
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"dtype={w.dtype}, qscheme={w.qscheme()}")  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or not x.is_floating_point() or x.is_quantized:
            raise TypeError(f"DynamicQuantizedLinear: expected a float input, got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")  # fmt: skip
        if x.shape[-1] != self.in_features:
            raise ValueError(f"DynamicQuantizedLinear: input's last dim must be "
                             f"{self.in_features}, got shape {tuple(x.shape)}")  # fmt: skip
        a = x.detach().float()._data.reshape(-1, self.in_features)
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        s, z = _qmath.choose_qparams(lo, hi, 0, 255, reduce_range=True)
        codes = _qmath.quantize(a, s, z, D.quint8).astype("int64") - z
        w, ws = weight_qparams(self.weight(), (-1, 1))
        acc = _qmath.int_matmul(codes, w)
        b = None if self.bias() is None else self.bias()._data
        out = _qmath.float_output(acc, s, ws, b).reshape(*x.shape[:-1], self.out_features)
        return Tensor._wrap(out, x._device).to(x.dtype)

    @classmethod
    def from_float(cls, mod: Module, use_precomputed_fake_quant: bool = False) -> Linear:
        lin = mod[0] if hasattr(mod, "__getitem__") else mod
        qconfig = getattr(mod, "qconfig", None)
        if qconfig is None:
            from ....quantization.qconfig import default_dynamic_qconfig as qconfig
        wpp = qconfig.weight()
        if wpp.dtype is not D.qint8:
            raise NotImplementedError(
                f"dynamic Linear: weight dtype {wpp.dtype} is not supported by manygrad; use "
                "torch.qint8"
            )
        wpp(lin.weight)
        q = cls(lin.in_features, lin.out_features, lin.bias is not None)
        q.set_weight_bias(quantize_weight(lin.weight, wpp), lin.bias)
        return q


__all__ = ["Linear"]
