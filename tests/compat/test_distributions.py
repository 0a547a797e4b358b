"""mg.distributions against torch.distributions: values and gradients to the parameters."""

import numpy as np
import pytest
import torch
import torch.distributions as TD

import manygrad as mg
import manygrad.distributions as MD

R = np.random.default_rng(0)


def _arr(*shape, positive=False, low=None):
    a = R.standard_normal(shape)
    if positive:
        a = np.abs(a) + 0.5
    return a.astype(np.float64)


def _spd(n, batch=()):
    a = R.standard_normal((*batch, n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


# name, builder(lib, params) -> distribution, params (arrays), a value (array)
CASES = [
    ("normal", lambda d, p: d.Normal(p[0], p[1]), [_arr(3, 2), _arr(3, 2, positive=True)],
     _arr(4, 3, 2)),
    ("normal_scalar_scale", lambda d, p: d.Normal(p[0], 0.7), [_arr(5)], _arr(5)),
    ("uniform", lambda d, p: d.Uniform(p[0], p[0] + p[1]), [_arr(4), _arr(4, positive=True)],
     None),
    ("categorical_logits", lambda d, p: d.Categorical(logits=p[0]), [_arr(3, 5)],
     np.array([[0, 4, 2], [1, 1, 3]])),
    ("categorical_probs", lambda d, p: d.Categorical(probs=p[0]),
     [_arr(2, 4, positive=True)], np.array([3, 0])),
    ("bernoulli_logits", lambda d, p: d.Bernoulli(logits=p[0]), [_arr(6)],
     (R.random(6) > 0.5).astype(np.float64)),
    ("bernoulli_probs", lambda d, p: d.Bernoulli(probs=p[0]),
     [R.uniform(0.1, 0.9, (2, 3))], (R.random((2, 3)) > 0.5).astype(np.float64)),
    ("mvn_cov", lambda d, p: d.MultivariateNormal(p[0], covariance_matrix=p[1]),
     [_arr(2, 3), _spd(3)], _arr(4, 2, 3)),
    ("mvn_tril", lambda d, p: d.MultivariateNormal(p[0], scale_tril=p[1]),
     [_arr(3), np.tril(_spd(3))], _arr(5, 3)),
    ("mvn_precision", lambda d, p: d.MultivariateNormal(p[0], precision_matrix=p[1]),
     [_arr(3), _spd(3)], _arr(3)),
    ("independent_normal", lambda d, p: d.Independent(d.Normal(p[0], p[1]), 1),
     [_arr(3, 4), _arr(3, 4, positive=True)], _arr(2, 3, 4)),
    ("laplace", lambda d, p: d.Laplace(p[0], p[1]), [_arr(3), _arr(3, positive=True)],
     _arr(3)),
    ("exponential", lambda d, p: d.Exponential(p[0]), [_arr(4, positive=True)],
     np.abs(_arr(4))),
]  # fmt: skip


def _both(build, params):
    mp = [mg.tensor(a, requires_grad=True) for a in params]
    tp = [torch.tensor(a, requires_grad=True) for a in params]
    return build(MD, mp), mp, build(TD, tp), tp


def _check(m_out, t_out, mp, tp, what):
    np.testing.assert_allclose(m_out.detach().numpy(), t_out.detach().numpy(), rtol=1e-6,
                               atol=1e-8, err_msg=what)  # fmt: skip
    assert m_out.requires_grad == t_out.requires_grad, what
    if not t_out.requires_grad:
        return
    w = R.standard_normal(tuple(t_out.shape))
    gm = mg.autograd.grad((m_out * mg.tensor(w)).sum(), mp, retain_graph=True, allow_unused=True)
    gt = torch.autograd.grad(
        (t_out * torch.tensor(w)).sum(), tp, retain_graph=True, allow_unused=True
    )
    for a, b in zip(gm, gt):
        if b is None:
            assert a is None or not a.numpy().any(), what
        else:
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-8, err_msg=what)


@pytest.mark.parametrize("name,build,params,value", CASES, ids=[c[0] for c in CASES])
def test_matches_torch(name, build, params, value):
    md, mp, td, tp = _both(build, params)
    assert tuple(md.batch_shape) == tuple(td.batch_shape)
    assert tuple(md.event_shape) == tuple(td.event_shape)
    if value is None:  # inside the support of every member
        value = td.sample((2,)).numpy()
    _check(md.log_prob(mg.tensor(value)), td.log_prob(torch.tensor(value)), mp, tp, "log_prob")
    _check(md.entropy(), td.entropy(), mp, tp, "entropy")
    if not name.startswith("categorical"):
        _check(md.mean, td.mean, mp, tp, "mean")
        _check(md.variance, td.variance, mp, tp, "variance")
    s = md.sample((7,))
    assert tuple(s.shape) == tuple(td.sample((7,)).shape)
    assert not s.requires_grad


@pytest.mark.parametrize("name,build,params,other", [
    ("normal", lambda d, p: d.Normal(p[0], p[1]), [_arr(3), _arr(3, positive=True)],
     [_arr(3), _arr(3, positive=True)]),
    ("categorical", lambda d, p: d.Categorical(logits=p[0]), [_arr(2, 4)], [_arr(2, 4)]),
    ("bernoulli", lambda d, p: d.Bernoulli(logits=p[0]), [_arr(5)], [_arr(5)]),
    ("uniform", lambda d, p: d.Uniform(p[0], p[0] + p[1]), [_arr(3), _arr(3, positive=True)],
     [_arr(3) - 5, _arr(3, positive=True) + 10]),
    ("mvn", lambda d, p: d.MultivariateNormal(p[0], covariance_matrix=p[1]),
     [_arr(2, 3), _spd(3, (2,))], [_arr(3), _spd(3)]),
    ("independent", lambda d, p: d.Independent(d.Normal(p[0], p[1]), 1),
     [_arr(2, 3), _arr(2, 3, positive=True)], [_arr(2, 3), _arr(2, 3, positive=True)]),
    ("laplace", lambda d, p: d.Laplace(p[0], p[1]), [_arr(3), _arr(3, positive=True)],
     [_arr(3), _arr(3, positive=True)]),
])  # fmt: skip
def test_kl_matches_torch(name, build, params, other):
    md, mp, td, tp = _both(build, params)
    mq, mqp, tq, tqp = _both(build, other)
    _check(MD.kl_divergence(md, mq), TD.kl_divergence(td, tq), mp + mqp, tp + tqp, "kl")


def test_rsample_is_differentiable_and_samples_have_the_right_moments():
    mg.manual_seed(0)
    loc = mg.tensor([1.0, -2.0], requires_grad=True)
    scale = mg.tensor([0.5, 2.0], requires_grad=True)
    x = MD.Normal(loc, scale).rsample((20000,))
    x.mean().backward()
    np.testing.assert_allclose(loc.grad.numpy(), [0.5, 0.5], rtol=1e-3)
    m = x.detach().numpy()
    np.testing.assert_allclose(m.mean(0), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(m.std(0), [0.5, 2.0], rtol=0.03)
    probs = mg.tensor([0.1, 0.6, 0.3])
    counts = np.bincount(MD.Categorical(probs).sample((20000,)).numpy(), minlength=3)
    np.testing.assert_allclose(counts / 20000, [0.1, 0.6, 0.3], atol=0.015)
    cov = np.array([[2.0, 0.6], [0.6, 1.0]])
    s = MD.MultivariateNormal(mg.zeros(2, dtype=mg.float64), covariance_matrix=mg.tensor(cov))
    s = s.sample((20000,))
    np.testing.assert_allclose(np.cov(s.numpy().T), cov, atol=0.08)
    b = MD.Bernoulli(probs=mg.tensor([0.2, 0.9])).sample((20000,)).numpy()
    np.testing.assert_allclose(b.mean(0), [0.2, 0.9], atol=0.015)


def test_bad_arguments():
    # NOTE: PyTorch's messages; a matrix that is not positive definite fails the check of
    # covariance_matrix (with validation off, its Cholesky factorization fails)
    with pytest.raises(ValueError, match="`probs` or `logits` must be specified, but not both"):
        MD.Categorical()
    with pytest.raises(ValueError, match="Exactly one of covariance_matrix"):
        MD.MultivariateNormal(mg.zeros(2))
    with pytest.raises(ValueError, match="constraint PositiveDefinite"):
        MD.MultivariateNormal(mg.zeros(2), covariance_matrix=-mg.eye(2))
    with pytest.raises(ValueError, match="not positive definite"):
        MD.MultivariateNormal(mg.zeros(2), covariance_matrix=-mg.eye(2), validate_args=False)
    with pytest.raises(NotImplementedError, match="no closed form for Normal || Categorical"):
        MD.kl_divergence(MD.Normal(0.0, 1.0), MD.Categorical(logits=mg.zeros(3)))
    with pytest.raises(ValueError, match="reinterpreted_batch_ndims"):
        MD.Independent(MD.Normal(mg.zeros(3), 1.0), 2)
