/* manygrad's CPU kernels: one-pass loops for the memory-bound ops that NumPy runs as many
 * passes (exact and tanh GELU, SiLU, sigmoid, ReLU, leaky ReLU, layer norm, softmax) or
 * as strided index arithmetic (max pooling), float32 in and out.
 *
 * Built on first use with the system C compiler (_native.py) for the machine it runs on
 * and loaded with ctypes; without a compiler manygrad keeps its NumPy formulas, which the
 * tests compare these with. The loops are written so that the compiler vectorises them
 * (`omp simd`, no calls into libm inside a loop): exp and the normal CDF are polynomial
 * fits evaluated in registers; comparisons select, so NaN and +-inf pass as PyTorch's. */
#include <math.h>
#include <stdint.h>

#define MG_EXPORT __attribute__((visibility("default")))

/* exp(x) to about 1 ulp: 2^k * e^r with r in [-ln2/2, ln2/2], a degree-6 polynomial for
 * e^r and 2^k built in the exponent bits (as two factors, so that results down to the
 * smallest subnormals are reached); inf above 88.72, 0 below -103.97, NaN stays NaN. */
static inline float mg_exp(float x) {
  float xc = x < -104.0f ? -104.0f : (x > 88.8f ? 88.8f : x);
  float k = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
  float r = xc - k * 0.693359375f;
  r = r - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
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

/* The ABI version the loader checks, so that a stale cached library is rebuilt. */
MG_EXPORT int mg_native_version(void) { return 3; }
