"""conv1d on the CPU in NCL layout (ops/_conv1d_rows.py): outputs and every gradient
against PyTorch, over the shapes and options where its index arithmetic could slip."""

import numpy as np
import pytest
import torch

import manygrad as mg
from manygrad.ops import _conv1d_rows

# (N, C_in, L, C_out, k, stride, padding, dilation, bias)
CASES = [
    (4, 8, 50, 16, 3, 1, 1, 1, True),
    (3, 5, 31, 7, 5, 2, 2, 1, False),
    (2, 6, 40, 4, 3, 3, 0, 2, True),
    (5, 3, 9, 2, 9, 1, 4, 1, True),  # kernel as long as the input
    (1, 4, 17, 3, 1, 1, 0, 1, True),  # 1-tap kernel
    (2, 4, 23, 6, 4, 2, (3,), 3, True),  # uneven: output shorter than padded input / stride
    (64, 16, 12, 8, 3, 1, 1, 1, True),  # many images in one block
    (3, 64, 1100, 8, 5, 1, 2, 1, True),  # a block per image, over the CPU threads
    (3, 2, 20, 5, 3, 1, "same", 2, True),
    (3, 2, 20, 5, 3, 1, "valid", 1, False),
]


def _pair(case, dtype, seed=0):
    n, ci, length, co, k, s, p, d, bias = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, ci, length)).astype(dtype)
    w = (rng.standard_normal((co, ci, k)) * 0.3).astype(dtype)
    b = rng.standard_normal(co).astype(dtype) if bias else None
    return x, w, b, dict(stride=s, padding=p, dilation=d)


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv1d_matches_torch(case, dtype):
    x, w, b, kw = _pair(case, dtype)
    mx, mw = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    mb = None if b is None else mg.tensor(b, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    y, ty = mg.conv1d(mx, mw, mb, **kw), torch.conv1d(tx, tw, tb, **kw)
    g = np.random.default_rng(1).standard_normal(tuple(ty.shape)).astype(dtype)
    y.backward(mg.tensor(g))
    ty.backward(torch.tensor(g))

    def close(ours, theirs):
        # float32 sums of thousands of products (the weight gradient of a long signal)
        # differ in the last bits with the summation order: the allowance grows with the
        # size of the values compared.
        theirs = theirs.detach().numpy()
        scale = float(np.abs(theirs).max(initial=0.0))
        if dtype == np.float32:
            tol = dict(rtol=1e-4, atol=1e-4 + 4e-6 * scale)
        else:
            tol = dict(rtol=1e-10, atol=1e-10 * max(1.0, scale))
        np.testing.assert_allclose(ours.detach().numpy(), theirs, **tol)

    close(y, ty)
    close(mx.grad, tx.grad)
    close(mw.grad, tw.grad)
    if b is not None:
        close(mb.grad, tb.grad)


def test_the_ncl_path_is_the_one_taken(monkeypatch):
    calls = []
    real = _conv1d_rows.forward
    monkeypatch.setattr(_conv1d_rows, "forward", lambda *a: calls.append(1) or real(*a))
    mg.conv1d(mg.randn(2, 3, 10), mg.randn(4, 3, 3))
    mg.conv1d(mg.randn(2, 4, 10), mg.randn(4, 2, 3), groups=2)  # groups: the general path
    mg.conv2d(mg.randn(2, 3, 1, 10), mg.randn(4, 3, 1, 3))  # one row, 1 x k: this path
    mg.conv2d(mg.randn(2, 3, 1, 10), mg.randn(4, 3, 1, 3), padding=1)  # padded rows: not
    assert len(calls) == 2


def test_unbatched_input_weight_only_grad_and_double_backward():
    x, w, b, kw = _pair(CASES[0], np.float64)
    mx, tx = mg.tensor(x[0]), torch.tensor(x[0])
    mw, tw = mg.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    y, ty = mg.conv1d(mx, mw, None, **kw), torch.conv1d(tx, tw, None, **kw)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    # a gradient penalty: the weight's gradient through the input gradient
    mx2 = mg.tensor(x, requires_grad=True)
    tx2 = torch.tensor(x, requires_grad=True)
    (gm,) = mg.autograd.grad(mg.conv1d(mx2, mw, None, **kw).pow(2).sum(), mx2, create_graph=True)
    (gt,) = torch.autograd.grad(torch.conv1d(tx2, tw, None, **kw).pow(2).sum(), tx2,
                                create_graph=True)  # fmt: skip
    gm.pow(2).sum().backward()
    gt.pow(2).sum().backward()
    np.testing.assert_allclose(mw.grad.numpy(), tw.grad.numpy(), rtol=1e-9)
