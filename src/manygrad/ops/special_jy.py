"""The Bessel functions of the first and second kind of orders 0 and 1 (``special.bessel_j0``,
``bessel_j1``, ``bessel_y0``, ``bessel_y1``), in float64 on any array module:

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
