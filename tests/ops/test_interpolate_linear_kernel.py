"""interpolate's 1-d linear forward in C (``_native.lerp_last``): PyTorch's values bit for
bit (source index and weights rounded as its kernel, fma(x0, w0, x1 w1)), against the
products and taps it replaced, edge values, empty and non-contiguous inputs, threads."""

import numpy as np
import pytest
import torch

import manygrad as mg
from manygrad import _native
from manygrad.ops import _resample_blocks as rb
from manygrad.threads import get_num_threads, set_num_threads

F = mg.nn.functional
TF = torch.nn.functional

pytestmark = pytest.mark.skipif(_native.lib() is None, reason="no C compiler for the kernels")

CASES = [(256, dict(scale_factor=2)), (37, dict(size=100)), (100, dict(size=37)),
         (256, dict(scale_factor=1.7)), (1000, dict(size=777)), (13, dict(scale_factor=3.3)),
         (5, dict(size=1)), (1, dict(size=9)), (9, dict(size=3)), (8, dict(size=17))]  # fmt: skip


def _same(a, b):
    """Equal bits, NaN where NaN (its payload aside)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    nan = np.isnan(a)
    np.testing.assert_array_equal(nan, np.isnan(b))
    np.testing.assert_array_equal(a[~nan].view(np.int32), b[~nan].view(np.int32))


def _edges(shape, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    x[0, 0, ::7], x[0, 1, ::5], x[-1, 0, ::3] = np.inf, -np.inf, np.nan
    x[-1, -1, :] = -0.0
    return x


@pytest.mark.parametrize("n, kw", CASES)
@pytest.mark.parametrize("ac", [False, True])
def test_bits_equal_pytorch(n, kw, ac):
    x = _edges((3, 5, n))
    calls = []
    real = _native.lerp_last
    mp = pytest.MonkeyPatch()
    mp.setattr(_native, "lerp_last", lambda *a: calls.append(1) or real(*a))
    try:
        y = F.interpolate(mg.tensor(x), mode="linear", align_corners=ac, **kw).numpy()
    finally:
        mp.undo()
    t = TF.interpolate(torch.from_numpy(x), mode="linear", align_corners=ac, **kw).numpy()
    assert calls
    _same(y, t)


@pytest.mark.parametrize("n, kw", CASES[:6])
def test_equals_the_products_and_the_taps_within_rounding(n, kw, monkeypatch):
    x = np.random.default_rng(2).standard_normal((4, 3, n)).astype(np.float32)
    y = F.interpolate(mg.tensor(x), mode="linear", **kw).numpy()
    monkeypatch.setattr(_native, "lerp_last", lambda *a: None)  # the BLAS products
    ref = F.interpolate(mg.tensor(x), mode="linear", **kw).numpy()
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)
    ax = rb.axis(n, y.shape[-1], kw.get("scale_factor"), False, False, np.dtype(np.float32))
    taps = rb._taps(np, x.astype(np.float64), 2, ax)  # float64 taps: the exact values
    np.testing.assert_allclose(y, taps, rtol=1e-6, atol=1e-6)


def test_gradient_and_float64_unchanged():
    x = np.random.default_rng(3).standard_normal((2, 3, 20))
    t = torch.tensor(x, requires_grad=True)
    m = mg.tensor(x.astype(np.float32), requires_grad=True)
    TF.interpolate(t.float(), scale_factor=2, mode="linear").sum().backward()
    F.interpolate(m, scale_factor=2, mode="linear").sum().backward()
    np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), rtol=1e-6)
    y64 = F.interpolate(mg.tensor(x), scale_factor=2, mode="linear").numpy()
    t64 = TF.interpolate(torch.tensor(x), scale_factor=2, mode="linear").numpy()
    assert y64.dtype == np.float64
    np.testing.assert_allclose(y64, t64, rtol=1e-14)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16_bit_floats_as_pytorch(dtype):
    x = np.random.default_rng(4).standard_normal((2, 4, 33)).astype(np.float32)
    t = TF.interpolate(torch.from_numpy(x).to(getattr(torch, dtype)), size=70, mode="linear")
    m = F.interpolate(mg.tensor(x).to(getattr(mg, dtype)), size=70, mode="linear")
    # NOTE: within one rounding of the 16-bit type (PyTorch's 16-bit kernel rounds
    # differently; so did the products before the kernel)
    eps = 2.0 ** (-10 if dtype == "float16" else -7)
    np.testing.assert_allclose(m.float().numpy(), t.float().numpy(), rtol=eps, atol=eps)


def test_empty_and_non_contiguous_inputs():
    assert F.interpolate(mg.zeros(0, 3, 8), scale_factor=2, mode="linear").shape == (0, 3, 16)
    x = np.random.default_rng(5).standard_normal((6, 4, 40)).astype(np.float32)
    m = mg.tensor(x)
    for v, mv in ((x[:, :, ::2], m[:, :, ::2]), (x.transpose(1, 0, 2), m.permute(1, 0, 2))):
        assert not mv._data.flags.c_contiguous  # copied first, then the kernel
        y = F.interpolate(mv, scale_factor=2, mode="linear").numpy()
        _same(y, TF.interpolate(torch.from_numpy(v.copy()), scale_factor=2, mode="linear"))
    assert _native.lerp_last(x[:, :, ::2].reshape(-1, 20), None) is None  # strided rows
    assert _native.lerp_last(x.astype(np.float64).reshape(-1, 40), None) is None


def test_one_and_two_threads_give_the_same_bits():
    x = _edges((64, 64, 256), seed=6)
    old = get_num_threads()
    outs = []
    try:
        for n in (1, 2):
            set_num_threads(n)
            outs.append(F.interpolate(mg.tensor(x), scale_factor=2, mode="linear").numpy())
    finally:
        set_num_threads(old)
    _same(outs[0], outs[1])
