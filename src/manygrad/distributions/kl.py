"""``kl_divergence(p, q)`` and ``register_kl``: closed forms looked up by the pair of types.

The lookup is PyTorch's: of the registered ``(P, Q)`` pairs that ``type(p)`` and ``type(q)``
derive from, the most specific one wins (ordered by ``p``'s class first, then ``q``'s); when
ordering by ``q``'s class first picks a different function, the match is ambiguous and a
``RuntimeWarning`` names the pair to register that breaks the tie.
"""

from __future__ import annotations

import math
import warnings

from .. import creation as C
from .. import ops as F
from ..tensor import Tensor
from .continuous import Exponential, Laplace, Normal, Uniform
from .discrete import Bernoulli, Categorical, OneHotCategorical
from .distribution import Distribution, ExponentialFamily, broadcast_shape
from .independent import Independent, _sum_right
from .multivariate_normal import MultivariateNormal, _diag, _expand, solve

# NOTE: the registry holds the pairs as registered; the memo maps each pair of concrete
# types looked up so far to its resolved function (or NotImplemented), and is cleared
# whenever a registration could change a lookup.
_KL_REGISTRY: dict = {}
_KL_MEMOIZE: dict = {}


def register_kl(type_p: type, type_q: type):
    """Decorator that adds a closed form of ``KL(p || q)`` for ``p`` of type ``type_p`` (or
    a subclass) and ``q`` of type ``type_q`` (or a subclass).

    Args:
        type_p: a ``Distribution`` subclass.
        type_q: a ``Distribution`` subclass.

    To settle an ambiguous lookup (``(BaseP, DerivedQ)`` and ``(DerivedP, BaseQ)`` both
    registered), register the most specific pair too: ``register_kl(DerivedP, DerivedQ)(fn)``.

    Example:
        >>> @register_kl(Normal, Normal)
        ... def kl_normal_normal(p, q): ...
    """
    for name, t in (("type_p", type_p), ("type_q", type_q)):
        if not isinstance(t, type):
            raise TypeError(f"register_kl: expected {name} to be a Distribution subclass (a "
                            f"class, such as Normal), got {t!r}")  # fmt: skip

    def decorator(fn):
        _KL_REGISTRY[type_p, type_q] = fn
        _KL_MEMOIZE.clear()
        return fn

    return decorator


def _rank(t: type, mro: tuple) -> int:
    # NOTE: a proper subclass comes before its bases in an MRO, so the position orders the
    # matching classes from most to least specific (virtual subclasses go last)
    return mro.index(t) if t in mro else len(mro)


def _dispatch_kl(type_p: type, type_q: type):
    matches = [(a, b) for a, b in _KL_REGISTRY if issubclass(type_p, a) and issubclass(type_q, b)]
    if not matches:
        return NotImplemented
    mp, mq = type_p.__mro__, type_q.__mro__
    left = min(matches, key=lambda m: (_rank(m[0], mp), _rank(m[1], mq)))
    right = min(matches, key=lambda m: (_rank(m[1], mq), _rank(m[0], mp)))
    fn = _KL_REGISTRY[left]
    if _KL_REGISTRY[right] is not fn:
        warnings.warn(
            f"Ambiguous kl_divergence({type_p.__name__}, {type_q.__name__}). "
            f"Please register_kl({left[0].__name__}, {right[1].__name__})",
            RuntimeWarning,
            stacklevel=3,
        )
    return fn


def kl_divergence(p: Distribution, q: Distribution) -> Tensor:
    """``KL(p || q)``, batched over the distributions' batch shape.

    Args:
        p: the distribution the expectation is taken under.
        q: the distribution compared with it.

    Raises ``NotImplementedError`` when no closed form is registered for the pair (see
    ``register_kl``).

    Example: ``kl_divergence(Normal(mu, sigma), Normal(0.0, 1.0)).sum()`` (a VAE's KL term).
    """
    key = (type(p), type(q))
    fn = _KL_MEMOIZE.get(key)
    if fn is None:
        fn = _KL_MEMOIZE[key] = _dispatch_kl(*key)
    if fn is NotImplemented:
        raise NotImplementedError(
            f"kl_divergence: no KL(p || q) is implemented for p type {type(p).__name__} and "
            f"q type {type(q).__name__}; register a closed form with "
            f"@register_kl({type(p).__name__}, {type(q).__name__})"
        )
    return fn(p, q)


def _infinite_like(x: Tensor) -> Tensor:
    """A tensor of ``inf`` shaped like ``x`` (a KL that is infinite for every parameter)."""
    return C.full_like(x.detach(), math.inf)


def _x_log_x(x: Tensor) -> Tensor:
    return F.xlogy(x, x)  # NOTE: 0 at x = 0


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
    t1 = _zero_where(p.probs == 0, _inf_where(q.probs == 0, t1))
    t2 = (1 - p.probs) * (F.softplus(q.logits) - F.softplus(p.logits))
    t2 = _zero_where(p.probs == 1, _inf_where(q.probs == 1, t2))
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


@register_kl(ExponentialFamily, ExponentialFamily)
def _kl_expfamily_expfamily(p, q):
    """The Bregman divergence of the log-normalizer ``F`` between the natural parameters:
    ``F(θq) - F(θp) - <θq - θp, ∇F(θp)>``."""
    from ..autograd import enable_grad, grad

    if type(p) is not type(q):
        raise NotImplementedError(
            f"kl_divergence: the cross KL-divergence between different exponential families "
            f"({type(p).__name__} and {type(q).__name__}) cannot be computed using Bregman "
            "divergences; register a closed form with @register_kl"
        )
    # NOTE: a natural parameter that carries a graph is differentiated in place, so the
    # result has gradients to p's parameters too (the others become fresh leaves)
    with enable_grad():
        p_params = [t if t.requires_grad else t.detach().requires_grad_()
                    for t in p._natural_params]  # fmt: skip
        lg = p._log_normalizer(*p_params)
        grads = grad(lg.sum(), p_params, create_graph=True)
    result = q._log_normalizer(*q._natural_params) - lg
    n_batch = len(broadcast_shape(p.batch_shape, q.batch_shape))
    for pn, qn, g in zip(p_params, q._natural_params, grads):
        term = (qn - pn) * g
        # NOTE: each parameter's own trailing dims are summed (its shape past the batch)
        result = result - _sum_right(term, max(term.ndim - n_batch, 0))
    return result


# NOTE: imported last: these modules register more closed forms with ``register_kl``
from . import kl_cross  # noqa: E402, F401
