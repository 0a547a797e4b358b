# ruff: noqa: N803  (lambda arguments named after the modules they stand for)
"""MixtureSameFamily, Binomial, Multinomial, the relaxed (Gumbel-softmax) families, StudentT,
Dirichlet, Kumaraswamy and LowRankMultivariateNormal against torch.distributions:
log_prob, entropy, moments (with gradients to the parameters), sample shapes and, for the
reparameterized ones, sample statistics."""

import numpy as np
import pytest

import manygrad as mg
import manygrad.distributions as D

torch = pytest.importorskip("torch")
TD = torch.distributions

RNG = np.random.default_rng(0)


def _t(lib, a, grad=False):
    t = lib.tensor(np.asarray(a, dtype=np.float64))
    return t.requires_grad_() if grad else t


def _np(t):
    return t.detach().numpy()


W = RNG.standard_normal((2, 3))
MU, SIG = RNG.standard_normal((2, 3)), RNG.uniform(0.5, 1.5, (2, 3))
P = RNG.uniform(0.1, 0.9, (2, 3))
LOGITS = RNG.standard_normal((2, 4))
CONC = RNG.uniform(0.5, 3.0, (2, 4))
DF = RNG.uniform(1.5, 6.0, (2, 3))
A, B = RNG.uniform(0.5, 3.0, 3), RNG.uniform(0.5, 3.0, 3)
LOC4, FAC, DIAG = RNG.standard_normal(4), RNG.standard_normal((2, 4, 2)), RNG.uniform(0.5, 2, 4)

# name, params, builder(lib, T, *params), values for log_prob, stats to compare
CASES = [
    ("mixture", [W, MU, SIG],
     lambda lib, T, w, m, s: T.MixtureSameFamily(T.Categorical(logits=w), T.Normal(m, s)),
     RNG.standard_normal((5, 2)), ["mean", "variance"]),
    ("mixture of vectors", [W, MU, SIG],
     lambda lib, T, w, m, s: T.MixtureSameFamily(
         T.Categorical(logits=w), T.Independent(T.Normal(m.unsqueeze(-1).expand(2, 3, 2),
                                                         s.unsqueeze(-1).expand(2, 3, 2)), 1)),
     RNG.standard_normal((5, 2, 2)), ["mean", "variance"]),
    ("binomial probs", [P], lambda lib, T, p: T.Binomial(total_count=5, probs=p),
     np.array([[0.0, 2, 5], [1, 3, 4]]), ["mean", "variance", "mode", "entropy"]),
    ("binomial logits", [W], lambda lib, T, w: T.Binomial(total_count=_t(lib, [[3.0, 4, 5]]),
                                                          logits=w),
     np.array([[0.0, 2, 5], [1, 3, 4]]), ["mean", "variance"]),
    ("multinomial", [LOGITS], lambda lib, T, lg: T.Multinomial(6, logits=lg),
     np.array([[1.0, 2, 0, 3], [6, 0, 0, 0]]), ["mean", "variance"]),
    ("relaxed bernoulli", [P], lambda lib, T, p: T.RelaxedBernoulli(_t(lib, 0.7), probs=p),
     RNG.uniform(0.05, 0.95, (2, 3)), []),
    ("logit relaxed bernoulli", [W],
     lambda lib, T, w: (T.LogitRelaxedBernoulli if T is D else
                        TD.relaxed_bernoulli.LogitRelaxedBernoulli)(_t(lib, 0.4), logits=w),
     RNG.standard_normal((2, 3)), []),
    ("relaxed one-hot", [LOGITS],
     lambda lib, T, lg: T.RelaxedOneHotCategorical(_t(lib, 0.6), logits=lg),
     RNG.dirichlet(np.ones(4), 2), []),
    ("student t", [DF, MU, SIG], lambda lib, T, df, m, s: T.StudentT(df, m, s),
     RNG.standard_normal((2, 3)), ["mean", "variance", "entropy"]),
    ("dirichlet", [CONC], lambda lib, T, c: T.Dirichlet(c), RNG.dirichlet(np.ones(4), 2),
     ["mean", "variance", "entropy"]),
    ("kumaraswamy", [A, B], lambda lib, T, a, b: T.Kumaraswamy(a, b),
     RNG.uniform(0.05, 0.95, 3), ["mean", "variance", "entropy"]),
    ("low rank mvn", [LOC4, FAC, DIAG],
     lambda lib, T, loc, f, d: T.LowRankMultivariateNormal(loc, f, d),
     RNG.standard_normal((3, 2, 4)), ["mean", "variance", "entropy", "covariance_matrix"]),
]  # fmt: skip


@pytest.mark.parametrize("name,params,build,values,stats", CASES, ids=[c[0] for c in CASES])
def test_log_prob_moments_and_gradients_equal_pytorchs(name, params, build, values, stats):
    pm = [_t(mg, p, True) for p in params]
    pt = [_t(torch, p, True) for p in params]
    dm, dt = build(mg, D, *pm), build(torch, TD, *pt)
    assert tuple(dm.batch_shape) == tuple(dt.batch_shape)
    assert tuple(dm.event_shape) == tuple(dt.event_shape)
    lm, lt = dm.log_prob(_t(mg, values)), dt.log_prob(_t(torch, values))
    np.testing.assert_allclose(_np(lm), _np(lt), rtol=1e-9, atol=1e-10)
    total_m, total_t = lm.sum(), lt.sum()
    for s in stats:
        vm, vt = getattr(dm, s), getattr(dt, s)
        vm, vt = (vm() if callable(vm) else vm), (vt() if callable(vt) else vt)
        np.testing.assert_allclose(_np(vm), _np(vt), rtol=1e-9, atol=1e-10, err_msg=s)
        if vt.requires_grad:
            total_m, total_t = total_m + vm.sum(), total_t + vt.sum()
    total_m.backward()
    total_t.backward()
    for a, b in zip(pm, pt):
        if b.grad is not None:
            np.testing.assert_allclose(_np(a.grad), _np(b.grad), rtol=1e-8, atol=1e-10)
    for shape in ((), (5,)):
        assert tuple(dm.sample(shape).shape) == tuple(dt.sample(shape).shape)
    assert dm.has_rsample == dt.has_rsample or name in ("student t", "dirichlet")


def test_samples_follow_the_distributions():
    mg.manual_seed(0)
    n = 20000
    b = D.Binomial(7, probs=mg.tensor([0.2, 0.6], dtype=mg.float64)).sample((n,))
    np.testing.assert_allclose(b.mean(0).numpy(), [1.4, 4.2], atol=0.05)
    m = D.Multinomial(10, probs=mg.tensor([0.1, 0.3, 0.6], dtype=mg.float64)).sample((n,))
    assert bool((m.sum(-1) == 10).all())
    np.testing.assert_allclose(m.mean(0).numpy(), [1.0, 3.0, 6.0], atol=0.05)
    t = D.StudentT(mg.tensor(5.0, dtype=mg.float64), 1.0, 2.0).sample((n,))
    np.testing.assert_allclose(float(t.mean()), 1.0, atol=0.06)
    np.testing.assert_allclose(float(t.var()), 4 * 5 / 3, rtol=0.08)
    d = D.Dirichlet(mg.tensor([1.0, 2.0, 5.0], dtype=mg.float64)).sample((n,))
    np.testing.assert_allclose(d.mean(0).numpy(), [0.125, 0.25, 0.625], atol=0.01)
    mix = D.MixtureSameFamily(D.Categorical(probs=mg.tensor([0.3, 0.7], dtype=mg.float64)),
                              D.Normal(mg.tensor([-5.0, 5.0], dtype=mg.float64), 0.1))  # fmt: skip
    s = mix.sample((n,))
    np.testing.assert_allclose(float((s > 0).to(mg.float64).mean()), 0.7, atol=0.02)
    k = D.Kumaraswamy(mg.tensor(2.0, dtype=mg.float64), mg.tensor(3.0, dtype=mg.float64))
    np.testing.assert_allclose(float(k.rsample((n,)).mean()), float(k.mean), atol=0.01)
    lr = D.LowRankMultivariateNormal(mg.tensor(LOC4), mg.tensor(FAC[0]), mg.tensor(DIAG))
    x = lr.rsample((n,)).numpy()
    np.testing.assert_allclose(np.cov(x.T), lr.covariance_matrix.numpy(), atol=0.15)


def test_relaxed_samples_are_reparameterized_and_on_the_simplex():
    logits = mg.tensor(LOGITS[0], requires_grad=True)
    d = D.RelaxedOneHotCategorical(mg.tensor(0.5, dtype=mg.float64), logits=logits)
    y = d.rsample((64,))
    np.testing.assert_allclose(y.sum(-1).detach().numpy(), np.ones(64), rtol=1e-12)
    (y[:, 0]).sum().backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0
    p = mg.tensor(0.3, dtype=mg.float64, requires_grad=True)
    z = D.RelaxedBernoulli(mg.tensor(0.2, dtype=mg.float64), probs=p).rsample((4000,))
    assert bool(((z > 0) & (z < 1)).all())
    np.testing.assert_allclose(float((z > 0.5).to(mg.float64).mean()), 0.3, atol=0.03)
    z.sum().backward()
    assert float(p.grad) > 0


def test_mixture_trains_on_the_fake_gpu():
    dev = "fakegpu"
    data = mg.tensor(np.concatenate([RNG.normal(-2, 0.5, 300), RNG.normal(3, 0.5, 700)]),
                     dtype=mg.float32, device=dev)  # fmt: skip
    logits = mg.zeros(2, device=dev, requires_grad=True)
    loc = mg.tensor([-1.0, 1.0], device=dev, requires_grad=True)
    log_scale = mg.zeros(2, device=dev, requires_grad=True)
    opt = mg.optim.Adam([logits, loc, log_scale], lr=0.05)
    for _ in range(300):
        mix = D.MixtureSameFamily(D.Categorical(logits=logits), D.Normal(loc, log_scale.exp()))
        opt.zero_grad()
        (-mix.log_prob(data).mean()).backward()
        opt.step()
    np.testing.assert_allclose(np.sort(loc.detach().cpu().numpy()), [-2, 3], atol=0.15)
    w = mg.softmax(logits, -1).detach().cpu().numpy()
    np.testing.assert_allclose(sorted(w), [0.3, 0.7], atol=0.05)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="Categorical"):
        D.MixtureSameFamily(D.Normal(0.0, 1.0), D.Normal(mg.zeros(2), 1.0))
    with pytest.raises(ValueError, match="does not equal"):
        D.MixtureSameFamily(D.Categorical(logits=mg.zeros(3)), D.Normal(mg.zeros(2), 1.0))
    with pytest.raises(ValueError, match="one-dimensional"):
        D.Dirichlet(mg.tensor(1.0))
    with pytest.raises(ValueError, match="cov_diag"):
        D.LowRankMultivariateNormal(mg.zeros(3), mg.zeros(3, 1), mg.ones(2))
