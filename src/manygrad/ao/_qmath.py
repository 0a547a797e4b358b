"""The integer arithmetic behind quantized tensors and modules, on raw arrays.

Rounding follows PyTorch's CPU kernels (x86/fbgemm), measured against them:
- per-tensor quint8/qint8: ``q = rint(fma(x, 1/scale, zero_point))``, one rounding of
  ``x * inv + zp`` to float32 before rounding to an integer;
- per-tensor qint32 and every per-channel quantization: ``rint(f32(x * inv) + zp)``;
- NaN goes to ``quant_max``, +-inf to the nearer bound;
- ``inv = float32(1) / float32(scale)``; the half-way cases round to even.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from .. import dtypes as D

RANGES = {"qint8": (-128, 127), "quint8": (0, 255), "qint32": (-(2**31), 2**31 - 1),
          "quint4x2": (0, 15)}  # fmt: skip
_F32 = np.float32
_SMALL_SCALE = float(np.float32(6.1e-5))  # NOTE: PyTorch's float32 floor on dynamic scales


def quantize(x, scale, zero_point, qdtype: D.dtype, shape=None):
    """Integer codes of float array ``x`` (float32 arithmetic); ``shape`` broadcasts per-channel
    ``scale`` (float64 array) and ``zero_point`` (int64 array) along their axis."""
    xp = backend.array_module(x)
    lo, hi = RANGES[qdtype.name]
    x = x.astype(xp.float32, copy=False)
    with backend.quiet_float_errors():
        if shape is None:
            inv = _F32(1) / _F32(scale)
            if qdtype is D.qint32:
                v = x * inv + _F32(zero_point)
            else:  # NOTE: emulates the fused multiply-add: the float64 product is exact
                v = (x.astype(xp.float64) * float(inv) + zero_point).astype(xp.float32)
        else:
            sc = xp.asarray(scale).astype(xp.float32).reshape(shape)
            inv = (xp.float32(1) / sc).astype(xp.float32)
            v = x * inv + xp.asarray(zero_point).astype(xp.float32).reshape(shape)
        v = xp.rint(v.astype(xp.float64))
        # NOTE: fmin first: NaN becomes quant_max, as in PyTorch's kernels
        v = xp.fmax(xp.fmin(v, float(hi)), float(lo))
    return v.astype(qdtype.np)


def dequantize(q, scale, zero_point, shape=None):
    """float32 values of integer codes ``q``: ``(q - zero_point) * scale``."""
    xp = backend.array_module(q)
    if shape is not None and zero_point.dtype.kind == "f":  # NOTE: float qparams, in float32
        zf = xp.asarray(zero_point, dtype=xp.float32).reshape(shape)
        return (q.astype(xp.float32) - zf) * xp.asarray(scale, dtype=xp.float32).reshape(shape)
    d = q.astype(xp.int64) - (zero_point if shape is None else
                               xp.asarray(zero_point).reshape(shape))  # fmt: skip
    if shape is None:
        return d.astype(xp.float32) * _F32(scale)
    # NOTE: per channel PyTorch multiplies by the float64 scales, then rounds to float32
    return (d * xp.asarray(scale, dtype=xp.float64).reshape(shape)).astype(xp.float32)


def choose_qparams(x_min: float, x_max: float, qmin: int, qmax: int,
                   reduce_range: bool = False) -> tuple[float, int]:  # fmt: skip
    """PyTorch's ``ChooseQuantizationParams`` (dynamic quantization): a float64 scale over
    ``[min(x_min, 0), max(x_max, 0)]`` and the zero point nudged from the nearer end."""
    if reduce_range:
        qmin, qmax = qmin // 2, qmax // 2
    lo, hi = min(float(x_min), 0.0), max(float(x_max), 0.0)
    scale = (hi - lo) / (qmax - qmin)
    with np.errstate(divide="ignore", over="ignore"):
        if _F32(scale) == 0 or np.isinf(_F32(1) / _F32(scale)):
            scale = 0.1
    if scale < _SMALL_SCALE:
        org, scale = scale, _SMALL_SCALE
        if lo == 0:
            hi = _SMALL_SCALE * (qmax - qmin)
        elif hi == 0:
            lo = -_SMALL_SCALE * (qmax - qmin)
        else:
            lo, hi = lo * (_SMALL_SCALE / org), hi * (_SMALL_SCALE / org)
    from_min, from_max = qmin - lo / scale, qmax - hi / scale
    err_min, err_max = abs(qmin) - abs(lo / scale), abs(qmax) - abs(hi / scale)
    zp = from_min if err_min < err_max else from_max
    zp = qmin if zp < qmin else qmax if zp > qmax else int(np.rint(zp))
    return float(scale), int(zp)


def int_matmul(a, b):
    """Exact ``a @ b.T`` of integer arrays (products summed in float64: exact below 2**53)."""
    xp = backend.array_module(a)
    return xp.matmul(a.astype(xp.float64), b.astype(xp.float64).T)


def requantize(
    acc,
    in_scale: float,
    w_scale,
    bias,
    out_scale: float,
    out_zp: int,
    qdtype: D.dtype,
    relu: bool = False,
    channel_shape=None,
):
    """Output codes from int32 accumulators, as fbgemm's requantization with a float bias:
    ``rint((acc + bias / (s_in * s_w)) * (s_in * s_w / s_out)) + zp_out``, clamped."""
    xp = backend.array_module(acc)
    w = xp.asarray(w_scale, dtype=xp.float32)
    if channel_shape is not None and w.ndim:
        w = w.reshape(channel_shape)
    aw = (_F32(in_scale) * w).astype(xp.float32)
    mult = (aw / _F32(out_scale)).astype(xp.float32)
    v = acc.astype(xp.float32)
    if bias is not None:
        b = bias.astype(xp.float32)
        v = v + (b.reshape(channel_shape) if channel_shape is not None else b) / aw
    v = xp.rint(v.astype(xp.float32) * mult) + out_zp
    lo, hi = RANGES[qdtype.name]
    return xp.clip(v, out_zp if relu else lo, hi).astype(qdtype.np)


def float_output(acc, in_scale: float, w_scale, bias):
    """float32 output of a dynamic op: ``acc * (s_in * s_w) + bias`` rounded once (fma)."""
    xp = backend.array_module(acc)
    m = (_F32(in_scale) * xp.asarray(w_scale, dtype=xp.float32)).astype(xp.float32)
    out = acc.astype(xp.float32).astype(xp.float64) * m.astype(xp.float64)
    if bias is not None:
        out = out + bias.astype(xp.float64)
    return out.astype(xp.float32)
