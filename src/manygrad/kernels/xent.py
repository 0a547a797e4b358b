"""Softmax + cross-entropy over class logits (N, C), forward and backward, one pass a row.

As ``F.cross_entropy`` with class-index targets: ``ignore_index`` rows give 0 loss and 0
gradient; ``label_smoothing`` eps mixes the one-hot target with ``eps / C``; a target
outside ``[0, C)`` that is not ignored gives a NaN loss (checking would need a host sync).
The per-row losses are float32; ``reduce_loss`` applies 'mean' (over non-ignored rows, as
PyTorch) or 'sum'. Given the upstream gradient ``dloss`` in advance (per row, or one
device scalar such as ``1 / n_valid``), the forward also writes ``dlogits`` in the same
pass: one read of the logits for loss and gradient.
"""

from __future__ import annotations

from .. import backend
from ..errors import DTypeError, ShapeError
from ._common import check_args
from .registry import Kernel, instantiate

CUDA = r"""
// ---- math body: one row of C logits ------------------------------------------------------
// loss = (1 - eps) * (lse - x[t]) + eps * (lse - mean(x)); row ignored: 0; bad t: NaN.
// With dloss: dx[j] = dloss * (p[j] - (1 - eps) * [j == t] - eps / C).
template <typename T>
MG_FN void mg_xent_row(const T* x, long long t, int c, long long ignore_index, float eps,
                       float* loss, float* lse_out, const float* dloss, T* dx, int tid,
                       int nthr, float* scratch) {
  int ignored = t == ignore_index, bad = !ignored && (t < 0 || t >= c);
  float m = -MG_INF;
  for (int j = tid; j < c; j += nthr) m = fmaxf(m, mg_load(x + j));
  m = mg_block_max(m, scratch);
  float s = 0.0f, sx = 0.0f;
  for (int j = tid; j < c; j += nthr) {
    float v = mg_load(x + j);
    s += expf(v - m);
    sx += v;
  }
  s = mg_block_sum(s, scratch);
  if (eps != 0.0f) sx = mg_block_sum(sx, scratch);
  float lse = m + logf(s);
  float xt = (ignored || bad) ? 0.0f : mg_load(x + t);
  float l = (1.0f - eps) * (lse - xt);
  if (eps != 0.0f) l += eps * (lse - sx / (float)c);
  if (tid == 0) {
    *loss = ignored ? 0.0f : (bad ? mg_u2f(0x7fc00000u) : l);
    *lse_out = lse;
  }
  if (dx) {
    float d = ignored ? 0.0f : *dloss, inv = 1.0f / s, off = eps / (float)c;
    for (int j = tid; j < c; j += nthr) {
      float p = expf(mg_load(x + j) - m) * inv;
      mg_store(dx + j, d * (p - (j == t ? 1.0f - eps : 0.0f) - off));
    }
  }
}
// the backward from the saved log-sum-exp
template <typename T>
MG_FN void mg_xent_bwd_row(const T* x, long long t, int c, long long ignore_index, float eps,
                           float lse, float dloss, T* dx, int tid, int nthr) {
  float d = t == ignore_index ? 0.0f : dloss, off = eps / (float)c;
  for (int j = tid; j < c; j += nthr) {
    float p = expf(mg_load(x + j) - lse);
    mg_store(dx + j, d * (p - (j == t ? 1.0f - eps : 0.0f) - off));
  }
}

#ifdef __CUDACC__
// ---- launch skeleton: one block per row; dloss_stride 0 broadcasts one scalar ----------
template <typename T>
__global__ void mg_xent_fwd(const T* x, const long long* target, float* loss, float* lse,
                            const float* dloss, long long dloss_stride, T* dx, long long rows,
                            int c, long long ignore_index, float eps) {
  __shared__ float scratch[33];
  for (long long r = blockIdx.x; r < rows; r += gridDim.x)
    mg_xent_row(x + r * c, target[r], c, ignore_index, eps, loss + r, lse + r,
                dloss ? dloss + r * dloss_stride : dloss, dx ? dx + r * c : dx, MG_TID,
                MG_NTHR, scratch);
}
template <typename T>
__global__ void mg_xent_bwd(const T* x, const long long* target, const float* lse,
                            const float* dloss, long long dloss_stride, T* dx, long long rows,
                            int c, long long ignore_index, float eps) {
  for (long long r = blockIdx.x; r < rows; r += gridDim.x)
    mg_xent_bwd_row(x + r * c, target[r], c, ignore_index, eps, lse[r],
                    dloss[r * dloss_stride], dx + r * c, MG_TID, MG_NTHR);
}
#else
// ---- host harness (tests) ------------------------------------------------------------------
#define MG_HOST_XENT(SUF, T)                                                                \
  MG_EXPORT void mg_host_xent_fwd_##SUF(const T* x, const long long* t, float* loss,       \
                                        float* lse, const float* dloss, long long dstride, \
                                        T* dx, long long rows, int c, long long ign,       \
                                        float eps) {                                       \
    float s[33];                                                                           \
    for (long long r = 0; r < rows; ++r)                                                   \
      mg_xent_row(x + r * c, t[r], c, ign, eps, loss + r, lse + r,                         \
                  dloss ? dloss + r * dstride : dloss, dx ? dx + r * c : dx, 0, 1, s);     \
  }                                                                                        \
  MG_EXPORT void mg_host_xent_bwd_##SUF(const T* x, const long long* t, const float* lse,  \
                                        const float* dloss, long long dstride, T* dx,      \
                                        long long rows, int c, long long ign, float eps) { \
    for (long long r = 0; r < rows; ++r)                                                   \
      mg_xent_bwd_row(x + r * c, t[r], c, ign, eps, lse[r], dloss[r * dstride], dx + r * c, \
                      0, 1);                                                               \
  }
MG_HOST_XENT(f32, float)
MG_HOST_XENT(bf16, mg_bf16)
MG_HOST_XENT(f16, mg_f16)
#endif
"""

KERNEL = Kernel(
    name="cross_entropy",
    source=CUDA,
    entries=instantiate("mg_xent_fwd") + instantiate("mg_xent_bwd"),
    doc="softmax + cross-entropy (label smoothing, ignore_index), loss and dlogits",
    host=("mg_host_xent_fwd_{f32,bf16,f16}", "mg_host_xent_bwd_{f32,bf16,f16}"),
)


def _check(op, logits, target, label_smoothing, **more):
    check_args(op, logits=logits, target=target, **more)
    if logits.ndim != 2 or target.shape != logits.shape[:1]:
        raise ShapeError(
            f"{op}: expected logits (N, C) and target (N,), got {tuple(logits.shape)} and "
            f"{tuple(target.shape)}"
        )
    if target.dtype.kind not in "iu":
        raise DTypeError(f"{op}: target must hold class indices (int64), got {target.dtype}")
    if not 0.0 <= label_smoothing <= 1.0:
        from ..ops.linalg_extra import ArgumentError  # NOTE: a RuntimeError, as PyTorch's

        raise ArgumentError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")


def cross_entropy_forward(logits, target, ignore_index: int = -100, label_smoothing=0.0):
    """NumPy twin: per-row losses and log-sum-exps, both float32 (N,).

    Args:
        logits: (N, C) float32/bfloat16/float16 scores.
        target: (N,) integer class indices.
        ignore_index: rows with this target give 0 (default -100).
        label_smoothing: eps in [0, 1] (default 0).

    Example: ``loss, lse = cross_entropy_forward(z, y); loss.sum() / (y != -100).sum()``.
    """
    _check("cross_entropy_forward", logits, target, label_smoothing)
    xp = backend.array_module(logits)
    x = logits.astype(xp.float32)
    n, c = x.shape
    m = x.max(axis=1)
    lse = m + xp.log(xp.exp(x - m[:, None]).sum(axis=1))
    t = target.astype(xp.int64)
    ignored = t == ignore_index
    bad = ~ignored & ((t < 0) | (t >= c))
    xt = xp.take_along_axis(x, xp.where(ignored | bad, 0, t)[:, None], axis=1)[:, 0]
    eps = xp.float32(label_smoothing)
    loss = (1 - eps) * (lse - xt)
    if label_smoothing:
        loss += eps * (lse - x.sum(axis=1) / xp.float32(c))
    loss = xp.where(ignored, xp.float32(0), xp.where(bad, xp.float32(xp.nan), loss))
    return loss.astype(xp.float32, copy=False), lse.astype(xp.float32, copy=False)


def cross_entropy_backward(logits, target, lse, dloss, ignore_index=-100, label_smoothing=0.0):
    """NumPy twin of the backward: ``dlogits`` in the logits' dtype.

    ``dloss`` is the gradient of each row's loss, float32 (N,), or a 0-d array for all.
    """
    _check("cross_entropy_backward", logits, target, label_smoothing, lse=lse, dloss=dloss)
    xp = backend.array_module(logits)
    x = logits.astype(xp.float32)
    n, c = x.shape
    t = target.astype(xp.int64)
    d = xp.broadcast_to(dloss.astype(xp.float32), (n,))
    d = xp.where(t == ignore_index, xp.float32(0), d)
    eps = xp.float32(label_smoothing)
    p = xp.exp(x - lse.astype(xp.float32)[:, None])
    onehot = xp.arange(c)[None, :] == t[:, None]
    g = p - xp.where(onehot, 1 - eps, xp.float32(0)) - eps / xp.float32(c)
    return (d[:, None] * g).astype(logits.dtype, copy=False)


def cross_entropy_fused(logits, target, dloss, ignore_index=-100, label_smoothing=0.0):
    """NumPy twin of the one-pass kernel: ``(loss, lse, dlogits)`` from known ``dloss``."""
    loss, lse = cross_entropy_forward(logits, target, ignore_index, label_smoothing)
    dx = cross_entropy_backward(logits, target, lse, dloss, ignore_index, label_smoothing)
    return loss, lse, dx


def reduce_loss(loss, target, ignore_index: int = -100, reduction: str = "mean"):
    """Per-row losses reduced as ``F.cross_entropy``: 'mean' over non-ignored rows, 'sum',
    'none'. Returns the loss and the matching per-row ``dloss`` scale (0-d, on device)."""
    xp = backend.array_module(loss)
    if reduction == "none":
        return loss, xp.ones((), xp.float32)
    if reduction == "sum":
        return loss.sum(), xp.ones((), xp.float32)
    if reduction != "mean":
        raise ValueError(
            f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}"
        )
    nvalid = (target != ignore_index).sum().astype(xp.float32)
    return loss.sum() / nvalid, (1 / nvalid).astype(xp.float32)


# ---------------------------------------------------------------------------- GPU launch


def gpu_forward(logits, target, ignore_index=-100, label_smoothing=0.0, dloss=None):
    """CuPy launch of ``mg_xent_fwd``: ``(loss, lse, dlogits or None)`` (unverified)."""
    from . import launch

    _check("cross_entropy_forward", logits, target, label_smoothing, dloss=dloss)
    launch.require_contiguous("cross_entropy_forward", logits=logits, dloss=dloss)
    xp = backend.array_module(logits)
    n, c = logits.shape
    t = xp.ascontiguousarray(target.astype(xp.int64, copy=False))
    loss, lse = xp.empty(n, xp.float32), xp.empty(n, xp.float32)
    dx = None if dloss is None else xp.empty_like(logits)
    dl = None if dloss is None else dloss.astype(xp.float32, copy=False)
    stride = 0 if dl is None or dl.ndim == 0 else 1
    launch.rows(KERNEL, "mg_xent_fwd", logits.dtype, n,
                (logits, t, loss, lse, dl, launch.Long(stride), dx, launch.Long(n), c,
                 launch.Long(ignore_index), float(label_smoothing)))  # fmt: skip
    return loss, lse, dx


def gpu_backward(logits, target, lse, dloss, ignore_index=-100, label_smoothing=0.0):
    """CuPy launch of ``mg_xent_bwd`` from the saved log-sum-exp."""
    from . import launch

    _check("cross_entropy_backward", logits, target, label_smoothing, lse=lse, dloss=dloss)
    launch.require_contiguous("cross_entropy_backward", logits=logits, lse=lse, dloss=dloss)
    xp = backend.array_module(logits)
    n, c = logits.shape
    t = xp.ascontiguousarray(target.astype(xp.int64, copy=False))
    dl = dloss.astype(xp.float32, copy=False)
    dx = xp.empty_like(logits)
    launch.rows(KERNEL, "mg_xent_bwd", logits.dtype, n,
                (logits, t, lse, dl, launch.Long(0 if dl.ndim == 0 else 1), dx,
                 launch.Long(n), c, launch.Long(ignore_index), float(label_smoothing)))  # fmt: skip
    return dx
