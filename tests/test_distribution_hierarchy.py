"""mg.distributions' class hierarchy against torch.distributions': the base classes of every
distribution (MRO), subclass and isinstance relations, register_kl rules on base classes,
the public attributes of instances, the families built as transformed distributions
(base_dist, transforms, and every method's values and gradients), and the exponential
families' natural parameters (Bregman entropy and KL against torch's)."""

import inspect
import warnings

import numpy as np
import pytest
import torch
import torch.distributions as TD
import torch.distributions.kl as tkl

import manygrad as mg
import manygrad.distributions as MD
from manygrad.distributions import kl as mkl

TORCH_CLASSES = sorted(n for n in TD.__all__ if inspect.isclass(getattr(TD, n)))
# NOTE: private mixins (BinaryProbsLogits, _RelaxedParams...) share code between families
# without being part of PyTorch's hierarchy
_MIXINS = {"BinaryProbsLogits"}


def _mro(cls, package):
    return [b.__name__ for b in cls.__mro__ if b.__module__.startswith(package)
            and not b.__name__.startswith("_") and b.__name__ not in _MIXINS]  # fmt: skip


@pytest.mark.parametrize("name", TORCH_CLASSES)
def test_mro_matches_torch(name):
    assert hasattr(MD, name), f"manygrad.distributions has no {name}"
    assert _mro(getattr(MD, name), "manygrad") == _mro(getattr(TD, name), "torch.distributions")


def test_subclass_relations_match_torch():
    """issubclass(A, B) for every pair of classes, as torch."""
    diff = [(a, b) for a in TORCH_CLASSES for b in TORCH_CLASSES
            if issubclass(getattr(MD, a), getattr(MD, b))
            != issubclass(getattr(TD, a), getattr(TD, b))]  # fmt: skip
    assert diff == []


# ---------------------------------------------------------------- instances of the families

F64 = {"manygrad": mg.float64, "torch": torch.float64}


def _tensor(lib, value, dtype="float64", grad=False):
    t = mg if lib is MD else torch
    return t.tensor(np.asarray(value, dtype=np.float64), dtype=getattr(t, dtype),
                    requires_grad=grad)  # fmt: skip


_SPD = [[2.0, 0.3, 0.1], [0.3, 1.5, -0.2], [0.1, -0.2, 1.0]]

# name -> (parameter arrays, build(lib, tensors)); the exponential families, the families
# built as transformed distributions, and Geometric
FAMILIES = {
    "Bernoulli": ([[0.2, 0.5, 0.9]], lambda lib, p: lib.Bernoulli(probs=p[0])),
    "Beta": ([[0.7, 2.0, 3.5], [1.5, 0.6, 2.0]], lambda lib, p: lib.Beta(p[0], p[1])),
    "ContinuousBernoulli": ([[0.2, 0.49999, 0.9]],
                            lambda lib, p: lib.ContinuousBernoulli(probs=p[0])),
    "Dirichlet": ([[[0.7, 2.0, 3.5], [1.5, 0.6, 2.0]]], lambda lib, p: lib.Dirichlet(p[0])),
    "Exponential": ([[0.7, 2.0, 3.5]], lambda lib, p: lib.Exponential(p[0])),
    "Gamma": ([[0.7, 2.0, 3.5], [1.5, 0.6, 2.0]], lambda lib, p: lib.Gamma(p[0], p[1])),
    "Chi2": ([[0.7, 2.0, 3.5]], lambda lib, p: lib.Chi2(p[0])),
    "Normal": ([[0.1, -1.0, 2.0], [1.5, 0.6, 2.0]], lambda lib, p: lib.Normal(p[0], p[1])),
    "Poisson": ([[0.7, 2.0, 3.5]], lambda lib, p: lib.Poisson(p[0])),
    "Wishart": ([5.0, _SPD], lambda lib, p: lib.Wishart(p[0], covariance_matrix=p[1])),
    "Geometric": ([[0.2, 0.5, 0.9]], lambda lib, p: lib.Geometric(probs=p[0])),
    "LogNormal": ([[0.1, -1.0, 2.0], [1.5, 0.6, 2.0]], lambda lib, p: lib.LogNormal(p[0], p[1])),
    "Gumbel": ([[0.1, -1.0, 2.0], [1.5, 0.6, 2.0]], lambda lib, p: lib.Gumbel(p[0], p[1])),
    "HalfNormal": ([[1.5, 0.6, 2.0]], lambda lib, p: lib.HalfNormal(p[0])),
    "HalfCauchy": ([[1.5, 0.6, 2.0]], lambda lib, p: lib.HalfCauchy(p[0])),
    "Weibull": ([[1.5, 0.6, 2.0], [0.7, 1.5, 3.0]], lambda lib, p: lib.Weibull(p[0], p[1])),
    "Pareto": ([[1.5, 0.6, 2.0], [0.7, 2.5, 3.0]], lambda lib, p: lib.Pareto(p[0], p[1])),
}  # fmt: skip
EXP_FAMILIES = ["Bernoulli", "Beta", "ContinuousBernoulli", "Dirichlet", "Exponential",
                "Gamma", "Chi2", "Normal", "Poisson", "Wishart"]  # fmt: skip
TRANSFORMED = ["LogNormal", "Gumbel", "HalfNormal", "HalfCauchy", "Weibull", "Pareto"]


def _build(name, dtype="float64", grad=False, scale=1.0, validate=None):
    """manygrad's and torch's distribution ``name`` (the first parameter times ``scale``),
    and their parameter tensors; ``validate=False`` turns the checks of both off."""
    arrays, build = FAMILIES[name]
    arrays = [np.asarray(a, dtype=np.float64) * (scale if i == 0 else 1.0)
              for i, a in enumerate(arrays)]  # fmt: skip
    mp = [_tensor(MD, a, dtype, grad) for a in arrays]
    tp = [_tensor(TD, a, dtype, grad) for a in arrays]
    dm, dt = build(MD, mp), build(TD, tp)
    for d in (dm, dt):
        while validate is False and d is not None:
            d._validate_args = False  # NOTE: the base distributions' checks too
            d = getattr(d, "base_dist", None)
    return dm, mp, dt, tp


def _np(t):
    return t.detach().numpy()


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_isinstance_and_public_attributes_match_torch(name):
    dm, _, dt, _ = _build(name)
    for base in ("Distribution", "ExponentialFamily", "TransformedDistribution", "Bernoulli",
                 "Gamma", "Normal", "Exponential", "Uniform"):  # fmt: skip
        assert isinstance(dm, getattr(MD, base)) == isinstance(dt, getattr(TD, base)), base
    public = [{a for a in dir(d) if not a.startswith("_")} for d in (dm, dt)]
    assert public[0] == public[1]


def test_geometric_is_not_a_bernoulli():
    d = MD.Geometric(probs=mg.tensor([0.3]))
    assert not isinstance(d, MD.Bernoulli) and not isinstance(d, MD.ExponentialFamily)
    assert isinstance(MD.Chi2(mg.tensor([2.0])), MD.Gamma)
    with pytest.raises(ValueError, match="positive"):
        MD.Geometric(probs=mg.tensor([0.0, 0.5]), validate_args=True)


# ---------------------------------------------------------------- transformed distributions


def _transform_params(t):
    """The class name and parameters of a transform (of its inverse's for ``.inv``)."""
    inner = getattr(t, "_inv", None) if type(t).__name__ == "_InverseTransform" else None
    if inner is not None:
        return ("inv",) + _transform_params(inner)
    params = [getattr(t, k) for k in ("loc", "scale", "exponent") if hasattr(t, k)]
    values = [np.asarray(_np(v) if hasattr(v, "detach") else v, dtype=np.float64)
              for v in params]  # fmt: skip
    return (type(t).__name__, values)


@pytest.mark.parametrize("name", TRANSFORMED)
def test_base_dist_and_transforms_match_torch(name):
    dm, _, dt, _ = _build(name)
    assert type(dm.base_dist).__name__ == type(dt.base_dist).__name__
    assert tuple(dm.base_dist.batch_shape) == tuple(dt.base_dist.batch_shape)
    for k in dt.base_dist.arg_constraints:
        if k in dt.base_dist.__dict__:
            np.testing.assert_allclose(_np(getattr(dm.base_dist, k)),
                                       _np(getattr(dt.base_dist, k)), rtol=1e-15)  # fmt: skip
    assert len(dm.transforms) == len(dt.transforms)
    for a, b in zip(dm.transforms, dt.transforms):
        (na, va), (nb, vb) = _transform_params(a)[-2:], _transform_params(b)[-2:]
        assert _transform_params(a)[:-2] == _transform_params(b)[:-2]
        assert na == nb and len(va) == len(vb)
        for x, y in zip(va, vb):
            np.testing.assert_allclose(x, y, rtol=1e-15)
    for k in dt.arg_constraints:
        np.testing.assert_array_equal(_np(getattr(dm, k)), _np(getattr(dt, k)))
    assert type(dm.support).__name__ == type(dt.support).__name__
    assert set(dm.arg_constraints) == set(dt.arg_constraints)
    assert dm.has_rsample == dt.has_rsample


# values inside the supports and beyond them (torch gives finite log-densities there for
# the families whose log_prob is the transformed distribution's)
_VALUES = {"LogNormal": [0.3, 1.7, 4.0], "Gumbel": [-1.0, 0.4, 3.0],
           "HalfNormal": [0.3, 1.7, 0.0], "HalfCauchy": [0.3, 1.7, 4.0],
           "Weibull": [0.3, 1.7, 4.0], "Pareto": [0.5, 1.7, 4.0]}  # fmt: skip
_PROBS = [0.1, 0.5, 0.93]


def _check(vm, vt, mp, tp, dtype, what):
    assert tuple(vm.shape) == tuple(vt.shape), what
    tol = dict(rtol=1e-9, atol=1e-12) if dtype == "float64" else dict(rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(_np(vm), _np(vt), err_msg=what, **tol)
    if not vt.requires_grad:
        return
    finite = np.isfinite(_np(vt))
    w = np.where(finite, np.random.default_rng(0).standard_normal(finite.shape), 0.0)
    wm, wt = _tensor(MD, w, dtype), _tensor(TD, w, dtype)
    gm = mg.autograd.grad((mg.where(mg.tensor(finite), vm, 0.0) * wm).sum(), mp,
                          allow_unused=True, retain_graph=True)  # fmt: skip
    gt = torch.autograd.grad((torch.where(torch.tensor(finite), vt, 0.0) * wt).sum(), tp,
                             allow_unused=True, retain_graph=True)  # fmt: skip
    for i, (a, b) in enumerate(zip(gm, gt)):
        if b is None:
            assert a is None or not np.abs(_np(a)).max() > 0, f"{what}: grad {i}"
        else:
            np.testing.assert_allclose(_np(a), b.numpy(), err_msg=f"{what}: grad {i}", **tol)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", TRANSFORMED)
def test_transformed_family_methods_match_torch(name, dtype):
    """log_prob, cdf, icdf, entropy and the moments: torch's values and gradients."""
    dm, mp, dt, tp = _build(name, dtype, grad=True, validate=False)
    value, probs = _VALUES[name], _PROBS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NOTE: NaN modes, infinite means
        for method, arg in (("log_prob", value), ("cdf", value), ("icdf", probs)):
            vm = getattr(dm, method)(_tensor(MD, arg, dtype))
            vt = getattr(dt, method)(_tensor(TD, arg, dtype))
            _check(vm, vt, mp, tp, dtype, f"{name}.{method}")
        _check(dm.entropy(), dt.entropy(), mp, tp, dtype, f"{name}.entropy")
        for prop in ("mean", "variance", "stddev", "mode"):
            _check(getattr(dm, prop), getattr(dt, prop), mp, tp, dtype, f"{name}.{prop}")


@pytest.mark.parametrize("name", TRANSFORMED)
def test_transformed_family_expand_matches_torch(name):
    dm, mp, dt, tp = _build(name, grad=True, validate=False)
    em, et = dm.expand((2, 3)), dt.expand((2, 3))
    assert type(em) is type(dm)
    assert tuple(em.batch_shape) == tuple(et.batch_shape) == (2, 3)
    assert tuple(em.base_dist.batch_shape) == tuple(et.base_dist.batch_shape)
    assert tuple(em.rsample((4,)).shape) == tuple(et.rsample((4,)).shape) == (4, 2, 3)
    value = _VALUES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NOTE: Pareto's infinite mean
        _check(em.log_prob(_tensor(MD, value)), et.log_prob(_tensor(TD, value)), mp, tp,
               "float64", f"{name}.expand.log_prob")  # fmt: skip
        _check(em.mean, et.mean, mp, tp, "float64", f"{name}.expand.mean")


@pytest.mark.parametrize("device", ["cpu", "fakegpu"])
@pytest.mark.parametrize("name", TRANSFORMED)
def test_rsample_goes_through_base_dist_and_transforms(name, device):
    """A draw is the base distribution's draw pushed through the transforms, has gradients
    to the parameters, and follows torch's distribution (cdf of the draws near uniform)."""
    arrays, build = FAMILIES[name]
    mp = [mg.tensor(a, dtype=mg.float64, device=device, requires_grad=True) for a in arrays]
    d = build(MD, mp)
    mg.manual_seed(3)
    x = d.rsample((2000,))
    mg.manual_seed(3)
    y = d.base_dist.rsample((2000,))
    for t in d.transforms:
        y = t(y)
    np.testing.assert_array_equal(x.detach().cpu().numpy(), y.detach().cpu().numpy())
    grads = mg.autograd.grad(x.sum(), mp)
    assert all(np.isfinite(g.cpu().numpy()).all() for g in grads)
    dt = build(TD, [torch.tensor(a, dtype=torch.float64) for a in arrays])
    u = np.sort(_np(dt.cdf(torch.tensor(x.detach().cpu().numpy()))), axis=0)
    ks = np.abs(u - (np.arange(1, 2001) / 2000)[:, None]).max()
    assert ks < 0.05, ks


# ---------------------------------------------------------------- exponential families


@pytest.mark.parametrize("name", EXP_FAMILIES)
def test_bregman_entropy_matches_torch(name):
    """ExponentialFamily.entropy (from the natural parameters and the log-normalizer):
    torch's value, or NotImplementedError where torch's family has no carrier measure."""
    dm, _, dt, _ = _build(name)
    try:
        et = TD.ExponentialFamily.entropy(dt)
    except NotImplementedError:
        with pytest.raises(NotImplementedError):
            MD.ExponentialFamily.entropy(dm)
        return
    em = MD.ExponentialFamily.entropy(dm)
    assert tuple(em.shape) == tuple(et.shape)
    np.testing.assert_allclose(_np(em), _np(et), rtol=1e-9, atol=1e-12)
    # the closed form agrees too
    np.testing.assert_allclose(_np(dm.entropy()), _np(et), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", EXP_FAMILIES)
def test_bregman_kl_matches_torch(name):
    """The exponential-family KL (the Bregman divergence of the log-normalizer), called
    directly: torch's values and gradients to q's parameters."""
    pm, _, pt, _ = _build(name)
    qm, qmp, qt, qtp = _build(name, grad=True, scale=1.3 if name != "Bernoulli" else 0.7)
    km = mkl._kl_expfamily_expfamily(pm, qm)
    kt = tkl._kl_expfamily_expfamily(pt, qt)
    _check(km, kt, qmp, qtp, "float64", name)
    if name not in ("ContinuousBernoulli", "Wishart", "Chi2"):
        # NOTE: the same-family closed form (PyTorch's registered rule) gives the same value
        np.testing.assert_allclose(_np(km), _np(MD.kl_divergence(pm, qm)), rtol=1e-9)


def test_wishart_kl_goes_through_the_exponential_family_rule():
    p, _, _, _ = _build("Wishart")
    q, _, _, _ = _build("Wishart", scale=1.2)
    fn = mkl._dispatch_kl(MD.Wishart, MD.Wishart)
    assert fn is mkl._kl_expfamily_expfamily
    np.testing.assert_allclose(_np(MD.kl_divergence(p, q)),
                               _np(TD.kl_divergence(_build("Wishart")[2],
                                                    _build("Wishart", scale=1.2)[2])),
                               rtol=1e-9)  # fmt: skip


# ---------------------------------------------------------------- register_kl on base classes


@pytest.fixture
def scratch_rules():
    """Rules registered by a test, removed from both registries afterwards."""
    made = []

    def register(kl_module, p, q, fn):
        kl_module.register_kl(p, q)(fn)
        made.append((kl_module, p, q))

    yield register
    for kl_module, p, q in made:
        kl_module._KL_REGISTRY.pop((p, q), None)
        kl_module._KL_MEMOIZE.clear()


def _outcome(lib, p, q):
    try:
        r = lib.kl_divergence(p, q)
    except NotImplementedError:
        return "NotImplementedError"
    return r if isinstance(r, str) else "value"


def test_rules_on_base_classes_resolve_as_torch(scratch_rules):
    for lib, kl_module in ((MD, mkl), (TD, tkl)):
        scratch_rules(kl_module, lib.TransformedDistribution, lib.ExponentialFamily,
                      lambda p, q: "transformed-expfamily")  # fmt: skip
        scratch_rules(kl_module, lib.ExponentialFamily, lib.TransformedDistribution,
                      lambda p, q: "expfamily-transformed")  # fmt: skip
    names = sorted(FAMILIES)
    for pn in names:
        for qn in names:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                om = _outcome(MD, _build(pn)[0], _build(qn)[0])
                ot = _outcome(TD, _build(pn)[2], _build(qn)[2])
            assert om == ot, f"{pn} || {qn}: manygrad {om}, torch {ot}"
