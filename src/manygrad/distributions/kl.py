"""``kl_divergence(p, q)`` and ``register_kl``: closed forms looked up by the pair of types."""

from __future__ import annotations

import math

from .. import creation as C
from .. import ops as F
from ..tensor import Tensor
from .continuous import Exponential, Laplace, Normal, Uniform
from .discrete import Bernoulli, Categorical, OneHotCategorical
from .distribution import broadcast_shape
from .independent import Independent, _sum_right
from .multivariate_normal import MultivariateNormal, _diag, _expand, solve

_KL: dict = {}


def register_kl(type_p, type_q):
    """Decorator: ``@register_kl(P, Q) def kl(p, q): ...`` adds a closed form for ``KL(P||Q)``."""

    def deco(fn):
        _KL[type_p, type_q] = fn
        return fn

    return deco


def _lookup(tp, tq):
    best, rank = None, None
    for i, a in enumerate(tp.__mro__):
        for j, b in enumerate(tq.__mro__):
            fn = _KL.get((a, b))
            if fn is not None and (rank is None or (i + j) < rank):
                best, rank = fn, i + j
    return best


def kl_divergence(p, q) -> Tensor:
    """``KL(p || q)``, batched over the distributions' batch shape.

    Example: ``kl_divergence(Normal(mu, sigma), Normal(0.0, 1.0)).sum()`` (a VAE's KL term).
    """
    fn = _lookup(type(p), type(q))
    if fn is None:
        raise NotImplementedError(
            f"kl_divergence: no closed form for {type(p).__name__} || {type(q).__name__}; "
            "register one with @register_kl"
        )
    return fn(p, q)


def _inf_where(cond: Tensor, x: Tensor) -> Tensor:
    return F.where(cond, C.full((), math.inf, dtype=x.dtype, device=x.device), x)


def _zero_where(cond: Tensor, x: Tensor) -> Tensor:
    return F.where(cond, C.zeros((), dtype=x.dtype, device=x.device), x)


@register_kl(Normal, Normal)
def _kl_normal(p, q):
    var_ratio = (p.scale / q.scale) ** 2
    t1 = ((p.loc - q.loc) / q.scale) ** 2
    return 0.5 * (var_ratio + t1 - 1 - var_ratio.log())


@register_kl(Categorical, Categorical)
def _kl_categorical(p, q):
    t = p.probs * (p.logits - q.logits)
    t = _inf_where(q.probs == 0, t)
    return _zero_where(p.probs == 0, t).sum(-1)


@register_kl(OneHotCategorical, OneHotCategorical)
def _kl_onehot(p, q):
    return _kl_categorical(p._categorical, q._categorical)


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli(p, q):
    t1 = p.probs * (F.softplus(-q.logits) - F.softplus(-p.logits))
    t1 = _zero_where(p.probs == 0, t1)
    t2 = (1 - p.probs) * (F.softplus(q.logits) - F.softplus(p.logits))
    t2 = _zero_where(p.probs == 1, t2)
    return t1 + t2


@register_kl(Uniform, Uniform)
def _kl_uniform(p, q):
    result = ((q.high - q.low) / (p.high - p.low)).log()
    return _inf_where((q.low > p.low) | (q.high < p.high), result)


@register_kl(Exponential, Exponential)
def _kl_exponential(p, q):
    ratio = q.rate / p.rate
    return ratio - 1 - ratio.log()


@register_kl(Laplace, Laplace)
def _kl_laplace(p, q):
    scale_ratio = p.scale / q.scale
    loc_abs_diff = (p.loc - q.loc).abs()
    t1 = -scale_ratio.log()
    t2 = loc_abs_diff / q.scale
    t3 = scale_ratio * (-loc_abs_diff / p.scale).exp()
    return t1 + t2 + t3 - 1


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn(p, q):
    n = p.event_shape[0]
    if q.event_shape[0] != n:
        raise ValueError(f"kl_divergence: MultivariateNormals of sizes {n} and "
                         f"{q.event_shape[0]}")  # fmt: skip
    shape = broadcast_shape(p.batch_shape, q.batch_shape)
    lp = _expand(p._unbroadcasted_scale_tril, (*shape, n, n))
    lq = _expand(q._unbroadcasted_scale_tril, (*shape, n, n))
    half_t1 = _diag(lq).log().sum(-1) - _diag(lp).log().sum(-1)
    t2 = (solve(lq, lp, True) ** 2).sum((-2, -1))
    diff = _expand(q.loc - p.loc, (*shape, n)).unsqueeze(-1)
    t3 = (solve(lq, diff, True) ** 2).sum((-2, -1))
    return half_t1 + 0.5 * (t2 + t3 - n)


@register_kl(Independent, Independent)
def _kl_independent(p, q):
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError("kl_divergence: Independents with different "
                                  "reinterpreted_batch_ndims")  # fmt: skip
    return _sum_right(kl_divergence(p.base_dist, q.base_dist), p.reinterpreted_batch_ndims)
