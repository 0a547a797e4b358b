"""Piecewise-linear activations (hardtanh/relu6, threshold, hardshrink, softshrink,
hardsigmoid, hardswish, rrelu in eval) against PyTorch at their edges: the breakpoints,
+-0, +-inf and NaN, in every float dtype, with upstream gradients holding inf and NaN (the
gradients are selects, as PyTorch's), and in double backward."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")

CASES = [
    ("hardtanh", {}),
    ("hardtanh", dict(min_val=-2.0, max_val=0.5)),
    ("relu6", {}),
    ("threshold", dict(threshold=0.5, value=-3.0)),
    ("threshold", dict(threshold=-1.0, value=float("nan"))),
    ("hardshrink", {}),
    ("hardshrink", dict(lambd=2.0)),
    ("softshrink", {}),
    ("softshrink", dict(lambd=0.0)),
    ("hardsigmoid", {}),
    ("hardswish", {}),
    ("rrelu", dict(training=False)),
]
EDGES = [-np.inf, -1e4, -6.0, -3.0, -2.5, -2.0, -1.0, -0.5, -0.25, -0.0, 0.0, 0.25, 0.5,
         1.0, 2.0, 2.5, 3.0, 6.0, 7.0, 1e4, np.inf, np.nan]  # fmt: skip
DTYPES = ["float16", "bfloat16", "float32", "float64"]


def _values(n):
    x = np.random.default_rng(5).standard_normal(n) * 4
    return np.concatenate([x, EDGES])


def _same(got, want, what):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    np.testing.assert_array_equal(got, want, err_msg=what)
    if what == "softshrink forward":
        return  # NOTE: PyTorch's zero between -lambd and lambd is -0.0 or +0.0 for negative
        # x depending on the position in its vector loop (scalar tail: x * 0)
    # NOTE: the sign of zero too (hardswish's -0.0 below -3, threshold's value)
    z = want == 0
    np.testing.assert_array_equal(np.signbit(got[z]), np.signbit(want[z]), err_msg=what)


def _same_values(t, device):
    a = t.detach().numpy() if t.dtype == torch.float64 else t.detach().float().numpy()
    return mg.tensor(a, device=device).to(getattr(mg, str(t.dtype).split(".")[1]))


@pytest.mark.parametrize("n", [7, 70000])
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name, kw", CASES)
def test_edges_forward_and_gradient(device, name, kw, dt, n):
    x = _values(n)
    g = np.random.default_rng(6).standard_normal(x.size)
    g[::5] = np.inf
    g[1::7] = np.nan
    tdt = getattr(torch, dt)
    tx = torch.tensor(x, dtype=tdt, requires_grad=True)
    ty = getattr(torch.nn.functional, name)(tx, **kw)
    ty.backward(torch.tensor(g, dtype=tdt))
    # NOTE: the same values on both sides (PyTorch rounds float64 to 16 bits via float32)
    mx = _same_values(tx, device).requires_grad_()
    my = getattr(mg.nn.functional, name)(mx, **kw)
    my.backward(_same_values(torch.tensor(g, dtype=tdt), device))
    assert my.dtype == getattr(mg, dt)
    _same(my.detach().float().cpu().numpy(), ty.detach().float().numpy(), f"{name} forward")
    _same(mx.grad.float().cpu().numpy(), tx.grad.float().numpy(), f"{name} gradient")


@pytest.mark.parametrize("name, kw", CASES)
def test_double_backward(device, name, kw):
    x = np.array([-7.0, -3.0, -2.0, -1.3, -0.5, 0.0, 0.3, 0.5, 1.7, 2.0, 3.0, 4.5, 8.0])
    tx = torch.tensor(x, requires_grad=True)
    tg = torch.tensor(np.linspace(-1, 2, x.size), requires_grad=True)
    ty = getattr(torch.nn.functional, name)(tx, **kw)
    (tgx,) = torch.autograd.grad(ty, tx, tg, create_graph=True)
    mx = mg.tensor(x, device=device, requires_grad=True)
    mgr = mg.tensor(np.linspace(-1, 2, x.size), device=device, requires_grad=True)
    my = getattr(mg.nn.functional, name)(mx, **kw)
    (mgx,) = mg.autograd.grad(my, mx, mgr, create_graph=True)
    np.testing.assert_allclose(mgx.detach().cpu().numpy(), tgx.detach().numpy(), rtol=1e-12)
    w = np.cos(np.arange(x.size))
    try:
        touts = torch.autograd.grad((tgx * torch.tensor(w)).sum(), [tx, tg], allow_unused=True)
    except RuntimeError as e:  # NOTE: PyTorch has no double backward of hardsigmoid
        assert name == "hardsigmoid" and "not implemented" in str(e)
        sixth = float(np.float32(1 / 6))
        touts = (torch.zeros(x.size, dtype=torch.float64),
                 torch.tensor(np.where((x > -3) & (x < 3), w * sixth, 0.0)))  # fmt: skip
    mouts = mg.autograd.grad((mgx * mg.tensor(w, device=device)).sum(), [mx, mgr],
                             allow_unused=True)  # fmt: skip
    for t, m, what in zip(touts, mouts, ["d/dx", "d/dgrad"]):
        assert (t is None) == (m is None), what
        if t is not None:
            np.testing.assert_allclose(m.cpu().numpy(), t.numpy(), rtol=1e-12, err_msg=what)


@pytest.mark.parametrize("name, kw", [c for c in CASES if "shrink" not in c[0]])
def test_inplace_forms(device, name, kw):  # NOTE: the shrinks have no in-place form
    x = _values(50)
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(torch.nn.functional, name)(tx.clone(), inplace=True, **kw)
    ty.sum().backward()
    mx = mg.tensor(x, device=device, requires_grad=True)
    my = getattr(mg.nn.functional, name)(mx.clone(), inplace=True, **kw)
    my.sum().backward()
    _same(my.detach().cpu().numpy(), ty.detach().numpy(), f"{name}_ forward")
    # NOTE: PyTorch's gradient at a NaN input depends on its loop (vector width, CPU): NaN
    # on AVX2 machines, 1 on others; manygrad's is the same everywhere
    num = ~np.isnan(x)
    _same(mx.grad.cpu().numpy()[num], tx.grad.numpy()[num], f"{name}_ gradient")


def test_non_contiguous_input(device):
    x = np.random.default_rng(0).standard_normal((6, 8)) * 4
    tx = torch.tensor(x, requires_grad=True)
    mx = mg.tensor(x, device=device, requires_grad=True)
    for name, kw in CASES:
        ty = getattr(torch.nn.functional, name)(tx.t()[1:, ::2], **kw)
        my = getattr(mg.nn.functional, name)(mx.t()[1:, ::2], **kw)
        _same(my.detach().cpu().numpy(), ty.detach().numpy(), name)
        (ty * ty.detach()).sum().backward()
        (my * my.detach()).sum().backward()
        _same(mx.grad.cpu().numpy(), tx.grad.numpy(), name)
