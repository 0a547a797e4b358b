"""Fused dropout (plus an optional residual add) with a counter-based random mask.

Element ``i`` is kept when ``u(seed, offset + i) >= p``, ``u`` a 64-bit integer hash of the
counter turned into a 24-bit uniform in [0, 1). The mask is never stored: the backward
recomputes it from ``(seed, offset)``, and the NumPy twin computes the very same bits, so
GPU and CPU agree exactly on which elements drop.
"""

from __future__ import annotations

from .. import backend
from ._common import check_args, same_dtype
from .registry import Kernel, instantiate

CUDA = r"""
// ---- math body ---------------------------------------------------------------------------
MG_FN float mg_uniform(unsigned long long seed, unsigned long long i) {
  unsigned long long z = seed + (i + 1ull) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (float)(z >> 40) * 5.9604644775390625e-08f;  // top 24 bits / 2^24
}
// y = keep ? x * scale : 0, plus residual[i] when given
template <typename T>
MG_FN void mg_dropout_fwd_at(long long i, const T* x, const T* res, T* y, float p, float scale,
                             unsigned long long seed, unsigned long long offset) {
  float v = mg_uniform(seed, offset + (unsigned long long)i) >= p ? mg_load(x + i) * scale : 0.0f;
  if (res) v += mg_load(res + i);
  mg_store(y + i, v);
}
template <typename T>
MG_FN void mg_dropout_bwd_at(long long i, const T* g, T* dx, float p, float scale,
                             unsigned long long seed, unsigned long long offset) {
  mg_store(dx + i,
           mg_uniform(seed, offset + (unsigned long long)i) >= p ? mg_load(g + i) * scale : 0.0f);
}

#ifdef __CUDACC__
// ---- launch skeleton: grid-stride loops ----------------------------------------------------
template <typename T>
__global__ void mg_dropout_fwd(const T* x, const T* res, T* y, long long n, float p, float scale,
                               unsigned long long seed, unsigned long long offset) {
  long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
    mg_dropout_fwd_at(i, x, res, y, p, scale, seed, offset);
}
template <typename T>
__global__ void mg_dropout_bwd(const T* g, T* dx, long long n, float p, float scale,
                               unsigned long long seed, unsigned long long offset) {
  long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
    mg_dropout_bwd_at(i, g, dx, p, scale, seed, offset);
}
#else
// ---- host harness (tests) ------------------------------------------------------------------
#define MG_HOST_DROPOUT(SUF, T)                                                            \
  MG_EXPORT void mg_host_dropout_fwd_##SUF(const T* x, const T* res, T* y, long long n,   \
                                           float p, float scale, long long seed,          \
                                           long long offset) {                            \
    for (long long i = 0; i < n; ++i)                                                     \
      mg_dropout_fwd_at(i, x, res, y, p, scale, (unsigned long long)seed,                 \
                        (unsigned long long)offset);                                      \
  }                                                                                       \
  MG_EXPORT void mg_host_dropout_bwd_##SUF(const T* g, T* dx, long long n, float p,       \
                                           float scale, long long seed, long long offset) { \
    for (long long i = 0; i < n; ++i)                                                     \
      mg_dropout_bwd_at(i, g, dx, p, scale, (unsigned long long)seed,                     \
                        (unsigned long long)offset);                                      \
  }
MG_HOST_DROPOUT(f32, float)
MG_HOST_DROPOUT(bf16, mg_bf16)
MG_HOST_DROPOUT(f16, mg_f16)
#endif
"""

KERNEL = Kernel(
    name="dropout",
    source=CUDA,
    entries=instantiate("mg_dropout_fwd") + instantiate("mg_dropout_bwd"),
    doc="dropout (+ residual add) with a recomputable counter-based mask, fwd and bwd",
    host=("mg_host_dropout_fwd_{f32,bf16,f16}", "mg_host_dropout_bwd_{f32,bf16,f16}"),
)

_M64 = (1 << 64) - 1


def _scale(p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    return 1.0 / (1.0 - p) if p < 1.0 else 0.0


def uniform(xp, n: int, seed: int, offset: int = 0):
    """The kernel's uniforms ``u(seed, offset + i)`` for i < n, float32 (the mask's source)."""
    i = xp.arange(n, dtype=xp.uint64)
    z = xp.uint64(seed & _M64) + (i + xp.uint64((offset + 1) & _M64)) * xp.uint64(
        0x9E3779B97F4A7C15
    )
    z = (z ^ (z >> xp.uint64(30))) * xp.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> xp.uint64(27))) * xp.uint64(0x94D049BB133111EB)
    z ^= z >> xp.uint64(31)
    return (z >> xp.uint64(40)).astype(xp.float32) * xp.float32(2.0**-24)


def _keep(x, p, seed, offset):
    xp = backend.array_module(x)
    return xp, uniform(xp, x.size, seed, offset).reshape(x.shape) >= xp.float32(p)


def dropout_forward(x, p: float, seed: int, offset: int = 0, residual=None):
    """NumPy twin: ``where(keep, x / (1 - p), 0) (+ residual)`` in x's dtype.

    Args:
        x: float32/bfloat16/float16 array.
        p: drop probability in [0, 1].
        seed, offset: the mask's counter base (the same pair in backward gives the same mask).
        residual: an array of x's shape and dtype to add, or None (default).

    Example: ``h = dropout_forward(h, 0.1, seed=1234, offset=step * h.size)``.
    """
    check_args("dropout_forward", x=x, residual=residual)
    same_dtype("dropout_forward", x=x, residual=residual)
    scale = _scale(p)
    xp, keep = _keep(x, p, seed, offset)
    y = xp.where(keep, x.astype(xp.float32) * xp.float32(scale), xp.float32(0))
    if residual is not None:
        y = y + residual.astype(xp.float32)
    return y.astype(x.dtype, copy=False)


def dropout_backward(g, p: float, seed: int, offset: int = 0):
    """NumPy twin of the backward: the same mask from ``(seed, offset)`` times the scale."""
    check_args("dropout_backward", g=g)
    scale = _scale(p)
    xp, keep = _keep(g, p, seed, offset)
    dx = xp.where(keep, g.astype(xp.float32) * xp.float32(scale), xp.float32(0))
    return dx.astype(g.dtype, copy=False)


# ---------------------------------------------------------------------------- GPU launch


def gpu_forward(x, p: float, seed: int, offset: int = 0, residual=None):
    """CuPy launch of ``mg_dropout_fwd`` (unverified until a GPU run records it)."""
    from . import launch

    launch.require_contiguous("dropout_forward", x=x, residual=residual)
    same_dtype("dropout_forward", x=x, residual=residual)
    cp = backend.cuda_module()
    y = backend.array_module(x).empty_like(x)
    launch.elementwise(KERNEL, "mg_dropout_fwd", x.dtype, x.size,
                       (x, residual, y, launch.Long(x.size), float(p), float(_scale(p)),
                        cp.uint64(seed & _M64), cp.uint64(offset & _M64)))  # fmt: skip
    return y


def gpu_backward(g, p: float, seed: int, offset: int = 0):
    """CuPy launch of ``mg_dropout_bwd``."""
    from . import launch

    launch.require_contiguous("dropout_backward", g=g)
    cp = backend.cuda_module()
    dx = backend.array_module(g).empty_like(g)
    launch.elementwise(KERNEL, "mg_dropout_bwd", g.dtype, g.size,
                       (g, dx, launch.Long(g.size), float(p), float(_scale(p)),
                        cp.uint64(seed & _M64), cp.uint64(offset & _M64)))  # fmt: skip
    return dx
