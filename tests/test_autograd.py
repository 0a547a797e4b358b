"""The autograd engine: graph walk, accumulation, freeing, no_grad, autograd.grad."""

import numpy as np
import pytest

import manygrad as mg
from manygrad.errors import AutogradError


def test_long_chain_has_no_recursion_limit():
    x = mg.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0 + 0.0
    y.sum().backward()
    assert x.grad.tolist() == [1.0]


def test_gradients_accumulate_until_zeroed():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    assert x.grad.tolist() == [3.0 + 2.0, 3.0 + 4.0]
    x.grad = None
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_shared_subexpression_and_diamond():
    x = mg.tensor(2.0, requires_grad=True)
    a = x * x  # used twice below
    y = a * a + a
    y.backward()
    # y = x^4 + x^2 -> dy/dx = 4x^3 + 2x = 36
    assert x.grad.item() == 36.0


def test_leaf_grads_do_not_alias():
    a = mg.tensor([1.0], requires_grad=True)
    b = mg.tensor([1.0], requires_grad=True)
    (a + b).sum().backward()
    with mg.no_grad():
        a.grad.mul_(10)
    assert b.grad.tolist() == [1.0]


def test_graph_is_freed_unless_retained():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)
    with pytest.raises(AutogradError, match="second time.*retain_graph=True"):
        y.backward()


def test_no_grad_records_nothing():
    x = mg.tensor([1.0], requires_grad=True)
    with mg.no_grad():
        y = x * 2
    assert y.grad_fn is None and not y.requires_grad
    with mg.no_grad():
        with mg.enable_grad():
            z = x * 2
    assert z.requires_grad

    @mg.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    assert mg.is_grad_enabled()


def test_autograd_grad_leaves_dot_grad_alone():
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = mg.tensor([0.5, 0.5, 0.5], requires_grad=True)
    y = (x * x * w).sum()
    dx, dw = mg.autograd.grad(y, [x, w])
    assert dx.tolist() == [1.0, 2.0, 3.0] and dw.tolist() == [1.0, 4.0, 9.0]
    assert x.grad is None and w.grad is None
    unused = mg.tensor([1.0], requires_grad=True)
    with pytest.raises(AutogradError, match="allow_unused"):
        mg.autograd.grad((x * 2).sum(), [unused])


def test_retain_grad_on_intermediate():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    assert h.grad.tolist() == [6.0, 12.0]


def test_backward_with_gradient_argument():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).backward(mg.tensor([1.0, 10.0]))
    assert x.grad.tolist() == [2.0, 20.0]


def test_backward_errors_say_what_to_do():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(AutogradError, match=r"scalar outputs.*\(2,\).*gradient="):
        (x * 2).backward()
    with pytest.raises(AutogradError, match="does not require grad.*requires_grad"):
        mg.tensor([1.0]).sum().backward()
    with pytest.raises(AutogradError, match="shape"):
        (x * 2).backward(mg.tensor([1.0, 2.0, 3.0]))


def test_integer_tensors_refuse_requires_grad():
    with pytest.raises(TypeError, match=r"only floating point.*int64.*\.float\(\)"):
        mg.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="bool"):
        mg.tensor([True]).requires_grad_()


def test_inplace_on_leaf_requires_no_grad():
    w = mg.tensor([1.0], requires_grad=True)
    with pytest.raises(AutogradError, match="no_grad"):
        w.add_(1.0)
    with mg.no_grad():
        w.add_(1.0)
    assert w.tolist() == [2.0]


def test_detach_and_grad_fn_names():
    x = mg.tensor([1.0], requires_grad=True)
    y = x.exp()
    assert "Exp" in repr(y.grad_fn) and not y.is_leaf and x.is_leaf
    assert y.detach().grad_fn is None and not y.detach().requires_grad


def test_broadcast_gradient_reduced_centrally():
    x = mg.tensor([[1.0], [2.0]], requires_grad=True)  # (2, 1)
    b = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)  # (3,)
    (x * b).sum().backward()
    assert x.grad.tolist() == [[6.0], [6.0]]
    assert b.grad.tolist() == [3.0, 3.0, 3.0]
