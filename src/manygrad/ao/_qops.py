"""Quantized ops on raw codes, with PyTorch's x86 numerics (measured against its kernels).

Elementwise float ops (add, hardswish, leaky_relu, sigmoid, ...) run PyTorch's way: its
kernels take 64 codes at a time, dequantized as ``fma(q, scale, -zero_point * scale)`` and
quantized as ``rint(y * (1 / scale)) + zero_point``; the last ``n % 64`` go through the
scalar path, ``(q - zero_point) * scale`` and ``rint(fma(y, 1 / scale, zero_point))``.
Tensors over 32768 elements are split between threads in PyTorch, which moves the scalar
tails, so there codes can differ by one on half-way cases.

Example:
    >>> out = add(a, b, scale=0.1, zero_point=128)       # QTensors in, QTensor out
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..tensor import Tensor
from . import _qmath
from .qtensor import QTensor, _make

F = np.float32
_CHUNK = 64  # NOTE: two 32-code vectors per step of PyTorch's vectorized loop


def per_tensor(fn: str, x) -> QTensor:
    if not isinstance(x, QTensor) or x._axis is not None:
        got = getattr(x, "dtype", type(x).__name__)
        raise RuntimeError(
            f"{fn}: expected a per-tensor quantized tensor, got {got}; quantize it first, e.g. "
            "torch.quantize_per_tensor(x, scale, zero_point, torch.quint8) or a QuantStub"
        )
    return x


def _deq_vec(q, s, z, premul: bool = True):
    xp = backend.array_module(q)
    s = F(s)
    if not premul:  # NOTE: the two-argument form, (q - zero_point) * scale (sigmoid)
        return (q.astype(xp.float32) - F(z)) * s
    return (q.astype(xp.float64) * float(s) + float(F(-z) * s)).astype(xp.float32)


def _quant_vec(y, s, z, qdtype):
    xp = backend.array_module(y)
    lo, hi = _qmath.RANGES[qdtype.name]
    with backend.quiet_float_errors():
        v = xp.rint(y * (F(1) / F(s))) + z
    # NOTE: clipped in float64: float32 has no int32 bounds (qint32 codes)
    return xp.clip(xp.nan_to_num(v.astype(xp.float64), nan=hi), lo, hi).astype(qdtype.np)


def elementwise(fn, inputs: list, scale: float, zero_point: int, qdtype, tail_fn=None,
                premul: bool = True) -> QTensor:  # fmt: skip
    """``fn`` of the float values of same-shaped per-tensor QTensors ``inputs``, quantized with
    ``scale`` / ``zero_point`` (PyTorch's vector body and scalar tail, see above; ``tail_fn``
    where the scalar path computes otherwise, ``premul=False`` where the body dequantizes as
    ``(q - zero_point) * scale``)."""
    shape, dev = inputs[0].shape, inputs[0]._device
    codes = [q._data.reshape(-1) for q in inputs]
    n = codes[0].size
    # NOTE: qint32 vectors hold 8 codes (16 a step) where 8-bit ones hold 32
    cut = n - n % (_CHUNK if inputs[0].dtype.itemsize == 1 else 16)
    tail_fn = fn if tail_fn is None else tail_fn
    with backend.quiet_float_errors():
        body = _quant_vec(fn(*[_deq_vec(c[:cut], q._scale, q._zp, premul)
                               for c, q in zip(codes, inputs)]), scale, zero_point, qdtype)  # fmt: skip
        tail = _qmath.quantize(tail_fn(*[_qmath.dequantize(c[cut:], q._scale, q._zp)
                                         for c, q in zip(codes, inputs)]), scale, zero_point,
                               qdtype)  # fmt: skip
    xp = backend.array_module(body)
    out = xp.concatenate([body, tail]).reshape(tuple(shape))
    return _make(out, qdtype, float(scale), int(zero_point), None, dev)


def _same_shape(fn: str, a: QTensor, b: QTensor) -> tuple[QTensor, QTensor]:
    if tuple(a.shape) != tuple(b.shape):
        import manygrad as mg

        shape = tuple(mg.broadcast_shapes(a.shape, b.shape))
        a, b = a.expand(*shape).contiguous(), b.expand(*shape).contiguous()
    return a, b


def add(a, b, scale: float, zero_point: int, relu: bool = False) -> QTensor:
    """``quantized::add`` (``add_relu`` with ``relu``): a + b requantized to the given qparams."""
    a, b = per_tensor("add", a), per_tensor("add", b)
    a, b = _same_shape("add", a, b)
    xp = backend.array_module(a._data)
    op = (lambda x, y: xp.maximum(x + y, F(0))) if relu else (lambda x, y: x + y)
    return elementwise(op, [a, b], scale, zero_point, a.dtype)


def mul(a, b, scale: float, zero_point: int, relu: bool = False) -> QTensor:
    """``quantized::mul``: integer products of (q - zero_point), times ``s_a * s_b / scale``."""
    a, b = per_tensor("mul", a), per_tensor("mul", b)
    a, b = _same_shape("mul", a, b)
    xp = backend.array_module(a._data)
    prod = (a._data.astype(xp.int64) - a._zp) * (b._data.astype(xp.int64) - b._zp)
    mult = F(F(F(a._scale) * F(b._scale)) / F(scale))
    lo, hi = _qmath.RANGES[a.dtype.name]
    v = xp.rint(prod.astype(xp.float32) * mult) + zero_point
    v = xp.clip(v, zero_point if relu else lo, hi).astype(a.dtype.np)
    return _make(v, a.dtype, float(scale), int(zero_point), None, a._device)


def add_scalar(a, c: float, relu: bool = False) -> QTensor:
    """``quantized::add_scalar``: the codes stay and the zero point moves by round(c / scale);
    where it would leave the range, the scale grows instead and the values are requantized."""
    a = per_tensor("add_scalar", a)
    lo, hi = _qmath.RANGES[a.dtype.name]
    s, z = a._scale, a._zp
    cq = int(np.rint(float(c) / s))
    if lo <= z - cq <= hi:
        out = _make(a._data.copy(), a.dtype, s, z - cq, None, a._device)
        return out.relu() if relu else out
    if z - cq < lo:
        s2, z2 = (hi - (z - cq)) / (hi - lo) * s, lo
    else:
        s2, z2 = ((z - cq) - lo) / (hi - lo) * s, hi
    xp = backend.array_module(a._data)
    op = (lambda x: xp.maximum(x + F(c), F(0))) if relu else (lambda x: x + F(c))
    return elementwise(op, [a], s2, z2, a.dtype)


def mul_scalar(a, c: float, relu: bool = False) -> QTensor:
    """``quantized::mul_scalar``: codes kept and scale times |c| (c < 0 mirrors the codes;
    c == 0 gives zeros with scale 1, zero point 0)."""
    a = per_tensor("mul_scalar", a)
    lo, hi = _qmath.RANGES[a.dtype.name]
    xp = backend.array_module(a._data)
    c = float(c)
    if c > 0:
        out = _make(a._data.copy(), a.dtype, c * a._scale, a._zp, None, a._device)
    elif c == 0:
        out = _make(xp.zeros_like(a._data), a.dtype, 1.0, 0, None, a._device)
    else:
        codes = (hi + lo - a._data.astype(xp.int64)).astype(a.dtype.np)
        out = _make(codes, a.dtype, abs(c) * a._scale, hi - (a._zp - lo), None, a._device)
    return out.relu() if relu else out


def cat(tensors, dim: int, scale: float | None = None, zero_point: int | None = None) -> QTensor:
    """Concatenation requantized to ``scale`` / ``zero_point`` (default: the first input's,
    as ``torch.cat`` of quantized tensors)."""
    qs = [per_tensor("cat", t) for t in tensors]
    if not qs:
        raise ValueError("cat: expected a non-empty list of quantized tensors")
    if len({q.dtype for q in qs}) != 1:
        raise RuntimeError(f"cat: all inputs must have the same quantized dtype, got "
                           f"{sorted({str(q.dtype) for q in qs})}")  # fmt: skip
    scale = qs[0]._scale if scale is None else float(scale)
    zero_point = qs[0]._zp if zero_point is None else int(zero_point)
    xp = backend.array_module(qs[0]._data)
    parts = []
    for q in qs:
        if q._scale == scale and q._zp == zero_point:
            parts.append(q._data)
        else:
            parts.append(_qmath.quantize(_qmath.dequantize(q._data, q._scale, q._zp), scale,
                                         zero_point, q.dtype))  # fmt: skip
    d = dim % qs[0].ndim if qs[0].ndim else 0
    return _make(xp.concatenate(parts, axis=d), qs[0].dtype, scale, zero_point, None,
                 qs[0]._device)  # fmt: skip


def clamp(a, lo=None, hi=None) -> QTensor:
    """Codes clipped at the codes of ``lo`` and ``hi`` (relu6, hardtanh, clamp)."""
    a = per_tensor("clamp", a)
    xp = backend.array_module(a._data)
    q = lambda v: int(_qmath.quantize(xp.asarray([v], xp.float32), a._scale, a._zp, a.dtype)[0])  # noqa: E731
    codes = xp.clip(a._data, None if lo is None else q(lo), None if hi is None else q(hi))
    return _make(codes.astype(a.dtype.np), a.dtype, a._scale, a._zp, None, a._device)


# Output qparams PyTorch's kernels fix, by op and dtype (the range of the function on the grid)
_FIXED = {
    "sigmoid": {"quint8": (2.0**-8, 0), "qint8": (2.0**-8, -128), "qint32": (2.0**-32, 0)},
    "hardsigmoid": {"quint8": (2.0**-8, 0), "qint8": (2.0**-8, -128), "qint32": (2.0**-32, 0)},
    "tanh": {"quint8": (2.0**-7, 128), "qint8": (2.0**-7, 0), "qint32": (2.0**-31, 0)},
}


def fixed_qparams(name: str, qdtype) -> tuple[float, int]:
    """The output ``(scale, zero_point)`` of quantized sigmoid / hardsigmoid / tanh."""
    return _FIXED[name][qdtype.name]


def _sigmoid_tail(x):
    xp = backend.array_module(x)
    # NOTE: PyTorch's scalar path: 1.0f / (1.0 + std::exp(-x)), the sum in double
    return (1.0 / (1.0 + xp.exp(-x).astype(xp.float64))).astype(xp.float32)


_SQRT1_2 = math.sqrt(0.5)
_GELU_BETA = math.sqrt(2) * (2 / math.sqrt(math.pi)) * 0.5


def _gelu(x):
    return (x * F(0.5)) * (F(1) + backend.erf((x * F(_SQRT1_2)).astype(x.dtype)))


def _gelu_tail(x):
    # NOTE: PyTorch's scalar path: in double, std::erf
    xp = backend.array_module(x)
    d = x.astype(xp.float64)
    e = xp.asarray([math.erf(float(v) * _SQRT1_2) for v in d.reshape(-1)], xp.float64)
    return (d * 0.5 * (1 + e.reshape(d.shape))).astype(xp.float32)


def _gelu_tanh(x):
    xp = backend.array_module(x)
    inner = F(_GELU_BETA) * (x + F(0.044715) * (x * x * x))
    return (F(0.5) * x) * (F(1) + xp.tanh(inner))


def _gelu_tanh_tail(x):
    xp = backend.array_module(x)
    d = x.astype(xp.float64)
    cube = (x * x * x).astype(xp.float64)  # NOTE: the cube in float32, the rest in double
    return (0.5 * d * (1.0 + xp.tanh(_GELU_BETA * (d + 0.044715 * cube)))).astype(xp.float32)


def unary(name: str, a, scale=None, zero_point=None, slope: float = 0.01) -> QTensor:
    """hardswish, leaky_relu, sigmoid, hardsigmoid, tanh, elu, gelu, gelu_tanh of a quantized
    tensor, requantized to ``scale`` / ``zero_point`` (default: the input's, gelu's scale
    rounded to float32; sigmoid, hardsigmoid and tanh default to PyTorch's fixed output
    qparams, see ``fixed_qparams``)."""
    a = per_tensor(name, a)
    xp = backend.array_module(a._data)
    fns = {
        "hardswish": lambda x: x * xp.minimum(xp.maximum(x + F(3), F(0)), F(6)) / F(6),
        "hardsigmoid": lambda x: xp.minimum(xp.maximum(x + F(3), F(0)), F(6)) / F(6),
        "leaky_relu": lambda x: xp.where(x > 0, x, x * F(slope)),
        "sigmoid": lambda x: F(1) / (F(1) + xp.exp(-x)),
        "tanh": xp.tanh,
        "elu": lambda x: xp.where(x > 0, x, xp.expm1(x) * F(slope)),
        "celu": lambda x: xp.where(x > 0, x, xp.expm1(x * F(1.0 / slope)) * F(slope)),
        "gelu": _gelu,
        "gelu_tanh": _gelu_tanh,
    }
    if scale is None and name in _FIXED:
        scale, zero_point = fixed_qparams(name, a.dtype)
    if scale is None and name.startswith("gelu"):  # NOTE: the input's scale, as float32
        scale = float(F(a._scale))
    s = a._scale if scale is None else float(scale)
    z = a._zp if zero_point is None else int(zero_point)
    tail = {"sigmoid": _sigmoid_tail, "gelu": _gelu_tail, "gelu_tanh": _gelu_tanh_tail}.get(name)
    return elementwise(fns[name], [a], s, z, a.dtype, tail, premul=name != "sigmoid")


def threshold(a, thr: float, value: float) -> QTensor:
    """``quantized threshold``: ``value`` where ``x <= thr``, else ``x``, with the input's
    qparams."""
    a = per_tensor("threshold", a)
    xp = backend.array_module(a._data)
    return elementwise(lambda x: xp.where(x <= F(thr), F(value), x), [a], a._scale, a._zp,
                       a.dtype)  # fmt: skip


def batch_norm(a, weight, bias, mean, var, eps: float, scale: float, zero_point: int,
               relu: bool = False) -> QTensor:  # fmt: skip
    """``quantized::batch_norm``: per channel ``rint(alpha * (q - zp) + beta)`` with alpha and
    beta folded from the statistics in float32."""
    a = per_tensor("batch_norm", a)
    xp = backend.array_module(a._data)
    c = a.shape[1]
    as32 = lambda t, d: xp.full(c, d, xp.float32) if t is None else t._data.astype(xp.float32)  # noqa: E731
    w, b, m, v = as32(weight, 1), as32(bias, 0), as32(mean, 0), as32(var, 1)
    inv = F(1) / xp.sqrt(v + F(eps))
    alpha = inv * w * F(a._scale / scale)
    beta = (b - m * inv * w) * (F(1) / F(scale)) + F(zero_point)
    shape = (1, c) + (1,) * (a.ndim - 2)
    d = (a._data.astype(xp.int64) - a._zp).astype(xp.float64)
    y = (d * alpha.reshape(shape).astype(xp.float64) + beta.reshape(shape)).astype(xp.float32)
    lo, hi = _qmath.RANGES[a.dtype.name]
    codes = xp.clip(xp.rint(y), zero_point if relu else lo, hi).astype(a.dtype.np)
    return _make(codes, a.dtype, float(scale), int(zero_point), None, a._device)


def prelu(a, weight, scale: float, zero_point: int) -> QTensor:
    """``quantized::prelu``: integer products ``(q_x+ - zp) * (q_w(1.0) - zp_w) + (q_x- - zp) *
    (q_w - zp_w)`` (the weight's code of 1.0 for the positive part) requantized with
    ``s_x * s_w * (1 / scale)``; ``weight`` a per-tensor quantized tensor of 1 or C values."""
    a = per_tensor("prelu", a)
    w = per_tensor("prelu", weight)
    if a.ndim == 0:
        raise RuntimeError("prelu: zero-dim input tensor is not allowed")
    xp = backend.array_module(a._data)
    wc = w._data.astype(xp.int64).reshape(-1) - w._zp
    if wc.size != 1:
        c = a.shape[1] if a.ndim > 1 else 1
        if wc.size != c:
            raise RuntimeError(f"prelu: {wc.size} weights for an input of {c} channels; use 1 "
                               f"or {c}")  # fmt: skip
        wc = wc.reshape((1, -1) + (1,) * (a.ndim - 2))
    one = int(_qmath.quantize(xp.asarray([1.0], xp.float32), w._scale, w._zp, w.dtype)[0]) - w._zp
    q = a._data.astype(xp.int64)
    prod = (xp.maximum(q, a._zp) - a._zp) * one + (xp.minimum(q, a._zp) - a._zp) * wc
    mult = F(F(F(a._scale) * F(w._scale)) * (F(1) / F(scale)))
    lo, hi = _qmath.RANGES[a.dtype.name]
    v = xp.clip(xp.rint(prod.astype(xp.float32) * mult) + zero_point, lo, hi)
    return _make(v.astype(a.dtype.np), a.dtype, float(scale), int(zero_point), None, a._device)


def normalize(a, gamma, beta, groups: int, eps: float, scale: float, zero_point: int,
              channels: int | None = None) -> QTensor:  # fmt: skip
    """PyTorch's ``quantized_normalize_kernel`` (layer / group / instance norm): ``a``'s codes
    in ``groups`` rows, each normalized with its mean and variance taken from integer sums of
    the codes, then ``gamma`` / ``beta`` (per element of a row; per channel when ``channels``
    is given) and requantized; 32 codes at a time, a scalar path for each row's (or each
    channel's) rest."""
    a = per_tensor("normalize", a)
    xp = backend.array_module(a._data)
    q = a._data.reshape(groups, -1).astype(xp.int64)
    n = q.shape[1]
    xs, zp = F(a._scale), a._zp
    # NOTE: float32 statistics, eps added in double (as the kernel's std::sqrt argument)
    m_sh = (q.sum(1).astype(xp.float32) / F(n)).astype(xp.float32)
    mean = (m_sh - F(zp)).astype(xp.float32)
    sq = (q * q).sum(1).astype(xp.float32) / F(n)
    var = xp.maximum((sq - m_sh * m_sh).astype(xp.float32), F(0))
    sd = (float(xs) / xp.sqrt(((var * xs) * xs).astype(xp.float64) + eps)).astype(xp.float32)
    d = (q - zp).astype(xp.float32)
    lo, hi = _qmath.RANGES[a.dtype.name]
    if channels is None:
        g = xp.ones(n, xp.float32) if gamma is None else gamma.astype(xp.float32).reshape(-1)
        b = xp.zeros(n, xp.float32) if beta is None else beta.astype(xp.float32).reshape(-1)
        y = ((d - mean[:, None]) * sd[:, None]) * g + b
        per = n
    else:
        per_group = n * groups // (a.shape[0] * channels)  # NOTE: H * W, one channel's codes
        cpg = n // per_group
        ch = (xp.arange(groups)[:, None] * cpg + xp.arange(cpg)) % channels
        g = xp.ones(channels, xp.float32) if gamma is None else gamma.astype(xp.float32)
        b = xp.zeros(channels, xp.float32) if beta is None else beta.astype(xp.float32)
        gp = (sd[:, None] * g[ch]).astype(xp.float32)
        d3 = d.reshape(groups, cpg, per_group)
        y = ((d3 - mean[:, None, None]) * gp[..., None] + b[ch][..., None]).reshape(groups, n)
        per = per_group
    y = y.astype(xp.float32).reshape(groups, -1, per)
    cut = per - per % 32
    with backend.quiet_float_errors():
        body = xp.rint(y[..., :cut] * (F(1) / F(scale))) + zero_point
        tail = _qmath.quantize(y[..., cut:], scale, zero_point, a.dtype).astype(xp.float64)
    codes = xp.clip(xp.concatenate([body, tail], axis=-1), lo, hi).astype(a.dtype.np)
    return _make(codes.reshape(tuple(a.shape)), a.dtype, float(scale), int(zero_point), None,
                 a._device)  # fmt: skip


def _window_sums(d: Tensor, pool, **kw):
    return pool(d, **kw, divisor_override=1)._data


def _avg_pool(nd: int, a, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override) -> QTensor:  # fmt: skip
    """PyTorch's quantized average pooling: the raw codes averaged over each window (padding
    counts as the zero point's code), rounded half to even; with ``divisor_override``, the
    codes minus the zero point summed, divided, rounded, then the zero point added back. The
    input's qparams."""
    from ..nn import functional as Fn
    from ..ops import pool3d

    a = per_tensor(f"avg_pool{nd}d", a)
    pool = Fn.avg_pool2d if nd == 2 else pool3d.avg_pool3d
    xp = backend.array_module(a._data)
    codes = Tensor._wrap(a._data.astype(xp.float64), a._device)
    ones = Tensor._wrap(xp.ones_like(codes._data), a._device)
    kw = dict(kernel_size=kernel_size, stride=stride, ceil_mode=ceil_mode)
    p = (padding,) * nd if isinstance(padding, int) else tuple(padding)
    pads = tuple(v for q in reversed(p) for v in (q, q))
    if divisor_override:  # NOTE: here the zero point is added after the rounding
        sums = _window_sums(codes, pool, **kw, padding=padding)
        real = _window_sums(ones, pool, **kw, padding=padding)
        return _rounded_codes(a, xp.rint((sums - a._zp * real) / float(divisor_override)) + a._zp)
    if count_include_pad:  # NOTE: padding holds the zero point's code
        sums = _window_sums(Fn.pad(codes, pads, value=float(a._zp)), pool, **kw)
        div = _window_sums(Fn.pad(ones, pads, value=1.0), pool, **kw)
    else:
        sums = _window_sums(codes, pool, **kw, padding=padding)
        div = _window_sums(ones, pool, **kw, padding=padding, count_include_pad=False)
    return _rounded_codes(a, sums / div)


def avg_pool2d(a, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None) -> QTensor:  # fmt: skip
    """Average of the codes over each window (see ``_avg_pool``)."""
    return _avg_pool(2, a, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)  # fmt: skip


def avg_pool3d(a, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None) -> QTensor:  # fmt: skip
    """3-d average of the codes over each window (see ``_avg_pool``)."""
    return _avg_pool(3, a, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)  # fmt: skip


def _rounded_codes(a: QTensor, means) -> QTensor:
    """Mean raw codes rounded half to even, clipped to the dtype: the input's qparams."""
    xp = backend.array_module(means)
    lo, hi = _qmath.RANGES[a.dtype.name]
    v = xp.clip(xp.rint(means), lo, hi).astype(a.dtype.np)
    return _make(v, a.dtype, a._scale, a._zp, None, a._device)


def adaptive_avg_pool2d(a, output_size) -> QTensor:
    """Adaptive average pooling of the codes over the last two dims."""
    return adaptive_avg_pool(a, output_size, 2)


def adaptive_avg_pool(a, output_size, nd: int) -> QTensor:
    """Adaptive average pooling of the raw codes over the last ``nd`` dims (1, 2 or 3;
    windows ``floor(i*n/o) .. ceil((i+1)*n/o)``): exact integer sums, rounded means."""
    import itertools

    a = per_tensor(f"adaptive_avg_pool{nd}d", a)
    xp = backend.array_module(a._data)
    size = (output_size,) * nd if isinstance(output_size, int) else tuple(output_size)
    ins = tuple(a.shape[-nd:])
    size = tuple(n if o is None else o for o, n in zip(size, ins))
    d = a._data.astype(xp.int64)
    sums = xp.zeros((*a.shape[:-nd], *size), xp.int64)
    div = xp.zeros(size, xp.int64)
    axes = tuple(range(-nd, 0))
    spans = [[((i * n) // o, math.ceil((i + 1) * n / o)) for i in range(o)]
             for n, o in zip(ins, size)]  # fmt: skip
    for idx in itertools.product(*[range(o) for o in size]):
        win = tuple(slice(*spans[k][i]) for k, i in enumerate(idx))
        sums[(..., *idx)] = d[(..., *win)].sum(axis=axes)
        div[idx] = math.prod(spans[k][i][1] - spans[k][i][0] for k, i in enumerate(idx))
    return _rounded_codes(a, sums / div)


def mean(a, dim=None, keepdim: bool = False) -> QTensor:
    """PyTorch's quantized mean (x86): over the innermost dims of a contiguous tensor the raw
    codes' float32 mean rounded half to even; over other dims, or of a quantized
    convolution's output (channels last in PyTorch), the dequantized mean quantized again;
    the input's qparams either way."""
    import manygrad as mg

    a = per_tensor("mean", a)
    xp = backend.array_module(a._data)
    nd = a.ndim
    dims = tuple(range(nd)) if dim is None or dim == () or dim == [] else (
        (dim,) if isinstance(dim, int) else tuple(dim))  # fmt: skip
    dims = tuple(sorted({d % nd if nd else 0 for d in dims}))
    contiguous = not getattr(a, "_channels_last", False)  # NOTE: a quantized conv's output
    if contiguous and dims == tuple(range(nd - len(dims), nd)):
        n = math.prod(a.shape[d] for d in dims)
        sums = a._data.astype(xp.int64).sum(axis=dims, keepdims=keepdim)
        means = xp.asarray(sums).astype(xp.float32) / xp.float32(n)
        return _rounded_codes(a, means)
    m = a.dequantize().mean(dim=list(dims) if dim is not None else None, keepdim=keepdim)
    return mg.quantize_per_tensor(m, a._scale, a._zp, a.dtype)


def _src_index(scale, out_i, align_corners: bool):
    """PyTorch's ``area_pixel_compute_source_index`` in float32 (linear modes)."""
    xp = backend.np
    f = xp.float32
    if align_corners:
        return f(scale) * out_i.astype(f)
    r = f(scale) * (out_i.astype(f) + f(0.5)) - f(0.5)
    return xp.maximum(r, f(0))


def _axis_scale(n_in: int, n_out: int, align_corners: bool, given) -> float:
    f = backend.np.float32
    if align_corners:
        return f(n_in - 1) / f(n_out - 1) if n_out > 1 else f(0)
    return f(1.0 / given) if given is not None and given > 0 else f(n_in) / f(n_out)


def upsample_bilinear2d(a, size, align_corners: bool, scales=(None, None)) -> QTensor:
    """``quantized::upsample_bilinear2d``: the four codes weighted in float32 as PyTorch's
    kernel weighs them, rounded, with the input's qparams."""
    a = per_tensor("upsample_bilinear2d", a)
    np = backend.np
    f = np.float32
    codes = backend.to_numpy(a._data).astype(f)
    h, w = a.shape[-2:]
    ho, wo = size
    idx = []
    for n_in, n_out, sc in ((h, ho, scales[0]), (w, wo, scales[1])):
        r = _src_index(_axis_scale(n_in, n_out, align_corners, sc), np.arange(n_out),
                       align_corners)  # fmt: skip
        i0 = r.astype(np.int64)
        i1 = np.where(i0 < n_in - 1, i0 + 1, i0)
        lam1 = (r - i0.astype(f)).astype(f)
        idx.append((i0, i1, (f(1) - lam1).astype(f), lam1))
    (h0, h1, hl0, hl1), (w0, w1, wl0, wl1) = idx
    hl0, hl1 = hl0[:, None], hl1[:, None]
    p00 = codes[..., h0[:, None], w0[None, :]]
    p01 = codes[..., h0[:, None], w1[None, :]]
    p10 = codes[..., h1[:, None], w0[None, :]]
    p11 = codes[..., h1[:, None], w1[None, :]]
    res = hl0 * (wl0 * p00 + wl1 * p01) + hl1 * (wl0 * p10 + wl1 * p11)
    lo, hi = _qmath.RANGES[a.dtype.name]
    out = np.clip(np.rint(res), lo, hi).astype(a.dtype.np)  # NOTE: the codes' own rounding
    xp = backend.array_module(a._data)
    out = out if xp is np else xp.asarray(out)
    return _make(out, a.dtype, a._scale, a._zp, None, a._device)


__all__ = ["add", "mul", "add_scalar", "mul_scalar", "cat", "clamp", "unary", "batch_norm",
           "avg_pool2d", "avg_pool3d", "adaptive_avg_pool", "adaptive_avg_pool2d", "mean",
           "upsample_bilinear2d", "threshold", "elementwise", "fixed_qparams", "normalize", "prelu"]  # fmt: skip
