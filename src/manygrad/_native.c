/* manygrad's CPU kernels: one-pass loops for the memory-bound ops that NumPy runs as many
 * passes (exact and tanh GELU, SiLU, sigmoid, ReLU, leaky ReLU, the piecewise-linear
 * activations, ELU/SELU/CELU, softplus, expm1, log1p, layer norm, group norm, batch norm,
 * softmax, cross entropy, an LSTM step's gates, an embedding's gradient, the Winograd
 * convolutions' transforms) or as strided index arithmetic (max and average pooling), and
 * direct loops for depthwise convolutions (no im2col columns), float32 in and out; and the
 * sort / scan / scatter / bag family (PyTorch's selection algorithms for topk, kthvalue and
 * median, running maxima, sums and products, scatter combining, embedding bags) for
 * float32, float64 and integers.
 *
 * Built on first use with the system C compiler (_native.py) for the machine it runs on
 * and loaded with ctypes; without a compiler manygrad keeps its NumPy formulas, which the
 * tests compare these with. The loops are written so that the compiler vectorises them
 * (`omp simd`, no calls into libm inside a loop): exp, expm1, log1p and the normal CDF are
 * polynomial fits evaluated in registers; comparisons select, so NaN and +-inf pass as
 * PyTorch's. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MG_EXPORT __attribute__((visibility("default")))

/* The range reduction of exp and expm1: x = k ln2 + r with k an integer (returned as a
 * float) and |r| <= ln2/2 (in *r, ln2 split in two parts so that k ln2 is exact). */
static inline float mg_exp_reduce(float xc, float* r) {
  float k = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
  float t = xc - k * 0.693359375f;
  *r = t - k * -2.12194440e-4f;
  return k;
}

/* e^r - 1 for |r| <= ln2/2: r + r^2 P(r), P of degree 5 (Cephes' expf coefficients). */
static inline float mg_expm1_reduced(float r) {
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  return p * r * r + r;
}

/* exp(x) to about 1 ulp: 2^k * e^r, 2^k built in the exponent bits (as two factors, so
 * that results down to the smallest subnormals are reached); inf above 88.72, 0 below
 * -103.97, NaN stays NaN. */
static inline float mg_exp(float x) {
  float xc = x < -104.0f ? -104.0f : (x > 88.8f ? 88.8f : x);
  float r;
  float k = mg_exp_reduce(xc, &r);
  float p = mg_expm1_reduced(r) + 1.0f;
  int32_t ki = (int32_t)k;
  int32_t k1 = ki >> 1, k2 = ki - k1;
  int32_t b1 = (k1 + 127) << 23, b2 = (k2 + 127) << 23;
  float s1, s2;
  __builtin_memcpy(&s1, &b1, 4);
  __builtin_memcpy(&s2, &b2, 4);
  float e = p * s1 * s2;
  e = x > 88.72283935546875f ? INFINITY : e;
  return x < -103.97208f ? 0.0f : e;
}

/* The standard normal CDF: 1/2 + u P(u^2) / (2 Q(u^2)), u = x / sqrt(2), with the rational
 * fit of erf on [-4, 4] that manygrad's NumPy path uses; 0 below -5.5 (where the fit's
 * float32 rounding would leave a constant 6e-8 that GELU scales up), at most 1. */
static inline float mg_normal_cdf(float x) {
  float xc = x < -5.5f ? -5.5f : (x > 5.656854249f ? 5.656854249f : x);
  float u = xc * 0.70710678118654752f;
  float u2 = u * u;
  float p = -2.72614225801306e-10f;
  p = p * u2 + 2.77068142495902e-08f;
  p = p * u2 + -2.10102402082508e-06f;
  p = p * u2 + -5.69250639462346e-05f;
  p = p * u2 + -7.34990630326855e-04f;
  p = p * u2 + -2.95459980854025e-03f;
  p = p * u2 + -1.60960333262415e-02f;
  float q = -1.45660718464996e-05f;
  q = q * u2 + -2.13374055278905e-04f;
  q = q * u2 + -1.68282697438203e-03f;
  q = q * u2 + -7.37332916720468e-03f;
  q = q * u2 + -1.42647390514189e-02f;
  float c = 0.5f + 0.5f * (u * p / q);
  c = c > 1.0f ? 1.0f : c;
  c = c < 0.0f ? 0.0f : c;
  c = x < -5.5f ? 0.0f : c;
  c = x > 5.42f ? 1.0f : c; /* NOTE: where 1 - Phi(x) < 2^-25, float32's Phi is 1 */
  return x != x ? x : c;
}

/* tanh(u) = sign(u) (1 - 2 / (e^{2|u|} + 1)); odd, +-1 for large |u|, NaN stays NaN. */
static inline float mg_tanh(float u) {
  float a = u < 0.0f ? -u : u;
  float t = 1.0f - 2.0f / (mg_exp(2.0f * a) + 1.0f);
  /* NOTE: below 2^-12 the formula loses digits to cancellation; tanh(u) = u there */
  t = a < 2.44140625e-4f ? a : t;
  return u < 0.0f ? -t : t;
}

static inline float mg_sigmoid(float x) { return 1.0f / (1.0f + mg_exp(-x)); }

#define MG_INV_SQRT_2PI 0.3989422804014327f
#define MG_SQRT_2_OVER_PI 0.7978845608028654f
#define MG_GELU_C 0.044715f

/* y = x Phi(x); with d, also d = Phi(x) + x phi(x), the derivative. */
MG_EXPORT void mg_gelu_erf_f32(const float* x, float* y, float* d, int64_t n) {
  if (d) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      float v = x[i];
      float c = mg_normal_cdf(v);
      y[i] = v * c;
      d[i] = c + v * (mg_exp(-0.5f * v * v) * MG_INV_SQRT_2PI);
    }
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * mg_normal_cdf(x[i]);
  }
}

/* y = x (1 + tanh(s (x + c x^3))) / 2; with d, its derivative. */
MG_EXPORT void mg_gelu_tanh_f32(const float* x, float* y, float* d, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i];
    float t = mg_tanh(MG_SQRT_2_OVER_PI * (v + MG_GELU_C * v * v * v));
    y[i] = 0.5f * v * (1.0f + t);
    if (d) {
      float dt = (1.0f - t * t) * MG_SQRT_2_OVER_PI * (1.0f + 3.0f * MG_GELU_C * v * v);
      d[i] = 0.5f * (1.0f + t) + 0.5f * v * dt;
    }
  }
}

/* dx = g * d (the derivative saved by the forward). */
MG_EXPORT void mg_mul_f32(const float* g, const float* d, float* dx, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dx[i] = g[i] * d[i];
}

MG_EXPORT void mg_sigmoid_f32(const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = mg_sigmoid(x[i]);
}

/* x sigmoid(x), as x / (1 + e^{-x}) */
MG_EXPORT void mg_silu_f32(const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * mg_sigmoid(x[i]);
}

/* dx = g s (1 + x (1 - s)), s = sigmoid(x) */
MG_EXPORT void mg_silu_bwd_f32(const float* g, const float* x, float* dx, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float s = mg_sigmoid(x[i]);
    dx[i] = g[i] * s * (1.0f + x[i] * (1.0f - s));
  }
}

/* dx = g y (1 - y), y = sigmoid(x) */
MG_EXPORT void mg_sigmoid_bwd_f32(const float* g, const float* y, float* dx, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dx[i] = g[i] * y[i] * (1.0f - y[i]);
}

/* max(x, 0) as PyTorch's: -0.0 and NaN pass (a select, not fmaxf). y may be x. */
MG_EXPORT void mg_relu_f32(const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

/* PyTorch's threshold_backward: 0 where y <= 0, else g (NaN in y passes g). */
MG_EXPORT void mg_relu_bwd_f32(const float* g, const float* y, float* dx, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dx[i] = y[i] <= 0.0f ? 0.0f : g[i];
}

/* x > 0 ? x : x * slope. y may be x. */
MG_EXPORT void mg_leaky_relu_f32(const float* x, float* y, int64_t n, float slope) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : x[i] * slope;
}

/* a > 0 ? g : g * slope (a: the input, or the output for a slope >= 0). */
MG_EXPORT void mg_leaky_relu_bwd_f32(const float* g, const float* a, float* dx, int64_t n,
                                     float slope) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dx[i] = a[i] > 0.0f ? g[i] : g[i] * slope;
}

/* expm1(x) to about 1 ulp, relative near 0: x = k ln2 + r, |r| <= ln2/2, with mg_exp's
 * polynomial for e^r - 1 = r + r^2 P(r) and expm1(x) = 2^k (e^r - 1) + (2^k - 1), one
 * rounding (fused multiply-add); -1 below -17.4, inf above 88.72, +-0 and NaN stay. */
static inline float mg_expm1(float x) {
  float xc = x < -30.0f ? -30.0f : (x > 88.8f ? 88.8f : x);
  float r;
  float k = mg_exp_reduce(xc, &r);
  float p = mg_expm1_reduced(r);
  /* NOTE: 2^k with k <= 127; k = 128 (x in (88.38, 88.72]) doubles the result after */
  int32_t ki = (int32_t)k;
  int32_t kc = ki > 127 ? 127 : ki;
  int32_t bits = (kc + 127) << 23;
  float s;
  __builtin_memcpy(&s, &bits, 4);
  float e = __builtin_fmaf(s, p, s - 1.0f);
  e = ki > 127 ? e * 2.0f : e;
  e = x > 88.72283935546875f ? INFINITY : e;
  float a = x < 0.0f ? -x : x;
  e = a < 2.98023224e-8f ? x : e; /* NOTE: 2^-25: expm1(x) rounds to x; keeps -0.0 */
  return x != x ? x : e;
}

/* log1p(u) to about 1 ulp: 1 + u = m (rounded) = 2^k (1 + f), f in [sqrt(2)/2 - 1,
 * sqrt(2) - 1), log1p(u) = k ln2 + log1p(f) + c / m with c the rounding error of m;
 * log1p(f) = f - f^2/2 + s (f^2/2 + R(s^2)), s = f / (2 + f), R a fit of
 * 2 atanh(s) / s - 2 (Cody and Waite's reduction). -inf at -1, NaN below, inf at inf. */
static inline float mg_log1p(float u) {
  float m = 1.0f + u;
  float a = u < 0.0f ? -u : u;
  /* NOTE: the part of u that 1 + u lost, exact by Fast2Sum (larger operand first) */
  float c_small = (1.0f - m) + u, c_large = (u - m) + 1.0f;
  float c = a <= 1.0f ? c_small : c_large;
  int32_t im; /* NOTE: m <= 0, inf or NaN give values that the selects below replace */
  __builtin_memcpy(&im, &m, 4);
  im += 0x3f800000 - 0x3f3504f3; /* NOTE: 1 + f in [sqrt(2)/2, sqrt(2)) */
  int32_t k = (im >> 23) - 127;
  int32_t fb = (im & 0x007fffff) + 0x3f3504f3;
  float f1;
  __builtin_memcpy(&f1, &fb, 4);
  float f = f1 - 1.0f, f2 = f1 + 1.0f;
  /* NOTE: one division for s = f / (2 + f) and c / m = c 2^-k / (1 + f): s's rounding
   * reaches the result scaled by f^2 / 2, and c / m is a correction below 2^-24 */
  float d = 1.0f / (f2 * f1);
  float s = f * f1 * d;
  int32_t kc = k > 126 ? 126 : k;
  int32_t sb = (127 - kc) << 23;
  float inv2k;
  __builtin_memcpy(&inv2k, &sb, 4);
  float cm = c * inv2k * f2 * d;
  float kf = (float)k;
  float z = s * s;
  float w = z * z;
  float t1 = w * (0.40000972152f + w * 0.24279078841f);
  float t2 = z * (0.66666662693f + w * 0.28498786688f);
  float hf = 0.5f * f * f;
  float r = kf * 0.693138123f + (f - (hf - (s * (hf + t1 + t2) + (kf * 9.05800061e-6f + cm))));
  r = a < 2.98023224e-8f ? u : r; /* NOTE: 2^-25: log1p(u) rounds to u; keeps -0.0 */
  r = u == INFINITY ? u : r;
  r = u == -1.0f ? -INFINITY : r;
  r = u < -1.0f ? NAN : r;
  return u != u ? u : r;
}

MG_EXPORT void mg_expm1_f32(const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = mg_expm1(x[i]);
}

MG_EXPORT void mg_log1p_f32(const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = mg_log1p(x[i]);
}

/* The piecewise-linear activations, PyTorch's values bit for bit (NaN, +-inf, -0.0):
 * kind 0 hardtanh clamp(x, a, b); 1 threshold x <= a ? b : x; 2 hardshrink
 * -a <= x <= a ? 0 : x; 3 softshrink x - clamp(x, -a, a); 4 hardsigmoid
 * clamp(x + 3, 0, 6) / 6; 5 hardswish x clamp(x + 3, 0, 6) / 6. y may be x. */
MG_EXPORT void mg_piecewise_f32(const float* x, float* y, int64_t n, int kind, float a,
                                float b) {
  float na = -a;
  switch (kind) {
  case 0:
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      float v = x[i] < a ? a : x[i]; /* NOTE: selects: NaN and the sign of zeros stay */
      y[i] = v > b ? b : v;
    }
    break;
  case 1:
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] <= a ? b : x[i];
    break;
  case 2:
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] >= na) & (x[i] <= a) ? 0.0f : x[i];
    break;
  case 3:
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      float v = x[i];
      float c = v < na ? na : v;
      c = c > a ? a : c;
      y[i] = v - c; /* x - a, x + a, or +0.0 between (NaN - NaN is NaN) */
    }
    break;
  case 4:
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      float t = x[i] + 3.0f;
      t = t < 0.0f ? 0.0f : t;
      t = t > 6.0f ? 6.0f : t;
      y[i] = t / 6.0f;
    }
    break;
  case 5:
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      float v = x[i];
      float t = v + 3.0f;
      t = t < 0.0f ? 0.0f : t;
      t = t > 6.0f ? 6.0f : t;
      y[i] = (t * v) / 6.0f; /* -0.0 below -3, NaN at -inf (0 * -inf) */
    }
    break;
  }
}

/* Their gradients from the input x, as selects (inf or NaN in g give 0 outside): kind 0
 * hardtanh (x <= a || x >= b ? 0 : g; NaN passes g); 6 hardtanh_ (a < x < b ? g : 0);
 * 1 threshold (x <= a ? 0 : g); 2, 3 the shrinks (-a <= x <= a ? 0 : g); 4 hardsigmoid
 * (-3 < x < 3 ? g / 6 : 0, with 1/6 rounded to float32); 5 hardswish (0 up to -3,
 * g (x / 3 + 1/2) below 3, g from 3 on and for NaN). */
MG_EXPORT void mg_piecewise_bwd_f32(const float* g, const float* x, float* dx, int64_t n,
                                    int kind, float a, float b) {
  float na = -a;
  switch (kind) {
  case 0:
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dx[i] = (x[i] <= a) | (x[i] >= b) ? 0.0f : g[i];
    break;
  case 6:
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dx[i] = (x[i] > a) & (x[i] < b) ? g[i] : 0.0f;
    break;
  case 1:
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dx[i] = x[i] <= a ? 0.0f : g[i];
    break;
  case 2:
  case 3:
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dx[i] = (x[i] >= na) & (x[i] <= a) ? 0.0f : g[i];
    break;
  case 4:
#pragma omp simd
    for (int64_t i = 0; i < n; ++i)
      dx[i] = (x[i] > -3.0f) & (x[i] < 3.0f) ? g[i] * 0.16666667163372040f : 0.0f;
    break;
  case 5:
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      float v = x[i];
      float mid = (v / 3.0f + 0.5f) * g[i];
      float d = v < 3.0f ? mid : g[i];
      dx[i] = v <= -3.0f ? 0.0f : d;
    }
    break;
  }
}

/* ELU with PyTorch's scales (elu: scale = input_scale = 1; selu: its alpha and scale;
 * celu: input_scale = 1 / alpha): x < 0 ? expm1(x is) (alpha scale) : x scale (+-0 keep
 * their sign for a negative alpha too, as PyTorch's). */
MG_EXPORT void mg_elu_f32(const float* x, float* y, int64_t n, float alpha, float scale,
                          float input_scale) {
  float neg = alpha * scale;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i];
    y[i] = v < 0.0f ? mg_expm1(v * input_scale) * neg : v * scale;
  }
}

/* ELU's gradient from its input: x <= 0 ? g is (alpha scale) e^{x is} : g scale. */
MG_EXPORT void mg_elu_bwd_f32(const float* g, const float* x, float* dx, int64_t n,
                              float alpha, float scale, float input_scale) {
  float neg = alpha * scale;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i];
    dx[i] = v <= 0.0f ? g[i] * input_scale * neg * mg_exp(v * input_scale) : g[i] * scale;
  }
}

/* softplus: x where beta x > threshold, else log1p(e^{beta x}) / beta.
 * NOTE: in blocks of 256, e^{beta x} first, then log1p: the two polynomials in one loop
 * body ran at 1.4 ms for 786k values against 0.86 ms as two loops (GCC 12, Zen 4) */
MG_EXPORT void mg_softplus_f32(const float* x, float* y, int64_t n, float beta,
                               float threshold) {
  float inv_beta = 1.0f / beta; /* NOTE: a multiply, not a division, per value */
  float t[256];
  for (int64_t i0 = 0; i0 < n; i0 += 256) {
    int64_t m = n - i0 < 256 ? n - i0 : 256;
    const float* xb = x + i0;
    float* yb = y + i0;
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) t[i] = mg_exp(xb[i] * beta);
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) {
      float v = xb[i], s = mg_log1p(t[i]) * inv_beta;
      yb[i] = v * beta > threshold ? v : s;
    }
  }
}

/* softplus's gradient: g where beta x > threshold, else g sigmoid(beta x), with
 * sigmoid(t) = e / (1 + e) below 0 and 1 / (1 + e) above, e = exp(-|t|): no overflow, and
 * PyTorch's g e^t / (e^t + 1) down to the smallest subnormals. */
MG_EXPORT void mg_softplus_bwd_f32(const float* g, const float* x, float* dx, int64_t n,
                                   float beta, float threshold) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float bx = x[i] * beta;
    float e = mg_exp(bx < 0.0f ? bx : -bx);
    float s = (bx < 0.0f ? e : 1.0f) / (1.0f + e);
    dx[i] = bx > threshold ? g[i] : g[i] * s;
  }
}

/* Layer norm of each row of x (rows, n): y = (x - mean) rstd w + b (w, b may be NULL);
 * mean and rstd per row are written for the backward. Two passes for the statistics. */
MG_EXPORT void mg_layer_norm_f32(const float* x, const float* w, const float* b, float* y,
                                 float* mean, float* rstd, int64_t rows, int64_t n,
                                 float eps) {
  float inv_n = n > 0 ? 1.0f / (float)n : 0.0f;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += xr[i];
    float m = s * inv_n;
    float v = 0.0f;
#pragma omp simd reduction(+ : v)
    for (int64_t i = 0; i < n; ++i) {
      float c = xr[i] - m;
      v += c * c;
    }
    float rs = 1.0f / sqrtf(v * inv_n + eps);
    mean[r] = m;
    rstd[r] = rs;
    if (w && b) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) yr[i] = (xr[i] - m) * rs * w[i] + b[i];
    } else if (w) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) yr[i] = (xr[i] - m) * rs * w[i];
    } else if (b) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) yr[i] = (xr[i] - m) * rs + b[i];
    } else {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) yr[i] = (xr[i] - m) * rs;
    }
  }
}

/* Layer norm's backward: dx = rstd (g w - mean(g w) - xhat mean(g w xhat)) per row, with
 * xhat = (x - mean) rstd; dw += sum over rows of g xhat, db += sum of g (either may be
 * NULL; both start zeroed by the caller). */
MG_EXPORT void mg_layer_norm_bwd_f32(const float* g, const float* x, const float* mean,
                                     const float* rstd, const float* w, float* dx, float* dw,
                                     float* db, int64_t rows, int64_t n) {
  float inv_n = n > 0 ? 1.0f / (float)n : 0.0f;
  for (int64_t r = 0; r < rows; ++r) {
    const float* gr = g + r * n;
    const float* xr = x + r * n;
    float* dr = dx + r * n;
    float m = mean[r], rs = rstd[r];
    float a = 0.0f, c = 0.0f;
    if (w) {
#pragma omp simd reduction(+ : a, c)
      for (int64_t i = 0; i < n; ++i) {
        float gw = gr[i] * w[i];
        a += gw;
        c += gw * ((xr[i] - m) * rs);
      }
    } else {
#pragma omp simd reduction(+ : a, c)
      for (int64_t i = 0; i < n; ++i) {
        a += gr[i];
        c += gr[i] * ((xr[i] - m) * rs);
      }
    }
    a *= inv_n;
    c *= inv_n;
    if (w) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i)
        dr[i] = rs * (gr[i] * w[i] - a - ((xr[i] - m) * rs) * c);
    } else {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dr[i] = rs * (gr[i] - a - ((xr[i] - m) * rs) * c);
    }
    if (dw) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dw[i] += gr[i] * ((xr[i] - m) * rs);
    }
    if (db) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) db[i] += gr[i];
    }
  }
}

/* Sums over long rows: 64 float lanes (four 16-wide vectors: independent adds that the
 * CPU overlaps, where one vector accumulator waits on each add) within blocks of 1024
 * values, double across the blocks (a float sum of a million values would lose about 3
 * digits). */
#define MG_BLOCK 1024
#define MG_LANES 64
#define MG_W 16

/* The sums of u = a[i] - ma and of u (b[i] - mb): with `centred` (b unused) those of
 * a - ma and of its square (the moments); else, with ma = 0, those of a gradient a and of
 * a (b - mb) (group norm's backward). NOTE: inlined with a constant `centred`, each caller
 * gets its own loop (the centred one loads a once). */
static inline __attribute__((always_inline)) void mg_pair_sums(const float* a, const float* b,
                                                               int64_t n, float ma, float mb,
                                                               int centred, double* s1,
                                                               double* s2) {
  double a1 = 0.0, a2 = 0.0;
  for (int64_t i0 = 0; i0 < n; i0 += MG_BLOCK) {
    int64_t e = n - i0 < MG_BLOCK ? n - i0 : MG_BLOCK;
    const float* ab = a + i0;
    const float* bb = centred ? ab : b + i0;
    float l1[MG_LANES] = {0.0f}, l2[MG_LANES] = {0.0f};
    int64_t i = 0;
    for (; i + MG_LANES <= e; i += MG_LANES) {
#pragma omp simd
      for (int k = 0; k < MG_LANES; ++k) {
        float u = ab[i + k] - ma;
        l1[k] += u;
        l2[k] += u * (centred ? u : bb[i + k] - mb);
      }
    }
    float b1 = 0.0f, b2 = 0.0f;
    for (; i < e; ++i) {
      float u = ab[i] - ma;
      b1 += u;
      b2 += u * (centred ? u : bb[i] - mb);
    }
#pragma omp simd reduction(+ : b1, b2)
    for (int k = 0; k < MG_LANES; ++k) {
      b1 += l1[k];
      b2 += l2[k];
    }
    a1 += b1;
    a2 += b2;
  }
  *s1 = a1;
  *s2 = a2;
}

/* mg_pair_sums for short runs (n <= MG_SHORT): 16 float lanes (two 8-wide vectors, or
 * one 16-wide), the last partial chunk masked, and one float sum of each at the end. For
 * a group norm's 8x8 planes the 64 lanes' zeroing and reduction cost more than the sums
 * themselves (64x32x8x8, 4 groups: the backward 105 -> 50 us on an AVX2 Zen). */
#define MG_SHORT 256
#define MG_SL 16
static inline __attribute__((always_inline)) void mg_short_sums(const float* a, const float* b,
                                                                int64_t n, float ma, float mb,
                                                                int centred, double* s1,
                                                                double* s2) {
  float l1[MG_SL] = {0.0f}, l2[MG_SL] = {0.0f};
  int64_t i = 0;
  for (; i + MG_SL <= n; i += MG_SL) {
#pragma omp simd
    for (int k = 0; k < MG_SL; ++k) {
      float u = a[i + k] - ma;
      l1[k] += u;
      l2[k] += u * (centred ? u : b[i + k] - mb);
    }
  }
  if (i < n) {
    int64_t e = n - i;
#pragma omp simd
    for (int k = 0; k < MG_SL; ++k) {
      float u = k < e ? a[i + k] - ma : 0.0f;
      float v = k < e ? (centred ? u : b[i + k] - mb) : 0.0f;
      l1[k] += u;
      l2[k] += u * v;
    }
  }
  float b1 = 0.0f, b2 = 0.0f;
#pragma omp simd reduction(+ : b1, b2)
  for (int k = 0; k < MG_SL; ++k) {
    b1 += l1[k];
    b2 += l2[k];
  }
  *s1 = b1;
  *s2 = b2;
}

/* y[i] = x[i] a + c over a short run, in chunks of MG_SL without a peeled prologue (an
 * `omp simd` loop's alignment and tail code cost as much as 64 values' work), the last
 * chunk masked. */
static inline __attribute__((always_inline)) void mg_short_axpb(const float* x, float* y,
                                                                int64_t n, float mu, float a,
                                                                float c) {
  int64_t i = 0;
  for (; i + MG_SL <= n; i += MG_SL) {
#pragma omp simd
    for (int k = 0; k < MG_SL; ++k) y[i + k] = (x[i + k] - mu) * a + c;
  }
  for (; i < n; ++i) y[i] = (x[i] - mu) * a + c;
}

/* Group norm of `rows` groups of x (N, C, L) as rows of cpg * L values, the first one the
 * row0-th of the array (its group: row % groups): mean and rstd = 1 / sqrt(var + eps) per
 * row (two passes: a first mean, then the centred sums, which correct it), then per
 * channel y = (x - mean) (w rstd) + b (w, b may be NULL). The mean is written as a float
 * (mean) and what its rounding left out (mean_lo): x - mean stays exact to a rounding
 * for means far from 0 (x + 1000: y off by 4e-6 of its range with the float mean alone). */
MG_EXPORT void mg_group_norm_f32(const float* x, const float* w, const float* b, float* y,
                                 float* mean, float* mean_lo, float* rstd, int64_t rows,
                                 int64_t row0, int64_t groups, int64_t cpg, int64_t ell,
                                 float eps) {
  int64_t m = cpg * ell;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * m;
    float* yr = y + r * m;
    double s0, unused;
    mg_pair_sums(xr, NULL, m, 0.0f, 0.0f, 1, &s0, &unused);
    float m0 = m > 0 ? (float)(s0 / (double)m) : 0.0f;
    double s1, s2;
    mg_pair_sums(xr, NULL, m, m0, m0, 1, &s1, &s2);
    double d = m > 0 ? s1 / (double)m : 0.0;
    double var = m > 0 ? s2 / (double)m - d * d : 0.0;
    double mud = (double)m0 + d;
    float mu = (float)mud, lo = (float)(mud - (double)mu);
    float rs = (float)(1.0 / sqrt((var > 0.0 ? var : 0.0) + (double)eps));
    mean[r] = mu;
    mean_lo[r] = lo;
    rstd[r] = rs;
    int64_t c0 = ((row0 + r) % groups) * cpg;
    for (int64_t j = 0; j < cpg; ++j) {
      const float* xc = xr + j * ell;
      float* yc = yr + j * ell;
      float a = w ? w[c0 + j] * rs : rs;
      float sh = (b ? b[c0 + j] : 0.0f) - lo * a; /* NOTE: (x - mu - lo) a + b */
      if (ell <= MG_SHORT) {
        mg_short_axpb(xc, yc, ell, mu, a, sh);
        continue;
      }
#pragma omp simd
      for (int64_t i = 0; i < ell; ++i) yc[i] = (xc[i] - mu) * a + sh;
    }
  }
}

/* Group norm's backward over `rows` groups (as the forward's): per channel the sums of g
 * (sums[0]) and of g (x - mean) (sums[1]) for the weight and bias gradients, and with dx,
 * dx = g w rstd + (x - mean) k1 + k0 with the group's k1 = -rstd^3 / M sum_c w_c sums[1],
 * k0 = -rstd / M sum_c w_c sums[0]. mean_lo (or NULL) is a correction of mean. */
MG_EXPORT void mg_group_norm_bwd_f32(const float* g, const float* x, const float* mean,
                                     const float* mean_lo, const float* rstd, const float* w,
                                     float* dx, float* sums, int64_t total, int64_t rows,
                                     int64_t row0, int64_t groups, int64_t cpg, int64_t ell) {
  int64_t m = cpg * ell;
  float* sg_out = sums;
  float* sgx_out = sums + total;
  for (int64_t r = 0; r < rows; ++r) {
    const float* gr = g + r * m;
    const float* xr = x + r * m;
    float mu = mean[r], rs = rstd[r];
    float lo = mean_lo ? mean_lo[r] : 0.0f;
    int64_t c0 = ((row0 + r) % groups) * cpg;
    double ka = 0.0, kb = 0.0;
    for (int64_t j = 0; j < cpg; ++j) {
      double sg, sgx;
      if (ell <= MG_SHORT)
        mg_short_sums(gr + j * ell, xr + j * ell, ell, 0.0f, mu, 0, &sg, &sgx);
      else
        mg_pair_sums(gr + j * ell, xr + j * ell, ell, 0.0f, mu, 0, &sg, &sgx);
      sgx -= sg * (double)lo; /* NOTE: x - (mean + lo) */
      sg_out[r * cpg + j] = (float)sg;
      sgx_out[r * cpg + j] = (float)sgx;
      double wj = w ? (double)w[c0 + j] : 1.0;
      ka += wj * sg;
      kb += wj * sgx;
    }
    if (!dx) continue;
    double inv_m = m > 0 ? 1.0 / (double)m : 0.0;
    double rsd = (double)rs;
    float k1 = (float)(-kb * rsd * rsd * rsd * inv_m);
    float k0 = (float)(-ka * rsd * inv_m) - k1 * lo;
    float* dr = dx + r * m;
    for (int64_t j = 0; j < cpg; ++j) {
      const float* gc = gr + j * ell;
      const float* xc = xr + j * ell;
      float* dc = dr + j * ell;
      float a = w ? w[c0 + j] * rs : rs;
      int64_t i = 0;
      if (ell <= MG_SHORT) { /* NOTE: chunks without a peeled prologue, as mg_short_axpb */
        for (; i + MG_SL <= ell; i += MG_SL) {
#pragma omp simd
          for (int k = 0; k < MG_SL; ++k)
            dc[i + k] = gc[i + k] * a + (xc[i + k] - mu) * k1 + k0;
        }
      }
#pragma omp simd
      for (int64_t t = i; t < ell; ++t) dc[t] = gc[t] * a + (xc[t] - mu) * k1 + k0;
    }
  }
}

/* mg_pair_sums over `planes` planes of s values, plane p at a + p stride (and b + p
 * stride): the 64 lanes carry on from one plane to the next (a plane's last partial chunk
 * of 16 lanes masked) and go into the double sums every MG_BLOCK values or so, so that short
 * planes (8x8) cost no reduction each. */
static inline __attribute__((always_inline)) void mg_plane_sums(const float* a, const float* b,
                                                                int64_t planes, int64_t stride,
                                                                int64_t s, float ma, float mb,
                                                                int centred, double* s1,
                                                                double* s2) {
  double a1 = 0.0, a2 = 0.0;
  float l1[MG_LANES] = {0.0f}, l2[MG_LANES] = {0.0f};
  int64_t count = 0;
  for (int64_t p = 0; p < planes; ++p) {
    const float* ab = a + p * stride;
    const float* bb = centred ? ab : b + p * stride;
    int64_t i = 0;
    for (; i + MG_LANES <= s; i += MG_LANES) {
#pragma omp simd
      for (int k = 0; k < MG_LANES; ++k) {
        float u = ab[i + k] - ma;
        l1[k] += u;
        l2[k] += u * (centred ? u : bb[i + k] - mb);
      }
    }
    for (; i < s; i += MG_W) {
      int64_t e = s - i;
#pragma omp simd
      for (int k = 0; k < MG_W; ++k) {
        float u = k < e ? ab[i + k] - ma : 0.0f;
        float v = k < e ? (centred ? u : bb[i + k] - mb) : 0.0f;
        l1[k] += u;
        l2[k] += u * v;
      }
    }
    count += s;
    if (count >= MG_BLOCK || p == planes - 1) {
      float b1 = 0.0f, b2 = 0.0f;
#pragma omp simd reduction(+ : b1, b2)
      for (int k = 0; k < MG_LANES; ++k) {
        b1 += l1[k];
        b2 += l2[k];
        l1[k] = 0.0f;
        l2[k] = 0.0f;
      }
      a1 += b1;
      a2 += b2;
      count = 0;
    }
  }
  *s1 = a1;
  *s2 = a2;
}

/* Batch norm of x (N, C, S) over the channels [c0, c1): per channel the statistics of its
 * N planes of S values. Long planes (S >= MG_BN_PLANE) go one channel at a time, its planes
 * read three times in a row (a first mean, the sums centred on it, y), from the cache after
 * the first; short ones (BatchNorm1d's (N, C) is S = 1) go row by row over the C S columns,
 * with a double sum per column, so that the loops run along contiguous memory. */
#ifndef MG_BN_PLANE
#define MG_BN_PLANE 32
#endif

/* The statistics of a channel from the count m, the first mean m0 and the sums of x - m0
 * and of its square: the mean as a float and what its rounding left out, rstd, and the
 * biased variance. */
static inline void mg_bn_stats(int64_t m, float m0, double t1, double t2, float eps, float* mu,
                               float* lo, float* rs, double* var) {
  double d = m > 0 ? t1 / (double)m : 0.0;
  double v = m > 0 ? t2 / (double)m - d * d : 0.0;
  v = v > 0.0 ? v : 0.0;
  double mud = (double)m0 + d;
  *mu = (float)mud;
  *lo = (float)(mud - (double)*mu);
  *rs = (float)(1.0 / sqrt(v + (double)eps));
  *var = v;
}

/* Batch norm with the batch statistics (training): per channel the mean (mean, and its
 * rounding's remainder mean_lo), rstd = 1 / sqrt(var + eps) and the biased variance var
 * (double, for the running statistics), and y = (x - mean) (w rstd) + b (w, b may be NULL).
 * Returns 0 when out of memory (short planes' column sums). */
MG_EXPORT int mg_batch_norm_f32(const float* x, const float* w, const float* b, float* y,
                                float* mean, float* mean_lo, float* rstd, double* var,
                                int64_t n, int64_t c_all, int64_t s, int64_t c0, int64_t c1,
                                float eps) {
  int64_t m = n * s;
  if (s >= MG_BN_PLANE) {
    for (int64_t c = c0; c < c1; ++c) {
      double t0, t1, t2;
      mg_plane_sums(x + c * s, NULL, n, c_all * s, s, 0.0f, 0.0f, 1, &t0, &t1);
      float m0 = m > 0 ? (float)(t0 / (double)m) : 0.0f;
      mg_plane_sums(x + c * s, NULL, n, c_all * s, s, m0, m0, 1, &t1, &t2);
      float mu, lo, rs;
      mg_bn_stats(m, m0, t1, t2, eps, &mu, &lo, &rs, var + c);
      mean[c] = mu, mean_lo[c] = lo, rstd[c] = rs;
      float a = w ? w[c] * rs : rs;
      float sh = (b ? b[c] : 0.0f) - lo * a; /* NOTE: (x - mu - lo) a + b */
      for (int64_t i = 0; i < n; ++i) {
        const float* xc = x + (i * c_all + c) * s;
        float* yc = y + (i * c_all + c) * s;
#pragma omp simd
        for (int64_t k = 0; k < s; ++k) yc[k] = (xc[k] - mu) * a + sh;
      }
    }
    return 1;
  }
  int64_t ld = c_all * s, j0 = c0 * s, nc = (c1 - c0) * s;
  double* d1 = malloc(sizeof(double) * (size_t)(2 * nc + 1));
  float* f = malloc(sizeof(float) * (size_t)(3 * nc + 1)); /* per column: mean, a, shift */
  if (!d1 || !f) {
    free(d1);
    free(f);
    return 0;
  }
  double* d2 = d1 + nc;
  float *fm = f, *fa = f + nc, *fs = f + 2 * nc;
  memset(d1, 0, sizeof(double) * (size_t)nc);
  for (int64_t i = 0; i < n; ++i) {
    const float* xr = x + i * ld + j0;
#pragma omp simd
    for (int64_t j = 0; j < nc; ++j) d1[j] += (double)xr[j];
  }
  for (int64_t c = 0; c < c1 - c0; ++c) {
    double t0 = 0.0;
    for (int64_t k = 0; k < s; ++k) t0 += d1[c * s + k];
    float m0 = m > 0 ? (float)(t0 / (double)m) : 0.0f;
    for (int64_t k = 0; k < s; ++k) fm[c * s + k] = m0;
  }
  memset(d1, 0, sizeof(double) * (size_t)(2 * nc));
  for (int64_t i = 0; i < n; ++i) {
    const float* xr = x + i * ld + j0;
#pragma omp simd
    for (int64_t j = 0; j < nc; ++j) {
      float u = xr[j] - fm[j];
      d1[j] += (double)u;
      d2[j] += (double)(u * u);
    }
  }
  for (int64_t c = 0; c < c1 - c0; ++c) {
    double t1 = 0.0, t2 = 0.0;
    for (int64_t k = 0; k < s; ++k) t1 += d1[c * s + k], t2 += d2[c * s + k];
    int64_t cc = c0 + c;
    float mu, lo, rs;
    mg_bn_stats(m, fm[c * s], t1, t2, eps, &mu, &lo, &rs, var + cc);
    mean[cc] = mu, mean_lo[cc] = lo, rstd[cc] = rs;
    float a = w ? w[cc] * rs : rs;
    float sh = (b ? b[cc] : 0.0f) - lo * a;
    for (int64_t k = 0; k < s; ++k) fm[c * s + k] = mu, fa[c * s + k] = a, fs[c * s + k] = sh;
  }
  for (int64_t i = 0; i < n; ++i) {
    const float* xr = x + i * ld + j0;
    float* yr = y + i * ld + j0;
#pragma omp simd
    for (int64_t j = 0; j < nc; ++j) yr[j] = (xr[j] - fm[j]) * fa[j] + fs[j];
  }
  free(d1);
  free(f);
  return 1;
}

/* y = (x - mean[c]) a[c] + sh[c] over x (N, C, S), channels [c0, c1) (batch norm with the
 * running statistics: a = w rstd). Returns 0 when out of memory. */
MG_EXPORT int mg_batch_norm_eval_f32(const float* x, const float* mean, const float* a,
                                     const float* sh, float* y, int64_t n, int64_t c_all,
                                     int64_t s, int64_t c0, int64_t c1) {
  if (s >= MG_BN_PLANE) {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = c0; c < c1; ++c) {
        const float* xc = x + (i * c_all + c) * s;
        float* yc = y + (i * c_all + c) * s;
        float mc = mean[c], ac = a[c], hc = sh[c];
#pragma omp simd
        for (int64_t k = 0; k < s; ++k) yc[k] = (xc[k] - mc) * ac + hc;
      }
    return 1;
  }
  int64_t ld = c_all * s, j0 = c0 * s, nc = (c1 - c0) * s;
  float* f = malloc(sizeof(float) * (size_t)(3 * nc + 1));
  if (!f) return 0;
  float *fm = f, *fa = f + nc, *fs = f + 2 * nc;
  for (int64_t j = 0; j < nc; ++j) {
    int64_t c = c0 + j / s;
    fm[j] = mean[c], fa[j] = a[c], fs[j] = sh[c];
  }
  for (int64_t i = 0; i < n; ++i) {
    const float* xr = x + i * ld + j0;
    float* yr = y + i * ld + j0;
#pragma omp simd
    for (int64_t j = 0; j < nc; ++j) yr[j] = (xr[j] - fm[j]) * fa[j] + fs[j];
  }
  free(f);
  return 1;
}

/* Batch norm's backward for the channels [c0, c1): the sums of g (sg) and of g (x - mean)
 * (sgx) per channel, for the weight and bias gradients, and with dx: in training
 * dx = g w rstd + (x - mean) k1 + k0 with k1 = -w rstd^3 sgx / M, k0 = -w rstd sg / M
 * (the batch statistics' own gradient); in evaluation dx = g w rstd. mean_lo (or NULL) is
 * a correction of mean. Returns 0 when out of memory. */
MG_EXPORT int mg_batch_norm_bwd_f32(const float* g, const float* x, const float* mean,
                                    const float* mean_lo, const float* rstd, const float* w,
                                    float* dx, float* sg_out, float* sgx_out, int64_t n,
                                    int64_t c_all, int64_t s, int64_t c0, int64_t c1,
                                    int training) {
  int64_t m = n * s;
  double inv_m = m > 0 ? 1.0 / (double)m : 0.0;
  int plane = s >= MG_BN_PLANE;
  int64_t ld = c_all * s, j0 = c0 * s, nc = plane ? 0 : (c1 - c0) * s;
  double* d1 = NULL;
  float* f = NULL;
  if (!plane) {
    d1 = malloc(sizeof(double) * (size_t)(2 * nc + 1));
    f = malloc(sizeof(float) * (size_t)(4 * nc + 1)); /* per column: mean, a, k1, k0 */
    if (!d1 || !f) {
      free(d1);
      free(f);
      return 0;
    }
    memset(d1, 0, sizeof(double) * (size_t)(2 * nc));
    for (int64_t j = 0; j < nc; ++j) f[j] = mean[c0 + j / s];
    for (int64_t i = 0; i < n; ++i) {
      const float* gr = g + i * ld + j0;
      const float* xr = x + i * ld + j0;
      double* d2 = d1 + nc;
#pragma omp simd
      for (int64_t j = 0; j < nc; ++j) {
        d1[j] += (double)gr[j];
        d2[j] += (double)(gr[j] * (xr[j] - f[j]));
      }
    }
  }
  for (int64_t c = c0; c < c1; ++c) {
    float mu = mean[c], rs = rstd[c];
    float lo = mean_lo ? mean_lo[c] : 0.0f;
    double sg = 0.0, sgx = 0.0;
    if (plane) {
      mg_plane_sums(g + c * s, x + c * s, n, c_all * s, s, 0.0f, mu, 0, &sg, &sgx);
    } else {
      for (int64_t k = 0; k < s; ++k) {
        sg += d1[(c - c0) * s + k];
        sgx += d1[nc + (c - c0) * s + k];
      }
    }
    sgx -= sg * (double)lo; /* NOTE: x - (mean + lo) */
    sg_out[c] = (float)sg;
    sgx_out[c] = (float)sgx;
    if (!dx) continue;
    double wc = w ? (double)w[c] : 1.0, rsd = (double)rs;
    float a = (float)(wc * rsd);
    float k1 = training ? (float)(-wc * rsd * rsd * rsd * sgx * inv_m) : 0.0f;
    float k0 = training ? (float)(-wc * rsd * sg * inv_m) - k1 * lo : 0.0f;
    if (!plane) {
      for (int64_t k = 0; k < s; ++k) {
        int64_t j = (c - c0) * s + k;
        f[nc + j] = a, f[2 * nc + j] = k1, f[3 * nc + j] = k0;
      }
      continue;
    }
    for (int64_t i = 0; i < n; ++i) {
      int64_t off = (i * c_all + c) * s;
      const float* gc = g + off;
      const float* xc = x + off;
      float* dc = dx + off;
      if (training) {
#pragma omp simd
        for (int64_t k = 0; k < s; ++k) dc[k] = gc[k] * a + (xc[k] - mu) * k1 + k0;
      } else {
#pragma omp simd
        for (int64_t k = 0; k < s; ++k) dc[k] = gc[k] * a;
      }
    }
  }
  if (!plane && dx) {
    const float *fm = f, *fa = f + nc, *f1 = f + 2 * nc, *f0 = f + 3 * nc;
    for (int64_t i = 0; i < n; ++i) {
      const float* gr = g + i * ld + j0;
      const float* xr = x + i * ld + j0;
      float* dr = dx + i * ld + j0;
      if (training) {
#pragma omp simd
        for (int64_t j = 0; j < nc; ++j)
          dr[j] = gr[j] * fa[j] + (xr[j] - fm[j]) * f1[j] + f0[j];
      } else {
#pragma omp simd
        for (int64_t j = 0; j < nc; ++j) dr[j] = gr[j] * fa[j];
      }
    }
  }
  free(d1);
  free(f);
  return 1;
}

/* Softmax (log_ 0) or log_softmax (log_ 1) of each row of x (rows, n). */
MG_EXPORT void mg_softmax_f32(const float* x, float* y, int64_t rows, int64_t n, int log_) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    float m = -INFINITY;
    int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
    for (int64_t i = 0; i < n; ++i) {
      m = xr[i] > m ? xr[i] : m;
      nan |= xr[i] != xr[i];
    }
    /* NOTE: a row of -inf keeps max -inf: x - max is NaN there, as PyTorch's */
    if (nan) m = NAN;
    float s = 0.0f;
    if (log_) {
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < n; ++i) s += mg_exp(xr[i] - m);
      float ls = logf(s);
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) yr[i] = (xr[i] - m) - ls;
    } else {
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < n; ++i) {
        float e = mg_exp(xr[i] - m);
        yr[i] = e;
        s += e;
      }
      float inv = 1.0f / s;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) yr[i] *= inv;
    }
  }
}

/* Softmax's backward from its output y: dx = y (g - sum(g y)); log_softmax's:
 * dx = g - e^y sum(g). */
MG_EXPORT void mg_softmax_bwd_f32(const float* g, const float* y, float* dx, int64_t rows,
                                  int64_t n, int log_) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* gr = g + r * n;
    const float* yr = y + r * n;
    float* dr = dx + r * n;
    float s = 0.0f;
    if (log_) {
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < n; ++i) s += gr[i];
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dr[i] = gr[i] - mg_exp(yr[i]) * s;
    } else {
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < n; ++i) s += gr[i] * yr[i];
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dr[i] = yr[i] * (gr[i] - s);
    }
  }
}

/* Rows in chunks of 16 lanes (MG_W), the last one partial: masked loads and stores
 * (`k < e ? x[k] : pad`), so that no value of a short row goes through a scalar loop, and
 * sums in 16 lanes reduced once a row (4096 rows of 30 values: 0.43 ms forward with scalar
 * tails, 0.19 ms so; PyTorch's forward and backward 0.27 ms). */

/* Cross entropy of rows of logits x (rows, n) with class indices t, as PyTorch's
 * F.cross_entropy: lse = log sum_c e^{x_c}, and for a target t != ignore, the loss
 * (1 - eps) w_t (lse - x_t) + eps / n sum_c w_c (lse - x_c) (w NULL: ones) and wt = w_t;
 * for an ignored target loss = wt = 0. NaN in a row gives a NaN loss; lse is kept for the
 * backward. With dx (rows, n), also the gradient of the losses for an upstream gradient gs
 * of each (wsum: the sum of w, or n), as mg_cross_entropy_bwd_f32's, from the e^{x - max}
 * of this pass (dx holds them meanwhile): one exp per logit for forward and backward. */
MG_EXPORT void mg_cross_entropy_f32(const float* x, const int64_t* t, const float* w,
                                    float* loss, float* lse, float* wt, int64_t rows,
                                    int64_t n, int64_t ignore, float eps, float* dx, float gs,
                                    float wsum) {
  float se = eps / (float)n;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* dr = dx ? dx + r * n : NULL;
    float mv[MG_W], sv[MG_W];
    int nv[MG_W];
#pragma omp simd
    for (int k = 0; k < MG_W; ++k) mv[k] = -INFINITY, sv[k] = 0.0f, nv[k] = 0;
    int64_t j0 = 0;
    if (n >= 4 * MG_W) {
      float m4[4 * MG_W];
      int n4[4 * MG_W];
#pragma omp simd
      for (int k = 0; k < 4 * MG_W; ++k) m4[k] = -INFINITY, n4[k] = 0;
      for (; j0 + 4 * MG_W <= n; j0 += 4 * MG_W) {
        const float* c = xr + j0;
#pragma omp simd
        for (int k = 0; k < 4 * MG_W; ++k) {
          m4[k] = c[k] > m4[k] ? c[k] : m4[k];
          n4[k] |= c[k] != c[k];
        }
      }
      for (int q = 0; q < 4; ++q)
#pragma omp simd
        for (int k = 0; k < MG_W; ++k) {
          float v = m4[q * MG_W + k];
          mv[k] = v > mv[k] ? v : mv[k];
          nv[k] |= n4[q * MG_W + k];
        }
    }
    for (int64_t i0 = j0; i0 < n; i0 += MG_W) {
      const float* c = xr + i0;
      int64_t e = n - i0;
#pragma omp simd
      for (int k = 0; k < MG_W; ++k) {
        float v = k < e ? c[k] : -INFINITY;
        mv[k] = v > mv[k] ? v : mv[k];
        nv[k] |= v != v;
      }
    }
    float m = -INFINITY, s = 0.0f;
    int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
    for (int k = 0; k < MG_W; ++k) {
      m = mv[k] > m ? mv[k] : m;
      nan |= nv[k];
    }
    /* NOTE: a row of -inf keeps max -inf: x - max is NaN there, as PyTorch's */
    if (nan) m = NAN;
    int64_t i0 = 0;
    if (n >= 4 * MG_W) { /* NOTE: four vectors of exps at a time: their chains overlap */
      float s4[4 * MG_W] = {0.0f};
      for (; i0 + 4 * MG_W <= n; i0 += 4 * MG_W) {
        const float* c = xr + i0;
        if (dr) {
          float* d = dr + i0;
#pragma omp simd
          for (int k = 0; k < 4 * MG_W; ++k) {
            float v = mg_exp(c[k] - m);
            d[k] = v;
            s4[k] += v;
          }
        } else {
#pragma omp simd
          for (int k = 0; k < 4 * MG_W; ++k) s4[k] += mg_exp(c[k] - m);
        }
      }
#pragma omp simd
      for (int k = 0; k < MG_W; ++k)
        sv[k] = (s4[k] + s4[k + MG_W]) + (s4[k + 2 * MG_W] + s4[k + 3 * MG_W]);
    }
    for (; i0 < n; i0 += MG_W) {
      const float* c = xr + i0;
      int64_t e = n - i0;
      if (dr) {
        float* d = dr + i0;
#pragma omp simd
        for (int k = 0; k < MG_W; ++k) {
          float v = k < e ? mg_exp(c[k] - m) : 0.0f;
          if (k < e) d[k] = v;
          sv[k] += v;
        }
      } else {
#pragma omp simd
        for (int k = 0; k < MG_W; ++k) sv[k] += k < e ? mg_exp(c[k] - m) : 0.0f;
      }
    }
#pragma omp simd reduction(+ : s)
    for (int k = 0; k < MG_W; ++k) s += sv[k];
    float l = m + logf(s);
    lse[r] = l;
    int64_t ti = t[r];
    int skip = ti == ignore || ti < 0 || ti >= n;
    if (dr) { /* NOTE: e / s for e^{x - lse}; the terms as mg_cross_entropy_bwd_f32's */
      float inv = 1.0f / s;
      float coef = gs * (w && !skip ? w[ti] : 1.0f) * (1.0f - eps);
      float as = gs * se;
      float base = (coef + as * wsum) * inv;
      int mode = skip ? 0 : (eps == 0.0f ? 1 : (w ? 2 : 3));
      float c1 = coef * inv;
#pragma omp simd
      for (int k = 0; k < MG_W; ++k) sv[k] = 0.0f;
      for (int64_t i0 = 0; i0 < n; i0 += MG_W) {
        float* d = dr + i0;
        const float* c = xr + i0;
        int64_t e = n - i0;
        if (mode == 0) {
#pragma omp simd
          for (int k = 0; k < MG_W; ++k)
            if (k < e) d[k] = 0.0f - d[k] * inv * 0.0f;
        } else if (mode == 1) {
#pragma omp simd
          for (int k = 0; k < MG_W; ++k)
            if (k < e) d[k] = d[k] * c1;
        } else if (mode == 2) { /* NOTE: with the smoothing term's sum of the loss */
          const float* wc = w + i0;
#pragma omp simd
          for (int k = 0; k < MG_W; ++k)
            if (k < e) {
              d[k] = d[k] * base - as * wc[k];
              sv[k] += wc[k] * (l - c[k]);
            }
        } else {
#pragma omp simd
          for (int k = 0; k < MG_W; ++k)
            if (k < e) {
              d[k] = d[k] * base - as;
              sv[k] += l - c[k];
            }
        }
      }
      if (!skip) dr[ti] -= coef;
    }
    if (ti == ignore) {
      loss[r] = 0.0f;
      wt[r] = 0.0f;
      continue;
    }
    if (ti < 0 || ti >= n) { /* NOTE: the callers refuse these first; never read outside */
      loss[r] = NAN;
      wt[r] = 0.0f;
      continue;
    }
    float wv = w ? w[ti] : 1.0f;
    float v = (l - xr[ti]) * wv;
    if (eps != 0.0f) {
#pragma omp simd
      for (int k = 0; k < MG_W; ++k) sv[k] = dr ? sv[k] : 0.0f; /* dr: summed above */
      for (int64_t i0 = 0; !dr && i0 < n; i0 += MG_W) {
        const float* c = xr + i0;
        int64_t e = n - i0;
        if (w) {
          const float* wc = w + i0;
#pragma omp simd
          for (int k = 0; k < MG_W; ++k) sv[k] += k < e ? wc[k] * (l - c[k]) : 0.0f;
        } else {
#pragma omp simd
          for (int k = 0; k < MG_W; ++k) sv[k] += k < e ? l - c[k] : 0.0f;
        }
      }
      float sm = 0.0f;
#pragma omp simd reduction(+ : sm)
      for (int k = 0; k < MG_W; ++k) sm += sv[k];
      v = (1.0f - eps) * v + (eps / (float)n) * sm;
    }
    loss[r] = v;
    wt[r] = wv;
  }
}

/* Its gradient dx (rows, n) for the upstream gradient a of each row's loss (ga[r], or gs
 * for all when ga is NULL): a ((1 - eps) w_t + eps / n wsum) softmax(x) - a eps / n w_c,
 * less a (1 - eps) w_t at the target; rows of ignored targets get 0 (NaN where x is). */
MG_EXPORT void mg_cross_entropy_bwd_f32(const float* x, const int64_t* t, const float* w,
                                        const float* lse, const float* ga, float gs,
                                        float* dx, int64_t rows, int64_t n, int64_t ignore,
                                        float eps, float wsum) {
  float se = eps / (float)n;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* dr = dx + r * n;
    int64_t ti = t[r];
    int skip = ti == ignore || ti < 0 || ti >= n;
    float a = ga ? ga[r] : gs;
    float l = lse[r];
    float coef = a * (w && !skip ? w[ti] : 1.0f) * (1.0f - eps);
    float as = a * se;
    float base = coef + as * wsum;
    /* NOTE: an ignored row: 0 - softmax(x) 0, as PyTorch's log_softmax backward (NaN for
     * NaN logits); eps = 0: no eps terms at all (an inf upstream gradient gives inf) */
    int mode = skip ? 0 : (eps == 0.0f ? 1 : (w ? 2 : 3));
    for (int64_t i0 = 0; i0 < n; i0 += MG_W) {
      const float* c = xr + i0;
      float* d = dr + i0;
      int64_t e = n - i0;
      if (mode == 0) {
#pragma omp simd
        for (int k = 0; k < MG_W; ++k)
          if (k < e) d[k] = 0.0f - mg_exp(c[k] - l) * 0.0f;
      } else if (mode == 1) {
#pragma omp simd
        for (int k = 0; k < MG_W; ++k)
          if (k < e) d[k] = mg_exp(c[k] - l) * coef;
      } else if (mode == 2) {
        const float* wc = w + i0;
#pragma omp simd
        for (int k = 0; k < MG_W; ++k)
          if (k < e) d[k] = mg_exp(c[k] - l) * base - as * wc[k];
      } else {
#pragma omp simd
        for (int k = 0; k < MG_W; ++k)
          if (k < e) d[k] = mg_exp(c[k] - l) * base - as;
      }
    }
    if (!skip) dr[ti] -= coef;
  }
}

/* 2-d max pooling of `planes` (H, W) planes into (Ho, Wo) ones, with the flat index in
 * its plane of each window's maximum, as PyTorch's CPU kernel: the first maximum on ties,
 * the last NaN of a window holding NaN; padding never wins (it is outside the plane). */
MG_EXPORT void mg_max_pool2d_f32(const float* x, float* y, int64_t* idx, int64_t planes,
                                 int64_t h, int64_t w, int64_t ho, int64_t wo, int64_t kh,
                                 int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                                 int64_t dh, int64_t dw) {
  int pair = kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0 && dh == 1 &&
             dw == 1 && 2 * ho <= h && 2 * wo <= w;
  for (int64_t p = 0; p < planes; ++p) {
    const float* xp = x + p * h * w;
    float* yp = y + p * ho * wo;
    int64_t* ip = idx + p * ho * wo;
    if (pair) { /* 2x2 windows, stride 2: branch-free selects over a row of windows */
      for (int64_t oh = 0; oh < ho; ++oh) {
        const float* r0 = xp + 2 * oh * w;
        const float* r1 = r0 + w;
        int64_t base = 2 * oh * w;
#pragma omp simd
        for (int64_t ow = 0; ow < wo; ++ow) {
          float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
          float best = a;
          int64_t k = 0;
          int t = b > best || b != b;
          best = t ? b : best;
          k = t ? 1 : k;
          t = c > best || c != c;
          best = t ? c : best;
          k = t ? w : k;
          t = d > best || d != d;
          best = t ? d : best;
          k = t ? w + 1 : k;
          yp[oh * wo + ow] = best;
          ip[oh * wo + ow] = base + 2 * ow + k;
        }
      }
      continue;
    }
    for (int64_t oh = 0; oh < ho; ++oh) {
      int64_t h0 = oh * sh - ph;
      int64_t i0 = 0;
      while (h0 + i0 * dh < 0) ++i0;
      for (int64_t ow = 0; ow < wo; ++ow) {
        int64_t w0 = ow * sw - pw;
        int64_t j0 = 0;
        while (w0 + j0 * dw < 0) ++j0;
        float best = -INFINITY;
        int64_t bi = (h0 + i0 * dh) * w + (w0 + j0 * dw);
        for (int64_t i = i0; i < kh; ++i) {
          int64_t r = h0 + i * dh;
          if (r >= h) break;
          for (int64_t j = j0; j < kw; ++j) {
            int64_t c = w0 + j * dw;
            if (c >= w) break;
            float v = xp[r * w + c];
            if (v > best || v != v) {
              best = v;
              bi = r * w + c;
            }
          }
        }
        yp[oh * wo + ow] = best;
        ip[oh * wo + ow] = bi;
      }
    }
  }
}

/* Max pooling's backward: dx (zeroed by the caller) gets each g at its window's index. */
MG_EXPORT void mg_max_pool2d_bwd_f32(const float* g, const int64_t* idx, float* dx,
                                     int64_t planes, int64_t hw, int64_t howo) {
  for (int64_t p = 0; p < planes; ++p) {
    const float* gp = g + p * howo;
    const int64_t* ip = idx + p * howo;
    float* dp = dx + p * hw;
    for (int64_t k = 0; k < howo; ++k) dp[ip[k]] += gp[k];
  }
}

/* The window of output o of a pooled dimension of size n (stride s, padding p, kernel k)
 * as PyTorch's average pooling takes it: [*lo, *hi) inside the input; returns its length
 * counting the padding (and none of a ceil_mode overhang past it). */
static inline int64_t mg_pool_span(int64_t o, int64_t s, int64_t p, int64_t k, int64_t n,
                                   int64_t* lo, int64_t* hi) {
  int64_t a = o * s - p, b = a + k < n + p ? a + k : n + p;
  *lo = a < 0 ? 0 : a;
  *hi = b < n ? b : n;
  return b - a;
}

/* The divisor of output (oh, ow): divisor (if not 0), else the window's size, with the
 * padding (include_pad) or without. */
static inline float mg_pool_div(int64_t rows_pad, int64_t rows, int64_t cols_pad, int64_t cols,
                                int include_pad, int64_t divisor) {
  if (divisor) return (float)divisor;
  return include_pad ? (float)(rows_pad * cols_pad) : (float)(rows * cols);
}

/* The output columns [*c0, *c1) whose windows lie inside the input's width (the rest
 * reach into the padding or past the end). */
static inline void mg_pool_inner(int64_t wo, int64_t s, int64_t p, int64_t k, int64_t w,
                                 int64_t* c0, int64_t* c1) {
  int64_t a = (p + s - 1) / s;                          /* the first with o s - p >= 0 */
  int64_t b = w + p - k >= 0 ? (w + p - k) / s + 1 : 0; /* past the last: o s - p + k <= w */
  a = a < wo ? a : wo;
  b = b < wo ? b : wo;
  *c0 = a;
  *c1 = b < a ? a : b;
}

/* 2-d average pooling of `planes` (H, W) planes into (Ho, Wo) ones, as PyTorch's: each
 * output the sum of its window inside the input (rows, then columns, in order) divided by
 * the divisor of mg_pool_div. acc: Wo floats of scratch. The columns of whole windows run
 * as vectors: a row of sums, each kernel offset added to all of them in turn (the same
 * order per output). */
MG_EXPORT void mg_avg_pool2d_f32(const float* x, float* y, float* acc, int64_t planes,
                                 int64_t h, int64_t w, int64_t ho, int64_t wo, int64_t kh,
                                 int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                                 int include_pad, int64_t divisor) {
  int64_t c0, c1;
  mg_pool_inner(wo, sw, pw, kw, w, &c0, &c1);
  for (int64_t p = 0; p < planes; ++p) {
    const float* xp = x + p * h * w;
    float* yp = y + p * ho * wo;
    for (int64_t oh = 0; oh < ho; ++oh) {
      int64_t r0, r1;
      int64_t rpad = mg_pool_span(oh, sh, ph, kh, h, &r0, &r1);
      float* yr = yp + oh * wo;
      if (c1 > c0) {
        float dv = mg_pool_div(rpad, r1 - r0, kw, kw, include_pad, divisor);
        const float* xa = xp + r0 * w + c0 * sw - pw;
        int64_t n = c1 - c0;
        if (kw == 2 && sw == 2 && r1 - r0 == 2) { /* NOTE: 2x2 windows: one pass, 4 loads */
          const float* xb = xa + w;
#pragma omp simd
          for (int64_t o = 0; o < n; ++o)
            yr[c0 + o] =
                ((((0.0f + xa[2 * o]) + xa[2 * o + 1]) + xb[2 * o]) + xb[2 * o + 1]) / dv;
        } else {
#pragma omp simd
          for (int64_t o = 0; o < n; ++o) acc[o] = 0.0f;
          for (int64_t i = 0; i < r1 - r0; ++i) {
            const float* xr = xa + i * w;
            if (kw == 3 && sw <= 2) { /* NOTE: a row's three columns in one pass */
              if (sw == 1) {
#pragma omp simd
                for (int64_t o = 0; o < n; ++o)
                  acc[o] = ((acc[o] + xr[o]) + xr[o + 1]) + xr[o + 2];
              } else {
#pragma omp simd
                for (int64_t o = 0; o < n; ++o)
                  acc[o] = ((acc[o] + xr[2 * o]) + xr[2 * o + 1]) + xr[2 * o + 2];
              }
              continue;
            }
            for (int64_t j = 0; j < kw; ++j) {
              if (sw == 1) {
#pragma omp simd
                for (int64_t o = 0; o < n; ++o) acc[o] += xr[o + j];
              } else if (sw == 2) {
#pragma omp simd
                for (int64_t o = 0; o < n; ++o) acc[o] += xr[2 * o + j];
              } else {
#pragma omp simd
                for (int64_t o = 0; o < n; ++o) acc[o] += xr[o * sw + j];
              }
            }
          }
#pragma omp simd
          for (int64_t o = 0; o < n; ++o) yr[c0 + o] = acc[o] / dv;
        }
      }
      for (int64_t ow = 0; ow < wo; ++ow) {
        if (ow == c0 && c1 > c0) {
          ow = c1 - 1;
          continue;
        }
        int64_t q0, q1;
        int64_t cpad = mg_pool_span(ow, sw, pw, kw, w, &q0, &q1);
        float a = 0.0f;
        for (int64_t i = r0; i < r1; ++i)
          for (int64_t j = q0; j < q1; ++j) a += xp[i * w + j];
        yr[ow] = a / mg_pool_div(rpad, r1 - r0, cpad, q1 - q0, include_pad, divisor);
      }
    }
  }
}

/* Its backward: dx (planes, H, W) = the sum over the windows holding each input of the
 * output gradient over the window's divisor; added kernel offset by kernel offset (the
 * NumPy formula's order). scratch: Ho Wo floats. */
MG_EXPORT void mg_avg_pool2d_bwd_f32(const float* g, float* dx, float* scratch, int64_t planes,
                                     int64_t h, int64_t w, int64_t ho, int64_t wo, int64_t kh,
                                     int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                                     int include_pad, int64_t divisor) {
  /* NOTE: windows of stride k without padding tile the input: each input gets one value */
  int tiles = kh == sh && kw == sw && ph == 0 && pw == 0 && ho * kh <= h && wo * kw <= w;
  for (int64_t p = 0; p < planes; ++p) {
    const float* gp = g + p * ho * wo;
    float* dp = dx + p * h * w;
    for (int64_t oh = 0; oh < ho; ++oh) {
      int64_t r0, r1, q0, q1;
      int64_t rpad = mg_pool_span(oh, sh, ph, kh, h, &r0, &r1);
      for (int64_t ow = 0; ow < wo; ++ow) {
        int64_t cpad = mg_pool_span(ow, sw, pw, kw, w, &q0, &q1);
        scratch[oh * wo + ow] =
            gp[oh * wo + ow] / mg_pool_div(rpad, r1 - r0, cpad, q1 - q0, include_pad, divisor);
      }
    }
    if (tiles) {
      for (int64_t r = 0; r < h; ++r) {
        float* dr = dp + r * w;
        int64_t oh = r / kh;
        if (oh >= ho) {
          memset(dr, 0, sizeof(float) * (size_t)w);
          continue;
        }
        const float* sr = scratch + oh * wo;
        if (kw == 2) {
#pragma omp simd
          for (int64_t o = 0; o < wo; ++o) dr[2 * o] = dr[2 * o + 1] = sr[o];
        } else {
          for (int64_t o = 0; o < wo; ++o)
            for (int64_t j = 0; j < kw; ++j) dr[o * kw + j] = sr[o];
        }
        for (int64_t c = wo * kw; c < w; ++c) dr[c] = 0.0f;
      }
      continue;
    }
    memset(dp, 0, sizeof(float) * (size_t)(h * w));
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j) {
        /* the outputs whose offset (i, j) falls inside the input */
        int64_t o0 = j >= pw ? 0 : (pw - j + sw - 1) / sw;
        int64_t o1 = w + pw - j > 0 ? (w + pw - j - 1) / sw + 1 : 0;
        o1 = o1 < wo ? o1 : wo;
        for (int64_t oh = 0; oh < ho; ++oh) {
          int64_t r = oh * sh - ph + i;
          if (r < 0 || r >= h) continue;
          float* dr = dp + r * w;
          const float* sr = scratch + oh * wo;
          int64_t off = j - pw;
#pragma omp simd
          for (int64_t o = o0; o < o1; ++o) dr[o * sw + off] += sr[o];
        }
      }
  }
}

/* Depthwise 2-d convolution: groups = the C input channels, m output channels per input
 * channel (output channel c m + j reads input channel c), weight (C m, 1, kh, kw), any
 * stride, padding and dilation; 1-d convolutions are the case h = kh = 1. geo holds
 * {C, m, H, W, Ho, Wo, kh, kw, sh, sw, pad top, pad left, dh, dw}; a unit is one (sample,
 * input channel) plane, and `u0` the index of the first unit in the whole array.
 *
 * Each input plane is first copied, zero-padded, into `sh sw` phase planes: phase (p, q)
 * holds the padded rows r = p (mod sh) and columns c = q (mod sw), as (hq, wq) =
 * (Ho + (kh - 1) dh / sh, Wo + (kw - 1) dw / sw). Kernel tap (i, j) then reads, for the
 * output (oh, ow), the value at row oh + (i dh) / sh and column ow + (j dw) / sw of phase
 * ((i dh) mod sh, (j dw) mod sw): with outputs on the same (Ho, wq) grid (the wq - Wo
 * columns past Wo computed and dropped), every tap is one contiguous run over the grid
 * at a fixed offset, at any stride and dilation, and a chunk of outputs keeps its sums
 * in registers across the taps. The backward walks the same runs: the input gradient as
 * a gather over the taps of each phase from the output gradient's grid (with zeros around
 * it), the weight gradient as one dot product per tap. */
#define MG_DW_CH 64

/* NOTE: GNU C vectors, not `omp simd`, for the chunks: GCC 12 turned a chunk's sum over
 * the taps into gathers (a tenth of the speed); MG_NV vectors of MG_VL lanes keep as many
 * independent sums in registers across the taps. */
#ifndef MG_VL
#define MG_VL 8 /* NOTE: 8 lanes: the weight gradient ran 1.3x faster than with 16 on Zen 4 */
#endif
#define MG_NV (MG_DW_CH / MG_VL)
typedef float mg_vf __attribute__((vector_size(4 * MG_VL)));
typedef int32_t mg_vi __attribute__((vector_size(4 * MG_VL)));

static inline mg_vf mg_ld(const float* p) {
  mg_vf v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

static inline void mg_st(float* p, mg_vf v) { __builtin_memcpy(p, &v, sizeof v); }

/* A vector of f in every lane: one vbroadcastss (f - 0 is f, -0 included, and folds away;
 * `(mg_vf){0} + f` adds 0 to f first). */
static inline mg_vf mg_bc(float f) { return f - (mg_vf){0}; }

/* The sum of the lanes of v. */
static inline float mg_hsum2(mg_vf v) {
  float lanes[MG_VL];
  __builtin_memcpy(lanes, &v, sizeof v);
  for (int w = MG_VL / 2; w > 0; w /= 2)
    for (int k = 0; k < w; ++k) lanes[k] += lanes[k + w];
  return lanes[0];
}

/* The sum of the chunk's vectors' lanes. */
static inline float mg_hsum(const mg_vf* a) {
  mg_vf v = a[0];
  for (int k = 1; k < MG_NV; ++k) v += a[k];
  return mg_hsum2(v);
}

/* dst[0, n) = src[0, n) for short runs (dst and src apart): vectors, the last one ending
 * at n and overlapping the one before, scalars below MG_VL values (memcpy's calls cost more
 * than these copies of a row of a plane; GCC turns plain copy loops into them).
 * NOTE: no masked tail: AMD's masked stores (vmaskmovps) are slow; the split of a 14x14
 * plane spent a third of the 5x5 depthwise forward in them. */
static inline void mg_copy(float* dst, const float* src, int64_t n) {
  if (n < MG_VL) {
    for (int64_t k = 0; k < n; ++k) dst[k] = src[k];
    return;
  }
  int64_t i = 0;
  for (; i + MG_VL <= n; i += MG_VL) mg_st(dst + i, mg_ld(src + i));
  if (i < n) mg_st(dst + n - MG_VL, mg_ld(src + n - MG_VL));
}

/* out[0, e) = the chunk a (e < MG_DW_CH: only those). */
static inline void mg_dw_store(float* out, const mg_vf* a, int64_t e) {
  if (e >= MG_DW_CH) {
    for (int v = 0; v < MG_NV; ++v) mg_st(out + MG_VL * v, a[v]);
  } else {
    float tmp[MG_DW_CH];
    for (int v = 0; v < MG_NV; ++v) mg_st(tmp + MG_VL * v, a[v]);
    mg_copy(out, tmp, e);
  }
}

typedef struct {
  int64_t c, m, h, w, ho, wo, kh, kw, sh, sw, pt, pl, dh, dw;
  int64_t hq, wq, plane, nph, taps, len, omax, xlen;
  int64_t* cols; /* per column phase q: the phase columns [cols[2q], cols[2q + 1]) in x */
} mg_dw_t;

/* The geometry, and scratch for each tap's phase and offset (ph, off: taps each) and the
 * sorted taps (order); 0 for an empty output or when out of memory. */
static int mg_dw_init(mg_dw_t* d, const int64_t* geo, int64_t** ph) {
  d->c = geo[0], d->m = geo[1], d->h = geo[2], d->w = geo[3], d->ho = geo[4], d->wo = geo[5];
  d->kh = geo[6], d->kw = geo[7], d->sh = geo[8], d->sw = geo[9], d->pt = geo[10];
  d->pl = geo[11], d->dh = geo[12], d->dw = geo[13];
  d->hq = d->ho + (d->kh - 1) * d->dh / d->sh;
  d->wq = d->wo + (d->kw - 1) * d->dw / d->sw;
  d->plane = d->hq * d->wq;
  d->nph = d->sh * d->sw;
  d->taps = d->kh * d->kw;
  d->len = d->ho * d->wq;
  d->omax = (d->kh - 1) * d->dh / d->sh * d->wq + (d->kw - 1) * d->dw / d->sw;
  /* NOTE: the phase planes and the reach of a chunk's grid columns past Wo */
  d->xlen = d->nph * d->plane + d->wq + MG_DW_CH;
  *ph = NULL;
  if (d->ho <= 0 || d->wo <= 0 || d->taps <= 0) return 0;
  int64_t T = d->taps;
  *ph = malloc(sizeof(int64_t) * (size_t)(3 * T + 2 * d->sw));
  if (!*ph) return 0;
  int64_t *p = *ph, *off = p + T, *order = p + 2 * T;
  d->cols = p + 3 * T;
  for (int64_t i = 0; i < d->kh; ++i)
    for (int64_t j = 0; j < d->kw; ++j) {
      int64_t t = i * d->kw + j, a = i * d->dh, b = j * d->dw;
      p[t] = (a % d->sh) * d->sw + b % d->sw;
      off[t] = a / d->sh * d->wq + b / d->sw;
    }
  int64_t n = 0;
  for (int64_t q = 0; q < d->nph; ++q)
    for (int64_t t = 0; t < T; ++t)
      if (p[t] == q) order[n++] = t;
  for (int64_t q = 0; q < d->sw; ++q) {
    int64_t c0 = q - d->pl;
    int64_t lo = c0 < 0 ? (-c0 + d->sw - 1) / d->sw : 0;
    int64_t hi = d->w - c0 > 0 ? (d->w - c0 + d->sw - 1) / d->sw : 0;
    d->cols[2 * q] = lo;
    d->cols[2 * q + 1] = hi < d->wq ? hi : d->wq;
  }
  return 1;
}

/* Copies between a row of a plane and its phase rows: to (`to_x` 0) or from them. */
static inline void mg_dw_row(const mg_dw_t* d, float* xr, float* X, int64_t rp, int64_t rq,
                             int to_x) {
  int64_t s = d->sw;
  for (int64_t q = 0; q < s; ++q) {
    float* pr = X + (rp * s + q) * d->plane + rq * d->wq;
    int64_t q0 = d->cols[2 * q], q1 = d->cols[2 * q + 1], c0 = q - d->pl;
    if (q1 <= q0) continue;
    if (s == 1) {
      if (to_x)
        mg_copy(xr + q0 + c0, pr + q0, q1 - q0);
      else
        mg_copy(pr + q0, xr + q0 + c0, q1 - q0);
    } else if (s == 2) { /* NOTE: a constant stride: vector loads and shuffles */
      if (to_x) {
#pragma omp simd
        for (int64_t cq = q0; cq < q1; ++cq) xr[cq * 2 + c0] = pr[cq];
      } else {
#pragma omp simd
        for (int64_t cq = q0; cq < q1; ++cq) pr[cq] = xr[cq * 2 + c0];
      }
    } else if (to_x) {
      for (int64_t cq = q0; cq < q1; ++cq) xr[cq * s + c0] = pr[cq];
    } else {
      for (int64_t cq = q0; cq < q1; ++cq) pr[cq] = xr[cq * s + c0];
    }
  }
}

/* X (nph planes of (hq, wq), then slack): the phase planes of plane x. The positions
 * outside the plane stay as they are: zeroed once by the caller (every plane writes the
 * same positions). */
static void mg_dw_split(const mg_dw_t* d, const float* x, float* X) {
  if (d->sh == 1 && d->sw == 1) { /* NOTE: one plane: plain row copies, the geometry in
                                   * registers (the stores may alias d's fields) */
    int64_t q0 = d->cols[0], n = d->cols[1] - q0, w = d->w, wq = d->wq;
    int64_t r0 = d->pt < 0 ? -d->pt : 0, r1 = d->hq - d->pt < d->h ? d->hq - d->pt : d->h;
    const float* src = x + q0 - d->pl;
    float* dst = X + d->pt * wq + q0;
    if (n > 0)
      for (int64_t r = r0; r < r1; ++r) mg_copy(dst + r * wq, src + r * w, n);
    return;
  }
  int64_t rp = d->pt % d->sh, rq = d->pt / d->sh;
  for (int64_t r = 0; r < d->h && rq < d->hq; ++r) {
    mg_dw_row(d, (float*)(x + r * d->w), X, rp, rq, 0);
    if (++rp == d->sh) rp = 0, ++rq;
  }
}

/* The plane x from its phase planes X (the reverse of mg_dw_split; 0 where no tap
 * reaches). */
static void mg_dw_merge(const mg_dw_t* d, const float* X, float* x) {
  int64_t covered = d->wq * d->sw - d->pl; /* NOTE: columns from here on are never read */
  covered = covered < 0 ? 0 : (covered > d->w ? d->w : covered);
  int64_t rp = d->pt % d->sh, rq = d->pt / d->sh;
  for (int64_t r = 0; r < d->h; ++r) {
    float* xr = x + r * d->w;
    if (rq >= d->hq) {
      memset(xr, 0, sizeof(float) * (size_t)d->w);
      continue;
    }
    if (d->sw == 2) { /* NOTE: interleaved from both phase rows: vector stores */
      const float* ea = X + rp * 2 * d->plane + rq * d->wq; /* even padded columns */
      const float* ob = ea + d->plane;                      /* odd ones */
      int64_t c = 0;
      if ((d->pl & 1) && covered > 0) xr[c++] = ob[d->pl >> 1];
      int64_t base = (c + d->pl) >> 1, pairs = (covered - c) / 2;
      float* xc = xr + c;
#pragma omp simd
      for (int64_t i = 0; i < pairs; ++i) {
        xc[2 * i] = ea[base + i];
        xc[2 * i + 1] = ob[base + i];
      }
      c += 2 * pairs;
      if (c < covered) xr[c] = ea[(c + d->pl) >> 1];
    } else {
      mg_dw_row(d, xr, (float*)X, rp, rq, 1);
    }
    for (int64_t c = covered; c < d->w; ++c) xr[c] = 0.0f;
    if (++rp == d->sh) rp = 0, ++rq;
  }
}

/* The stride-1, undilated forward with a kh x kw kernel known when compiled: each block of
 * RB output rows keeps its sums for NC vectors of MG_VL output columns in registers while
 * the block's RB + KH - 1 input rows pass, each input vector loaded once for the KH rows it
 * reaches (kw loads for kh kw FMAs per vector and row, against one load per FMA on the
 * grid). Columns: vectors at c = 8 k, the last ones at Wo - 8 (overlapping the one before,
 * so every store is a whole vector inside the row); the last row block overlaps the one
 * before the same way. Every output still adds the bias and then the taps in the order i kw
 * + j, one fused multiply-add each: the same sums as the grid's loops. X: the zero-padded
 * plane (hq, wq); needs Ho >= RB and Wo >= MG_VL. */
#define MG_DW_RB 5
static inline __attribute__((always_inline)) void mg_dw_block(const float* X, int64_t wq,
                                                               const float* wk, float bv,
                                                               float* yp, int64_t ho,
                                                               int64_t wo, const int KH,
                                                               const int KW, const int NC,
                                                               const int64_t* cs) {
  for (int64_t oh0 = 0;; oh0 += MG_DW_RB) {
    if (oh0 + MG_DW_RB > ho) oh0 = ho - MG_DW_RB;
    mg_vf a[MG_DW_RB][2];
#pragma GCC unroll 8
    for (int ii = 0; ii < MG_DW_RB; ++ii)
#pragma GCC unroll 2
      for (int v = 0; v < NC; ++v) a[ii][v] = (mg_vf){0} + bv;
#pragma GCC unroll 16
    for (int r = 0; r < MG_DW_RB + KH - 1; ++r) {
      const float* xr = X + (oh0 + r) * wq;
      const float* wr = wk;
      /* NOTE: an opaque copy of the weights' address for each input row: GCC otherwise
       * keeps all kh kw broadcast weights across the rows and spills them (and the sums) */
      __asm__ volatile("" : "+r"(wr));
#pragma GCC unroll 16
      for (int j = 0; j < KW; ++j) {
        mg_vf xv[2];
#pragma GCC unroll 2
        for (int v = 0; v < NC; ++v) xv[v] = mg_ld(xr + cs[v] + j);
#pragma GCC unroll 8
        for (int ii = 0; ii < MG_DW_RB; ++ii) {
          int i = r - ii;
          if (i < 0 || i >= KH) continue;
          mg_vf wv = mg_bc(wr[i * KW + j]);
#pragma GCC unroll 2
          for (int v = 0; v < NC; ++v) a[ii][v] += wv * xv[v];
        }
      }
    }
#pragma GCC unroll 8
    for (int ii = 0; ii < MG_DW_RB; ++ii)
#pragma GCC unroll 2
      for (int v = 0; v < NC; ++v) mg_st(yp + (oh0 + ii) * wo + cs[v], a[ii][v]);
    if (oh0 + MG_DW_RB >= ho) break;
  }
}

/* One output plane of the stride-1, undilated forward (mg_dw_block over the column
 * vectors, two at a time); 0 for a kernel size without a compiled block. */
static int mg_dw_plane(const float* X, int64_t wq, const float* wk, float bv, float* yp,
                       int64_t ho, int64_t wo, int64_t kh, int64_t kw) {
  int64_t nv = (wo + MG_VL - 1) / MG_VL;
  for (int64_t k = 0; k < nv; k += 2) {
    int64_t cs[2];
    int nc = nv == 1 ? 1 : 2;
    int64_t k0 = k + 1 < nv ? k : nv - 2;
    if (nc == 1) k0 = 0;
    for (int v = 0; v < nc; ++v) {
      int64_t c = (k0 + v) * MG_VL;
      cs[v] = c + MG_VL > wo ? wo - MG_VL : c;
    }
#define MG_DW_CASE(H, W)                                                    \
  if (kh == H && kw == W) {                                                 \
    if (nc == 2)                                                            \
      mg_dw_block(X, wq, wk, bv, yp, ho, wo, H, W, 2, cs);                  \
    else                                                                    \
      mg_dw_block(X, wq, wk, bv, yp, ho, wo, H, W, 1, cs);                  \
    continue;                                                               \
  }
    MG_DW_CASE(3, 3)
    MG_DW_CASE(5, 5)
    MG_DW_CASE(7, 7)
#undef MG_DW_CASE
    return 0;
  }
  return 1;
}

/* Forward over `units` planes: y (units m, Ho, Wo) = the convolution plus bias b (or
 * NULL). Returns 0 when out of memory (nothing written then). */
MG_EXPORT int mg_dwconv2d_f32(const float* x, const float* w, const float* b, float* y,
                              int64_t units, int64_t u0, const int64_t* geo) {
  mg_dw_t d;
  int64_t* ph;
  if (!mg_dw_init(&d, geo, &ph)) return d.ho <= 0 || d.wo <= 0 || d.taps <= 0; /* 1: empty */
  int64_t T = d.taps, L = d.len;
  int fast = d.sh == 1 && d.sw == 1 && d.dh == 1 && d.dw == 1 && d.ho >= MG_DW_RB &&
             d.wo >= MG_VL && d.kh == d.kw && (d.kh == 3 || d.kh == 5 || d.kh == 7);
  int grid = d.wq != d.wo;
  float* X = malloc(sizeof(float) * (size_t)d.xlen);
  float* Y = grid ? malloc(sizeof(float) * (size_t)(L + MG_DW_CH)) : NULL;
  const float** tp = malloc(sizeof(float*) * (size_t)T);
  int ok = X && tp && (Y || !grid);
  if (ok) {
    int64_t* off = ph + T;
    memset(X, 0, sizeof(float) * (size_t)d.xlen);
    for (int64_t u = 0; u < units; ++u) {
      int64_t c = (u0 + u) % d.c;
      mg_dw_split(&d, x + u * d.h * d.w, X);
      if (u + 1 < units) /* NOTE: the next plane into the cache while this one's sums run */
        for (int64_t k = 0; k < d.h * d.w; k += 16) __builtin_prefetch(x + (u + 1) * d.h * d.w + k);
      for (int64_t t = 0; t < T; ++t) tp[t] = X + ph[t] * d.plane + off[t];
      for (int64_t jm = 0; jm < d.m; ++jm) {
        int64_t o = c * d.m + jm;
        const float* wk = w + o * T;
        float bv = b ? b[o] : 0.0f;
        float* yp = y + (u * d.m + jm) * d.ho * d.wo;
        if (fast && mg_dw_plane(X, d.wq, wk, bv, yp, d.ho, d.wo, d.kh, d.kw)) continue;
        float* dst = grid ? Y : yp;
        for (int64_t p0 = 0; p0 < L; p0 += MG_DW_CH) {
          mg_vf a[MG_NV];
          for (int v = 0; v < MG_NV; ++v) a[v] = (mg_vf){0} + bv;
          for (int64_t t = 0; t < T; ++t) {
            const float* s = tp[t] + p0;
            mg_vf wv = (mg_vf){0} + wk[t];
            for (int v = 0; v < MG_NV; ++v) a[v] += wv * mg_ld(s + MG_VL * v);
          }
          mg_dw_store(dst + p0, a, L - p0);
        }
        if (grid)
          for (int64_t oh = 0; oh < d.ho; ++oh) mg_copy(yp + oh * d.wo, Y + oh * d.wq, d.wo);
      }
    }
  }
  free(X);
  free(Y);
  free(ph);
  free((void*)tp);
  return ok;
}

/* Backward over `units` planes from the output gradient g (units m, Ho, Wo): the input
 * gradient gx (units, H, W), and per unit and output channel the weight gradient's part
 * gw (units m, kh kw) and the bias gradient's part gb (units m) (each may be NULL; the
 * caller sums the parts over the samples). x: the input (needed for gw). Returns 0 when
 * out of memory. */
MG_EXPORT int mg_dwconv2d_bwd_f32(const float* g, const float* x, const float* w, float* gx,
                                  float* gw, float* gb, int64_t units, int64_t u0,
                                  const int64_t* geo) {
  mg_dw_t d;
  int64_t* ph;
  if (!mg_dw_init(&d, geo, &ph)) return d.ho <= 0 || d.wo <= 0 || d.taps <= 0; /* 1: empty */
  int64_t T = d.taps, L = d.len, P = d.plane, M = d.m;
  /* NOTE: each output channel's gradient on the (Ho, wq) grid, zero past Wo, with omax
   * zeros before it (the gather's reach back) and the chunks' reach after it */
  int64_t glen = d.omax + P + MG_DW_CH;
  float* G = malloc(sizeof(float) * (size_t)(M * glen));
  float* X = gw ? malloc(sizeof(float) * (size_t)d.xlen) : NULL;
  float* GX = gx ? malloc(sizeof(float) * (size_t)d.xlen) : NULL;
  int32_t* mask = gw ? malloc(sizeof(int32_t) * (size_t)(L + MG_DW_CH)) : NULL;
  int ok = G && (X || !gw) && (GX || !gx) && (mask || !gw);
  if (ok) {
    int64_t *off = ph + T, *order = ph + 2 * T; /* order: the taps sorted by phase */
    if (X) memset(X, 0, sizeof(float) * (size_t)d.xlen);
    if (mask)
      for (int64_t p = 0; p < L + MG_DW_CH; ++p) mask[p] = p < L && p % d.wq < d.wo ? -1 : 0;
    memset(G, 0, sizeof(float) * (size_t)(M * glen));
    for (int64_t u = 0; u < units; ++u) {
      int64_t c = (u0 + u) % d.c;
      for (int64_t jm = 0; jm < M; ++jm) {
        const float* gp = g + (u * M + jm) * d.ho * d.wo;
        float* gg = G + jm * glen + d.omax;
        for (int64_t oh = 0; oh < d.ho; ++oh) mg_copy(gg + oh * d.wq, gp + oh * d.wo, d.wo);
        if (gb) { /* NOTE: the grid's zeros past Wo (and past its end) add nothing */
          mg_vf a[MG_NV] = {{0}};
          for (int64_t p0 = 0; p0 < L; p0 += MG_DW_CH)
            for (int v = 0; v < MG_NV; ++v) a[v] += mg_ld(gg + p0 + MG_VL * v);
          gb[u * M + jm] = mg_hsum(a);
        }
      }
      if (gx) { /* each phase plane: a sum over its taps of w times the shifted gradient */
        float* gxp = gx + u * d.h * d.w;
        int64_t k0 = 0;
        for (int64_t q = 0; q < d.nph; ++q) {
          int64_t k1 = k0;
          while (k1 < T && ph[order[k1]] == q) ++k1;
          float* out = GX + q * P;
          for (int64_t p0 = 0; p0 < P; p0 += MG_DW_CH) {
            mg_vf a[MG_NV] = {{0}};
            for (int64_t jm = 0; jm < M; ++jm) {
              const float* gg = G + jm * glen + d.omax + p0;
              const float* wk = w + (c * M + jm) * T;
              for (int64_t kk = k0; kk < k1; ++kk) {
                int64_t t = order[kk];
                const float* s = gg - off[t];
                mg_vf wv = (mg_vf){0} + wk[t];
                for (int v = 0; v < MG_NV; ++v) a[v] += wv * mg_ld(s + MG_VL * v);
              }
            }
            /* NOTE: the last chunk runs into the next plane (written after) or the slack */
            for (int v = 0; v < MG_NV; ++v) mg_st(out + p0 + MG_VL * v, a[v]);
          }
          k0 = k1;
        }
        mg_dw_merge(&d, GX, gxp);
      }
      if (gw) { /* per tap: the sum over the grid's valid outputs of g times the input */
        const float* xp = x + u * d.h * d.w;
        mg_dw_split(&d, xp, X);
        int bad = 0;
#pragma omp simd reduction(| : bad)
        for (int64_t i = 0; i < d.h * d.w; ++i) bad |= (xp[i] - xp[i]) != 0.0f;
        for (int64_t jm = 0; jm < M; ++jm) {
          const float* gg = G + jm * glen + d.omax;
          float* gwu = gw + (u * M + jm) * T;
          int64_t t = 0;
          /* the grid's columns past Wo add g = 0 times a finite value; four taps at a
           * time share the loads of g */
          for (; !bad && t + 4 <= T; t += 4) {
            const float* s[4];
            mg_vf a[4][2] = {{{0}}};
            for (int j = 0; j < 4; ++j) s[j] = X + ph[t + j] * P + off[t + j];
            for (int64_t p0 = 0; p0 < L; p0 += 2 * MG_VL) {
              mg_vf g0 = mg_ld(gg + p0), g1 = mg_ld(gg + p0 + MG_VL);
              for (int j = 0; j < 4; ++j) {
                a[j][0] += g0 * mg_ld(s[j] + p0);
                a[j][1] += g1 * mg_ld(s[j] + p0 + MG_VL);
              }
            }
            for (int j = 0; j < 4; ++j) gwu[t + j] = mg_hsum2(a[j][0] + a[j][1]);
          }
          for (; t < T; ++t) {
            const float* s = X + ph[t] * P + off[t];
            mg_vf a[MG_NV] = {{0}};
            if (!bad) {
              for (int64_t p0 = 0; p0 < L; p0 += MG_DW_CH)
                for (int v = 0; v < MG_NV; ++v)
                  a[v] += mg_ld(gg + p0 + MG_VL * v) * mg_ld(s + p0 + MG_VL * v);
            } else { /* NOTE: masked: 0 * inf there would make the sum NaN */
              for (int64_t p0 = 0; p0 < L; p0 += MG_DW_CH)
                for (int v = 0; v < MG_NV; ++v) {
                  int64_t q = p0 + MG_VL * v;
                  mg_vi mk;
                  __builtin_memcpy(&mk, mask + q, sizeof mk);
                  a[v] += (mg_vf)((mg_vi)(mg_ld(gg + q) * mg_ld(s + q)) & mk);
                }
            }
            gwu[t] = mg_hsum(a);
          }
        }
      }
    }
  }
  free(G);
  free(X);
  free(GX);
  free(mask);
  free(ph);
  return ok;
}

/* Winograd F(2x2, 3x3) transforms (ops/_winograd.py has the maths and the layouts): a block
 * of m images in NCHW to and from the 16 transformed matrices that the BLAS products read
 * and write, (16, TH, TW, m, C) (tile row, tile column, image, channel: TH TW m C values
 * each, the k-th at k P: P may leave a gap between them). A (sample, 16 channels) group of
 * planes is first copied into a buffer interleaved by channel, (rows, columns, 16), zero
 * outside the planes (the padding); each tile's 4x4 values are then 16 vector loads of the
 * buffer and its 16 transformed values 16 vector stores of 16 channels, and each step of
 * the transforms runs in the order of the NumPy formulas (the same roundings). */
#define MG_WG 16

/* buf (rows R, columns S, MG_WG) = the planes x + lane hw (H, W), row r and column s of
 * the buffer from row r - pt and column s - pl of the plane (0 outside it, and for the
 * lanes from cb on). NOTE: a transpose: gathers of 16 lanes for small planes (nearby in
 * the cache), 8x8 blocks through registers for large ones (64 planes of 32x32: 55 us
 * against 96 gathering, on Zen 4; 256 of 16x16: 51 against 42). */
static void mg_wg_gather(const float* x, int64_t cb, int64_t h, int64_t w, int64_t R, int64_t S,
                         int64_t pt, int64_t pl, float* buf) {
  int64_t hw = h * w;
  int blocks = cb == MG_WG && hw > 256;
  for (int64_t r = 0; r < R; ++r) {
    float* br = buf + r * S * MG_WG;
    int64_t hr = r - pt;
    int64_t s0 = pl < S ? pl : S, s1 = w + pl < S ? w + pl : S;
    if (hr < 0 || hr >= h || s1 < s0) s0 = s1 = S;
    memset(br, 0, sizeof(float) * (size_t)(s0 * MG_WG));
    memset(br + s1 * MG_WG, 0, sizeof(float) * (size_t)((S - s1) * MG_WG));
    if (s0 >= s1) continue;
    const float* xr = x + hr * w - pl; /* xr[s]: column s - pl */
    int64_t s = s0;
    if (blocks)
      for (; s + 8 <= s1; s += 8)
        for (int64_t l0 = 0; l0 < MG_WG; l0 += 8) {
          float t[8][8];
          for (int a = 0; a < 8; ++a)
            for (int b = 0; b < 8; ++b) t[a][b] = xr[(l0 + a) * hw + s + b];
          for (int b = 0; b < 8; ++b)
            for (int a = 0; a < 8; ++a) br[(s + b) * MG_WG + l0 + a] = t[a][b];
        }
    for (; s < s1; ++s) {
      float* d = br + s * MG_WG;
#pragma omp simd
      for (int64_t k = 0; k < MG_WG; ++k) d[k] = k < cb ? xr[k * hw + s] : 0.0f;
    }
  }
}

/* The reverse of mg_wg_gather: rows [0, rows) of the planes y + lane ls (lanes [0, cb),
 * rows of w values) from the buffer (rows, columns S, MG_WG): y[lane][r][c] =
 * buf[r][c][lane] (+ bias[lane] unless NULL) for the columns c < e, 0 from e on. */
static void mg_wg_scatter(const float* buf, int64_t S, int64_t cb, int64_t rows, int64_t e,
                          const float* bias, float* y, int64_t ls, int64_t w) {
  int blocks = cb == MG_WG && ls > 256;
  e = e < 0 ? 0 : (e > w ? w : e);
  for (int64_t r = 0; r < rows; ++r) {
    const float* br = buf + r * S * MG_WG;
    float* yr = y + r * w;
    int64_t c = 0;
    if (blocks)
      for (; c + 8 <= e; c += 8)
        for (int64_t l0 = 0; l0 < MG_WG; l0 += 8) {
          float t[8][8];
          if (bias) {
            for (int b = 0; b < 8; ++b)
              for (int a = 0; a < 8; ++a) t[a][b] = br[(c + b) * MG_WG + l0 + a] + bias[l0 + a];
          } else {
            for (int b = 0; b < 8; ++b)
              for (int a = 0; a < 8; ++a) t[a][b] = br[(c + b) * MG_WG + l0 + a];
          }
          for (int a = 0; a < 8; ++a)
            for (int b = 0; b < 8; ++b) yr[(l0 + a) * ls + c + b] = t[a][b];
        }
    for (int64_t k = 0; k < cb; ++k) {
      float* yk = yr + k * ls;
      const float* bk = br + k;
      if (bias) {
        float bv = bias[k];
        for (int64_t j = c; j < e; ++j) yk[j] = bk[j * MG_WG] + bv;
      } else {
        for (int64_t j = c; j < e; ++j) yk[j] = bk[j * MG_WG];
      }
      for (int64_t j = e; j < w; ++j) yk[j] = 0.0f;
    }
  }
}

/* The transform B^T d B of the input tiles of m images x (m, C, H, W) (padded by pt rows
 * above and pl columns left, zeros wherever the tiles reach past the input) into v (16, TH,
 * TW, m, C). B^T along the rows, then the columns: s0 - s2, s1 + s2, s2 - s1, s1 - s3.
 * Returns 0 when out of memory. */
MG_EXPORT int mg_wino_in_f32(const float* x, float* v, int64_t P, int64_t m, int64_t C,
                             int64_t h, int64_t w, int64_t th, int64_t tw, int64_t pt,
                             int64_t pl) {
  int64_t R = 2 * th + 2, S = 2 * tw + 2;
  float* buf = malloc(sizeof(float) * (size_t)(R * S * MG_WG));
  if (!buf) return 0;
  for (int64_t n = 0; n < m; ++n)
    for (int64_t c0 = 0; c0 < C; c0 += MG_WG) {
      int64_t cb = C - c0 < MG_WG ? C - c0 : MG_WG;
      mg_wg_gather(x + (n * C + c0) * h * w, cb, h, w, R, S, pt, pl, buf);
      for (int64_t t = 0; t < th; ++t)
        for (int64_t u = 0; u < tw; ++u) {
          const float* p = buf + (2 * t * S + 2 * u) * MG_WG;
          float* out = v + ((t * tw + u) * m + n) * C + c0;
#pragma omp simd
          for (int64_t k = 0; k < MG_WG; ++k) {
            float d[4][4], r[4][4];
            for (int i = 0; i < 4; ++i)
              for (int j = 0; j < 4; ++j) d[i][j] = p[(i * S + j) * MG_WG + k];
            for (int j = 0; j < 4; ++j) {
              r[0][j] = d[0][j] - d[2][j];
              r[1][j] = d[1][j] + d[2][j];
              r[2][j] = d[2][j] - d[1][j];
              r[3][j] = d[1][j] - d[3][j];
            }
            if (k < cb)
              for (int i = 0; i < 4; ++i) {
                out[(4 * i + 0) * P + k] = r[i][0] - r[i][2];
                out[(4 * i + 1) * P + k] = r[i][1] + r[i][2];
                out[(4 * i + 2) * P + k] = r[i][2] - r[i][1];
                out[(4 * i + 3) * P + k] = r[i][1] - r[i][3];
              }
          }
        }
    }
  free(buf);
  return 1;
}

/* The output of m images y (m, O, Ho, Wo) from the summed products z (16, TH, TW, m, O):
 * A^T z A (A^T along the rows, then the columns: s0 + s1 + s2, s1 - s2 - s3) plus bias (or
 * NULL), a tile's 2x2 outputs at rows 2t, 2t + 1 and columns 2u, 2u + 1 (those below Ho and
 * Wo). Returns 0 when out of memory. */
MG_EXPORT int mg_wino_out_f32(const float* z, int64_t P, const float* bias, float* y,
                              int64_t m, int64_t O, int64_t ho, int64_t wo, int64_t th,
                              int64_t tw) {
  int64_t S = 2 * tw;
  float* buf = malloc(sizeof(float) * (size_t)(2 * S * MG_WG));
  if (!buf) return 0;
  for (int64_t n = 0; n < m; ++n)
    for (int64_t o0 = 0; o0 < O; o0 += MG_WG) {
      int64_t ob = O - o0 < MG_WG ? O - o0 : MG_WG;
      for (int64_t t = 0; t < th; ++t) {
        for (int64_t u = 0; u < tw; ++u) {
          const float* q = z + ((t * tw + u) * m + n) * O + o0;
          float* bp = buf + 2 * u * MG_WG;
#pragma omp simd
          for (int64_t k = 0; k < MG_WG; ++k) {
            float a[4][4], hh[2][4];
            for (int i = 0; i < 4; ++i)
              for (int j = 0; j < 4; ++j) a[i][j] = k < ob ? q[(4 * i + j) * P + k] : 0.0f;
            for (int j = 0; j < 4; ++j) {
              hh[0][j] = (a[0][j] + a[1][j]) + a[2][j];
              hh[1][j] = (a[1][j] - a[2][j]) - a[3][j];
            }
            for (int i = 0; i < 2; ++i) {
              bp[(i * S + 0) * MG_WG + k] = (hh[i][0] + hh[i][1]) + hh[i][2];
              bp[(i * S + 1) * MG_WG + k] = (hh[i][1] - hh[i][2]) - hh[i][3];
            }
          }
        }
        mg_wg_scatter(buf, S, ob, ho - 2 * t < 2 ? ho - 2 * t : 2, wo, bias ? bias + o0 : NULL,
                      y + ((n * O + o0) * ho + 2 * t) * wo, ho * wo, wo);
      }
    }
  free(buf);
  return 1;
}

/* The backward's transform A g A^T of the output gradient of m images g (m, O, Ho, Wo)
 * into gt (16, TH, TW, m, O) (A along the rows, then the columns: g0, g0 + g1, g0 - g1,
 * -g1, zeros past Ho and Wo), and with gb, the sum of each channel's gradient added to
 * gb[o]. Returns 0 when out of memory. */
MG_EXPORT int mg_wino_gy_f32(const float* g, float* gt, int64_t P, float* gb, int64_t m,
                             int64_t O, int64_t ho, int64_t wo, int64_t th, int64_t tw) {
  int64_t R = 2 * th, S = 2 * tw;
  float* buf = malloc(sizeof(float) * (size_t)(R * S * MG_WG));
  if (!buf) return 0;
  for (int64_t n = 0; n < m; ++n)
    for (int64_t o0 = 0; o0 < O; o0 += MG_WG) {
      int64_t ob = O - o0 < MG_WG ? O - o0 : MG_WG;
      const float* gp = g + (n * O + o0) * ho * wo;
      mg_wg_gather(gp, ob, ho, wo, R, S, 0, 0, buf);
      for (int64_t k = 0; gb && k < ob; ++k) {
        double s, unused;
        mg_pair_sums(gp + k * ho * wo, NULL, ho * wo, 0.0f, 0.0f, 1, &s, &unused);
        gb[o0 + k] += (float)s;
      }
      for (int64_t t = 0; t < th; ++t)
        for (int64_t u = 0; u < tw; ++u) {
          const float* p = buf + (2 * t * S + 2 * u) * MG_WG;
          float* out = gt + ((t * tw + u) * m + n) * O + o0;
#pragma omp simd
          for (int64_t k = 0; k < MG_WG; ++k) {
            float d[2][2], r[4][2];
            for (int i = 0; i < 2; ++i)
              for (int j = 0; j < 2; ++j) d[i][j] = p[(i * S + j) * MG_WG + k];
            for (int j = 0; j < 2; ++j) {
              r[0][j] = d[0][j];
              r[1][j] = d[0][j] + d[1][j];
              r[2][j] = d[0][j] - d[1][j];
              r[3][j] = -d[1][j];
            }
            if (k < ob)
              for (int i = 0; i < 4; ++i) {
                out[(4 * i + 0) * P + k] = r[i][0];
                out[(4 * i + 1) * P + k] = r[i][0] + r[i][1];
                out[(4 * i + 2) * P + k] = r[i][0] - r[i][1];
                out[(4 * i + 3) * P + k] = -r[i][1];
              }
          }
        }
    }
  free(buf);
  return 1;
}

/* The input gradient of m images gx (m, C, H, W) from the products z (16, TH, TW, m, C):
 * B z B^T of each tile (B along the rows, then the columns: z0, z1 - z2 + z3,
 * z1 + z2 - z0, -z3), the overlapping tiles' values added, the padding dropped. Returns 0
 * when out of memory. */
MG_EXPORT int mg_wino_fold_f32(const float* z, int64_t P, float* gx, int64_t m, int64_t C,
                               int64_t h, int64_t w, int64_t th, int64_t tw, int64_t pt,
                               int64_t pl) {
  int64_t R = 2 * th + 2, S = 2 * tw + 2;
  float* buf = malloc(sizeof(float) * (size_t)(R * S * MG_WG));
  if (!buf) return 0;
  for (int64_t n = 0; n < m; ++n)
    for (int64_t c0 = 0; c0 < C; c0 += MG_WG) {
      int64_t cb = C - c0 < MG_WG ? C - c0 : MG_WG;
      memset(buf, 0, sizeof(float) * (size_t)(R * S * MG_WG));
      for (int64_t t = 0; t < th; ++t)
        for (int64_t u = 0; u < tw; ++u) {
          const float* q = z + ((t * tw + u) * m + n) * C + c0;
          float* p = buf + (2 * t * S + 2 * u) * MG_WG;
#pragma omp simd
          for (int64_t k = 0; k < MG_WG; ++k) {
            float a[4][4], r[4][4];
            for (int i = 0; i < 4; ++i)
              for (int j = 0; j < 4; ++j) a[i][j] = k < cb ? q[(4 * i + j) * P + k] : 0.0f;
            for (int j = 0; j < 4; ++j) {
              r[0][j] = a[0][j];
              r[1][j] = (a[1][j] - a[2][j]) + a[3][j];
              r[2][j] = (a[1][j] + a[2][j]) - a[0][j];
              r[3][j] = -a[3][j];
            }
            for (int i = 0; i < 4; ++i) {
              float* pr = p + i * S * MG_WG + k;
              pr[0] += r[i][0];
              pr[MG_WG] += (r[i][1] - r[i][2]) + r[i][3];
              pr[2 * MG_WG] += (r[i][1] + r[i][2]) - r[i][0];
              pr[3 * MG_WG] += -r[i][3];
            }
          }
        }
      /* NOTE: rows and columns past the buffer are reached by no tile: 0 */
      int64_t rows = R - pt < h ? R - pt : h;
      rows = rows < 0 ? 0 : rows;
      float* gp = gx + (n * C + c0) * h * w;
      mg_wg_scatter(buf + (pt * S + pl) * MG_WG, S, cb, rows, S - pl, NULL, gp, h * w, w);
      for (int64_t k = 0; k < cb; ++k)
        memset(gp + k * h * w + rows * w, 0, sizeof(float) * (size_t)((h - rows) * w));
    }
  free(buf);
  return 1;
}

/* The filters' transform G w G^T of w (O, C, 3, 3) as u (16, C, O) (G along the rows,
 * then the columns: w0, (w0 + w2) / 2 + w1 / 2, (w0 + w2) / 2 - w1 / 2, w2). */
MG_EXPORT void mg_wino_filter_f32(const float* w, float* u, int64_t C, int64_t O) {
  int64_t P = C * O;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t o = 0; o < O; ++o) {
      const float* k = w + (o * C + c) * 9;
      float r[4][3];
      for (int j = 0; j < 3; ++j) {
        float half = 0.5f * (k[j] + k[6 + j]);
        r[0][j] = k[j];
        r[1][j] = half + 0.5f * k[3 + j];
        r[2][j] = half - 0.5f * k[3 + j];
        r[3][j] = k[6 + j];
      }
      float* out = u + c * O + o;
      for (int i = 0; i < 4; ++i) {
        float half = 0.5f * (r[i][0] + r[i][2]);
        out[(4 * i + 0) * P] = r[i][0];
        out[(4 * i + 1) * P] = half + 0.5f * r[i][1];
        out[(4 * i + 2) * P] = half - 0.5f * r[i][1];
        out[(4 * i + 3) * P] = r[i][2];
      }
    }
}

/* The weight gradient gw (O, C, 3, 3) from the summed products gu (16, C, O): G^T along the
 * rows, then the columns: u0 + s, d, s + u3 with s = (u1 + u2) / 2, d = (u1 - u2) / 2. */
MG_EXPORT void mg_wino_filter_bwd_f32(const float* gu, float* gw, int64_t C, int64_t O) {
  int64_t P = C * O;
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < C; ++c) {
      const float* in = gu + c * O + o;
      float a[4][4], r[3][4];
      for (int i = 0; i < 16; ++i) a[i / 4][i % 4] = in[i * P];
      for (int j = 0; j < 4; ++j) {
        float s = 0.5f * (a[1][j] + a[2][j]), d = 0.5f * (a[1][j] - a[2][j]);
        r[0][j] = a[0][j] + s;
        r[1][j] = d;
        r[2][j] = s + a[3][j];
      }
      float* k = gw + (o * C + c) * 9;
      for (int i = 0; i < 3; ++i) {
        float s = 0.5f * (r[i][1] + r[i][2]), d = 0.5f * (r[i][1] - r[i][2]);
        k[3 * i + 0] = r[i][0] + s;
        k[3 * i + 1] = d;
        k[3 * i + 2] = s + r[i][3];
      }
    }
}

/* exp(x) for the LSTM gates, where only 1 + exp(x) is used: x clamped to [-87, 88], so that
 * 2^k is one factor in the normal range (results below 2^-125 or above 1.6e38, which the
 * gates' 1 + e and 2 / (e + 1) absorb, are not reached); NaN stays NaN. */
static inline float mg_exp_gate(float x) {
  float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  float r;
  float k = mg_exp_reduce(xc, &r);
  float p = mg_expm1_reduced(r) + 1.0f;
  int32_t b = ((int32_t)k + 127) << 23;
  float s;
  __builtin_memcpy(&s, &b, 4);
  return p * s;
}

static inline float mg_sigmoid_gate(float x) { return 1.0f / (1.0f + mg_exp_gate(-x)); }

/* tanh as mg_tanh, with mg_exp_gate. */
static inline float mg_tanh_gate(float u) {
  float a = u < 0.0f ? -u : u;
  float t = 1.0f - 2.0f / (mg_exp_gate(2.0f * a) + 1.0f);
  t = a < 2.44140625e-4f ? a : t; /* NOTE: tanh(u) = u below 2^-12 (no cancellation) */
  return u < 0.0f ? -t : t;
}

/* One LSTM step of `nd` directions, each with four gate blocks of hb = H B values (H hidden
 * units, B columns) in PyTorch's order (i, f, c~, o), values [lo, hi) of each block: g holds
 * the recurrent product, gi the input projection and b (NULL: none) the biases broadcast to
 * (nd, 4 hb), both added here (see ops/rnn_fused.py). g becomes the gates (sigmoid(i),
 * sigmoid(f), tanh(c~), sigmoid(o)); c = f cp + i c~, tc = tanh(c) and h = o tc (the step's
 * outputs; cp, c, tc and h: (nd, hb)). */
MG_EXPORT void mg_lstm_cell_f32(float* g, const float* gi, const float* b, const float* cp,
                                float* c, float* tc, float* h, int64_t nd, int64_t hb,
                                int64_t lo, int64_t hi) {
  for (int64_t d = 0; d < nd; ++d) {
    float* gin = g + 4 * d * hb;
    float *gf = gin + hb, *gc = gin + 2 * hb, *go = gin + 3 * hb;
    const float* ii = gi + 4 * d * hb;
    const float *if_ = ii + hb, *ic = ii + 2 * hb, *io = ii + 3 * hb;
    const float* cpd = cp + d * hb;
    float *cd = c + d * hb, *tcd = tc + d * hb, *hd = h + d * hb;
    if (b) {
      const float* bi = b + 4 * d * hb;
      const float *bf = bi + hb, *bc = bi + 2 * hb, *bo = bi + 3 * hb;
#pragma omp simd
      for (int64_t j = lo; j < hi; ++j) {
        float i = mg_sigmoid_gate(gin[j] + ii[j] + bi[j]);
        float f = mg_sigmoid_gate(gf[j] + if_[j] + bf[j]);
        float cc = mg_tanh_gate(gc[j] + ic[j] + bc[j]);
        float o = mg_sigmoid_gate(go[j] + io[j] + bo[j]);
        float cn = f * cpd[j] + i * cc;
        float t = mg_tanh_gate(cn);
        gin[j] = i, gf[j] = f, gc[j] = cc, go[j] = o;
        cd[j] = cn, tcd[j] = t, hd[j] = o * t;
      }
    } else {
#pragma omp simd
      for (int64_t j = lo; j < hi; ++j) {
        float i = mg_sigmoid_gate(gin[j] + ii[j]);
        float f = mg_sigmoid_gate(gf[j] + if_[j]);
        float cc = mg_tanh_gate(gc[j] + ic[j]);
        float o = mg_sigmoid_gate(go[j] + io[j]);
        float cn = f * cpd[j] + i * cc;
        float t = mg_tanh_gate(cn);
        gin[j] = i, gf[j] = f, gc[j] = cc, go[j] = o;
        cd[j] = cn, tcd[j] = t, hd[j] = o * t;
      }
    }
  }
}

/* One row (B values) of mg_lstm_cell_bwd_f32, its four gates' sums added to db[0], db[H],
 * db[2H] and db[3H]; called with constant gy != NULL and ci != NULL, so that each call site
 * is its own loop without masked loads or stores. */
static inline __attribute__((always_inline)) void mg_lstm_bwd_row(
    const float* dh, const float* gy, float* dc, const float* gi, const float* gf,
    const float* gc, const float* go, const float* tc, const float* cp, float* di, float* df,
    float* dg, float* dq, float* ci, float* db, int64_t H, int64_t hb, int64_t B) {
  float si = 0.0f, sf = 0.0f, sg = 0.0f, so = 0.0f;
#pragma omp simd reduction(+ : si, sf, sg, so)
  for (int64_t b = 0; b < B; ++b) {
    float a = gy ? dh[b] + gy[b] : dh[b];
    float o = go[b], i = gi[b], f = gf[b], cc = gc[b], t = tc[b];
    float dct = dc[b] + a * o * (1.0f - t * t);
    float vo = a * t * (o * (1.0f - o)), vi = dct * cc * (i * (1.0f - i));
    float vf = dct * cp[b] * (f * (1.0f - f)), vg = dct * i * (1.0f - cc * cc);
    di[b] = vi, df[b] = vf, dg[b] = vg, dq[b] = vo;
    if (ci) ci[b] = vi, ci[b + hb] = vf, ci[b + 2 * hb] = vg, ci[b + 3 * hb] = vo;
    dc[b] = dct * f;
    si += vi, sf += vf, sg += vg, so += vo;
  }
  db[0] += si, db[H] += sf, db[2 * H] += sg, db[3 * H] += so;
}

/* Its backward: from the gradient dh of h (plus gy unless NULL) and dc of c (the later
 * steps'), with the step's gates g, tc = tanh(c) and the previous cell cp (all (nd, H, B)
 * per gate block), dg = the gradients of the four gates' pre-activations (order i, f, c~,
 * o), rows of B values ldg apart, from column col0 (direction 0) or col1 (direction 1)
 * ((nd, 4H) rows: a step's columns of a wider array), the same into dgc (nd, 4H, B) unless
 * NULL, their sums over B added to db (nd, 4H) (the
 * biases' gradient), and dc becomes the previous cell's gradient; rows [lo, hi) of the H
 * of each block. NOTE: dgc, small and contiguous, is what the step's
 * product then reads from the cache; dg's rows lie far apart (one page each). */
MG_EXPORT void mg_lstm_cell_bwd_f32(const float* dh, const float* gy, float* dc, const float* g,
                                    const float* tc, const float* cp, float* dg, float* dgc,
                                    float* db, int64_t nd, int64_t H, int64_t B, int64_t ldg,
                                    int64_t col0, int64_t col1, int64_t lo, int64_t hi) {
  int64_t hb = H * B;
  for (int64_t d = 0; d < nd; ++d) {
    for (int64_t r = lo; r < hi; ++r) {
      int64_t j = d * hb + r * B; /* the row in the (nd, H, B) arrays */
      const float* gi = g + 4 * d * hb + r * B;
      float* di = dg + (4 * d * H + r) * ldg + (d ? col1 : col0);
      float *df = di + H * ldg, *dgg = di + 2 * H * ldg, *dq = di + 3 * H * ldg;
      float* ci = dgc ? dgc + 4 * d * hb + r * B : NULL;
      float* dbr = db + 4 * d * H + r;
      const float *gf = gi + hb, *gc = gi + 2 * hb, *go = gi + 3 * hb;
      if (gy && ci)
        mg_lstm_bwd_row(dh + j, gy + j, dc + j, gi, gf, gc, go, tc + j, cp + j, di, df, dgg,
                        dq, ci, dbr, H, hb, B);
      else if (gy)
        mg_lstm_bwd_row(dh + j, gy + j, dc + j, gi, gf, gc, go, tc + j, cp + j, di, df, dgg,
                        dq, NULL, dbr, H, hb, B);
      else if (ci)
        mg_lstm_bwd_row(dh + j, NULL, dc + j, gi, gf, gc, go, tc + j, cp + j, di, df, dgg, dq,
                        ci, dbr, H, hb, B);
      else
        mg_lstm_bwd_row(dh + j, NULL, dc + j, gi, gf, gc, go, tc + j, cp + j, di, df, dgg, dq,
                        NULL, dbr, H, hb, B);
    }
  }
}

/* The gradient of an embedding table: gw (V, D), zeroed by the caller, plus the rows of g
 * (n, D) at the rows idx (n) names (negative: counted from the end; outside [-V, V): none),
 * summed in the order of the rows. */
MG_EXPORT void mg_embedding_bwd_f32(const float* g, const int64_t* idx, float* gw, int64_t n,
                                    int64_t D, int64_t V) {
  for (int64_t r = 0; r < n; ++r) {
    int64_t j = idx[r] < 0 ? idx[r] + V : idx[r];
    if (j < 0 || j >= V) continue;
    float* dst = gw + j * D;
    const float* src = g + r * D;
#pragma omp simd
    for (int64_t k = 0; k < D; ++k) dst[k] += src[k];
  }
}

/* ---- transposed 2-d convolutions (ops/_convt_blocks.py): the columns of a block of images
 * Geometry geo: C, H, W (the transposed convolution's output channels and size), hi, wi (its
 * input's size), kh, kw, sh, sw, pt, pl (top and left padding), dh, dw. The columns of an
 * image are (C, kh, kw, hi, wi): value (c, i, j, a, b) belongs to output pixel
 * (a sh - pt + i dh, b sw - pl + j dw) of channel c, and is dropped where that is outside. */

/* The input positions [*lo, *hi) of a dimension of n_in whose place a s + off lies in the
 * output's [0, n_out). */
static void mg_ct_span(int64_t off, int64_t s, int64_t n_in, int64_t n_out, int64_t* lo,
                       int64_t* hi) {
  int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t h = off >= n_out ? 0 : (n_out - 1 - off) / s + 1;
  h = h < n_in ? h : n_in;
  *lo = l < h ? l : h;
  *hi = h;
}

/* Where output position a s + off falls when the positions are split into s phases (phase
 * q holds positions r s + q at r): phase *q, at a + *e. */
static void mg_ct_phase(int64_t off, int64_t s, int64_t* q, int64_t* e) {
  *q = ((off % s) + s) % s;
  *e = (off - *q) / s;
}

/* The phase planes of one output plane (H, W): sh * sw planes of Hq x S values, plane
 * (qh, qw) holding the pixels (r sh + qh, t sw + qw) at (r, t), with G spare values before
 * and after them all. The column planes (hi, wi) of the taps then map to these planes with
 * a shift, and when S == wi each tap's rows are one contiguous run: one loop per tap
 * instead of one per row (the rows, e.g. 8 or 16 values, cost more in loop overhead than in
 * additions). Values a run covers outside the tap's columns are zeros (the fold zeroes them
 * in the columns first, the unfold writes them afterwards). */
typedef struct {
  int64_t C, H, W, hi, wi, kh, kw, sh, sw, pt, pl, dh, dw, Hq, Wq, S, PQ, G;
} mg_ct_geo;

static mg_ct_geo mg_ct_read(const int64_t* geo) {
  mg_ct_geo g = {geo[0], geo[1], geo[2], geo[3], geo[4], geo[5], geo[6],
                 geo[7], geo[8], geo[9], geo[10], geo[11], geo[12]};
  g.Hq = (g.H + g.sh - 1) / g.sh;
  g.Wq = (g.W + g.sw - 1) / g.sw;
  g.S = g.Wq > g.wi ? g.Wq : g.wi;
  g.PQ = g.Hq * g.S;
  g.G = 2 * g.S + (g.kw * g.dw + g.pl) / g.sw + 8;
  return g;
}

/* A tap's rows [a0, a1) and columns [b0, b1), its phase plane and shift: the value (a, b) of
 * its column plane is pixel (a + eh, b + ew) of plane `plane`. */
typedef struct {
  int64_t a0, a1, b0, b1, plane, eh, ew;
} mg_ct_tap;

static mg_ct_tap mg_ct_tap_of(const mg_ct_geo* g, int64_t i, int64_t j) {
  mg_ct_tap t;
  int64_t oh = i * g->dh - g->pt, ow = j * g->dw - g->pl, qh, qw;
  mg_ct_span(oh, g->sh, g->hi, g->H, &t.a0, &t.a1);
  mg_ct_span(ow, g->sw, g->wi, g->W, &t.b0, &t.b1);
  mg_ct_phase(oh, g->sh, &qh, &t.eh);
  mg_ct_phase(ow, g->sw, &qw, &t.ew);
  t.plane = qh * g->sw + qw;
  return t;
}

/* Every tap's mg_ct_tap_of, (kh, kw) (malloc'd: the caller frees it), or NULL. */
static mg_ct_tap* mg_ct_taps(const mg_ct_geo* g) {
  mg_ct_tap* taps = malloc(sizeof(mg_ct_tap) * (size_t)(g->kh * g->kw));
  if (taps)
    for (int64_t i = 0; i < g->kh; ++i)
      for (int64_t j = 0; j < g->kw; ++j) taps[i * g->kw + j] = mg_ct_tap_of(g, i, j);
  return taps;
}

/* y (m, C, H, W) = bias (C,) (or 0) + every column value added at its output pixel
 * (col2im: the transposed convolution's forward after its product); the columns' values
 * outside the output are set to 0. The columns are (C, kh, kw, m, hi, wi): the m images'
 * one product (the weight times their inputs side by side, (C_in, m hi wi)). Returns 0
 * when out of memory. */
MG_EXPORT int mg_convt_fold_f32(float* cols, const float* bias, float* y, int64_t m,
                                const int64_t* geo) {
  mg_ct_geo g = mg_ct_read(geo);
  int64_t hw = g.hi * g.wi, HW = g.H * g.W, np_ = g.sh * g.sw * g.PQ;
  float* buf = calloc((size_t)(np_ + 2 * g.G), sizeof(float));
  mg_ct_tap* taps = mg_ct_taps(&g);
  if (!buf || !taps) {
    free(buf);
    free(taps);
    return 0;
  }
  float* P = buf + g.G;
  for (int64_t p = 0; p < m * g.C; ++p) {
    float* out = y + p * HW;
    float b0 = bias ? bias[p % g.C] : 0.0f;
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        mg_ct_tap t = taps[i * g.kw + j];
        float* src = cols + ((((p % g.C) * g.kh + i) * g.kw + j) * m + p / g.C) * hw;
        float* dst = P + t.plane * g.PQ + t.eh * g.S + t.ew;
        if (t.a0 >= t.a1 || t.b0 >= t.b1) continue;
        if (g.S == g.wi) {
          if (t.b0 > 0 || t.b1 < g.wi)
            for (int64_t a = t.a0; a < t.a1; ++a) {
              for (int64_t b = 0; b < t.b0; ++b) src[a * g.wi + b] = 0.0f;
              for (int64_t b = t.b1; b < g.wi; ++b) src[a * g.wi + b] = 0.0f;
            }
          float* d = dst + t.a0 * g.S;
          const float* r = src + t.a0 * g.wi;
          int64_t n = (t.a1 - t.a0) * g.wi;
#pragma omp simd
          for (int64_t k = 0; k < n; ++k) d[k] += r[k];
        } else {
          for (int64_t a = t.a0; a < t.a1; ++a) {
            float* d = dst + a * g.S;
            const float* r = src + a * g.wi;
#pragma omp simd
            for (int64_t b = t.b0; b < t.b1; ++b) d[b] += r[b];
          }
        }
      }
    /* NOTE: each pixel's sum is set back to 0 as it is read: the planes are all zeros
     * again for the next plane (the runs add zeros elsewhere), without a memset */
    for (int64_t h = 0; h < g.H; ++h) {
      float* orow = out + h * g.W;
      float* prow = P + (h % g.sh) * g.sw * g.PQ + (h / g.sh) * g.S;
      if (g.sw == 1) {
#pragma omp simd
        for (int64_t t = 0; t < g.W; ++t) {
          orow[t] = prow[t] + b0;
          prow[t] = 0.0f;
        }
      } else if (g.sw == 2) {
        float* prow1 = prow + g.PQ;
#pragma omp simd
        for (int64_t t = 0; t < g.W / 2; ++t) {
          orow[2 * t] = prow[t] + b0;
          orow[2 * t + 1] = prow1[t] + b0;
          prow[t] = 0.0f;
          prow1[t] = 0.0f;
        }
        if (g.W % 2) {
          orow[g.W - 1] = prow[g.W / 2] + b0;
          prow[g.W / 2] = 0.0f;
        }
      } else {
        for (int64_t q = 0; q < g.sw; ++q)
          for (int64_t t = 0; t * g.sw + q < g.W; ++t) {
            orow[t * g.sw + q] = prow[q * g.PQ + t] + b0;
            prow[q * g.PQ + t] = 0.0f;
          }
      }
    }
  }
  free(buf);
  free(taps);
  return 1;
}

/* cols (C, kh, kw, m, hi, wi) = the values of g (m, C, H, W) at each column's output pixel,
 * 0 outside (im2col: the transposed convolution's backward before its products); with gb
 * (m, C), each plane's sum of g there. Returns 0 when out of memory. */
MG_EXPORT int mg_convt_unfold_f32(const float* gy, float* cols, float* gb, int64_t m,
                                  const int64_t* geo) {
  mg_ct_geo g = mg_ct_read(geo);
  int64_t hw = g.hi * g.wi, HW = g.H * g.W, np_ = g.sh * g.sw * g.PQ;
  /* NOTE: zeros, so that the runs read zeros (never garbage) where no pixel is */
  float* buf = calloc((size_t)(np_ + 2 * g.G), sizeof(float));
  mg_ct_tap* taps = mg_ct_taps(&g);
  if (!buf || !taps) {
    free(buf);
    free(taps);
    return 0;
  }
  float* P = buf + g.G;
  for (int64_t p = 0; p < m * g.C; ++p) {
    const float* in = gy + p * HW;
    if (gb) {
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (int64_t t = 0; t < HW; ++t) acc += in[t];
      gb[p] = acc;
    }
    for (int64_t h = 0; h < g.H; ++h) {
      const float* irow = in + h * g.W;
      float* prow = P + (h % g.sh) * g.sw * g.PQ + (h / g.sh) * g.S;
      if (g.sw == 1) {
#pragma omp simd
        for (int64_t t = 0; t < g.W; ++t) prow[t] = irow[t];
      } else if (g.sw == 2) {
        float* prow1 = prow + g.PQ;
#pragma omp simd
        for (int64_t t = 0; t < g.W / 2; ++t) {
          prow[t] = irow[2 * t];
          prow1[t] = irow[2 * t + 1];
        }
        if (g.W % 2) prow[g.W / 2] = irow[g.W - 1];
      } else {
        for (int64_t q = 0; q < g.sw; ++q)
          for (int64_t t = 0; t * g.sw + q < g.W; ++t) prow[q * g.PQ + t] = irow[t * g.sw + q];
      }
    }
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        mg_ct_tap t = taps[i * g.kw + j];
        float* dst = cols + ((((p % g.C) * g.kh + i) * g.kw + j) * m + p / g.C) * hw;
        const float* src = P + t.plane * g.PQ + t.eh * g.S + t.ew;
        if (t.a0 >= t.a1 || t.b0 >= t.b1) {
          memset(dst, 0, sizeof(float) * (size_t)hw);
          continue;
        }
        memset(dst, 0, sizeof(float) * (size_t)(t.a0 * g.wi));
        memset(dst + t.a1 * g.wi, 0, sizeof(float) * (size_t)((g.hi - t.a1) * g.wi));
        if (g.S == g.wi) {
          float* d = dst + t.a0 * g.wi;
          const float* r = src + t.a0 * g.S;
          int64_t n = (t.a1 - t.a0) * g.wi;
#pragma omp simd
          for (int64_t k = 0; k < n; ++k) d[k] = r[k];
          if (t.b0 > 0 || t.b1 < g.wi)
            for (int64_t a = t.a0; a < t.a1; ++a) {
              for (int64_t b = 0; b < t.b0; ++b) dst[a * g.wi + b] = 0.0f;
              for (int64_t b = t.b1; b < g.wi; ++b) dst[a * g.wi + b] = 0.0f;
            }
        } else {
          for (int64_t a = t.a0; a < t.a1; ++a) {
            float* d = dst + a * g.wi;
            const float* r = src + a * g.S;
            for (int64_t b = 0; b < t.b0; ++b) d[b] = 0.0f;
#pragma omp simd
            for (int64_t b = t.b0; b < t.b1; ++b) d[b] = r[b];
            for (int64_t b = t.b1; b < g.wi; ++b) d[b] = 0.0f;
          }
        }
      }
  }
  free(buf);
  free(taps);
  return 1;
}

/* No fused multiply-adds in a function: its values stay those of the same operations
 * rounded one by one (NumPy's), bit for bit. */
#if defined(__clang__)
#define MG_NO_FMA_ATTR
#define MG_NO_FMA _Pragma("clang fp contract(off)")
#else
#define MG_NO_FMA_ATTR __attribute__((optimize("fp-contract=off")))
#define MG_NO_FMA
#endif

/* One Adam/AdamW step of a float32 parameter p with gradient g and moments m, v (vmax:
 * AMSGrad's running maximum of v, or NULL): the operations of manygrad's NumPy update
 * (Adam.update) in its order with its float32 factors, so the same bits: flags 1:
 * p *= decay (AdamW's), 2: maximize (g = -g), 4: g = l2 p + g (Adam's weight decay);
 * m = (m - g) beta1 + g, v = v beta2 + (g (1 - beta2)) g,
 * p += m / (sqrt(v) + eps_c2) neg_step. */
MG_EXPORT MG_NO_FMA_ATTR void mg_adam_f32(float* p, const float* g, float* m, float* v,
                                          float* vmax, int64_t n, float decay, float l2,
                                          float beta1, float beta2, float one_minus_beta2,
                                          float eps_c2, float neg_step, int flags) {
  MG_NO_FMA
  int decoupled = flags & 1, maximize = flags & 2, wd = flags & 4;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float pi = decoupled ? p[i] * decay : p[i];
    float gi = maximize ? -g[i] : g[i];
    gi = wd ? pi * l2 + gi : gi;
    float mi = (m[i] - gi) * beta1 + gi;
    float vi = v[i] * beta2 + (gi * one_minus_beta2) * gi;
    m[i] = mi;
    v[i] = vi;
    if (vmax) {
      float vm = vmax[i];
      vm = (vi > vm) | (vi != vi) ? vi : vm; /* NOTE: NaN propagates, as NumPy's maximum */
      vmax[i] = vm;
      vi = vm;
    }
    p[i] = pi + mi / (sqrtf(vi) + eps_c2) * neg_step;
  }
}

/* One SGD step of n float32 values, with the roundings of SGD.update's NumPy passes.
 * flags: 1: weight decay (g = p wd + g, or p wd - g when maximizing), 2: maximize
 * (g = -g), 4: momentum (buf = buf momentum + g, times one_minus_damp when 16 is set;
 * 8: first step, buf = g), 32: Nesterov (d = buf momentum + g, else d = buf);
 * p += d neg_lr. */
MG_EXPORT MG_NO_FMA_ATTR void mg_sgd_f32(float* p, const float* g, float* buf, int64_t n,
                                         float wd, float momentum, float one_minus_damp,
                                         float neg_lr, int flags) {
  MG_NO_FMA
  /* NOTE: one loop per case, so that each vectorises (flag tests inside one loop kept
   * GCC's vectoriser out: 1.8 ms against NumPy's 1.0 for 1.6M values) */
  const float sign = (flags & 2) ? -1.0f : 1.0f;
  const int decay = flags & 1, maximize = flags & 2;
  if (!(flags & 4)) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      float gi = decay ? (maximize ? p[i] * wd - g[i] : p[i] * wd + g[i]) : g[i] * sign;
      p[i] = p[i] + gi * neg_lr;
    }
    return;
  }
  const int first = flags & 8, damp = flags & 16, nesterov = flags & 32;
  if (first) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      float gi = decay ? (maximize ? p[i] * wd - g[i] : p[i] * wd + g[i]) : g[i] * sign;
      buf[i] = gi;
      float d = nesterov ? gi * momentum + gi : gi;
      p[i] = p[i] + d * neg_lr;
    }
    return;
  }
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float gi = decay ? (maximize ? p[i] * wd - g[i] : p[i] * wd + g[i]) : g[i] * sign;
    float b = buf[i] * momentum + (damp ? gi * one_minus_damp : gi);
    buf[i] = b;
    float d = nesterov ? b * momentum + gi : b;
    p[i] = p[i] + d * neg_lr;
  }
}

/* Linear interpolation along the last dim (interpolate's 1-d linear mode, forward): y (rows,
 * m) from x (rows, n), y[r, j] = x[r, i0[j]] w0[j] + x[r, i1[j]] w1[j], rounded as PyTorch's
 * kernel rounds it, fma(x0, w0, x1 w1) (NaN and inf pass as there: 0 * inf is NaN).
 * idx (4, m): i0, i1, and the same minus the first column base[j / 8] that the 8 outputs
 * from j (a multiple of 8) read, when their 16 taps fall within the 8 columns from it
 * (base -1: they do not). Such outputs take one load of 8 columns and two permutes (an
 * upsampling reads fewer than 8 columns for 8 outputs), the others scalar loads. */
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif
MG_EXPORT void mg_lerp_last_f32(const float* x, float* y, int64_t rows, int64_t n, int64_t m,
                                const int32_t* idx, const float* wt, const int32_t* base) {
  const int32_t *i0 = idx, *i1 = idx + m;
  const float *w0 = wt, *w1 = wt + m;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * m;
    int64_t j = 0;
#if defined(__AVX2__) && defined(__FMA__)
    const int32_t *p0 = idx + 2 * m, *p1 = idx + 3 * m;
    for (; j + 8 <= m; j += 8) {
      int32_t b = base[j >> 3];
      if (b < 0) {
        for (int64_t k = j; k < j + 8; ++k)
          yr[k] = __builtin_fmaf(xr[i0[k]], w0[k], xr[i1[k]] * w1[k]);
        continue;
      }
      __m256 v = _mm256_loadu_ps(xr + b);
      __m256 a = _mm256_permutevar8x32_ps(v, _mm256_loadu_si256((const __m256i*)(p0 + j)));
      __m256 c = _mm256_permutevar8x32_ps(v, _mm256_loadu_si256((const __m256i*)(p1 + j)));
      __m256 t = _mm256_mul_ps(c, _mm256_loadu_ps(w1 + j));
      _mm256_storeu_ps(yr + j, _mm256_fmadd_ps(a, _mm256_loadu_ps(w0 + j), t));
    }
#else
    (void)base;
#endif
    for (; j < m; ++j) yr[j] = __builtin_fmaf(xr[i0[j]], w0[j], xr[i1[j]] * w1[j]);
  }
}

/* The outer product y[r, j] = a[r] * b[j] of rows r of a row block (a matrix product with an
 * inner size of 1, which NumPy runs in its own loop): one rounding per value, as the
 * product itself. */
MG_EXPORT void mg_outer_f32(const float* a, const float* b, float* y, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    const float s = a[r];
    float* yr = y + r * n;
    for (int64_t j = 0; j < n; ++j) yr[j] = s * b[j];
  }
}

/* ---- order statistics, scans, scatters and bags (ops/sorting.py, scans.py, reduce.py,
 * scatter.py, dropout_ext.py through cpu/_order_kernels.py): typed loops over rows of
 * C-contiguous arrays. dtype codes: 0 float32, 1 float64, 2 int64, 3 int32. */

/* A value's order key: unsigned integers that compare as PyTorch's CPU comparators compare
 * the values, NaN above +inf (all NaN equal), -0 equal to +0. */
static inline uint64_t mg_key_f32(float v) {
  uint32_t b;
  v = v == 0.0f ? 0.0f : v;
  __builtin_memcpy(&b, &v, 4);
  uint32_t k = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
  return v != v ? 0xFFFFFFFFu : k;
}

static inline uint64_t mg_key_f64(double v) {
  uint64_t b;
  v = v == 0.0 ? 0.0 : v;
  __builtin_memcpy(&b, &v, 8);
  uint64_t k = (b >> 63) ? ~b : (b | (1ull << 63));
  return v != v ? ~0ull : k;
}

#define MG_NAN_KEY(dt) ((dt) == 0 ? 0xFFFFFFFFull : (dt) == 1 ? ~0ull : 2ull)

/* Keys of row r of x (n values of dtype dt) into a[].k, their positions into a[].i;
 * flip: the keys reversed (so that "larger" is "less"). */
typedef struct {
  uint64_t k;
  int64_t i;
} mg_kp;

static void mg_keys(const void* x, int dt, int64_t r, int64_t n, int flip, mg_kp* a) {
  uint64_t f = flip ? ~0ull : 0ull;
  if (dt == 0) {
    const float* p = (const float*)x + r * n;
    for (int64_t j = 0; j < n; ++j) a[j].k = mg_key_f32(p[j]) ^ f, a[j].i = j;
  } else if (dt == 1) {
    const double* p = (const double*)x + r * n;
    for (int64_t j = 0; j < n; ++j) a[j].k = mg_key_f64(p[j]) ^ f, a[j].i = j;
  } else if (dt == 2) {
    const int64_t* p = (const int64_t*)x + r * n;
    for (int64_t j = 0; j < n; ++j) a[j].k = ((uint64_t)p[j] ^ (1ull << 63)) ^ f, a[j].i = j;
  } else {
    const int32_t* p = (const int32_t*)x + r * n;
    for (int64_t j = 0; j < n; ++j) a[j].k = ((uint64_t)(int64_t)p[j] ^ (1ull << 63)) ^ f;
    for (int64_t j = 0; j < n; ++j) a[j].i = j;
  }
}

/* libstdc++'s std::partial_sort, std::nth_element and std::sort (the algorithms of
 * PyTorch's CPU topk, on (value, index) pairs compared by value only), step for step, as
 * ops/_cpu_order.py replays them in Python: the same tie order. */
#define MG_LT(x, y) ((x).k < (y).k)
#define MG_SWAP(a, b)  \
  do {                 \
    mg_kp t_ = (a);    \
    (a) = (b);         \
    (b) = t_;          \
  } while (0)

static int64_t mg_lg(int64_t n) { return 63 - __builtin_clzll((unsigned long long)n); }

static void mg_linear_insert(mg_kp* a, int64_t last) {
  mg_kp v = a[last];
  int64_t nxt = last - 1;
  while (nxt >= 0 && MG_LT(v, a[nxt])) {
    a[last] = a[nxt];
    last = nxt--;
  }
  a[last] = v;
}

static void mg_insertion_sort(mg_kp* a, int64_t first, int64_t last) {
  for (int64_t i = first + 1; i < last; ++i) {
    mg_kp v = a[i];
    if (MG_LT(v, a[first])) {
      memmove(a + first + 1, a + first, (size_t)(i - first) * sizeof(mg_kp));
      a[first] = v;
    } else {
      mg_linear_insert(a, i);
    }
  }
}

static void mg_final_insertion_sort(mg_kp* a, int64_t first, int64_t last) {
  if (last - first > 16) {
    mg_insertion_sort(a, first, first + 16);
    for (int64_t i = first + 16; i < last; ++i) mg_linear_insert(a, i);
  } else {
    mg_insertion_sort(a, first, last);
  }
}

static int64_t mg_partition_pivot(mg_kp* a, int64_t first, int64_t last) {
  int64_t x = first + 1, y = first + (last - first) / 2, z = last - 1, m;
  if (MG_LT(a[x], a[y]))
    m = MG_LT(a[y], a[z]) ? y : MG_LT(a[x], a[z]) ? z : x;
  else
    m = MG_LT(a[x], a[z]) ? x : MG_LT(a[y], a[z]) ? z : y;
  MG_SWAP(a[first], a[m]);
  mg_kp pivot = a[first];
  int64_t lo = first + 1, hi = last;
  for (;;) {
    while (MG_LT(a[lo], pivot)) ++lo;
    --hi;
    while (MG_LT(pivot, a[hi])) --hi;
    if (!(lo < hi)) return lo;
    MG_SWAP(a[lo], a[hi]);
    ++lo;
  }
}

static void mg_push_heap(mg_kp* a, int64_t hole, int64_t top, mg_kp v) {
  int64_t parent = (hole - 1) / 2;
  while (hole > top && MG_LT(a[parent], v)) {
    a[hole] = a[parent];
    hole = parent;
    parent = (hole - 1) / 2;
  }
  a[hole] = v;
}

static void mg_adjust_heap(mg_kp* a, int64_t hole, int64_t n, mg_kp v) {
  int64_t top = hole, child = hole;
  while (child < (n - 1) / 2) {
    child = 2 * (child + 1);
    if (MG_LT(a[child], a[child - 1])) --child;
    a[hole] = a[child];
    hole = child;
  }
  if ((n & 1) == 0 && child == (n - 2) / 2) {
    child = 2 * (child + 1);
    a[hole] = a[child - 1];
    hole = child - 1;
  }
  mg_push_heap(a, hole, top, v);
}

/* a is the heap's first element: the heap of len values, result past it. */
static void mg_pop_heap(mg_kp* a, int64_t len, int64_t result) {
  mg_kp v = a[result];
  a[result] = a[0];
  mg_adjust_heap(a, 0, len, v);
}

static void mg_heap_select(mg_kp* a, int64_t middle, int64_t last) {
  if (middle >= 2)
    for (int64_t parent = (middle - 2) / 2; parent >= 0; --parent)
      mg_adjust_heap(a, parent, middle, a[parent]);
  for (int64_t i = middle; i < last; ++i)
    if (MG_LT(a[i], a[0])) mg_pop_heap(a, middle, i);
}

static void mg_partial_sort(mg_kp* a, int64_t middle, int64_t last) {
  mg_heap_select(a, middle, last);
  while (middle > 1) {
    --middle;
    mg_pop_heap(a, middle, middle);
  }
}

static void mg_introsort_loop(mg_kp* a, int64_t first, int64_t last, int64_t depth) {
  while (last - first > 16) {
    if (depth == 0) {
      mg_partial_sort(a + first, last - first, last - first);
      return;
    }
    --depth;
    int64_t cut = mg_partition_pivot(a, first, last);
    mg_introsort_loop(a, cut, last, depth);
    last = cut;
  }
}

static void mg_std_sort(mg_kp* a, int64_t first, int64_t last) {
  if (last - first > 1) {
    mg_introsort_loop(a, first, last, mg_lg(last - first) * 2);
    mg_final_insertion_sort(a, first, last);
  }
}

static void mg_nth_element(mg_kp* a, int64_t first, int64_t nth, int64_t last) {
  if (first == last || nth == last) return;
  int64_t depth = mg_lg(last - first) * 2;
  while (last - first > 3) {
    if (depth == 0) {
      mg_heap_select(a + first, nth + 1 - first, last - first);
      MG_SWAP(a[first], a[nth]);
      return;
    }
    --depth;
    int64_t cut = mg_partition_pivot(a, first, last);
    if (cut <= nth)
      first = cut;
    else
      last = cut;
  }
  mg_insertion_sort(a, first, last);
}

/* The indices of PyTorch's CPU topk of each row of x (rows, n): out (rows, k). 0: out of
 * memory. */
MG_EXPORT int mg_topk(const void* x, int dt, int64_t rows, int64_t n, int64_t k, int largest,
                      int sorted, int64_t* out) {
  if (k <= 0) return 1;
  mg_kp* a = (mg_kp*)malloc((size_t)n * sizeof(mg_kp));
  if (!a) return 0;
  for (int64_t r = 0; r < rows; ++r) {
    mg_keys(x, dt, r, n, largest, a);
    if (k * 64 <= n) {
      mg_partial_sort(a, k, n);
    } else {
      mg_nth_element(a, 0, k - 1, n);
      if (sorted) mg_std_sort(a, 0, k - 1);
    }
    int64_t* o = out + r * k;
    for (int64_t j = 0; j < k; ++j) o[j] = a[j].i;
  }
  free(a);
  return 1;
}

/* The quickselect of PyTorch's CPU kthvalue (median of three, Hoare partition) on pairs
 * ordered by GT; the pair that lands at position k. */
#define MG_GT_KEY(x, y) ((x).k > (y).k)
#define MG_GT_LEX(x, y) ((x).k > (y).k || ((x).k == (y).k && (x).i > (y).i))
#define MG_QUICKSELECT(NAME, GT)                                 \
  static int64_t NAME(mg_kp* a, int64_t n, int64_t k) {          \
    int64_t lo = 0, hi = n - 1;                                  \
    while (hi > lo) {                                            \
      if (hi == lo + 1) {                                        \
        if (GT(a[lo], a[hi])) MG_SWAP(a[lo], a[hi]);             \
        break;                                                   \
      }                                                          \
      int64_t mid = (lo + hi) >> 1;                              \
      MG_SWAP(a[mid], a[lo + 1]);                                \
      if (GT(a[lo + 1], a[hi])) MG_SWAP(a[lo + 1], a[hi]);       \
      if (GT(a[lo], a[hi])) MG_SWAP(a[lo], a[hi]);               \
      if (GT(a[lo + 1], a[lo])) MG_SWAP(a[lo + 1], a[lo]);       \
      int64_t i = lo + 1, j = hi;                                \
      mg_kp piv = a[lo];                                         \
      for (;;) {                                                 \
        do ++i;                                                  \
        while (GT(piv, a[i]));                                   \
        do --j;                                                  \
        while (GT(a[j], piv));                                   \
        if (j < i) break;                                        \
        MG_SWAP(a[i], a[j]);                                     \
      }                                                          \
      MG_SWAP(a[lo], a[j]);                                      \
      if (j <= k) lo = i;                                        \
      if (j >= k) hi = j - 1;                                    \
    }                                                            \
    return a[k].i;                                               \
  }
MG_QUICKSELECT(mg_select_key, MG_GT_KEY)
MG_QUICKSELECT(mg_select_lex, MG_GT_LEX)

/* Per row of x (rows, n), the index PyTorch's CPU kernels report: mode 0: kthvalue (the
 * k-th smallest, 0-based, as its quickselect picks among equal values); 1: median (the
 * first NaN if any, else the value at (n - 1) / 2 of the order by value then index); 2:
 * nanmedian (the same over the values that are not NaN; for a row of NaN only, the one
 * std::nth_element leaves first, as PyTorch's).
 * 0: out of memory. */
MG_EXPORT int mg_select_rows(const void* x, int dt, int64_t rows, int64_t n, int64_t k,
                             int mode, int64_t* out) {
  mg_kp* a = (mg_kp*)malloc((size_t)(n > 0 ? n : 1) * sizeof(mg_kp));
  if (!a) return 0;
  const uint64_t nan_key = MG_NAN_KEY(dt);
  for (int64_t r = 0; r < rows; ++r) {
    mg_keys(x, dt, r, n, 0, a);
    if (mode == 0) {
      out[r] = mg_select_key(a, n, k);
      continue;
    }
    int64_t nans = 0, first_nan = -1;
    if (dt < 2)
      for (int64_t j = 0; j < n; ++j)
        if (a[j].k == nan_key) {
          if (first_nan < 0) first_nan = j;
          ++nans;
        }
    if (mode == 1 && first_nan >= 0) {
      out[r] = first_nan;
      continue;
    }
    int64_t valid = n - nans;
    if (!valid && n) { /* NOTE: all equivalent to std::nth_element: its pick, as PyTorch's */
      mg_nth_element(a, 0, 0, n);
      out[r] = a[0].i;
      continue;
    }
    out[r] = valid ? mg_select_lex(a, n, (valid - 1) / 2) : 0;
  }
  free(a);
  return 1;
}

/* Running maxima (is_max) or minima of x (outer, n, inner) along n: the index where each
 * was reached into idx and, unless vals is NULL, the running value into vals; PyTorch's
 * rule: a value takes over when it is NaN or, while the running value is not NaN, when it
 * is >= (<=) it. 0: out of memory. */
#define MG_CUMEXT_ROW(T, ISNAN, CMP)                                                        \
  for (int64_t o = 0; o < outer; ++o) {                                                    \
    const T* xr = x + o * n;                                                               \
    int64_t* ir = idx + o * n;                                                             \
    T* vr = vals ? vals + o * n : NULL;                                                    \
    T best = xr[0];                                                                        \
    int64_t bi = 0;                                                                        \
    for (int64_t j = 0; j < n; ++j) {                                                      \
      T v = xr[j];                                                                         \
      /* NOTE: a branch, not a select: a new running value is rare (about log n times in \
       * a row of random values), and the select's dependency chain cost 2x */            \
      if (__builtin_expect(ISNAN(v) || (!ISNAN(best) && v CMP best), 0)) best = v, bi = j; \
      ir[j] = bi;                                                                          \
      if (vr) vr[j] = best;                                                                \
    }                                                                                      \
  }
#define MG_CUMEXT(SFX, T, ISNAN)                                                            \
  static int mg_cumext_##SFX(const T* x, int64_t outer, int64_t n, int64_t inner,          \
                             int is_max, int64_t* idx, T* vals) {                          \
    if (!n) return 1;                                                                      \
    if (inner == 1) {                                                                      \
      if (is_max) {                                                                        \
        MG_CUMEXT_ROW(T, ISNAN, >=)                                                        \
      } else {                                                                             \
        MG_CUMEXT_ROW(T, ISNAN, <=)                                                        \
      }                                                                                    \
      return 1;                                                                            \
    }                                                                                      \
    T* best = (T*)malloc((size_t)inner * sizeof(T));                                       \
    if (!best) return 0;                                                                   \
    for (int64_t o = 0; o < outer; ++o) {                                                  \
      const T* xo = x + o * n * inner;                                                     \
      int64_t* io = idx + o * n * inner;                                                   \
      T* vo = vals ? vals + o * n * inner : NULL;                                          \
      for (int64_t i = 0; i < inner; ++i) best[i] = xo[i], io[i] = 0;                      \
      if (vo) memcpy(vo, xo, (size_t)inner * sizeof(T));                                   \
      for (int64_t j = 1; j < n; ++j) {                                                    \
        const T* xr = xo + j * inner;                                                      \
        const int64_t* prev = io + (j - 1) * inner;                                        \
        int64_t* ir = io + j * inner;                                                      \
        if (is_max) {                                                                      \
          _Pragma("omp simd") for (int64_t i = 0; i < inner; ++i) {                        \
            T v = xr[i], b = best[i];                                                      \
            int take = ISNAN(v) | ((!ISNAN(b)) & (v >= b));                                  \
            best[i] = take ? v : b;                                                        \
            ir[i] = take ? j : prev[i];                                                    \
          }                                                                                \
        } else {                                                                           \
          _Pragma("omp simd") for (int64_t i = 0; i < inner; ++i) {                        \
            T v = xr[i], b = best[i];                                                      \
            int take = ISNAN(v) | ((!ISNAN(b)) & (v <= b));                                  \
            best[i] = take ? v : b;                                                        \
            ir[i] = take ? j : prev[i];                                                    \
          }                                                                                \
        }                                                                                  \
        if (vo) memcpy(vo + j * inner, best, (size_t)inner * sizeof(T));                   \
      }                                                                                    \
    }                                                                                      \
    free(best);                                                                            \
    return 1;                                                                              \
  }
#define MG_ISNAN_F(v) ((v) != (v))
#define MG_ISNAN_I(v) 0
MG_CUMEXT(f32, float, MG_ISNAN_F)
MG_CUMEXT(f64, double, MG_ISNAN_F)
MG_CUMEXT(i64, int64_t, MG_ISNAN_I)
MG_CUMEXT(i32, int32_t, MG_ISNAN_I)

MG_EXPORT int mg_cumext(const void* x, int dt, int64_t outer, int64_t n, int64_t inner,
                        int is_max, int64_t* idx, void* vals) {
  switch (dt) {
    case 0: return mg_cumext_f32((const float*)x, outer, n, inner, is_max, idx, (float*)vals);
    case 1: return mg_cumext_f64((const double*)x, outer, n, inner, is_max, idx, (double*)vals);
    case 2:
      return mg_cumext_i64((const int64_t*)x, outer, n, inner, is_max, idx, (int64_t*)vals);
    default:
      return mg_cumext_i32((const int32_t*)x, outer, n, inner, is_max, idx, (int32_t*)vals);
  }
}

/* Running sums (prod 0) or products of x (outer, n, inner) along n into y, from the last
 * element backwards with reverse (a flipped scan flipped back: cumsum's gradient), carried
 * in ACC and rounded once per output: float32 in double (PyTorch's CPU accumulator, and
 * manygrad's NumPy path's), in the order of NumPy's accumulate: the same bits. 0: out of
 * memory. */
#define MG_SCAN(SFX, T, ACC)                                                                \
  static int mg_scan_##SFX(const T* x, T* y, int64_t outer, int64_t n, int64_t inner,      \
                           int reverse, int prod) {                                        \
    const int64_t step = reverse ? -1 : 1;                                                 \
    if (inner == 1) {                                                                      \
      int64_t o = 0;                                                                       \
      /* NOTE: 8 rows side by side: their running values do not wait for each other */   \
      for (; n && o + 8 <= outer; o += 8) {                                                \
        /* NOTE: where a row is about a multiple of 4 KB long, row q runs 16 q steps      \
         * behind row 0 (px[q][step * t] is its value at step t), so that the rows' current \
         * values fall in different cache sets (in step, such rows took 10x as long) */   \
        const int64_t bytes = (n * (int64_t)sizeof(T)) % 4096;                             \
        const int64_t S = n >= 512 && (bytes < 256 || bytes > 4096 - 256) ? 16 : 0;        \
        const T* px[8];                                                                    \
        T* py[8];                                                                          \
        ACC a[8];                                                                          \
        for (int q = 0; q < 8; ++q) {                                                      \
          int64_t at = o * n + q * n + (reverse ? n - 1 + S * q : -S * q);                 \
          px[q] = x + at, py[q] = y + at;                                                  \
          a[q] = (ACC)px[q][step * S * q];                                                 \
          py[q][step * S * q] = (T)a[q];                                                   \
        }                                                                                  \
        for (int64_t t = 1; t < n + 7 * S; ++t) {                                          \
          const int64_t s = step * t;                                                      \
          if (t > 7 * S && t < n) { /* every row inside */                                 \
            if (prod)                                                                      \
              for (int q = 0; q < 8; ++q) a[q] *= (ACC)px[q][s], py[q][s] = (T)a[q];       \
            else                                                                           \
              for (int q = 0; q < 8; ++q) a[q] += (ACC)px[q][s], py[q][s] = (T)a[q];       \
            continue;                                                                      \
          }                                                                                \
          for (int q = 0; q < 8; ++q) {                                                    \
            const int64_t c = t - S * q;                                                   \
            if (c < 1 || c >= n) continue;                                                 \
            a[q] = prod ? a[q] * (ACC)px[q][s] : a[q] + (ACC)px[q][s];                     \
            py[q][s] = (T)a[q];                                                            \
          }                                                                                \
        }                                                                                  \
      }                                                                                    \
      for (; o < outer; ++o) {                                                             \
        const T* xr = x + o * n;                                                           \
        T* yr = y + o * n;                                                                 \
        int64_t j = reverse ? n - 1 : 0;                                                   \
        if (!n) continue;                                                                  \
        ACC acc = (ACC)xr[j];                                                              \
        yr[j] = (T)acc;                                                                    \
        if (prod)                                                                          \
          for (int64_t c = 1; c < n; ++c) j += step, acc *= (ACC)xr[j], yr[j] = (T)acc;    \
        else                                                                               \
          for (int64_t c = 1; c < n; ++c) j += step, acc += (ACC)xr[j], yr[j] = (T)acc;    \
      }                                                                                    \
      return 1;                                                                            \
    }                                                                                      \
    ACC* acc = (ACC*)malloc((size_t)inner * sizeof(ACC));                                  \
    if (!acc) return 0;                                                                    \
    for (int64_t o = 0; o < outer; ++o) {                                                  \
      const T* xo = x + o * n * inner;                                                     \
      T* yo = y + o * n * inner;                                                           \
      int64_t j = reverse ? n - 1 : 0;                                                     \
      if (!n) continue;                                                                    \
      for (int64_t i = 0; i < inner; ++i) acc[i] = (ACC)xo[j * inner + i];                 \
      for (int64_t i = 0; i < inner; ++i) yo[j * inner + i] = (T)acc[i];                   \
      for (int64_t c = 1; c < n; ++c) {                                                    \
        j += step;                                                                         \
        const T* xr = xo + j * inner;                                                      \
        T* yr = yo + j * inner;                                                            \
        if (prod) {                                                                        \
          _Pragma("omp simd") for (int64_t i = 0; i < inner; ++i) {                        \
            acc[i] *= (ACC)xr[i];                                                          \
            yr[i] = (T)acc[i];                                                             \
          }                                                                                \
        } else {                                                                           \
          _Pragma("omp simd") for (int64_t i = 0; i < inner; ++i) {                        \
            acc[i] += (ACC)xr[i];                                                          \
            yr[i] = (T)acc[i];                                                             \
          }                                                                                \
        }                                                                                  \
      }                                                                                    \
    }                                                                                      \
    free(acc);                                                                             \
    return 1;                                                                              \
  }
MG_SCAN(f32, float, double)
MG_SCAN(f64, double, double)
MG_SCAN(i64, int64_t, int64_t)

MG_EXPORT int mg_scan(const void* x, void* y, int dt, int64_t outer, int64_t n, int64_t inner,
                      int reverse, int prod) {
  switch (dt) {
    case 0: return mg_scan_f32((const float*)x, (float*)y, outer, n, inner, reverse, prod);
    case 1: return mg_scan_f64((const double*)x, (double*)y, outer, n, inner, reverse, prod);
    case 2: return mg_scan_i64((const int64_t*)x, (int64_t*)y, outer, n, inner, reverse, prod);
    default: return 0;
  }
}

/* The statement (the macro's last argument) for steps c = 0 .. n - 1 of 8 rows q = 0 .. 7,
 * row q running S q steps behind row 0 (S = 0: side by side); it sees q and c. */
#define MG_ROWS8(n, S, ...)                                                                 \
  for (int64_t t_ = 0; t_ < (n) + 7 * (S); ++t_) {                                         \
    if (t_ >= 7 * (S) && t_ < (n)) {                                                       \
      for (int q = 0; q < 8; ++q) {                                                        \
        const int64_t c = t_ - (S) * q;                                                    \
        __VA_ARGS__                                                                        \
      }                                                                                    \
    } else {                                                                               \
      for (int q = 0; q < 8; ++q) {                                                        \
        const int64_t c = t_ - (S) * q;                                                    \
        if (c >= 0 && c < (n)) __VA_ARGS__                                                 \
      }                                                                                    \
    }                                                                                      \
  }

/* For x (outer, n, inner): out = (the product of the values before, along n) times (the
 * product of those after), each carried in T from the nearest value outwards (NumPy's
 * exclusive cumprods of reduce.py's _prod_others, in their order: the same bits): prod's
 * gradient, exact with zeros. 0: out of memory. */
#define MG_PROD_OTHERS(SFX, T)                                                              \
  static int mg_prod_others_##SFX(const T* x, int64_t outer, int64_t n, int64_t inner,     \
                                  T* out) {                                                \
    int64_t o = 0;                                                                         \
    for (; inner == 1 && o + 8 <= outer; o += 8) { /* NOTE: 8 rows side by side */        \
      const T* xo = x + o * n;                                                             \
      T* yo = out + o * n;                                                                 \
      const int64_t bytes = (n * (int64_t)sizeof(T)) % 4096; /* NOTE: as mg_scan's skew */ \
      const int64_t S = n >= 512 && (bytes < 256 || bytes > 4096 - 256) ? 16 : 0;          \
      T a[8] = {1, 1, 1, 1, 1, 1, 1, 1};                                                   \
      MG_ROWS8(n, S, {                                                                     \
        const int64_t j = q * n + c;                                                       \
        yo[j] = a[q], a[q] = a[q] * xo[j];                                                 \
      })                                                                                   \
      for (int q = 0; q < 8; ++q) a[q] = 1;                                                \
      MG_ROWS8(n, S, {                                                                     \
        const int64_t j = q * n + n - 1 - c;                                               \
        yo[j] = yo[j] * a[q], a[q] = a[q] * xo[j];                                         \
      })                                                                                   \
    }                                                                                      \
    T* acc = (T*)malloc((size_t)(inner > 0 ? inner : 1) * sizeof(T));                      \
    if (!acc) return 0;                                                                    \
    for (; o < outer; ++o) {                                                               \
      const T* xo = x + o * n * inner;                                                     \
      T* yo = out + o * n * inner;                                                         \
      for (int64_t i = 0; i < inner; ++i) acc[i] = 1;                                      \
      for (int64_t j = 0; j < n; ++j) {                                                    \
        _Pragma("omp simd") for (int64_t i = 0; i < inner; ++i) {                          \
          yo[j * inner + i] = acc[i];                                                      \
          acc[i] = acc[i] * xo[j * inner + i];                                             \
        }                                                                                  \
      }                                                                                    \
      for (int64_t i = 0; i < inner; ++i) acc[i] = 1;                                      \
      for (int64_t j = n - 1; j >= 0; --j) {                                               \
        _Pragma("omp simd") for (int64_t i = 0; i < inner; ++i) {                          \
          yo[j * inner + i] = yo[j * inner + i] * acc[i];                                  \
          acc[i] = acc[i] * xo[j * inner + i];                                             \
        }                                                                                  \
      }                                                                                    \
    }                                                                                      \
    free(acc);                                                                             \
    return 1;                                                                              \
  }
MG_PROD_OTHERS(f32, float)
MG_PROD_OTHERS(f64, double)
MG_PROD_OTHERS(i64, int64_t)

MG_EXPORT int mg_prod_others(const void* x, int dt, int64_t outer, int64_t n, int64_t inner,
                             void* out) {
  if (dt == 0) return mg_prod_others_f32((const float*)x, outer, n, inner, (float*)out);
  if (dt == 1) return mg_prod_others_f64((const double*)x, outer, n, inner, (double*)out);
  if (dt == 2) return mg_prod_others_i64((const int64_t*)x, outer, n, inner, (int64_t*)out);
  return 0;
}

/* The product of each row of x (rows, n) in T, left to right (NumPy's multiply.reduce
 * order: the same bits), eight rows at a time so that the products of one row do not wait
 * for each other. */
#define MG_PROD_ROWS(SFX, T)                                                                \
  static void mg_prod_rows_##SFX(const T* x, int64_t rows, int64_t n, T* out) {            \
    int64_t r = 0;                                                                         \
    for (; r + 8 <= rows; r += 8) {                                                        \
      T acc[8] = {1, 1, 1, 1, 1, 1, 1, 1};                                                 \
      const T* xr = x + r * n;                                                             \
      for (int64_t j = 0; j < n; ++j)                                                      \
        for (int q = 0; q < 8; ++q) acc[q] *= xr[q * n + j];                               \
      for (int q = 0; q < 8; ++q) out[r + q] = acc[q];                                     \
    }                                                                                      \
    for (; r < rows; ++r) {                                                                \
      T acc = 1;                                                                           \
      const T* xr = x + r * n;                                                             \
      for (int64_t j = 0; j < n; ++j) acc *= xr[j];                                        \
      out[r] = acc;                                                                        \
    }                                                                                      \
  }
MG_PROD_ROWS(f32, float)
MG_PROD_ROWS(f64, double)
MG_PROD_ROWS(i64, int64_t)

MG_EXPORT void mg_prod_rows(const void* x, int dt, int64_t rows, int64_t n, void* out) {
  if (dt == 0) mg_prod_rows_f32((const float*)x, rows, n, (float*)out);
  if (dt == 1) mg_prod_rows_f64((const double*)x, rows, n, (double*)out);
  if (dt == 2) mg_prod_rows_i64((const int64_t*)x, rows, n, (int64_t*)out);
}

/* out[target(p)] op= src[p] for every position p of index (C order over shape), where
 * target(p) is p with its coordinate along dim replaced by index[p] (in range: checked by
 * the caller); ostr, sstr: out's and src's strides in elements (any sign, 0 broadcasts).
 * op 0: add, 1: multiply, 2: maximum, 3: minimum (NumPy's: NaN wins, a tie keeps out's),
 * 4: assign. The values are combined in index order, as NumPy's ufunc.at and PyTorch's
 * CPU kernel. */
#define MG_SCATTER_ROW(T, EXPR)                                                              \
  if (along) {                                                                             \
    for (int64_t j = 0; j < last; ++j) {                                                   \
      T* t = ot + idx[j] * od;                                                             \
      T v = s[j * sl], o = *t;                                                             \
      *t = EXPR;                                                                           \
    }                                                                                      \
  } else {                                                                                 \
    for (int64_t j = 0; j < last; ++j) {                                                   \
      T* t = ot + idx[j] * od + j * ol;                                                    \
      T v = s[j * sl], o = *t;                                                             \
      *t = EXPR;                                                                           \
    }                                                                                      \
  }
#define MG_SCATTER(SFX, T, ISNAN)                                                           \
  static void mg_scatter_##SFX(T* out, const int64_t* idx, const T* src, int64_t nd,       \
                               const int64_t* shape, const int64_t* ostr,                  \
                               const int64_t* sstr, int64_t dim, int op) {                 \
    int64_t pos[16] = {0};                                                                 \
    for (int64_t d = 0; d < nd; ++d)                                                       \
      if (shape[d] <= 0) return;                                                           \
    const int64_t last = shape[nd - 1], ol = ostr[nd - 1], sl = sstr[nd - 1];              \
    const int64_t od = ostr[dim], along = dim == nd - 1;                                   \
    for (;;) {                                                                             \
      int64_t ob = 0, sb = 0;                                                              \
      for (int64_t d = 0; d < nd - 1; ++d) {                                               \
        ob += d == dim ? 0 : pos[d] * ostr[d];                                             \
        sb += pos[d] * sstr[d];                                                            \
      }                                                                                    \
      const T* s = src + sb;                                                               \
      T* ot = out + ob;                                                                    \
      switch (op) {                                                                        \
        case 0: MG_SCATTER_ROW(T, o + v) break;                                               \
        case 1: MG_SCATTER_ROW(T, o * v) break;                                               \
        case 2: MG_SCATTER_ROW(T, (o >= v || ISNAN(o)) ? o : v) break;                        \
        case 3: MG_SCATTER_ROW(T, (o <= v || ISNAN(o)) ? o : v) break;                        \
        default: MG_SCATTER_ROW(T, ((void)o, v)) break;                                       \
      }                                                                                    \
      idx += last;                                                                         \
      int64_t d = nd - 2;                                                                  \
      for (; d >= 0; --d) {                                                                \
        if (++pos[d] < shape[d]) break;                                                    \
        pos[d] = 0;                                                                        \
      }                                                                                    \
      if (d < 0) return;                                                                   \
    }                                                                                      \
  }
MG_SCATTER(f32, float, MG_ISNAN_F)
MG_SCATTER(f64, double, MG_ISNAN_F)
MG_SCATTER(i64, int64_t, MG_ISNAN_I)

MG_EXPORT int mg_scatter(void* out, const int64_t* idx, const void* src, int dt, int64_t nd,
                         const int64_t* shape, const int64_t* ostr, const int64_t* sstr,
                         int64_t dim, int op) {
  if (nd < 1 || nd > 16) return 0;
  if (dt == 0)
    mg_scatter_f32((float*)out, idx, (const float*)src, nd, shape, ostr, sstr, dim, op);
  else if (dt == 1)
    mg_scatter_f64((double*)out, idx, (const double*)src, nd, shape, ostr, sstr, dim, op);
  else if (dt == 2)
    mg_scatter_i64((int64_t*)out, idx, (const int64_t*)src, nd, shape, ostr, sstr, dim, op);
  else
    return 0;
  return 1;
}

/* embedding_bag over a table w (V, D): bag b holds ids[starts[b]:starts[b + 1]], less those
 * equal to pad (-1: none); count[b] gets their number. mode 0: sums (each row times psw[i]
 * where given, rounded before it is added), from 0 in id order (the order of manygrad's
 * index_add, bit for bit); 1: means (the sums divided by max(count, 1)); 2: maxima per
 * column, PyTorch's rule: the first id's row, then a value that is > the running one
 * (NaN only as a bag's first), arg (B, D) getting the id (-1 for an empty bag, whose row
 * is 0). Returns 0 for an id outside [0, V) (nothing is left half-written that the caller
 * keeps). */
#define MG_BAG(SFX, T)                                                                      \
  static MG_NO_FMA_ATTR int mg_bag_##SFX(const T* w, int64_t V, int64_t D,                 \
                                         const int64_t* ids, const int64_t* starts,        \
                                         int64_t B, const T* psw, int64_t pad, int mode,   \
                                         T* out, int64_t* arg, int64_t* count) {           \
    MG_NO_FMA                                                                              \
    for (int64_t i = starts[0]; i < starts[B]; ++i)                                        \
      if (ids[i] < 0 || ids[i] >= V) return 0;                                             \
    for (int64_t b = 0; b < B; ++b) {                                                      \
      T* o = out + b * D;                                                                  \
      int64_t* a = arg ? arg + b * D : NULL;                                               \
      int64_t c = 0;                                                                       \
      for (int64_t k = 0; k < D; ++k) o[k] = 0;                                            \
      if (a)                                                                               \
        for (int64_t k = 0; k < D; ++k) a[k] = -1;                                         \
      int64_t k0 = 0;                                                                      \
      /* NOTE: 32 columns at a time in registers (out's row is not read and written back  \
       * per id): the same additions in the same order */                                 \
      for (; mode != 2 && k0 + 32 <= D; k0 += 32) {                                        \
        T acc[32];                                                                         \
        for (int k = 0; k < 32; ++k) acc[k] = 0;                                           \
        for (int64_t i = starts[b]; i < starts[b + 1]; ++i) {                              \
          if (ids[i] == pad) continue;                                                     \
          const T* r = w + ids[i] * D + k0;                                                \
          if (psw) {                                                                       \
            const T p = psw[i];                                                            \
            for (int k = 0; k < 32; ++k) acc[k] += r[k] * p;                               \
          } else {                                                                         \
            for (int k = 0; k < 32; ++k) acc[k] += r[k];                                   \
          }                                                                                \
        }                                                                                  \
        for (int k = 0; k < 32; ++k) o[k0 + k] = acc[k];                                   \
      }                                                                                    \
      for (int64_t i = starts[b]; i < starts[b + 1]; ++i) {                                \
        const int64_t id = ids[i];                                                         \
        if (id == pad) continue;                                                           \
        const T* r = w + id * D;                                                           \
        if (k0 == D) {                                                                     \
        } else if (mode == 2) {                                                            \
          if (!c) {                                                                        \
            for (int64_t k = 0; k < D; ++k) o[k] = r[k], a[k] = id;                        \
          } else {                                                                         \
            _Pragma("omp simd") for (int64_t k = 0; k < D; ++k) {                          \
              int up = r[k] > o[k];                                                        \
              o[k] = up ? r[k] : o[k];                                                     \
              a[k] = up ? id : a[k];                                                       \
            }                                                                              \
          }                                                                                \
        } else if (psw) {                                                                  \
          const T p = psw[i];                                                              \
          _Pragma("omp simd") for (int64_t k = k0; k < D; ++k) o[k] += r[k] * p;           \
        } else {                                                                           \
          _Pragma("omp simd") for (int64_t k = k0; k < D; ++k) o[k] += r[k];               \
        }                                                                                  \
        ++c;                                                                               \
      }                                                                                    \
      count[b] = c;                                                                        \
      if (mode == 1 && c > 1) {                                                            \
        const T n = (T)c;                                                                  \
        for (int64_t k = 0; k < D; ++k) o[k] = o[k] / n;                                   \
      }                                                                                    \
    }                                                                                      \
    return 1;                                                                              \
  }

/* The table's gradient gw (V, D, zeroed by the caller) of mg_bag from g (B, D): in id order,
 * gw[id] += g[b] (mode 0; times psw[i], rounded, where given), g[b] / max(count[b], 1)
 * (mode 1, rounded), or, mode 2, gw[arg[b, k], k] += g[b, k]. */
#define MG_BAG_BWD(SFX, T)                                                                  \
  static MG_NO_FMA_ATTR void mg_bag_bwd_##SFX(const T* g, int64_t D, const int64_t* ids,   \
                                              const int64_t* starts, int64_t B,            \
                                              const T* psw, int64_t pad, int mode,         \
                                              const int64_t* arg, const int64_t* count,    \
                                              T* gw, T* tmp) {                             \
    MG_NO_FMA                                                                              \
    for (int64_t b = 0; b < B; ++b) {                                                      \
      const T* gb = g + b * D;                                                             \
      if (mode == 2) {                                                                     \
        const int64_t* a = arg + b * D;                                                    \
        for (int64_t k = 0; k < D; ++k)                                                    \
          if (a[k] >= 0) gw[a[k] * D + k] += gb[k];                                        \
        continue;                                                                          \
      }                                                                                    \
      if (mode == 1) {                                                                     \
        const T n = (T)(count[b] > 1 ? count[b] : 1);                                      \
        for (int64_t k = 0; k < D; ++k) tmp[k] = gb[k] / n;                                \
        gb = tmp;                                                                          \
      }                                                                                    \
      for (int64_t i = starts[b]; i < starts[b + 1]; ++i) {                                \
        const int64_t id = ids[i];                                                         \
        if (id == pad) continue;                                                           \
        T* r = gw + id * D;                                                                \
        if (psw) {                                                                         \
          const T p = psw[i];                                                              \
          _Pragma("omp simd") for (int64_t k = 0; k < D; ++k) r[k] += gb[k] * p;           \
        } else {                                                                           \
          _Pragma("omp simd") for (int64_t k = 0; k < D; ++k) r[k] += gb[k];               \
        }                                                                                  \
      }                                                                                    \
    }                                                                                      \
  }
MG_BAG(f32, float)
MG_BAG(f64, double)
MG_BAG_BWD(f32, float)
MG_BAG_BWD(f64, double)

MG_EXPORT int mg_bag(const void* w, int dt, int64_t V, int64_t D, const int64_t* ids,
                     const int64_t* starts, int64_t B, const void* psw, int64_t pad, int mode,
                     void* out, int64_t* arg, int64_t* count) {
  if (dt == 0)
    return mg_bag_f32((const float*)w, V, D, ids, starts, B, (const float*)psw, pad, mode,
                      (float*)out, arg, count);
  if (dt == 1)
    return mg_bag_f64((const double*)w, V, D, ids, starts, B, (const double*)psw, pad, mode,
                      (double*)out, arg, count);
  return 0;
}

MG_EXPORT int mg_bag_bwd(const void* g, int dt, int64_t D, const int64_t* ids,
                         const int64_t* starts, int64_t B, const void* psw, int64_t pad,
                         int mode, const int64_t* arg, const int64_t* count, void* gw) {
  void* tmp = malloc((size_t)(D > 0 ? D : 1) * 8);
  if (!tmp) return 0;
  if (dt == 0)
    mg_bag_bwd_f32((const float*)g, D, ids, starts, B, (const float*)psw, pad, mode, arg,
                   count, (float*)gw, (float*)tmp);
  else if (dt == 1)
    mg_bag_bwd_f64((const double*)g, D, ids, starts, B, (const double*)psw, pad, mode, arg,
                   count, (double*)gw, (double*)tmp);
  free(tmp);
  return dt == 0 || dt == 1;
}

/* out[o, j, i] = x[o, idx[o, j, i], i] for x (outer, n, inner) and idx (outer, m, inner),
 * values of size bytes each (a gather along one dim of C-contiguous arrays); the indices
 * are in [0, n) (checked by the caller). */
#define MG_TAKE(SFX, T)                                                                     \
  static void mg_take_##SFX(const T* x, int64_t outer, int64_t n, int64_t inner,           \
                            const int64_t* idx, int64_t m, T* out) {                       \
    for (int64_t o = 0; o < outer; ++o) {                                                  \
      const T* xo = x + o * n * inner;                                                     \
      if (inner == 1) {                                                                    \
        for (int64_t j = 0; j < m; ++j) out[j] = xo[idx[j]];                               \
      } else {                                                                             \
        for (int64_t j = 0; j < m; ++j) {                                                  \
          const int64_t* ij = idx + j * inner;                                             \
          for (int64_t i = 0; i < inner; ++i) out[j * inner + i] = xo[ij[i] * inner + i];  \
        }                                                                                  \
      }                                                                                    \
      idx += m * inner;                                                                    \
      out += m * inner;                                                                    \
    }                                                                                      \
  }
typedef struct {
  uint64_t a, b;
} mg_u128;
MG_TAKE(1, uint8_t)
MG_TAKE(2, uint16_t)
MG_TAKE(4, uint32_t)
MG_TAKE(8, uint64_t)
MG_TAKE(16, mg_u128)

MG_EXPORT int mg_take(const void* x, int64_t size, int64_t outer, int64_t n, int64_t inner,
                      const int64_t* idx, int64_t m, void* out) {
  switch (size) {
    case 1: mg_take_1((const uint8_t*)x, outer, n, inner, idx, m, (uint8_t*)out); return 1;
    case 2: mg_take_2((const uint16_t*)x, outer, n, inner, idx, m, (uint16_t*)out); return 1;
    case 4: mg_take_4((const uint32_t*)x, outer, n, inner, idx, m, (uint32_t*)out); return 1;
    case 8: mg_take_8((const uint64_t*)x, outer, n, inner, idx, m, (uint64_t*)out); return 1;
    case 16: mg_take_16((const mg_u128*)x, outer, n, inner, idx, m, (mg_u128*)out); return 1;
    default: return 0;
  }
}

/* NumPy's pairwise sum (its add.reduce along a contiguous row) of the n squares
 * (a[i] - b[i])^2, each rounded: 8 running sums over blocks of up to 128 values, halves
 * above that; the same additions in the same order as NumPy's sum of the squares' array,
 * so the same bits, without that array. */
#define MG_PWSQ(SFX, T)                                                                     \
  static MG_NO_FMA_ATTR T mg_pwsq_##SFX(const T* a, const T* b, int64_t n) {               \
    MG_NO_FMA                                                                              \
    if (n < 8) {                                                                           \
      T res = 0;                                                                           \
      for (int64_t i = 0; i < n; ++i) {                                                    \
        T t = a[i] - b[i];                                                                 \
        res += t * t;                                                                      \
      }                                                                                    \
      return res;                                                                          \
    }                                                                                      \
    if (n <= 128) {                                                                        \
      T r[8];                                                                              \
      for (int k = 0; k < 8; ++k) r[k] = (a[k] - b[k]) * (a[k] - b[k]);                   \
      int64_t i = 8;                                                                       \
      for (; i < n - (n % 8); i += 8)                                                      \
        for (int k = 0; k < 8; ++k) {                                                      \
          T t = a[i + k] - b[i + k];                                                       \
          r[k] += t * t;                                                                   \
        }                                                                                  \
      T res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));          \
      for (; i < n; ++i) {                                                                 \
        T t = a[i] - b[i];                                                                 \
        res += t * t;                                                                      \
      }                                                                                    \
      return res;                                                                          \
    }                                                                                      \
    int64_t n2 = n / 2;                                                                    \
    n2 -= n2 % 8;                                                                          \
    return mg_pwsq_##SFX(a, b, n2) + mg_pwsq_##SFX(a + n2, b + n2, n - n2);                \
  }

/* pdist with p = 2 of the rows of x (N, M): for each pair i < j, row by row, the 2-norm of
 * x[i] - x[j] as manygrad's tensor formula rounds it (the differences, their squares, a
 * NumPy pairwise sum, sqrt), without the (pairs, M) arrays. With g (the gradient of the
 * distances d), gx (N, M, zeroed) gets the gradient: (x[i] - x[j]) (g / d) (0 where d is
 * 0) added to row i, its negative to a second array for row j, in pair order, and the two
 * summed (the additions of the indexing gradients they replace). 0: out of memory. */
#define MG_PDIST(SFX, T, SQRT)                                                              \
  MG_PWSQ(SFX, T)                                                                          \
  static MG_NO_FMA_ATTR int mg_pdist2_##SFX(const T* x, int64_t N, int64_t M, T* d,        \
                                            const T* g, T* gx) {                           \
    MG_NO_FMA                                                                              \
    T* b = g ? (T*)calloc((size_t)(N * M > 0 ? N * M : 1), sizeof(T)) : NULL;              \
    if (g && !b) return 0;                                                                 \
    int64_t q = 0;                                                                         \
    for (int64_t i = 0; i < N; ++i) {                                                      \
      const T* xi = x + i * M;                                                             \
      for (int64_t j = i + 1; j < N; ++j, ++q) {                                           \
        const T* xj = x + j * M;                                                           \
        if (!g) {                                                                          \
          d[q] = SQRT(mg_pwsq_##SFX(xi, xj, M));                                           \
          continue;                                                                        \
        }                                                                                  \
        const T s = d[q] == 0 ? (T)0 : g[q] / d[q];                                        \
        T* ai = gx + i * M;                                                                \
        T* bj = b + j * M;                                                                 \
        _Pragma("omp simd") for (int64_t k = 0; k < M; ++k) {                              \
          T t = (xi[k] - xj[k]) * s;                                                       \
          ai[k] += t;                                                                      \
          bj[k] += -t;                                                                     \
        }                                                                                  \
      }                                                                                    \
    }                                                                                      \
    if (g)                                                                                 \
      for (int64_t k = 0; k < N * M; ++k) gx[k] = gx[k] + b[k];                            \
    free(b);                                                                               \
    return 1;                                                                              \
  }
MG_PDIST(f32, float, sqrtf)
MG_PDIST(f64, double, sqrt)

MG_EXPORT int mg_pdist2(const void* x, int dt, int64_t N, int64_t M, void* d, const void* g,
                        void* gx) {
  if (dt == 0) return mg_pdist2_f32((const float*)x, N, M, (float*)d, (const float*)g, (float*)gx);
  if (dt == 1)
    return mg_pdist2_f64((const double*)x, N, M, (double*)d, (const double*)g, (double*)gx);
  return 0;
}

/* log(exp(x) + exp(c)) as PyTorch's CPU logcumsumexp step (x the new value, c the
 * running one): min and max as std::min / std::max (a NaN c wins), the same infinity on
 * both sides gives x. */
static inline double mg_log_add(double x, double c) {
  double mn = c, mx = c;
  if (c == c) mn = c < x ? c : x, mx = x < c ? c : x;
  if (mn != mx || isfinite(mn)) return log1p(exp(mn - mx)) + mx;
  return x;
}

/* Running log(sum(exp)) of x (outer, n, inner) along n into y, from the last element back
 * with reverse (a flipped scan flipped back: the gradient's), one value after the other
 * as PyTorch's CPU scan, carried in double (its accumulator for float32) with libm's exp
 * and log1p: PyTorch's bits. 0: out of memory. */
#define MG_LCSE(SFX, T)                                                                     \
  static MG_NO_FMA_ATTR int mg_lcse_##SFX(const T* x, T* y, int64_t outer, int64_t n,      \
                                          int64_t inner, int reverse) {                    \
    MG_NO_FMA                                                                              \
    double* c = (double*)malloc((size_t)(inner > 0 ? inner : 1) * sizeof(double));         \
    if (!c) return 0;                                                                      \
    for (int64_t o = 0; o < outer; ++o) {                                                  \
      const T* xo = x + o * n * inner;                                                     \
      T* yo = y + o * n * inner;                                                           \
      for (int64_t i = 0; i < inner; ++i) c[i] = -INFINITY;                                \
      for (int64_t t = 0; t < n; ++t) {                                                    \
        int64_t j = reverse ? n - 1 - t : t;                                               \
        for (int64_t i = 0; i < inner; ++i) {                                              \
          c[i] = mg_log_add((double)xo[j * inner + i], c[i]);                              \
          yo[j * inner + i] = (T)c[i];                                                     \
        }                                                                                  \
      }                                                                                    \
    }                                                                                      \
    free(c);                                                                               \
    return 1;                                                                              \
  }
MG_LCSE(f32, float)
MG_LCSE(f64, double)

MG_EXPORT int mg_logcumsumexp(const void* x, void* y, int dt, int64_t outer, int64_t n,
                              int64_t inner, int reverse) {
  if (dt == 0) return mg_lcse_f32((const float*)x, (float*)y, outer, n, inner, reverse);
  if (dt == 1) return mg_lcse_f64((const double*)x, (double*)y, outer, n, inner, reverse);
  return 0;
}

/* out[o, idx[k], i] += src[o, k, i] for out (outer, n, inner) and src (outer, m, inner),
 * C-contiguous, in the order of k (np.add.at's: the same bits); integers wrap as NumPy's
 * (unsigned arithmetic). The indices are in [0, n) (checked by the caller). */
#define MG_INDEX_ADD(SFX, T)                                                                \
  static void mg_index_add_##SFX(T* out, int64_t outer, int64_t n, int64_t inner,          \
                                 const int64_t* idx, int64_t m, const T* src) {            \
    for (int64_t o = 0; o < outer; ++o) {                                                  \
      T* oo = out + o * n * inner;                                                         \
      const T* so = src + o * m * inner;                                                   \
      if (inner == 1) {                                                                    \
        for (int64_t k = 0; k < m; ++k) oo[idx[k]] += so[k];                               \
        continue;                                                                          \
      }                                                                                    \
      for (int64_t k = 0; k < m; ++k) {                                                    \
        T* r = oo + idx[k] * inner;                                                        \
        const T* s = so + k * inner;                                                       \
        _Pragma("omp simd") for (int64_t i = 0; i < inner; ++i) r[i] += s[i];              \
      }                                                                                    \
    }                                                                                      \
  }
MG_INDEX_ADD(f32, float)
MG_INDEX_ADD(f64, double)
MG_INDEX_ADD(u64, uint64_t)
MG_INDEX_ADD(u32, uint32_t)

MG_EXPORT int mg_index_add(void* out, int dt, int64_t outer, int64_t n, int64_t inner,
                           const int64_t* idx, int64_t m, const void* src) {
  switch (dt) {
    case 0: mg_index_add_f32((float*)out, outer, n, inner, idx, m, (const float*)src); break;
    case 1: mg_index_add_f64((double*)out, outer, n, inner, idx, m, (const double*)src); break;
    case 2:
      mg_index_add_u64((uint64_t*)out, outer, n, inner, idx, m, (const uint64_t*)src);
      break;
    case 3:
      mg_index_add_u32((uint32_t*)out, outer, n, inner, idx, m, (const uint32_t*)src);
      break;
    default: return 0;
  }
  return 1;
}

/* NumPy's pairwise sum of a[0..n) (its add.reduce along a contiguous row): as mg_pwsq,
 * over values already mapped. */
#define MG_PWSUM(SFX, T)                                                                    \
  static MG_NO_FMA_ATTR T mg_pwsum_##SFX(const T* a, int64_t n) {                          \
    MG_NO_FMA                                                                              \
    if (n < 8) {                                                                           \
      T res = -0.0;                                                                        \
      for (int64_t i = 0; i < n; ++i) res += a[i];                                         \
      return res;                                                                          \
    }                                                                                      \
    if (n <= 128) {                                                                        \
      T r[8];                                                                              \
      for (int k = 0; k < 8; ++k) r[k] = a[k];                                             \
      int64_t i = 8;                                                                       \
      for (; i < n - (n % 8); i += 8)                                                      \
        for (int k = 0; k < 8; ++k) r[k] += a[i + k];                                      \
      T res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));          \
      for (; i < n; ++i) res += a[i];                                                      \
      return res;                                                                          \
    }                                                                                      \
    int64_t n2 = n / 2;                                                                    \
    n2 -= n2 % 8;                                                                          \
    return mg_pwsum_##SFX(a, n2) + mg_pwsum_##SFX(a + n2, n - n2);                         \
  }

/* x^e as NumPy's array ** scalar: its fast paths for e = 2, 0.5, 1, -1, 0 (a square, a
 * square root, ...), else libm's pow. */
#define MG_NPPOW(SFX, T, POW, SQRT)                                                         \
  static inline T mg_nppow_##SFX(T x, T e) {                                               \
    if (e == (T)2) return x * x;                                                           \
    if (e == (T)0.5) return SQRT(x);                                                       \
    if (e == (T)1) return x;                                                               \
    if (e == (T)-1) return (T)1 / x;                                                       \
    if (e == (T)0) return (T)1;                                                            \
    return POW(x, e);                                                                      \
  }
MG_NPPOW(f32, float, powf, sqrtf)
MG_NPPOW(f64, double, pow, sqrt)

/* pdist of the rows of x (N, M) for p other than 2 (mode 0: p = 0, 1: p = 1, 2: another
 * finite p > 0, 3: p = inf): for each pair i < j, row by row, the norm of x[i] - x[j] as
 * manygrad's tensor formula rounds it (the count of differences that are not 0; a NumPy
 * pairwise sum of |d| or of |d|^p, then ^(1/p), powers in T as NumPy's (mg_nppow); the maximum of
 * |d|, NaN winning). With g (the gradient of the distances d), gx (N, M, zeroed) gets the
 * gradient as mg_pdist2 adds it, with t for a difference d and its pair's g and dist:
 * sign(d) g (p = 1); sign(d) g where |d| is the maximum, else 0 (p = inf, PyTorch's: each of
 * equal maxima gets all of g); the p-norm's (pnorm.py's, in its order) otherwise; p = 0 has
 * no gradient. 0: out of memory. */
#define MG_PWABS(SFX, T, FABS)                                                              \
  static MG_NO_FMA_ATTR T mg_pwabs_##SFX(const T* a, const T* b, int64_t n) {               \
    MG_NO_FMA                                                                              \
    if (n < 8) {                                                                           \
      T res = 0;                                                                           \
      for (int64_t i = 0; i < n; ++i) {                                                    \
        T t = a[i] - b[i];                                                                 \
        res += FABS(t);                                                                      \
      }                                                                                    \
      return res;                                                                          \
    }                                                                                      \
    if (n <= 128) {                                                                        \
      T r[8];                                                                              \
      for (int k = 0; k < 8; ++k) r[k] = FABS(a[k] - b[k]);                   \
      int64_t i = 8;                                                                       \
      for (; i < n - (n % 8); i += 8)                                                      \
        for (int k = 0; k < 8; ++k) {                                                      \
          T t = a[i + k] - b[i + k];                                                       \
          r[k] += FABS(t);                                                                   \
        }                                                                                  \
      T res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));          \
      for (; i < n; ++i) {                                                                 \
        T t = a[i] - b[i];                                                                 \
        res += FABS(t);                                                                      \
      }                                                                                    \
      return res;                                                                          \
    }                                                                                      \
    int64_t n2 = n / 2;                                                                    \
    n2 -= n2 % 8;                                                                          \
    return mg_pwabs_##SFX(a, b, n2) + mg_pwabs_##SFX(a + n2, b + n2, n - n2);                \
  }
#define MG_PDISTP(SFX, T, POW, FABS)                                                        \
  MG_PWSUM(SFX, T)                                                                         \
  MG_PWABS(SFX, T, FABS)                                                                   \
  static MG_NO_FMA_ATTR T mg_pdistp_one_##SFX(const T* xi, const T* xj, int64_t M, T p,    \
                                              T ip, int mode, T* buf) {                    \
    MG_NO_FMA                                                                              \
    if (mode == 3) {                                                                       \
      T r = 0;                                                                             \
      int nn = 0;                                                                          \
      _Pragma("omp simd reduction(max : r) reduction(| : nn)") for (int64_t k = 0; k < M; ++k) { \
        T a = FABS(xi[k] - xj[k]);                                                         \
        r = a > r ? a : r;                                                                 \
        nn |= a != a;                                                                      \
      }                                                                                    \
      return nn ? (T)NAN : r;                                                              \
    }                                                                                      \
    if (mode == 0) {                                                                       \
      int64_t c = 0;                                                                       \
      _Pragma("omp simd reduction(+ : c)") for (int64_t k = 0; k < M; ++k) c +=            \
          (xi[k] - xj[k] != 0);                                                            \
      return (T)c;                                                                         \
    }                                                                                      \
    if (mode == 1) return mg_pwabs_##SFX(xi, xj, M);                                       \
    for (int64_t k = 0; k < M; ++k) buf[k] = POW(FABS(xi[k] - xj[k]), p);                  \
    return POW(mg_pwsum_##SFX(buf, M), ip);                                                \
  }                                                                                        \
  static MG_NO_FMA_ATTR int mg_pdistp_##SFX(const T* x, int64_t N, int64_t M, double pd,   \
                                            int mode, T* d, const T* g, T* gx) {           \
    MG_NO_FMA                                                                              \
    const T p = (T)pd, ip = (T)(1.0 / pd), pm1 = (T)(pd - 1.0), pm2 = (T)(pd - 2.0);       \
    const T omp = (T)(1.0 - pd);                                                           \
    T* buf = (T*)malloc((size_t)(M > 0 ? M : 1) * sizeof(T));                              \
    T* b = g ? (T*)calloc((size_t)(N * M > 0 ? N * M : 1), sizeof(T)) : NULL;              \
    if (!buf || (g && !b)) {                                                               \
      free(buf);                                                                           \
      free(b);                                                                             \
      return 0;                                                                            \
    }                                                                                      \
    int64_t q = 0;                                                                         \
    for (int64_t i = 0; i < N; ++i) {                                                      \
      const T* xi = x + i * M;                                                             \
      for (int64_t j = i + 1; j < N; ++j, ++q) {                                           \
        const T* xj = x + j * M;                                                           \
        if (!g) {                                                                          \
          d[q] = mg_pdistp_one_##SFX(xi, xj, M, p, ip, mode, buf);                         \
          continue;                                                                        \
        }                                                                                  \
        const T gq = g[q], n = d[q];                                                       \
        T* ai = gx + i * M;                                                                \
        T* bj = b + j * M;                                                                 \
        if (mode == 1 || mode == 3) { /* NOTE: sign(d) g, of the maxima only for inf */    \
          _Pragma("omp simd") for (int64_t k = 0; k < M; ++k) {                            \
            T df = xi[k] - xj[k];                                                          \
            T sg = df > 0 ? (T)1 : df < 0 ? (T)-1 : df == 0 ? (T)0 : df;                   \
            T t = mode == 1 ? gq * sg : sg * (T)(FABS(df) == n) * gq;                      \
            ai[k] += t;                                                                    \
            bj[k] += -t;                                                                   \
          }                                                                                \
          continue;                                                                        \
        }                                                                                  \
        T scale = 0, gn = 0;                                                               \
        if (pd >= 1) scale = n == 0 ? (T)0 : gq / POW(n, pm1);                             \
        else gn = POW(n, omp);                                                             \
        for (int64_t k = 0; k < M; ++k) {                                                  \
          T df = xi[k] - xj[k], ad = FABS(df);                                             \
          T sg = df > 0 ? (T)1 : df < 0 ? (T)-1 : df == 0 ? (T)0 : df;                     \
          T t;                                                                             \
          if (pd < 1) t = sg * POW(ad == 0 ? (T)1 : ad, pm1) * gq * gn;                    \
          else if (pd < 2) t = sg * POW(ad, pm1) * scale;                                  \
          else t = df * POW(ad, pm2) * scale;                                              \
          ai[k] += t;                                                                      \
          bj[k] += -t;                                                                     \
        }                                                                                  \
      }                                                                                    \
    }                                                                                      \
    if (g)                                                                                 \
      for (int64_t k = 0; k < N * M; ++k) gx[k] = gx[k] + b[k];                            \
    free(buf);                                                                             \
    free(b);                                                                               \
    return 1;                                                                              \
  }
MG_PDISTP(f32, float, mg_nppow_f32, fabsf)
MG_PDISTP(f64, double, mg_nppow_f64, fabs)

MG_EXPORT int mg_pdistp(const void* x, int dt, int64_t N, int64_t M, double p, int mode,
                        void* d, const void* g, void* gx) {
  if (dt == 0)
    return mg_pdistp_f32((const float*)x, N, M, p, mode, (float*)d, (const float*)g,
                         (float*)gx);
  if (dt == 1)
    return mg_pdistp_f64((const double*)x, N, M, p, mode, (double*)d, (const double*)g,
                         (double*)gx);
  return 0;
}

/* The ABI version the loader checks, so that a stale cached library is rebuilt. */
MG_EXPORT int mg_native_version(void) { return 17; }
