"""What an op does when given a quantized tensor (``Function.apply`` sends it here).

PyTorch runs a few ops on quantized tensors and refuses the rest. Here, as its x86 kernels
(bit for bit, see ``ao._qops``):

- ``relu``, ``clamp`` / ``clip``, ``hardtanh``, ``relu6`` (codes clipped at the codes of
  the bounds; the input's qparams);
- ``sigmoid``, ``hardsigmoid`` (output scale 1/256, zero point 0, -128 for qint8) and
  ``tanh`` (2/256, zero point 128 for quint8, 0 for qint8), PyTorch's fixed qparams;
- ``leaky_relu``, ``gelu`` (the input's qparams), ``adaptive_avg_pool2d``, ``cat`` (to the
  first input's qparams);
- the ops that only move or pick values (reshape, permute, indexing, flip, max pooling,
  ...), which keep the input's quantization parameters.

Every other op raises ``NotImplementedError`` with the way out (``hardswish`` and ``elu``, as
in PyTorch, need output qparams: ``torch.ao.nn.quantized.functional.hardswish(x, scale,
zero_point)``). Float inputs reach the ops here uncast (``ops.elementwise._float_input``
passes quantized tensors through, and ``clamp`` / ``hardtanh`` keep float bounds for them).
"""

from __future__ import annotations

from ..tensor import Tensor
from .qtensor import QTensor

# Functions whose outputs are some of their input's values, moved or picked
_PICKING = {"Reshape", "Permute", "Expand", "MaxPool", "Slice", "Index", "IndexSelect", "Flip",
            "Gather", "Diagonal"}  # fmt: skip


def run(cls, args, kwargs):
    name = getattr(cls, "op_name", cls.__name__)
    qs = [a for a in args if isinstance(a, QTensor)]
    q = qs[0]
    if name == "Relu":
        return q.relu()
    ops = _ops()
    if q._axis is None and name in ops:
        return ops[name](args, kwargs)
    if name in _PICKING and len(qs) == 1 and args[0] is q and q._axis is None:
        # NOTE: values on the grid come back to the same codes when quantized again
        out = cls.apply(q.dequantize(), *args[1:], **kwargs)
        if isinstance(out, tuple):
            return tuple(_requantize(o, q) for o in out)
        return _requantize(out, q)
    hint = _HINTS.get(name, "or use a quantized module from torch.ao.nn.quantized")
    raise NotImplementedError(
        f"{name.lower()}: not supported on quantized tensors (dtype {q.dtype}, "
        f"{q.qscheme().name}), as in PyTorch; compute on x.dequantize() and quantize the "
        f"result again, {hint}"
    )


_HINTS = {
    "Hardswish": "or use torch.ao.nn.quantized.functional.hardswish(x, scale, zero_point)",
    "Elu": "or use torch.ao.nn.quantized.functional.elu(x, scale, zero_point)",
}


def _ops():
    from . import _qops

    return {
        "LeakyRelu": lambda a, k: _qops.unary("leaky_relu", a[0], slope=a[1]),
        "Sigmoid": lambda a, k: _qops.unary("sigmoid", a[0]),
        "Tanh": lambda a, k: _qops.unary("tanh", a[0]),
        "Hardsigmoid": lambda a, k: _qops.unary("hardsigmoid", a[0]),
        "Gelu": lambda a, k: _qops.unary("gelu_tanh" if a[1] == "tanh" else "gelu", a[0]),
        "Hardtanh": lambda a, k: _qops.clamp(a[0], a[1], a[2]),
        "Clamp": lambda a, k: _qops.clamp(a[0], a[1], a[2]),
        "AdaptiveAvgPool": lambda a, k: _qops.adaptive_avg_pool2d(a[0], k["out"]).reshape(
            k["yshape"]
        ),
        "Cat": lambda a, k: _qops.cat(a, k["dim"]),
    }


def _requantize(out, q: QTensor):
    if not isinstance(out, Tensor) or not out.is_floating_point():
        return out
    from . import _qmath
    from .qtensor import _make

    codes = _qmath.quantize(out._data, q._scale, q._zp, q._qdtype)
    return _make(codes, q._qdtype, q._scale, q._zp, None, out._device)
