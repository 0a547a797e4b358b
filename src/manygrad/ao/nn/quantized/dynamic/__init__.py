"""``torch.ao.nn.quantized.dynamic``: modules with int8 weights whose float inputs are
quantized per batch (the activation's scale and zero point come from its min and max).

Numerics as fbgemm's dynamic linear: the input quantized to quint8 over ``[min(x, 0),
max(x, 0)]`` with ``reduce_range`` (codes 0..127), int32 accumulation, and the float
output ``acc * (s_x * s_w) + bias`` rounded once. With ``dtype=torch.float16`` the weight is
rounded to float16 (clamped to +-65504) and the product runs in float32, the bias added
after it, as fbgemm's float16 GEMM (its float32 sums in another order: outputs agree with
PyTorch's to float32 rounding, not bit for bit).

LSTM, GRU and the cells are in ``.rnn``.

Example:
    >>> qlin = Linear.from_float(float_linear_with_qconfig)
    >>> y = qlin(mg.randn(8, 16))   # float32 in, float32 out
"""

from __future__ import annotations

from ..... import backend
from ..... import dtypes as D
from .....creation import zeros
from .....nn import Module
from .....tensor import Tensor
from .... import _qmath
from ....qtensor import QTensor
from .. import modules as _static
from .._state import LinearPackedParams
from ..modules import quantize_weight, weight_qparams


def linear(a, weight, bias):
    """``a @ weight^T + bias`` of a 2-d float32 array, as the dynamic ``Linear`` computes it:
    ``weight`` a qint8 QTensor (the input quantized per call) or a float16-valued float32
    tensor; ``bias`` a float array or None. Returns a float32 array."""
    if not isinstance(weight, QTensor):
        xp = backend.array_module(a)
        out = xp.matmul(a.astype(xp.float32), weight._data.T)
        return out if bias is None else (out + bias.astype(xp.float32)).astype(xp.float32)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    s, z = _qmath.choose_qparams(lo, hi, 0, 255, reduce_range=True)
    codes = _qmath.quantize(a, s, z, D.quint8).astype("int64") - z
    w, ws = weight_qparams(weight, (-1, 1))
    return _qmath.float_output(_qmath.int_matmul(codes, w), s, ws, bias)


def _check_dtype(what: str, dtype) -> None:
    if dtype not in (D.qint8, D.float16):
        raise NotImplementedError(
            f"{what}: dtype {dtype} is not supported; use torch.qint8 or torch.float16"
        )


class Linear(_static.Linear):
    """Dynamically quantized ``nn.Linear``: int8 (or float16) weight, float32 in and out."""

    _version = 4

    def __init__(self, in_features: int, out_features: int, bias_: bool = True,
                 dtype=D.qint8):  # fmt: skip
        _check_dtype("dynamic Linear", dtype)
        super().__init__(in_features, out_features, bias_, D.qint8)
        if dtype is D.float16:
            self._packed_params = LinearPackedParams(D.float16)
            self.set_weight_bias(zeros(out_features, in_features),
                                 zeros(out_features) if bias_ else None)  # fmt: skip
        self.version = 4

    def _get_name(self) -> str:
        return "DynamicQuantizedLinear"

    def extra_repr(self) -> str:
        w = self.weight()
        s = f"in_features={self.in_features}, out_features={self.out_features}, "
        if self._packed_params.dtype is D.float16:
            return s + f"dtype={D.float16}"
        return s + f"dtype={w.dtype}, qscheme={w.qscheme()}"

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or not x.is_floating_point() or x.is_quantized:
            raise TypeError(f"DynamicQuantizedLinear: expected a float input, got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")  # fmt: skip
        if x.shape[-1] != self.in_features:
            raise ValueError(f"DynamicQuantizedLinear: input's last dim must be "
                             f"{self.in_features}, got shape {tuple(x.shape)}")  # fmt: skip
        a = x.detach().float()._data.reshape(-1, self.in_features)
        b = None if self.bias() is None else self.bias()._data
        out = linear(a, self.weight(), b).reshape(*x.shape[:-1], self.out_features)
        return Tensor._wrap(out, x._device).to(x.dtype)

    @classmethod
    def from_float(cls, mod: Module, use_precomputed_fake_quant: bool = False) -> Linear:
        lin = mod[0] if hasattr(mod, "__getitem__") else mod
        qconfig = getattr(mod, "qconfig", None)
        if qconfig is None:
            from ....quantization.qconfig import default_dynamic_qconfig as qconfig
        wpp = qconfig.weight()
        _check_dtype("dynamic Linear", wpp.dtype)
        q = cls(lin.in_features, lin.out_features, lin.bias is not None, wpp.dtype)
        if wpp.dtype is D.float16:
            q.set_weight_bias(lin.weight.detach().float(), lin.bias)
            return q
        wpp(lin.weight)
        q.set_weight_bias(quantize_weight(lin.weight, wpp), lin.bias)
        return q


from .rnn import GRU, LSTM, GRUCell, LSTMCell, RNNCell  # noqa: E402 - they use linear

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "Linear", "RNNCell"]
