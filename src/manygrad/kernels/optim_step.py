"""Multi-tensor optimizer steps: Adam/AdamW and SGD with momentum, one launch for all
parameters of a dtype, optionally through float32 master weights for bf16/fp16 params.

The launch walks a table: each block takes one chunk of one tensor (``blk_tensor``,
``blk_chunk``), whose pointers sit in ``ptrs`` (param, grad, state 1, state 2, master).
Step-varying scalars (lr, bias corrections, SGD's first-step flag) are read from a small
float32 ``hyper`` array in device memory, so a captured CUDA graph sees new values.
Formulas follow ``torch.optim.Adam``/``AdamW``/``SGD`` (Kingma & Ba 2015; Loshchilov &
Hutter 2019; Sutskever et al. 2013).
"""

from __future__ import annotations

from .. import backend
from ..errors import DTypeError, ShapeError
from ._common import check_args
from .registry import Kernel, instantiate

ADAMW, MAXIMIZE, NESTEROV = 1, 2, 4  # flag bits
# hyper layout: lr, beta1, beta2, eps, weight_decay, 1 - beta1^t, sqrt(1 - beta2^t),
# momentum, dampening, first_step (SGD: 1.0 on the step that initialises the buffer)
HYPER_LEN = 10
CHUNK = 4096  # elements per block

CUDA = r"""
// ---- math body: one element ----------------------------------------------------------------
#define MG_ADAMW 1
#define MG_MAXIMIZE 2
#define MG_NESTEROV 4
MG_FN float mg_adam_elem(float p, float g, float* m, float* v, const float* h, int flags) {
  float lr = h[0], b1 = h[1], b2 = h[2], eps = h[3], wd = h[4], bc1 = h[5], bc2s = h[6];
  if (flags & MG_MAXIMIZE) g = -g;
  if (flags & MG_ADAMW) p = p * (1.0f - lr * wd);
  else if (wd != 0.0f) g = g + wd * p;
  float mm = b1 * *m + (1.0f - b1) * g;
  float vv = b2 * *v + (1.0f - b2) * g * g;
  *m = mm;
  *v = vv;
  float denom = sqrtf(vv) / bc2s + eps;
  return p - (lr / bc1) * (mm / denom);
}
MG_FN float mg_sgd_elem(float p, float g, float* buf, const float* h, int flags) {
  float lr = h[0], wd = h[4], mom = h[7], damp = h[8];
  if (flags & MG_MAXIMIZE) g = -g;
  if (wd != 0.0f) g = g + wd * p;
  if (mom != 0.0f) {
    float b = h[9] != 0.0f ? g : mom * *buf + (1.0f - damp) * g;
    *buf = b;
    g = (flags & MG_NESTEROV) ? g + mom * b : b;
  }
  return p - lr * g;
}
// one chunk of one tensor: ptrs[5 t ..] = param, grad, state1, state2, master (or 0)
template <typename T>
MG_FN void mg_opt_chunk(int adam, const long long* ptrs, const long long* sizes,
                        const int* blk_tensor, const int* blk_chunk, long long b, int chunk,
                        const float* h, int flags, int tid, int nthr) {
  int t = blk_tensor[b];
  T* p = (T*)ptrs[5 * t];
  const T* g = (const T*)ptrs[5 * t + 1];
  float* s1 = (float*)ptrs[5 * t + 2];
  float* s2 = (float*)ptrs[5 * t + 3];
  float* master = (float*)ptrs[5 * t + 4];
  long long start = (long long)blk_chunk[b] * chunk, end = start + chunk;
  if (end > sizes[t]) end = sizes[t];
  for (long long i = start + tid; i < end; i += nthr) {
    float pv = master ? master[i] : mg_load(p + i);
    float gv = mg_load(g + i);
    pv = adam ? mg_adam_elem(pv, gv, s1 + i, s2 + i, h, flags)
              : mg_sgd_elem(pv, gv, s1 + i, h, flags);
    if (master) master[i] = pv;
    mg_store(p + i, pv);
  }
}

#ifdef __CUDACC__
// ---- launch skeleton: one block per (tensor, chunk) ----------------------------------------
template <typename T>
__global__ void mg_adam_multi(const long long* ptrs, const long long* sizes, const int* bt,
                              const int* bc, int chunk, const float* h, int flags) {
  mg_opt_chunk<T>(1, ptrs, sizes, bt, bc, blockIdx.x, chunk, h, flags, MG_TID, MG_NTHR);
}
template <typename T>
__global__ void mg_sgd_multi(const long long* ptrs, const long long* sizes, const int* bt,
                             const int* bc, int chunk, const float* h, int flags) {
  mg_opt_chunk<T>(0, ptrs, sizes, bt, bc, blockIdx.x, chunk, h, flags, MG_TID, MG_NTHR);
}
#else
// ---- host harness (tests): the same table walk, blocks one after another -----------------
#define MG_HOST_OPT(SUF, T)                                                                 \
  MG_EXPORT void mg_host_opt_multi_##SUF(int adam, const long long* ptrs,                  \
                                         const long long* sizes, const int* bt,            \
                                         const int* bc, long long nblocks, int chunk,      \
                                         const float* h, int flags) {                      \
    for (long long b = 0; b < nblocks; ++b)                                                \
      mg_opt_chunk<T>(adam, ptrs, sizes, bt, bc, b, chunk, h, flags, 0, 1);                \
  }
MG_HOST_OPT(f32, float)
MG_HOST_OPT(bf16, mg_bf16)
MG_HOST_OPT(f16, mg_f16)
#endif
"""

KERNEL = Kernel(
    name="optim_step",
    source=CUDA,
    entries=instantiate("mg_adam_multi") + instantiate("mg_sgd_multi"),
    doc="multi-tensor Adam/AdamW/SGD-momentum step, fp32 master weights for 16-bit params",
    host=("mg_host_opt_multi_{f32,bf16,f16}",),
)


def hyper(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, step=1, momentum=0.0,
          dampening=0.0, first_step=False):  # fmt: skip
    """The ``hyper`` values as a list of Python floats (see HYPER_LEN's layout)."""
    b1, b2 = betas
    return [lr, b1, b2, eps, weight_decay, 1 - b1**step, (1 - b2**step) ** 0.5, momentum,
            dampening, 1.0 if first_step else 0.0]  # fmt: skip


def flags(decoupled=False, maximize=False, nesterov=False) -> int:
    return (
        (ADAMW if decoupled else 0) | (MAXIMIZE if maximize else 0) | (NESTEROV if nesterov else 0)
    )


def _lists(op, params, grads, s1, s2, masters):
    n = len(params)
    for name, lst in (("grads", grads), ("state", s1), ("state2", s2), ("masters", masters)):
        if lst is not None and len(lst) != n:
            raise ShapeError(f"{op}: {len(params)} params but {len(lst)} {name}")
    dt = {str(p.dtype) for p in params}
    if len(dt) > 1:
        raise DTypeError(f"{op}: one launch takes params of one dtype, got {sorted(dt)}")
    for i, p in enumerate(params):
        arrays = dict(param=p, grad=grads[i], state=s1[i], state2=None if s2 is None else s2[i],
                      master=None if masters is None else masters[i])  # fmt: skip
        check_args(f"{op} (param {i})", **arrays)
        for k, a in arrays.items():
            if a is not None and a.shape != p.shape:
                raise ShapeError(f"{op}: param {i} has shape {p.shape} but its {k} {a.shape}")
        for k in ("state", "state2", "master"):
            a = arrays[k]
            if a is not None and str(a.dtype) != "float32":
                raise DTypeError(f"{op}: param {i}'s {k} must be float32, got {a.dtype}")
        if str(p.dtype) != "float32" and masters is None:
            raise DTypeError(
                f"{op}: {p.dtype} params need float32 master weights (masters=[...]), "
                "or the update is lost to rounding"
            )


def _f32(xp, h):
    return [xp.float32(v) for v in h]


def _apply(xp, p, master, pv):
    if master is not None:
        master[...] = pv
    p[...] = pv.astype(p.dtype, copy=False)


def adam_step(params, grads, exp_avgs, exp_avg_sqs, masters=None, *, hyper, flags=0):
    """NumPy twin of ``mg_adam_multi``: update params and state in place, in float32.

    Args:
        params, grads: lists of arrays of one float dtype (grads like their params).
        exp_avgs, exp_avg_sqs: float32 state arrays.
        masters: float32 master copies for 16-bit params (updated, then rounded into the
            params), or None.
        hyper: ``hyper(lr, betas, eps, weight_decay, step)``; flags: ``flags(...)``.

    Example: ``adam_step(ps, gs, ms, vs, hyper=hyper(1e-3, step=t), flags=flags(True))``.
    """
    _lists("adam_step", params, grads, exp_avgs, exp_avg_sqs, masters)
    for i, p in enumerate(params):
        xp = backend.array_module(p)
        lr, b1, b2, eps, wd, bc1, bc2s = _f32(xp, hyper)[:7]
        master = None if masters is None else masters[i]
        pv = master.copy() if master is not None else p.astype(xp.float32)
        g = grads[i].astype(xp.float32)
        if flags & MAXIMIZE:
            g = -g
        if flags & ADAMW:
            pv = pv * (xp.float32(1) - lr * wd)
        elif wd != 0:
            g = g + wd * pv
        m, v = exp_avgs[i], exp_avg_sqs[i]
        m[...] = b1 * m + (xp.float32(1) - b1) * g
        v[...] = b2 * v + (xp.float32(1) - b2) * g * g
        denom = xp.sqrt(v) / bc2s + eps
        _apply(xp, p, master, pv - (lr / bc1) * (m / denom))


def sgd_step(params, grads, momentum_buffers, masters=None, *, hyper, flags=0):
    """NumPy twin of ``mg_sgd_multi`` (momentum buffers float32; ``hyper[9]`` marks the
    first step, which sets each buffer to the gradient)."""
    _lists("sgd_step", params, grads, momentum_buffers, None, masters)
    for i, p in enumerate(params):
        xp = backend.array_module(p)
        h = _f32(xp, hyper)
        lr, wd, mom, damp, first = h[0], h[4], h[7], h[8], h[9]
        master = None if masters is None else masters[i]
        pv = master.copy() if master is not None else p.astype(xp.float32)
        g = grads[i].astype(xp.float32)
        if flags & MAXIMIZE:
            g = -g
        if wd != 0:
            g = g + wd * pv
        if mom != 0:
            buf = momentum_buffers[i]
            buf[...] = g if first != 0 else mom * buf + (xp.float32(1) - damp) * g
            g = g + mom * buf if flags & NESTEROV else buf.copy()
        _apply(xp, p, master, pv - lr * g)


def tables(xp, params, grads, s1, s2=None, masters=None, chunk: int = CHUNK):
    """The launch tables ``(ptrs, sizes, blk_tensor, blk_chunk)`` for arrays with a
    ``.data.ptr`` (CuPy) or ``.ctypes.data`` (NumPy, for the host harness)."""

    def addr(a):
        if a is None:
            return 0
        host = getattr(a, "ctypes", None)  # NumPy; CuPy arrays have .data.ptr
        return int(host.data) if host is not None else int(a.data.ptr)

    ptrs, sizes, bt, bc = [], [], [], []
    for i, p in enumerate(params):
        ptrs += [addr(p), addr(grads[i]), addr(s1[i]), addr(None if s2 is None else s2[i]),
                 addr(None if masters is None else masters[i])]  # fmt: skip
        sizes.append(p.size)
        nchunks = (p.size + chunk - 1) // chunk
        bt += [i] * nchunks
        bc += list(range(nchunks))
    return (xp.asarray(ptrs, dtype=xp.int64), xp.asarray(sizes, dtype=xp.int64),
            xp.asarray(bt, dtype=xp.int32), xp.asarray(bc, dtype=xp.int32))  # fmt: skip


# ---------------------------------------------------------------------------- GPU launch


def gpu_step(adam: bool, params, grads, s1, s2=None, masters=None, *, hyper, flags=0):
    """One CuPy launch of ``mg_adam_multi``/``mg_sgd_multi`` over every param (unverified).

    NOTE: the tables are built and copied each call (one host-to-device copy); cache them
    per parameter set before capturing a step in a CUDA graph.
    """
    from . import launch

    op = "adam_step" if adam else "sgd_step"
    _lists(op, params, grads, s1, s2, masters)
    for i, p in enumerate(params):
        launch.require_contiguous(f"{op} (param {i})", param=p, grad=grads[i], state=s1[i],
                                  state2=None if s2 is None else s2[i],
                                  master=None if masters is None else masters[i])  # fmt: skip
    if not params:
        return
    xp = backend.array_module(params[0])
    ptrs, sizes, bt, bc = tables(xp, params, grads, s1, s2, masters)
    h = xp.asarray(hyper, dtype=xp.float32)
    fn = launch.function(KERNEL, "mg_adam_multi" if adam else "mg_sgd_multi", params[0].dtype)
    fn((int(bt.size),), (launch.THREADS,), (ptrs, sizes, bt, bc, xp.int32(CHUNK), h,
                                             xp.int32(flags)))  # fmt: skip
