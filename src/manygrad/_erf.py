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


def np_normal_cdf32(a):
    """The standard normal CDF of a float32 array, in float32."""
    x = np.minimum(a, _NCDF_LIM)
    np.maximum(x, _NCDF_LOW, out=x)
    x2 = x * x
    p = x2 * np.float32(_NCDF_P[0])  # Horner, in place
    p += np.float32(_NCDF_P[1])
    for c in _NCDF_P[2:]:
        p *= x2
        p += np.float32(c)
    p *= x
    q = x2 * np.float32(_NCDF_Q[0])
    q += np.float32(_NCDF_Q[1])
    for c in _NCDF_Q[2:]:
        q *= x2
        q += np.float32(c)
    p /= q
    p += np.float32(0.5)
    np.maximum(p, 0, out=p)
    return p
