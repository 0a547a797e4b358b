"""LogNormal, Gumbel, Cauchy, HalfNormal, HalfCauchy, Weibull, Pareto, Gamma, Chi2, Beta
against torch.distributions: log_prob, cdf, icdf, entropy, moments and their gradients to
the parameters; samples by their moments, on every device."""

import numpy as np
import pytest
import torch
import torch.distributions as TD

import manygrad as mg
import manygrad.distributions as MD
from devicematrix import DEVICES

R = np.random.default_rng(0)
POS = np.array([0.7, 1.5, 3.0])

# name, parameters, a value inside the support, methods to compare
CASES = [
    ("LogNormal", [np.array([0.1, -0.3, 0.5]), POS], POS * 1.3, ["cdf"]),
    ("Gumbel", [np.array([0.1, -0.3, 0.5]), POS], np.array([-0.5, 0.2, 2.0]), ["cdf"]),
    ("Cauchy", [np.array([0.1, -0.3, 0.5]), POS], np.array([-0.5, 0.2, 2.0]), ["cdf", "icdf"]),
    ("HalfNormal", [POS], np.array([0.5, 0.2, 2.0]), ["cdf"]),
    ("HalfCauchy", [POS], np.array([0.5, 0.2, 2.0]), ["cdf"]),
    ("Weibull", [POS, np.array([0.8, 1.5, 2.5])], np.array([0.5, 0.2, 2.0]), ["cdf"]),
    ("Pareto", [np.array([0.5, 0.1, 1.0]), np.array([2.5, 3.5, 4.0])], np.array([0.6, 0.2, 2.0]),
     ["cdf"]),
    ("Gamma", [POS, np.array([0.5, 1.0, 2.0])], np.array([0.5, 0.2, 2.0]), []),
    ("Chi2", [POS * 2], np.array([0.5, 0.2, 2.0]), []),
    ("Beta", [POS, np.array([2.0, 0.8, 1.5])], np.array([0.3, 0.6, 0.9]), []),
]  # fmt: skip
PROPS = ["mean", "variance", "stddev"]


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, mg.Tensor) else t.detach().numpy()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,params,value,extra", CASES, ids=[c[0] for c in CASES])
def test_matches_torch(device, name, params, value, extra):
    mp = [mg.tensor(p, device=device, requires_grad=True) for p in params]
    tp = [torch.tensor(p, requires_grad=True) for p in params]
    md, td = getattr(MD, name)(*mp), getattr(TD, name)(*tp)
    mv, tv = mg.tensor(value, device=device), torch.tensor(value)
    pairs = [(md.log_prob(mv), td.log_prob(tv)), (md.entropy(), td.entropy())]
    pairs += [(getattr(md, p), getattr(td, p)) for p in PROPS]
    for m in extra:
        arg = (mg.tensor([0.2, 0.5, 0.9], device=device), torch.tensor([0.2, 0.5, 0.9])) if (
            m == "icdf") else (mv, tv)  # fmt: skip
        pairs.append((getattr(md, m)(arg[0]), getattr(td, m)(arg[1])))
    for a, b in pairs:
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-6, atol=1e-9)
    finite = [(a, b) for a, b in pairs if np.isfinite(_np(b)).all()]
    sum(a.sum() for a, _ in finite).backward()
    sum(b.sum() for _, b in finite).backward()
    for m, t in zip(mp, tp):
        np.testing.assert_allclose(_np(m.grad), _np(t.grad), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,params,value,extra", CASES, ids=[c[0] for c in CASES])
def test_samples_follow_the_law(device, name, params, value, extra):
    mp = [mg.tensor(p, device=device) for p in params]
    md, td = getattr(MD, name)(*mp), getattr(TD, name)(*[torch.tensor(p) for p in params])
    draw = md.rsample if md.has_rsample else md.sample
    s = _np(draw((40000,)))
    assert s.shape == (40000, 3) and np.isfinite(s).all()
    # NOTE: medians exist for every law here (Cauchy has no mean): compare with the
    # median of PyTorch's own samples, within a seeded sampling tolerance
    torch.manual_seed(0)
    ref = td.sample((40000,)).numpy()
    np.testing.assert_allclose(np.median(s, 0), np.median(ref, 0), rtol=0.05, atol=0.02)
    if md.has_rsample:
        p = [mg.tensor(q, device=device, requires_grad=True) for q in params]
        getattr(MD, name)(*p).rsample((10,)).sum().backward()
        assert all(np.isfinite(_np(q.grad)).all() for q in p)


DISCRETE = [
    ("Poisson", lambda lib, p: lib.Poisson(p[0]), [POS], np.array([0.0, 2.0, 5.0])),
    ("Geometric", lambda lib, p: lib.Geometric(p[0]), [np.array([0.2, 0.5, 0.9])],
     np.array([0.0, 2.0, 5.0])),
    ("Geometric_logits", lambda lib, p: lib.Geometric(logits=p[0]), [np.array([-1.0, 0.3, 2.0])],
     np.array([1.0, 0.0, 3.0])),
]  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,make,params,value", DISCRETE, ids=[c[0] for c in DISCRETE])
def test_discrete_match_torch(device, name, make, params, value):
    mp = [mg.tensor(p, device=device, requires_grad=True) for p in params]
    tp = [torch.tensor(p, requires_grad=True) for p in params]
    md, td = make(MD, mp), make(TD, tp)
    pairs = [(md.log_prob(mg.tensor(value, device=device)), td.log_prob(torch.tensor(value))),
             (md.mean, td.mean), (md.variance, td.variance)]  # fmt: skip
    if name.startswith("Geometric"):
        pairs.append((md.entropy(), td.entropy()))
    for a, b in pairs:
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-6, atol=1e-9)
    sum(a.sum() for a, _ in pairs).backward()
    sum(b.sum() for _, b in pairs).backward()
    np.testing.assert_allclose(_np(mp[0].grad), _np(tp[0].grad), rtol=1e-6, atol=1e-9)
    s = _np(md.sample((40000,)))
    assert (s >= 0).all() and (s == np.round(s)).all()
    np.testing.assert_allclose(s.mean(0), _np(td.mean), rtol=0.05)


KLS = [
    ("Gamma", [POS, np.array([0.5, 1.0, 2.0])], [POS[::-1].copy(), np.array([1.0, 2.0, 0.7])]),
    ("Beta", [POS, np.array([2.0, 0.8, 1.5])], [np.array([1.0, 2.0, 0.7]), POS]),
    ("Chi2", [POS], [POS * 2]),
    ("LogNormal", [np.array([0.1, 0.2, -0.5]), POS], [np.zeros(3), POS[::-1].copy()]),
    ("HalfNormal", [POS], [POS[::-1].copy()]),
    ("Gumbel", [np.array([0.1, 0.2, -0.5]), POS], [np.zeros(3), POS[::-1].copy()]),
    ("Poisson", [POS], [POS[::-1].copy()]),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,pp,qp", KLS, ids=[c[0] for c in KLS])
def test_kl_divergence_matches_torch(device, name, pp, qp):
    mp = [mg.tensor(p, device=device, requires_grad=True) for p in pp]
    tp = [torch.tensor(p, requires_grad=True) for p in pp]
    mq = [mg.tensor(q, device=device) for q in qp]
    tq = [torch.tensor(q) for q in qp]
    a = MD.kl_divergence(getattr(MD, name)(*mp), getattr(MD, name)(*mq))
    b = TD.kl_divergence(getattr(TD, name)(*tp), getattr(TD, name)(*tq))
    np.testing.assert_allclose(_np(a), _np(b), rtol=1e-6, atol=1e-9)
    a.sum().backward()
    b.sum().backward()
    for m, t in zip(mp, tp):
        np.testing.assert_allclose(_np(m.grad), _np(t.grad), rtol=1e-6, atol=1e-9)
