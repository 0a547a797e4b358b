"""``Tensor`` methods that forward, argument for argument, to the functional op of the
same name in ``manygrad.ops`` (``x.sort(dim)`` is ``mg.sort(x, dim)``)."""

from __future__ import annotations

import sys


def _ops():
    # NOTE: manygrad.ops imports tensor.py, which imports this module: look it up late
    return sys.modules["manygrad.ops"]


class MathMethods:
    """Forwarding methods (elementwise maths, linalg, random, the rest); a base of
    ``OpMethods``."""

    __slots__ = ()

    def floor(self, *args, **kwargs):
        return _ops().floor(self, *args, **kwargs)

    def ceil(self, *args, **kwargs):
        return _ops().ceil(self, *args, **kwargs)

    def round(self, *args, **kwargs):
        return _ops().round(self, *args, **kwargs)

    def trunc(self, *args, **kwargs):
        return _ops().trunc(self, *args, **kwargs)

    def fix(self, *args, **kwargs):
        return _ops().fix(self, *args, **kwargs)

    def frac(self, *args, **kwargs):
        return _ops().frac(self, *args, **kwargs)

    def tan(self, *args, **kwargs):
        return _ops().tan(self, *args, **kwargs)

    def asin(self, *args, **kwargs):
        return _ops().asin(self, *args, **kwargs)

    def acos(self, *args, **kwargs):
        return _ops().acos(self, *args, **kwargs)

    def atan(self, *args, **kwargs):
        return _ops().atan(self, *args, **kwargs)

    def atan2(self, *args, **kwargs):
        return _ops().atan2(self, *args, **kwargs)

    def arcsin(self, *args, **kwargs):
        return _ops().arcsin(self, *args, **kwargs)

    def arccos(self, *args, **kwargs):
        return _ops().arccos(self, *args, **kwargs)

    def arctan(self, *args, **kwargs):
        return _ops().arctan(self, *args, **kwargs)

    def arctan2(self, *args, **kwargs):
        return _ops().arctan2(self, *args, **kwargs)

    def arcsinh(self, *args, **kwargs):
        return _ops().arcsinh(self, *args, **kwargs)

    def arccosh(self, *args, **kwargs):
        return _ops().arccosh(self, *args, **kwargs)

    def arctanh(self, *args, **kwargs):
        return _ops().arctanh(self, *args, **kwargs)

    def sinh(self, *args, **kwargs):
        return _ops().sinh(self, *args, **kwargs)

    def cosh(self, *args, **kwargs):
        return _ops().cosh(self, *args, **kwargs)

    def asinh(self, *args, **kwargs):
        return _ops().asinh(self, *args, **kwargs)

    def acosh(self, *args, **kwargs):
        return _ops().acosh(self, *args, **kwargs)

    def atanh(self, *args, **kwargs):
        return _ops().atanh(self, *args, **kwargs)

    def erf(self, *args, **kwargs):
        return _ops().erf(self, *args, **kwargs)

    def erfc(self, *args, **kwargs):
        return _ops().erfc(self, *args, **kwargs)

    def erfinv(self, *args, **kwargs):
        return _ops().erfinv(self, *args, **kwargs)

    def i0(self):
        return _ops().i0(self)

    def igamma(self, other):
        return _ops().igamma(self, other)

    def igammac(self, other):
        return _ops().igammac(self, other)

    def lgamma(self, *args, **kwargs):
        return _ops().lgamma(self, *args, **kwargs)

    def digamma(self, *args, **kwargs):
        return _ops().digamma(self, *args, **kwargs)

    def log2(self, *args, **kwargs):
        return _ops().log2(self, *args, **kwargs)

    def log10(self, *args, **kwargs):
        return _ops().log10(self, *args, **kwargs)

    def exp2(self, *args, **kwargs):
        return _ops().exp2(self, *args, **kwargs)

    def logaddexp(self, *args, **kwargs):
        return _ops().logaddexp(self, *args, **kwargs)

    def logaddexp2(self, *args, **kwargs):
        return _ops().logaddexp2(self, *args, **kwargs)

    def hypot(self, *args, **kwargs):
        return _ops().hypot(self, *args, **kwargs)

    def sinc(self, *args, **kwargs):
        return _ops().sinc(self, *args, **kwargs)

    def xlogy(self, *args, **kwargs):
        return _ops().xlogy(self, *args, **kwargs)

    def nan_to_num(self, *args, **kwargs):
        return _ops().nan_to_num(self, *args, **kwargs)

    def isclose(self, *args, **kwargs):
        return _ops().isclose(self, *args, **kwargs)

    def lerp(self, *args, **kwargs):
        return _ops().lerp(self, *args, **kwargs)

    def addcmul(self, *args, **kwargs):
        return _ops().addcmul(self, *args, **kwargs)

    def addcdiv(self, *args, **kwargs):
        return _ops().addcdiv(self, *args, **kwargs)

    def clamp_min(self, *args, **kwargs):
        return _ops().clamp_min(self, *args, **kwargs)

    def clamp_max(self, *args, **kwargs):
        return _ops().clamp_max(self, *args, **kwargs)

    def heaviside(self, *args, **kwargs):
        return _ops().heaviside(self, *args, **kwargs)

    def bitwise_and(self, *args, **kwargs):
        return _ops().bitwise_and(self, *args, **kwargs)

    def bitwise_or(self, *args, **kwargs):
        return _ops().bitwise_or(self, *args, **kwargs)

    def bitwise_xor(self, *args, **kwargs):
        return _ops().bitwise_xor(self, *args, **kwargs)

    def bitwise_not(self, *args, **kwargs):
        return _ops().bitwise_not(self, *args, **kwargs)

    def bitwise_left_shift(self, *args, **kwargs):
        return _ops().bitwise_left_shift(self, *args, **kwargs)

    def bitwise_right_shift(self, *args, **kwargs):
        return _ops().bitwise_right_shift(self, *args, **kwargs)

    def logical_xor(self, *args, **kwargs):
        return _ops().logical_xor(self, *args, **kwargs)

    def negative(self, *args, **kwargs):
        return _ops().negative(self, *args, **kwargs)

    def absolute(self, *args, **kwargs):
        return _ops().absolute(self, *args, **kwargs)

    def float_power(self, *args, **kwargs):
        return _ops().float_power(self, *args, **kwargs)

    def det(self, *args, **kwargs):
        return _ops().det(self, *args, **kwargs)

    def logdet(self, *args, **kwargs):
        return _ops().logdet(self, *args, **kwargs)

    def slogdet(self, *args, **kwargs):
        return _ops().slogdet(self, *args, **kwargs)

    def inverse(self, *args, **kwargs):
        return _ops().inverse(self, *args, **kwargs)

    def pinverse(self, *args, **kwargs):
        return _ops().pinverse(self, *args, **kwargs)

    def matrix_power(self, *args, **kwargs):
        return _ops().matrix_power(self, *args, **kwargs)

    def cholesky(self, *args, **kwargs):
        return _ops().cholesky(self, *args, **kwargs)

    def bernoulli(self, *args, **kwargs):
        return _ops().bernoulli(self, *args, **kwargs)

    def multinomial(self, *args, **kwargs):
        return _ops().multinomial(self, *args, **kwargs)

    def sgn(self, *args, **kwargs):
        return _ops().sgn(self, *args, **kwargs)

    def signbit(self, *args, **kwargs):
        return _ops().signbit(self, *args, **kwargs)

    def copysign(self, *args, **kwargs):
        return _ops().copysign(self, *args, **kwargs)

    def fmax(self, *args, **kwargs):
        return _ops().fmax(self, *args, **kwargs)

    def fmin(self, *args, **kwargs):
        return _ops().fmin(self, *args, **kwargs)

    def logit(self, *args, **kwargs):
        return _ops().logit(self, *args, **kwargs)

    def gcd(self, *args, **kwargs):
        return _ops().gcd(self, *args, **kwargs)

    def lcm(self, *args, **kwargs):
        return _ops().lcm(self, *args, **kwargs)

    def rad2deg(self, *args, **kwargs):
        return _ops().rad2deg(self, *args, **kwargs)

    def deg2rad(self, *args, **kwargs):
        return _ops().deg2rad(self, *args, **kwargs)

    def ldexp(self, *args, **kwargs):
        return _ops().ldexp(self, *args, **kwargs)

    def frexp(self, *args, **kwargs):
        return _ops().frexp(self, *args, **kwargs)

    def mvlgamma(self, *args, **kwargs):
        return _ops().mvlgamma(self, *args, **kwargs)

    def isposinf(self, *args, **kwargs):
        return _ops().isposinf(self, *args, **kwargs)

    def isneginf(self, *args, **kwargs):
        return _ops().isneginf(self, *args, **kwargs)

    def isreal(self, *args, **kwargs):
        return _ops().isreal(self, *args, **kwargs)

    def positive(self, *args, **kwargs):
        return _ops().positive(self, *args, **kwargs)

    def select(self, *args, **kwargs):
        return _ops().select(self, *args, **kwargs)

    def tensor_split(self, *args, **kwargs):
        return _ops().tensor_split(self, *args, **kwargs)

    def hsplit(self, *args, **kwargs):
        return _ops().hsplit(self, *args, **kwargs)

    def vsplit(self, *args, **kwargs):
        return _ops().vsplit(self, *args, **kwargs)

    def dsplit(self, *args, **kwargs):
        return _ops().dsplit(self, *args, **kwargs)

    def ravel(self, *args, **kwargs):
        return _ops().ravel(self, *args, **kwargs)

    def adjoint(self, *args, **kwargs):
        return _ops().adjoint(self, *args, **kwargs)

    def narrow_copy(self, *args, **kwargs):
        return _ops().narrow_copy(self, *args, **kwargs)

    def index_put(self, *args, **kwargs):
        return _ops().index_put(self, *args, **kwargs)

    def select_scatter(self, *args, **kwargs):
        return _ops().select_scatter(self, *args, **kwargs)

    def slice_scatter(self, *args, **kwargs):
        return _ops().slice_scatter(self, *args, **kwargs)

    def diagonal_scatter(self, *args, **kwargs):
        return _ops().diagonal_scatter(self, *args, **kwargs)

    def matrix_exp(self, *args, **kwargs):
        return _ops().matrix_exp(self, *args, **kwargs)

    def cholesky_solve(self, *args, **kwargs):
        return _ops().cholesky_solve(self, *args, **kwargs)

    def cholesky_inverse(self, *args, **kwargs):
        return _ops().cholesky_inverse(self, *args, **kwargs)

    # NOTE: removed from PyTorch; each raises PyTorch's error naming the replacement
    def solve(self, other):
        from .compat.torch_low_level_misc import solve

        return solve(self, other)

    def lstsq(self, other):
        from .compat.torch_low_level_misc import lstsq

        return lstsq(self, other)

    def eig(self, eigenvectors=False):
        from .compat.torch_low_level_misc import eig

        return eig(self, eigenvectors)

    def symeig(self, eigenvectors=False):
        from .compat.torch_low_level_misc import symeig

        return symeig(self, eigenvectors)

    def geqrf(self):
        return _ops().geqrf(self)

    def orgqr(self, *args, **kwargs):
        return _ops().orgqr(self, *args, **kwargs)

    def renorm(self, *args, **kwargs):
        return _ops().renorm(self, *args, **kwargs)

    def histogram(self, *args, **kwargs):
        return _ops().histogram(self, *args, **kwargs)

    def cov(self, *args, **kwargs):
        return _ops().cov(self, *args, **kwargs)

    def corrcoef(self, *args, **kwargs):
        return _ops().corrcoef(self, *args, **kwargs)

    def is_nonzero(self, *args, **kwargs):
        return _ops().is_nonzero(self, *args, **kwargs)

    def is_same_size(self, *args, **kwargs):
        return _ops().is_same_size(self, *args, **kwargs)

    def is_complex(self, *args, **kwargs):
        return _ops().is_complex(self, *args, **kwargs)

    def multiply(self, *args, **kwargs):
        return _ops().multiply(self, *args, **kwargs)

    def subtract(self, *args, **kwargs):
        return _ops().subtract(self, *args, **kwargs)

    def divide(self, *args, **kwargs):
        return _ops().divide(self, *args, **kwargs)

    def cumulative_trapezoid(self, *args, **kwargs):
        return _ops().cumulative_trapezoid(self, *args, **kwargs)

    def polygamma(self, n):
        return _ops().polygamma(n, self)
