"""Bias + GELU (tanh or erf form), forward and backward, in one pass over the data.

``y = gelu(x + bias)`` with the bias broadcast along the last axis; the backward gives
``dx = g * gelu'(x + bias)`` and ``dbias = dx`` summed over the leading axes. Storage may
be float32, bfloat16 or float16; the maths is float32.
"""

from __future__ import annotations

import math

from .. import backend
from ..errors import ShapeError
from ._common import check_args, same_dtype
from .registry import Kernel, instantiate

CUDA = r"""
// ---- math body -------------------------------------------------------------------------
#define MG_SQRT_2_OVER_PI 0.7978845608028654f
#define MG_GELU_C 0.044715f
#define MG_INV_SQRT2 0.7071067811865476f
#define MG_INV_SQRT_2PI 0.3989422804014327f

MG_FN float mg_gelu_tanh(float x) {
  float t = tanhf(MG_SQRT_2_OVER_PI * (x + MG_GELU_C * x * x * x));
  return 0.5f * x * (1.0f + t);
}
MG_FN float mg_gelu_tanh_grad(float x) {
  float t = tanhf(MG_SQRT_2_OVER_PI * (x + MG_GELU_C * x * x * x));
  float dt = (1.0f - t * t) * MG_SQRT_2_OVER_PI * (1.0f + 3.0f * MG_GELU_C * x * x);
  return 0.5f * (1.0f + t) + 0.5f * x * dt;
}
MG_FN float mg_gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * MG_INV_SQRT2)); }
MG_FN float mg_gelu_erf_grad(float x) {
  float cdf = 0.5f * (1.0f + erff(x * MG_INV_SQRT2));
  return cdf + x * (expf(-0.5f * x * x) * MG_INV_SQRT_2PI);
}

// element i of y = gelu(x + bias[i % cols]); bias may be null
template <typename T>
MG_FN void mg_bias_gelu_fwd_at(long long i, const T* x, const T* bias, T* y, int cols,
                               int approx_tanh) {
  float v = mg_load(x + i);
  if (bias) v += mg_load(bias + i % cols);
  mg_store(y + i, approx_tanh ? mg_gelu_tanh(v) : mg_gelu_erf(v));
}
template <typename T>
MG_FN void mg_bias_gelu_bwd_at(long long i, const T* g, const T* x, const T* bias, T* dx,
                               int cols, int approx_tanh) {
  float v = mg_load(x + i);
  if (bias) v += mg_load(bias + i % cols);
  mg_store(dx + i, mg_load(g + i) * (approx_tanh ? mg_gelu_tanh_grad(v) : mg_gelu_erf_grad(v)));
}

#ifdef __CUDACC__
// ---- launch skeleton: a grid-stride loop ------------------------------------------------
template <typename T>
__global__ void mg_bias_gelu_fwd(const T* x, const T* bias, T* y, long long n, int cols,
                                 int approx_tanh) {
  long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
    mg_bias_gelu_fwd_at(i, x, bias, y, cols, approx_tanh);
}
template <typename T>
__global__ void mg_bias_gelu_bwd(const T* g, const T* x, const T* bias, T* dx, long long n,
                                 int cols, int approx_tanh) {
  long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
    mg_bias_gelu_bwd_at(i, g, x, bias, dx, cols, approx_tanh);
}
#else
// ---- host harness (tests): the same bodies in a serial loop -----------------------------
#define MG_HOST_BIAS_GELU(SUF, T)                                                           \
  MG_EXPORT void mg_host_bias_gelu_fwd_##SUF(const T* x, const T* b, T* y, long long n,    \
                                             int cols, int approx) {                       \
    for (long long i = 0; i < n; ++i) mg_bias_gelu_fwd_at(i, x, b, y, cols, approx);       \
  }                                                                                        \
  MG_EXPORT void mg_host_bias_gelu_bwd_##SUF(const T* g, const T* x, const T* b, T* dx,    \
                                             long long n, int cols, int approx) {          \
    for (long long i = 0; i < n; ++i) mg_bias_gelu_bwd_at(i, g, x, b, dx, cols, approx);   \
  }
MG_HOST_BIAS_GELU(f32, float)
MG_HOST_BIAS_GELU(bf16, mg_bf16)
MG_HOST_BIAS_GELU(f16, mg_f16)
#endif
"""

KERNEL = Kernel(
    name="bias_gelu",
    source=CUDA,
    entries=instantiate("mg_bias_gelu_fwd") + instantiate("mg_bias_gelu_bwd"),
    doc="bias + GELU (tanh and erf), forward and backward",
    host=("mg_host_bias_gelu_fwd_{f32,bf16,f16}", "mg_host_bias_gelu_bwd_{f32,bf16,f16}"),
)

_K = math.sqrt(2 / math.pi)


def _check(op, approximate, **arrays):
    if approximate not in ("none", "tanh"):
        from ..ops.linalg_extra import ArgumentError  # NOTE: a RuntimeError, as PyTorch's

        raise ArgumentError(f"{op}: approximate must be 'none' or 'tanh', got {approximate!r}")
    dev = check_args(op, **arrays)
    same_dtype(op, **arrays)
    x, b = arrays["x"], arrays.get("bias")
    if b is not None and (b.ndim != 1 or x.ndim == 0 or b.shape[0] != x.shape[-1]):
        raise ShapeError(
            f"{op}: bias must have shape ({x.shape[-1] if x.ndim else '?'},) to match the "
            f"last dim of x {tuple(x.shape)}, got {tuple(b.shape)}"
        )
    return dev


def _pre(x, bias):
    xp = backend.array_module(x)
    v = x.astype(xp.float32)  # a copy, float32
    if bias is not None:
        v += bias.astype(xp.float32)
    return xp, v


def bias_gelu_forward(x, bias=None, approximate: str = "tanh"):
    """NumPy twin: ``gelu(x + bias)`` in float32, returned in ``x``'s dtype.

    Args:
        x: array (..., N) of float32/bfloat16/float16.
        bias: array (N,) of the same dtype, or None (default).
        approximate: "tanh" (default) or "none" (the erf form), as ``F.gelu``.

    Example: ``y = bias_gelu_forward(h, b, "tanh")``.
    """
    _check("bias_gelu_forward", approximate, x=x, bias=bias)
    xp, v = _pre(x, bias)
    if approximate == "tanh":
        t = xp.tanh(_K * (v + 0.044715 * v * v * v))
        y = 0.5 * v * (1.0 + t)
    else:
        y = 0.5 * v * (1.0 + backend.erf(v * (1 / math.sqrt(2))))
    return y.astype(x.dtype, copy=False)


def bias_gelu_backward(g, x, bias=None, approximate: str = "tanh"):
    """NumPy twin of the backward: ``(dx, dbias)``; ``dbias`` is None without a bias.

    ``dx = g * gelu'(x + bias)`` in ``x``'s dtype; ``dbias`` sums that ``dx`` over all but
    the last axis in float32 and is returned in ``x``'s dtype.
    """
    _check("bias_gelu_backward", approximate, g=g, x=x, bias=bias)
    xp, v = _pre(x, bias)
    if approximate == "tanh":
        t = xp.tanh(_K * (v + 0.044715 * v * v * v))
        dt = (1.0 - t * t) * _K * (1.0 + 3 * 0.044715 * v * v)
        d = 0.5 * (1.0 + t) + 0.5 * v * dt
    else:
        cdf = 0.5 * (1.0 + backend.erf(v * (1 / math.sqrt(2))))
        d = cdf + v * (xp.exp(-0.5 * v * v) * (1 / math.sqrt(2 * math.pi)))
    dx = (g.astype(xp.float32) * d).astype(x.dtype, copy=False)
    db = None
    if bias is not None:
        # NOTE: the sum of dx as stored (rounded to x's dtype), as the GPU path and
        # PyTorch's autograd for 16-bit tensors do; accumulated in float64 because NumPy adds
        # a float32 column sum's rows one after another (~1e-4 off over 8192 rows), and this
        # twin is what the GPU kernel is checked against
        db = dx.reshape(-1, x.shape[-1]).sum(axis=0, dtype=xp.float64).astype(x.dtype, copy=False)
    return dx, db


# ---------------------------------------------------------------------------- GPU launch


def gpu_forward(x, bias=None, approximate: str = "tanh"):
    """CuPy launch of ``mg_bias_gelu_fwd`` (unverified until a GPU run records it)."""
    from . import launch

    _check("bias_gelu_forward", approximate, x=x, bias=bias)
    launch.require_contiguous("bias_gelu_forward", x=x, bias=bias)
    xp = backend.array_module(x)
    y = xp.empty_like(x)
    n, cols = x.size, x.shape[-1] if x.ndim else 1
    launch.elementwise(KERNEL, "mg_bias_gelu_fwd", x.dtype, n,
                       (x, bias, y, launch.Long(n), cols, int(approximate == "tanh")))  # fmt: skip
    return y


def gpu_backward(g, x, bias=None, approximate: str = "tanh"):
    """CuPy launch of ``mg_bias_gelu_bwd``; ``dbias`` as a float32 column sum."""
    from . import launch

    _check("bias_gelu_backward", approximate, g=g, x=x, bias=bias)
    launch.require_contiguous("bias_gelu_backward", g=g, x=x, bias=bias)
    xp = backend.array_module(x)
    dx = xp.empty_like(x)
    n, cols = x.size, x.shape[-1] if x.ndim else 1
    launch.elementwise(KERNEL, "mg_bias_gelu_bwd", x.dtype, n,
                       (g, x, bias, dx, launch.Long(n), cols, int(approximate == "tanh")))  # fmt: skip
    db = None
    if bias is not None:
        db = dx.reshape(-1, cols).sum(axis=0, dtype=xp.float32).astype(x.dtype, copy=False)
    return dx, db
