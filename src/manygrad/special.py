"""``manygrad.special``: PyTorch's ``torch.special`` functions.

Example:
    >>> import manygrad as mg
    >>> mg.special.expit(mg.tensor([0.0]))
"""

from __future__ import annotations

import math

from . import backend
from .autograd import Function
from .ops import (
    digamma,
    erf,
    erfc,
    erfinv,
    exp2,
    expm1,
    log1p,
    log_softmax,
    logit,
    logsumexp,
    mvlgamma,
    polygamma,
    round,
    sigmoid,
    sinc,
    softmax,
    xlogy,
)
from .ops import lgamma as gammaln
from .ops.elementwise import _float_input, exp, log, where
from .ops.special_jy import airy_ai, bessel_j0, bessel_j1, bessel_y0, bessel_y1  # noqa: F401
from .ops.special_more import SPECIAL as _SPECIAL
from .ops.special_more import (  # noqa: F401
    _erfcx64,
    erfc_accurate,
    erfcx,
    gammainc,
    gammaincc,
    i0,
    i0e,
    i1,
    i1e,
    modified_bessel_i0,
    modified_bessel_i1,
    modified_bessel_k0,
    modified_bessel_k1,
    scaled_modified_bessel_k0,
    scaled_modified_bessel_k1,
    spherical_bessel_j0,
    zeta,
)
from .ops.special_poly import (  # noqa: F401
    chebyshev_polynomial_t,
    chebyshev_polynomial_u,
    chebyshev_polynomial_v,
    chebyshev_polynomial_w,
    hermite_polynomial_h,
    hermite_polynomial_he,
    laguerre_polynomial_l,
    legendre_polynomial_p,
    shifted_chebyshev_polynomial_t,
    shifted_chebyshev_polynomial_u,
    shifted_chebyshev_polynomial_v,
    shifted_chebyshev_polynomial_w,
)

expit = sigmoid
psi = digamma
multigammaln = mvlgamma


def ndtr(input):  # noqa: A002
    """The standard normal CDF."""
    return (1 + erf(input * (1 / math.sqrt(2)))) * 0.5


def ndtri(input):  # noqa: A002
    """The inverse of the standard normal CDF (``input`` holds probabilities)."""
    return erfinv(input * 2 - 1) * math.sqrt(2)


class SpecialLogNdtr(Function):
    """``log(ndtr(x))`` in float64, and its derivative ``exp(-x²/2 - y) / √(2π)``.

    NOTE: below 0 it is ``log(erfcx(t) / 2) - t²`` with ``t = -x / √2`` (``log(erfc(t) /
    2)`` without erfc's underflow: finite down to -1e4 and beyond); above, ``log1p(-erfc(x
    / √2) / 2)``, which keeps the digits that ``log`` of a number near 1 loses. The
    derivative reads the output, so it stays finite in the far left tail (about -x) and
    can be differentiated again (through this op)."""

    def forward(self, x):
        xp = backend.array_module(x)
        a = x.astype("float64")
        with backend.quiet_float_errors():
            neg = a < 0
            t = xp.where(neg, -a, 0.0) * (1 / math.sqrt(2))
            u = xp.where(neg, 0.0, a) * (1 / math.sqrt(2))
            y = xp.where(neg, xp.log(_erfcx64(xp, t) * 0.5) - t * t,
                         xp.log1p(erfc_accurate(xp, u) * -0.5))  # fmt: skip
        self.x, self.a, self.y = x, a, y
        self.out = y.astype(x.dtype, copy=False)
        return self.out

    def backward(self, g):
        xp = backend.array_module(g)
        with backend.quiet_float_errors():  # NOTE: NaN at -inf, as PyTorch's
            d = xp.exp(-0.5 * self.a * self.a - self.y) * (1 / math.sqrt(2 * math.pi))
        return (g * d).astype(g.dtype, copy=False)

    def backward_graph(self, g):
        x, y = self.saved_input(0, self.x), self.saved_output(self.out)
        return g * exp(-0.5 * x * x - y) * (1 / math.sqrt(2 * math.pi))


def log_ndtr(input):  # noqa: A002
    """``log(ndtr(input))``, accurate in both tails (its gradient too).

    Args:
        input: a tensor (integers become floats).

    Example:
        >>> mg.special.log_ndtr(mg.tensor([-40.0, 0.0, 3.0]))   # [-804.6084, -0.6931, -0.0014]
    """
    return SpecialLogNdtr.apply(_float_input(input))


def xlog1py(input, other):  # noqa: A002
    """``input * log1p(other)``, 0 where input is 0 (NaN where other is NaN); either may be a
    number."""
    from .ops.elementwise import _float_pair
    from .ops.mathfns import _both_tensors

    x, y = _both_tensors(*_float_pair(input, other))
    return where((x == 0) & (y == y), 0.0, x * log1p(y))


def entr(input):  # noqa: A002
    """``-input * log(input)`` elementwise (0 at 0, -inf below 0)."""
    pos = input > 0
    return where(pos, -input * log(where(pos, input, 1.0)), where(input == 0, 0.0, -math.inf))


__all__ = [
    "digamma", "entr", "erf", "erfc", "erfinv", "exp2", "expit", "expm1", "gammaln",
    "log1p", "log_ndtr", "log_softmax", "logit", "logsumexp", "multigammaln", "ndtr", "ndtri",
    "polygamma", "psi", "round", "sinc", "softmax", "xlog1py", "xlogy",
]  # fmt: skip
__all__ += _SPECIAL + ["airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1"]

from . import _out  # noqa: E402

_out.add_out(__import__(__name__, fromlist=["_"]), _out.SPECIAL, "special")
