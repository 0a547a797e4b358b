"""autograd.gradcheck / gradgradcheck: they pass right gradients, catch wrong first and
second derivatives (naming where), handle complex inputs in PyTorch's convention, and agree
with torch.autograd.gradcheck on the same functions."""

import numpy as np
import pytest

import manygrad as mg
from manygrad.autograd import GradcheckError, gradcheck, gradgradcheck

torch = pytest.importorskip("torch")


def _pair(shape, seed=0, complex_=False):
    a = np.random.default_rng(seed).standard_normal(shape)
    if complex_:
        a = a + 1j * np.random.default_rng(seed + 1).standard_normal(shape)
    return mg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


FUNCS = [
    ("sin of product", lambda a, b: (a * b).sin().sum(0)),
    ("matmul", lambda a, b: a.T @ b),
    ("softmax", lambda a, b: (a * b).softmax(-1)),
    ("two outputs", lambda a, b: ((a * b).tanh(), (a - b).exp())),
]


@pytest.mark.parametrize("name,fn", FUNCS, ids=[n for n, _ in FUNCS])
def test_right_gradients_pass_first_and_second_order(name, fn, device):
    xm, xt = _pair((2, 3))
    ym, yt = _pair((2, 3), 1)
    xm, ym = (t.detach().to(device).requires_grad_() for t in (xm, ym))
    assert gradcheck(fn, (xm, ym)) is torch.autograd.gradcheck(fn, (xt, yt))
    assert gradgradcheck(fn, (xm, ym)) is torch.autograd.gradgradcheck(fn, (xt, yt))


class WrongFirst(mg.autograd.Function):
    @staticmethod
    def forward(ctx, a):
        return a * 2

    @staticmethod
    def backward(ctx, g):
        return g * 3


class WrongSecond(mg.autograd.Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a * a * a

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g * 3 * a * a.detach()  # the detach loses half the second derivative


def test_wrong_gradients_are_caught_and_located():
    x, _ = _pair((3,))
    with pytest.raises(GradcheckError, match=r"output 0 with respect to input 0"):
        gradcheck(WrongFirst.apply, (x,))
    assert gradcheck(WrongFirst.apply, (x,), raise_exception=False) is False
    assert gradcheck(WrongSecond.apply, (x,))
    with pytest.raises(GradcheckError, match="Jacobian mismatch"):
        gradgradcheck(WrongSecond.apply, (x,))


@pytest.mark.parametrize("fn", [lambda t: (t * t).exp(), lambda t: t.abs(),
                                lambda t: (t * t.conj()).real, lambda t: t.reciprocal()])  # fmt: skip
def test_complex_inputs_in_pytorchs_convention(fn):
    zm, zt = _pair((3,), complex_=True)
    assert gradcheck(fn, (zm,)) and torch.autograd.gradcheck(fn, (zt,))


def test_a_wrong_complex_gradient_is_caught():
    class ConjWrong(mg.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return g * 2 * a  # PyTorch's convention needs conj(2a)

    zm, _ = _pair((3,), complex_=True)
    assert gradcheck(ConjWrong.apply, (zm,), raise_exception=False) is False


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="require gradient"):
        gradcheck(lambda a: a * 2, (mg.ones(2, dtype=mg.float64),))
    with pytest.warns(UserWarning, match="double precision"):
        gradcheck(lambda a: a * 2, (mg.ones(2, requires_grad=True),), raise_exception=False)
