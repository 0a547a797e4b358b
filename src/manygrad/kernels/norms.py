"""LayerNorm and RMSNorm over the last axis, forward and backward.

Forward: one block per row (two passes: mean, then variance of the centred row), saving
float32 ``mean``/``rstd`` per row. Backward: ``dx`` per row, and the weight/bias gradients
summed over rows: each block adds its rows into shared memory (each column owned by one
thread, so no atomics inside a block), then once into the float32 outputs with atomicAdd.
"""

from __future__ import annotations

from .. import backend
from ..errors import ShapeError
from ._common import check_args, same_dtype
from .registry import Kernel, instantiate

CUDA = r"""
// ---- math body: one row of n values --------------------------------------------------------
template <typename T>
MG_FN void mg_ln_fwd_row(const T* x, const T* w, const T* b, T* y, float* mean_out,
                         float* rstd_out, int n, float eps, int tid, int nthr, float* scratch) {
  float s = 0.0f;
  for (int j = tid; j < n; j += nthr) s += mg_load(x + j);
  float mean = mg_block_sum(s, scratch) / (float)n;
  float v = 0.0f;
  for (int j = tid; j < n; j += nthr) { float d = mg_load(x + j) - mean; v += d * d; }
  float rstd = 1.0f / sqrtf(mg_block_sum(v, scratch) / (float)n + eps);
  for (int j = tid; j < n; j += nthr) {
    float o = (mg_load(x + j) - mean) * rstd;
    if (w) o *= mg_load(w + j);
    if (b) o += mg_load(b + j);
    mg_store(y + j, o);
  }
  if (tid == 0) { *mean_out = mean; *rstd_out = rstd; }
}
// dx = rstd * (g w - mean(g w) - xhat * mean(g w xhat)); dw += g xhat, db += g
template <typename T>
MG_FN void mg_ln_bwd_row(const T* g, const T* x, const T* w, float mean, float rstd, T* dx,
                         float* dw, float* db, int n, int tid, int nthr, float* scratch) {
  float a = 0.0f, c = 0.0f;
  for (int j = tid; j < n; j += nthr) {
    float gj = mg_load(g + j), xh = (mg_load(x + j) - mean) * rstd;
    float gw = w ? gj * mg_load(w + j) : gj;
    a += gw;
    c += gw * xh;
  }
  float m1 = mg_block_sum(a, scratch) / (float)n, m2 = mg_block_sum(c, scratch) / (float)n;
  for (int j = tid; j < n; j += nthr) {
    float gj = mg_load(g + j), xh = (mg_load(x + j) - mean) * rstd;
    float gw = w ? gj * mg_load(w + j) : gj;
    mg_store(dx + j, rstd * (gw - m1 - xh * m2));
    if (dw) dw[j] += gj * xh;
    if (db) db[j] += gj;
  }
}
template <typename T>
MG_FN void mg_rms_fwd_row(const T* x, const T* w, T* y, float* rstd_out, int n, float eps,
                          int tid, int nthr, float* scratch) {
  float s = 0.0f;
  for (int j = tid; j < n; j += nthr) { float v = mg_load(x + j); s += v * v; }
  float r = 1.0f / sqrtf(mg_block_sum(s, scratch) / (float)n + eps);
  for (int j = tid; j < n; j += nthr) {
    float o = mg_load(x + j) * r;
    if (w) o *= mg_load(w + j);
    mg_store(y + j, o);
  }
  if (tid == 0) *rstd_out = r;
}
// dx = r * (g w - xhat * mean(g w xhat)); dw += g xhat
template <typename T>
MG_FN void mg_rms_bwd_row(const T* g, const T* x, const T* w, float r, T* dx, float* dw, int n,
                          int tid, int nthr, float* scratch) {
  float c = 0.0f;
  for (int j = tid; j < n; j += nthr) {
    float gj = mg_load(g + j), xh = mg_load(x + j) * r;
    c += (w ? gj * mg_load(w + j) : gj) * xh;
  }
  float m = mg_block_sum(c, scratch) / (float)n;
  for (int j = tid; j < n; j += nthr) {
    float gj = mg_load(g + j), xh = mg_load(x + j) * r;
    mg_store(dx + j, r * ((w ? gj * mg_load(w + j) : gj) - xh * m));
    if (dw) dw[j] += gj * xh;
  }
}

#ifdef __CUDACC__
// ---- launch skeletons ----------------------------------------------------------------------
template <typename T>
__global__ void mg_ln_fwd(const T* x, const T* w, const T* b, T* y, float* mean, float* rstd,
                          long long rows, int n, float eps) {
  __shared__ float scratch[33];
  for (long long r = blockIdx.x; r < rows; r += gridDim.x)
    mg_ln_fwd_row(x + r * n, w, b, y + r * n, mean + r, rstd + r, n, eps, MG_TID, MG_NTHR,
                  scratch);
}
// dynamic shared memory: 2 n floats (partial dw, db of this block's rows)
template <typename T>
__global__ void mg_ln_bwd(const T* g, const T* x, const T* w, const float* mean,
                          const float* rstd, T* dx, float* dw, float* db, long long rows, int n) {
  __shared__ float scratch[33];
  extern __shared__ float acc[];
  float* sdw = dw ? acc : (float*)0;
  float* sdb = db ? acc + n : (float*)0;
  for (int j = MG_TID; j < 2 * n; j += MG_NTHR) acc[j] = 0.0f;
  __syncthreads();
  for (long long r = blockIdx.x; r < rows; r += gridDim.x)
    mg_ln_bwd_row(g + r * n, x + r * n, w, mean[r], rstd[r], dx + r * n, sdw, sdb, n, MG_TID,
                  MG_NTHR, scratch);
  __syncthreads();
  for (int j = MG_TID; j < n; j += MG_NTHR) {
    if (dw) atomicAdd(dw + j, sdw[j]);
    if (db) atomicAdd(db + j, sdb[j]);
  }
}
template <typename T>
__global__ void mg_rms_fwd(const T* x, const T* w, T* y, float* rstd, long long rows, int n,
                           float eps) {
  __shared__ float scratch[33];
  for (long long r = blockIdx.x; r < rows; r += gridDim.x)
    mg_rms_fwd_row(x + r * n, w, y + r * n, rstd + r, n, eps, MG_TID, MG_NTHR, scratch);
}
template <typename T>
__global__ void mg_rms_bwd(const T* g, const T* x, const T* w, const float* rstd, T* dx,
                           float* dw, long long rows, int n) {
  __shared__ float scratch[33];
  extern __shared__ float acc[];
  for (int j = MG_TID; j < n; j += MG_NTHR) acc[j] = 0.0f;
  __syncthreads();
  for (long long r = blockIdx.x; r < rows; r += gridDim.x)
    mg_rms_bwd_row(g + r * n, x + r * n, w, rstd[r], dx + r * n, dw ? acc : (float*)0, n,
                   MG_TID, MG_NTHR, scratch);
  __syncthreads();
  if (dw)
    for (int j = MG_TID; j < n; j += MG_NTHR) atomicAdd(dw + j, acc[j]);
}
#else
// ---- host harness (tests): dw/db accumulate straight into the (zeroed) outputs ----------
#define MG_HOST_NORMS(SUF, T)                                                                \
  MG_EXPORT void mg_host_ln_fwd_##SUF(const T* x, const T* w, const T* b, T* y, float* mean, \
                                      float* rstd, long long rows, int n, float eps) {       \
    float s[33];                                                                            \
    for (long long r = 0; r < rows; ++r)                                                    \
      mg_ln_fwd_row(x + r * n, w, b, y + r * n, mean + r, rstd + r, n, eps, 0, 1, s);      \
  }                                                                                         \
  MG_EXPORT void mg_host_ln_bwd_##SUF(const T* g, const T* x, const T* w, const float* mean, \
                                      const float* rstd, T* dx, float* dw, float* db,       \
                                      long long rows, int n) {                              \
    float s[33];                                                                            \
    for (long long r = 0; r < rows; ++r)                                                    \
      mg_ln_bwd_row(g + r * n, x + r * n, w, mean[r], rstd[r], dx + r * n, dw, db, n, 0, 1, \
                    s);                                                                     \
  }                                                                                         \
  MG_EXPORT void mg_host_rms_fwd_##SUF(const T* x, const T* w, T* y, float* rstd,           \
                                       long long rows, int n, float eps) {                  \
    float s[33];                                                                            \
    for (long long r = 0; r < rows; ++r)                                                    \
      mg_rms_fwd_row(x + r * n, w, y + r * n, rstd + r, n, eps, 0, 1, s);                   \
  }                                                                                         \
  MG_EXPORT void mg_host_rms_bwd_##SUF(const T* g, const T* x, const T* w, const float* rstd, \
                                       T* dx, float* dw, long long rows, int n) {           \
    float s[33];                                                                            \
    for (long long r = 0; r < rows; ++r)                                                    \
      mg_rms_bwd_row(g + r * n, x + r * n, w, rstd[r], dx + r * n, dw, n, 0, 1, s);         \
  }
MG_HOST_NORMS(f32, float)
MG_HOST_NORMS(bf16, mg_bf16)
MG_HOST_NORMS(f16, mg_f16)
#endif
"""

KERNEL = Kernel(
    name="norms",
    source=CUDA,
    entries=(
        instantiate("mg_ln_fwd")
        + instantiate("mg_ln_bwd")
        + instantiate("mg_rms_fwd")
        + instantiate("mg_rms_bwd")
    ),  # fmt: skip
    doc="LayerNorm and RMSNorm over the last axis, forward and backward",
    host=("mg_host_{ln,rms}_{fwd,bwd}_{f32,bf16,f16}",),
)

MAX_COLS = 6000  # 2 * n floats of shared memory (+ 33 static) must fit in 48 KiB


def _check(op, x, **params):
    check_args(op, x=x, **params)
    same_dtype(op, x=x, **{k: v for k, v in params.items() if k in ("g", "weight", "bias")})
    for name in ("weight", "bias"):
        p = params.get(name)
        if p is not None and (x.ndim == 0 or p.shape != (x.shape[-1],)):
            raise ShapeError(
                f"{op}: {name} must have shape ({x.shape[-1] if x.ndim else '?'},) to match "
                f"the last dim of x {tuple(x.shape)}, got {tuple(p.shape)}"
            )


def _rows(a):
    xp = backend.array_module(a)
    return xp, a.reshape(-1, a.shape[-1]).astype(xp.float32)


def layer_norm_forward(x, weight=None, bias=None, eps: float = 1e-5):
    """NumPy twin: ``(y, mean, rstd)``; y in x's dtype, mean/rstd float32 per row.

    Args:
        x: (..., D) float32/bfloat16/float16, normalised over the last axis.
        weight, bias: (D,) of x's dtype, or None (default).
        eps: added to the variance (default 1e-5).

    Example: ``y, mu, rstd = layer_norm_forward(h, gamma, beta)``.
    """
    _check("layer_norm_forward", x, weight=weight, bias=bias)
    xp, x2 = _rows(x)
    n = x2.shape[1]
    mean = x2.sum(axis=1) / xp.float32(n)
    d = x2 - mean[:, None]
    rstd = 1.0 / xp.sqrt((d * d).sum(axis=1) / xp.float32(n) + xp.float32(eps))
    y = d * rstd[:, None]
    if weight is not None:
        y *= weight.astype(xp.float32)
    if bias is not None:
        y += bias.astype(xp.float32)
    return y.reshape(x.shape).astype(x.dtype, copy=False), mean, rstd


def layer_norm_backward(g, x, weight, mean, rstd, bias_grad: bool = True):
    """NumPy twin of the backward: ``(dx, dweight, dbias)`` (None where not asked)."""
    _check("layer_norm_backward", x, g=g, weight=weight, mean=mean, rstd=rstd)
    xp, x2 = _rows(x)
    g2 = g.reshape(x2.shape).astype(xp.float32)
    n = x2.shape[1]
    xh = (x2 - mean[:, None]) * rstd[:, None]
    gw = g2 * weight.astype(xp.float32) if weight is not None else g2
    m1 = gw.sum(axis=1, keepdims=True) / xp.float32(n)
    m2 = (gw * xh).sum(axis=1, keepdims=True) / xp.float32(n)
    dx = rstd[:, None] * (gw - m1 - xh * m2)
    dw = _col_sum(g2 * xh, x.dtype) if weight is not None else None
    db = _col_sum(g2, x.dtype) if bias_grad else None
    return dx.reshape(x.shape).astype(x.dtype, copy=False), dw, db


def _col_sum(a, dtype):
    """Column sums over all rows, accumulated in float64.

    NOTE: NumPy adds the rows of a float32 column sum one after another, which loses ~3e-4
    (relative) over 8192 rows; the GPU kernels' per-block partial sums are ~1e-5 off. The
    twins are the references those kernels are checked against, so they sum accurately.
    """
    xp = backend.array_module(a)
    return a.sum(axis=0, dtype=xp.float64).astype(dtype, copy=False)


def rms_norm_forward(x, weight=None, eps: float = 1.1920928955078125e-07):
    """NumPy twin: ``(y, rstd)``; ``y = x / sqrt(mean(x^2) + eps) * weight``.

    eps defaults to float32's machine epsilon, as ``F.rms_norm`` for float32/16-bit input.
    """
    _check("rms_norm_forward", x, weight=weight)
    xp, x2 = _rows(x)
    r = 1.0 / xp.sqrt((x2 * x2).sum(axis=1) / xp.float32(x2.shape[1]) + xp.float32(eps))
    y = x2 * r[:, None]
    if weight is not None:
        y *= weight.astype(xp.float32)
    return y.reshape(x.shape).astype(x.dtype, copy=False), r


def rms_norm_backward(g, x, weight, rstd):
    """NumPy twin of the backward: ``(dx, dweight)`` (dweight None without a weight)."""
    _check("rms_norm_backward", x, g=g, weight=weight, rstd=rstd)
    xp, x2 = _rows(x)
    g2 = g.reshape(x2.shape).astype(xp.float32)
    xh = x2 * rstd[:, None]
    gw = g2 * weight.astype(xp.float32) if weight is not None else g2
    m = (gw * xh).sum(axis=1, keepdims=True) / xp.float32(x2.shape[1])
    dx = rstd[:, None] * (gw - xh * m)
    dw = _col_sum(g2 * xh, x.dtype) if weight is not None else None
    return dx.reshape(x.shape).astype(x.dtype, copy=False), dw


# ---------------------------------------------------------------------------- GPU launch


def _gpu_prep(op, x, **arrays):
    from . import launch

    _check(op, x, **{k: v for k, v in arrays.items() if k != "y"})
    launch.require_contiguous(op, x=x, **arrays)
    if x.shape[-1] > MAX_COLS and op.endswith("backward"):
        raise launch.UnsupportedCallError(f"{op}: rows of {x.shape[-1]} > {MAX_COLS} values")
    n = x.shape[-1]
    return launch, backend.array_module(x), x.size // max(n, 1), n


def gpu_layer_norm_forward(x, weight=None, bias=None, eps: float = 1e-5):
    """CuPy launch of ``mg_ln_fwd`` (unverified until a GPU run records it)."""
    launch, xp, rows, n = _gpu_prep("layer_norm_forward", x, weight=weight, bias=bias)
    y, mean, rstd = xp.empty_like(x), xp.empty(rows, xp.float32), xp.empty(rows, xp.float32)
    launch.rows(KERNEL, "mg_ln_fwd", x.dtype, rows,
                (x, weight, bias, y, mean, rstd, launch.Long(rows), n, float(eps)))  # fmt: skip
    return y, mean, rstd


def gpu_layer_norm_backward(g, x, weight, mean, rstd, bias_grad: bool = True):
    """CuPy launch of ``mg_ln_bwd``."""
    launch, xp, rows, n = _gpu_prep("layer_norm_backward", x, g=g, weight=weight, mean=mean,
                                    rstd=rstd)  # fmt: skip
    dx = xp.empty_like(x)
    dw = xp.zeros(n, xp.float32) if weight is not None else None
    db = xp.zeros(n, xp.float32) if bias_grad else None
    launch.rows(KERNEL, "mg_ln_bwd", x.dtype, rows,
                (g, x, weight, mean, rstd, dx, dw, db, launch.Long(rows), n),
                shared_bytes=8 * n, max_blocks=512)  # fmt: skip
    cast = lambda a: None if a is None else a.astype(x.dtype, copy=False)  # noqa: E731
    return dx, cast(dw), cast(db)


def gpu_rms_norm_forward(x, weight=None, eps: float = 1.1920928955078125e-07):
    """CuPy launch of ``mg_rms_fwd``."""
    launch, xp, rows, n = _gpu_prep("rms_norm_forward", x, weight=weight)
    y, rstd = xp.empty_like(x), xp.empty(rows, xp.float32)
    launch.rows(KERNEL, "mg_rms_fwd", x.dtype, rows,
                (x, weight, y, rstd, launch.Long(rows), n, float(eps)))  # fmt: skip
    return y, rstd


def gpu_rms_norm_backward(g, x, weight, rstd):
    """CuPy launch of ``mg_rms_bwd``."""
    launch, xp, rows, n = _gpu_prep("rms_norm_backward", x, g=g, weight=weight, rstd=rstd)
    dx = xp.empty_like(x)
    dw = xp.zeros(n, xp.float32) if weight is not None else None
    launch.rows(KERNEL, "mg_rms_bwd", x.dtype, rows,
                (g, x, weight, rstd, dx, dw, launch.Long(rows), n),
                shared_bytes=4 * n, max_blocks=512)  # fmt: skip
    return dx, None if dw is None else dw.astype(x.dtype, copy=False)
