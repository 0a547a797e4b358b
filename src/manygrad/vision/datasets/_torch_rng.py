"""The numbers PyTorch's CPU generator draws after ``torch.manual_seed(seed)`` for
``torch.randn(n)`` and ``torch.randint(0, high, (1,))``, so that FakeData's images equal
torchvision's bit for bit without touching any global generator.

PyTorch's CPU generator is an MT19937 (seeded with the seed's low 32 bits), the generator
of NumPy's legacy ``RandomState``, whose full-range uint32 draws are its raw outputs.
"""

from __future__ import annotations

import math

import numpy as np

_F = np.float32


def _fma(a, b, c):
    # NOTE: float32 products are exact in float64 (48 bits), so this rounds once more than
    # a fused multiply-add only in rare ties: PyTorch's compiler fuses these steps
    return (np.asarray(a, np.float64) * b + np.asarray(c, np.float64)).astype(_F)


def _log(x):
    """float32 ``log`` as avx_mathfun's ``log256_ps`` (the Cephes polynomial)."""
    bits = np.maximum(x, _F(1.17549435e-38)).view(np.int32)
    e = ((bits >> 23) - 0x7F).astype(_F) + _F(1)
    m = ((bits & ~0x7F800000) | 0x3F000000).view(_F)  # the mantissa in [0.5, 1)
    small = m < _F(0.707106781186547524)
    x = m - _F(1)
    e = e - small.astype(_F)
    x = x + np.where(small, m, _F(0))
    z = x * x
    y = np.full_like(x, _F(7.0376836292e-2))
    for c in (-1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
              -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1):  # fmt: skip
        y = _fma(y, x, _F(c))
    y = _fma(y * x, z, e * _F(-2.12194440e-4))
    y = _fma(z, _F(-0.5), y)
    return _fma(e, _F(0.693359375), x + y)


def _sincos(x):
    """float32 ``(sin, cos)`` as avx_mathfun's ``sincos256_ps`` (for x >= 0)."""
    j = (x * _F(1.27323954473516)).astype(np.int32)
    j = (j + 1) & ~1
    y = j.astype(_F)
    sin_neg, use_sin_poly = (j & 4) != 0, (j & 2) == 0
    cos_neg = (~(j - 2) & 4) != 0
    for c in (-0.78515625, -2.4187564849853515625e-4, -3.77489497744594108e-8):
        x = _fma(y, _F(c), x)  # extended-precision reduction by pi / 4
    z = x * x
    yc = _fma(_F(2.443315711809948e-005), z, _F(-1.388731625493765e-003))
    yc = _fma(yc, z, _F(4.166664568298827e-002)) * z
    yc = _fma(yc, z, -(z * _F(0.5))) + _F(1)
    ys = _fma(_F(-1.9515295891e-4), z, _F(8.3321608736e-3))
    ys = _fma(ys, z, _F(-1.6666654611e-1)) * z
    ys = _fma(ys, x, x)
    s, c = np.where(use_sin_poly, ys, yc), np.where(use_sin_poly, yc, ys)
    return np.where(sin_neg, -s, s), np.where(cos_neg, -c, c)


def _box_muller16(u):
    """PyTorch's ``normal_fill_16`` (AVX2 + FMA): rows of 16 uniforms -> 16 normals."""
    radius = np.sqrt(_F(-2) * _log(_F(1) - u[:, :8]))
    s, c = _sincos(_F(2 * math.pi) * u[:, 8:])
    return np.concatenate([radius * c, radius * s], axis=1)


def _uniforms(rs: np.random.RandomState, k: int) -> np.ndarray:
    """``k`` of PyTorch's float32 uniforms in [0, 1): 24 random bits each."""
    u = (rs.randint(0, 2**32, k, dtype=np.uint32) & 0xFFFFFF).astype(_F)
    u *= _F(2**-24)
    return u


def _label(rs: np.random.RandomState, high: int) -> int:
    if not 0 < high < 2**32:
        raise ValueError(f"FakeData: num_classes must be from 1 to 2**32 - 1, got {high}")
    return int(rs.randint(0, 2**32, dtype=np.uint64)) % high


def randn_randint(seed: int, n: int, high: int) -> tuple[np.ndarray, int]:
    """``torch.manual_seed(seed); torch.randn(n), torch.randint(0, high, (1,)).item()`` on
    x86 CPUs (AVX2), as float32 and int."""
    rs = np.random.RandomState(seed & 0xFFFFFFFF)
    if n >= 16:
        extra = 16 if n % 16 else 0
        u = _uniforms(rs, n + extra)
        out = u[:n].copy()
        m = n - n % 16
        out[:m] = _box_muller16(out[:m].reshape(-1, 16)).reshape(-1)
        if extra:  # NOTE: PyTorch redraws the last 16 values from fresh uniforms
            out[n - 16 :] = _box_muller16(u[n:].reshape(1, 16)).reshape(-1)
    else:  # PyTorch's serial path: double Box-Muller, the second value cached for the next
        out, cached = np.empty(n, _F), None
        for i in range(n):
            if cached is None:
                hi_lo = rs.randint(0, 2**32, 4, dtype=np.uint32).astype(np.uint64)
                u1, u2 = (((hi_lo[k] << np.uint64(32)) | hi_lo[k + 1]) & np.uint64(2**53 - 1)
                          for k in (0, 2))  # fmt: skip
                u1, u2 = float(u1) * 2.0**-53, float(u2) * 2.0**-53
                r = math.sqrt(-2.0 * math.log1p(-u2))
                out[i], cached = r * math.cos(2 * math.pi * u1), r * math.sin(2 * math.pi * u1)
            else:
                out[i], cached = cached, None
    return out, _label(rs, high)


def _to_byte(v: np.ndarray) -> np.ndarray:
    """PyTorch's ``x.mul(255).byte()``: truncated towards zero, wrapped modulo 256."""
    return (np.trunc(v.astype(_F) * _F(255)).astype(np.int64) & 0xFF).astype(np.uint8)


def randn_bytes_randint(seed: int, n: int, high: int) -> tuple[np.ndarray, int]:
    """``_to_byte`` of ``randn_randint``'s normals, and its label, about three times faster.

    The normals come from NumPy's float32 ``log``, ``cos`` and ``sin`` (SIMD, a few ulps
    from PyTorch's polynomials); only the rows holding a value within 64 ulps (plus 2**-19)
    of a byte boundary are redone with the exact emulation, about 3% of them.
    """
    if n < 16:
        v, label = randn_randint(seed, n, high)
        return _to_byte(v), label
    rs = np.random.RandomState(seed & 0xFFFFFFFF)
    extra = 16 if n % 16 else 0
    u = _uniforms(rs, n + extra)
    m = n - n % 16
    rows = u[:m].reshape(-1, 16)
    radius = np.sqrt(_F(-2) * np.log(_F(1) - rows[:, :8]))
    theta = _F(2 * math.pi) * rows[:, 8:]
    v = np.concatenate([radius * np.cos(theta), radius * np.sin(theta)], axis=1).reshape(-1)
    margin = np.abs(v) * _F(2.0**-18) + _F(2.0**-19)
    lo = ((v - margin) * _F(255)).astype(np.int32)  # NOTE: the cast truncates, as trunc
    hi = ((v + margin) * _F(255)).astype(np.int32)
    near = np.unique(np.flatnonzero(lo != hi) // 16)
    out = np.empty(n, np.uint8)
    out[:m] = _to_byte(v)
    if near.size:
        exact = _box_muller16(rows[near]).reshape(-1)
        idx = (near[:, None] * 16 + np.arange(16)).reshape(-1)
        out[idx] = _to_byte(exact)
    if extra:  # NOTE: PyTorch redraws the last 16 values from fresh uniforms
        out[n - 16 :] = _to_byte(_box_muller16(u[n:].reshape(1, 16)).reshape(-1))
    return out, _label(rs, high)
