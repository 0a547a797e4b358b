"""The CuPy launch code of each kernel (argument order and types, output allocation, the
work after the launch), run on the CPU: ``launch.function`` is replaced by the kernel's
host harness, which takes the same arguments as the ``__global__`` entry, so only the
GPU's parallel skeleton is left out. Results are compared with the NumPy twins."""

import ctypes

import ml_dtypes
import numpy as np
import pytest
from hostlib import SUFFIX, build

from manygrad import backend
from manygrad.kernels import _common, launch
from manygrad.kernels import gelu as bg
from manygrad.kernels import norms as nm
from manygrad.kernels import optim_step as ost
from manygrad.kernels import rng_dropout as do
from manygrad.kernels import row_softmax as sm
from manygrad.kernels import xent as ce

BF16 = np.dtype(ml_dtypes.bfloat16)
DTYPES = [np.dtype(np.float32), BF16, np.dtype(np.float16)]


def _c(a):
    if isinstance(a, np.ndarray):
        return ctypes.c_void_p(a.ctypes.data)
    for t, c in ((np.uint64, ctypes.c_ulonglong), (np.int64, ctypes.c_longlong),
                 (np.int32, ctypes.c_int), (np.float32, ctypes.c_float)):  # fmt: skip
        if isinstance(a, t):
            return c(a.item())
    raise TypeError(f"a kernel argument of type {type(a).__name__} would not reach the GPU")


@pytest.fixture
def emulated(monkeypatch):
    calls = []

    def function(kernel, template, dtype):
        lib = build(kernel)
        suf = SUFFIX[str(np.dtype(dtype))]
        if template in ("mg_adam_multi", "mg_sgd_multi"):
            host = getattr(lib, f"mg_host_opt_multi_{suf}")

            def run(grid, block, args, shared_mem=0):
                calls.append((template, grid, block, shared_mem))
                ptrs, sizes, bt, bc, chunk, h, flags = args
                host(ctypes.c_int(template == "mg_adam_multi"), *map(_c, (ptrs, sizes, bt, bc)),
                     ctypes.c_longlong(grid[0]), *map(_c, (chunk, h, flags)))  # fmt: skip

            return run
        host = getattr(lib, f"{template.replace('mg_', 'mg_host_', 1)}_{suf}")

        def run(grid, block, args, shared_mem=0):
            calls.append((template, grid, block, shared_mem))
            host(*map(_c, args))

        return run

    monkeypatch.setattr(launch, "function", function)
    monkeypatch.setattr(launch, "require_contiguous",
                        lambda k, **a: _common.check_args(k, contiguous=True, **a))  # fmt: skip
    monkeypatch.setattr(backend, "cuda_module", lambda: np)
    return calls


def _r(rng, shape, dt, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32).astype(dt)


def _close(a, b, dt, rtol=2e-5, atol=2e-6):
    if dt == BF16:
        rtol, atol = 8e-3, 1e-4
    elif dt == np.float16:
        rtol, atol = 1e-3, 1e-5
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        if x is None or y is None:
            assert x is None and y is None
            continue
        np.testing.assert_allclose(np.asarray(x, np.float32), np.asarray(y, np.float32),
                                   rtol=rtol, atol=atol)  # fmt: skip


@pytest.mark.parametrize("dt", DTYPES, ids=str)
def test_elementwise_launches(emulated, dt):
    rng = np.random.default_rng(0)
    x, b, g = _r(rng, (33, 20), dt, 2), _r(rng, (20,), dt), _r(rng, (33, 20), dt)
    for approx in ("tanh", "none"):
        _close(bg.gpu_forward(x, b, approx), bg.bias_gelu_forward(x, b, approx), dt)
        _close(bg.gpu_backward(g, x, b, approx), bg.bias_gelu_backward(g, x, b, approx), dt)
    _close(bg.gpu_forward(x, None), bg.bias_gelu_forward(x, None), dt)
    y = do.gpu_forward(x, 0.25, 2**64 - 5, 3, residual=g)
    np.testing.assert_array_equal(
        y.view(np.uint8), do.dropout_forward(x, 0.25, 2**64 - 5, 3, g).view(np.uint8)
    )  # noqa: E501
    dx = do.gpu_backward(g, 0.25, 7, 11)
    np.testing.assert_array_equal(
        dx.view(np.uint8), do.dropout_backward(g, 0.25, 7, 11).view(np.uint8)
    )  # noqa: E501
    assert {c[0] for c in emulated} >= {"mg_bias_gelu_fwd", "mg_bias_gelu_bwd", "mg_dropout_fwd"}
    assert all(c[2] == (launch.THREADS,) for c in emulated)


@pytest.mark.parametrize("dt", DTYPES, ids=str)
def test_row_launches(emulated, dt):
    rng = np.random.default_rng(1)
    x, w, b, g = (
        _r(rng, (4, 5, 24), dt),
        _r(rng, (24,), dt),
        _r(rng, (24,), dt),
        _r(rng, (4, 5, 24), dt),
    )  # noqa: E501
    fwd = nm.gpu_layer_norm_forward(x, w, b)
    _close(fwd, nm.layer_norm_forward(x, w, b), dt)
    _close(nm.gpu_layer_norm_backward(g, x, w, fwd[1], fwd[2]),
           nm.layer_norm_backward(g, x, w, fwd[1], fwd[2]), dt, 1e-4, 1e-5)  # fmt: skip
    _close(nm.gpu_layer_norm_backward(g, x, None, fwd[1], fwd[2], bias_grad=False),
           nm.layer_norm_backward(g, x, None, fwd[1], fwd[2], bias_grad=False), dt, 1e-4, 1e-5)  # fmt: skip
    y, r = nm.gpu_rms_norm_forward(x, w)
    _close((y, r), nm.rms_norm_forward(x, w), dt)
    _close(nm.gpu_rms_norm_backward(g, x, w, r), nm.rms_norm_backward(g, x, w, r), dt, 1e-4, 1e-5)
    for causal in (False, True):
        p = sm.gpu_forward(x, 0.7, causal)
        _close(p, sm.softmax_forward(x, 0.7, causal), dt)
        _close(sm.gpu_backward(g, p, 0.7), sm.softmax_backward(g, p, 0.7), dt)
    ln_bwd = [c for c in emulated if c[0] == "mg_ln_bwd"]
    assert ln_bwd[0][3] == 8 * 24 and ln_bwd[0][1][0] <= 512  # dw, db partials per block


@pytest.mark.parametrize("dt", DTYPES, ids=str)
def test_cross_entropy_launches(emulated, dt):
    rng = np.random.default_rng(2)
    x, t = _r(rng, (7, 11), dt, 3), rng.integers(0, 11, 7)
    t[2] = -1
    loss, lse, dx = ce.gpu_forward(x, t, -1, 0.1)
    assert dx is None
    _close((loss, lse), ce.cross_entropy_forward(x, t, -1, 0.1), dt)
    scale = np.full((), 1 / 6, np.float32)
    loss2, lse2, dx2 = ce.gpu_forward(x, t, -1, 0.1, dloss=scale)  # one pass: loss and dlogits
    _close(dx2, ce.cross_entropy_backward(x, t, lse, scale, -1, 0.1), dt)
    per_row = rng.random(7).astype(np.float32)
    _close(ce.gpu_backward(x, t, lse, per_row, -1, 0.1),
           ce.cross_entropy_backward(x, t, lse, per_row, -1, 0.1), dt)  # fmt: skip


@pytest.mark.parametrize("dt", DTYPES, ids=str)
def test_multi_tensor_step_launch(emulated, dt):
    rng = np.random.default_rng(3)
    shapes = [(5, 3), (ost.CHUNK * 2 + 1,)]
    ps = [_r(rng, s, dt) for s in shapes]
    gs = [_r(rng, s, dt) for s in shapes]
    pt = [p.copy() for p in ps]
    masters = None if dt == np.float32 else [p.astype(np.float32) for p in ps]
    mt = None if masters is None else [m.copy() for m in masters]
    m1, v1 = [np.zeros(s, np.float32) for s in shapes], [np.zeros(s, np.float32) for s in shapes]
    m2, v2 = [a.copy() for a in m1], [a.copy() for a in v1]
    h = ost.hyper(1e-2, weight_decay=0.1, step=1)
    ost.gpu_step(True, ps, gs, m1, v1, masters, hyper=h, flags=ost.ADAMW)
    ost.adam_step(pt, gs, m2, v2, mt, hyper=h, flags=ost.ADAMW)
    for a, b in zip(ps + m1 + v1, pt + m2 + v2):
        _close(a, b, a.dtype, 1e-6, 1e-7)
    ((name, grid, block, _),) = emulated
    assert name == "mg_adam_multi" and grid == (1 + 3,) and block == (launch.THREADS,)


def test_launch_refuses_what_a_kernel_cannot_take(emulated):
    x = np.ones((4, 6), np.float32)
    with pytest.raises(_common.LayoutError, match="not C-contiguous"):
        sm.gpu_forward(x.T)
    with pytest.raises(launch.UnsupportedCallError, match="rows of 7000"):
        nm.gpu_layer_norm_backward(np.ones((2, 7000), np.float32), np.ones((2, 7000), np.float32),
                                   None, np.zeros(2, np.float32), np.ones(2, np.float32))  # fmt: skip
