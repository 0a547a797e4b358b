"""ONNX graph building for manygrad layers: a small graph builder and one converter per layer.

Each converter takes the graph, the layer and a :class:`Value` (an ONNX value name plus the
manygrad tensor that the example input produces at that point) and returns the layer's output
Value. Running the layer on the example alongside gives every converter exact ranks and static
sizes without a symbolic shape engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import nn
from ..errors import ManygradError
from ..nn import functional as F


class UnsupportedModuleError(ManygradError, TypeError):
    """A module (or one of its options) that the ONNX exporter can't convert."""


@dataclass
class Value:
    """An ONNX value name and the manygrad tensor the example input gives there."""

    name: str
    t: Any

    @property
    def ndim(self) -> int:
        return len(self.t.shape)


def to_numpy(t) -> np.ndarray:
    """A tensor's values on the host as float32 (floats) or as they are (integers)."""
    t = t.detach()
    if t.dtype.is_floating_point:
        t = t.float()
    a = t.cpu().numpy()
    if a.dtype.kind == "f" and a.dtype != np.float32:
        a = a.astype(np.float32)
    return np.ascontiguousarray(a)


class Graph:
    """Collects ONNX nodes and initializers with unique names."""

    def __init__(self, opset: int):
        from onnx import helper, numpy_helper

        self._helper, self._numpy_helper = helper, numpy_helper
        self.opset = opset
        self.nodes: list = []
        self.initializers: list = []
        self._used: set[str] = set()
        self.cache: dict[str, str] = {}

    def unique(self, hint: str) -> str:
        base = hint.replace("/", ".") or "v"
        name, i = base, 1
        while name in self._used:
            i += 1
            name = f"{base}_{i}"
        self._used.add(name)
        return name

    def const(self, array, hint: str = "const") -> str:
        """An initializer holding ``array``; returns its name."""
        name = self.unique(hint)
        self.initializers.append(self._numpy_helper.from_array(np.asarray(array), name))
        return name

    def ints(self, values, hint: str = "shape") -> str:
        return self.const(np.asarray(values, dtype=np.int64), hint)

    def scalar(self, v: float, hint: str = "scalar") -> str:
        return self.const(np.asarray(v, dtype=np.float32), hint)

    def param(self, t, hint: str) -> str:
        return self.const(to_numpy(t), hint)

    def op(self, op_type: str, inputs: list[str], hint: str = "", n_out: int = 1, **attrs):
        """Add one node; returns its output name (or a list of names when ``n_out > 1``)."""
        outs = [self.unique(f"{hint or op_type.lower()}" + (f".{i}" if n_out > 1 else ""))
                for i in range(n_out)]  # fmt: skip
        node = self._helper.make_node(
            op_type, inputs, outs, name=self.unique(f"{hint or op_type}.{op_type}"), **attrs
        )
        self.nodes.append(node)
        return outs if n_out > 1 else outs[0]


# ------------------------------------------------------------------ functional pieces
def relu(g: Graph, x: Value, hint: str = "relu") -> Value:
    return Value(g.op("Relu", [x.name], hint), F.relu(x.t))


def add(g: Graph, a: Value, b: Value, hint: str = "add") -> Value:
    return Value(g.op("Add", [a.name, b.name], hint), a.t + b.t)


def flatten(g: Graph, x: Value, start_dim: int = 1, end_dim: int = -1, hint="flatten") -> Value:
    """``x.flatten(start_dim, end_dim)`` with the batch size left free."""
    y = x.t.flatten(start_dim, end_dim)
    nd = x.ndim
    s, e = start_dim % max(nd, 1), end_dim % max(nd, 1)
    if e == nd - 1 and s >= 1:
        return Value(g.op("Flatten", [x.name], hint, axis=s), y)
    return reshape_keep(g, x, s, e + 1, [-1], y, hint)


def reshape_keep(g: Graph, x: Value, lo: int, hi: int, middle, y, hint: str) -> Value:
    """Reshape dims ``lo:hi`` of ``x`` to ``middle``, keeping the others whatever they are."""
    shape = g.op("Shape", [x.name], f"{hint}.shape")
    parts = []
    if lo > 0:
        parts.append(g.op("Slice", [shape, g.ints([0]), g.ints([lo])], f"{hint}.head"))
    parts.append(g.ints(list(middle), f"{hint}.middle"))
    if hi < x.ndim:
        parts.append(g.op("Slice", [shape, g.ints([hi]), g.ints([x.ndim])], f"{hint}.tail"))
    target = parts[0] if len(parts) == 1 else g.op("Concat", parts, f"{hint}.target", axis=0)
    return Value(g.op("Reshape", [x.name, target], hint), y)


def max_pool2d(g: Graph, x: Value, k, stride=None, padding=0, dilation=1, ceil_mode=False,
               hint: str = "maxpool") -> Value:  # fmt: skip
    n = x.ndim - 2
    k, s = _tup(k, n), _tup(stride if stride is not None else k, n)
    p, d = _tup(padding, n), _tup(dilation, n)
    fn = F.max_pool1d if n == 1 else F.max_pool2d
    y = fn(x.t, k, s, p, d, ceil_mode=ceil_mode)
    name = g.op("MaxPool", [x.name], hint, kernel_shape=k, strides=s, pads=p + p,
                dilations=d, ceil_mode=int(ceil_mode))  # fmt: skip
    return Value(name, y)


def _tup(v, n: int) -> list[int]:
    return [int(i) for i in v] if isinstance(v, (tuple, list)) else [int(v)] * n


def gelu(g: Graph, x: Value, approximate: str = "none", hint: str = "gelu") -> Value:
    y = F.gelu(x.t, approximate=approximate)
    if approximate == "none" and g.opset >= 20:
        return Value(g.op("Gelu", [x.name], hint), y)
    if approximate == "none":  # 0.5 x (1 + erf(x / sqrt 2))
        inner = g.op("Erf", [g.op("Mul", [x.name, g.scalar(1 / math.sqrt(2))], f"{hint}.s")])
    else:  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = g.op("Mul", [x.name, g.op("Mul", [x.name, x.name], f"{hint}.sq")], f"{hint}.cube")
        poly = g.op("Add", [x.name, g.op("Mul", [cube, g.scalar(0.044715)])], f"{hint}.poly")
        inner = g.op("Tanh", [g.op("Mul", [poly, g.scalar(math.sqrt(2 / math.pi))])])
    one_plus = g.op("Add", [inner, g.scalar(1.0)], f"{hint}.1p")
    half_x = g.op("Mul", [x.name, g.scalar(0.5)], f"{hint}.half")
    return Value(g.op("Mul", [half_x, one_plus], hint), y)


# ------------------------------------------------------------------ layer converters
Converter = Callable[[Graph, Any, Value, str], Value]
LAYERS: dict[type, Converter] = {}


def converts(*classes: type):
    def deco(fn: Converter) -> Converter:
        for c in classes:
            LAYERS[c] = fn
        return fn

    return deco


def _unsupported(m, prefix: str, what: str) -> UnsupportedModuleError:
    return UnsupportedModuleError(
        f"onnx.export: {type(m).__name__} at {prefix or 'the model'!r} {what}"
    )


@converts(nn.Linear)
def _linear(g: Graph, m, x: Value, p: str) -> Value:
    y = m(x.t)
    w = to_numpy(m.weight)
    if x.ndim == 2:
        ins = [x.name, g.const(w, f"{p}.weight")]
        if m.bias is not None:
            ins.append(g.param(m.bias, f"{p}.bias"))
        return Value(g.op("Gemm", ins, p, transB=1), y)
    out = g.op("MatMul", [x.name, g.const(np.ascontiguousarray(w.T), f"{p}.weight_t")], p)
    if m.bias is not None:
        out = g.op("Add", [out, g.param(m.bias, f"{p}.bias")], f"{p}.add")
    return Value(out, y)


@converts(nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d)
def _conv(g: Graph, m, x: Value, p: str) -> Value:
    y = m(x.t)
    n = len(m.kernel_size)
    inp = x.name
    if isinstance(m.padding, str) or m.padding_mode != "zeros":
        rev = list(m._reversed_padding_repeated_twice)
        begin = [rev[2 * (n - 1 - i)] for i in range(n)]
        end = [rev[2 * (n - 1 - i) + 1] for i in range(n)]
    else:
        begin = end = list(m.padding)
    if m.padding_mode != "zeros":
        mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[m.padding_mode]
        if mode == "wrap" and g.opset < 19:
            raise _unsupported(m, p, "uses padding_mode='circular', which needs opset >= 19")
        pads = g.ints([0, 0] + begin + [0, 0] + end, f"{p}.pads")
        inp = g.op("Pad", [inp, pads], f"{p}.pad", mode=mode)
        begin = end = [0] * n
    ins = [inp, g.param(m.weight, f"{p}.weight")]
    if m.bias is not None:
        ins.append(g.param(m.bias, f"{p}.bias"))
    attrs = dict(kernel_shape=list(m.kernel_size), strides=list(m.stride), pads=begin + end,
                 dilations=list(m.dilation), group=m.groups)  # fmt: skip
    if m.transposed:
        attrs["output_padding"] = list(m.output_padding)
        return Value(g.op("ConvTranspose", ins, p, **attrs), y)
    return Value(g.op("Conv", ins, p, **attrs), y)


@converts(nn.BatchNorm1d, nn.BatchNorm2d)
def _batch_norm(g: Graph, m, x: Value, p: str) -> Value:
    if m.running_mean is None or m.running_var is None:
        raise _unsupported(
            m,
            p,
            "has track_running_stats=False: in eval mode it normalises with batch "
            "statistics, which ONNX BatchNormalization inference doesn't do",
        )
    y = m(x.t)
    c = m.num_features
    scale = to_numpy(m.weight) if m.weight is not None else np.ones(c, np.float32)
    bias = to_numpy(m.bias) if m.bias is not None else np.zeros(c, np.float32)
    ins = [x.name, g.const(scale, f"{p}.weight"), g.const(bias, f"{p}.bias"),
           g.param(m.running_mean, f"{p}.running_mean"),
           g.param(m.running_var, f"{p}.running_var")]  # fmt: skip
    return Value(g.op("BatchNormalization", ins, p, epsilon=float(m.eps)), y)


@converts(nn.LayerNorm)
def _layer_norm(g: Graph, m, x: Value, p: str) -> Value:
    if g.opset < 17:
        raise _unsupported(m, p, "needs opset_version >= 17 (LayerNormalization)")
    y = m(x.t)
    shape = tuple(m.normalized_shape)
    scale = to_numpy(m.weight) if m.weight is not None else np.ones(shape, np.float32)
    ins = [x.name, g.const(scale, f"{p}.weight")]
    if getattr(m, "bias", None) is not None:
        ins.append(g.param(m.bias, f"{p}.bias"))
    name = g.op("LayerNormalization", ins, p, axis=-len(shape), epsilon=float(m.eps))
    return Value(name, y)


def reduce_mean(g: Graph, x: str, axes: list[int], hint: str) -> str:
    """``x.mean(axes, keepdim=True)``; opset 18 moved ``axes`` from attribute to input."""
    if g.opset >= 18:
        return g.op("ReduceMean", [x, g.ints(axes, f"{hint}.axes")], hint, keepdims=1)
    return g.op("ReduceMean", [x], hint, axes=axes, keepdims=1)


def _normalise(g: Graph, x: str, axes: list[int], eps: float, p: str, center: bool) -> str:
    """``(x - mean) / sqrt(var + eps)`` over ``axes`` (or ``x / sqrt(mean(x^2) + eps)``)."""
    if center:
        x = g.op("Sub", [x, reduce_mean(g, x, axes, f"{p}.mean")], f"{p}.centered")
    ms = reduce_mean(g, g.op("Mul", [x, x], f"{p}.square"), axes, f"{p}.var")
    std = g.op("Sqrt", [g.op("Add", [ms, g.scalar(eps)], f"{p}.var_eps")], f"{p}.std")
    return g.op("Div", [x, std], f"{p}.normed")


@converts(nn.RMSNorm)
def _rms_norm(g: Graph, m, x: Value, p: str) -> Value:
    y = m(x.t)
    k = len(m.normalized_shape)
    eps = m.eps if m.eps is not None else 2.0**-23  # float32's machine epsilon
    out = _normalise(g, x.name, list(range(-k, 0)), eps, p, center=False)
    if m.weight is not None:
        out = g.op("Mul", [out, g.param(m.weight, f"{p}.weight")], p)
    return Value(out, y)


@converts(nn.GroupNorm)
def _group_norm(g: Graph, m, x: Value, p: str) -> Value:
    y = m(x.t)
    grouped = g.op("Reshape", [x.name, g.ints([0, m.num_groups, -1])], f"{p}.groups")
    out = _normalise(g, grouped, [2], m.eps, p, center=True)
    out = g.op("Reshape", [out, g.op("Shape", [x.name], f"{p}.shape")], f"{p}.ungroup")
    per_channel = (m.num_channels,) + (1,) * (x.ndim - 2)
    if m.weight is not None:
        w = to_numpy(m.weight).reshape(per_channel)
        out = g.op("Mul", [out, g.const(w, f"{p}.weight")], f"{p}.scale")
    if m.bias is not None:
        b = to_numpy(m.bias).reshape(per_channel)
        out = g.op("Add", [out, g.const(b, f"{p}.bias")], p)
    return Value(out, y)


@converts(nn.Embedding)
def _embedding(g: Graph, m, x: Value, p: str) -> Value:
    if m.max_norm is not None:
        raise _unsupported(m, p, "has max_norm set (it renormalises weights while running)")
    return Value(g.op("Gather", [g.param(m.weight, f"{p}.weight"), x.name], p, axis=0), m(x.t))


_SIMPLE = {nn.ReLU: "Relu", nn.Tanh: "Tanh", nn.Sigmoid: "Sigmoid"}


@converts(*_SIMPLE)
def _simple(g: Graph, m, x: Value, p: str) -> Value:
    return Value(g.op(_SIMPLE[type(m)], [x.name], p), m(x.t))


@converts(nn.LeakyReLU)
def _leaky_relu(g: Graph, m, x: Value, p: str) -> Value:
    return Value(g.op("LeakyRelu", [x.name], p, alpha=float(m.negative_slope)), m(x.t))


@converts(nn.ELU)
def _elu(g: Graph, m, x: Value, p: str) -> Value:
    return Value(g.op("Elu", [x.name], p, alpha=float(m.alpha)), m(x.t))


@converts(nn.SiLU)
def _silu(g: Graph, m, x: Value, p: str) -> Value:
    sig = g.op("Sigmoid", [x.name], f"{p}.sigmoid")
    return Value(g.op("Mul", [x.name, sig], p), m(x.t))


@converts(nn.GELU)
def _gelu(g: Graph, m, x: Value, p: str) -> Value:
    return gelu(g, x, m.approximate, p)


@converts(nn.Softplus)
def _softplus(g: Graph, m, x: Value, p: str) -> Value:
    # NOTE: the linear region above `threshold` differs from softplus by < exp(-threshold)
    if m.beta == 1:
        return Value(g.op("Softplus", [x.name], p), m(x.t))
    bx = g.op("Mul", [x.name, g.scalar(m.beta)], f"{p}.beta_x")
    sp = g.op("Softplus", [bx], f"{p}.softplus")
    return Value(g.op("Div", [sp, g.scalar(m.beta)], p), m(x.t))


@converts(nn.Softmax, nn.LogSoftmax)
def _softmax(g: Graph, m, x: Value, p: str) -> Value:
    dim = m.dim if m.dim is not None else (0 if x.ndim in (0, 1, 3) else 1)
    kind = "LogSoftmax" if isinstance(m, nn.LogSoftmax) else "Softmax"
    return Value(g.op(kind, [x.name], p, axis=int(dim)), m(x.t))


@converts(nn.Dropout, nn.Identity)
def _identity(g: Graph, m, x: Value, p: str) -> Value:
    return Value(x.name, x.t)  # dropout is the identity in eval mode


@converts(nn.Flatten)
def _flatten(g: Graph, m, x: Value, p: str) -> Value:
    return flatten(g, x, m.start_dim, m.end_dim, p)


@converts(nn.Unflatten)
def _unflatten(g: Graph, m, x: Value, p: str) -> Value:
    d = m.dim % x.ndim
    return reshape_keep(g, x, d, d + 1, list(m.unflattened_size), m(x.t), p)


@converts(nn.MaxPool2d, nn.MaxPool1d)
def _max_pool(g: Graph, m, x: Value, p: str) -> Value:
    if m.return_indices:
        raise _unsupported(m, p, "has return_indices=True")
    return max_pool2d(g, x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, p)


@converts(nn.AvgPool2d, nn.AvgPool1d)
def _avg_pool(g: Graph, m, x: Value, p: str) -> Value:
    if getattr(m, "divisor_override", None) is not None:
        raise _unsupported(m, p, "has divisor_override set")
    n = x.ndim - 2
    k, s, pad = _tup(m.kernel_size, n), _tup(m.stride, n), _tup(m.padding, n)
    name = g.op("AveragePool", [x.name], p, kernel_shape=k, strides=s, pads=pad + pad,
                ceil_mode=int(m.ceil_mode), count_include_pad=int(m.count_include_pad))  # fmt: skip
    return Value(name, m(x.t))


@converts(nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool1d)
def _adaptive_avg_pool(g: Graph, m, x: Value, p: str) -> Value:
    y = m(x.t)
    n = x.ndim - 2
    src, dst = list(x.t.shape[2:]), list(y.shape[2:])
    if all(o == 1 for o in dst):
        return Value(g.op("GlobalAveragePool", [x.name], p), y)
    if any(i % o for i, o in zip(src, dst)):
        raise _unsupported(
            m,
            p,
            f"maps {tuple(src)} to {tuple(dst)}; ONNX export needs output sizes of 1 or "
            "exact divisors of the input size (then it is a plain average pool)",
        )
    k = [i // o for i, o in zip(src, dst)]
    return Value(g.op("AveragePool", [x.name], p, kernel_shape=k, strides=k, pads=[0] * 2 * n), y)


@converts(nn.Sequential)
def _sequential(g: Graph, m, x: Value, p: str) -> Value:
    from .onnx import convert

    for name, child in m.named_children():
        x = convert(g, child, x, f"{p}.{name}" if p else name)
    return x
