"""Row softmax for attention: ``softmax(scale * x)`` over the last axis, forward and
backward, with an optional causal mask (query ``i`` sees keys ``<= i + (Tk - Tq)``).

One block per row on a GPU: a max pass, a sum-of-exponentials pass and a write pass over
the row, with the block reductions of the prelude.
"""

from __future__ import annotations

from .. import backend
from ..errors import ShapeError
from ._common import check_args, same_dtype
from .registry import Kernel, instantiate

CUDA = r"""
// ---- math body: one row, threads tid, tid + nthr, ... ------------------------------------
// columns >= limit are masked out (probability 0)
MG_FN int mg_softmax_limit(long long row, int n, int causal_tq) {
  if (causal_tq <= 0) return n;
  long long q = row % causal_tq;
  long long lim = q + 1 + (n - causal_tq);
  return lim < 0 ? 0 : (lim > n ? n : (int)lim);
}
template <typename T>
MG_FN void mg_softmax_fwd_row(const T* x, T* y, int n, int limit, float scale, int tid,
                              int nthr, float* scratch) {
  float m = -MG_INF;
  for (int j = tid; j < limit; j += nthr) m = fmaxf(m, mg_load(x + j) * scale);
  m = mg_block_max(m, scratch);
  float s = 0.0f;
  for (int j = tid; j < limit; j += nthr) s += expf(mg_load(x + j) * scale - m);
  s = mg_block_sum(s, scratch);
  float inv = 1.0f / s;
  // masked columns: 0, or NaN with the rest of a row whose scores are all NaN/-inf (torch)
  for (int j = tid; j < n; j += nthr)
    mg_store(y + j, j < limit ? expf(mg_load(x + j) * scale - m) * inv : 0.0f * inv);
}
template <typename T>
MG_FN void mg_softmax_bwd_row(const T* g, const T* y, T* dx, int n, float scale, int tid,
                              int nthr, float* scratch) {
  float d = 0.0f;
  for (int j = tid; j < n; j += nthr) d += mg_load(g + j) * mg_load(y + j);
  d = mg_block_sum(d, scratch);
  for (int j = tid; j < n; j += nthr)
    mg_store(dx + j, scale * (mg_load(y + j) * (mg_load(g + j) - d)));
}

#ifdef __CUDACC__
// ---- launch skeleton: one block per row --------------------------------------------------
template <typename T>
__global__ void mg_softmax_fwd(const T* x, T* y, long long rows, int n, float scale,
                               int causal_tq) {
  __shared__ float scratch[33];
  for (long long r = blockIdx.x; r < rows; r += gridDim.x)
    mg_softmax_fwd_row(x + r * n, y + r * n, n, mg_softmax_limit(r, n, causal_tq), scale,
                       MG_TID, MG_NTHR, scratch);
}
template <typename T>
__global__ void mg_softmax_bwd(const T* g, const T* y, T* dx, long long rows, int n,
                               float scale) {
  __shared__ float scratch[33];
  for (long long r = blockIdx.x; r < rows; r += gridDim.x)
    mg_softmax_bwd_row(g + r * n, y + r * n, dx + r * n, n, scale, MG_TID, MG_NTHR, scratch);
}
#else
// ---- host harness (tests) ------------------------------------------------------------------
#define MG_HOST_SOFTMAX(SUF, T)                                                           \
  MG_EXPORT void mg_host_softmax_fwd_##SUF(const T* x, T* y, long long rows, int n,      \
                                           float scale, int causal_tq) {                 \
    float s[33];                                                                         \
    for (long long r = 0; r < rows; ++r)                                                 \
      mg_softmax_fwd_row(x + r * n, y + r * n, n, mg_softmax_limit(r, n, causal_tq),     \
                         scale, 0, 1, s);                                                \
  }                                                                                      \
  MG_EXPORT void mg_host_softmax_bwd_##SUF(const T* g, const T* y, T* dx, long long rows, \
                                           int n, float scale) {                         \
    float s[33];                                                                         \
    for (long long r = 0; r < rows; ++r)                                                 \
      mg_softmax_bwd_row(g + r * n, y + r * n, dx + r * n, n, scale, 0, 1, s);           \
  }
MG_HOST_SOFTMAX(f32, float)
MG_HOST_SOFTMAX(bf16, mg_bf16)
MG_HOST_SOFTMAX(f16, mg_f16)
#endif
"""

KERNEL = Kernel(
    name="softmax",
    source=CUDA,
    entries=instantiate("mg_softmax_fwd") + instantiate("mg_softmax_bwd"),
    doc="row softmax with scale and causal mask (attention), forward and backward",
    host=("mg_host_softmax_fwd_{f32,bf16,f16}", "mg_host_softmax_bwd_{f32,bf16,f16}"),
)


def _causal_mask(xp, tq, n):
    """(tq, n) True where query i may not see key j (j > i + n - tq)."""
    q = xp.arange(tq)[:, None]
    k = xp.arange(n)[None, :]
    return k > q + (n - tq)


def softmax_forward(x, scale: float = 1.0, causal: bool = False):
    """NumPy twin: ``softmax(scale * x)`` over the last axis, in float32, in ``x``'s dtype.

    Args:
        x: array (..., n); with ``causal`` (..., Tq, n), Tq <= n.
        scale: multiplies the scores first (default 1.0; ``1/sqrt(d)`` in attention).
        causal: mask keys after each query (aligned to the end), as ``is_causal=True``.

    Example: ``p = softmax_forward(scores, 0.125, causal=True)``.
    """
    check_args("softmax_forward", x=x)
    xp = backend.array_module(x)
    v = x.astype(xp.float32) * scale
    if causal:
        _check_causal(x)
        v = xp.where(_causal_mask(xp, x.shape[-2], x.shape[-1]), -xp.inf, v)
    m = v.max(axis=-1, keepdims=True)
    e = xp.exp(v - m)
    e *= 1.0 / e.sum(axis=-1, keepdims=True)
    return e.astype(x.dtype, copy=False)


def softmax_backward(g, y, scale: float = 1.0):
    """NumPy twin of the backward: ``scale * y * (g - sum(g * y))`` per row."""
    check_args("softmax_backward", g=g, y=y)
    same_dtype("softmax_backward", g=g, y=y)
    xp = backend.array_module(y)
    g32, y32 = g.astype(xp.float32), y.astype(xp.float32)
    d = (g32 * y32).sum(axis=-1, keepdims=True)
    return (scale * (y32 * (g32 - d))).astype(y.dtype, copy=False)


def _check_causal(x):
    if x.ndim < 2 or x.shape[-2] > x.shape[-1]:
        raise ShapeError(
            f"softmax: a causal mask needs scores (..., Tq, Tk) with Tq <= Tk, got shape "
            f"{tuple(x.shape)}"
        )


# ---------------------------------------------------------------------------- GPU launch


def gpu_forward(x, scale: float = 1.0, causal: bool = False):
    """CuPy launch of ``mg_softmax_fwd`` (unverified until a GPU run records it)."""
    from . import launch

    launch.require_contiguous("softmax_forward", x=x)
    if causal:
        _check_causal(x)
    xp = backend.array_module(x)
    y = xp.empty_like(x)
    n = x.shape[-1]
    rows = x.size // max(n, 1)
    tq = x.shape[-2] if causal else 0
    launch.rows(KERNEL, "mg_softmax_fwd", x.dtype, rows,
                (x, y, launch.Long(rows), n, float(scale), tq))  # fmt: skip
    return y


def gpu_backward(g, y, scale: float = 1.0):
    """CuPy launch of ``mg_softmax_bwd``."""
    from . import launch

    launch.require_contiguous("softmax_backward", g=g, y=y)
    same_dtype("softmax_backward", g=g, y=y)
    xp = backend.array_module(y)
    dx = xp.empty_like(y)
    n = y.shape[-1]
    rows = y.size // max(n, 1)
    launch.rows(KERNEL, "mg_softmax_bwd", y.dtype, rows,
                (g, y, dx, launch.Long(rows), n, float(scale)))  # fmt: skip
    return dx
