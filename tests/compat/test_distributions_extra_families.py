# ruff: noqa: N803  (lambda arguments named after the modules they stand for)
"""VonMises, NegativeBinomial, ContinuousBernoulli, FisherSnedecor, GeneralizedPareto,
InverseGamma, LogisticNormal and OneHotCategoricalStraightThrough against
torch.distributions: log_prob, moments, cdf/icdf and entropy with gradients, sample
shapes and sample statistics."""

import math

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


P = np.array([[0.1, 0.3, 0.4995, 0.5, 0.7], [0.9, 0.2, 0.501, 0.45, 0.55]])
KAPPA, LOC = RNG.uniform(0.2, 8.0, (2, 3)), RNG.uniform(-2, 2, (2, 3))
COUNTS, LOGITS = RNG.uniform(0.5, 6.0, (2, 3)), RNG.standard_normal((2, 3))
DF1, DF2 = RNG.uniform(2.5, 9.0, 3), RNG.uniform(4.5, 12.0, 3)
XI = np.array([-0.3, 0.0, 0.2, 0.45])
CONC, RATE = RNG.uniform(2.5, 6.0, 3), RNG.uniform(0.5, 3.0, 3)

# name, params, builder, log_prob values, stats, (rtol on log_prob)
CASES = [
    ("von mises", [LOC, KAPPA], lambda T, mu, k: T.VonMises(mu, k),
     RNG.uniform(-math.pi, math.pi, (2, 3)), ["mean", "variance"], 1e-6),
    ("negative binomial", [COUNTS, LOGITS],
     lambda T, n, lg: T.NegativeBinomial(n, logits=lg),
     RNG.integers(0, 8, (2, 3)).astype(float), ["mean", "variance", "mode"], 1e-10),
    ("negative binomial probs", [COUNTS, RNG.uniform(0.1, 0.9, (2, 3))],
     lambda T, n, p: T.NegativeBinomial(n, probs=p),
     RNG.integers(0, 8, (2, 3)).astype(float), ["mean", "variance"], 1e-10),
    ("continuous bernoulli", [P], lambda T, p: T.ContinuousBernoulli(probs=p),
     RNG.uniform(0.01, 0.99, (2, 5)), ["mean", "variance", "entropy"], 1e-10),
    ("continuous bernoulli logits", [RNG.standard_normal((2, 5))],
     lambda T, lg: T.ContinuousBernoulli(logits=lg),
     RNG.uniform(0.01, 0.99, (2, 5)), ["mean", "variance", "entropy"], 1e-10),
    ("fisher snedecor", [DF1, DF2], lambda T, a, b: T.FisherSnedecor(a, b),
     RNG.uniform(0.1, 4.0, 3), ["mean", "variance", "mode"], 1e-10),
    ("inverse gamma", [CONC, RATE], lambda T, c, r: T.InverseGamma(c, r),
     RNG.uniform(0.1, 3.0, 3), ["mean", "variance", "mode", "entropy"], 1e-9),
    ("logistic normal", [RNG.standard_normal(3), RNG.uniform(0.5, 1.5, 3)],
     lambda T, mu, s: T.LogisticNormal(mu, s), RNG.dirichlet(np.ones(4), 2), [], 1e-10),
]  # fmt: skip


@pytest.mark.parametrize("name,params,build,values,stats,tol", CASES,
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_equal_pytorchs(name, params, build, values, stats, tol):
    pm = [_t(mg, p, True) for p in params]
    pt = [_t(torch, p, True) for p in params]
    dm, dt = build(D, *pm), build(TD, *pt)
    assert tuple(dm.batch_shape) == tuple(dt.batch_shape)
    assert tuple(dm.event_shape) == tuple(dt.event_shape)
    lm, lt = dm.log_prob(_t(mg, values)), dt.log_prob(_t(torch, values))
    np.testing.assert_allclose(_np(lm), _np(lt), rtol=tol, atol=tol)
    total_m, total_t = lm.sum(), lt.sum()
    for s in stats:
        vm, vt = getattr(dm, s), getattr(dt, s)
        vm, vt = (vm() if callable(vm) else vm), (vt() if callable(vt) else vt)
        np.testing.assert_allclose(_np(vm), _np(vt), rtol=max(tol, 1e-10), atol=1e-12,
                                   err_msg=s)  # fmt: skip
        if vt.requires_grad:
            total_m, total_t = total_m + vm.sum(), total_t + vt.sum()
    total_m.backward()
    total_t.backward()
    for a, b in zip(pm, pt):
        if b.grad is not None:
            np.testing.assert_allclose(_np(a.grad), _np(b.grad), rtol=max(tol, 1e-8),
                                       atol=1e-9)  # fmt: skip
    for shape in ((), (4,)):
        assert tuple(dm.sample(shape).shape) == tuple(dt.sample(shape).shape)


def test_cdf_icdf_and_reparameterized_samples():
    p = _t(mg, P[0])
    cb_m, cb_t = D.ContinuousBernoulli(probs=p), TD.ContinuousBernoulli(probs=_t(torch, P[0]))
    u = RNG.uniform(0.01, 0.99, 5)
    np.testing.assert_allclose(_np(cb_m.cdf(_t(mg, u))), _np(cb_t.cdf(_t(torch, u))), rtol=1e-10)
    np.testing.assert_allclose(_np(cb_m.icdf(_t(mg, u))), _np(cb_t.icdf(_t(torch, u))),
                               rtol=1e-10)  # fmt: skip
    # NOTE: float32: PyTorch's GeneralizedPareto compares with a float32 zero and fails on
    # float64 parameters
    f32 = [x.astype(np.float32) for x in (np.zeros(4), np.full(4, 1.5), XI, u[:4])]
    pm = [mg.tensor(x, requires_grad=True) for x in f32[:3]]
    pt = [torch.tensor(x, requires_grad=True) for x in f32[:3]]
    gp_m, gp_t = D.GeneralizedPareto(*pm), TD.GeneralizedPareto(*pt)
    v = np.array([0.3, 1.0, 2.0, 0.7], np.float32)
    for fn in ("icdf", "cdf"):
        np.testing.assert_allclose(_np(getattr(gp_m, fn)(mg.tensor(f32[3]))),
                                   _np(getattr(gp_t, fn)(torch.tensor(f32[3]))), rtol=1e-5)  # fmt: skip
    lm, lt = gp_m.log_prob(mg.tensor(v)), gp_t.log_prob(torch.tensor(v))
    np.testing.assert_allclose(_np(lm), _np(lt), rtol=1e-5)
    for s in ("mean", "variance", "entropy"):
        np.testing.assert_allclose(_np(getattr(gp_m, s)() if s == "entropy" else getattr(gp_m, s)),
                                   _np(getattr(gp_t, s)() if s == "entropy" else getattr(gp_t, s)),
                                   rtol=1e-5)  # fmt: skip
    (lm.sum() + gp_m.rsample((3,)).sum() * 0).backward()
    lt.sum().backward()
    for a, b in zip(pm, pt):
        np.testing.assert_allclose(_np(a.grad), _np(b.grad), rtol=1e-4, atol=1e-6)
    probs = mg.tensor([0.2, 0.3, 0.5], dtype=mg.float64, requires_grad=True)
    st = D.OneHotCategoricalStraightThrough(probs=probs)
    y = st.rsample((6,))
    assert bool((y.detach().sum(-1) == 1).all())
    (y * mg.tensor([1.0, 2.0, 3.0], dtype=mg.float64)).sum().backward()
    pt = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64, requires_grad=True)
    yt = TD.OneHotCategoricalStraightThrough(probs=pt).rsample((6,))
    (yt * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
    # NOTE: the gradient reaches probs through their normalization, as in PyTorch
    np.testing.assert_allclose(probs.grad.numpy(), pt.grad.numpy(), rtol=1e-12)


def test_sample_statistics():
    mg.manual_seed(0)
    n = 20000
    vm = D.VonMises(mg.tensor(1.0, dtype=mg.float64), mg.tensor(4.0, dtype=mg.float64))
    s = vm.sample((n,)).numpy()
    assert s.min() >= -math.pi and s.max() < math.pi
    np.testing.assert_allclose(np.angle(np.exp(1j * s).mean()), 1.0, atol=0.02)
    np.testing.assert_allclose(1 - np.abs(np.exp(1j * s).mean()), float(vm.variance), atol=0.01)
    nb = D.NegativeBinomial(
        mg.tensor(3.0, dtype=mg.float64), probs=mg.tensor(0.4, dtype=mg.float64)
    )
    np.testing.assert_allclose(nb.sample((n,)).numpy().mean(), float(nb.mean), rtol=0.03)
    fs = D.FisherSnedecor(mg.tensor(6.0, dtype=mg.float64), mg.tensor(10.0, dtype=mg.float64))
    np.testing.assert_allclose(fs.sample((n,)).numpy().mean(), float(fs.mean), rtol=0.03)
    cb = D.ContinuousBernoulli(probs=mg.tensor(0.8, dtype=mg.float64))
    np.testing.assert_allclose(cb.rsample((n,)).numpy().mean(), float(cb.mean), atol=0.01)
