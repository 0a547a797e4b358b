"""Closed forms of ``kl_divergence`` for the distributions of ``more_continuous``,
``discrete_more``, ``counts``, ``t_dirichlet``, ``extra_families`` and ``lowrank_mvn``, and
between transformed distributions (registered on import, as PyTorch's)."""

from __future__ import annotations

from .. import linalg
from .counts import Binomial
from .discrete_more import Poisson
from .distribution import broadcast_shape
from .extra_families import ContinuousBernoulli
from .kl import _inf_where, kl_divergence, register_kl
from .lowrank_mvn import (
    LowRankMultivariateNormal,
    _batch_lowrank_logdet,
    _batch_lowrank_mahalanobis,
)
from .more_continuous import _EULER, Beta, Cauchy, Gamma
from .multivariate_normal import MultivariateNormal, _diag, _expand
from .t_dirichlet import Dirichlet
from .transformed_continuous import Gumbel, HalfNormal, Pareto
from .transformed_distribution import TransformedDistribution


@register_kl(Gamma, Gamma)
def _kl_gamma_gamma(p, q):
    t1 = q.concentration * (p.rate / q.rate).log()
    t2 = q.concentration.lgamma() - p.concentration.lgamma()
    t3 = (p.concentration - q.concentration) * p.concentration.digamma()
    t4 = (q.rate - p.rate) * (p.concentration / p.rate)
    return t1 + t2 + t3 + t4


@register_kl(Beta, Beta)
def _kl_beta_beta(p, q):
    sp = p.concentration1 + p.concentration0
    sq = q.concentration1 + q.concentration0
    t1 = q.concentration1.lgamma() + q.concentration0.lgamma() + sp.lgamma()
    t2 = p.concentration1.lgamma() + p.concentration0.lgamma() + sq.lgamma()
    t3 = (p.concentration1 - q.concentration1) * p.concentration1.digamma()
    t4 = (p.concentration0 - q.concentration0) * p.concentration0.digamma()
    t5 = (sq - sp) * sp.digamma()
    return t1 - t2 + t3 + t4 + t5


@register_kl(HalfNormal, HalfNormal)
def _kl_halfnormal_halfnormal(p, q):
    return kl_divergence(p.base_dist, q.base_dist)


@register_kl(Gumbel, Gumbel)
def _kl_gumbel_gumbel(p, q):
    ct1 = p.scale / q.scale
    ct2 = q.loc / q.scale
    ct3 = p.loc / q.scale
    t1 = -ct1.log() - ct2 + ct3
    t2 = ct1 * _EULER
    t3 = (ct2 + (1 + ct1).lgamma() - ct3).exp()
    return t1 + t2 + t3 - (1 + _EULER)


@register_kl(Poisson, Poisson)
def _kl_poisson_poisson(p, q):
    return p.rate * (p.rate.log() - q.rate.log()) - (p.rate - q.rate)


@register_kl(Dirichlet, Dirichlet)
def _kl_dirichlet_dirichlet(p, q):
    sp, sq = p.concentration.sum(-1), q.concentration.sum(-1)
    t1 = sp.lgamma() - sq.lgamma()
    t2 = (p.concentration.lgamma() - q.concentration.lgamma()).sum(-1)
    t3 = p.concentration - q.concentration
    t4 = p.concentration.digamma() - sp.digamma().unsqueeze(-1)
    return t1 - t2 + (t3 * t4).sum(-1)


@register_kl(Cauchy, Cauchy)
def _kl_cauchy_cauchy(p, q):
    t1 = ((p.scale + q.scale) ** 2 + (p.loc - q.loc) ** 2).log()
    return t1 - (4 * p.scale * q.scale).log()


@register_kl(Binomial, Binomial)
def _kl_binomial_binomial(p, q):
    if bool((p.total_count < q.total_count).any()):
        raise NotImplementedError(
            "KL between Binomials where q.total_count > p.total_count is not implemented"
        )
    kl = p.total_count * (p.probs * (p.logits - q.logits) + (-p.probs).log1p()
                          - (-q.probs).log1p())  # fmt: skip
    return _inf_where(p.total_count > q.total_count, kl)


@register_kl(ContinuousBernoulli, ContinuousBernoulli)
def _kl_continuous_bernoulli(p, q):
    t1 = p.mean * (p.logits - q.logits)
    t2 = p._cont_bern_log_norm() + (-p.probs).log1p()
    t3 = -q._cont_bern_log_norm() - (-q.probs).log1p()
    return t1 + t2 + t3


@register_kl(Pareto, Pareto)
def _kl_pareto_pareto(p, q):
    alpha_ratio = q.alpha / p.alpha
    result = q.alpha * (p.scale / q.scale).log() - alpha_ratio.log() + alpha_ratio - 1
    return _inf_where(p.scale < q.scale, result)


@register_kl(TransformedDistribution, TransformedDistribution)
def _kl_transformed_transformed(p, q):
    if p.transforms != q.transforms or p.event_shape != q.event_shape:
        raise NotImplementedError(
            "kl_divergence: TransformedDistributions need equal transforms and event shapes"
        )
    return kl_divergence(p.base_dist, q.base_dist)


def _trace_xxt(x):
    """``trace(X Xᵀ)`` of a batch of matrices: the sum of their squares."""
    return (x * x).sum((-2, -1))


def _check_event_shapes(p, q) -> None:
    if p.event_shape != q.event_shape:
        raise ValueError(f"kl_divergence: (low-rank) multivariate normals of different event "
                         f"shapes {tuple(p.event_shape)} and {tuple(q.event_shape)}")  # fmt: skip


def _lowrank_q_terms(p, q):
    """``log det Σq`` and the Mahalanobis term of ``q.loc - p.loc`` for a low-rank ``q``, and
    ``A = L_C⁻¹ Wᵀ D⁻¹`` (so that ``Σq⁻¹ = D⁻¹ - Aᵀ A``)."""
    w, d, cap = q._unbroadcasted_cov_factor, q._unbroadcasted_cov_diag, q._capacitance_tril
    logdet = _batch_lowrank_logdet(d, cap)
    maha = _batch_lowrank_mahalanobis(w, d, q.loc - p.loc, cap)
    a = linalg.solve_triangular(cap, w.mT / d.unsqueeze(-2), upper=False)
    return logdet, maha, a


@register_kl(LowRankMultivariateNormal, LowRankMultivariateNormal)
def _kl_lowrank_lowrank(p, q):
    _check_event_shapes(p, q)
    q_logdet, t3, a = _lowrank_q_terms(p, q)
    pw, pd, qd = p._unbroadcasted_cov_factor, p._unbroadcasted_cov_diag, q._unbroadcasted_cov_diag
    t1 = q_logdet - _batch_lowrank_logdet(pd, p._capacitance_tril)
    t2 = ((pd / qd).sum(-1) + _trace_xxt(pw * qd.rsqrt().unsqueeze(-1))
          - _trace_xxt(a * pd.sqrt().unsqueeze(-2)) - _trace_xxt(a @ pw))  # fmt: skip
    return 0.5 * (t1 + t2 + t3 - p.event_shape[0])


@register_kl(MultivariateNormal, LowRankMultivariateNormal)
def _kl_mvn_lowrank(p, q):
    _check_event_shapes(p, q)
    q_logdet, t3, a = _lowrank_q_terms(p, q)
    lp, qd = p._unbroadcasted_scale_tril, q._unbroadcasted_cov_diag
    t1 = q_logdet - 2 * _diag(lp).log().sum(-1)
    t2 = _trace_xxt(lp * qd.rsqrt().unsqueeze(-1)) - _trace_xxt(a @ lp)
    return 0.5 * (t1 + t2 + t3 - p.event_shape[0])


@register_kl(LowRankMultivariateNormal, MultivariateNormal)
def _kl_lowrank_mvn(p, q):
    _check_event_shapes(p, q)
    n = p.event_shape[0]
    lq, pw, pd = q._unbroadcasted_scale_tril, p._unbroadcasted_cov_factor, p._unbroadcasted_cov_diag
    t1 = 2 * _diag(lq).log().sum(-1) - _batch_lowrank_logdet(pd, p._capacitance_tril)
    t3 = q._mahalanobis(q.loc - p.loc)
    batch = broadcast_shape(tuple(lq.shape[:-2]), tuple(pw.shape[:-2]))
    lq = _expand(lq, (*batch, n, n))
    t21 = _trace_xxt(linalg.solve_triangular(lq, _expand(pw, (*batch, n, pw.shape[-1])),
                                             upper=False))  # fmt: skip
    t22 = _trace_xxt(linalg.solve_triangular(lq, _expand(pd.sqrt().diag_embed(), (*batch, n, n)),
                                             upper=False))  # fmt: skip
    return 0.5 * (t1 + t21 + t22 + t3 - n)
