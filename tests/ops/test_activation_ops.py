"""The activations of torch.nn.functional beyond the basic ones, against PyTorch."""

import inspect

import numpy as np
import pytest

import manygrad as mg
from opcheck import check_op

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    "name, specs, kw",
    [
        ("relu6", [(3, 5)], {}),
        ("hardtanh", [(3, 5)], {}),
        ("hardtanh", [(4, 3)], dict(min_val=-0.5, max_val=1.5)),
        ("selu", [(3, 5)], {}),
        ("celu", [(3, 5)], {}),
        ("celu", [(3, 5)], dict(alpha=0.7)),
        ("mish", [(3, 5)], {}),
        ("hardswish", [(3, 5)], {}),
        ("hardsigmoid", [(3, 5)], {}),
        ("glu", [(3, 6)], {}),
        ("glu", [(4, 2, 3)], dict(dim=0)),
        ("softsign", [(3, 5)], {}),
        ("threshold", [(3, 5)], dict(threshold=0.1, value=-3.0)),
        ("logsigmoid", [(3, 5)], {}),
        ("softmin", [(3, 5)], dict(dim=-1)),
        ("softmin", [(2, 3, 4)], dict(dim=1)),
        ("tanhshrink", [(3, 5)], {}),
        ("softshrink", [(3, 5)], {}),
        ("softshrink", [(3, 5)], dict(lambd=1.0)),
        ("hardshrink", [(3, 5)], {}),
        ("hardshrink", [(3, 5)], dict(lambd=0.2)),
        ("prelu", [(2, 3, 4), (3,)], {}),
        ("prelu", [(2, 3, 4), (1,)], {}),
    ],
)
def test_activation(name, specs, kw):
    domain = (-5, 5) if name in ("hardswish", "hardsigmoid", "relu6") else (-2.5, 2.5)
    check_op(name, specs, domain=domain, **kw)


@pytest.mark.parametrize(
    "cls, args",
    [
        ("ReLU6", ()), ("Hardtanh", (-2.0, 2.0)), ("SELU", ()), ("CELU", (0.5,)), ("Mish", ()),
        ("Hardswish", ()), ("Hardsigmoid", ()), ("GLU", ()), ("Softsign", ()),
        ("Threshold", (0.2, 7.0)), ("LogSigmoid", ()), ("Softmin", (1,)), ("Tanhshrink", ()),
        ("Softshrink", (0.3,)), ("Hardshrink", (0.3,)), ("PReLU", ()), ("PReLU", (4, 0.1)),
    ],
)  # fmt: skip
def test_activation_modules(cls, args):
    x = np.random.default_rng(1).uniform(-5, 5, (3, 4))
    tm = getattr(torch.nn, cls)(*args).double()
    mm = getattr(mg.nn, cls)(*args).double()
    mm.load_state_dict({k: mg.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    tx = torch.tensor(x, requires_grad=True)
    mx = mg.tensor(x, requires_grad=True)
    ty, my = tm(tx), mm(mx)
    np.testing.assert_allclose(my.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    ty.sum().backward()
    my.sum().backward()
    # NOTE: PyTorch multiplies by a float32 1/6 in hardsigmoid's gradient
    np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy(), rtol=1e-7, atol=1e-12)
    for (n, p), (_, q) in zip(tm.named_parameters(), mm.named_parameters()):
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=1e-10, err_msg=n)
    assert repr(mm).split("(")[0] == cls


def test_glu_odd_dim_is_refused():
    with pytest.raises(mg.errors.ShapeError, match="even"):
        mg.nn.functional.glu(mg.randn(3, 5))


@pytest.mark.skipif(
    "create_graph" not in inspect.signature(mg.autograd.grad).parameters,
    reason="mg.autograd.grad has no create_graph yet",
)
def test_double_backward_through_composition():
    x = mg.tensor([0.3, -1.2, 2.0], dtype=mg.float64, requires_grad=True)
    (g,) = mg.autograd.grad(mg.nn.functional.mish(x).sum(), [x], create_graph=True)
    (gg,) = mg.autograd.grad(g.sum(), [x])
    tx = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    (tg,) = torch.autograd.grad(torch.nn.functional.mish(tx).sum(), [tx], create_graph=True)
    (tgg,) = torch.autograd.grad(tg.sum(), [tx])
    np.testing.assert_allclose(gg.numpy(), tgg.numpy(), rtol=1e-8)


@pytest.mark.parametrize("dev", ["cpu", "fakegpu"])
def test_exact_gelu_far_tail_is_zero_as_pytorch(dev):
    x = np.array([-1e4, -100.0, -10.0, -5.6, -5.0, -3.0, 0.0, 3.0], np.float32)
    want = torch.nn.functional.gelu(torch.from_numpy(x)).numpy()
    got = mg.nn.functional.gelu(mg.tensor(x, device=dev)).cpu().numpy()
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-6)
    assert (got[:4] == 0).all()  # no constant error scaled up by x


@pytest.mark.parametrize("dev", ["cpu", "fakegpu"])
@pytest.mark.parametrize("dt", ["float32", "float64", "bfloat16"])
def test_sign_of_nan_is_zero_as_pytorch(dev, dt):
    x = torch.tensor([float("nan"), -2.0, 0.0, 3.0])
    want = torch.sign(x).numpy()
    got = mg.sign(mg.tensor(x.numpy(), device=dev).to(getattr(mg, dt))).float().cpu().numpy()
    np.testing.assert_array_equal(got, want)


def _tails(n=40000):
    """Random values of both signs (the branch-free select needs 16k+) plus the tails."""
    x = np.random.default_rng(3).standard_normal(n) * 12
    edge = [-1e4, -100.0, -90.0, -20.0, -12.0, -0.0, 0.0, 11.5, 13.0, 20.0, 25.0, 100.0]
    return np.concatenate([x, edge, [np.inf, -np.inf, np.nan]]).astype(np.float32)


@pytest.mark.parametrize("dev", ["cpu", "fakegpu"])
@pytest.mark.parametrize("dt", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("name", ["sigmoid", "silu", "softplus", "elu", "leaky_relu"])
def test_activation_tails_and_16_bit_floats_match_torch(dev, dt, name):
    # 16-bit inputs are computed in float32, as PyTorch: softplus(13) in float16 is 13,
    # not inf (exp(13) overflows float16), and sigmoid(-100) is 0
    x = _tails()
    tx = torch.tensor(x).to(getattr(torch, dt)).requires_grad_()
    mx = mg.tensor(x, device=dev).to(getattr(mg, dt)).requires_grad_()
    tf = torch.sigmoid if name == "sigmoid" else getattr(torch.nn.functional, name)
    mf = mg.sigmoid if name == "sigmoid" else getattr(mg.nn.functional, name)
    ty, my = tf(tx), mf(mx)
    ty.backward(torch.ones_like(ty))
    my.backward(mg.ones_like(my))
    tol = dict(float16=(1e-3, 1e-5), bfloat16=(8e-3, 1e-5), float32=(1e-5, 1e-7))
    rtol, atol = tol.get(dt, (1e-12, 1e-15))
    for got, want in [(my, ty), (mx.grad, tx.grad)]:
        np.testing.assert_allclose(
            got.detach().double().cpu().numpy(), want.detach().double().numpy(),
            rtol=rtol, atol=atol, err_msg=name,
        )  # fmt: skip


@pytest.mark.parametrize("dt", [np.float16, np.float32, np.float64])
def test_branch_free_select_is_where_bit_for_bit(dt):
    from manygrad import backend

    rng = np.random.default_rng(0)
    a = rng.standard_normal((200, 100)).astype(dt)
    b = np.array([np.nan, -0.0, np.inf, 1.5], dt)[rng.integers(0, 4, (200, 100))]
    cond = rng.random((200, 100)) < 0.5
    for x, y in [(a, b), (a, 0.0), (-0.0, b), (a[:, :1], b)]:  # scalars and broadcasting
        got, want = backend.where(cond, x, y), np.where(cond, x, y)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
