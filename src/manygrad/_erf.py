"""The error function and the normal CDF on NumPy arrays, for exact GELU: float64 through
SciPy (or the math module), float32 through a rational fit computed in place.

``backend.erf`` and ``backend.normal_cdf`` pick these for NumPy and fake-GPU arrays.
"""

from __future__ import annotations

import math

import numpy as np

# x * P(x^2) / Q(x^2) on [-4, 4] (the rational fit Eigen uses for float erf): absolute
# error below 1e-7 in float64 arithmetic, a few float32 ulps in float32.
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
          -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
          -1.60960333262415e-02)  # fmt: skip
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
          -7.37332916720468e-03, -1.42647390514189e-02)  # fmt: skip


def np_erf_same(a):
    """``erf(a)`` in ``a``'s dtype."""
    return _np_erf(a).astype(a.dtype, copy=False)


def _np_erf(a):
    if a.dtype == np.float64:  # exact in float64: SciPy's, else the math module's
        try:
            from scipy.special import erf as sp_erf

            return sp_erf(a)
        except ImportError:
            import math

            return np.frompyfunc(math.erf, 1, 1)(a).astype(np.float64)
    # NOTE: faster than SciPy for float32, computed in place (Horner) to spare temporaries
    dt = np.float64 if a.dtype == np.float64 else np.float32
    x = np.clip(a, -4.0, 4.0, dtype=dt)
    x2 = x * x
    p = np.full_like(x2, _ERF_P[0])
    for c in _ERF_P[1:]:
        p *= x2
        p += c
    p *= x
    q = np.full_like(x2, _ERF_Q[0])
    for c in _ERF_Q[1:]:
        q *= x2
        q += c
    p /= q
    return p


# NOTE: Phi(x) = 1/2 + u P(u^2) / (2 Q(u^2)) with u = x / sqrt(2) on |u| <= 4 (the erf fit
# above): the 1 / sqrt(2), the halving and u^2 = x^2 / 2 are folded into the coefficients,
# which spares three full passes over the data
_NCDF_P = tuple(c * 0.5 ** (len(_ERF_P) - i) / math.sqrt(2) for i, c in enumerate(_ERF_P))
_NCDF_Q = tuple(c * 0.5 ** (len(_ERF_Q) - 1 - i) for i, c in enumerate(_ERF_Q))
_NCDF_LIM = 4.0 * math.sqrt(2)


# NOTE: below -5.5 the fit's float32 rounding (1/2 + r, r near -1/2: steps of 6e-8) would
# leave a constant +-6e-8 that x * Phi(x) in GELU scales up (5.96e-4 at x = -1e4, where
# PyTorch gives -0): the lower clip sits where the fit gives exactly 0, and Phi >= 0
_NCDF_LOW = -5.5


# NOTE: values per block: the CDF's ~25 passes (and GELU's ~8 more) run over one block at
# a time, its input, outputs and scratch (6 x 128 KiB) staying in a core's L2 cache: 786k
# float32 values on one thread, CDF 1.10 against 1.28 ms in one piece, GELU with its
# derivative 1.82 against 2.04
_BLOCK = 1 << 15

# NOTE: the constants as 0-d float32 arrays: a ufunc takes them with less per-call work than
# NumPy scalars (a block's ~35 calls), and in float32 as the scalars were
_P32 = tuple(np.array(c, np.float32) for c in _NCDF_P)
_Q32 = tuple(np.array(c, np.float32) for c in _NCDF_Q)
_LOW32, _LIM32 = np.array(_NCDF_LOW, np.float32), np.array(_NCDF_LIM, np.float32)
_ZERO32, _HALF32, _ONE32 = (np.array(v, np.float32) for v in (0.0, 0.5, 1.0))
_NEG_HALF32 = np.array(-0.5, np.float32)
_INV_SQRT_2PI32 = np.array(1 / math.sqrt(2 * math.pi), np.float32)


def _cdf32_into(a, p, xc, x2):
    """Phi(a) of a float32 block into ``p``; ``xc`` and ``x2`` are scratch of a's size.

    NOTE: np.clip with both bounds, not np.minimum / np.maximum with a scalar: 65 against
    230 us on 786k float32 values (NumPy's min/max with a scalar operand is not vectorized
    here); with the blocks, 786k values: 1.10 against 1.89 ms before.
    The upper clip at 1 also removes the fit's 1.0000001 for large x (x * Phi(x) is x there,
    as in PyTorch).
    """
    np.clip(a, _LOW32, _LIM32, out=xc)
    np.square(xc, out=x2)
    np.multiply(x2, _P32[0], out=p)  # Horner, in place
    p += _P32[1]
    for c in _P32[2:]:
        p *= x2
        p += c
    p *= xc
    q = xc  # xc is no longer needed: the denominator takes its place
    np.multiply(x2, _Q32[0], out=q)
    q += _Q32[1]
    for c in _Q32[2:]:
        q *= x2
        q += c
    p /= q
    p += _HALF32
    np.clip(p, _ZERO32, _ONE32, out=p)
    return p


def _blocks(n):
    return ((i, min(i + _BLOCK, n)) for i in range(0, n, _BLOCK))


def np_normal_cdf32(a):
    """The standard normal CDF of a float32 array, in float32."""
    flat = a.reshape(-1)
    res = np.empty(a.shape, np.float32)  # NOTE: owns its memory (a reshaped view would not)
    out = res.reshape(-1)
    work = np.empty((2, min(_BLOCK, flat.size)), np.float32)
    for i, j in _blocks(flat.size):
        _cdf32_into(flat[i:j], out[i:j], work[0, : j - i], work[1, : j - i])
    return res


def np_gelu32(a, slope: bool):
    """Exact GELU ``a * Phi(a)`` of a float32 array and, with ``slope``, its derivative
    ``Phi(a) + a * phi(a)`` (else None), both in float32, computed block by block."""
    flat = a.reshape(-1)
    n = flat.size
    res = np.empty(a.shape, np.float32), np.empty(a.shape, np.float32) if slope else None
    y = res[0].reshape(-1)
    d = None if res[1] is None else res[1].reshape(-1)
    work = np.empty((3, min(_BLOCK, n)), np.float32)
    for i, j in _blocks(n):
        x, cdf, s, t = flat[i:j], work[0, : j - i], work[1, : j - i], work[2, : j - i]
        _cdf32_into(x, cdf, s, t)
        np.multiply(x, cdf, out=y[i:j])
        if d is not None:  # exp(-x^2 / 2) * (x / sqrt(2 pi)) + Phi(x)
            e = d[i:j]
            np.multiply(x, _NEG_HALF32, out=e)
            e *= x
            np.exp(e, out=e)
            np.multiply(x, _INV_SQRT_2PI32, out=s)
            e *= s
            e += cdf
    return res
