"""The Bessel functions of the first and second kind of orders 0 and 1 (``special.bessel_j0``,
``bessel_j1``, ``bessel_y0``, ``bessel_y1``) and the Airy function ``airy_ai``, in float64
on any array module. The Bessel functions:

- ``|x| <= 8``: their power series (Abramowitz & Stegun 9.1.10 and 9.1.11);
- ``8 < |x| <= 25``: Miller's backward recurrence for ``J_k`` (normalized by
  ``J_0 + 2 Σ J_2k = 1``) and Neumann's series for ``Y`` in those ``J_k``;
- ``|x| > 25``: Hankel's asymptotic expansions.

About 1e-14 from the exact values (PyTorch's are within ~4e-7 between 3 and 10). Not
differentiable, as in PyTorch.
"""

from __future__ import annotations

import math

from .. import backend
from .special_more import _unary_fn

__all__: list = []

_EULER = 0.5772156649015329
_SMALL, _MID = 8.0, 25.0


def _series_j(xp, x, nu: int):
    q = -(x * x) / 4
    term = xp.ones_like(x) if nu == 0 else x / 2
    total = term
    for k in range(1, 60):
        term = term * q / (k * (k + nu))
        total = total + term
    return total


def _series_y(xp, x, nu: int):
    q = -(x * x) / 4
    log_half = xp.log(x / 2)
    if nu == 0:
        term, psi = xp.ones_like(x), -_EULER
        total = psi * term
        for k in range(1, 60):
            term = term * q / (k * k)
            psi = psi + 1.0 / k
            total = total + psi * term
        return (2 / math.pi) * log_half * _series_j(xp, x, 0) - (2 / math.pi) * total
    term, psi_a, psi_b = x / 2, -_EULER, 1.0 - _EULER
    total = (psi_a + psi_b) * term
    for k in range(1, 60):
        term = term * q / (k * (k + 1))
        psi_a, psi_b = psi_a + 1.0 / k, psi_b + 1.0 / (k + 1)
        total = total + (psi_a + psi_b) * term
    return (2 / math.pi) * log_half * _series_j(xp, x, 1) - 2 / (math.pi * x) - total / math.pi


def _miller(xp, x, n: int = 140):
    """``[J_0 .. J_n](x)`` by the backward recurrence ``J_{k-1} = (2k/x) J_k - J_{k+1}``."""
    js = [None] * (n + 2)
    js[n + 1] = xp.zeros_like(x)
    js[n] = xp.full_like(x, 1e-280)
    for k in range(n, 0, -1):
        js[k - 1] = (2 * k / x) * js[k] - js[k + 1]
    norm = js[0] + 2 * sum(js[2 * k] for k in range(1, n // 2 + 1))
    return [j / norm for j in js[: n + 1]]


def _mid(xp, x):
    """``(J0, J1, Y0, Y1)`` for 8 < x <= 25 (Neumann's series for Y)."""
    js = _miller(xp, x)
    lg = xp.log(x / 2) + _EULER
    s0 = sum((-1) ** k * js[2 * k] / k for k in range(1, 69))
    s1 = sum((-1) ** k * (js[2 * k - 1] - js[2 * k + 1]) / k for k in range(1, 69))
    y0 = (2 / math.pi) * lg * js[0] - (4 / math.pi) * s0
    y1 = -(2 / math.pi) * js[0] / x + (2 / math.pi) * lg * js[1] + (2 / math.pi) * s1
    return js[0], js[1], y0, y1


def _hankel(xp, x, nu: int):
    """``(J_nu, Y_nu)`` for large x: ``sqrt(2/(πx)) (P cos χ - Q sin χ)`` and
    ``(P sin χ + Q cos χ)``, ``χ = x - (nu/2 + 1/4) π``."""
    mu = 4.0 * nu * nu
    p, q = xp.ones_like(x), (mu - 1) / (8 * x)
    term = xp.ones_like(x)
    for k in range(1, 30):
        term = term * (mu - (2 * k - 1) ** 2) / (k * 8 * x)
        if k % 2 == 0:
            p = p + (-1) ** (k // 2) * term
        elif k > 1:
            q = q + (-1) ** (k // 2) * term
    chi = x - (nu / 2 + 0.25) * math.pi
    amp = xp.sqrt(2 / (math.pi * x))
    return amp * (p * xp.cos(chi) - q * xp.sin(chi)), amp * (p * xp.sin(chi) + q * xp.cos(chi))


def _jy(xp, x):
    """``(J0, J1, Y0, Y1)`` for x >= 0 (Y at 0 is -inf)."""
    with backend.quiet_float_errors():
        small = xp.clip(x, 1e-300, _SMALL)
        mid = xp.clip(x, _SMALL, _MID)
        big = xp.maximum(x, _MID)
        s = [_series_j(xp, small, 0), _series_j(xp, small, 1), _series_y(xp, small, 0),
             _series_y(xp, small, 1)]  # fmt: skip
        m = _mid(xp, mid)
        (bj0, by0), (bj1, by1) = _hankel(xp, big, 0), _hankel(xp, big, 1)
        b = [bj0, bj1, by0, by1]
        out = [xp.where(x <= _SMALL, a, xp.where(x <= _MID, c, d)) for a, c, d in zip(s, m, b)]
        out[1] = xp.where(x == 0, 0.0, out[1])
        out[2] = xp.where(x == 0, -math.inf, out[2])
        out[3] = xp.where(x == 0, -math.inf, out[3])
        return out


def _j0(xp, a):
    return _jy(xp, xp.abs(a))[0]


def _j1(xp, a):
    return _jy(xp, xp.abs(a))[1] * xp.sign(a)


def _y(xp, a, k):
    out = _jy(xp, xp.maximum(a, 0.0))[k]
    return xp.where(a < 0, math.nan, out)


bessel_j0 = _unary_fn("bessel_j0", _j0)
bessel_j1 = _unary_fn("bessel_j1", _j1)
bessel_y0 = _unary_fn("bessel_y0", lambda xp, a: _y(xp, a, 2))
bessel_y1 = _unary_fn("bessel_y1", lambda xp, a: _y(xp, a, 3))


# ----------------------------------------------------------------------------- Airy

_AI0, _AIP0 = 0.355028053887817239260, 0.258819403792806798405  # Ai(0), -Ai'(0)


def _airy_series(xp, x):
    """``Ai(x)`` by its Maclaurin series ``Ai(0) f(x) + Ai'(0) g(x)`` (|x| <= 2.1)."""
    x3 = x**3
    f, g = xp.ones_like(x), x
    tf, tg = f, g
    for k in range(1, 60):
        tf = tf * x3 / ((3 * k - 1) * (3 * k))
        tg = tg * x3 / ((3 * k) * (3 * k + 1))
        f, g = f + tf, g + tg
    return _AI0 * f - _AIP0 * g


def _j_frac_miller(xp, z, nu: float, n: int = 90):
    """``J_nu(z)`` for a fractional order by Miller's recurrence, normalized with
    ``(z/2)^nu = Σ_k (nu + 2k) Γ(nu + k) / k! J_{nu+2k}(z)``."""
    js = [None] * (n + 2)
    js[n + 1] = xp.zeros_like(z)
    js[n] = xp.full_like(z, 1e-250)
    for k in range(n, 0, -1):
        js[k - 1] = (2 * (nu + k) / z) * js[k] - js[k + 1]
    total = math.gamma(nu + 1) * js[0]
    for k in range(1, n // 2 + 1):
        total = (
            total + (nu + 2 * k) * math.exp(math.lgamma(nu + k) - math.lgamma(k + 1)) * js[2 * k]
        )
    return js[0] * (z / 2) ** nu / total


def _airy64(xp, x):
    """``Ai(x)``: the series near 0; ``sqrt(x/3) K_{1/3}(ζ) / π`` above; on the left
    ``sqrt(|x|)/3 (J_{1/3}(ζ) + J_{-1/3}(ζ))`` with ``ζ = (2/3) |x|^{3/2}`` (Miller's
    recurrence up to ζ = 40, Hankel's expansion beyond)."""
    from .special_more import _ke_large

    with backend.quiet_float_errors():
        near = _airy_series(xp, xp.clip(x, -2.1, 2.1))
        right = xp.maximum(x, 2.1)
        zr = (2.0 / 3.0) * right**1.5
        pos = xp.sqrt(right / 3) / math.pi * _ke_large(xp, zr, 1.0 / 3.0) * xp.exp(-zr)
        left = xp.maximum(-x, 2.1)
        zl = (2.0 / 3.0) * left**1.5
        zm = xp.minimum(zl, 40.0)
        j_mid = _j_frac_miller(xp, zm, 1.0 / 3.0) + _j_frac_miller(xp, zm, -1.0 / 3.0)
        zb = xp.maximum(zl, 40.0)
        j_big = _hankel(xp, zb, 1.0 / 3.0)[0] + _hankel(xp, zb, -1.0 / 3.0)[0]
        neg = xp.sqrt(left) / 3 * xp.where(zl <= 40, j_mid, j_big)
        out = xp.where(xp.abs(x) <= 2.1, near, xp.where(x > 0, pos, neg))
        return xp.where(xp.isnan(x), math.nan, out)


airy_ai = _unary_fn("airy_ai", _airy64)
