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


def _ulps(a, ref):
    """Distance in float32 steps between ``a`` and float64 ``ref`` rounded to float32."""
    r = ref.astype(np.float32)

    def ordered(v):
        i = v.view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)

    return np.abs(ordered(a) - ordered(r))


@pytest.mark.parametrize("name", ["expm1", "log1p"])
def test_expm1_and_log1p_within_an_ulp_or_two_over_floats_range(name):
    rng = np.random.default_rng(7)
    x = rng.integers(0, 2**32, 300_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = np.concatenate([x[np.isfinite(x)], np.linspace(-20, 89, 100_001, dtype=np.float32),
                        np.float32(np.geomspace(1e-12, 1e4, 50_000)),
                        -np.float32(np.geomspace(1e-12, 0.9999999, 50_000))])  # fmt: skip
    if name == "expm1":
        x = x[x < 88.72]  # above: inf, checked below
    else:
        x = x[x > -1]
    y = _native.unary(name, x)
    ref = getattr(np, name)(x.astype(np.float64))
    assert _ulps(y, ref).max() <= 2
    # relative accuracy near 0 (where exp(x) - 1 or log(1 + x) would lose every digit)
    tiny = np.float32([1e-30, -1e-30, 3e-8, -3e-8, 1e-6, -1e-6, 1.2e-38, -1.4e-45])
    assert _ulps(_native.unary(name, tiny), getattr(np, name)(tiny.astype(np.float64))).max() <= 1
    edges = np.float32([0.0, -0.0, np.inf, -np.inf, np.nan, -1.0, -2.0, 88.8, 3e38, -3e38])
    with np.errstate(all="ignore"):
        want = getattr(np, name)(edges)
    got = _native.unary(name, edges)
    np.testing.assert_array_equal(got, want)
    num = ~np.isnan(want)
    np.testing.assert_array_equal(np.signbit(got[num]), np.signbit(want[num]))


PIECES = [
    ("hardtanh", dict(min_val=-1.0, max_val=1.0)),
    ("hardtanh", dict(min_val=-2.0, max_val=0.5)),
    ("hardtanh", dict(min_val=0.0, max_val=0.0)),
    ("relu6", {}),
    ("threshold", dict(threshold=0.5, value=-3.0)),
    ("threshold", dict(threshold=-1.0, value=float("nan"))),
    ("hardshrink", dict(lambd=0.5)),
    ("hardshrink", dict(lambd=2.0)),
    ("softshrink", dict(lambd=0.5)),
    ("softshrink", dict(lambd=0.0)),
    ("hardsigmoid", {}),
    ("hardswish", {}),
]
PW_EDGES = np.float32([-np.inf, -1e4, -6.0, -3.0, -2.5, -2.0, -1.0, -0.5, -0.25, -0.0, 0.0, 0.25,
                       0.5, 1.0, 2.0, 2.5, 3.0, 6.0, 7.0, 1e4, np.inf, np.nan, 1e-45, -1e-45,
                       np.nextafter(np.float32(3), np.float32(0)),
                       np.nextafter(np.float32(-3), np.float32(0))])  # fmt: skip


def _bits(a):
    """The bits of float32 values, NaNs as one (their payloads mean nothing)."""
    a = np.asarray(a, np.float32)
    return np.where(np.isnan(a), np.int32(0x7FC00000), a.view(np.int32))


def _fwd_bwd(lib, name, x, g, kw, inplace=False):
    """``name`` of ``x`` (of a copy, in place, with ``inplace``) and its gradient for ``g``."""
    t = lib.tensor(x, requires_grad=True)
    extra = {"inplace": True} if inplace else {}
    y = getattr(TF if lib is torch else F, name)(t * 1 if inplace else t, **kw, **extra)
    y.backward(lib.tensor(g))
    return y.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("name, kw", PIECES)
def test_piecewise_bit_for_bit_as_torch_and_the_numpy_path(name, kw, monkeypatch):
    x = np.concatenate([_rand(4000), PW_EDGES, -PW_EDGES])
    g = _rand(x.size, seed=1)
    g[::7], g[1::11], g[2::13] = np.inf, np.nan, -0.0
    calls = []
    real = _native.piecewise_backward
    monkeypatch.setattr(_native, "piecewise_backward", lambda *a: calls.append(1) or real(*a))
    y, dx = _fwd_bwd(mg, name, x, g, kw)
    assert calls, "a float32 CPU piecewise activation did not take the kernels"
    ty, tdx = _fwd_bwd(torch, name, x, g, kw)
    if name != "softshrink":  # NOTE: PyTorch's zeros between -lambd and lambd have either sign
        np.testing.assert_array_equal(_bits(y), _bits(ty))
    np.testing.assert_array_equal(y, ty)
    # NOTE: PyTorch's gradient at NaN inputs is g in its scalar loop and 0 in its vector
    # loop (hardtanh, the shrinks); manygrad's is the scalar loop's, everywhere
    num = ~np.isnan(x)
    np.testing.assert_array_equal(_bits(dx[num]), _bits(tdx[num]))
    monkeypatch.setattr(_native, "piecewise", lambda *a, **k: None)
    monkeypatch.setattr(_native, "piecewise_backward", lambda *a, **k: None)
    ry, rdx = _fwd_bwd(mg, name, x, g, kw)  # the NumPy formulas
    np.testing.assert_array_equal(_bits(y), _bits(ry))
    np.testing.assert_array_equal(_bits(dx), _bits(rdx))


@pytest.mark.parametrize("name", ["hardtanh", "relu6", "hardsigmoid", "hardswish", "threshold"])
def test_piecewise_in_place_forms_as_torch(name):
    kw = dict(threshold=0.5, value=-3.0) if name == "threshold" else {}
    x = np.concatenate([_rand(3000), PW_EDGES])
    g = _rand(x.size, seed=2)
    g[::9] = np.nan
    y, dx = _fwd_bwd(mg, name, x, g, kw, inplace=True)
    ty, tdx = _fwd_bwd(torch, name, x, g, kw, inplace=True)
    np.testing.assert_array_equal(_bits(y), _bits(ty))
    # NOTE: PyTorch's gradient at a NaN input depends on its loop (vector width, CPU):
    # NaN on AVX2 machines, g on others; manygrad's is the same everywhere
    num = ~np.isnan(x)
    np.testing.assert_array_equal(_bits(dx[num]), _bits(tdx[num]))


ACT_EDGES = np.float32([0.0, -0.0, 1e-30, -1e-30, 1e-7, -1e-7, 1e-3, -1e-3, 0.5, -0.5, -5.0,
                        -17.0, -20.0, -30.0, -88.0, -90.0, -104.0, -110.0, 15.0, 19.9, 20.0,
                        20.1, 30.0, 88.0, 89.0, 1e4, -1e4, 3e38, -3e38, np.inf, -np.inf,
                        np.nan, 1.2e-38, -1.2e-38])  # fmt: skip


def _act_case(fname, kw, x, g, inplace=False):
    out = []
    for lib, f in ((torch, TF), (mg, F)):
        t = lib.tensor(x, requires_grad=True)
        extra = {"inplace": True} if inplace else {}
        y = getattr(f, fname)(t * 1 if inplace else t, **kw, **extra)
        y.backward(lib.tensor(g))
        out.append((y.detach().numpy(), t.grad.numpy()))
    return out


@pytest.mark.parametrize(
    "fname, kw",
    [("elu", {}), ("elu", dict(alpha=0.3)), ("elu", dict(alpha=-1.5)), ("selu", {}),
     ("celu", {}), ("celu", dict(alpha=2.5)), ("celu", dict(alpha=-0.7)),
     ("softplus", {}), ("softplus", dict(beta=2.0, threshold=10.0)),
     ("softplus", dict(beta=0.5, threshold=5.0)), ("softplus", dict(beta=-1.0))],
)  # fmt: skip
def test_elu_family_and_softplus_match_torch(fname, kw, monkeypatch):
    x = np.concatenate([_rand(6000), ACT_EDGES, -ACT_EDGES])
    g = _rand(x.size, seed=3)
    calls = []
    name = "softplus" if fname == "softplus" else "elu"
    real = getattr(_native, name)
    monkeypatch.setattr(_native, name, lambda *a: calls.append(1) or real(*a))
    (ty, tdx), (y, dx) = _act_case(fname, kw, x, g)
    assert calls, f"a float32 CPU {fname} did not take the kernels"
    # NOTE: values within a few float32 steps, relative (expm1 and log1p stay accurate for
    # tiny inputs, e.g. elu(-1e-30) = -1e-30); zeros with PyTorch's sign
    _close(y, ty, rtol=1e-6, atol=1e-44)
    np.testing.assert_array_equal(np.signbit(y[ty == 0]), np.signbit(ty[ty == 0]))
    # NOTE: at NaN inputs PyTorch's ELU gradient is NaN in its vector loop and g * scale
    # in its scalar loop; manygrad's is the scalar loop's, everywhere
    num = ~np.isnan(x)
    _close(dx[num], tdx[num], rtol=2e-6, atol=1e-44)
    monkeypatch.setattr(_native, name, lambda *a: None)
    monkeypatch.setattr(_native, f"{name}_backward", lambda *a: None)
    (_, _), (ry, rdx) = _act_case(fname, kw, x, g)  # the NumPy formulas
    _close(y, ry, rtol=1e-6, atol=1e-44)
    # NOTE: the NumPy path's sigmoid is 1 / (1 + e^-t): 0 below t = -88.7, where the
    # kernels' gradient goes on, as PyTorch's, through the subnormals
    _close(dx, rdx, rtol=2e-6, atol=1e-37)


@pytest.mark.parametrize("fname", ["elu", "selu", "celu"])
def test_elu_family_in_place_as_torch(fname):
    x = np.concatenate([_rand(2000), ACT_EDGES])
    g = _rand(x.size, seed=4)
    (ty, tdx), (y, dx) = _act_case(fname, {}, x, g, inplace=True)
    fin = ~np.isnan(x)
    _close(y, ty, rtol=1e-6, atol=1e-44)
    # NOTE: PyTorch's in-place ELUs differentiate through the output (y + alpha), which
    # loses digits to cancellation far left; manygrad's keep the input
    _close(dx[fin], tdx[fin], rtol=2e-6, atol=1e-6)


def test_new_kernels_split_across_threads_without_changing_values():
    x = _rand(600, 1000)
    g = _rand(600, 1000, seed=1)
    old = get_num_threads()
    out = {}
    try:
        for n in (1, 2):
            set_num_threads(n)
            out[n] = [
                _native.piecewise("hardswish", x), _native.piecewise_backward("hardswish", g, x),
                _native.elu(x, 1.0), _native.elu_backward(g, x, 1.0),
                _native.softplus(x, 1.0, 20.0), _native.softplus_backward(g, x, 1.0, 20.0),
                _native.unary("expm1", x), _native.unary("log1p", np.abs(x)),
            ]  # fmt: skip
    finally:
        set_num_threads(old)
    for a, b in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, b)


def test_activation_kernels_decline_what_they_do_not_take():
    x = _rand(8, 6)
    assert _native.piecewise("hardswish", x.astype(np.float64)) is None
    assert _native.piecewise("hardswish", x[:, ::2]) is None
    assert _native.piecewise("no-such-op", x) is None
    assert _native.elu(x.T, 1.0) is None
    assert _native.softplus_backward(x, x[:4], 1.0, 20.0) is None  # shapes differ
    # float64 and strided inputs keep the NumPy formulas, with PyTorch's values
    t = x.astype(np.float64)[:, ::2]
    _close(F.hardswish(mg.tensor(t)).numpy(), TF.hardswish(torch.tensor(t)).numpy())
    _close(F.softplus(mg.tensor(t)).numpy(), TF.softplus(torch.tensor(t)).numpy())
    _close(F.selu(mg.tensor(t)).numpy(), TF.selu(torch.tensor(t)).numpy())


def _group_norm_run(lib, x, w, b, g, groups, need_w=True):
    f = TF if lib is torch else F
    tx = lib.tensor(x, requires_grad=True)
    tw = None if w is None else lib.tensor(w, requires_grad=need_w)
    tb = None if b is None else lib.tensor(b, requires_grad=True)
    y = f.group_norm(tx, groups, tw, tb, 1e-5)
    y.sum().backward() if g is None else y.backward(lib.tensor(g))
    grads = [None if t is None or t.grad is None else t.grad.detach().numpy() for t in (tx, tw, tb)]
    return [y.detach().numpy()] + grads


@pytest.mark.parametrize(
    "shape, groups, affine, offset",
    [((4, 6, 17), 2, "both", 0.0), ((3, 8, 5, 5), 8, "both", 0.0), ((3, 8, 5, 5), 1, "w", 2.0),
     ((5, 6), 3, "b", 0.0), ((2, 8, 3, 4, 5), 4, None, 0.0), ((8, 32, 16, 16), 8, "both", 1e3),
     ((2, 4, 1, 2), 4, "both", 0.0), ((2, 4, 40, 40), 2, "both", -50.0)],
)  # fmt: skip
def test_group_norm_matches_torch_in_float64_and_the_numpy_path(shape, groups, affine, offset,
                                                                monkeypatch):  # fmt: skip
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 2 + offset).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    c = shape[1]
    w = (rng.standard_normal(c) + 1).astype(np.float32) if affine in ("both", "w") else None
    b = rng.standard_normal(c).astype(np.float32) if affine in ("both", "b") else None
    calls = []
    real = _native.group_norm_backward
    monkeypatch.setattr(_native, "group_norm_backward", lambda *a: calls.append(1) or real(*a))
    got = _group_norm_run(mg, x, w, b, g, groups)
    assert calls, "a float32 CPU group norm did not take the kernels"
    f64 = [None if a is None else a.astype(np.float64) for a in (x, w, b, g)]
    wt = f64[1] if f64[1] is not None or f64[2] is None else np.ones(c)  # see NOTE below
    want = _group_norm_run(torch, f64[0], wt, f64[2], f64[3], groups, need_w=w is not None)
    # NOTE: PyTorch's CPU backward fails on a bias without a weight: ones stand in for it.
    # Each result within a few float32 roundings of its largest value (of dx's terms'
    # size where they cancel; PyTorch's own float32 kernel is off by 1e-5 at x + 1000)
    rstd = 1 / np.sqrt(f64[0].reshape(shape[0], groups, -1).var(axis=2) + 1e-5)
    dx_scale = np.abs(g).max() * (1 if w is None else np.abs(w).max()) * rstd.max()
    for i, (a, e) in enumerate(zip(got, want)):
        if a is None:  # no weight, or no bias
            assert (i == 2 and w is None) or (i == 3 and b is None)
            continue
        scale = max(float(np.abs(e).max()), dx_scale if i == 1 else 0.0, 1.0)
        assert float(np.abs(a - e).max()) / scale <= 2e-6, ("y", "dx", "dw", "db")[i]
    monkeypatch.setattr(_native, "group_norm", lambda *a: None)  # the NumPy blocks
    ref = _group_norm_run(mg, x, w, b, g, groups)
    for a, e in zip(got, ref):
        if a is not None:
            _close(a, e, rtol=1e-5, atol=1e-5 * max(float(np.abs(e).max()), 1.0))


def test_group_norm_kernels_take_a_broadcast_gradient_and_split_across_threads():
    x = _rand(16, 32, 24, 24)
    w, b = _rand(32, seed=1), _rand(32, seed=2)
    got = _group_norm_run(mg, x, w, b, None, 8)  # y.sum().backward(): a broadcast gradient
    want = _group_norm_run(torch, x, w, b, None, 8)
    for a, e in zip(got, want):
        _close(a, e, rtol=1e-4, atol=1e-4)
    g = _rand(16, 32, 24, 24, seed=3)
    old = get_num_threads()
    out = {}
    try:
        for n in (1, 2):
            set_num_threads(n)
            y, mean, rstd = _native.group_norm(x, 8, w, b, 1e-5)
            out[n] = (y, mean, rstd) + _native.group_norm_backward(g, x, mean, rstd, 8, w, True,
                                                                   True, True)  # fmt: skip
    finally:
        set_num_threads(old)
    for a, e in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, e)  # groups never split: the same sums
    assert _native.group_norm(x.astype(np.float64), 8, None, None, 1e-5) is None
    assert _native.group_norm(x[:, ::2], 8, None, None, 1e-5) is None


def _ce_run(lib, x, t, w, kw, g=None, create_graph=False):
    tx = lib.tensor(x, requires_grad=True)
    tw = None if w is None else lib.tensor(w)
    loss = (TF if lib is torch else F).cross_entropy(tx, lib.tensor(t), tw, **kw)
    if create_graph:  # the gradient of the gradient's sum
        (gx,) = lib.autograd.grad(loss, tx, create_graph=True)
        (ggx,) = lib.autograd.grad((gx * gx).sum(), tx)
        return ggx.detach().numpy()
    loss.backward(lib.tensor(g) if kw.get("reduction") == "none" else None)
    return loss.detach().numpy(), tx.grad.numpy()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("eps, ignore", [(0.0, -100), (0.1, -100), (0.0, 2), (0.25, 2)])
def test_cross_entropy_rows_match_torch(reduction, weighted, eps, ignore, monkeypatch):
    rng = np.random.default_rng(0)
    x = _rand(300, 37) + 1.0
    x[5, 3] = -np.inf  # a class no sample can have: its softmax is 0
    t = rng.integers(0, 37, 300)
    t[:40] = 2  # ignored with ignore_index=2
    x[7, :] = np.nan  # NaN logits in a row whose target is ignored (loss 0 there)
    w = rng.uniform(0.2, 2.0, 37).astype(np.float32) if weighted else None
    kw = dict(reduction=reduction, label_smoothing=eps, ignore_index=ignore)
    if ignore == -100:  # no ignored rows: no NaN row
        x[7, :] = 0.5
    calls = []
    real = _native.cross_entropy
    monkeypatch.setattr(_native, "cross_entropy", lambda *a: calls.append(1) or real(*a))
    g = _rand(300, seed=5)
    loss, dx = _ce_run(mg, x, t, w, kw, g)
    assert calls, "a float32 CPU cross entropy did not take the kernels"
    tloss, tdx = _ce_run(torch, x, t, w, kw, g)
    _close(loss, tloss, rtol=2e-5, atol=1e-5)
    _close(dx, tdx, rtol=1e-5, atol=1e-7)
    # NOTE: an ignored row of NaN logits: PyTorch's loss is 0 there and its gradient NaN
    # (0 - softmax * 0), as the kernels'; the NumPy formulas give NaN or 0 by reduction.
    # Compared with those without that row:
    x[7, :] = 0.5
    loss, dx = _ce_run(mg, x, t, w, kw, g)
    monkeypatch.setattr(_native, "cross_entropy", lambda *a: None)  # the NumPy formulas
    rloss, rdx = _ce_run(mg, x, t, w, kw, g)
    _close(loss, rloss, rtol=2e-5, atol=1e-5)
    _close(dx, rdx, rtol=1e-5, atol=1e-7)


def test_cross_entropy_every_target_ignored_and_double_backward_as_torch():
    x = _rand(6, 5)
    t = np.full(6, 3)
    for red in ("mean", "sum", "none"):
        kw = dict(reduction=red, ignore_index=3, label_smoothing=0.1)
        got, want = (
            _ce_run(mg, x, t, None, kw, np.ones(6, np.float32)),
            _ce_run(torch, x, t, None, kw, np.ones(6, np.float32)),
        )
        _close(got[0], want[0])  # mean: 0 / 0 = NaN, as PyTorch's
        np.testing.assert_array_equal(got[1], want[1])  # all zeros
    t = np.array([0, 4, 1, 1, 2, 3])
    w = np.float32([0.5, 1.0, 2.0, 0.3, 1.5])
    for kw in (dict(label_smoothing=0.2), dict(reduction="sum"), dict(ignore_index=1)):
        _close(_ce_run(mg, x, t, w, kw, create_graph=True),
               _ce_run(torch, x, t, w, kw, create_graph=True), rtol=1e-4, atol=1e-6)  # fmt: skip


def test_cross_entropy_kernels_split_rows_across_threads_and_decline_other_inputs():
    x = _rand(4096, 100)
    t = np.random.default_rng(1).integers(0, 100, 4096)
    g = _rand(4096, seed=2)
    old = get_num_threads()
    out = {}
    try:
        for n in (1, 2):
            set_num_threads(n)
            loss, lse, wt = _native.cross_entropy(x, t, None, -100, 0.1)
            dx = _native.cross_entropy_backward(x, t, None, lse, g, 0.0, -100, 0.1)
            out[n] = (loss, lse, wt, dx)
    finally:
        set_num_threads(old)
    for a, b in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, b)
    assert _native.cross_entropy(x.astype(np.float64), t, None, -100, 0.0) is None
    assert _native.cross_entropy(x[:, ::2], t, None, -100, 0.0) is None
    assert _native.cross_entropy(x, t.astype(np.float32), None, -100, 0.0) is None
    assert _native.cross_entropy(x, t[:5], None, -100, 0.0) is None
    x3 = _rand(4, 5, 3)  # (N, C, d): the general path, with PyTorch's values
    t3 = np.random.default_rng(3).integers(0, 5, (4, 3))
    _close(F.cross_entropy(mg.tensor(x3), mg.tensor(t3)).numpy(),
           TF.cross_entropy(torch.tensor(x3), torch.tensor(t3)).numpy())  # fmt: skip


ADAM_CASES = [
    ("Adam", {}), ("Adam", dict(weight_decay=0.1)), ("Adam", dict(amsgrad=True, maximize=True)),
    ("Adam", dict(weight_decay=0.05, maximize=True, amsgrad=True, betas=(0.8, 0.9))),
    ("AdamW", {}), ("AdamW", dict(weight_decay=0.3, amsgrad=True, eps=1e-3)),
    ("AdamW", dict(maximize=True, lr=0.05)),
]  # fmt: skip


def _adam_run(name, kw, shapes, steps=4):
    rng = np.random.default_rng(11)
    ps = [mg.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True) for s in shapes]
    opt = getattr(mg.optim, name)(ps, **kw)
    for k in range(steps):
        for i, p in enumerate(ps):
            g = np.random.default_rng(100 * k + i).standard_normal(p.shape).astype(np.float32)
            g.reshape(-1)[:3] = [0.0, 1e-30, 1e4]  # moments at the edges of float32's range
            p.grad = mg.tensor(g)
        opt.step()
    states = [{k: np.asarray(v._data) for k, v in opt.state[p].items()} for p in ps]
    return [p.detach().numpy() for p in ps], states


@pytest.mark.parametrize("name, kw", ADAM_CASES)
def test_adam_step_bit_for_bit_as_the_numpy_update_and_close_to_torch(name, kw, monkeypatch):
    shapes = [(300, 700), (64,), (5, 3)]  # the first is split across threads
    calls = []
    real = _native.adam_step
    monkeypatch.setattr(_native, "adam_step", lambda *a: calls.append(1) or real(*a))
    ps, states = _adam_run(name, kw, shapes)
    assert calls, f"a float32 CPU {name} step did not take the kernels"
    monkeypatch.setattr(_native, "adam_step", lambda *a: None)  # Adam.update's NumPy passes
    rps, rstates = _adam_run(name, kw, shapes)
    for a, b in zip(ps, rps):
        np.testing.assert_array_equal(a.view(np.int32), b.view(np.int32))
    for sa, sb in zip(states, rstates):
        assert sa.keys() == sb.keys()
        for k in sa:
            np.testing.assert_array_equal(sa[k], sb[k])
    rng = np.random.default_rng(11)
    tps = [torch.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
           for s in shapes]  # fmt: skip
    topt = getattr(torch.optim, name)(tps, **kw)
    for k in range(4):
        for i, p in enumerate(tps):
            g = np.random.default_rng(100 * k + i).standard_normal(p.shape).astype(np.float32)
            g.reshape(-1)[:3] = [0.0, 1e-30, 1e4]
            p.grad = torch.tensor(g)
        topt.step()
    for a, t in zip(ps, tps):
        _close(a, t.detach().numpy(), rtol=1e-5, atol=1e-6)


SGD_CASES = [
    {}, dict(momentum=0.9), dict(momentum=0.9, nesterov=True), dict(weight_decay=0.1),
    dict(weight_decay=0.1, maximize=True), dict(maximize=True),
    dict(momentum=0.8, dampening=0.3, weight_decay=0.01),
    dict(momentum=0.5, nesterov=True, weight_decay=0.02, maximize=True),
]  # fmt: skip


def _sgd_run(kw, shapes, lib=mg, steps=4):
    rng = np.random.default_rng(12)
    ps = [lib.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
          for s in shapes]  # fmt: skip
    opt = lib.optim.SGD(ps, lr=0.05, **kw)
    for k in range(steps):
        for i, p in enumerate(ps):
            g = np.random.default_rng(100 * k + i).standard_normal(p.shape).astype(np.float32)
            g.reshape(-1)[:3] = [0.0, 1e-30, 1e4]
            p.grad = lib.tensor(g)
        opt.step()
    bufs = [opt.state[p].get("momentum_buffer") for p in ps]
    return [p.detach().numpy() for p in ps], [None if b is None else b.numpy() for b in bufs]


@pytest.mark.parametrize("kw", SGD_CASES, ids=[str(k) for k in SGD_CASES])
def test_sgd_step_bit_for_bit_as_the_numpy_update_and_close_to_torch(kw, monkeypatch):
    shapes = [(300, 700), (64, 40), (5, 3)]  # the first is split across threads; the last
    calls = []  # is below the kernels' size
    real = _native.sgd_step
    monkeypatch.setattr(_native, "sgd_step", lambda *a: calls.append(1) or real(*a))
    ps, bufs = _sgd_run(kw, shapes)
    assert len(calls) >= 8, "float32 CPU SGD steps did not take the kernels"
    monkeypatch.setattr(_native, "sgd_step", lambda *a: (False, None))  # the NumPy passes
    rps, rbufs = _sgd_run(kw, shapes)
    for a, b in zip(ps + bufs, rps + rbufs):
        if a is None:
            assert b is None
            continue
        np.testing.assert_array_equal(a.view(np.int32), b.view(np.int32))
    tps, tbufs = _sgd_run(kw, shapes, torch)
    for a, t in zip(ps + bufs, tps + tbufs):
        if a is not None:
            _close(a, t, rtol=1e-5, atol=1e-6)


def test_adam_step_leaves_what_the_kernels_do_not_take_to_the_numpy_update():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((6, 8)).astype(np.float32)
    p32 = mg.tensor(base, requires_grad=True)
    p64 = mg.tensor(base.astype(np.float64), requires_grad=True)
    opt = mg.optim.AdamW([p32, p64], lr=0.1)
    g = rng.standard_normal((8, 6)).astype(np.float32)
    p32.grad = mg.tensor(g).T  # a transposed (not C-contiguous) gradient
    p64.grad = mg.tensor(g.astype(np.float64).T)
    opt.step()
    t32 = torch.tensor(base, requires_grad=True)
    topt = torch.optim.AdamW([t32], lr=0.1)
    t32.grad = torch.tensor(g).T
    topt.step()
    _close(p32.detach().numpy(), t32.detach().numpy(), rtol=1e-6, atol=1e-7)
    _close(p64.detach().numpy(), t32.detach().numpy(), rtol=1e-6, atol=1e-7)
    assert float(opt.state[p32]["step"]) == float(opt.state[p64]["step"]) == 1.0


# (input shape, channel multiplier, kernel, stride, padding, dilation, bias); 3-d shapes are
# conv1d's (N, C, L)
DWCONV = [
    ((2, 3, 9, 11), 1, (3, 3), 1, 1, 1, True),
    ((2, 4, 8, 8), 2, (3, 3), 2, (2, 1), 1, False),
    ((1, 2, 7, 5), 3, (3, 3), (2, 3), (0, 2), 2, True),
    ((3, 5, 6, 1), 1, (3, 1), 1, (1, 0), 1, True),  # width 1
    ((2, 2, 6, 6), 1, (3, 3), 1, 3, 1, True),  # padding larger than kernel / 2
    ((2, 3, 10, 10), 2, (2, 2), 4, 0, 1, True),  # stride larger than the kernel
    ((2, 6, 14, 14), 1, (5, 5), 2, 5, 3, False),
    ((1, 4, 1, 1), 1, (1, 1), 1, 0, 1, True),
    ((2, 8, 17, 23), 1, (7, 7), 1, 3, 1, True),
    ((3, 4, 40), 1, (5,), 1, 2, 1, True),
    ((2, 6, 33), 2, (4,), 3, 1, 2, False),
    ((1, 3, 9), 1, (31,), 1, 15, 1, True),
]  # fmt: skip


def _dw_close(got, want):
    """Depthwise results (y, dx, dw, db) against PyTorch's, None where PyTorch's is None."""
    for a, e, name in zip(got, want, ("y", "dx", "dw", "db")):
        if e is None:
            assert a is None
            continue
        assert a.shape == e.shape, name
        _close(a, e, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(e).max())))


def _dw_run(lib, x, w, b, g, stride, padding, dilation, create_graph=False):
    conv = (torch.conv2d if lib is torch else mg.conv2d) if x.ndim == 4 else (
        torch.conv1d if lib is torch else mg.conv1d)  # fmt: skip
    ts = [None if a is None else lib.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = conv(ts[0], ts[1], ts[2], stride, padding, dilation, x.shape[1])
    if create_graph:  # the gradient of the input gradient's sum of squares
        (gx,) = lib.autograd.grad(y, ts[0], lib.tensor(g), create_graph=True)
        (gw,) = lib.autograd.grad((gx * gx).sum(), ts[1])
        return gw.detach().numpy()
    y.backward(lib.tensor(g))
    return [y.detach().numpy()] + [None if t is None else t.grad.numpy() for t in ts]


@pytest.mark.parametrize("shape, mult, k, stride, padding, dilation, bias", DWCONV)
def test_depthwise_conv_matches_torch_and_the_columns_path(
    shape, mult, k, stride, padding, dilation, bias, monkeypatch
):
    rng = np.random.default_rng(1)
    c = shape[1]
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((c * mult, 1, *k)).astype(np.float32)
    b = rng.standard_normal(c * mult).astype(np.float32) if bias else None
    conv = torch.conv2d if x.ndim == 4 else torch.conv1d
    g = rng.standard_normal(conv(torch.tensor(x), torch.tensor(w), None, stride, padding,
                                 dilation, c).shape).astype(np.float32)  # fmt: skip
    calls = []
    real = _native.depthwise_conv2d_backward
    monkeypatch.setattr(_native, "depthwise_conv2d_backward",
                        lambda *a: calls.append(1) or real(*a))  # fmt: skip
    got = _dw_run(mg, x, w, b, g, stride, padding, dilation)
    assert calls, "a float32 CPU depthwise convolution did not take the kernels"
    want = _dw_run(torch, x, w, b, g, stride, padding, dilation)
    _dw_close(got, want)
    monkeypatch.setattr(_native, "depthwise_conv2d", lambda *a: None)  # the columns path
    ref = _dw_run(mg, x, w, b, g, stride, padding, dilation)
    for a, e in zip(got, ref):
        if e is not None:
            _close(a, e, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(e).max())))


def test_depthwise_conv_infinities_nan_and_double_backward_as_torch():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 8, 9)).astype(np.float32)
    x[0, 0, 3, 0] = np.inf  # first column: the chunks read it past the previous row's end
    x[0, 1, 5, 0] = -np.inf
    x[1, 2, 2, 4] = np.nan
    w = rng.standard_normal((3, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    g = rng.standard_normal((2, 3, 8, 9)).astype(np.float32)
    got = _dw_run(mg, x, w, b, g, 1, 1, 1)
    want = _dw_run(torch, x, w, b, g, 1, 1, 1)
    for a, e in zip(got, want):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(e))
        np.testing.assert_array_equal(np.isinf(a), np.isinf(e))
        fin = np.isfinite(e)
        _close(a[fin], e[fin], rtol=1e-5, atol=1e-5)
    x = rng.standard_normal((2, 4, 6, 7)).astype(np.float32)
    w = rng.standard_normal((8, 1, 3, 2)).astype(np.float32)
    g = rng.standard_normal((2, 8, 3, 4)).astype(np.float32)
    got = _dw_run(mg, x, w, None, g, 2, 1, 1, create_graph=True)
    _close(got, _dw_run(torch, x, w, None, g, 2, 1, 1, create_graph=True), rtol=1e-4, atol=1e-4)


def test_depthwise_conv_kernels_split_planes_across_threads_and_decline_other_inputs():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 32, 48, 48)).astype(np.float32)
    w = rng.standard_normal((64, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    g = rng.standard_normal((8, 64, 24, 24)).astype(np.float32)
    geo = ((2, 2), (1, 1), (1, 1))
    old = get_num_threads()
    out = {}
    try:
        for n in (1, 2):
            set_num_threads(n)
            assert _native._parts(g.size * 9 // 8) == min(n, get_num_threads())
            y = _native.depthwise_conv2d(x, w, b, *geo, (24, 24))
            out[n] = (y,) + _native.depthwise_conv2d_backward(g, x, w, *geo, True, True, True)
    finally:
        set_num_threads(old)
    for a, e in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, e)  # planes never split: the same sums
    x, g = x[:, :, :24, :24], g[:, :, :12, :12]  # strided views
    assert _native.depthwise_conv2d(x.astype(np.float64), w, b, *geo, (12, 12)) is None
    assert _native.depthwise_conv2d(x, w.reshape(32, 2, 3, 3), b, *geo, (12, 12)) is None
    assert _native.depthwise_conv2d(x, w[:60], None, *geo, (12, 12)) is None  # 60 % 32
    # strided arrays are copied, with the values of contiguous ones
    y = _native.depthwise_conv2d(x, w, b, *geo, (12, 12))
    np.testing.assert_array_equal(y, _native.depthwise_conv2d(x.copy(), w, b, *geo, (12, 12)))
    got = _native.depthwise_conv2d_backward(g, x, w, *geo, True, True, False)
    want = _native.depthwise_conv2d_backward(g.copy(), x.copy(), w, *geo, True, True, False)
    for a, e in zip(got, want):
        np.testing.assert_array_equal(a, e)
    # float64 (the columns path) keeps PyTorch's values
    x64, w64 = x[:2].astype(np.float64), w.astype(np.float64)
    want = torch.conv2d(torch.tensor(x64), torch.tensor(w64), None, 2, 1, 1, 32).numpy()
    _close(mg.conv2d(mg.tensor(x64), mg.tensor(w64), None, 2, 1, 1, 32).numpy(), want)


def _lstm_run(x, hx, state, scale=1.0, **kw):
    """Output, (h_n, c_n) and every gradient of an LSTM (PyTorch's weights, times ``scale``:
    large weights saturate the gates) in manygrad and in PyTorch."""
    torch.manual_seed(0)
    tl = torch.nn.LSTM(x.shape[-1], 24, batch_first=True, **kw)
    with torch.no_grad():
        for p in tl.parameters():
            p.mul_(scale)
    ml = mg.nn.LSTM(x.shape[-1], 24, batch_first=True, **kw)
    ml.load_state_dict({k: mg.tensor(v.detach().numpy()) for k, v in state(tl).items()})
    out = []
    for lib, layer in ((mg, ml), (torch, tl)):
        xi = lib.tensor(x, requires_grad=True)
        hi = tuple(lib.tensor(a, requires_grad=True) for a in hx)
        y, (hn, cn) = layer(xi, hi)
        g = np.random.default_rng(9).standard_normal(tuple(y.shape)).astype(np.float32)
        (y * lib.tensor(g)).sum().backward(retain_graph=True)
        (hn.sum() + 2 * cn.sum()).backward()
        grads = [xi.grad, *[a.grad for a in hi], *[p.grad for p in layer.parameters()]]
        out.append([a.detach().numpy() for a in (y, hn, cn, *grads)])
    return out


LSTM_CASES = [({}, 1.0), ({}, 8.0), (dict(bidirectional=True), 1.0), (dict(proj_size=7), 1.0),
              (dict(num_layers=2), 3.0)]  # fmt: skip


@pytest.mark.parametrize("kw, scale", LSTM_CASES)
def test_lstm_cell_kernels_match_torch_and_the_numpy_steps(kw, scale, monkeypatch):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 9, 6)).astype(np.float32)
    lead = (2 if kw.get("bidirectional") else 1) * kw.get("num_layers", 1)
    hx = [rng.standard_normal((lead, 5, kw.get("proj_size", 24))).astype(np.float32),
          rng.standard_normal((lead, 5, 24)).astype(np.float32)]  # fmt: skip
    calls = []
    for name in ("lstm_cell_steps", "lstm_cell_backward_steps"):
        real = getattr(_native, name)
        monkeypatch.setattr(_native, name, lambda *a, r=real, n=name: calls.append(n) or r(*a))
    (got, want) = _lstm_run(x, hx, lambda t: t.state_dict(), scale, **kw)
    assert {"lstm_cell_steps", "lstm_cell_backward_steps"} <= set(calls)
    for a, e in zip(got, want):
        _close(a, e, rtol=2e-5, atol=2e-5 * max(1.0, float(np.abs(e).max())))
    monkeypatch.setattr(_native, "lstm_cell_steps", lambda *a: None)  # the NumPy steps
    monkeypatch.setattr(_native, "lstm_cell_backward_steps", lambda *a: None)
    (ref, _) = _lstm_run(x, hx, lambda t: t.state_dict(), scale, **kw)
    for a, e in zip(got, ref):
        _close(a, e, rtol=2e-5, atol=2e-5 * max(1.0, float(np.abs(e).max())))


def test_lstm_cell_kernels_split_across_threads_without_changing_values():
    rng = np.random.default_rng(5)
    nd, h, b, steps = 2, 512, 32, 3  # 16384 values a gate block: split in two
    gs = rng.standard_normal((steps, nd, 4 * h, b)).astype(np.float32) * 3
    gi = rng.standard_normal(gs.shape).astype(np.float32)
    out = {}
    old = get_num_threads()
    try:
        for n in (1, 2):
            set_num_threads(n)
            g = gs.copy()
            cs = np.zeros((steps + 1, nd, h, b), np.float32)
            tcs, hs = np.empty((steps, nd, h, b), np.float32), np.zeros_like(cs)
            step = _native.lstm_cell_steps(g, gi, cs, tcs, hs)
            for k in range(steps):
                step(k, k, k, k + 1, k, k + 1)
            dh, dc = rng.standard_normal((2, nd, h, b)).astype(np.float32)
            dgs = np.empty((nd, 4 * h, steps * b), np.float32)  # step k: columns [k b, k b + b)
            back = _native.lstm_cell_backward_steps(dh, hs[1:], dc, g, tcs, cs, dgs)
            for k in range(steps - 1, -1, -1):
                back(0, k, 0, k, k, k, k, 0, 0)
            out[n] = (g, cs, tcs, hs, dgs, dc)
            rng = np.random.default_rng(5)
            rng.standard_normal(gs.shape), rng.standard_normal(gs.shape)  # the same dh, dc
    finally:
        set_num_threads(old)
    for a, e in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, e)
    assert _native.lstm_cell_steps(gs.astype(np.float64), gi, cs, tcs, hs) is None
    assert _native.lstm_cell_steps(gs, gi, cs[:, :, :5], tcs, hs) is None


@pytest.mark.parametrize("n, eps, weighted", [(150, 0.0, False), (150, 0.2, True), (64, 0.1, False),
                                               (1000, 0.0, True)])  # fmt: skip
def test_cross_entropy_long_rows_and_gradients_from_the_forward_pass_as_torch(n, eps, weighted):
    rng = np.random.default_rng(6)
    x = _rand(40, n) + 1.0
    x[3, 70 % n] = -np.inf  # within the rows' blocks of 64 and in their masked tails
    x[4, n - 1] = -np.inf
    x[5, :] = -np.inf
    x[6, 10] = np.nan
    x[7, n - 2] = np.inf
    t = rng.integers(0, n, 40)
    t[[3, 4]] = [70 % n + 1, n - 3]
    t[8:12] = 5  # ignored
    w = rng.uniform(0.2, 2.0, n).astype(np.float32) if weighted else None
    for red in ("mean", "sum", "none"):
        kw = dict(reduction=red, label_smoothing=eps, ignore_index=5)
        g = _rand(40, seed=7)
        got, want = _ce_run(mg, x, t, w, kw, g), _ce_run(torch, x, t, w, kw, g)
        _close(got[0], want[0], rtol=2e-5, atol=1e-5)
        _close(got[1], want[1], rtol=1e-5, atol=1e-7)


def test_cross_entropy_backward_twice_non_finite_upstream_and_changed_grads_as_torch():
    x = _rand(30, 70)
    t = np.random.default_rng(8).integers(0, 70, 30)
    t[:4] = 1  # ignored below
    outs = []
    for lib in (mg, torch):
        f = TF if lib is torch else F
        tx = lib.tensor(x, requires_grad=True)
        loss = f.cross_entropy(tx, lib.tensor(t), ignore_index=1, reduction="none")
        g = lib.tensor(np.where(np.arange(30) % 3 == 0, 2.0, -0.5).astype(np.float32))
        loss.backward(g, retain_graph=True)
        first = tx.grad.numpy().copy()
        tx.grad.mul_(0)  # a changed gradient must not change the next backward's
        loss.backward(g, retain_graph=True)
        second = tx.grad.numpy().copy()
        tx.grad = None
        up = np.ones(30, np.float32)
        up[[0, 5]] = [np.inf, np.nan]  # an ignored row's inf gives 0 there, as PyTorch's
        loss.backward(lib.tensor(up))
        outs.append((first, second, tx.grad.numpy()))
    for a, e in zip(outs[0], outs[1]):
        _close(a, e, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(outs[0][2][0], np.zeros(70, np.float32))


def _bn_run(lib, x, w, b, g, stats, training, momentum=0.1, steps=1, memory_format=None):
    """Output, input/weight/bias gradients and running statistics of F.batch_norm
    (``stats``: (running_mean, running_var) arrays or None) after ``steps`` calls."""
    f = TF if lib is torch else F
    tx = lib.tensor(x, requires_grad=True)
    xin = tx if memory_format is None else tx.contiguous(memory_format=memory_format)
    tw = None if w is None else lib.tensor(w, requires_grad=True)
    tb = None if b is None else lib.tensor(b, requires_grad=True)
    rm, rv = (None, None) if stats is None else (lib.tensor(s.copy()) for s in stats)
    for _ in range(steps):
        y = f.batch_norm(xin, rm, rv, tw, tb, training, momentum, 1e-5)
    y.backward(lib.tensor(g))
    out = [y.detach().float().numpy()]
    out += [None if t is None else t.grad.float().numpy() for t in (tx, tw, tb)]
    return out + [None if t is None else t.numpy() for t in (rm, rv)]


BN_CASES = [
    ((16, 24, 12, 12), "both", True, True), ((16, 24, 12, 12), "both", False, True),
    ((8, 40, 6, 6), "w", True, True), ((8, 40, 6, 6), "b", False, True),
    ((8, 40, 6, 6), None, True, False), ((64, 48), "both", True, True),
    ((64, 48), "both", False, True), ((20, 6, 50), "both", True, True),
    ((4, 5, 3, 4, 6), "both", True, True), ((4, 5, 3, 4, 6), "w", False, True),
    ((3, 7, 40, 40), "both", True, True), ((2, 3, 1, 1), "both", True, True),
]  # fmt: skip


@pytest.mark.parametrize("shape, affine, training, running", BN_CASES)
def test_batch_norm_matches_torch_and_the_numpy_path(shape, affine, training, running,
                                                     monkeypatch):  # fmt: skip
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 2 + 3).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    c = shape[1]
    w = (rng.standard_normal(c) + 1).astype(np.float32) if affine in ("both", "w") else None
    b = rng.standard_normal(c).astype(np.float32) if affine in ("both", "b") else None
    stats = None
    if running or not training:
        stats = (rng.standard_normal(c).astype(np.float32),
                 (rng.random(c) + 0.5).astype(np.float32))  # fmt: skip
    calls = []
    real = _native.batch_norm_backward
    monkeypatch.setattr(_native, "batch_norm_backward", lambda *a: calls.append(1) or real(*a))
    got = _bn_run(mg, x, w, b, g, stats, training)
    assert calls, "a float32 CPU batch norm did not take the kernels"
    # NOTE: PyTorch's CPU backward fails on a bias without a weight: ones stand in for it
    wt = w if w is not None or b is None else np.ones(c, np.float32)
    f64 = [None if a is None else a.astype(np.float64) for a in (x, wt, b, g)]
    s64 = None if stats is None else [s.astype(np.float64) for s in stats]
    want = _bn_run(torch, *f64, s64, training)
    names = ("y", "dx", "dw", "db", "running_mean", "running_var")
    # NOTE: within a few float32 roundings of the largest value (of dx's terms' size where
    # they cancel: two values per channel leave dx near 0)
    axes = (0,) + tuple(range(2, x.ndim))
    rstd = 1 / np.sqrt(f64[0].var(axis=axes) + 1e-5) if training else 1 / np.sqrt(s64[1] + 1e-5)
    dx_scale = np.abs(g).max() * (1 if w is None else np.abs(w).max()) * rstd.max()
    for a, e, name in zip(got, want, names):
        if a is None:
            assert e is None or (name == "dw" and w is None), name
            continue
        scale = max(float(np.abs(e).max()), dx_scale if name == "dx" else 0.0, 1.0)
        assert float(np.abs(a - e).max()) / scale <= 2e-6, name
    monkeypatch.setattr(_native, "batch_norm", lambda *a: None)  # the NumPy formulas
    monkeypatch.setattr(_native, "batch_norm_eval", lambda *a: None)
    ref = _bn_run(mg, x, w, b, g, stats, training)
    for a, e in zip(got, ref):
        if a is not None:
            _close(a, e, rtol=1e-5, atol=1e-5 * max(float(np.abs(e).max()), 1.0))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_batch_norm_16_bit_input_takes_the_kernels_as_torch(dtype, monkeypatch):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((8, 12, 10, 10)) + 1).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    w, b = rng.random(12).astype(np.float32) + 0.5, rng.standard_normal(12).astype(np.float32)
    stats = (np.zeros(12, np.float32), np.ones(12, np.float32))
    calls = []
    real = _native.batch_norm
    monkeypatch.setattr(_native, "batch_norm", lambda *a: calls.append(1) or real(*a))
    outs = []
    for lib in (mg, torch):
        f = TF if lib is torch else F
        dt = getattr(lib, dtype)
        tx = lib.tensor(x).to(dt).requires_grad_()
        tw, tb = lib.tensor(w, requires_grad=True), lib.tensor(b, requires_grad=True)
        rm, rv = lib.tensor(stats[0]), lib.tensor(stats[1])
        y = f.batch_norm(tx, rm, rv, tw, tb, True, 0.1, 1e-5)
        assert y.dtype == dt
        y.backward(lib.tensor(g).to(dt))
        assert tx.grad.dtype == dt
        outs.append([t.detach().float().numpy() for t in (y, tx.grad, tw.grad, tb.grad, rm, rv)])
    assert calls
    tol = 1e-2 if dtype == "float16" else 6e-2
    for a, e in zip(*outs):
        _close(a, e, rtol=tol, atol=tol * max(1.0, float(np.abs(e).max())))


def test_batch_norm_modules_running_stats_momentum_none_and_eval_as_torch():
    rng = np.random.default_rng(2)
    xs = [(rng.standard_normal((6, 5, 7, 7)) * (k + 1) + k).astype(np.float32) for k in range(3)]
    outs = []
    for lib in (mg, torch):
        m = lib.nn.BatchNorm2d(5, momentum=None)
        with lib.no_grad():
            m.weight.copy_(lib.tensor(np.linspace(0.5, 2, 5, dtype=np.float32)))
        ys = [m(lib.tensor(x)).detach().numpy() for x in xs]
        m.eval()
        ys.append(m(lib.tensor(xs[0])).detach().numpy())
        outs.append(ys + [m.running_mean.numpy(), m.running_var.numpy()])
    for a, e in zip(*outs):
        _close(a, e, rtol=1e-5, atol=1e-5)


def test_batch_norm_channels_last_falls_back_and_double_backward_as_torch(monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 6, 5, 5)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    w, b = rng.random(6).astype(np.float32) + 0.5, rng.standard_normal(6).astype(np.float32)
    for training in (True, False):
        stats = (rng.standard_normal(6).astype(np.float32), rng.random(6).astype(np.float32) + 1)
        got = _bn_run(mg, x, w, b, g, stats, training, memory_format=mg.channels_last)
        want = _bn_run(torch, x, w, b, g, stats, training, memory_format=torch.channels_last)
        for a, e in zip(got, want):
            _close(a, e, rtol=1e-5, atol=1e-5)
    outs = []
    for lib in (mg, torch):  # the gradient of the input gradient's sum of squares
        f = TF if lib is torch else F
        tx, tw = lib.tensor(x, requires_grad=True), lib.tensor(w, requires_grad=True)
        for training in (True, False):
            rm, rv = lib.zeros(6), lib.ones(6) * 2
            y = f.batch_norm(tx, rm, rv, tw, None, training, 0.1, 1e-5)
            (gx,) = lib.autograd.grad(y, tx, lib.tensor(g), create_graph=True)
            gs = lib.autograd.grad((gx * gx).sum(), (tx, tw), allow_unused=True)
            outs.append([None if a is None else a.numpy() for a in gs])
    assert outs[1][0] is None and outs[3][0] is None  # evaluation: dx does not depend on x
    for a, e in zip(outs[:2], outs[2:]):
        for p, q in zip(a, e):
            if q is not None:
                _close(p, q, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_backward_falls_back_from_the_kernels_statistics(training, monkeypatch):
    # a gradient the kernels decline: the NumPy backward from the forward's mean and rstd
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((6, 5, 7, 3)) * 3 + 100).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    w, b = rng.random(5).astype(np.float32) + 0.5, rng.standard_normal(5).astype(np.float32)
    stats = (np.full(5, 99, np.float32), rng.random(5).astype(np.float32) + 8)
    calls = []
    real = _native.batch_norm_backward
    monkeypatch.setattr(_native, "batch_norm_backward", lambda *a: calls.append(real(*a)))
    got = _bn_run(mg, x, w, b, g, stats, training)
    assert calls and calls[0] is not None  # the kernels took it; their result was dropped
    want = _bn_run(torch, x, w, b, g, stats, training)
    for a, e in zip(got, want):
        _close(a, e, rtol=2e-5, atol=2e-5 * max(1.0, float(np.abs(e).max())))


def test_batch_norm_kernels_split_channels_across_threads_and_decline_other_inputs():
    x = _rand(16, 32, 24, 24) + 2
    w, b = _rand(32, seed=1), _rand(32, seed=2)
    g = _rand(16, 32, 24, 24, seed=3)
    old = get_num_threads()
    out = {}
    try:
        for n in (1, 2):
            set_num_threads(n)
            y, mean, rstd, var = _native.batch_norm(x, w, b, 1e-5)
            out[n] = (y, mean, rstd, var) + _native.batch_norm_backward(g, x, mean, rstd, w, True,
                                                                        True)  # fmt: skip
            out[n] += (_native.batch_norm_eval(x, mean[0], rstd * w, b),)
    finally:
        set_num_threads(old)
    for a, e in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, e)  # channels never split: the same sums
    assert _native.batch_norm(x.astype(np.float64), None, None, 1e-5) is None
    assert _native.batch_norm(x[:, ::2], None, None, 1e-5) is None
    assert _native.batch_norm_eval(x, mean[0], rstd.astype(np.float64), b) is None
    # a broadcast gradient (y.sum().backward()) is copied, not declined
    got = _native.batch_norm_backward(np.broadcast_to(np.float32(1), x.shape), x, mean, rstd, w,
                                      True, True)  # fmt: skip
    want = _native.batch_norm_backward(np.ones_like(x), x, mean, rstd, w, True, True)
    for a, e in zip(got, want):
        np.testing.assert_array_equal(a, e)


def _wino_run(lib, x, w, b, g, pad, native=True):
    """conv2d through Winograd (float32): output and gradients, with the C transforms or,
    ``native`` False, the NumPy formulas."""
    with pytest.MonkeyPatch.context() as mp:
        if not native:
            mp.setattr(_native, "takes", lambda *a: False)
            mp.setattr(_native, "winograd_filter", lambda *a: None)
            mp.setattr(_native, "winograd_filter_backward", lambda *a: None)
        ts = [None if a is None else lib.tensor(a, requires_grad=True) for a in (x, w, b)]
        conv = torch.conv2d if lib is torch else mg.conv2d
        y = conv(ts[0], ts[1], ts[2], 1, pad)
        y.sum().backward() if g is None else y.backward(lib.tensor(g))
    return [y.detach().numpy()] + [None if t is None else t.grad.numpy() for t in ts]


WINO_CASES = [  # input, output channels, padding: odd sizes, pads 0..2 and unequal, channel
    # counts off the 16-lane groups, planes above 256 values (the 8x8 transposes)
    ((5, 32, 6, 7), 4, 1), ((3, 33, 9, 4), 6, 0), ((2, 32, 5, 5), 3, 2), ((3, 40, 4, 6), 2, (2, 0)),
    ((2, 32, 20, 23), 5, 1), ((2, 48, 33, 17), 17, 2), ((1, 32, 32, 32), 33, 1),
    ((2, 64, 16, 16), 48, (0, 2)),
]  # fmt: skip


@pytest.mark.parametrize("keep", [True, False])
@pytest.mark.parametrize("xs, o, pad", WINO_CASES)
def test_winograd_transforms_match_torch_and_the_numpy_formulas(xs, o, pad, keep, monkeypatch):
    wg = mg.ops._winograd
    monkeypatch.setattr(wg, "MIN_TILES", 0)
    monkeypatch.setattr(wg, "KEEP_BYTES", 1 << 30 if keep else 0)
    rng = np.random.default_rng(5)
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal((o, xs[1], 3, 3)) / 10).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    y_shape = torch.conv2d(torch.tensor(x), torch.tensor(w), None, 1, pad).shape
    g = rng.standard_normal(tuple(y_shape)).astype(np.float32)
    calls = []
    real = _native.winograd_fold
    monkeypatch.setattr(_native, "winograd_fold", lambda *a: calls.append(1) or real(*a))
    got = _wino_run(mg, x, w, b, g, pad)
    assert calls, "a float32 Winograd convolution did not take the C transforms"
    want = _wino_run(torch, *(a.astype(np.float64) for a in (x, w, b, g)), pad)
    ref = _wino_run(mg, x, w, b, g, pad, native=False)
    for a, e, r, name in zip(got, want, ref, ("y", "dx", "dw", "db")):
        scale = max(1.0, float(np.abs(e).max()))
        assert float(np.abs(a - e).max()) / scale <= 2e-6, name
        # NOTE: the same operations in the same order: the NumPy path's values, but for
        # the order of the sums of the overlapping tiles (dx) and of the bias gradient
        _close(a, r, rtol=1e-6, atol=1e-6 * scale)


def test_winograd_transforms_threads_broadcast_gradient_and_infinities(monkeypatch):
    wg = mg.ops._winograd
    monkeypatch.setattr(wg, "MIN_TILES", 0)
    monkeypatch.setattr(wg, "BLOCK_ELEMS", 2 * 16 * 4 * 4 * 32)  # blocks of 2 images
    monkeypatch.setattr(mg.ops._conv_kernels, "workers", lambda g, step: 2)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 32, 8, 8)).astype(np.float32)
    w = (rng.standard_normal((6, 32, 3, 3)) / 10).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    before = mg.get_num_threads()
    got = _wino_run(mg, x, w, b, None, 1)  # y.sum().backward(): a broadcast gradient
    assert mg.get_num_threads() == before
    want = _wino_run(torch, x, w, b, None, 1)
    for a, e in zip(got, want):
        _close(a, e, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(e).max())))
    x[0, 3, 2, 5], x[1, 7, 0, 0], x[4, 31, 7, 7] = np.inf, -np.inf, np.nan
    g = rng.standard_normal((5, 6, 8, 8)).astype(np.float32)
    # NOTE: one thread: np.errstate holds for the calling thread only
    monkeypatch.setattr(mg.ops._conv_kernels, "workers", lambda g, step: 1)
    with np.errstate(invalid="ignore"):  # inf - inf in the NumPy formulas
        got = _wino_run(mg, x, w, b, g, 1)
        ref = _wino_run(mg, x, w, b, g, 1, native=False)
    for a, r in zip(got, ref):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(r))
        np.testing.assert_array_equal(np.isinf(a), np.isinf(r))
        fin = np.isfinite(r)
        _close(a[fin], r[fin], rtol=1e-6, atol=1e-5)


AVG_POOL = [  # input, (kernel, stride, padding, ceil_mode, count_include_pad, divisor)
    ((2, 3, 8, 8), (2, 2, 0, False, True, None)), ((2, 3, 9, 7), (2, 2, 0, True, True, None)),
    ((2, 3, 9, 7), (2, 2, 0, False, True, None)), ((2, 3, 10, 10), (3, 2, 1, False, True, None)),
    ((2, 3, 10, 10), (3, 2, 1, False, False, None)),
    ((2, 3, 10, 11), (3, 2, 1, True, False, None)), ((2, 3, 10, 11), (3, 2, 1, True, True, None)),
    ((1, 2, 7, 9), ((3, 2), (1, 3), 1, True, True, 5)), ((1, 2, 7, 9), (3, 1, 1, False, False, None)),
    ((1, 2, 12, 13), (4, 4, (2, 1), True, False, None)),
    ((2, 2, 5, 5), (5, 1, 2, False, False, None)), ((2, 2, 6, 6), (3, 3, 0, True, True, None)),
    ((3, 4, 32, 32), (2, 2, 0, False, True, 3)), ((4, 5, 20), (4, 3, 2, True, False, None)),
]  # fmt: skip


def _avg_run(lib, x, g, args):
    f = TF if lib is torch else F
    tx = lib.tensor(x, requires_grad=True)
    pool = f.avg_pool1d if x.ndim == 3 else f.avg_pool2d
    k, s, p, ceil, inc, div = args
    y = pool(tx, k, s, p, ceil, inc) if x.ndim == 3 else pool(tx, k, s, p, ceil, inc, div)
    y.sum().backward() if g is None else y.backward(lib.tensor(g))
    return y.detach().numpy(), tx.grad.numpy()


@pytest.mark.parametrize("shape, args", AVG_POOL)
def test_avg_pool_matches_torch_and_the_numpy_path(shape, args, monkeypatch):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape).astype(np.float32)
    k, s, p, ceil, inc, div = args
    pool = TF.avg_pool1d if x.ndim == 3 else TF.avg_pool2d
    extra = () if x.ndim == 3 else (div,)
    g = rng.standard_normal(pool(torch.tensor(x), k, s, p, ceil, inc, *extra).shape)
    g = g.astype(np.float32)
    calls = []
    real = _native.avg_pool2d_backward
    monkeypatch.setattr(_native, "avg_pool2d_backward", lambda *a: calls.append(1) or real(*a))
    got = _avg_run(mg, x, g, args)
    assert calls, "a float32 CPU average pooling did not take the kernels"
    want = _avg_run(torch, x, g, args)
    np.testing.assert_array_equal(got[0], want[0])  # the same sums in the same order
    _close(got[1], want[1], rtol=1e-6, atol=1e-6)
    monkeypatch.setattr(_native, "avg_pool2d", lambda *a: None)  # the NumPy formulas
    ref = _avg_run(mg, x, g, args)
    _close(got[0], ref[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got[1], ref[1])  # added kernel offset by kernel offset


def test_avg_pool_kernels_threads_broadcast_gradient_double_backward_and_declines():
    x = _rand(16, 32, 24, 24)
    g = _rand(16, 32, 12, 12, seed=1)
    geo = ((12, 12), (3, 3), (2, 2), (1, 1), False, None)
    old = get_num_threads()
    out = {}
    try:
        for n in (1, 2):
            set_num_threads(n)
            out[n] = (_native.avg_pool2d(x, *geo),
                      _native.avg_pool2d_backward(g, (24, 24), *geo[1:]))  # fmt: skip
    finally:
        set_num_threads(old)
    for a, e in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, e)
    for a, e in zip(_avg_run(mg, x[:2], None, (2, 2, 0, False, True, None)),
                    _avg_run(torch, x[:2], None, (2, 2, 0, False, True, None))):  # fmt: skip
        _close(a, e)  # y.sum().backward(): a broadcast gradient
    outs = []
    for lib in (mg, torch):  # the gradient of the input gradient's sum of squares
        f = TF if lib is torch else F
        tx = lib.tensor(x[:2], requires_grad=True)
        y = f.avg_pool2d(tx * tx, 3, 2, 1, count_include_pad=False)
        (gx,) = lib.autograd.grad(y, tx, lib.tensor(g[:2]), create_graph=True)
        outs.append(lib.autograd.grad((gx * gx).sum(), tx)[0].numpy())
    _close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    assert _native.avg_pool2d(x.astype(np.float64), *geo) is None
    assert _native.avg_pool2d(x[:, :, ::2], (6, 12), *geo[1:]) is None


# ------------------------------------------------ short group-norm planes, one-channel convs

GN_SHORT = [((64, 32, 8, 8), 4), ((4, 6, 5, 5), 3), ((3, 8, 7, 7), 2), ((2, 4, 16, 16), 2),
            ((2, 4, 17, 15), 4), ((2, 6, 17), 3), ((3, 4, 1), 2), ((2, 4, 257), 2)]  # fmt: skip


@pytest.mark.parametrize("shape, groups", GN_SHORT)
def test_group_norm_short_planes_match_torch_and_the_numpy_path(shape, groups, monkeypatch):
    # planes of up to 256 values take the short-run loops (16 lanes, no peeled prologue):
    # counts below, at and past a chunk of 16, and 257 (the long loops) beside them
    rng = np.random.default_rng(4)
    x = (rng.standard_normal(shape) * 2 + 3).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    c = shape[1]
    w = (rng.standard_normal(c) + 1).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    got = _group_norm_run(mg, x, w, b, g, groups)
    want = _group_norm_run(torch, *(a.astype(np.float64) for a in (x, w, b, g)), groups)
    for a, e, name in zip(got, want, ("y", "dx", "dw", "db")):
        scale = max(float(np.abs(e).max()), 1.0)
        assert float(np.abs(a - e).max()) / scale <= 4e-6, name
    monkeypatch.setattr(_native, "group_norm", lambda *a: None)  # the NumPy blocks
    for a, e in zip(got, _group_norm_run(mg, x, w, b, g, groups)):
        _close(a, e, rtol=1e-5, atol=1e-5 * max(float(np.abs(e).max()), 1.0))


def test_group_norm_short_planes_edges_threads_views_and_empty_as_torch():
    x = _rand(64, 32, 8, 8)
    g = _rand(64, 32, 8, 8, seed=1)
    w, b = _rand(32, seed=2), _rand(32, seed=3)
    x[0, 1, 2, 3], x[1, 9, 0, 0], x[2, 17, 7, 7], x[3, 30, 4, 4] = np.nan, np.inf, -np.inf, -0.0
    got = _group_norm_run(mg, x, w, b, g, 4)
    want = _group_norm_run(torch, x, w, b, g, 4)
    for a, e in zip(got, want):  # a NaN or inf spreads over its group (and dw, db) as torch's
        np.testing.assert_array_equal(np.isnan(a), np.isnan(e))
        fin = np.isfinite(e)
        _close(a[fin], e[fin], rtol=1e-4, atol=1e-4)
    x = _rand(64, 32, 8, 8)
    old = get_num_threads()
    out = {}
    try:
        for n in (1, 2):  # 131072 values: two parts with two threads
            set_num_threads(n)
            y, mean, rstd = _native.group_norm(x, 4, w, b, 1e-5)
            out[n] = (y, mean, rstd) + _native.group_norm_backward(g, x, mean, rstd, 4, w, True,
                                                                   True, True)  # fmt: skip
    finally:
        set_num_threads(old)
    for a, e in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, e)  # groups never split: the same sums
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # a strided view
    assert _native.group_norm(xt, 4, w, b, 1e-5) is None
    for a, e in zip(_group_norm_run(mg, xt, w, b, g, 4), _group_norm_run(torch, xt, w, b, g, 4)):
        _close(a, e, rtol=1e-4, atol=1e-4)
    empty = np.zeros((0, 32, 8, 8), np.float32)
    assert F.group_norm(mg.tensor(empty), 4).shape == TF.group_norm(torch.tensor(empty), 4).shape


CONV1 = [  # one input channel: the depthwise loops with the output channels as multiplier
    ((4, 1, 28, 28), 32, (3, 3), 1, 1, 1, True),
    ((2, 1, 9, 11), 5, (5, 5), 2, 2, 1, False),
    ((2, 1, 12, 10), 3, (3, 2), (2, 1), (0, 1), 2, True),
    ((1, 1, 1, 1), 4, (1, 1), 1, 0, 1, True),
    ((3, 1, 50), 8, (7,), 1, 3, 1, True),
    ((2, 1, 33), 4, (4,), 3, 1, 2, False),
]


@pytest.mark.parametrize("shape, out_c, k, stride, padding, dilation, bias", CONV1)
def test_one_input_channel_conv_takes_the_depthwise_kernels_as_torch(
    shape, out_c, k, stride, padding, dilation, bias, monkeypatch
):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((out_c, 1, *k)).astype(np.float32)
    b = rng.standard_normal(out_c).astype(np.float32) if bias else None
    conv = torch.conv2d if x.ndim == 4 else torch.conv1d
    g = rng.standard_normal(conv(torch.tensor(x), torch.tensor(w), None, stride, padding,
                                 dilation).shape).astype(np.float32)  # fmt: skip
    calls = []
    real = _native.depthwise_conv2d
    monkeypatch.setattr(_native, "depthwise_conv2d", lambda *a: calls.append(1) or real(*a))
    got = _dw_run(mg, x, w, b, g, stride, padding, dilation)
    assert calls, "a one-channel float32 CPU convolution did not take the depthwise kernels"
    want = _dw_run(torch, x, w, b, g, stride, padding, dilation)
    _dw_close(got, want)
    monkeypatch.setattr(_native, "depthwise_conv2d", lambda *a: None)  # the columns path
    for a, e in zip(got, _dw_run(mg, x, w, b, g, stride, padding, dilation)):
        if e is not None:
            _close(a, e, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(e).max())))


def test_one_input_channel_conv_edges_threads_double_backward_and_float64():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 1, 8, 9)).astype(np.float32)
    x[0, 0, 3, 0], x[1, 0, 5, 8], x[1, 0, 2, 4], x[0, 0, 6, 6] = np.inf, -np.inf, np.nan, -0.0
    w = rng.standard_normal((6, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    g = rng.standard_normal((2, 6, 8, 9)).astype(np.float32)
    for a, e in zip(_dw_run(mg, x, w, b, g, 1, 1, 1), _dw_run(torch, x, w, b, g, 1, 1, 1)):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(e))
        np.testing.assert_array_equal(np.isinf(a), np.isinf(e))
        fin = np.isfinite(e)
        _close(a[fin], e[fin], rtol=1e-5, atol=1e-5)
    x = rng.standard_normal((2, 1, 6, 7)).astype(np.float32)
    g = rng.standard_normal((2, 4, 3, 4)).astype(np.float32)
    w = rng.standard_normal((4, 1, 3, 2)).astype(np.float32)
    got = _dw_run(mg, x, w, None, g, 2, 1, 1, create_graph=True)
    _close(got, _dw_run(torch, x, w, None, g, 2, 1, 1, create_graph=True), rtol=1e-4, atol=1e-4)
    x = rng.standard_normal((16, 1, 64, 64)).astype(np.float32)
    w = rng.standard_normal((32, 1, 3, 3)).astype(np.float32)
    g = rng.standard_normal((16, 32, 64, 64)).astype(np.float32)
    geo = ((1, 1), (1, 1), (1, 1))
    old = get_num_threads()
    out = {}
    try:
        for n in (1, 2):
            set_num_threads(n)
            y = _native.depthwise_conv2d(x, w, b[:1].repeat(32), *geo, (64, 64))
            out[n] = (y,) + _native.depthwise_conv2d_backward(g, x, w, *geo, True, True, True)
    finally:
        set_num_threads(old)
    for a, e in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, e)
    x64, w64 = x[:2].astype(np.float64), w.astype(np.float64)  # the columns path
    want = torch.conv2d(torch.tensor(x64), torch.tensor(w64), None, 1, 1).numpy()
    _close(mg.conv2d(mg.tensor(x64), mg.tensor(w64), None, 1, 1).numpy(), want)


@pytest.mark.parametrize("log", [False, True])
def test_softmax_small_arrays_one_call_as_torch_and_as_the_split_rows(log):
    # below _PAR_MIN values the wrappers call the kernel once, without ranges: the same rows
    # code as a large array split across threads
    x = _rand(2 * _native._PAR_MIN // 256, 256)
    x[0, :4] = [np.nan, np.inf, -np.inf, -0.0]
    x[1, :] = -np.inf
    x[2, 5] = np.inf
    g = _rand(*x.shape, seed=7)
    old = get_num_threads()
    try:
        set_num_threads(2)
        big = _native.softmax(x, log)
        gbig = _native.softmax_backward(g, big, log)
    finally:
        set_num_threads(old)
    small = _native.softmax(x[:9].copy(), log)
    np.testing.assert_array_equal(small, big[:9])
    gsmall = _native.softmax_backward(g[:9].copy(), small, log)
    np.testing.assert_array_equal(gsmall, gbig[:9])
    tx = torch.tensor(x[:9], requires_grad=True)
    ty = (torch.log_softmax if log else torch.softmax)(tx, -1)
    ty.backward(torch.tensor(g[:9]))
    _close(small, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    fin = np.isfinite(tx.grad.numpy())
    _close(gsmall[fin], tx.grad.numpy()[fin], rtol=1e-5, atol=1e-5)
    assert _native.softmax(x[:9, ::2], log) is None  # a strided view: the NumPy rows


@pytest.mark.parametrize("k, stride", [(5, 1), (3, 2)])
def test_depthwise_conv_rows_of_every_width_as_torch(k, stride):
    """The plane copies (rows of 1 to 17 values: scalars below 8, then vectors with an
    overlapping last one) feed the same sums as PyTorch's, gradients too; -0.0, inf and
    NaN as there; 1 and 2 threads give the same bits."""
    rng = np.random.default_rng(7)
    for wd in range(1, 18):
        x = rng.standard_normal((2, 3, 6, wd)).astype(np.float32)
        x[0, 0, 1, 0], x[1, 2, -1, -1], x[0, 1, 0, wd // 2] = np.inf, np.nan, -0.0
        w = rng.standard_normal((3, 1, k, k)).astype(np.float32)
        b = rng.standard_normal(3).astype(np.float32)
        pad = k // 2
        ho = (6 + 2 * pad - k) // stride + 1
        wo = (wd + 2 * pad - k) // stride + 1
        g = rng.standard_normal((2, 3, ho, wo)).astype(np.float32)
        got = _dw_run(mg, x, w, b, g, stride, pad, 1)
        want = _dw_run(torch, x, w, b, g, stride, pad, 1)
        for a, e in zip(got, want):
            big = float(np.abs(e[np.isfinite(e)]).max())
            _close(a, e, rtol=1e-5, atol=1e-5 * max(1.0, big))
    x = rng.standard_normal((64, 32, 14, 14)).astype(np.float32)
    w = rng.standard_normal((32, 1, 5, 5)).astype(np.float32)
    old, outs = get_num_threads(), []
    try:
        for n in (1, 2):
            set_num_threads(n)
            outs.append(_native.depthwise_conv2d(x, w, None, (1, 1), (2, 2), (1, 1), (14, 14)))
    finally:
        set_num_threads(old)
    np.testing.assert_array_equal(outs[0].view(np.int32), outs[1].view(np.int32))


@pytest.mark.parametrize("k", [3, 5, 7])
def test_depthwise_conv_row_blocks_of_every_size_as_torch(k):
    """The stride-1 forward's register blocks (five output rows, two vectors of eight
    columns, the last block and vector overlapping the ones before): heights from 4 to 12
    and widths from 7 to 26 (past each block and vector edge), asymmetric and no padding,
    a channel multiplier, and -0.0, inf and NaN in the input, against PyTorch; the weight
    and input gradients too."""
    rng = np.random.default_rng(11)
    for ho, wo, pad, mult in [(5, 8, (k // 2, k // 2), 1), (6, 9, (0, k // 2), 2),
                              (9, 15, (k // 2, 0), 1), (10, 16, (k // 2, k // 2), 1),
                              (11, 17, (1, 2), 3), (12, 26, (k // 2, 1), 1),
                              (4, 24, (k // 2, k // 2), 1), (7, 7, (k // 2, k // 2), 1)]:  # fmt: skip
        h, wd = ho + k - 1 - 2 * pad[0], wo + k - 1 - 2 * pad[1]
        x = rng.standard_normal((2, 3, h, wd)).astype(np.float32)
        x[0, 0, 1, 0], x[1, 2, -1, -1], x[0, 1, 0, wd // 2] = np.inf, np.nan, -0.0
        w = rng.standard_normal((3 * mult, 1, k, k)).astype(np.float32)
        b = rng.standard_normal(3 * mult).astype(np.float32)
        g = rng.standard_normal((2, 3 * mult, ho, wo)).astype(np.float32)
        got = _dw_run(mg, x, w, b, g, 1, pad, 1)
        want = _dw_run(torch, x, w, b, g, 1, pad, 1)
        assert got[0].shape == (2, 3 * mult, ho, wo)
        for a, e in zip(got, want):
            big = float(np.abs(e[np.isfinite(e)]).max())
            _close(a, e, rtol=1e-5, atol=1e-5 * max(1.0, big))
        y = _native.depthwise_conv2d(x, w, None, (1, 1), pad, (1, 1), (ho, wo))
        ty = torch.conv2d(torch.tensor(x), torch.tensor(w), None, 1, pad, 1, 3).numpy()
        fin = np.isfinite(ty)
        np.testing.assert_array_equal(np.isfinite(y), fin)
        _close(y[fin], ty[fin], rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(ty[fin]).max())))


@pytest.mark.parametrize("per_block", [1, 2, 3])
def test_conv_transpose_blocks_of_several_images_as_torch(per_block, monkeypatch):
    """Transposed convolutions multiply a block's images side by side (one product, columns
    (C kh kw, m, hi wi)): blocks of 1, 2 and 3 of 5 images (the last one shorter), forward
    and the three gradients against PyTorch, on one thread and two."""
    from manygrad.ops import _convt_blocks

    rng = np.random.default_rng(12)
    x = rng.standard_normal((5, 6, 5, 7)).astype(np.float32)
    w = rng.standard_normal((6, 4, 4, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    kw = dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2))
    calls = []
    real = _convt_blocks.forward
    monkeypatch.setattr(_convt_blocks, "forward", lambda *a: calls.append(1) or real(*a))
    ho, wo = (5 - 1) * 2 - 2 + 4 + 1, (7 - 1) * 3 + 3 + 2
    # NOTE: BLOCK_ELEMS / (C_out kh kw hi wi) images a block
    monkeypatch.setattr(_convt_blocks, "BLOCK_ELEMS", per_block * 4 * 4 * 3 * 5 * 7)
    g = rng.standard_normal((5, 4, ho, wo)).astype(np.float32)
    old = get_num_threads()
    try:
        for n in (1, 2):
            set_num_threads(n)
            outs = []
            for lib in (mg, torch):
                ts = [lib.tensor(a, requires_grad=True) for a in (x, w, b)]
                y = lib.nn.functional.conv_transpose2d(*ts, **kw)
                y.backward(lib.tensor(g))
                outs.append([y.detach().numpy()] + [t.grad.numpy() for t in ts])
            for a, e in zip(*outs):
                assert a.shape == e.shape
                _close(a, e, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(e).max())))
    finally:
        set_num_threads(old)
    assert calls, "a float32 CPU transposed convolution did not take the blocks path"


def _family_results(rng_seed: int = 14):
    """Values and gradients of the sort / scan / scatter / bag ops on tie-heavy float32 data
    (within the Python tie replay's budget), as raw arrays."""
    rng = np.random.default_rng(rng_seed)
    x = rng.integers(-4, 5, (6, 90)).astype(np.float32) * np.float32(0.5)
    xn = x.copy()
    xn[rng.random(x.shape) < 0.1] = np.nan
    out = []

    def run(fn, arrays, *args, grad=True, **kw):
        ts = [mg.tensor(a, requires_grad=grad) for a in arrays]
        r = fn(*ts, *args, **kw)
        r = tuple(r) if isinstance(r, tuple) else (r,)
        if grad:
            r[0].backward(mg.tensor(rng.standard_normal(tuple(r[0].shape)).astype(np.float32)))
        out.extend(t.detach().numpy() for t in r)
        out.extend(t.grad.numpy() for t in ts if t.grad is not None)

    for a in (x, xn, x.T):
        for dim in (0, 1):
            run(mg.topk, [a], 3, dim)
            run(mg.topk, [a], min(40, a.shape[dim]), dim, largest=False, sorted=False)
            run(mg.kthvalue, [a], 4, dim)
            for fn in (mg.median, mg.nanmedian, mg.cummax, mg.cummin, mg.cumsum):
                run(fn, [a], dim)
            run(mg.cumprod, [a * np.float32(0.3) + 1], dim)
        run(mg.prod, [a * np.float32(0.2) + 1], 1)
    idx = mg.tensor(rng.integers(0, 6, (11, 90)))
    src = xn[[0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4]] * 2
    for red in ("sum", "prod", "mean", "amax", "amin"):
        for inc in (True, False):
            run(mg.scatter_reduce, [xn], 0, idx, mg.tensor(src), red, include_self=inc,
                grad=red != "prod")  # fmt: skip
    ids, off = rng.integers(0, 90, 300), np.sort(rng.integers(0, 300, 20))
    off[0] = 0
    psw = rng.standard_normal(300).astype(np.float32)
    run(F.embedding_bag, [ids, x.T.copy()], mg.tensor(off), mode="mean", grad=False)
    for p in (None, mg.tensor(psw, requires_grad=True)):
        w = mg.tensor(x.T.copy(), requires_grad=True)
        y = F.embedding_bag(mg.tensor(ids), w, mg.tensor(off), mode="sum", per_sample_weights=p)
        y.backward(mg.tensor(rng.standard_normal(tuple(y.shape)).astype(np.float32)))
        out.extend([y.detach().numpy(), w.grad.numpy()] + ([] if p is None else [p.grad.numpy()]))
    return out


def test_sort_scan_scatter_bag_kernels_bit_for_bit_as_the_numpy_paths(monkeypatch):
    from manygrad.cpu import _sortscan

    calls = []
    real = _sortscan._lib
    monkeypatch.setattr(_sortscan, "_lib", lambda: calls.append(1) or real())
    fast = _family_results()
    assert len(calls) > 100, "the sort / scan family did not take its kernels"
    monkeypatch.setattr(_sortscan, "_lib", lambda: None)
    with np.errstate(invalid="ignore"):  # NaN through NumPy's maximum.at
        ref = _family_results()  # NumPy's argsorts, scans, ufunc.at, the tie replay
    assert len(fast) == len(ref)
    for i, (a, b) in enumerate(zip(fast, ref)):
        assert a.dtype == b.dtype and a.shape == b.shape, i
        np.testing.assert_array_equal(a, b, err_msg=f"result {i}")


def test_sort_scan_kernels_decline_what_they_do_not_take():
    from manygrad.cpu import _sortscan

    c = np.ones((3, 4), np.complex64)
    u = np.ones((3, 4), np.uint64)
    h = np.ones((3, 4), np.float16)
    assert _sortscan.topk(c, 2, True, True) is None and _sortscan.topk(u, 2, True, True) is None
    assert _sortscan.select(c, "median") is None and _sortscan.cumext(u, 1, True) is None
    assert _sortscan.scan(h, 1) is None and _sortscan.scan(u.astype(np.int32), 1) is None
    assert _sortscan.prod_last(h) is None and _sortscan.prod_last(np.ones((4, 3)).T) is None
    assert not _sortscan.scatter(h, np.zeros((1, 4), np.int64), h[:1], 0, "sum")
    assert _sortscan.bag(h, np.zeros(2, np.int64), np.array([0, 2]), None, -1, "sum") is None
    # the ops still give PyTorch's values on those through their NumPy formulas
    x = np.random.default_rng(15).standard_normal((3, 40)).astype(np.float16)
    got, want = mg.cumsum(mg.tensor(x), 1), torch.cumsum(torch.tensor(x), 1)
    _close(got.numpy().astype(np.float32), want.numpy().astype(np.float32), rtol=2e-3, atol=2e-3)
    got = mg.topk(mg.tensor(x.astype(np.complex64).real.astype(np.uint64)), 2)
    assert got.indices.shape == (3, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_prod_others_bit_for_bit_as_the_numpy_cumprods(dtype, monkeypatch):
    """prod's gradient: the product of the other values from both sides, 8 rows at a time
    along a contiguous last dim, with zeros, NaN and empty dims."""
    from manygrad.cpu import _sortscan
    from manygrad.ops import reduce as R

    rng = np.random.default_rng(16)
    arrays = []
    for shape, axis in (((19, 13), 1), ((19, 13), 0), ((3, 4, 5), 1), ((9, 1), 1), ((4, 0), 1),
                        ((17, 1024), 1), ((9, 1040), 1)):  # fmt: skip
        a = rng.uniform(0.5, 1.5, shape) if dtype != np.int64 else rng.integers(-3, 4, shape)
        a = a.astype(dtype)
        if a.size > 6 and dtype != np.int64:
            a.flat[[1, 3, 5]] = [0.0, 0.0, np.nan]
        arrays.append((a, axis))
    fast = [_sortscan.prod_others(a, ax) for a, ax in arrays]
    monkeypatch.setattr(_sortscan, "_lib", lambda: None)
    for (a, ax), got in zip(arrays, fast):
        if a.shape[ax]:  # NOTE: (the NumPy formula gives one 1 along an empty dim)
            np.testing.assert_array_equal(got, R._prod_others(np, a, ax))
        assert got.shape == a.shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pdist_kernel_bit_for_bit_as_the_tensor_formula(dtype, monkeypatch):
    """pdist (p = 2) in C: the differences, squares, NumPy's pairwise sum (rows of under 8,
    up to 128 and more values) and sqrt of the tensor formula, and its gradient, with a zero
    distance among the pairs."""
    from manygrad.cpu import _sortscan

    rng = np.random.default_rng(17)
    cases = []
    for shape in ((7, 5), (2, 1), (12, 96), (6, 130), (5, 300), (4, 0)):
        a = rng.standard_normal(shape).astype(dtype)
        if shape[0] > 4:
            a[3] = a[1]
        cases.append((a, rng.standard_normal(shape[0] * (shape[0] - 1) // 2).astype(dtype)))

    def run():
        out = []
        for a, g in cases:
            x = mg.tensor(a, requires_grad=True)
            y = F.pdist(x)
            y.backward(mg.tensor(g))
            out += [y.detach().numpy(), x.grad.numpy(), y.grad_fn.name()]
        return out

    fast = run()
    assert fast[2] == "PdistBackward0"  # one node, as PyTorch's
    monkeypatch.setattr(_sortscan, "_lib", lambda: None)
    ref = run()
    for a, b in zip(fast[0::3] + fast[1::3], ref[0::3] + ref[1::3]):
        np.testing.assert_array_equal(a, b)


def test_sort_scan_kernels_split_rows_across_threads_without_changing_values(monkeypatch):
    split = []
    real = _native._run
    monkeypatch.setattr(_native, "_run", lambda calls: split.append(len(calls)) or real(calls))
    rng = np.random.default_rng(18)
    x = mg.tensor(rng.integers(-50, 50, (300, 520)).astype(np.float32) * np.float32(0.1))
    ids = mg.tensor(rng.integers(0, 2000, 60000))
    off = np.sort(rng.choice(np.arange(1, 60000), 599, replace=False))
    off = mg.tensor(np.concatenate([[0], off]))
    w = mg.tensor(rng.standard_normal((2000, 64)).astype(np.float32))

    def run():
        out = [mg.topk(x, 5).indices, mg.topk(x, 200, 0, sorted=False).indices,
               mg.kthvalue(x, 100).indices, mg.median(x, 0).indices, mg.cummax(x, 1).values,
               mg.cummin(x, 0).indices, mg.cumsum(x, 1), mg.cumprod(x * 0.01 + 1, 1),
               mg.prod(x * 0.01 + 1, 1)]  # fmt: skip
        for mode in ("sum", "max"):
            out.append(F.embedding_bag(ids, w, off, mode=mode))
        p = (x * 0.01 + 1).requires_grad_()
        mg.prod(p, 1).sum().backward()
        return [o.numpy() for o in out] + [p.grad.numpy()]

    old = get_num_threads()
    try:
        set_num_threads(1)
        one = run()
        set_num_threads(2)
        two = run()
    finally:
        set_num_threads(old)
    assert len(split) >= 10 and set(split) == {2}, split  # every kernel above in 2 parts
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [1, 7, 130, 1024, 2048, 1040])
def test_scans_bit_for_bit_as_numpy_at_row_lengths_of_4k_multiples(n):
    """Rows of 4 KB multiples run staggered (cache sets): the same values as NumPy's."""
    from manygrad.cpu import _sortscan

    rng = np.random.default_rng(19)
    x = rng.standard_normal((19, n)).astype(np.float32)
    d = x.astype(np.float64) * 0.01 + 1
    np.testing.assert_array_equal(
        _sortscan.scan(x, 1), np.cumsum(x, 1, dtype=np.float64).astype(np.float32)
    )
    flip = np.flip(np.cumsum(np.flip(x, 1), 1, dtype=np.float64), 1).astype(np.float32)
    np.testing.assert_array_equal(_sortscan.scan(x, 1, reverse=True), flip)
    np.testing.assert_array_equal(_sortscan.scan(d, 1, prod=True), np.cumprod(d, 1))
