"""Special functions with PyTorch's names: erf, erfc, erfinv, lgamma, digamma,
polygamma (any order), mvlgamma. Computed with the array module's elementwise maths (no
SciPy), so the same code runs on CPUs and GPUs."""

from __future__ import annotations

import math

from .. import backend
from ..autograd import Function
from ..tensor import Tensor
from .elementwise import _float_input, _unary, exp


def _erf(xp, x):
    return backend.erf(x)


def _erfc(xp, x):
    # NOTE: 1 - erf(x) below 2; beyond, exp(-x²) erfcx(x) (no cancellation: erfc(6) is
    # 2e-17, not 0)
    from .special_more import erfc_accurate

    return erfc_accurate(xp, x)


_SQRT_PI = math.sqrt(math.pi)
erf = _unary(
    "Erf",
    _erf,
    lambda xp, g, x, y: g * (2 / _SQRT_PI) * xp.exp(-x * x),
    False,
    graph=lambda g, x, y: g * (2 / _SQRT_PI) * exp(-x * x),
)
erfc = _unary(
    "Erfc",
    _erfc,
    lambda xp, g, x, y: -g * (2 / _SQRT_PI) * xp.exp(-x * x),
    False,
    graph=lambda g, x, y: -g * (2 / _SQRT_PI) * exp(-x * x),
)

# Giles' single-precision erfinv approximation, refined by Newton steps in float64
_GILES_LO = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
             -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)  # fmt: skip
_GILES_HI = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
             -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)  # fmt: skip


def _horner(coefs, w):
    p = coefs[0] + w * 0
    for c in coefs[1:]:
        p = c + p * w
    return p


def _erfinv(xp, x):
    a = x.astype("float64")
    w = -xp.log((1 - a) * (1 + a))
    lo = _horner(_GILES_LO, w - 2.5)
    hi = _horner(_GILES_HI, xp.sqrt(xp.maximum(w, 5.0)) - 3)
    y = xp.where(w < 5, lo, hi) * a
    fin = xp.isfinite(y)
    ys = xp.where(fin, y, 0.0)
    for _ in range(3):
        ys = ys - (backend.erf(ys) - a) / ((2 / _SQRT_PI) * xp.exp(-ys * ys))
    out = xp.where(fin, ys, y)
    out = xp.where(xp.abs(a) == 1, a * math.inf, out)  # NOTE: erfinv(+-1) = +-inf
    return out.astype(x.dtype, copy=False)


erfinv = _unary(
    "Erfinv",
    _erfinv,
    lambda xp, g, x, y: g * (_SQRT_PI / 2) * xp.exp(y * y),
    graph=lambda g, x, y: g * (_SQRT_PI / 2) * exp(y * y),
)

_LANCZOS = (0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012,
            9.9843695780195716e-6, 1.5056327351493116e-7)  # fmt: skip


def _lgamma(xp, x):
    a = x.astype("float64")
    refl = a < 0.5
    z = xp.where(refl, 1 - a, a) - 1
    s = _LANCZOS[0] + z * 0
    for i, c in enumerate(_LANCZOS[1:], 1):
        s = s + c / (z + i)
    t = z + 7.5
    lg = 0.5 * math.log(2 * math.pi) + (z + 0.5) * xp.log(t) - t + xp.log(s)
    with backend.quiet_float_errors():
        sin = xp.abs(xp.sin(math.pi * a))
        out = xp.where(refl, math.log(math.pi) - xp.log(sin) - lg, lg)
        # NOTE: poles at 0, -1, -2, ... (sin(pi * a) is not exactly 0 there), lgamma(1) =
        # lgamma(2) = 0 exactly, and lgamma(+-inf) = inf, as PyTorch gives them
        pole = (a <= 0) & (a == xp.floor(a))
        out = xp.where(pole | xp.isinf(a), math.inf, out)
        out = xp.where((a == 1) | (a == 2), 0.0, out)
    return out.astype(x.dtype, copy=False)


def _polygamma01(xp, x, n):
    """digamma (n=0) or trigamma (n=1) in float64: reflection, recurrence, asymptotics."""
    a = x.astype("float64")
    refl = a < 0.5
    z = xp.where(refl, 1 - a, a)
    acc = z * 0
    for _ in range(10):
        small = z < 10
        acc = acc + xp.where(small, (1 / z) if n == 0 else (1 / (z * z)), 0)
        z = xp.where(small, z + 1, z)
    r = 1 / (z * z)
    if n == 0:
        out = xp.log(z) - 0.5 / z - r * (1 / 12 - r * (1 / 120 - r * (1 / 252 - r / 240)))
        out = out - acc
        with backend.quiet_float_errors():
            cot = math.pi / xp.tan(math.pi * a)
        out = xp.where(refl, out - cot, out)
        # NOTE: PyTorch's values at the poles and infinities: -inf at +0, inf at -0, NaN at
        # negative integers and -inf, inf at inf
        pole = (a < 0) & (a == xp.floor(a))
        out = xp.where(pole | (a == -math.inf), math.nan, out)
        out = xp.where(a == 0, xp.where(xp.signbit(a), math.inf, -math.inf), out)
        out = xp.where(a == math.inf, math.inf, out)
    else:
        out = 1 / z + r / 2 + r / z * (1 / 6 - r * (1 / 30 - r * (1 / 42 - r / 30)))
        out = out + acc
        with backend.quiet_float_errors():
            s = math.pi / xp.sin(math.pi * a)
        out = xp.where(refl, s * s - out, out)
        out = xp.where((a <= 0) & (a == xp.floor(a)), math.inf, out)  # NOTE: the poles
        out = xp.where(a == math.inf, 0.0, out)
    return out.astype(x.dtype, copy=False)


def _digamma(xp, x):
    return _polygamma01(xp, x, 0)


lgamma = _unary(
    "Lgamma",
    _lgamma,
    lambda xp, g, x, y: g * _digamma(xp, x),
    False,
    graph=lambda g, x, y: g * digamma(x),
)
digamma = _unary(
    "Digamma",
    _digamma,
    lambda xp, g, x, y: g * _polygamma01(xp, x, 1),
    False,
    graph=lambda g, x, y: g * polygamma(1, x),
)


psi = digamma


# ---------------------------------------------------------------------------- polygamma

# B_2k / (2k)!-free Bernoulli numbers B_2, B_4, ..., B_16 for the asymptotic series
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510)


_POLYGAMMA_LOW = 4096.0


def _polygamma_n(xp, x, n: int):
    """psi^(n)(x) for n >= 1 in float64: the recurrence up to z >= 12, then the asymptotic
    series (Abramowitz & Stegun 6.4.11)."""
    a = x.astype("float64")
    # NOTE: a host read, to bound the recurrence; inputs below -_POLYGAMMA_LOW (far from
    # any practical use) give NaN rather than a recurrence of millions of steps
    ok = xp.isfinite(a) & (a >= -_POLYGAMMA_LOW)
    low = float(xp.where(ok, a, 12.0).min()) if a.size else 12.0
    steps = max(0, math.ceil(12 - low))
    a_in = a
    a = xp.where(ok, a, 12.0)
    sign = -1.0 if n % 2 == 0 else 1.0  # (-1)**(n + 1)
    fact = math.factorial(n)
    acc = a * 0
    z = a
    for _ in range(steps):
        small = z < 12
        with backend.quiet_float_errors():
            acc = acc + xp.where(small, fact / z ** (n + 1), 0)
        z = xp.where(small, z + 1, z)
    s = math.factorial(n - 1) / z**n + fact / (2 * z ** (n + 1))
    for k, b in enumerate(_BERNOULLI, 1):
        s = s + b * math.factorial(2 * k + n - 1) / math.factorial(2 * k) / z ** (2 * k + n)
    out = sign * (s + acc)
    with backend.quiet_float_errors():
        # NOTE: PyTorch's values: +-inf (the sign of (-1)**(n+1)) at the poles 0, -1, ...;
        # at +inf 0 for n = 1 and NaN above; at -inf NaN for n = 1 and the pole's inf above
        a = a_in
        out = xp.where(xp.isfinite(a) & (a < -_POLYGAMMA_LOW), math.nan, out)
        out = xp.where(xp.isnan(a), math.nan, out)
        pole = (a <= 0) & (a == xp.floor(a))
        out = xp.where(pole, sign * math.inf, out)
        out = xp.where(a == math.inf, 0.0 if n == 1 else math.nan, out)
        out = xp.where(a == -math.inf, math.nan if n == 1 else sign * math.inf, out)
    return out.astype(x.dtype, copy=False)


class Polygamma(Function):
    def forward(self, x, n):
        self.x, self.n = x, n
        return _polygamma_n(backend.array_module(x), x, n)

    def backward(self, g):
        return g * _polygamma_n(backend.array_module(g), self.x, self.n + 1), None

    def backward_graph(self, g):
        return g * polygamma(self.n + 1, self.saved_input(0, self.x)), None


def polygamma(n: int, input: Tensor) -> Tensor:  # noqa: A002
    """The ``n``-th derivative of digamma (``n = 0`` is digamma itself), any order."""
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"polygamma: n must be a non-negative int, got {n!r}")
    if n == 0:
        return digamma(input)
    return Polygamma.apply(_float_input(input), n)


def mvlgamma(input: Tensor, p: int) -> Tensor:  # noqa: A002
    """The multivariate log-gamma of dimension ``p``."""
    out = lgamma(input) * 0 + p * (p - 1) / 4 * math.log(math.pi)
    for i in range(p):
        out = out + lgamma(input - i / 2)
    return out


# NOTE: ops built by _unary report elementwise as their module; claim them here
for _n, _v in list(globals().items()):
    if callable(_v) and getattr(_v, "__module__", None) == "manygrad.ops.elementwise":
        if _n not in ("exp", "_unary", "_float_input"):
            _v.__module__ = __name__

from ._common import public  # noqa: E402

__all__ = public(globals())
