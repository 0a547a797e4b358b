"""The CPU kernels (``manygrad._native``): values against PyTorch and against manygrad's
NumPy formulas (the reference they replace), edge values, threads, and the fallback when
no compiler is there."""

import os
import warnings

import numpy as np
import pytest
import torch

import manygrad as mg
from manygrad import _erf, _native
from manygrad.threads import get_num_threads, set_num_threads

F = mg.nn.functional
TF = torch.nn.functional

pytestmark = pytest.mark.skipif(_native.lib() is None, reason="no C compiler for the kernels")

EDGES = np.array(
    [0.0, -0.0, 1e-30, -1e-30, 1e-5, -1e-5, 0.5, -0.5, 3.0, -3.0, 5.4, 5.5, -5.5, -5.6, 10.0,
     -10.0, 88.0, -88.0, 89.0, -89.0, 104.0, -104.0, 1e4, -1e4, 3e38, -3e38, np.inf, -np.inf,
     np.nan, 1.2e-38, -1.2e-38],
    np.float32,
)  # fmt: skip


def _rand(*shape, scale=3.0, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def _close(a, b, rtol=2e-6, atol=2e-6):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("tanh", [False, True])
def test_gelu_matches_torch_and_the_numpy_formula(tanh):
    x = np.concatenate([_rand(5000), EDGES])
    y, d = _native.gelu(x, tanh, True)
    t = torch.tensor(x, requires_grad=True)
    ty = TF.gelu(t, approximate="tanh" if tanh else "none")
    ty.backward(torch.ones_like(ty))
    # NOTE: PyTorch's GELU overflows to inf from about 1.7e38 (it doubles x on the way) and
    # gives NaN at +inf; manygrad gives x there (the NumPy formula's values, checked below)
    fin = np.abs(x) < 1e38
    _close(y[fin], ty.detach().numpy()[fin])
    _close(d[fin], t.grad.numpy()[fin], rtol=1e-5, atol=3e-6)
    if not tanh:  # the NumPy path's values, infinities and NaN included
        ry, rd = _erf.np_gelu32(x, True)
        _close(y, ry)
        _close(d, rd, rtol=1e-5, atol=3e-6)
    assert np.isnan(y[np.isnan(x)]).all()
    assert np.signbit(y[x == -1e4]).all() and y[x == -1e4] == 0  # -0, as PyTorch
    assert y[x == 1e4] == np.float32(1e4)  # Phi is 1 there, as PyTorch's


@pytest.mark.parametrize("name", ["sigmoid", "silu"])
def test_sigmoid_and_silu_match_torch_at_edges(name):
    x = np.concatenate([_rand(5000), EDGES])
    y = _native.unary(name, x)
    t = torch.tensor(x, requires_grad=True)
    ty = getattr(torch, name)(t) if name == "sigmoid" else TF.silu(t)
    g = _rand(x.size, seed=1)
    ty.backward(torch.tensor(g))
    _close(y, ty.detach().numpy(), rtol=2e-6, atol=1e-37)
    np.testing.assert_array_equal(np.signbit(y[y == 0]), np.signbit(ty.detach().numpy()[y == 0]))
    dx = _native.unary_backward(name, g, y if name == "sigmoid" else x)
    fin = np.isfinite(x)
    _close(dx[fin], t.grad.numpy()[fin], rtol=1e-5, atol=1e-6)


def test_exp_is_exact_to_a_few_ulps_over_floats_range():
    # exp through sigmoid: 1 / (1 + e^-x); near x = -80 the sum is e^80 and its rounding
    # shows exp's error directly
    x = np.linspace(-87, -20, 20001, dtype=np.float32)
    y = _native.unary("sigmoid", x)
    ref = (1 / (1 + np.exp(-x.astype(np.float64)))).astype(np.float32)
    ulps = np.abs(y.view(np.int32).astype(np.int64) - ref.view(np.int32).astype(np.int64))
    assert ulps.max() <= 2


@pytest.mark.parametrize("shape,nshape", [((64, 300), (300,)), ((4, 5, 6), (5, 6)), ((7, 1), (1,)),
                                          ((3, 0, 4), (4,)), ((2, 3), (3,))])  # fmt: skip
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_forward_and_gradients_match_torch(shape, nshape, affine):
    x = _rand(*shape) + 1.5
    g = _rand(*shape, seed=2)
    params = [_rand(*nshape, seed=3), _rand(*nshape, seed=4)] if affine else [None, None]
    a = mg.tensor(x, requires_grad=True)
    b = torch.tensor(x, requires_grad=True)
    pa = [None if p is None else mg.tensor(p, requires_grad=True) for p in params]
    pb = [None if p is None else torch.tensor(p, requires_grad=True) for p in params]
    ya, yb = F.layer_norm(a, nshape, *pa), TF.layer_norm(b, nshape, *pb)
    ya.backward(mg.tensor(g))
    yb.backward(torch.tensor(g))
    _close(ya.detach().numpy(), yb.detach().numpy(), rtol=1e-5, atol=1e-5)
    # NOTE: with one value per row the variance is 0 and rstd = 1/sqrt(eps) ~ 316 scales
    # the rounding of g w - mean(g w) (PyTorch's own is up to 2.4e-4 there)
    tol = 1e-3 if nshape == (1,) else 1e-5
    _close(a.grad.numpy(), b.grad.numpy(), rtol=1e-5, atol=tol)
    for p, q in zip(pa, pb):
        if p is not None:
            _close(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=max(tol, 1e-4))


def test_layer_norm_takes_the_kernels_and_matches_the_numpy_rows_path(monkeypatch):
    x = _rand(256, 512)
    w, b = _rand(512, seed=1), _rand(512, seed=2)
    calls = []
    real = _native.layer_norm
    monkeypatch.setattr(_native, "layer_norm", lambda *a: calls.append(1) or real(*a))
    y = F.layer_norm(mg.tensor(x), (512,), mg.tensor(w), mg.tensor(b))
    assert calls, "a float32 CPU layer norm did not take the kernels"
    monkeypatch.setattr(_native, "layer_norm", lambda *a: None)  # the NumPy formulas
    ref = F.layer_norm(mg.tensor(x), (512,), mg.tensor(w), mg.tensor(b))
    _close(y.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("shape", [(64, 300), (4, 5, 6), (3, 1), (5,), (2, 0)])
def test_softmax_forward_and_gradient_match_torch(log, shape):
    x = _rand(*shape)
    if x.size:
        x.reshape(-1)[0] = -np.inf
    g = _rand(*shape, seed=5)
    a, b = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    fa, fb = (mg.log_softmax, torch.log_softmax) if log else (mg.softmax, torch.softmax)
    ya, yb = fa(a, -1), fb(b, -1)
    ya.backward(mg.tensor(g))
    yb.backward(torch.tensor(g))
    _close(ya.detach().numpy(), yb.detach().numpy(), rtol=1e-5, atol=1e-6)
    _close(a.grad.numpy(), b.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_softmax_rows_of_infinities_and_nan_as_torch():
    x = np.array([[-np.inf, -np.inf, 0], [np.nan, 1, 2], [np.inf, 1, 2], [1, 2, 3]], np.float32)
    for fa, fb in ((mg.softmax, torch.softmax), (mg.log_softmax, torch.log_softmax)):
        _close(fa(mg.tensor(x), -1).numpy(), fb(torch.tensor(x), -1).numpy())


def test_threads_split_the_work_without_changing_values():
    x = _rand(512, 1024)  # past the size where the work is split
    g = _rand(512, 1024, seed=1)
    w = _rand(1024, seed=2)
    old = get_num_threads()
    out = {}
    try:
        for n in (1, 2):
            set_num_threads(n)
            assert _native._parts(x.size) == min(n, get_num_threads())
            y, d = _native.gelu(x, False, True)
            s = _native.softmax(x, False)
            ln, mean, rstd = _native.layer_norm(x, w, None, 1e-5)
            dx, dw, _ = _native.layer_norm_backward(g, x, mean, rstd, w, True, False)
            out[n] = (y, d, s, ln, dx, dw)
    finally:
        set_num_threads(old)
    if get_num_threads() < 2 and out[1][0] is out[2][0]:
        pytest.skip("one CPU")
    for a, b in zip(out[1][:5], out[2][:5]):
        np.testing.assert_array_equal(a, b)  # each value computed by the same code
    _close(out[1][5], out[2][5], rtol=1e-5, atol=1e-4)  # weight gradient: partial sums


def test_arrays_the_kernels_do_not_take_return_none():
    x = _rand(8, 6)
    assert _native.gelu(x.astype(np.float64), False, False) is None
    assert _native.gelu(x[:, ::2], False, False) is None  # not contiguous
    assert _native.unary("silu", x.T) is None
    assert _native.softmax(np.float32(1.0) * np.ones((), np.float32), False) is None
    # the ops still give PyTorch's values on those through the NumPy formulas
    t = mg.tensor(x.astype(np.float64))[:, ::2]
    _close(F.silu(t).numpy(), TF.silu(torch.tensor(x.astype(np.float64))[:, ::2]).numpy())


@pytest.fixture
def fresh_native(monkeypatch, tmp_path):
    """The loader as on a first use, with its cache in a temporary directory."""
    monkeypatch.setenv("MANYGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_native.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    _native._reset_for_tests()
    yield tmp_path
    _native._reset_for_tests()


def test_build_is_cached_and_leaves_no_partial_files(fresh_native):
    lib = _native.lib()
    assert lib is not None
    files = os.listdir(fresh_native / "cpu-kernels")
    assert len(files) == 1 and files[0].startswith("native-") and files[0].endswith(".so")
    path = fresh_native / "cpu-kernels" / files[0]
    mtime = path.stat().st_mtime_ns
    _native._reset_for_tests()
    assert _native.lib() is not None
    assert path.stat().st_mtime_ns == mtime  # loaded from the cache, not rebuilt
    assert os.listdir(fresh_native / "cpu-kernels") == files


def test_without_a_compiler_it_warns_once_and_the_ops_still_work(fresh_native, monkeypatch):
    monkeypatch.setenv("CC", str(fresh_native / "no-such-compiler"))
    with pytest.warns(RuntimeWarning, match="CPU kernels could not be built"):
        assert _native.lib() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _native.lib() is None  # no second warning
        x = _rand(4, 8)
        y = F.gelu(mg.tensor(x))
    _close(y.numpy(), TF.gelu(torch.tensor(x)).numpy())
    st = _native.status()
    assert not st["available"] and "no C compiler" in st["error"]
    assert not os.path.exists(fresh_native / "cpu-kernels") or not os.listdir(
        fresh_native / "cpu-kernels"
    )


def test_a_failing_build_warns_with_the_compiler_message(fresh_native, monkeypatch):
    bad = fresh_native / "bad.c"
    bad.write_text("this is not C\n")
    monkeypatch.setattr(_native, "_SOURCE", str(bad))
    with pytest.warns(RuntimeWarning, match="failed"):
        assert _native.lib() is None
    leftovers = os.listdir(fresh_native / "cpu-kernels")
    assert leftovers == []  # no half-written library


def test_turned_off_by_the_environment(fresh_native, monkeypatch):
    monkeypatch.setenv("MANYGRAD_CPU_KERNELS", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _native.lib() is None
    assert "MANYGRAD_CPU_KERNELS" in _native.status()["error"]
    from manygrad.cli.doctor import check_cpu_kernels

    assert check_cpu_kernels().status == "warn"


def test_doctor_reports_the_kernels():
    from manygrad.cli.doctor import check_cpu_kernels

    c = check_cpu_kernels()
    assert c.status == "ok" and c.detail.startswith("built (")


@pytest.mark.parametrize("slope", [None, 0.01, 0.0, 2.5, -0.3])
def test_relu_and_leaky_relu_bit_for_bit_as_torch(slope):
    x = np.concatenate([_rand(3000), EDGES, -EDGES])
    g = np.concatenate([_rand(3000, seed=1), _rand(EDGES.size * 2, seed=2)])
    g[:5] = [np.inf, -np.inf, np.nan, 0.0, -0.0]
    t = torch.tensor(x, requires_grad=True)
    ty = torch.relu(t) if slope is None else TF.leaky_relu(t, slope)
    ty.backward(torch.tensor(g))
    y = _native.relu(x, None, slope)
    np.testing.assert_array_equal(y.view(np.int32), ty.detach().numpy().view(np.int32))
    dx = _native.relu_backward(g, y if slope is None else x, slope)
    np.testing.assert_array_equal(dx.view(np.int32), t.grad.numpy().view(np.int32))
    inplace = x.copy()
    assert _native.relu(inplace, inplace, slope) is inplace
    np.testing.assert_array_equal(inplace.view(np.int32), y.view(np.int32))


def test_relu_layers_take_the_kernels(monkeypatch):
    calls = []
    real = _native.relu_backward
    monkeypatch.setattr(_native, "relu_backward", lambda *a: calls.append(a) or real(*a))
    x = mg.tensor(_rand(16, 8), requires_grad=True)
    (mg.relu(x) * 2).sum().backward()
    (F.leaky_relu(x, 0.2) * 2).sum().backward()
    assert len(calls) == 2 and calls[1][2] == 0.2


@pytest.mark.parametrize(
    "shape,k,s,p,d,ceil",
    [((2, 3, 9, 11), 2, 2, 0, 1, False), ((2, 3, 9, 11), 3, (2, 1), 1, 1, True),
     ((1, 2, 10, 10), (3, 2), (2, 3), (1, 0), (2, 1), False), ((3, 9, 11), 2, 2, 0, 1, False)],
)  # fmt: skip
def test_max_pool2d_values_indices_and_gradient_as_torch(shape, k, s, p, d, ceil):
    x = _rand(*shape)
    x.reshape(-1)[:3] = np.nan  # a window with NaN: its last NaN wins
    x.reshape(-1)[40:42] = 7.0  # ties: the first wins
    a, t = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ya, ia = F.max_pool2d(a, k, s, p, d, ceil_mode=ceil, return_indices=True)
    yt, it = TF.max_pool2d(t, k, s, p, d, ceil_mode=ceil, return_indices=True)
    assert isinstance(ya.grad_fn.idx, np.ndarray)  # the kernels ran
    g = _rand(*yt.shape, seed=3)
    ya.backward(mg.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_array_equal(ya.detach().numpy(), yt.detach().numpy())
    np.testing.assert_array_equal(ia.numpy(), it.numpy())
    np.testing.assert_array_equal(a.grad.numpy(), t.grad.numpy())
