"""mg.distributions.kl_divergence against torch.distributions.kl_divergence for EVERY pair in
torch's registry (values, shapes and gradients to the parameters, float64), the lookup rules
(most specific match, ambiguity warning, memo reset on registration, errors), the outcome of
every other pair of families (a value, inf, or NotImplementedError, as torch), and the
constraints ``multinomial`` and ``MixtureSameFamilyConstraint``."""

import warnings

import numpy as np
import pytest
import torch
import torch.distributions as TD
from torch.distributions.kl import _KL_REGISTRY as TORCH_REGISTRY

import manygrad as mg
import manygrad.distributions as MD
from manygrad.distributions import constraints as MC
from manygrad.distributions import kl as mkl

# Registry classes that manygrad does not have at all (pair tests for them are skipped);
# every class in torch's registry exists in manygrad, so this stays empty.
MISSING_IN_MANYGRAD: dict = {}


def _jitter(rng, a, rel=0.05):
    a = np.asarray(a, dtype=np.float64)
    return a * (1 + rel * rng.uniform(-1, 1, a.shape))


def _spd(rng, n, batch=()):
    a = rng.standard_normal((*batch, n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def _ef_class(lib):
    """An exponential family written by a user (the exponential distribution, through its
    natural parameter -rate), to reach the (ExponentialFamily, ExponentialFamily) rule."""

    class UserExponential(lib.ExponentialFamily):
        arg_constraints: dict = {}

        def __init__(self, rate):
            self.rate = rate
            super().__init__(rate.shape, ())

        @property
        def _natural_params(self):
            return (-self.rate,)

        def _log_normalizer(self, x):
            return -(-x).log()

        @property
        def _mean_carrier_measure(self):
            return 0

    return UserExponential


_EF = {MD: _ef_class(MD), TD: _ef_class(TD)}

# family -> (params(rng, role) -> list of float64 arrays, build(lib, tensors, role)).
# NOTE: parameters are laid out per role (p or q) so that each cross-family pair gets a
# batch with finite entries and, where a support condition applies, infinite ones too.
_TC = {"p": [5.0, 5.0, 7.0, 6.0], "q": [5.0, 4.0, 7.0, 6.0]}
FAMILIES = {
    "Normal": (lambda r, role: [r.standard_normal(4), r.uniform(0.5, 2, 4)],
               lambda lib, t, role: lib.Normal(t[0], t[1])),
    "Laplace": (lambda r, role: [r.standard_normal(4), r.uniform(0.5, 2, 4)],
                lambda lib, t, role: lib.Laplace(t[0], t[1])),
    "Gumbel": (lambda r, role: [0.5 * r.standard_normal(4), r.uniform(0.5, 2, 4)],
               lambda lib, t, role: lib.Gumbel(t[0], t[1])),
    "Cauchy": (lambda r, role: [r.standard_normal(4), r.uniform(0.5, 2, 4)],
               lambda lib, t, role: lib.Cauchy(t[0], t[1])),
    "HalfNormal": (lambda r, role: [r.uniform(0.5, 2, 4)],
                   lambda lib, t, role: lib.HalfNormal(t[0])),
    "Exponential": (lambda r, role: [r.uniform(0.5, 2, 4)],
                    lambda lib, t, role: lib.Exponential(t[0])),
    "Gamma": (lambda r, role: [r.uniform(0.5, 3, 4), r.uniform(0.5, 2, 4)],
              lambda lib, t, role: lib.Gamma(t[0], t[1])),
    "Beta": (lambda r, role: [r.uniform(0.5, 3, 4), r.uniform(0.5, 3, 4)],
             lambda lib, t, role: lib.Beta(t[0], t[1])),
    "ContinuousBernoulli": (
        lambda r, role: [np.array([_jitter(r, 0.2), 0.4995, _jitter(r, 0.7), _jitter(r, 0.85)])],
        lambda lib, t, role: lib.ContinuousBernoulli(probs=t[0])),
    # p: alpha <= 1 (inf against Exponential, Gamma), <= 2 (inf against Normal), > 2;
    # q: scales below the Uniform's lows
    "Pareto": (lambda r, role: ([r.uniform(0.5, 1.5, 4), _jitter(r, [0.8, 1.5, 2.5, 3.5])]
                                if role == "p" else
                                [_jitter(r, [0.1, 0.2, 0.1, 0.05]), r.uniform(0.5, 3, 4)]),
               lambda lib, t, role: lib.Pareto(t[0], t[1])),
    # p: three intervals inside (0, 1), one reaching below 0; q: wide intervals
    "Uniform": (lambda r, role: ([_jitter(r, [0.2, 0.3, 0.15, -0.1]),
                                  _jitter(r, [0.7, 0.9, 0.5, 0.6])] if role == "p" else
                                 [_jitter(r, [-0.5, 0.35, -0.2, -1.0]),
                                  _jitter(r, [1.5, 1.2, 0.9, 2.0])]),
                lambda lib, t, role: lib.Uniform(t[0], t[1])),
    "Bernoulli": (lambda r, role: [r.uniform(0.1, 0.9, 4)],
                  lambda lib, t, role: lib.Bernoulli(probs=t[0])),
    "Geometric": (lambda r, role: [r.uniform(0.1, 0.9, 4)],
                  lambda lib, t, role: lib.Geometric(probs=t[0])),
    "Poisson": (lambda r, role: [r.uniform(0.5, 3, 4)],
                lambda lib, t, role: lib.Poisson(t[0])),
    "Binomial": (lambda r, role: [r.uniform(0.1, 0.9, 4)],
                 lambda lib, t, role: lib.Binomial(
                     (mg if lib is MD else torch).tensor(_TC[role], dtype=t[0].dtype),
                     probs=t[0])),
    "Categorical": (lambda r, role: [r.standard_normal((4, 3))],
                    lambda lib, t, role: lib.Categorical(logits=t[0])),
    "OneHotCategorical": (lambda r, role: [r.standard_normal((4, 3))],
                          lambda lib, t, role: lib.OneHotCategorical(logits=t[0])),
    "Dirichlet": (lambda r, role: [r.uniform(0.5, 3, (4, 3))],
                  lambda lib, t, role: lib.Dirichlet(t[0])),
    "MultivariateNormal": (lambda r, role: [r.standard_normal((4, 3)), _spd(r, 3)],
                           lambda lib, t, role: lib.MultivariateNormal(
                               t[0], covariance_matrix=t[1])),
    "LowRankMultivariateNormal": (
        lambda r, role: [r.standard_normal((4, 3)), r.standard_normal((3, 2)),
                         r.uniform(0.5, 2, 3)],
        lambda lib, t, role: lib.LowRankMultivariateNormal(t[0], t[1], t[2])),
    "Independent": (lambda r, role: [r.standard_normal((4, 3)), r.uniform(0.5, 2, (4, 3))],
                    lambda lib, t, role: lib.Independent(lib.Normal(t[0], t[1]), 1)),
    "TransformedDistribution": (
        lambda r, role: [r.standard_normal(4), r.uniform(0.5, 2, 4)],
        lambda lib, t, role: lib.TransformedDistribution(
            lib.Normal(t[0], t[1]),
            [lib.transforms.ExpTransform(), lib.transforms.AffineTransform(1.0, 2.0)])),
    "ExponentialFamily": (lambda r, role: [r.uniform(0.5, 2, 4)],
                          lambda lib, t, role: _EF[lib](t[0])),
}  # fmt: skip


def _relaxed(lib):
    """The module that holds the relaxed distributions' inner (logit / log-space) classes."""
    import torch.distributions.relaxed_bernoulli as rb
    import torch.distributions.relaxed_categorical as rc

    return MD if lib is MD else type("relaxed", (), {"LogitRelaxedBernoulli":
                                                     rb.LogitRelaxedBernoulli,
                                                     "ExpRelaxedCategorical":
                                                     rc.ExpRelaxedCategorical})  # fmt: skip


# Families outside torch's registry, for the sweep over all pairs of families.
OTHER_FAMILIES = {
    "LogNormal": (lambda r, role: [r.standard_normal(4), r.uniform(0.5, 2, 4)],
                  lambda lib, t, role: lib.LogNormal(t[0], t[1])),
    "HalfCauchy": (lambda r, role: [r.uniform(0.5, 2, 4)],
                   lambda lib, t, role: lib.HalfCauchy(t[0])),
    "Weibull": (lambda r, role: [r.uniform(0.5, 2, 4), r.uniform(0.5, 2, 4)],
                lambda lib, t, role: lib.Weibull(t[0], t[1])),
    "Chi2": (lambda r, role: [r.uniform(0.5, 3, 4)], lambda lib, t, role: lib.Chi2(t[0])),
    "StudentT": (lambda r, role: [r.uniform(1, 3, 4), r.standard_normal(4), r.uniform(0.5, 2, 4)],
                 lambda lib, t, role: lib.StudentT(t[0], t[1], t[2])),
    "Kumaraswamy": (lambda r, role: [r.uniform(0.5, 3, 4), r.uniform(0.5, 3, 4)],
                    lambda lib, t, role: lib.Kumaraswamy(t[0], t[1])),
    "InverseGamma": (lambda r, role: [r.uniform(0.5, 3, 4), r.uniform(0.5, 2, 4)],
                     lambda lib, t, role: lib.InverseGamma(t[0], t[1])),
    "FisherSnedecor": (lambda r, role: [r.uniform(1, 3, 4), r.uniform(1, 3, 4)],
                       lambda lib, t, role: lib.FisherSnedecor(t[0], t[1])),
    "VonMises": (lambda r, role: [r.standard_normal(4), r.uniform(0.5, 2, 4)],
                 lambda lib, t, role: lib.VonMises(t[0], t[1])),
    "NegativeBinomial": (lambda r, role: [r.uniform(0.1, 0.9, 4)],
                         lambda lib, t, role: lib.NegativeBinomial(3.0, probs=t[0])),
    "RelaxedBernoulli": (lambda r, role: [r.uniform(0.1, 0.9, 4)],
                         lambda lib, t, role: lib.RelaxedBernoulli(0.5, probs=t[0])),
    "LogitRelaxedBernoulli": (lambda r, role: [r.uniform(0.1, 0.9, 4)],
                              lambda lib, t, role: _relaxed(lib).LogitRelaxedBernoulli(0.5, probs=t[0])),
    "RelaxedOneHotCategorical": (
        lambda r, role: [r.standard_normal((4, 3))],
        lambda lib, t, role: lib.RelaxedOneHotCategorical(0.5, logits=t[0])),
    "ExpRelaxedCategorical": (lambda r, role: [r.standard_normal((4, 3))],
                              lambda lib, t, role: _relaxed(lib).ExpRelaxedCategorical(
                                  0.5, logits=t[0])),
    "Multinomial": (lambda r, role: [r.standard_normal((4, 3))],
                    lambda lib, t, role: lib.Multinomial(5, logits=t[0])),
    "Wishart": (lambda r, role: [r.uniform(4, 6, ()), _spd(r, 3)],
                lambda lib, t, role: lib.Wishart(t[0], covariance_matrix=t[1])),
}  # fmt: skip


def _tensors(arrays):
    mp = [mg.tensor(a, dtype=mg.float64, requires_grad=True) for a in arrays]
    tp = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    return mp, tp


def _build_pair(families, pn, qn, seed):
    rng = np.random.default_rng(seed)
    (gp, bp), (gq, bq) = families[pn], families[qn]
    pa, qa = gp(rng, "p"), gq(rng, "q")
    mp, tp = _tensors(pa + qa)
    n = len(pa)
    m = (bp(MD, mp[:n], "p"), bq(MD, mp[n:], "q"))
    t = (bp(TD, tp[:n], "p"), bq(TD, tp[n:], "q"))
    return m, mp, t, tp


def _np(x):
    return x.detach().numpy()


def _check_grads(km, kt, mp, tp, what, rng):
    if not kt.requires_grad:
        assert not km.requires_grad or not np.isfinite(_np(km)).any(), what
        return
    w = rng.standard_normal(tuple(kt.shape))
    finite = np.isfinite(kt.detach().numpy())
    w = np.where(finite, w, 0.0)  # NOTE: an infinite entry times 0 is NaN in both
    gm = mg.autograd.grad((mg.where(mg.tensor(finite), km, 0.0) * mg.tensor(w)).sum(), mp,
                          allow_unused=True)  # fmt: skip
    gt = torch.autograd.grad((torch.where(torch.tensor(finite), kt, 0.0) * torch.tensor(w)).sum(),
                             tp, allow_unused=True)  # fmt: skip
    for i, (a, b) in enumerate(zip(gm, gt)):
        if b is None:
            assert a is None or not np.abs(_np(a)).max() > 0, f"{what}: grad {i}"
        else:
            assert a is not None, f"{what}: no gradient to parameter {i}"
            np.testing.assert_allclose(_np(a), b.numpy(), rtol=1e-6, atol=1e-9,
                                       err_msg=f"{what}: grad {i}")  # fmt: skip


REGISTRY_PAIRS = sorted((p.__name__, q.__name__) for p, q in TORCH_REGISTRY)


def test_registry_is_covered_by_the_tables():
    """Each class in torch's registry has a builder here (or is listed as missing)."""
    names = {n for pair in REGISTRY_PAIRS for n in pair}
    assert names - set(FAMILIES) - set(MISSING_IN_MANYGRAD) == set()
    assert len(REGISTRY_PAIRS) >= 87


@pytest.mark.parametrize("pn,qn", REGISTRY_PAIRS, ids=[f"{p}-{q}" for p, q in REGISTRY_PAIRS])
def test_registry_pair(pn, qn):
    missing = [n for n in (pn, qn) if n in MISSING_IN_MANYGRAD]
    if missing:
        pytest.skip(f"manygrad has no {missing[0]}: {MISSING_IN_MANYGRAD[missing[0]]}")
    # the pair itself is registered in manygrad (not only reached through a base class)
    assert (getattr(MD, pn), getattr(MD, qn)) in mkl._KL_REGISTRY, f"{pn} || {qn} missing"
    seed = sum(map(ord, pn + qn))
    (pm, qm), mp, (pt, qt), tp = _build_pair(FAMILIES, pn, qn, seed)
    if pn == "ExponentialFamily":
        # NOTE: torch's Bregman rule detaches p's natural parameters (no gradient to p);
        # manygrad's keeps them, so gradients are compared with the closed form for the
        # same distributions (Exponential || Exponential)
        kt_value = TD.kl_divergence(pt, qt)
        kt = TD.kl_divergence(TD.Exponential(tp[0]), TD.Exponential(tp[1]))
        np.testing.assert_allclose(kt_value.detach().numpy(), kt.detach().numpy(), rtol=1e-12)
    else:
        kt = TD.kl_divergence(pt, qt)
    km = MD.kl_divergence(pm, qm)
    what = f"{pn} || {qn}"
    assert tuple(km.shape) == tuple(kt.shape), what
    assert km.dtype == mg.float64, what
    np.testing.assert_allclose(_np(km), _np(kt), rtol=1e-9, atol=1e-12, err_msg=what)
    _check_grads(km, kt, mp, tp, what, np.random.default_rng(seed))


# --------------------------------------------------------------- values on the boundaries

_A = np.array
EDGE_CASES = [
    ("Bernoulli", "Bernoulli", [_A([0, 0, 0, 0.5, 0.5, 0.5, 1, 1, 1.0])], [_A([0, 0.5, 1.0] * 3)]),
    ("Categorical", "Categorical", [_A([[0, 0.5, 0.5], [0.3, 0.3, 0.4], [0.2, 0.8, 0]])],
     [_A([[0.2, 0.8, 0], [0.3, 0.7, 0], [0.5, 0.5, 0]])]),
    ("OneHotCategorical", "OneHotCategorical", [_A([[0, 0.5, 0.5], [0.2, 0.8, 0]])],
     [_A([[0.2, 0.8, 0], [0.5, 0.5, 0]])]),
    ("Pareto", "Exponential", [_A([1.0, 1.0, 1.0]), _A([1.0, 2.0, 2.5])], [_A([0.5, 1.0, 2.0])]),
    ("Pareto", "Gamma", [_A([1.0, 1.0, 1.0]), _A([1.0, 2.0, 2.5])],
     [_A([2.0, 1.0, 0.5]), _A([0.5, 1.0, 2.0])]),
    ("Pareto", "Normal", [_A([1.0, 1.0, 1.0]), _A([1.0, 2.0, 2.5])],
     [_A([0.0, 1.0, 2.0]), _A([0.5, 1.0, 2.0])]),
    ("Pareto", "Pareto", [_A([1.0, 0.5, 2.0]), _A([1.0, 2.0, 2.5])],
     [_A([1.0, 1.0, 1.0]), _A([2.0, 1.0, 0.5])]),
    ("Uniform", "Beta", [_A([0.0, 0.2, 0.0]), _A([1.0, 1.0, 0.5])],
     [_A([2.0, 1.0, 0.5]), _A([0.5, 1.0, 2.0])]),
    ("Uniform", "Gamma", [_A([0.0, 0.2]), _A([1.0, 3.0])], [_A([2.0, 0.5]), _A([0.5, 1.0])]),
    ("Uniform", "Exponential", [_A([0.0, 0.2]), _A([1.0, 3.0])], [_A([2.0, 0.5])]),
    ("Uniform", "Pareto", [_A([0.5, 0.2]), _A([1.0, 3.0])], [_A([0.5, 0.3]), _A([2.0, 0.5])]),
    ("Uniform", "ContinuousBernoulli", [_A([0.0, 0.2, 0.1]), _A([0.5, 1.0, 0.9])],
     [_A([0.3, 0.3, 0.3])]),
    ("Uniform", "Uniform", [_A([0.0, 0.2]), _A([1.0, 3.0])], [_A([0.0, 0.2]), _A([1.0, 2.0])]),
    ("Beta", "Uniform", [_A([2.0, 0.5]), _A([0.5, 1.0])], [_A([0.0, -1.0]), _A([1.0, 1.0])]),
    ("ContinuousBernoulli", "Uniform", [_A([0.3, 0.3, 0.3])],
     [_A([0.0, -0.1, -0.1]), _A([1.0, 1.0, 1.1])]),
]  # fmt: skip


# NOTE: zero probabilities need the probs parametrization
_PROBS_BUILD = {
    "Categorical": lambda lib, t, role: lib.Categorical(probs=t[0]),
    "OneHotCategorical": lambda lib, t, role: lib.OneHotCategorical(probs=t[0]),
}


@pytest.mark.parametrize("pn,qn,pa,qa", EDGE_CASES, ids=[f"{c[0]}-{c[1]}" for c in EDGE_CASES])
def test_pair_on_support_boundaries(pn, qn, pa, qa):
    """Zero probabilities, Pareto tails at alpha 1 and 2, intervals touching the supports:
    torch's finite values, infs and gradients."""
    mp, tp = _tensors(pa + qa)
    n = len(pa)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NOTE: logs of 0 and of negatives
        bp, bq = (_PROBS_BUILD.get(n_, FAMILIES[n_][1]) for n_ in (pn, qn))
        km = MD.kl_divergence(bp(MD, mp[:n], "p"), bq(MD, mp[n:], "q"))
        kt = TD.kl_divergence(bp(TD, tp[:n], "p"), bq(TD, tp[n:], "q"))
        np.testing.assert_allclose(_np(km), _np(kt), rtol=1e-9, atol=1e-12)
        _check_grads(km, kt, mp, tp, f"{pn} || {qn}", np.random.default_rng(0))


# --------------------------------------------------------------- every other pair of families

ALL_FAMILIES = {**FAMILIES, **OTHER_FAMILIES}


def _outcome(kl, p, q):
    try:
        return "value", kl(p, q).detach().numpy()
    except NotImplementedError:
        return "NotImplementedError", None


@pytest.mark.parametrize("pn", sorted(ALL_FAMILIES))
def test_every_pair_of_families_matches_torch(pn):
    """Against each family as q: a value (equal to torch's) or NotImplementedError, as torch
    resolves the pair through its class hierarchy."""
    for qn in sorted(ALL_FAMILIES):
        (pm, qm), _, (pt, qt), _ = _build_pair(ALL_FAMILIES, pn, qn, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NOTE: log of a negative -> inf
            (km, vm), (kt, vt) = (
                _outcome(MD.kl_divergence, pm, qm),
                _outcome(TD.kl_divergence, pt, qt),
            )
        assert km == kt, f"{pn} || {qn}: manygrad gives {km}, torch {kt}"
        if kt == "value":
            assert vm.shape == vt.shape, f"{pn} || {qn}"
            np.testing.assert_allclose(vm, vt, rtol=1e-9, atol=1e-12, err_msg=f"{pn} || {qn}")


# --------------------------------------------------------------- batch broadcasting

BROADCAST_PAIRS = [("Beta", "Normal"), ("Exponential", "Gumbel"), ("Gamma", "Normal"),
                   ("Normal", "Laplace"), ("Uniform", "Normal"), ("Laplace", "Normal"),
                   ("Gumbel", "Normal"), ("Normal", "Gumbel"), ("Exponential", "Gamma"),
                   ("Normal", "Uniform"), ("Gamma", "Pareto"), ("Uniform", "Gumbel")]  # fmt: skip


@pytest.mark.parametrize("pn,qn", BROADCAST_PAIRS, ids=[f"{p}-{q}" for p, q in BROADCAST_PAIRS])
def test_cross_family_pair_broadcasts_batches(pn, qn):
    """p of batch (4, 1) against q of batch (4,): torch's shape (the broadcast, or p's own
    batch for the pairs that are infinite everywhere), values and gradients."""
    rng = np.random.default_rng(7)
    (gp, bp), (gq, bq) = FAMILIES[pn], FAMILIES[qn]
    pa = [a.reshape(4, 1) for a in gp(rng, "p")]
    qa = gq(rng, "q")
    mp, tp = _tensors(pa + qa)
    n = len(pa)
    km = MD.kl_divergence(bp(MD, mp[:n], "p"), bq(MD, mp[n:], "q"))
    kt = TD.kl_divergence(bp(TD, tp[:n], "p"), bq(TD, tp[n:], "q"))
    assert tuple(km.shape) == tuple(kt.shape)
    np.testing.assert_allclose(_np(km), _np(kt), rtol=1e-9, atol=1e-12)
    _check_grads(km, kt, mp, tp, f"{pn} || {qn}", rng)


# --------------------------------------------------------------- pairs reached by hierarchy


def test_wishart_batched_is_each_member_s_divergence():
    """Batched Wisharts: each entry equals torch's divergence of that pair alone (torch's own
    batched Bregman sum mixes the df terms across the batch)."""
    rng = np.random.default_rng(3)
    arrays = [rng.uniform(4, 6, 2), _spd(rng, 3, (2,)), rng.uniform(4, 6, 2), _spd(rng, 3, (2,))]
    mp, tp = _tensors(arrays)
    km = MD.kl_divergence(MD.Wishart(mp[0], covariance_matrix=mp[1]),
                          MD.Wishart(mp[2], covariance_matrix=mp[3]))  # fmt: skip
    assert tuple(km.shape) == (2,)
    for i in range(2):
        kt = TD.kl_divergence(TD.Wishart(tp[0][i], covariance_matrix=tp[1][i]),
                              TD.Wishart(tp[2][i], covariance_matrix=tp[3][i]))  # fmt: skip
        np.testing.assert_allclose(_np(km)[i], _np(kt), rtol=1e-9)


def test_wishart_gradients_match_torch():
    rng = np.random.default_rng(4)
    mp, tp = _tensors([rng.uniform(4, 6, ()), _spd(rng, 3), rng.uniform(4, 6, ()), _spd(rng, 3)])
    km = MD.kl_divergence(MD.Wishart(mp[0], covariance_matrix=mp[1]),
                          MD.Wishart(mp[2], covariance_matrix=mp[3]))  # fmt: skip
    kt = TD.kl_divergence(TD.Wishart(tp[0], covariance_matrix=tp[1]),
                          TD.Wishart(tp[2], covariance_matrix=tp[3]))  # fmt: skip
    np.testing.assert_allclose(_np(km), _np(kt), rtol=1e-9)
    gm = mg.autograd.grad(km, mp)
    gt = torch.autograd.grad(kt, tp, allow_unused=True)
    # NOTE: torch's Bregman rule gives no gradient to p (detached); q's must agree
    for a, b in zip(gm[2:], gt[2:]):
        np.testing.assert_allclose(_np(a), b.numpy(), rtol=1e-6, atol=1e-9)
    assert all(g is not None and np.abs(_np(g)).max() > 0 for g in gm[:2])


def test_weibull_pair_with_equal_parameters_is_zero_as_torch():
    c, s = np.array([0.7, 1.5]), np.array([1.2, 0.4])
    km = MD.kl_divergence(MD.Weibull(mg.tensor(s), mg.tensor(c)),
                          MD.Weibull(mg.tensor(s), mg.tensor(c)))  # fmt: skip
    kt = TD.kl_divergence(TD.Weibull(torch.tensor(s), torch.tensor(c)),
                          TD.Weibull(torch.tensor(s), torch.tensor(c)))  # fmt: skip
    np.testing.assert_array_equal(_np(km), _np(kt))


def test_independent_needs_equal_reinterpreted_dims():
    for lib, t in ((MD, mg), (TD, torch)):
        base = lib.Normal(t.zeros(2, 3, dtype=t.float64), 1.0)
        with pytest.raises(NotImplementedError):
            lib.kl_divergence(lib.Independent(base, 1), lib.Independent(base, 2))


def test_different_user_exponential_families_raise():
    for lib in (MD, TD):
        other = type("OtherExponential", (_EF[lib],), {})
        rate = (mg if lib is MD else torch).ones(2, dtype=(mg if lib is MD else torch).float64)
        with pytest.raises(NotImplementedError, match="exponential families"):
            lib.kl_divergence(_EF[lib](rate), other(rate))


# --------------------------------------------------------------- the lookup rules


@pytest.fixture
def scratch_registrations():
    """Registrations made by a test, removed (from both libraries) afterwards."""
    made = []

    def register(lib_kl, p, q, fn):
        lib_kl.register_kl(p, q)(fn)
        made.append((lib_kl, p, q))

    yield register
    for lib_kl, p, q in made:
        lib_kl._KL_REGISTRY.pop((p, q), None)
        lib_kl._KL_MEMOIZE.clear()


def _kl_module(lib):
    import torch.distributions.kl as tkl

    return mkl if lib is MD else tkl


def _normal(lib, cls=None):
    t = mg if lib is MD else torch
    return (cls or lib.Normal)(t.zeros(2, dtype=t.float64), t.ones(2, dtype=t.float64))


@pytest.mark.parametrize("lib", [MD, TD], ids=["manygrad", "torch"])
def test_most_specific_registration_wins(lib, scratch_registrations):
    sub = type("SubNormal", (lib.Normal,), {})
    scratch_registrations(_kl_module(lib), sub, lib.Normal, lambda p, q: "sub-normal")
    assert lib.kl_divergence(_normal(lib, sub), _normal(lib)) == "sub-normal"
    assert lib.kl_divergence(_normal(lib, sub), _normal(lib, sub)) == "sub-normal"
    assert lib.kl_divergence(_normal(lib), _normal(lib, sub)).shape == (2,)  # Normal || Normal


def test_lookup_picks_the_same_rule_as_torch(scratch_registrations):
    """Three levels of subclasses on each side, rules registered at mixed levels: every
    pair resolves to the rule torch picks."""
    results = {}
    for lib in (MD, TD):
        a = type("A", (lib.Normal,), {})
        b = type("B", (a,), {})
        c = type("C", (b,), {})
        levels = {"N": lib.Normal, "A": a, "B": b, "C": c}
        for p_name, q_name in [("A", "N"), ("N", "B"), ("B", "A"), ("C", "N")]:
            tag = f"{p_name}{q_name}"
            scratch_registrations(_kl_module(lib), levels[p_name], levels[q_name],
                                  lambda p, q, tag=tag: tag)  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for x in levels:
                for y in levels:
                    r = lib.kl_divergence(_normal(lib, levels[x]), _normal(lib, levels[y]))
                    results.setdefault(lib, {})[x, y] = r if isinstance(r, str) else "NN"
    assert results[MD] == results[TD]


@pytest.mark.parametrize("lib", [MD, TD], ids=["manygrad", "torch"])
def test_ambiguous_match_warns_once_and_takes_p_s_rule(lib, scratch_registrations):
    sub_p = type("SubP", (lib.Normal,), {})
    sub_q = type("SubQ", (lib.Normal,), {})
    kl_mod = _kl_module(lib)
    scratch_registrations(kl_mod, lib.Normal, sub_q, lambda p, q: "q-rule")
    scratch_registrations(kl_mod, sub_p, lib.Normal, lambda p, q: "p-rule")
    with pytest.warns(RuntimeWarning, match=r"Ambiguous kl_divergence\(SubP, SubQ\)\. "
                                            r"Please register_kl\(SubP, SubQ\)"):  # fmt: skip
        assert lib.kl_divergence(_normal(lib, sub_p), _normal(lib, sub_q)) == "p-rule"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lib.kl_divergence(_normal(lib, sub_p), _normal(lib, sub_q)) == "p-rule"
        # the tie-breaking registration settles it (and resets the memo)
        scratch_registrations(kl_mod, sub_p, sub_q, lambda p, q: "both")
        assert lib.kl_divergence(_normal(lib, sub_p), _normal(lib, sub_q)) == "both"


@pytest.mark.parametrize("lib", [MD, TD], ids=["manygrad", "torch"])
def test_registration_resets_earlier_lookups(lib, scratch_registrations):
    sub = type("SubNormal", (lib.Normal,), {})
    assert lib.kl_divergence(_normal(lib, sub), _normal(lib)).shape == (2,)
    scratch_registrations(_kl_module(lib), sub, lib.Normal, lambda p, q: "new")
    assert lib.kl_divergence(_normal(lib, sub), _normal(lib)) == "new"


@pytest.mark.parametrize("lib", [MD, TD], ids=["manygrad", "torch"])
def test_register_kl_returns_the_function_and_rejects_non_classes(lib, scratch_registrations):
    sub = type("SubNormal", (lib.Normal,), {})

    def fn(p, q):
        return "fn"

    assert lib.register_kl(sub, sub)(fn) is fn
    scratch_registrations(_kl_module(lib), sub, sub, fn)
    with pytest.raises(TypeError):
        lib.register_kl(1, lib.Normal)
    with pytest.raises(TypeError):
        lib.register_kl(lib.Normal, "Normal")


@pytest.mark.parametrize("lib", [MD, TD], ids=["manygrad", "torch"])
def test_unregistered_pair_names_both_types(lib):
    t = mg if lib is MD else torch
    with pytest.raises(NotImplementedError, match="Normal.*Categorical"):
        lib.kl_divergence(_normal(lib), lib.Categorical(logits=t.zeros(3)))


# --------------------------------------------------------------- constraints


def test_multinomial_constraint_matches_torch():
    v = np.array([[1.0, 2.0, 0.0], [3.0, -1.0, 0.0], [2.0, 2.0, 2.0], [0.0, 0.0, 4.0]])
    for bound in (4, 6):
        cm, ct = MC.multinomial(bound), TD.constraints.multinomial(bound)
        np.testing.assert_array_equal(cm.check(mg.tensor(v)).numpy(),
                                      ct.check(torch.tensor(v)).numpy())  # fmt: skip
        assert (cm.is_discrete, cm.event_dim, repr(cm)) == (ct.is_discrete, ct.event_dim,
                                                           repr(ct))  # fmt: skip


@pytest.mark.parametrize("base", ["real", "positive", "unit_interval", "simplex", "boolean",
                                  "independent-positive"])  # fmt: skip
@pytest.mark.parametrize("shape", [(2,), (3, 2), (2, 3, 2)])
def test_mixture_same_family_constraint_matches_torch(base, shape):
    def make(lib):
        if base == "independent-positive":
            return lib.independent(lib.positive, 1)
        return getattr(lib, base)

    v = np.random.default_rng(5).choice([-0.5, 0.0, 0.3, 0.7, 1.0, 2.0], shape)
    cm = MC.MixtureSameFamilyConstraint(make(MC))
    ct = TD.constraints.MixtureSameFamilyConstraint(make(TD.constraints))
    np.testing.assert_array_equal(cm.check(mg.tensor(v)).numpy(),
                                  ct.check(torch.tensor(v)).numpy())  # fmt: skip
    assert (cm.is_discrete, cm.event_dim, repr(cm)) == (ct.is_discrete, ct.event_dim, repr(ct))


def test_mixture_same_family_constraint_needs_a_constraint():
    for lib in (MC, TD.constraints):
        with pytest.raises(AssertionError, match="base_constraint"):
            lib.MixtureSameFamilyConstraint("positive")
