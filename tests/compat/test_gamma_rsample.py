"""Reparameterized gamma draws (implicit gradients): dx/dα against PyTorch's
_standard_gamma_grad and against the implicit equation P(α, x) = const, and the gradients
of Gamma, Beta, Dirichlet, StudentT and FisherSnedecor samples against the derivatives of
their means (Monte Carlo), on every device."""

import numpy as np
import pytest

import manygrad as mg
import manygrad.distributions as D
from manygrad.distributions._draws import _standard_gamma_grad

torch = pytest.importorskip("torch")


def test_dx_dalpha_matches_pytorch_and_the_implicit_equation():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.05, 50, 300)
    x = np.array([rng.gamma(v) for v in a]) + 1e-12
    got = _standard_gamma_grad(np, a, x)
    want = torch._standard_gamma_grad(torch.tensor(a), torch.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-8)  # PyTorch's are fits
    h = 1e-8  # NOTE: small: P is strongly curved in x where x is tiny
    p0 = mg.special.gammainc(mg.tensor(a), mg.tensor(x)).numpy()
    p1 = mg.special.gammainc(mg.tensor(a + h), mg.tensor(x + h * got)).numpy()
    np.testing.assert_allclose((p1 - p0) / h, 0, atol=1e-4)


def _mc_grad(make, param, n=40000):
    mg.manual_seed(0)
    d = make(param)
    d.rsample((n,)).mean(0).sum().backward()
    return param.grad.cpu().numpy()


@pytest.mark.parametrize("case", ["gamma", "beta", "dirichlet", "student_t", "chi2"])
def test_sample_gradients_are_the_derivatives_of_the_means(case, device):
    if case == "gamma":
        p = mg.tensor([0.7, 3.0], dtype=mg.float64, device=device, requires_grad=True)
        got = _mc_grad(lambda c: D.Gamma(c, mg.tensor(2.0, dtype=mg.float64, device=device)), p)
        want = np.array([0.5, 0.5])  # d/dc (c / rate)
    elif case == "chi2":
        p = mg.tensor([1.5, 4.0], dtype=mg.float64, device=device, requires_grad=True)
        got = _mc_grad(lambda df: D.Chi2(df), p)
        want = np.array([1.0, 1.0])  # d/ddf (df)
    elif case == "beta":
        p = mg.tensor([2.0], dtype=mg.float64, device=device, requires_grad=True)
        got = _mc_grad(lambda a: D.Beta(a, mg.tensor(3.0, dtype=mg.float64, device=device)), p)
        want = np.array([3.0 / 25.0])  # d/da a / (a + 3) at a = 2
    elif case == "dirichlet":
        p = mg.tensor([1.0, 2.0, 3.0], dtype=mg.float64, device=device, requires_grad=True)
        mg.manual_seed(0)
        (D.Dirichlet(p).rsample((40000,)).mean(0)[0]).backward()
        got, s = p.grad.cpu().numpy(), 6.0
        want = np.array([(s - 1.0) / s**2, -1.0 / s**2, -1.0 / s**2])  # d/dc_k (c_0 / Σc)
    else:
        p = mg.tensor([0.5], dtype=mg.float64, device=device, requires_grad=True)
        got = _mc_grad(lambda loc: D.StudentT(mg.tensor(5.0, dtype=mg.float64, device=device),
                                               loc, 2.0), p)  # fmt: skip
        want = np.array([1.0])
    np.testing.assert_allclose(got, want, atol=0.03)


def test_has_rsample_like_pytorch():
    for name, args in [("Gamma", (1.0, 1.0)), ("Beta", (1.0, 1.0)), ("Chi2", (2.0,)),
                       ("StudentT", (3.0,)), ("FisherSnedecor", (3.0, 5.0)),
                       ("InverseGamma", (2.0, 1.0))]:  # fmt: skip
        m = getattr(D, name)(*(mg.tensor(a) for a in args))
        t = getattr(torch.distributions, name)(*(torch.tensor(a) for a in args))
        assert m.has_rsample == t.has_rsample, name
    assert (
        D.Dirichlet(mg.ones(3)).has_rsample
        == torch.distributions.Dirichlet(torch.ones(3)).has_rsample
    )


def test_wishart_rsample_gradients(device):
    s = np.array([[2.0, 0.5], [0.5, 1.0]])
    df = mg.tensor(5.0, dtype=mg.float64, device=device, requires_grad=True)
    tril = mg.tensor(np.linalg.cholesky(s), device=device, requires_grad=True)
    mg.manual_seed(0)
    w = D.Wishart(df, scale_tril=tril)
    assert (
        w.has_rsample
        == torch.distributions.Wishart(
            torch.tensor(5.0), covariance_matrix=torch.tensor(s)
        ).has_rsample
    )
    w.rsample((40000,)).mean(0).sum().backward()
    # E[W] = df L Lᵀ: d/ddf of its sum is the sum of L Lᵀ, d/dL is 2 df (1 1ᵀ) L
    np.testing.assert_allclose(df.grad.cpu().numpy(), s.sum(), rtol=0.02)
    want = 2 * 5.0 * np.ones((2, 2)) @ np.linalg.cholesky(s)
    np.testing.assert_allclose(tril.grad.cpu().numpy(), want, rtol=0.03, atol=0.1)
