"""The most used of ``Tensor``'s methods, each the functional op of the same name in
``manygrad.ops`` applied to the tensor (``x.exp()`` is ``mg.exp(x)``).

``Tensor`` derives from ``CoreMethods``. ``F`` is ``manygrad.ops``, bound by ``tensor.py``
once the ops are imported (they import ``Tensor``): a plain global keeps these calls as
cheap as methods defined on ``Tensor`` itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._out import numpy_dims
from ._size_args import one_form

if TYPE_CHECKING:
    from .tensor import Tensor

F = None  # manygrad.ops, set by tensor.py


def _no_dim(name: str, dim, keepdim) -> None:
    """``x.max(other=y)`` is the elementwise maximum: refuse a reduction's arguments with it."""
    if dim is not None or keepdim:
        raise TypeError(f"{name}() takes dim/keepdim or other=, not both: other= is the "
                        f"elementwise {name}imum of two tensors")  # fmt: skip


class CoreMethods:
    """Forwarding methods for the common ops (a base of ``Tensor``)."""

    __slots__ = ()

    def neg(self) -> Tensor:
        return F.neg(self)

    def abs(self) -> Tensor:
        return F.abs(self)

    def exp(self) -> Tensor:
        return F.exp(self)

    def log(self) -> Tensor:
        return F.log(self)

    def log1p(self) -> Tensor:
        return F.log1p(self)

    def expm1(self) -> Tensor:
        return F.expm1(self)

    def sqrt(self) -> Tensor:
        return F.sqrt(self)

    def rsqrt(self) -> Tensor:
        return F.rsqrt(self)

    def sin(self) -> Tensor:
        return F.sin(self)

    def cos(self) -> Tensor:
        return F.cos(self)

    def tanh(self) -> Tensor:
        return F.tanh(self)

    def sigmoid(self) -> Tensor:
        return F.sigmoid(self)

    def relu(self) -> Tensor:
        return F.relu(self)

    def square(self) -> Tensor:
        return F.square(self)

    def reciprocal(self) -> Tensor:
        return F.reciprocal(self)

    def sign(self) -> Tensor:
        return F.sign(self)

    def logical_not(self) -> Tensor:
        return F.logical_not(self)

    def isnan(self) -> Tensor:
        return F.isnan(self)

    def isinf(self) -> Tensor:
        return F.isinf(self)

    def isfinite(self) -> Tensor:
        return F.isfinite(self)

    def add(self, other, alpha=1):
        return F.add(self, other, alpha=alpha)

    def sub(self, other, alpha=1):
        return F.sub(self, other, alpha=alpha)

    def mul(self, other):
        return F.mul(self, other)

    def div(self, other, rounding_mode=None):
        return F.div(self, other, rounding_mode=rounding_mode)

    def floor_divide(self, other):
        return F.floor_divide(self, other)

    def remainder(self, other):
        return F.remainder(self, other)

    def pow(self, exponent):
        return F.pow(self, exponent)

    def clamp(self, min=None, max=None):  # noqa: A002
        return F.clamp(self, min, max)

    def clip(self, min=None, max=None):  # noqa: A002
        return F.clip(self, min, max)

    def maximum(self, other):
        return F.maximum(self, other)

    def minimum(self, other):
        return F.minimum(self, other)

    def eq(self, other):
        return F.eq(self, other)

    def ne(self, other):
        return F.ne(self, other)

    def lt(self, other):
        return F.lt(self, other)

    def le(self, other):
        return F.le(self, other)

    def gt(self, other):
        return F.gt(self, other)

    def ge(self, other):
        return F.ge(self, other)

    def logical_and(self, other):
        return F.logical_and(self, other)

    def logical_or(self, other):
        return F.logical_or(self, other)

    def sum(self, dim=None, keepdim=False, dtype=None, *, axis=None, keepdims=None):
        if axis is not None or keepdims is not None:  # NumPy's names, as PyTorch takes
            dim, keepdim = numpy_dims("sum", dim, keepdim, axis, keepdims)
        return F.sum(self, dim, keepdim, dtype=dtype)

    def mean(self, dim=None, keepdim=False, dtype=None, *, axis=None, keepdims=None):
        if axis is not None or keepdims is not None:  # NumPy's names, as PyTorch takes
            dim, keepdim = numpy_dims("mean", dim, keepdim, axis, keepdims)
        return F.mean(self, dim, keepdim, dtype=dtype)

    def var(
        self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None
    ):
        if axis is not None or keepdims is not None:  # NumPy's names, as PyTorch takes
            dim, keepdim = numpy_dims("var", dim, keepdim, axis, keepdims)
        return F.var(self, dim, unbiased, keepdim, correction=correction)

    def std(
        self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None
    ):
        if axis is not None or keepdims is not None:  # NumPy's names, as PyTorch takes
            dim, keepdim = numpy_dims("std", dim, keepdim, axis, keepdims)
        return F.std(self, dim, unbiased, keepdim, correction=correction)

    def max(self, dim=None, keepdim=False, *, other=None, axis=None, keepdims=None):
        if axis is not None or keepdims is not None:  # NumPy's names, as PyTorch takes
            dim, keepdim = numpy_dims("max", dim, keepdim, axis, keepdims)
        if other is not None:  # x.max(other=y) is maximum, as x.max(y)
            _no_dim("max", dim, keepdim)
            return F.maximum(self, other)
        return F.max(self, dim, keepdim)

    def min(self, dim=None, keepdim=False, *, other=None, axis=None, keepdims=None):
        if axis is not None or keepdims is not None:  # NumPy's names, as PyTorch takes
            dim, keepdim = numpy_dims("min", dim, keepdim, axis, keepdims)
        if other is not None:  # x.min(other=y) is minimum, as x.min(y)
            _no_dim("min", dim, keepdim)
            return F.minimum(self, other)
        return F.min(self, dim, keepdim)

    def amax(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        if axis is not None or keepdims is not None:  # NumPy's names, as PyTorch takes
            dim, keepdim = numpy_dims("amax", dim, keepdim, axis, keepdims)
        return F.amax(self, dim, keepdim)

    def amin(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        if axis is not None or keepdims is not None:  # NumPy's names, as PyTorch takes
            dim, keepdim = numpy_dims("amin", dim, keepdim, axis, keepdims)
        return F.amin(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        if axis is not None or keepdims is not None:  # NumPy's names, as PyTorch takes
            dim, keepdim = numpy_dims("argmax", dim, keepdim, axis, keepdims)
        return F.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        if axis is not None or keepdims is not None:  # NumPy's names, as PyTorch takes
            dim, keepdim = numpy_dims("argmin", dim, keepdim, axis, keepdims)
        return F.argmin(self, dim, keepdim)

    def prod(self, dim=None, keepdim=False, dtype=None, *, axis=None, keepdims=None):
        if axis is not None or keepdims is not None:  # NumPy's names, as PyTorch takes
            dim, keepdim = numpy_dims("prod", dim, keepdim, axis, keepdims)
        return F.prod(self, dim, keepdim, dtype=dtype)

    def logsumexp(self, dim, keepdim=False, *, axis=None, keepdims=None):
        if axis is not None or keepdims is not None:  # NumPy's names, as PyTorch takes
            dim, keepdim = numpy_dims("logsumexp", dim, keepdim, axis, keepdims)
        return F.logsumexp(self, dim, keepdim)

    def cumsum(self, dim, dtype=None):
        return F.cumsum(self, dim, dtype=dtype)

    def all(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        if axis is not None or keepdims is not None:  # NumPy's names, as PyTorch takes
            dim, keepdim = numpy_dims("all", dim, keepdim, axis, keepdims)
        return F.all(self, dim, keepdim)

    def any(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        if axis is not None or keepdims is not None:  # NumPy's names, as PyTorch takes
            dim, keepdim = numpy_dims("any", dim, keepdim, axis, keepdims)
        return F.any(self, dim, keepdim)

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        return F.norm(self, p, dim, keepdim, dtype)

    def reshape(self, *sizes, shape=None):
        return F.reshape(self, *sizes, shape=shape)

    def view(self, *shape, size=None, dtype=None):
        if size is not None or dtype is not None:
            shape = one_form("view", shape, size=size, dtype=dtype)  # PyTorch's keyword forms
        return F.view(self, *shape)

    def view_as(self, other):
        return F.view_as(self, other)

    def reshape_as(self, other):
        return F.reshape_as(self, other)

    def transpose(self, dim0, dim1):
        return F.transpose(self, dim0, dim1)

    def t(self):
        return F.t(self)

    def permute(self, *order, dims=None):
        return F.permute(self, *order, dims=dims)

    def expand(self, *sizes, size=None):
        sizes = one_form("expand", sizes, size=size)
        return F.expand(self, *sizes)

    def expand_as(self, other):
        return F.expand_as(self, other)

    def squeeze(self, dim=None):
        return F.squeeze(self, dim)

    def unsqueeze(self, dim):
        return F.unsqueeze(self, dim)

    def flatten(self, start_dim=0, end_dim=-1):
        return F.flatten(self, start_dim, end_dim)

    def unflatten(self, dim, sizes):
        return F.unflatten(self, dim, sizes)

    def split(self, split_size, dim=0):
        return F.split(self, split_size, dim)

    def chunk(self, chunks, dim=0):
        return F.chunk(self, chunks, dim)

    def flip(self, *order, dims=None):
        order = one_form("flip", order, dims=dims)
        one = len(order) == 1 and (dims is not None or not isinstance(order[0], int))
        return F.flip(self, order[0] if one else order)  # NOTE: x.flip(dims=1) raises

    def movedim(self, source, destination):
        return F.movedim(self, source, destination)

    def tril(self, diagonal=0):
        return F.tril(self, diagonal)

    def triu(self, diagonal=0):
        return F.triu(self, diagonal)

    def gather(self, dim, index, *, sparse_grad=False):
        return F.gather(self, dim, index, sparse_grad=sparse_grad)

    def scatter_add(self, dim, index, src):
        return F.scatter_add(self, dim, index, src)

    def index_select(self, dim, index):
        return F.index_select(self, dim, index)

    def masked_fill(self, mask, value):
        return F.masked_fill(self, mask, value)

    def repeat(self, *sizes, repeats=None):
        sizes = one_form("repeat", sizes, repeats=repeats)
        return F.repeat(self, *sizes)

    def narrow(self, dim, start, length):
        return F.narrow(self, dim, start, length)

    def roll(self, shifts, dims=None):
        return F.roll(self, shifts, dims)

    def matmul(self, other):
        return F.matmul(self, other)

    def _numpy_matmul(self, a):
        """``self @ a`` for a NumPy array ``a``, as PyTorch has it: NumPy multiplies
        ``self.numpy()`` by ``a`` (with NumPy's dtype promotion and shape errors; a tensor
        that requires grad or lives on a GPU is refused as by ``numpy()``), and the product
        comes back as a CPU tensor without gradient (bools as uint8, as PyTorch's)."""
        import numpy as np

        from .creation import from_numpy

        out = np.asarray(np.matmul(self.numpy(), a))
        return from_numpy(out.astype(np.uint8) if out.dtype == np.bool_ else out)

    def mm(self, mat2):
        return F.mm(self, mat2)

    def bmm(self, mat2):
        return F.bmm(self, mat2)

    def softmax(self, dim, dtype=None):
        return F.softmax(self, dim, dtype=dtype)

    def log_softmax(self, dim, dtype=None):
        return F.log_softmax(self, dim, dtype=dtype)

    def where(self, condition, other) -> Tensor:
        return F.where(condition, self, other)
