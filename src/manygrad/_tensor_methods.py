"""More of ``Tensor``'s methods, kept apart so that ``tensor.py`` stays readable.

``Tensor`` derives from ``TensorMethods``; every method here forwards to the functional op
of the same name in ``manygrad.ops`` (so ``x.sort()`` and ``mg.sort(x)`` are the same code,
with the same arguments after the tensor itself).
"""

from __future__ import annotations

import sys


def _ops():
    # NOTE: manygrad.ops imports tensor.py, which imports this module: look it up late
    return sys.modules["manygrad.ops"]


def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


class TensorMethods:
    """Methods of ``Tensor`` that forward to ``manygrad.ops``."""

    __slots__ = ()

    # ------------------------------------------------------------ new_* constructors
    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        """Zeros of ``size`` with this tensor's dtype and device (unless given)."""
        from .creation import zeros

        return zeros(_size(size), dtype=dtype or self.dtype, device=device or self.device,
                     requires_grad=requires_grad)  # fmt: skip

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        """Ones of ``size`` with this tensor's dtype and device (unless given)."""
        from .creation import ones

        return ones(_size(size), dtype=dtype or self.dtype, device=device or self.device,
                    requires_grad=requires_grad)  # fmt: skip

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        """An uninitialised tensor of ``size`` with this tensor's dtype and device."""
        from .creation import empty

        return empty(_size(size), dtype=dtype or self.dtype, device=device or self.device,
                     requires_grad=requires_grad)  # fmt: skip

    def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
        """``fill_value`` in every entry of ``size``, with this tensor's dtype and device."""
        from .creation import full

        return full(tuple(size), fill_value, dtype=dtype or self.dtype,
                    device=device or self.device, requires_grad=requires_grad)  # fmt: skip

    def new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
        """A copy of ``data`` as a tensor with this tensor's dtype and device (unless given)."""
        from .creation import tensor

        if hasattr(data, "detach") and hasattr(data, "_data"):
            data = data.detach().cpu().numpy()
        return tensor(data, dtype=dtype or self.dtype, device=device or self.device,
                      requires_grad=requires_grad)  # fmt: skip

    # ------------------------------------------------------------ sparse
    is_sparse = False

    def to_sparse(self, sparse_dim=None):
        """The non-zero entries as a sparse COO tensor (``mg.sparse``)."""
        from .sparse import to_sparse

        return to_sparse(self)

    def to_dense(self):
        return self

    # ------------------------------------------------------------ forwarding to ops
    def sort(self, *args, **kwargs):
        return _ops().sort(self, *args, **kwargs)

    def argsort(self, *args, **kwargs):
        return _ops().argsort(self, *args, **kwargs)

    def msort(self, *args, **kwargs):
        return _ops().msort(self, *args, **kwargs)

    def topk(self, *args, **kwargs):
        return _ops().topk(self, *args, **kwargs)

    def kthvalue(self, *args, **kwargs):
        return _ops().kthvalue(self, *args, **kwargs)

    def median(self, *args, **kwargs):
        return _ops().median(self, *args, **kwargs)

    def nanmedian(self, *args, **kwargs):
        return _ops().nanmedian(self, *args, **kwargs)

    def mode(self, *args, **kwargs):
        return _ops().mode(self, *args, **kwargs)

    def quantile(self, *args, **kwargs):
        return _ops().quantile(self, *args, **kwargs)

    def nanquantile(self, *args, **kwargs):
        return _ops().nanquantile(self, *args, **kwargs)

    def unique(self, *args, **kwargs):
        return _ops().unique(self, *args, **kwargs)

    def unique_consecutive(self, *args, **kwargs):
        return _ops().unique_consecutive(self, *args, **kwargs)

    def nonzero(self, *args, **kwargs):
        return _ops().nonzero(self, *args, **kwargs)

    def argwhere(self, *args, **kwargs):
        return _ops().argwhere(self, *args, **kwargs)

    def count_nonzero(self, *args, **kwargs):
        return _ops().count_nonzero(self, *args, **kwargs)

    def bincount(self, *args, **kwargs):
        return _ops().bincount(self, *args, **kwargs)

    def histc(self, *args, **kwargs):
        return _ops().histc(self, *args, **kwargs)

    def scatter(self, *args, **kwargs):
        return _ops().scatter(self, *args, **kwargs)

    def scatter_reduce(self, *args, **kwargs):
        return _ops().scatter_reduce(self, *args, **kwargs)

    def index_add(self, *args, **kwargs):
        return _ops().index_add(self, *args, **kwargs)

    def index_fill(self, *args, **kwargs):
        return _ops().index_fill(self, *args, **kwargs)

    def index_copy(self, *args, **kwargs):
        return _ops().index_copy(self, *args, **kwargs)

    def masked_select(self, *args, **kwargs):
        return _ops().masked_select(self, *args, **kwargs)

    def masked_scatter(self, *args, **kwargs):
        return _ops().masked_scatter(self, *args, **kwargs)

    def take(self, *args, **kwargs):
        return _ops().take(self, *args, **kwargs)

    def take_along_dim(self, *args, **kwargs):
        return _ops().take_along_dim(self, *args, **kwargs)

    def diag(self, *args, **kwargs):
        return _ops().diag(self, *args, **kwargs)

    def diag_embed(self, *args, **kwargs):
        return _ops().diag_embed(self, *args, **kwargs)

    def diagonal(self, *args, **kwargs):
        return _ops().diagonal(self, *args, **kwargs)

    def diff(self, *args, **kwargs):
        return _ops().diff(self, *args, **kwargs)

    def tile(self, *args, **kwargs):
        return _ops().tile(self, *args, **kwargs)

    def kron(self, *args, **kwargs):
        return _ops().kron(self, *args, **kwargs)

    def outer(self, *args, **kwargs):
        return _ops().outer(self, *args, **kwargs)

    def ger(self, *args, **kwargs):
        return _ops().ger(self, *args, **kwargs)

    def inner(self, *args, **kwargs):
        return _ops().inner(self, *args, **kwargs)

    def dot(self, *args, **kwargs):
        return _ops().dot(self, *args, **kwargs)

    def vdot(self, *args, **kwargs):
        return _ops().vdot(self, *args, **kwargs)

    def mv(self, *args, **kwargs):
        return _ops().mv(self, *args, **kwargs)

    def addmm(self, *args, **kwargs):
        return _ops().addmm(self, *args, **kwargs)

    def addmv(self, *args, **kwargs):
        return _ops().addmv(self, *args, **kwargs)

    def addr(self, *args, **kwargs):
        return _ops().addr(self, *args, **kwargs)

    def baddbmm(self, *args, **kwargs):
        return _ops().baddbmm(self, *args, **kwargs)

    def addbmm(self, *args, **kwargs):
        return _ops().addbmm(self, *args, **kwargs)

    def cross(self, *args, **kwargs):
        return _ops().cross(self, *args, **kwargs)

    def dist(self, *args, **kwargs):
        return _ops().dist(self, *args, **kwargs)

    def trace(self, *args, **kwargs):
        return _ops().trace(self, *args, **kwargs)

    def fliplr(self, *args, **kwargs):
        return _ops().fliplr(self, *args, **kwargs)

    def flipud(self, *args, **kwargs):
        return _ops().flipud(self, *args, **kwargs)

    def rot90(self, *args, **kwargs):
        return _ops().rot90(self, *args, **kwargs)

    def repeat_interleave(self, *args, **kwargs):
        return _ops().repeat_interleave(self, *args, **kwargs)

    def unbind(self, *args, **kwargs):
        return _ops().unbind(self, *args, **kwargs)

    def broadcast_to(self, *args, **kwargs):
        return _ops().broadcast_to(self, *args, **kwargs)

    def swapaxes(self, *args, **kwargs):
        return _ops().swapaxes(self, *args, **kwargs)

    def swapdims(self, *args, **kwargs):
        return _ops().swapdims(self, *args, **kwargs)

    def moveaxis(self, *args, **kwargs):
        return _ops().moveaxis(self, *args, **kwargs)

    def cumprod(self, *args, **kwargs):
        return _ops().cumprod(self, *args, **kwargs)

    def cummax(self, *args, **kwargs):
        return _ops().cummax(self, *args, **kwargs)

    def cummin(self, *args, **kwargs):
        return _ops().cummin(self, *args, **kwargs)

    def logcumsumexp(self, *args, **kwargs):
        return _ops().logcumsumexp(self, *args, **kwargs)

    def aminmax(self, *args, **kwargs):
        return _ops().aminmax(self, *args, **kwargs)

    def nansum(self, *args, **kwargs):
        return _ops().nansum(self, *args, **kwargs)

    def nanmean(self, *args, **kwargs):
        return _ops().nanmean(self, *args, **kwargs)

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
