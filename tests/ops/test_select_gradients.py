"""clamp (scalar and tensor bounds), maximum and minimum pass gradients by selection, as
PyTorch's do: an inf or NaN gradient never reaches a clamped or losing element as 0 * inf
(NaN), ties split the gradient, and NaN operands take it on both sides."""

import numpy as np
import pytest
import torch

import manygrad as mg

INF, NAN = float("inf"), float("nan")


def _grads(lib, fn, inputs, g):
    ts = [lib.tensor(v, requires_grad=True) if v is not None else None for v in inputs]
    y = fn(lib, *ts)
    y.backward(lib.tensor(g))
    return y.detach().numpy(), [t.grad.numpy() if t is not None else None for t in ts]


CASES = {
    "clamp-scalars": (lambda lib, x: lib.clamp(x, -1.0, 1.0),
                      [[-2.0, 0.5, 3.0, NAN, 1.0]], [INF, 1.0, NAN, 3.0, 2.0]),
    "clamp-min-only": (lambda lib, x: x.clamp(min=0.0), [[-2.0, 0.5, NAN]], [INF, 1.0, 2.0]),
    "clamp-tensors": (lambda lib, x, lo, hi: lib.clamp(x, lo, hi),
                      [[-2.0, 0.5, 3.0, 0.0, NAN], [-1.0, -1.0, -1.0, 2.0, 0.0],
                       [1.0, 1.0, 1.0, 1.0, 1.0]], [INF, 1.0, 2.0, 3.0, 4.0]),
    "clamp-tensor-min": (lambda lib, x, lo: lib.clamp(x, min=lo),
                         [[-2.0, 0.5, 3.0, NAN], [-1.0, -1.0, -1.0, 0.0]], [INF, 1.0, 2.0, 3.0]),
    "clamp-tensor-max": (lambda lib, x, hi: lib.clamp(x, max=hi),
                         [[-2.0, 0.5, 3.0, NAN], [1.0, 1.0, 1.0, 0.0]], [1.0, NAN, INF, 3.0]),
    "maximum": (lambda lib, a, b: lib.maximum(a, b),
                [[NAN, 2.0, 1.0, 0.0], [1.0, NAN, 1.0, 3.0]], [1.0, 1.0, 1.0, INF]),
    "minimum": (lambda lib, a, b: lib.minimum(a, b),
                [[NAN, 2.0, 1.0, 5.0], [1.0, NAN, 1.0, 3.0]], [1.0, 1.0, 1.0, INF]),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_select_gradients_match_torch(name):
    fn, inputs, g = CASES[name]
    with np.errstate(invalid="ignore"):
        want_y, want = _grads(torch, fn, inputs, g)
        got_y, got = _grads(mg, fn, inputs, g)
    np.testing.assert_array_equal(got_y, want_y)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_clamp_with_tensor_bounds_promotes_and_broadcasts_as_torch():
    for lib in (torch, mg):
        y = lib.clamp(lib.tensor([1, 5, 9]), lib.tensor(2.5), lib.tensor([4, 4, 4]))
        assert str(y.dtype).endswith("float32") and y.tolist() == [2.5, 4.0, 4.0]
    x = np.random.default_rng(0).standard_normal((3, 4))
    lo = np.full((1, 4), -0.3)
    tx, tlo = torch.tensor(x, requires_grad=True), torch.tensor(lo, requires_grad=True)
    mx, mlo = mg.tensor(x, requires_grad=True), mg.tensor(lo, requires_grad=True)
    torch.clamp(tx, tlo, torch.tensor(0.4)).pow(2).sum().backward()
    mg.clamp(mx, mlo, mg.tensor(0.4)).pow(2).sum().backward()
    np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy())
    np.testing.assert_allclose(mlo.grad.numpy(), tlo.grad.numpy())


def test_second_order_through_tensor_clamp_and_maximum():
    x = mg.tensor([-2.0, 0.5, 3.0], requires_grad=True)
    lo = mg.tensor([-1.0, -1.0, -1.0])
    y = (mg.clamp(x, lo, mg.tensor(1.0)) ** 3).sum() + (mg.maximum(x, lo) ** 3).sum()
    (g,) = mg.autograd.grad(y, x, create_graph=True)
    (h,) = mg.autograd.grad(g.sum(), x)
    tx = torch.tensor([-2.0, 0.5, 3.0], requires_grad=True)
    tlo = torch.tensor([-1.0, -1.0, -1.0])
    ty = (torch.clamp(tx, tlo, torch.tensor(1.0)) ** 3).sum() + (torch.maximum(tx, tlo) ** 3).sum()
    (tg,) = torch.autograd.grad(ty, tx, create_graph=True)
    (th,) = torch.autograd.grad(tg.sum(), tx)
    np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy())
    np.testing.assert_allclose(h.numpy(), th.numpy())
