"""mg.distributions against torch.distributions: values, gradients, shapes and errors of the
parts that differed (cached parameters under no_grad, expand of composite distributions,
modes, cdf/icdf, entropies, KL pairs, transform equality, validate_args)."""

import numpy as np
import pytest
import torch
import torch.distributions as TD

import manygrad as mg
import manygrad.distributions as MD

R = np.random.default_rng(0)
DTYPES = ["float64", "float32"]


def _pos(*s):
    return np.abs(R.standard_normal(s)) + 0.5


def _u01(*s):
    return R.uniform(0.1, 0.9, s)


def _nrm(*s):
    return R.standard_normal(s)


def _spd(n):
    a = R.standard_normal((n, n))
    return a @ a.T + n * np.eye(n)


def _tensors(arrays, dt):
    mp = [mg.tensor(a, dtype=getattr(mg, dt), requires_grad=True) for a in arrays]
    tp = [torch.tensor(a, dtype=getattr(torch, dt), requires_grad=True) for a in arrays]
    return mp, tp


def _np(t):
    return t.detach().numpy()


def _tol(dt):
    return dict(rtol=1e-6, atol=1e-8) if dt == "float64" else dict(rtol=2e-4, atol=1e-5)


def _check(m_out, t_out, mp, tp, dt, what):
    """Same shape, values and (where torch has a graph) gradients to the parameters."""
    assert tuple(m_out.shape) == tuple(t_out.shape), what
    np.testing.assert_allclose(_np(m_out), _np(t_out), err_msg=what, **_tol(dt))
    if not t_out.requires_grad:
        return
    w = R.standard_normal(tuple(t_out.shape))
    gm = mg.autograd.grad((m_out * mg.tensor(w, dtype=m_out.dtype)).sum(), mp,
                          allow_unused=True, retain_graph=True)  # fmt: skip
    gt = torch.autograd.grad((t_out * torch.tensor(w, dtype=t_out.dtype)).sum(), tp,
                             allow_unused=True, retain_graph=True)  # fmt: skip
    for a, b in zip(gm, gt):
        if b is None:
            assert a is None or not _np(a).any(), what
        else:
            tol = _tol(dt) if dt == "float64" else dict(rtol=1e-3, atol=1e-4)
            np.testing.assert_allclose(_np(a), b.numpy(), err_msg=what, **tol)


# --------------------------------------------------------------- cached probs / logits


@pytest.mark.parametrize("name", ["Categorical", "Bernoulli", "Binomial", "Geometric",
                                  "OneHotCategorical", "ContinuousBernoulli"])  # fmt: skip
def test_entropy_gradient_after_sample(name):
    # the parameter not given is cached on first use: sample() must not cache it without grad
    logits = _nrm(3)
    mp, tp = _tensors([logits], "float64")

    def build(lib, p):
        if name == "Binomial":
            return lib.Binomial(5, logits=p[0])
        return getattr(lib, name)(logits=p[0])

    dm, dt_ = build(MD, mp), build(TD, tp)
    dm.sample()
    dt_.sample()
    _check(dm.entropy(), dt_.entropy(), mp, tp, "float64", name)
    _check(dm.mean, dt_.mean, mp, tp, "float64", name + ".mean")


def test_categorical_probs_gradient_after_sample():
    mp, tp = _tensors([_nrm(2, 4)], "float32")
    dm, dt_ = MD.Categorical(logits=mp[0]), TD.Categorical(logits=tp[0])
    dm.sample((3,))
    dt_.sample((3,))
    _check(dm.probs, dt_.probs, mp, tp, "float32", "probs")


# --------------------------------------------------------------- expand

EXPAND_CASES = [
    ("OneHotCategorical", lambda lib, p: lib.OneHotCategorical(logits=p[0]), [_nrm(2, 4)]),
    ("Multinomial", lambda lib, p: lib.Multinomial(5, probs=p[0]), [_pos(2, 3)]),
    ("Independent", lambda lib, p: lib.Independent(lib.Normal(p[0], p[1]), 1), [_nrm(2, 3), _pos(2, 3)]),
    ("Chi2", lambda lib, p: lib.Chi2(p[0]), [_pos(3)]),
    ("Mixture", lambda lib, p: lib.MixtureSameFamily(lib.Categorical(logits=p[0]), lib.Normal(p[1], p[2])),
     [_nrm(2, 3), _nrm(2, 3), _pos(2, 3)]),
    ("MixtureIndependent", lambda lib, p: lib.MixtureSameFamily(
        lib.Categorical(logits=p[0]), lib.Independent(lib.Normal(p[1], p[2]), 1)),
     [_nrm(3), _nrm(3, 2), _pos(3, 2)]),
    ("TransformedStickBreaking", lambda lib, p: lib.TransformedDistribution(
        lib.Normal(p[0], p[1]), [lib.transforms.StickBreakingTransform()]), [_nrm(2, 3), _pos(2, 3)]),
    ("TransformedAffineEvent", lambda lib, p: lib.TransformedDistribution(
        lib.Normal(p[0], p[1]), [lib.transforms.AffineTransform(p[0], p[1], event_dim=1)]),
     [_nrm(3), _pos(3)]),
    ("RelaxedOneHot", lambda lib, p: lib.RelaxedOneHotCategorical(p[1], logits=p[0]),
     [_nrm(2, 3), np.array(0.7)]),
    ("LogisticNormal", lambda lib, p: lib.LogisticNormal(p[0], p[1]), [_nrm(3), _pos(3)]),
]  # fmt: skip


@pytest.mark.parametrize("name,build,params", EXPAND_CASES, ids=[c[0] for c in EXPAND_CASES])
def test_expand(name, build, params):
    TD.Distribution.set_default_validate_args(False)
    try:
        mp, tp = _tensors(params, "float64")
        dm, dt_ = build(MD, mp), build(TD, tp)
        shape = (4, *dt_.batch_shape)
        em, et = dm.expand(shape), dt_.expand(shape)
        assert tuple(em.batch_shape) == tuple(et.batch_shape)
        assert tuple(em.event_shape) == tuple(et.event_shape)
        assert tuple(em.sample((2,)).shape) == tuple(et.sample((2,)).shape)
        value = dt_.sample()
        _check(em.log_prob(mg.tensor(value.numpy())), et.log_prob(value), mp, tp, "float64",
               name + ".log_prob")  # fmt: skip
        if name not in ("RelaxedOneHot", "LogisticNormal", "TransformedStickBreaking",
                        "TransformedAffineEvent"):  # fmt: skip
            _check(em.mean, et.mean, mp, tp, "float64", name + ".mean")
    finally:
        TD.Distribution.set_default_validate_args(True)


# --------------------------------------------------------------- moments, cdf, icdf

STAT_CASES = [
    ("Uniform", lambda lib, p: lib.Uniform(p[0], p[0] + p[1]), [_nrm(3), _pos(3)], ["mode"]),
    ("Laplace", lambda lib, p: lib.Laplace(p[0], p[1]), [_nrm(3), _pos(3)],
     ["mode", "cdf", "icdf"]),
    ("Exponential", lambda lib, p: lib.Exponential(p[0]), [_pos(3)], ["mode", "icdf"]),
    ("LogNormal", lambda lib, p: lib.LogNormal(p[0], p[1]), [_nrm(3), _pos(3)], ["icdf"]),
    ("Gumbel", lambda lib, p: lib.Gumbel(p[0], p[1]), [_nrm(3), _pos(3)], ["icdf"]),
    ("HalfNormal", lambda lib, p: lib.HalfNormal(p[0]), [_pos(3)], ["mode", "icdf"]),
    ("HalfCauchy", lambda lib, p: lib.HalfCauchy(p[0]), [_pos(3)], ["mode", "icdf"]),
    ("Weibull", lambda lib, p: lib.Weibull(p[0], p[1]), [_pos(3), np.array([0.7, 1.5, 3.0])],
     ["mode", "icdf"]),
    ("Pareto", lambda lib, p: lib.Pareto(p[0], p[1]), [_pos(3), _pos(3) + 1],
     ["icdf", "mean"]),
    ("Gamma", lambda lib, p: lib.Gamma(p[0], p[1]), [_pos(3), _pos(3)], ["cdf"]),
    ("Chi2", lambda lib, p: lib.Chi2(p[0]), [_pos(3)], ["cdf"]),
    ("Beta", lambda lib, p: lib.Beta(p[0], p[1]),
     [np.array([0.5, 0.9, 1.0, 2.0, 3.0]), np.array([0.9, 0.5, 2.0, 3.0, 0.7])], ["mode"]),
    ("Dirichlet", lambda lib, p: lib.Dirichlet(p[0]),
     [np.array([[0.5, 0.9, 0.7], [2.0, 3.0, 1.5], [0.5, 2.0, 3.0]])], ["mode"]),
    ("Geometric", lambda lib, p: lib.Geometric(probs=p[0]), [_u01(3)], ["mode"]),
    ("OneHotCategorical", lambda lib, p: lib.OneHotCategorical(logits=p[0]), [_nrm(2, 4)],
     ["mode", "enumerate_support"]),
    ("Multinomial", lambda lib, p: lib.Multinomial(4, probs=p[0]), [_pos(2, 3)], ["entropy"]),
]  # fmt: skip


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name,build,params,stats", STAT_CASES, ids=[c[0] for c in STAT_CASES])
def test_statistics(name, build, params, stats, dt):
    mp, tp = _tensors(params, dt)
    dm, dt_ = build(MD, mp), build(TD, tp)
    for stat in stats:
        if stat in ("cdf", "icdf"):
            q = _u01(3) if stat == "icdf" else _np(dt_.sample())
            vm = mg.tensor(q, dtype=getattr(mg, dt))
            vt = torch.tensor(q, dtype=getattr(torch, dt))
            m_out, t_out = getattr(dm, stat)(vm), getattr(dt_, stat)(vt)
            if stat == "cdf" and name in ("Gamma", "Chi2"):
                t_out = t_out.detach()  # NOTE: torch has no igamma gradient to the shape
                m_out = m_out.detach()
        elif stat in ("entropy", "enumerate_support"):
            m_out, t_out = getattr(dm, stat)(), getattr(dt_, stat)()
        else:
            m_out, t_out = getattr(dm, stat), getattr(dt_, stat)
        _check(m_out, t_out, mp, tp, dt, f"{name}.{stat}")
    assert dm.has_enumerate_support == dt_.has_enumerate_support


@pytest.mark.parametrize("dt", DTYPES)
def test_log_prob_at_the_boundary(dt):
    # concentration 1: 0 * log(0) counts as 0 (the density is finite at 0)
    mp, tp = _tensors([np.array([1.0, 2.0]), np.array([1.0, 1.0])], dt)
    zero = np.array([0.0, 0.5])
    for build in (lambda lib, p: lib.Gamma(p[0], p[1]), lambda lib, p: lib.Beta(p[1], p[0])):
        dm, dt_ = build(MD, mp), build(TD, tp)
        _check(dm.log_prob(mg.tensor(zero, dtype=getattr(mg, dt))),
               dt_.log_prob(torch.tensor(zero, dtype=getattr(torch, dt))), mp, tp, dt,
               "log_prob at 0")  # fmt: skip


def test_pareto_support():
    dm, dt_ = MD.Pareto(mg.tensor([1.5, 2.0]), 1.0), TD.Pareto(torch.tensor([1.5, 2.0]), 1.0)
    value = np.array([1.7, 1.7])
    np.testing.assert_array_equal(dm.support.check(mg.tensor(value)).numpy(),
                                  dt_.support.check(torch.tensor(value)).numpy())  # fmt: skip


# --------------------------------------------------------------- kl_divergence

KL_CASES = [
    ("Dirichlet", lambda lib, p: lib.Dirichlet(p[0]), [_pos(3, 4)]),
    ("Cauchy", lambda lib, p: lib.Cauchy(p[0], p[1]), [_nrm(3), _pos(3)]),
    ("Binomial", lambda lib, p: lib.Binomial(5, probs=p[0]), [_u01(3)]),
    ("ContinuousBernoulli", lambda lib, p: lib.ContinuousBernoulli(probs=p[0]),
     [np.array([0.2, 0.4995, 0.8])]),
    ("Pareto", lambda lib, p: lib.Pareto(p[0], p[1]), [_pos(3), _pos(3) + 1]),
    ("Transformed", lambda lib, p: lib.TransformedDistribution(
        lib.Normal(p[0], p[1]), [lib.transforms.ExpTransform(), lib.transforms.AffineTransform(1.0, 2.0)]),
     [_nrm(3), _pos(3)]),
    ("LowRankMultivariateNormal", lambda lib, p: lib.LowRankMultivariateNormal(p[0], p[1], p[2]),
     [_nrm(3, 2), _nrm(2, 1), _pos(2)]),
]  # fmt: skip


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name,build,params", KL_CASES, ids=[c[0] for c in KL_CASES])
def test_kl_same_family(name, build, params, dt):
    other = [a * 1.3 + 0.05 if name != "ContinuousBernoulli" else a[::-1].copy() for a in params]
    mp, tp = _tensors(params + other, dt)
    n = len(params)
    km = MD.kl_divergence(build(MD, mp[:n]), build(MD, mp[n:]))
    kt = TD.kl_divergence(build(TD, tp[:n]), build(TD, tp[n:]))
    _check(km, kt, mp, tp, dt, name)


@pytest.mark.parametrize("dt", DTYPES)
def test_kl_multivariate_normal_low_rank(dt):
    mp, tp = _tensors([_nrm(3, 2), _spd(2), _nrm(2), _nrm(2, 1), _pos(2)], dt)

    def mvn(lib, p):
        return lib.MultivariateNormal(p[0], covariance_matrix=p[1])

    def lowrank(lib, p):
        return lib.LowRankMultivariateNormal(p[2], p[3], p[4])

    for f, g in ((mvn, lowrank), (lowrank, mvn)):
        km = MD.kl_divergence(f(MD, mp), g(MD, mp))
        kt = TD.kl_divergence(f(TD, tp), g(TD, tp))
        _check(km, kt, mp, tp, dt, f"{f.__name__}||{g.__name__}")


def test_kl_binomial_needs_fewer_trials_in_q():
    p, q = MD.Binomial(3, probs=mg.tensor([0.5])), MD.Binomial(5, probs=mg.tensor([0.5]))
    with pytest.raises(NotImplementedError, match="total_count"):
        MD.kl_divergence(p, q)


def test_kl_transformed_needs_equal_transforms():
    base = MD.Normal(mg.zeros(2), 1.0)
    p = MD.TransformedDistribution(base, [MD.transforms.AffineTransform(0.0, 2.0)])
    q = MD.TransformedDistribution(base, [MD.transforms.AffineTransform(0.0, 3.0)])
    with pytest.raises(NotImplementedError):
        MD.kl_divergence(p, q)


@pytest.mark.parametrize("build", [
    lambda tr: tr.ExpTransform(), lambda tr: tr.SigmoidTransform(), lambda tr: tr.TanhTransform(),
    lambda tr: tr.SoftplusTransform(), lambda tr: tr.AffineTransform(1.0, 2.0),
    lambda tr: tr.PowerTransform(2.0),
    lambda tr: tr.ComposeTransform([tr.AffineTransform(0.0, 2.0), tr.ExpTransform()]),
])  # fmt: skip
def test_transform_equality(build):
    assert (build(MD.transforms) == build(MD.transforms)) == (
        build(TD.transforms) == build(TD.transforms)
    )
    assert MD.transforms.AffineTransform(1.0, 2.0) != MD.transforms.AffineTransform(1.0, 3.0)


# --------------------------------------------------------------- validate_args

VALIDATE_CASES = [
    ("Normal", lambda lib, t: lib.Normal(t([0.0]), t([-1.0])), None),
    ("Exponential", lambda lib, t: lib.Exponential(t([1.0])), lambda d, t: d.log_prob(t([-0.5]))),
    ("Gamma", lambda lib, t: lib.Gamma(t([-1.0]), t([1.0])), None),
    ("Chi2", lambda lib, t: lib.Chi2(t([-1.0])), None),
    ("Beta", lambda lib, t: lib.Beta(t([1.0]), t([2.0])), lambda d, t: d.log_prob(t([1.5]))),
    ("Uniform", lambda lib, t: lib.Uniform(t([0.0]), t([1.0])), lambda d, t: d.cdf(t([1.5]))),
    ("UniformOrder", lambda lib, t: lib.Uniform(t([1.0]), t([0.0])), None),
    ("Bernoulli", lambda lib, t: lib.Bernoulli(t([1.3])), None),
    ("BernoulliValue", lambda lib, t: lib.Bernoulli(t([0.3])), lambda d, t: d.log_prob(t([0.5]))),
    ("Binomial", lambda lib, t: lib.Binomial(t([5.5]), t([0.3])), None),
    ("Categorical", lambda lib, t: lib.Categorical(t([0.3, 0.7])), lambda d, t: d.log_prob(t(2.0))),
    ("OneHot", lambda lib, t: lib.OneHotCategorical(t([-0.3, 0.7])), None),
    ("Dirichlet", lambda lib, t: lib.Dirichlet(t([1.0, 2.0])),
     lambda d, t: d.log_prob(t([0.2, 0.3, 0.5]))),
    ("NormalShape", lambda lib, t: lib.Normal(t([0.0, 1.0]), t([1.0, 2.0])),
     lambda d, t: d.log_prob(t([0.2, 0.3, 0.5]))),
    ("MVNTril", lambda lib, t: lib.MultivariateNormal(t([0.0, 0.0]), scale_tril=t([[1.0, 1.0],
                                                                                [0.0, 1.0]])),
     None),
    ("Poisson", lambda lib, t: lib.Poisson(t([1.0])), lambda d, t: d.log_prob(t([2.5]))),
    ("Transformed", lambda lib, t: lib.TransformedDistribution(
        lib.Normal(t([0.0]), t([1.0])), [lib.transforms.ExpTransform()]),
     lambda d, t: d.log_prob(t([-0.2]))),
    ("Mixture", lambda lib, t: lib.MixtureSameFamily(lib.Categorical(t([0.3, 0.7])),
                                                 lib.Exponential(t([1.0, 2.0]))),
     lambda d, t: d.log_prob(t([-0.2]))),
]  # fmt: skip


@pytest.mark.parametrize("name,build,use", VALIDATE_CASES, ids=[c[0] for c in VALIDATE_CASES])
def test_validate_args(name, build, use):
    def run(lib, tensors, validate):
        def t(x):
            return tensors.tensor(np.asarray(x, dtype=np.float64))

        before = lib.Distribution._validate_args
        lib.Distribution.set_default_validate_args(validate)
        try:
            d = build(lib, t)
            return use(d, t) if use is not None else d
        finally:
            lib.Distribution.set_default_validate_args(before)

    with pytest.raises(ValueError):
        run(TD, torch, True)
    with pytest.raises(ValueError):
        run(MD, mg, True)
    if use is None:
        run(MD, mg, False)  # turned off: the parameters are not checked


def test_validate_args_keyword_and_message():
    with pytest.raises(ValueError, match=r"Expected parameter scale .* GreaterThan"):
        MD.Normal(mg.tensor([0.0]), mg.tensor([-1.0]), validate_args=True)
    d = MD.Exponential(mg.tensor([1.0]), validate_args=True)
    with pytest.raises(ValueError, match="within the support"):
        d.log_prob(mg.tensor([-1.0]))
    # valid parameters and values pass, with the same numbers as without checks
    lp = d.log_prob(mg.tensor([0.5]))
    np.testing.assert_allclose(lp.numpy(), TD.Exponential(torch.tensor([1.0])).log_prob(
        torch.tensor([0.5])).numpy())  # fmt: skip


@pytest.mark.parametrize("args", [(0.0, 1.0), (np.zeros((2, 3)), 1.0), (np.zeros(1), 1.0)])
def test_repr(args):
    def make(lib, tensors):
        loc = tensors.tensor(args[0]) if isinstance(args[0], np.ndarray) else args[0]
        return lib.Normal(loc, args[1])

    assert repr(make(MD, mg)).replace("manygrad", "torch") == repr(make(TD, torch))
