# ruff: noqa: N803  (lambda arguments named after the modules they stand for)
"""distributions.transforms, constraints, biject_to / transform_to and
TransformedDistribution against torch.distributions: values, inverses, log-Jacobians and
log-densities with their gradients."""

import numpy as np
import pytest

import manygrad as mg
import manygrad.distributions as D

torch = pytest.importorskip("torch")
TD = torch.distributions


def _t(lib, a, grad=False):
    t = lib.tensor(np.asarray(a, dtype=np.float64))
    return t.requires_grad_() if grad else t


def _np(t):
    return t.detach().cpu().numpy() if hasattr(t, "cpu") else np.asarray(t)


RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 4))
POS = RNG.uniform(0.2, 2.0, (3, 4))
UNIT = RNG.uniform(0.05, 0.95, (3, 4))

# (name, factory(lib, T) -> transform, input values)
TRANSFORMS = [
    ("exp", lambda lib, T: T.ExpTransform(), X),
    ("sigmoid", lambda lib, T: T.SigmoidTransform(), X),
    ("tanh", lambda lib, T: T.TanhTransform(), X * 0.5),
    ("softplus", lambda lib, T: T.SoftplusTransform(), X),
    ("power", lambda lib, T: T.PowerTransform(2.5), POS),
    ("affine scalars", lambda lib, T: T.AffineTransform(1.5, -2.0), X),
    ("affine tensors", lambda lib, T: T.AffineTransform(_t(lib, X[0]), _t(lib, POS[1])), X),
    ("affine event", lambda lib, T: T.AffineTransform(0.5, _t(lib, POS[0]), event_dim=1), X),
    ("stick breaking", lambda lib, T: T.StickBreakingTransform(), X),
    (
        "compose",
        lambda lib, T: T.ComposeTransform([T.AffineTransform(0.3, 2.0), T.SigmoidTransform()]),
        X,
    ),  # fmt: skip
    ("independent", lambda lib, T: T.IndependentTransform(T.ExpTransform(), 1), X),
    ("reshape", lambda lib, T: T.ReshapeTransform((4,), (2, 2)), X),
    ("inverse", lambda lib, T: T.ExpTransform().inv, POS),
    ("lower cholesky", lambda lib, T: T.LowerCholeskyTransform(), X[:, :3].reshape(1, 3, 3)),
]


@pytest.mark.parametrize("name,make,x", TRANSFORMS, ids=[n for n, _, _ in TRANSFORMS])
def test_transform_values_inverse_and_jacobian(name, make, x):
    tm, tt = make(mg, D), make(torch, TD)
    xm, xt = _t(mg, x, True), _t(torch, x, True)
    ym, yt = tm(xm), tt(xt)
    np.testing.assert_allclose(_np(ym), _np(yt), rtol=1e-10, atol=1e-12)
    # NOTE: PyTorch keeps PowerTransform's exponent as a float32 tensor: its inverse power
    # 1/2.5 is rounded to float32 (a 1e-8 relative difference from the exact inverse)
    np.testing.assert_allclose(_np(tm.inv(ym)), _np(tt.inv(yt)), rtol=1e-7, atol=1e-10)
    assert tm.domain.event_dim == tt.domain.event_dim
    assert tm.codomain.event_dim == tt.codomain.event_dim
    assert tm.bijective == tt.bijective
    assert tuple(tm.forward_shape(x.shape)) == tuple(tt.forward_shape(torch.Size(x.shape)))
    if name == "lower cholesky":
        return  # no log-Jacobian, as in PyTorch
    lm, lt = tm.log_abs_det_jacobian(xm, ym), tt.log_abs_det_jacobian(xt, yt)
    np.testing.assert_allclose(_np(lm), _np(lt), rtol=1e-9, atol=1e-10)
    (lm.sum() + (ym * ym).sum()).backward()
    (lt.sum() + (yt * yt).sum()).backward()
    np.testing.assert_allclose(_np(xm.grad), _np(xt.grad), rtol=1e-8, atol=1e-10)


def test_cached_transform_returns_the_same_tensors():
    t = D.ExpTransform(cache_size=1)
    x = mg.randn(3)
    y = t(x)
    assert t(x) is y and t.inv(y) is x
    with pytest.raises(ValueError, match="cache_size"):
        D.ExpTransform(cache_size=2)


CONSTRAINTS = [
    ("real", lambda C: C.real, [0.0, -3.0, float("nan")]),
    ("positive", lambda C: C.positive, [1.0, 0.0, -1.0]),
    ("nonnegative", lambda C: C.nonnegative, [1.0, 0.0, -1.0]),
    ("unit_interval", lambda C: C.unit_interval, [0.0, 0.5, 1.5]),
    ("interval", lambda C: C.interval(-1.0, 2.0), [-1.0, 2.0, 2.5]),
    ("half_open", lambda C: C.half_open_interval(-1.0, 2.0), [-1.0, 2.0, 0.0]),
    ("greater_than", lambda C: C.greater_than(1.0), [1.0, 1.5, 0.0]),
    ("less_than", lambda C: C.less_than(1.0), [1.0, 0.5, 2.0]),
    ("boolean", lambda C: C.boolean, [0.0, 1.0, 0.5]),
    ("nonnegative_integer", lambda C: C.nonnegative_integer, [0.0, 2.0, 1.5]),
    ("integer_interval", lambda C: C.integer_interval(0, 3), [0.0, 3.0, 4.0]),
    ("simplex", lambda C: C.simplex, [[0.2, 0.8], [0.5, 0.6]]),
    ("real_vector", lambda C: C.real_vector, [[0.2, float("nan")], [0.5, 0.6]]),
    (
        "lower_cholesky",
        lambda C: C.lower_cholesky,
        [[[1.0, 0.0], [2.0, 3.0]], [[1.0, 1.0], [0.0, 1.0]]],
    ),  # fmt: skip
    (
        "positive_definite",
        lambda C: C.positive_definite,
        [[[2.0, 1.0], [1.0, 2.0]], [[1.0, 2.0], [2.0, 1.0]]],
    ),  # fmt: skip
]


@pytest.mark.parametrize("name,make,vals", CONSTRAINTS, ids=[n for n, _, _ in CONSTRAINTS])
def test_constraints_check_as_pytorchs(name, make, vals):
    cm, ct = make(D.constraints), make(TD.constraints)
    got, want = cm.check(_t(mg, vals)), ct.check(_t(torch, vals))
    np.testing.assert_array_equal(_np(got), _np(want))
    assert cm.event_dim == ct.event_dim and cm.is_discrete == ct.is_discrete


@pytest.mark.parametrize("name,make,_", CONSTRAINTS[:8] + CONSTRAINTS[11:13],
                         ids=[n for n, _, _ in CONSTRAINTS[:8] + CONSTRAINTS[11:13]])  # fmt: skip
def test_biject_to_and_transform_to_land_in_the_constraint(name, make, _):
    for reg_m, reg_t in ((D.biject_to, TD.biject_to), (D.transform_to, TD.transform_to)):
        cm, ct = make(D.constraints), make(TD.constraints)
        x = X[:, :3] if cm.event_dim else X
        ym, yt = reg_m(cm)(_t(mg, x)), reg_t(ct)(_t(torch, x))
        np.testing.assert_allclose(_np(ym), _np(yt), rtol=1e-10, atol=1e-12)
        assert bool(cm.check(ym).all())


def test_transformed_distributions_equal_pytorchs():
    loc, scale = RNG.standard_normal(4), RNG.uniform(0.5, 1.5, 4)
    cases = [
        (
            lambda lib, T: T.TransformedDistribution(
                T.Normal(_t(lib, loc), _t(lib, scale)), [T.ExpTransform()]
            ),
            POS,
        ),  # fmt: skip
        (
            lambda lib, T: T.TransformedDistribution(
                T.Normal(_t(lib, loc), _t(lib, scale)),
                [T.AffineTransform(0.5, 2.0), T.SigmoidTransform()],
            ),
            UNIT,
        ),  # fmt: skip
        (
            lambda lib, T: T.TransformedDistribution(
                T.Normal(0.0, 1.0), T.AffineTransform(_t(lib, loc), _t(lib, scale))
            ),
            X,
        ),  # fmt: skip
        (
            lambda lib, T: T.TransformedDistribution(
                T.Independent(T.Normal(_t(lib, loc[:3]), _t(lib, scale[:3])), 1),
                [T.StickBreakingTransform()],
            ),
            np.array([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]]),
        ),  # fmt: skip
    ]
    for make, value in cases:
        dm, dt = make(mg, D), make(torch, TD)
        assert tuple(dm.batch_shape) == tuple(dt.batch_shape)
        assert tuple(dm.event_shape) == tuple(dt.event_shape)
        vm, vt = _t(mg, value, True), _t(torch, value, True)
        lm, lt = dm.log_prob(vm), dt.log_prob(vt)
        np.testing.assert_allclose(_np(lm), _np(lt), rtol=1e-9, atol=1e-10)
        lm.sum().backward()
        lt.sum().backward()
        np.testing.assert_allclose(_np(vm.grad), _np(vt.grad), rtol=1e-8, atol=1e-10)
        assert tuple(dm.rsample((5,)).shape) == tuple(dt.rsample((5,)).shape)
        assert dm.support.event_dim == dt.support.event_dim


def test_cdf_icdf_follow_the_transforms_sign():
    for scale in (2.0, -2.0):
        base_m, base_t = (
            lib.distributions.Normal(_t(lib, 0.0), _t(lib, 1.0)) for lib in (mg, torch)
        )
        dm = D.TransformedDistribution(base_m, D.AffineTransform(1.0, scale))
        dt = TD.TransformedDistribution(base_t, TD.AffineTransform(1.0, scale))
        v = _t(mg, X[0]), _t(torch, X[0])
        np.testing.assert_allclose(_np(dm.cdf(v[0])), _np(dt.cdf(v[1])), rtol=1e-10)
        q = _t(mg, UNIT[0]), _t(torch, UNIT[0])
        np.testing.assert_allclose(_np(dm.icdf(q[0])), _np(dt.icdf(q[1])), rtol=1e-10)


def test_flow_trains_on_the_fake_gpu():
    loc = mg.zeros(2, device="fakegpu", requires_grad=True)
    log_scale = mg.zeros(2, device="fakegpu", requires_grad=True)
    opt = mg.optim.Adam([loc, log_scale], lr=0.1)
    data = mg.tensor(RNG.normal(3.0, 0.5, (256, 2)), dtype=mg.float32, device="fakegpu")
    for _ in range(100):
        flow = D.TransformedDistribution(
            D.Independent(D.Normal(mg.zeros(2, device="fakegpu"), 1.0), 1),
            [D.AffineTransform(loc, log_scale.exp(), event_dim=1)],
        )
        opt.zero_grad()
        (-flow.log_prob(data).mean()).backward()
        opt.step()
    np.testing.assert_allclose(loc.detach().cpu().numpy(), [3.0, 3.0], atol=0.2)
    np.testing.assert_allclose(log_scale.exp().detach().cpu().numpy(), [0.5, 0.5], atol=0.1)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="transforms must be"):
        D.TransformedDistribution(D.Normal(0.0, 1.0), ["exp"])
    with pytest.raises(NotImplementedError, match="Cannot transform"):
        D.biject_to(D.constraints.boolean)
    with pytest.raises(ValueError, match="dependent"):
        D.constraints.dependent.check(mg.ones(1))
