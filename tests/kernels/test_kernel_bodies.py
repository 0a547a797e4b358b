"""The kernels' C math bodies, built for the CPU with g++, against their NumPy twins:
random values and edge values (0, +-inf, NaN, large |x|) in float32, bfloat16, float16."""

import ml_dtypes
import numpy as np
import pytest
from hostlib import Long, build, call

from manygrad.kernels import gelu as bg
from manygrad.kernels import norms as nm
from manygrad.kernels import optim_step as ost
from manygrad.kernels import rng_dropout as do
from manygrad.kernels import row_softmax as sm
from manygrad.kernels import xent as ce

# NOTE: the twins meet inf/NaN/overflow on purpose here, as the kernels do (silently)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
BF16 = np.dtype(ml_dtypes.bfloat16)
F16, F32 = np.dtype(np.float16), np.dtype(np.float32)
DTYPES = [F32, BF16, F16]
EDGES = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e30, 88.0, -88.0, 1e-40, 3.0,
                  -3.0, 65504.0, 70000.0, 1e-8, 10.0, -10.0], np.float32)  # fmt: skip


def _close(got, want, dtype, rtol=3e-6, atol=1e-6):
    """Equal up to float32 rounding, or one unit in the last place of a 16-bit dtype."""
    g, w = np.asarray(got).astype(np.float32), np.asarray(want).astype(np.float32)
    if dtype != F32:
        eps = float(ml_dtypes.finfo(dtype).eps)
        rtol, atol = max(rtol, eps), max(atol, eps * 1e-2)
    np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True)


def _rand(rng, shape, dtype, scale=3.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32).astype(dtype)


@pytest.mark.parametrize("dtype", [BF16, F16])
def test_16bit_store_rounds_as_ml_dtypes_and_numpy(dtype):
    lib = build(bg.KERNEL)
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, 300_000, dtype=np.uint64).astype(np.uint32)
    near = np.array([65519.0, 65520.0, 65536.0, 5.96e-8, 2.98e-8, 2.9802326e-08, 6.1e-5,
                     3.3895314e38, 3.4e38, 1.0000001, 1.00390625, 1.005859375], np.float32)  # fmt: skip
    x = np.concatenate([bits.view(np.float32), EDGES, near, -near])
    suf = "bf16" if dtype == BF16 else "f16"
    got = np.empty(x.shape, dtype)
    call(lib, f"mg_host_store_{suf}", None, x, got, Long(x.size))
    want = x.astype(dtype)
    nan = np.isnan(x)
    assert np.isnan(got[nan].astype(np.float32)).all()
    bad = got[~nan].view(np.uint16) != want[~nan].view(np.uint16)
    assert not bad.any(), (x[~nan][bad][:5], got[~nan][bad][:5], want[~nan][bad][:5])
    back = np.empty(x.shape, np.float32)
    call(lib, f"mg_host_load_{suf}", None, want, back, Long(x.size))
    np.testing.assert_array_equal(back, want.astype(np.float32))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("approx", ["tanh", "none"])
def test_bias_gelu_body_matches_twin(dtype, approx):
    lib, rng = build(bg.KERNEL), np.random.default_rng(1)
    x = np.concatenate([_rand(rng, (40, 17), dtype).ravel(),
                        EDGES.astype(dtype)[:17]]).reshape(41, 17)  # fmt: skip
    b, g = _rand(rng, (17,), dtype, 1.0), _rand(rng, (41, 17), dtype, 1.0)
    for bias in (b, None):
        y = np.empty_like(x)
        call(
            lib, "mg_host_bias_gelu_fwd", dtype, x, bias, y, Long(x.size), 17, int(approx == "tanh")
        )  # noqa: E501
        _close(y, bg.bias_gelu_forward(x, bias, approx), dtype)
        dx = np.empty_like(x)
        call(
            lib,
            "mg_host_bias_gelu_bwd",
            dtype,
            g,
            x,
            bias,
            dx,
            Long(x.size),
            17,
            int(approx == "tanh"),
        )  # noqa: E501
        want, db = bg.bias_gelu_backward(g, x, bias, approx)
        # NOTE: for x near -10 the tanh form's derivative cancels to ~1e-6: libm and NumPy tanh
        # differ there by a few ulps of 1
        _close(dx, want, dtype, rtol=2e-5, atol=1e-5)
        if bias is not None:
            assert db.shape == (17,) and db.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_cross_entropy_body_matches_twin(dtype, eps):
    lib, rng = build(ce.KERNEL), np.random.default_rng(2)
    n, c = 12, 37
    x = _rand(rng, (n, c), dtype, 4.0)
    x[3, 5] = 1e4  # large logit
    x[4, :] = -1e4
    t = rng.integers(0, c, n).astype(np.int64)
    t[1], t[6], t[7] = -100, c + 3, -1  # ignored, out of range (NaN), negative (NaN)
    loss, lse = np.empty(n, np.float32), np.empty(n, np.float32)
    dloss = rng.random(n).astype(np.float32)
    dx = np.empty_like(x)
    call(lib, "mg_host_xent_fwd", dtype, x, t, loss, lse, dloss, Long(1), dx, Long(n), c,
         Long(-100), eps)  # fmt: skip
    wl, wlse, wdx = ce.cross_entropy_fused(x, t, dloss, -100, eps)
    _close(loss, wl, F32, rtol=1e-5, atol=1e-5)
    _close(lse, wlse, F32, rtol=1e-6, atol=1e-5)
    assert loss[1] == 0 and np.isnan(loss[6]) and np.isnan(loss[7])
    _close(dx, wdx, dtype, rtol=1e-5, atol=1e-6)
    dx2 = np.empty_like(x)
    one = np.array([0.25], np.float32)  # stride 0: one scalar for every row
    call(lib, "mg_host_xent_bwd", dtype, x, t, lse, one, Long(0), dx2, Long(n), c, Long(-100), eps)  # noqa: E501
    _close(dx2, ce.cross_entropy_backward(x, t, lse, one[0:1].reshape(()), -100, eps), dtype,
           rtol=1e-5, atol=1e-6)  # fmt: skip
    assert (dx2[1] == 0).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_layer_norm_and_rms_norm_bodies_match_twins(dtype):
    lib, rng = build(nm.KERNEL), np.random.default_rng(3)
    rows, n = 9, 50
    x = _rand(rng, (rows, n), dtype)
    x[2] = 7.0  # constant row: variance 0
    x[3] *= 1000
    w, b, g = (
        _rand(rng, (n,), dtype, 1),
        _rand(rng, (n,), dtype, 1),
        _rand(rng, (rows, n), dtype, 1),
    )  # noqa: E501
    y, mean, rstd = np.empty_like(x), np.empty(rows, np.float32), np.empty(rows, np.float32)
    call(lib, "mg_host_ln_fwd", dtype, x, w, b, y, mean, rstd, Long(rows), n, 1e-5)
    wy, wm, wr = nm.layer_norm_forward(x, w, b, 1e-5)
    _close(mean, wm, F32, atol=1e-4)
    _close(rstd, wr, F32, rtol=1e-5)
    _close(y, wy, dtype, rtol=1e-5, atol=1e-5)
    dx, dw, db = np.empty_like(x), np.zeros(n, np.float32), np.zeros(n, np.float32)
    call(lib, "mg_host_ln_bwd", dtype, g, x, w, mean, rstd, dx, dw, db, Long(rows), n)
    wdx, wdw, wdb = nm.layer_norm_backward(g, x, w, mean, rstd)
    _close(dx, wdx, dtype, rtol=1e-4, atol=1e-5)
    _close(dw.astype(dtype), wdw, dtype, rtol=1e-5, atol=1e-5)
    _close(db.astype(dtype), wdb, dtype, rtol=1e-5, atol=1e-5)
    r = np.empty(rows, np.float32)
    call(lib, "mg_host_rms_fwd", dtype, x, w, y, r, Long(rows), n, 1e-6)
    wy, wr = nm.rms_norm_forward(x, w, 1e-6)
    _close(r, wr, F32, rtol=1e-5)
    _close(y, wy, dtype, rtol=1e-5, atol=1e-5)
    dw = np.zeros(n, np.float32)
    call(lib, "mg_host_rms_bwd", dtype, g, x, w, r, dx, dw, Long(rows), n)
    wdx, wdw = nm.rms_norm_backward(g, x, w, r)
    _close(dx, wdx, dtype, rtol=1e-4, atol=1e-5)
    _close(dw.astype(dtype), wdw, dtype, rtol=1e-5, atol=1e-5)
    call(lib, "mg_host_rms_bwd", dtype, g, x, None, r, dx, None, Long(rows), n)
    wdx, wdw = nm.rms_norm_backward(g, x, None, r)
    _close(dx, wdx, dtype, rtol=1e-4, atol=1e-5)
    assert wdw is None


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("causal", [False, True])
def test_softmax_body_matches_twin(dtype, causal):
    lib, rng = build(sm.KERNEL), np.random.default_rng(4)
    x = _rand(rng, (2, 6, 11), dtype, 5.0)
    x[0, 0, :3] = [np.inf, 50.0, -np.inf] if not causal else [1e4, 50.0, -np.inf]
    x[1, 2, :] = -np.inf  # every key masked: NaN, as torch
    y = np.empty_like(x)
    call(lib, "mg_host_softmax_fwd", dtype, x, y, Long(12), 11, 0.5, 6 if causal else 0)
    want = sm.softmax_forward(x, 0.5, causal)
    _close(y, want, dtype)
    g = _rand(rng, x.shape, dtype, 1.0)
    yv = np.nan_to_num(want.astype(np.float32)).astype(dtype)
    dx = np.empty_like(x)
    call(lib, "mg_host_softmax_bwd", dtype, g, yv, dx, Long(12), 11, 0.5)
    _close(dx, sm.softmax_backward(g, yv, 0.5), dtype, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_dropout_body_gives_the_twins_mask_bit_for_bit(dtype):
    lib, rng = build(do.KERNEL), np.random.default_rng(5)
    x, res = _rand(rng, (1000,), dtype), _rand(rng, (1000,), dtype)
    for p, seed, off in [(0.1, 1, 0), (0.5, 2**63 + 12345, 7), (0.0, 3, 0), (1.0, 4, 0)]:
        y = np.empty_like(x)
        call(
            lib,
            "mg_host_dropout_fwd",
            dtype,
            x,
            res,
            y,
            Long(x.size),
            p,
            1 / (1 - p) if p < 1 else 0.0,
            Long(seed - 2**64 if seed >= 2**63 else seed),
            Long(off),
        )  # noqa: E501
        want = do.dropout_forward(x, p, seed, off, residual=res)
        np.testing.assert_array_equal(y.view(np.uint8), want.view(np.uint8))
        dx = np.empty_like(x)
        call(
            lib,
            "mg_host_dropout_bwd",
            dtype,
            x,
            dx,
            Long(x.size),
            p,
            1 / (1 - p) if p < 1 else 0.0,
            Long(seed - 2**64 if seed >= 2**63 else seed),
            Long(off),
        )  # noqa: E501
        np.testing.assert_array_equal(
            dx.view(np.uint8), do.dropout_backward(x, p, seed, off).view(np.uint8)
        )  # noqa: E501
    u = do.uniform(np, 200_000, 42)
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.005


def _opt_case(rng, dtype, shapes):
    params = [_rand(rng, s, dtype, 1.0) for s in shapes]
    masters = None if dtype == F32 else [p.astype(np.float32) for p in params]
    return params, masters


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("kind", ["adam", "adamw", "adam_l2_max", "sgd", "sgd_nesterov"])
def test_multi_tensor_optimizer_body_matches_twin(dtype, kind):
    lib, rng = build(ost.KERNEL), np.random.default_rng(6)
    shapes = [(3, 5), (ost.CHUNK + 17,), (1,), (2, 2, 2)]  # one spans two chunks
    pc, mc = _opt_case(rng, dtype, shapes)  # updated by the C body
    pt, mt = [p.copy() for p in pc], None if mc is None else [m.copy() for m in mc]
    s1c = [np.zeros(s, np.float32) for s in shapes]
    s2c = [np.zeros(s, np.float32) for s in shapes]
    s1t, s2t = [a.copy() for a in s1c], [a.copy() for a in s2c]
    adam = kind.startswith("adam")
    fl = ost.flags(decoupled=kind == "adamw", maximize=kind == "adam_l2_max",
                   nesterov=kind == "sgd_nesterov")  # fmt: skip
    for step in range(1, 5):
        grads = [_rand(rng, s, dtype, 1.0) for s in shapes]
        if adam:
            h = ost.hyper(1e-2, (0.9, 0.99), 1e-8, 0.1 if kind != "adam" else 0.0, step)
        else:
            h = ost.hyper(0.1, weight_decay=0.01, step=step, momentum=0.9,
                          dampening=0.0 if kind == "sgd_nesterov" else 0.1, first_step=step == 1)  # fmt: skip
        ptrs, sizes, bt, bc = ost.tables(np, pc, grads, s1c, s2c if adam else None, mc)
        call(lib, "mg_host_opt_multi", dtype, int(adam), ptrs, sizes, bt, bc, Long(bt.size),
             ost.CHUNK, np.asarray(h, np.float32), fl)  # fmt: skip
        if adam:
            ost.adam_step(pt, grads, s1t, s2t, mt, hyper=h, flags=fl)
        else:
            ost.sgd_step(pt, grads, s1t, mt, hyper=h, flags=fl)
    for a, b in zip(pc + s1c + s2c, pt + s1t + s2t):
        _close(a, b, a.dtype, rtol=2e-6, atol=2e-7)
    if mc is not None:
        for a, b in zip(mc, mt):
            _close(a, b, F32, rtol=2e-6, atol=2e-7)
