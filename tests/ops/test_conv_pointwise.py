"""1x1 convolutions on the CPU as plain products (ops/_conv_pointwise.py): outputs and every
gradient against PyTorch, over strides, odd sizes, both weight-gradient orders and the
cases that must keep the general path."""

import numpy as np
import pytest
import torch

import manygrad as mg
from manygrad.ops import _conv_pointwise
from manygrad.ops._conv_geom import _Geom

# (N, C_in, H, W, C_out, stride, bias)
CASES = [
    (4, 16, 9, 7, 8, 1, True),  # 63 pixels: one product per image for the weight gradient
    (3, 8, 5, 5, 12, 1, False),  # 25 pixels: the channels-first product
    (2, 32, 16, 16, 64, 2, True),  # the shortcut of a residual stage
    (3, 6, 7, 10, 5, (2, 3), True),  # uneven strides: rows and columns left out
    (5, 4, 1, 1, 3, 1, True),  # 1x1 images
    (1, 130, 12, 12, 70, 1, False),  # one image
    (2, 5, 9, 9, 4, 4, True),  # stride larger than the kernel, one row sampled of four
]


def _close(ours, theirs, dtype):
    theirs = theirs.detach().numpy()
    scale = float(np.abs(theirs).max(initial=0.0))
    if dtype == np.float32:
        tol = dict(rtol=1e-4, atol=1e-5 + 2e-6 * scale)
    else:
        tol = dict(rtol=1e-10, atol=1e-11 * max(1.0, scale))
    np.testing.assert_allclose(ours.detach().numpy(), theirs, **tol)


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pointwise_conv2d_matches_torch(case, dtype):
    n, ci, h, w, co, s, bias = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, ci, h, w)).astype(dtype)
    wt = (rng.standard_normal((co, ci, 1, 1)) * 0.3).astype(dtype)
    b = rng.standard_normal(co).astype(dtype) if bias else None
    mx, mw = mg.tensor(x, requires_grad=True), mg.tensor(wt, requires_grad=True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(wt, requires_grad=True)
    mb = None if b is None else mg.tensor(b, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    y, ty = mg.conv2d(mx, mw, mb, stride=s), torch.conv2d(tx, tw, tb, stride=s)
    assert tuple(y.shape) == tuple(ty.shape)
    g = rng.standard_normal(tuple(ty.shape)).astype(dtype)
    y.backward(mg.tensor(g))
    ty.backward(torch.tensor(g))
    _close(y, ty, dtype)
    _close(mx.grad, tx.grad, dtype)
    _close(mw.grad, tw.grad, dtype)
    if bias:
        _close(mb.grad, tb.grad, dtype)


def test_pointwise_conv1d_and_unbatched():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 10, 40)).astype(np.float32)
    w = rng.standard_normal((6, 10, 1)).astype(np.float32)
    mx, tx = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = mg.conv1d(mx, mg.tensor(w), stride=2), torch.conv1d(tx, torch.tensor(w), stride=2)
    y.sum().backward()
    ty.sum().backward()
    _close(y, ty, np.float32)
    _close(mx.grad, tx.grad, np.float32)
    x2 = rng.standard_normal((10, 5, 5)).astype(np.float32)
    w2 = rng.standard_normal((4, 10, 1, 1)).astype(np.float32)
    _close(
        mg.conv2d(mg.tensor(x2), mg.tensor(w2)),
        torch.conv2d(torch.tensor(x2), torch.tensor(w2)),
        np.float32,
    )


def test_only_input_or_only_weight_gradient():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 8, 6, 6)).astype(np.float32)
    w = rng.standard_normal((5, 8, 1, 1)).astype(np.float32)
    for need_x in (True, False):
        mx, mw = mg.tensor(x, requires_grad=need_x), mg.tensor(w, requires_grad=not need_x)
        tx, tw = torch.tensor(x, requires_grad=need_x), torch.tensor(w, requires_grad=not need_x)
        mg.conv2d(mx, mw, stride=2).square().sum().backward()
        torch.conv2d(tx, tw, stride=2).square().sum().backward()
        if need_x:
            assert mw.grad is None
            _close(mx.grad, tx.grad, np.float32)
        else:
            assert mx.grad is None
            _close(mw.grad, tw.grad, np.float32)


def test_in_place_change_of_the_input_is_refused():
    x = mg.randn(2, 4, 5, 5, requires_grad=True)
    w = mg.randn(3, 4, 1, 1, requires_grad=True)
    h = x * 1.0
    y = mg.conv2d(h, w)
    h.add_(1.0)  # the weight gradient reads h: PyTorch refuses this backward too
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_which_convolutions_take_the_products(device):
    x = np.zeros((2, 4, 6, 6), np.float32)

    def geom(k, pad=0, groups=1):
        return _Geom(x.shape, (4, 4 // groups, k, k), (1, 1), (pad,) * 4, (1, 1), groups)

    assert _conv_pointwise.applies(x, geom(1))
    assert not _conv_pointwise.applies(x, geom(3, 1))
    assert not _conv_pointwise.applies(x, geom(1, 1))  # padded
    assert not _conv_pointwise.applies(x, geom(1, 0, 2))  # grouped
    assert not _conv_pointwise.applies(x.astype(np.float16), geom(1))
    # every device and dtype still matches PyTorch, whichever path it takes
    xs = np.random.default_rng(4).standard_normal((2, 4, 6, 6)).astype(np.float32)
    ws = np.random.default_rng(5).standard_normal((3, 4, 1, 1)).astype(np.float32)
    y = mg.conv2d(mg.tensor(xs, device=device), mg.tensor(ws, device=device), stride=2)
    ty = torch.conv2d(torch.tensor(xs), torch.tensor(ws), stride=2)
    np.testing.assert_allclose(y.cpu().numpy(), ty.numpy(), rtol=1e-5, atol=1e-5)
