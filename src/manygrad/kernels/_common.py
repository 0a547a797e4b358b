"""What every kernel source shares: the C prelude and the host-side argument checks.

The prelude compiles three ways: with NVRTC (``__CUDACC__``; device functions, warp and
block reductions), with CuPy's RawModule on a GPU (the same), and with a host C++
compiler for the tests (plain ``static inline`` functions, reductions over one "thread").
16-bit storage is converted in software (bit operations, round to nearest even), so the
host build checks the very conversion the GPU runs; compute is float32 throughout.
"""

from __future__ import annotations

from .. import backend
from ..errors import DeviceError, DTypeError, ShapeError

PRELUDE = r"""
// ---- manygrad kernel prelude: types, 16-bit storage, reductions --------------------
#ifdef __CUDACC__
#define MG_FN static __device__ __forceinline__
#define MG_RESTRICT __restrict__
MG_FN unsigned int mg_f2u(float f) { return __float_as_uint(f); }
MG_FN float mg_u2f(unsigned int u) { return __uint_as_float(u); }
#else
#include <math.h>
#include <string.h>
#define MG_FN static inline
#define MG_RESTRICT
#define MG_EXPORT extern "C"
MG_FN unsigned int mg_f2u(float f) { unsigned int u; memcpy(&u, &f, 4); return u; }
MG_FN float mg_u2f(unsigned int u) { float f; memcpy(&f, &u, 4); return f; }
#endif
#define MG_INF mg_u2f(0x7f800000u)

struct mg_bf16 { unsigned short bits; };
struct mg_f16 { unsigned short bits; };

MG_FN float mg_load(const float* p) { return *p; }
MG_FN void mg_store(float* p, float v) { *p = v; }

MG_FN float mg_bf16_to_f32(unsigned short b) { return mg_u2f(((unsigned int)b) << 16); }
MG_FN unsigned short mg_f32_to_bf16(float f) {
  unsigned int x = mg_f2u(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);  // round to nearest, ties to even
  return (unsigned short)(x >> 16);
}
MG_FN float mg_load(const mg_bf16* p) { return mg_bf16_to_f32(p->bits); }
MG_FN void mg_store(mg_bf16* p, float v) { p->bits = mg_f32_to_bf16(v); }

MG_FN float mg_f16_to_f32(unsigned short h) {
  unsigned int sign = ((unsigned int)h & 0x8000u) << 16, em = (unsigned int)h & 0x7fffu;
  if (em >= 0x7c00u) return mg_u2f(sign | 0x7f800000u | ((em & 0x3ffu) << 13));
  if (em < 0x400u) return mg_u2f(sign | mg_f2u((float)em * 5.9604644775390625e-08f));
  return mg_u2f(sign | ((em << 13) + (112u << 23)));
}
MG_FN unsigned short mg_f32_to_f16(float f) {
  unsigned int x = mg_f2u(f), sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
  if (a > 0x7f800000u) return (unsigned short)(sign | 0x7e00u);        // NaN
  if (a >= (143u << 23)) return (unsigned short)(sign | 0x7c00u);      // >= 2^16: inf
  if (a < (113u << 23)) {  // subnormal or zero in half: let the float adder round at 2^-24
    float r = mg_u2f(a) + 0.5f;
    return (unsigned short)(sign | (mg_f2u(r) - mg_f2u(0.5f)));
  }
  unsigned int odd = (a >> 13) & 1u;
  a += 0xc8000fffu + odd;  // rebias the exponent (-112 << 23, mod 2^32) and round to even
  return (unsigned short)(sign | (a >> 13));
}
MG_FN float mg_load(const mg_f16* p) { return mg_f16_to_f32(p->bits); }
MG_FN void mg_store(mg_f16* p, float v) { p->bits = mg_f32_to_f16(v); }
#ifndef __CUDACC__
// host harness: the conversions over arrays, for the tests
#define MG_HOST_CONVERT(SUF, T)                                                           \
  MG_EXPORT void mg_host_store_##SUF(const float* x, T* y, long long n) {                \
    for (long long i = 0; i < n; ++i) mg_store(y + i, x[i]);                             \
  }                                                                                      \
  MG_EXPORT void mg_host_load_##SUF(const T* x, float* y, long long n) {                 \
    for (long long i = 0; i < n; ++i) y[i] = mg_load(x + i);                             \
  }
MG_HOST_CONVERT(bf16, mg_bf16)
MG_HOST_CONVERT(f16, mg_f16)
#endif

// Reductions over the threads of a block (every thread must call them; blockDim.x a
// multiple of 32, at most 1024; scratch holds 33 floats). On the host a "block" is one
// thread, and a reduction returns its argument.
#ifdef __CUDACC__
MG_FN float mg_warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
MG_FN float mg_warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
MG_FN float mg_block_sum(float v, float* scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = mg_warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous reduction
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < nw ? scratch[lane] : 0.0f;
  if (warp == 0) { v = mg_warp_sum(v); if (lane == 0) scratch[32] = v; }
  __syncthreads();
  return scratch[32];
}
MG_FN float mg_block_max(float v, float* scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = mg_warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < nw ? scratch[lane] : -MG_INF;
  if (warp == 0) { v = mg_warp_max(v); if (lane == 0) scratch[32] = v; }
  __syncthreads();
  return scratch[32];
}
#define MG_TID ((int)threadIdx.x)
#define MG_NTHR ((int)blockDim.x)
#else
MG_FN float mg_block_sum(float v, float* scratch) { (void)scratch; return v; }
MG_FN float mg_block_max(float v, float* scratch) { (void)scratch; return v; }
#endif
// ---- end of prelude ------------------------------------------------------------------
"""


class LayoutError(ShapeError):
    """An array's memory layout does not suit a GPU launch (e.g. not C-contiguous)."""


# storage type of each dtype name, as the C sources spell it
STORAGE = {"float32": "float", "bfloat16": "mg_bf16", "float16": "mg_f16"}
FLOAT_DTYPES = tuple(STORAGE)


def storage(dtype) -> str:
    """The C storage type for a NumPy dtype (``float``, ``mg_bf16``, ``mg_f16``)."""
    return STORAGE[str(dtype)]


def check_args(kernel: str, dtypes=FLOAT_DTYPES, contiguous: bool = False, **arrays):
    """Check that the named arrays share one device and have a supported dtype.

    Args:
        kernel: the kernel's name, for the messages.
        dtypes: dtype names allowed for float arguments (default float32/bfloat16/float16).
        contiguous: also require C-contiguous arrays (what a GPU launch needs).
        **arrays: name -> array (``None`` entries are skipped).

    Returns the device of the arrays. Raises ``DeviceError``, ``DTypeError`` or
    ``ShapeError`` naming the argument and the fix.
    """
    dev, first = None, None
    for name, a in arrays.items():
        if a is None:
            continue
        if not backend.is_array(a):
            raise DTypeError(
                f"{kernel}: argument {name!r} must be an array, got {type(a).__name__}"
            )
        d = backend.device_of(a)
        if dev is None:
            dev, first = d, name
        elif d != dev:
            raise DeviceError(
                f"{kernel}: argument {name!r} is on {d} but {first!r} is on {dev}; "
                f"move both to one device (tensor.to({str(dev)!r}))"
            )
        if a.dtype.kind == "f" and str(a.dtype) not in dtypes:
            raise DTypeError(
                f"{kernel}: argument {name!r} has dtype {a.dtype}; this kernel takes "
                f"{', '.join(dtypes)}: cast it first (x.to(mg.float32))"
            )
        if contiguous and not a.flags.c_contiguous:
            raise LayoutError(
                f"{kernel}: argument {name!r} (shape {tuple(a.shape)}) is not C-contiguous; "
                "pass a contiguous copy (x.contiguous())"
            )
    return dev


def same_dtype(kernel: str, **arrays):
    """Raise ``DTypeError`` unless the named float arrays share one dtype; return it."""
    dts = {n: a.dtype for n, a in arrays.items() if a is not None}
    if len(set(dts.values())) > 1:
        got = ", ".join(f"{n}={d}" for n, d in dts.items())
        raise DTypeError(f"{kernel}: arguments must share one dtype, got {got}; cast them first")
    return next(iter(dts.values()))
