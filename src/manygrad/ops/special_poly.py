"""The classical orthogonal polynomials of ``torch.special`` (Chebyshev T, U, V, W and
their shifted forms, Hermite H and He, Laguerre L, Legendre P) by their three-term
recurrences, in float64; ``n < 0`` gives 0. Not differentiable, as in PyTorch. The
arguments are ``x`` and ``n``, as PyTorch names them (``chebyshev_polynomial_t(x=t, n=3)``)."""

from __future__ import annotations

from .. import backend
from ..autograd import Function
from ..tensor import Tensor
from .elementwise import _float_input
from .special_more import _f64, _t

# ----------------------------------------------------------------------------- polynomials


def _poly(name, first, step, special=None):
    """An orthogonal polynomial family by its three-term recurrence: ``first(xp, x)`` gives
    ``(p0, p1)``, ``step(xp, x, k, p_prev, p)`` gives ``p_{k+1}``; ``n < 0`` gives 0."""

    class Op(Function):
        differentiable = False

        def forward(self, x, n):
            xp = backend.array_module(x)
            a = _f64(xp, x)
            nn = xp.floor(_f64(xp, n))
            shape = xp.broadcast_shapes(a.shape, nn.shape)
            a, nn = xp.broadcast_to(a, shape), xp.broadcast_to(nn, shape)
            # NOTE: the largest degree sets the recurrence's length (one host read)
            n_max = int(nn.max()) if nn.size else 0
            p0, p1 = first(xp, a)
            out = xp.where(nn == 0, p0, xp.where(nn == 1, p1, 0.0))
            prev, cur = p0, p1
            for k in range(1, max(n_max, 1)):
                prev, cur = cur, step(xp, a, k, prev, cur)
                out = xp.where(nn == k + 1, cur, out)
            if special is not None:
                out = special(xp, a, nn, out)
            out = xp.where(nn < 0, 0.0, out)
            return out.astype(x.dtype if x.dtype.kind == "f" else "float32", copy=False)

    Op.__name__ = Op.__qualname__ = name

    def op(x, n) -> Tensor:
        x = _t(x, n)
        return Op.apply(_float_input(x), _t(n, x))

    op.__name__ = op.__qualname__ = name
    return op


def _ones(xp, x):
    return xp.ones_like(x)


chebyshev_polynomial_t = _poly("chebyshev_polynomial_t", lambda xp, x: (_ones(xp, x), x),
                               lambda xp, x, k, p, c: 2 * x * c - p)  # fmt: skip
chebyshev_polynomial_u = _poly("chebyshev_polynomial_u", lambda xp, x: (_ones(xp, x), 2 * x),
                               lambda xp, x, k, p, c: 2 * x * c - p)  # fmt: skip
chebyshev_polynomial_v = _poly("chebyshev_polynomial_v",
                               lambda xp, x: (_ones(xp, x), 2 * x - 1),
                               lambda xp, x, k, p, c: 2 * x * c - p)  # fmt: skip
chebyshev_polynomial_w = _poly("chebyshev_polynomial_w",
                               lambda xp, x: (_ones(xp, x), 2 * x + 1),
                               lambda xp, x, k, p, c: 2 * x * c - p)  # fmt: skip
hermite_polynomial_h = _poly("hermite_polynomial_h", lambda xp, x: (_ones(xp, x), 2 * x),
                             lambda xp, x, k, p, c: 2 * x * c - 2 * k * p)  # fmt: skip
hermite_polynomial_he = _poly("hermite_polynomial_he", lambda xp, x: (_ones(xp, x), x),
                              lambda xp, x, k, p, c: x * c - k * p)  # fmt: skip
laguerre_polynomial_l = _poly("laguerre_polynomial_l", lambda xp, x: (_ones(xp, x), 1 - x),
                              lambda xp, x, k, p, c: ((2 * k + 1 - x) * c - k * p) / (k + 1))  # fmt: skip
legendre_polynomial_p = _poly("legendre_polynomial_p", lambda xp, x: (_ones(xp, x), x),
                              lambda xp, x, k, p, c: ((2 * k + 1) * x * c - k * p) / (k + 1))  # fmt: skip


def _shifted(fn, name):
    def op(x, n) -> Tensor:
        x = _t(x, n)
        return fn(2 * _float_input(x) - 1, n)

    op.__name__ = op.__qualname__ = name
    return op


shifted_chebyshev_polynomial_t = _shifted(chebyshev_polynomial_t, "shifted_chebyshev_polynomial_t")
shifted_chebyshev_polynomial_u = _shifted(chebyshev_polynomial_u, "shifted_chebyshev_polynomial_u")
shifted_chebyshev_polynomial_v = _shifted(chebyshev_polynomial_v, "shifted_chebyshev_polynomial_v")
shifted_chebyshev_polynomial_w = _shifted(chebyshev_polynomial_w, "shifted_chebyshev_polynomial_w")
