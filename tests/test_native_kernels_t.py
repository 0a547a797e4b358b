"""The second pass of CPU kernels (``_native.c`` through ``cpu/_sortscan.py``): pdist for
p other than 2, logcumsumexp, cummax/cummin along rows, index_add by whole rows; values and
gradients against PyTorch 2.13 (bit for bit where PyTorch's order is replayed) and against
manygrad's NumPy formulas (the reference paths), on the CPU and the fake GPU."""

import numpy as np
import pytest
import torch

import manygrad as mg
from manygrad import _native
from manygrad.cpu import _sortscan
from manygrad.ops.unpool import _pdist_formula

F = mg.nn.functional
TF = torch.nn.functional

pytestmark = pytest.mark.skipif(_native.lib() is None, reason="no C compiler for the kernels")

DEVICES = ["cpu", "fakegpu"]
SPECIAL = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e4, -1e4]


def _x(shape, dt=np.float32, seed=0, special=False):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3).astype(dt)
    if special and x.size:
        flat = x.reshape(-1)
        pos = rng.choice(flat.size, min(flat.size, 2 * len(SPECIAL)), replace=False)
        flat[pos] = np.resize(np.array(SPECIAL, dt), pos.size)
    return x


def _same(a, b):
    """Bit for bit, NaN where the other has NaN."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    nan = np.isnan(a) if a.dtype.kind == "f" else np.zeros(a.shape, bool)
    assert (np.isnan(b) == nan).all() if a.dtype.kind == "f" else True
    assert np.array_equal(a[~nan], b[~nan]), np.abs(a[~nan].astype(float) - b[~nan]).max()


def _grads(fn_mg, fn_t, x, device="cpu", seed=1):
    """(forward, gradient) of manygrad and of PyTorch for one upstream gradient."""
    a = mg.tensor(x, requires_grad=True, device=device)
    ya = fn_mg(a)
    g = np.random.default_rng(seed).standard_normal(ya.shape).astype(x.dtype)
    (ya * mg.tensor(g, device=device)).sum().backward()
    t = torch.tensor(x, requires_grad=True)
    yt = fn_t(t)
    (yt * torch.tensor(g)).sum().backward()
    return ya.detach().cpu().numpy(), a.grad.cpu().numpy(), yt.detach().numpy(), t.grad.numpy()


# ----------------------------------------------------------------------------- pdist


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.0, 0.5, 1.0, 1.5, 3.0, float("inf")])
@pytest.mark.parametrize("shape", [(2, 1), (9, 5), (30, 131)])
def test_pdist_matches_torch_and_the_formula(dt, p, shape):
    x = _x(shape, dt)
    x[1, 0] = x[0, 0]  # a zero difference
    y, gx, ty, tg = _grads(lambda a: F.pdist(a, p), lambda t: TF.pdist(t, p), x)
    tol = 2e-5 if dt == np.float32 else 1e-11
    np.testing.assert_allclose(y, ty, rtol=tol, atol=tol)
    np.testing.assert_allclose(gx, tg, rtol=10 * tol, atol=10 * tol)
    b = mg.tensor(x, requires_grad=True)
    ref = _pdist_formula(b, p)
    if not (p == 1 and shape[1] > 128):  # NOTE: p = 1's sum went through BLAS there
        _same(y, ref.detach().numpy())
    if p not in (0.0, float("inf")):  # NOTE: inf: each of equal maxima gets all of g
        ref.backward(mg.tensor(np.random.default_rng(1).standard_normal(ref.shape).astype(dt)))
        _same(gx, b.grad.numpy())


def test_pdist_inf_ties_and_nan_as_torch():
    x = np.array([[1.0, -3.0, 3.0], [0.0, 0.0, 0.0], [np.nan, 1.0, 2.0]], np.float32)
    y, gx, ty, tg = _grads(lambda a: F.pdist(a, float("inf")),
                           lambda t: TF.pdist(t, float("inf")), x)  # fmt: skip
    _same(y, ty)
    fin = ~np.isnan(tg)
    np.testing.assert_allclose(gx[fin], tg[fin], rtol=1e-6)  # both tied maxima get all of g


@pytest.mark.parametrize("device", DEVICES)
def test_pdist_noncontiguous_and_devices(device):
    x = _x((12, 10), np.float32)
    a = mg.tensor(x, device=device)[:, ::2]
    for p in (1.0, 3.0, float("inf")):
        y = F.pdist(a, p).cpu().numpy()
        np.testing.assert_allclose(y, TF.pdist(torch.tensor(x)[:, ::2], p).numpy(), rtol=2e-5)


def test_pdist_kernel_refuses_what_it_does_not_take():
    assert _sortscan.pdist(np.ones((3, 2), np.int64), 1.0) is None
    assert _sortscan.pdist(np.ones((3, 2), np.float32), float("nan")) is None


# ----------------------------------------------------------------------------- logcumsumexp


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("shape,dim", [((7,), 0), ((5, 300), 1), ((300, 6), 0), ((3, 4, 5), 1),
                                       ((1, 1), 1)])  # fmt: skip
def test_logcumsumexp_is_torch_bit_for_bit(dt, shape, dim):
    x = _x(shape, dt, special=True)
    y = mg.logcumsumexp(mg.tensor(x), dim).numpy()
    _same(y, torch.logcumsumexp(torch.tensor(x), dim).numpy())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_logcumsumexp_gradient_matches_torch(device, dt):
    x = _x((6, 40), dt)
    y, gx, ty, tg = _grads(lambda a: mg.logcumsumexp(a, 1), lambda t: torch.logcumsumexp(t, 1),
                           x, device)  # fmt: skip
    tol = 1e-5 if dt == np.float32 else 1e-12
    np.testing.assert_allclose(y, ty, rtol=tol, atol=tol)
    np.testing.assert_allclose(gx, tg, rtol=20 * tol, atol=20 * tol)


def test_logcumsumexp_noncontiguous_and_edges():
    x = _x((8, 30), np.float32, special=True)
    t = torch.tensor(x)
    _same(mg.logcumsumexp(mg.tensor(x).T, 1).numpy(), torch.logcumsumexp(t.T, 1).numpy())
    x = np.array([-np.inf, -np.inf, np.inf, np.inf, np.nan, 0.0, -1e4], np.float32)
    _same(mg.logcumsumexp(mg.tensor(x), 0).numpy(), torch.logcumsumexp(torch.tensor(x), 0))
    assert _sortscan.logcumsumexp(np.ones(3, np.float16), 0) is None


# ----------------------------------------------------------------------------- cummax


@pytest.mark.parametrize("name", ["cummax", "cummin"])
@pytest.mark.parametrize("dt", [np.float32, np.float64, np.int64, np.int32])
def test_cummax_rows_values_and_indices_as_torch(name, dt):
    x = _x((9, 257), np.float64, special=dt in (np.float32, np.float64)).round().astype(dt)
    v, i = getattr(mg, name)(mg.tensor(x), 1)
    tv, ti = getattr(torch, name)(torch.tensor(x), 1)
    _same(v.numpy(), tv.numpy())
    _same(i.numpy(), ti.numpy())


@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_gradient_ties_and_layouts(name):
    x = _x((5, 64), np.float32).round()  # many ties
    for a in (x, x.T.copy()):
        y, gx, ty, tg = _grads(lambda m: getattr(mg, name)(m, 1)[0],
                               lambda m: getattr(torch, name)(m, 1)[0], a)  # fmt: skip
        _same(y, ty)
        np.testing.assert_allclose(gx, tg, rtol=1e-6)
    strided = mg.tensor(x)[:, ::3]
    _same(getattr(mg, name)(strided, 1)[1].numpy(),
          getattr(torch, name)(torch.tensor(x)[:, ::3], 1)[1].numpy())  # fmt: skip
    empty = getattr(mg, name)(mg.tensor(np.zeros((3, 0), np.float32)), 1)
    assert empty[0].shape == (3, 0) and empty[1].shape == (3, 0)


# ----------------------------------------------------------------------------- index_add


@pytest.mark.parametrize("dt", [np.float32, np.float64, np.int64, np.int32])
@pytest.mark.parametrize("shape,dim", [((50,), 0), ((40, 33), 0), ((6, 40), 1), ((3, 20, 5), 1)])
def test_index_add_kernel_is_add_at_bit_for_bit(dt, shape, dim):
    rng = np.random.default_rng(0)
    target = (rng.standard_normal(shape) * 1e3).astype(dt)
    idx = rng.integers(0, shape[dim], 3 * shape[dim])  # repeats
    vshape = shape[:dim] + (idx.size,) + shape[dim + 1 :]
    vals = (rng.standard_normal(vshape) * 1e3).astype(dt)
    ref = target.copy()
    np.add.at(ref, (slice(None),) * dim + (idx,), vals)
    got = target.copy()
    assert _sortscan.index_add(got, dim, idx, vals)
    _same(got, ref)


def test_index_add_kernel_refuses_and_op_matches_torch():
    t = np.zeros((4, 3), np.float32)
    assert not _sortscan.index_add(t, 0, np.array([0, 4]), np.ones((2, 3), np.float32))
    assert not _sortscan.index_add(t, 0, np.array([0, -1]), np.ones((2, 3), np.float32))
    assert not _sortscan.index_add(t, 0, np.array([0]), np.ones((1, 3), np.float64))
    assert not _sortscan.index_add(t.astype(np.float16), 0, np.array([0]),
                                   np.ones((1, 3), np.float16))  # fmt: skip
    rng = np.random.default_rng(2)
    x, s = _x((30, 8), np.float32), _x((50, 8), np.float32, seed=3)
    idx = rng.integers(0, 30, 50)
    for device in DEVICES:
        xs = mg.tensor(s, requires_grad=True, device=device)
        y = mg.index_add(mg.tensor(x, device=device), 0, mg.tensor(idx, device=device), xs,
                         alpha=2.0)  # fmt: skip
        ts = torch.tensor(s, requires_grad=True)
        ty = torch.index_add(torch.tensor(x), 0, torch.tensor(idx), ts, alpha=2.0)
        np.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), rtol=1e-6)
        y.sum().backward()
        ty.sum().backward()
        np.testing.assert_allclose(xs.grad.cpu().numpy(), ts.grad.numpy())
