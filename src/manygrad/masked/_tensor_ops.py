"""``MaskedTensor``'s ops: shape ops, ``where`` and ``softmax``, reductions, operators, and
the elementwise ops looked up in the tables of ``_elementwise``."""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING

from ..tensor import Tensor
from . import _common, _ops
from . import _elementwise as E

if TYPE_CHECKING:
    from ._tensor import MaskedTensor


def _mg():
    import manygrad

    return manygrad


def _unsupported(name: str) -> TypeError:
    return TypeError(
        f"MaskedTensor does not support {name}; get a plain Tensor with mt.get_data() or "
        "mt.to_tensor(fill_value), or see manygrad.masked's docstring for the supported ops"
    )


def _refuse(name: str, *args, **kwargs):
    raise _unsupported(name)


class MaskedOps:
    """The ops of ``MaskedTensor`` (a mixin: the class itself holds data, mask, autograd
    and printing)."""

    __slots__ = ()

    # ------------------------------------------------------------------ shape ops
    def _both(self, name: str, *args, **kwargs):
        for a in (*args, *kwargs.values()):
            if isinstance(a, MaskedOps):
                raise TypeError(f"MaskedTensor.{name}: a MaskedTensor cannot be an argument")
        data = getattr(self._masked_data, name)(*args, **kwargs)
        mask = getattr(self._masked_mask, name)(*args, **kwargs)
        if isinstance(data, (tuple, list)):
            return tuple(self._make(d, m) for d, m in zip(data, mask))
        return self._make(data, mask)

    def __getitem__(self, idx) -> MaskedTensor:
        return self._both("__getitem__", idx)

    def select(self, dim: int, index: int) -> MaskedTensor:
        return self._both("select", dim, index)

    def transpose(self, dim0: int, dim1: int) -> MaskedTensor:
        return self._both("transpose", dim0, dim1)

    def t(self) -> MaskedTensor:
        return self._both("t")

    def split(self, split_size, dim: int = 0) -> tuple:
        return self._both("split", split_size, dim)

    def chunk(self, chunks: int, dim: int = 0) -> tuple:
        return self._both("chunk", chunks, dim)

    def view(self, *shape) -> MaskedTensor:
        return self._both("view", *shape)

    def reshape(self, *shape) -> MaskedTensor:
        return self._both("reshape", *shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> MaskedTensor:
        return self._both("flatten", start_dim, end_dim)

    def unsqueeze(self, dim: int) -> MaskedTensor:
        return self._both("unsqueeze", dim)

    def expand(self, *sizes) -> MaskedTensor:
        return self._both("expand", *sizes)

    def unfold(self, dimension: int, size: int, step: int) -> MaskedTensor:
        return self._both("unfold", dimension, size, step)

    # ------------------------------------------------------------------ where, softmax
    def where(self, condition: Tensor, other) -> MaskedTensor:
        """``self`` where ``condition`` is True, else ``other`` (a MaskedTensor, a Tensor
        or a number; plain values count as masked in).

        Example: ``mt.where(x > 0, 0.0)``.
        """
        mg = _mg()
        if isinstance(other, MaskedOps):
            od, om = other._masked_data, other._masked_mask
        else:
            od, om = other, True
        data = mg.where(condition, self._masked_data, od)
        mask = mg.where(condition, self._masked_mask, om)
        return self._make(data, mask.expand(*data.shape))

    def softmax(self, dim: int, dtype=None) -> MaskedTensor:
        """Softmax along ``dim`` over the masked-in elements (mask kept).

        Example: ``attn = scores_mt.softmax(-1)``.
        """
        out = _ops.softmax(self._masked_data, dim, dtype=dtype, mask=self._masked_mask)
        return self._make(out, self._masked_mask)

    # ------------------------------------------------------------------ reductions
    def _reduce(self, name: str, dim, keepdim: bool, dtype, **extra) -> MaskedTensor:
        mg, mask = _mg(), self._masked_mask
        dims = _common._canonical_dim(dim, self.ndim)
        if name == "all":
            out = self._masked_data.masked_fill(~mask, True)
            if dim is None and not keepdim:
                out = out.all()
            else:
                for k in reversed(dims):
                    out = out.all(k, keepdim=keepdim)
        else:
            out = getattr(_ops, name)(self, dim=dim, keepdim=keepdim, dtype=dtype, mask=mask,
                                      **extra)  # fmt: skip
        out_mask = mask
        for k in reversed(dims):
            out_mask = mg.any(out_mask, k, keepdim=keepdim)
        return self._make(out, out_mask)

    def sum(self, dim=None, keepdim: bool = False, dtype=None) -> MaskedTensor:
        """The sum of the masked-in elements (all dims when ``dim`` is None); the result is
        masked out where no element was masked in."""
        return self._reduce("sum", dim, keepdim, dtype)

    def mean(self, dim=None, keepdim: bool = False, dtype=None) -> MaskedTensor:
        return self._reduce("mean", dim, keepdim, dtype)

    def prod(self, dim=None, keepdim: bool = False, dtype=None) -> MaskedTensor:
        return self._reduce("prod", dim, keepdim, dtype)

    def amax(self, dim=None, keepdim: bool = False, dtype=None) -> MaskedTensor:
        return self._reduce("amax", dim, keepdim, dtype)

    def amin(self, dim=None, keepdim: bool = False, dtype=None) -> MaskedTensor:
        return self._reduce("amin", dim, keepdim, dtype)

    def argmax(self, dim=None, keepdim: bool = False, dtype=None) -> MaskedTensor:
        """The index of the largest masked-in element, in the data's dtype (as PyTorch)."""
        return self._reduce("argmax", dim, keepdim, dtype)

    def argmin(self, dim=None, keepdim: bool = False, dtype=None) -> MaskedTensor:
        return self._reduce("argmin", dim, keepdim, dtype)

    def all(self, dim=None, keepdim: bool = False) -> MaskedTensor:
        """Whether every masked-in element is true."""
        return self._reduce("all", dim, keepdim, None)

    def norm(self, p=2.0, dim=None, keepdim: bool = False, dtype=None) -> MaskedTensor:
        """The vector ``p``-norm of the masked-in elements (``"fro"`` counts as 2)."""
        p = 2.0 if p in ("fro", None) else p
        return self._reduce("norm", dim, keepdim, dtype, ord=p)

    def var(self, dim=None, keepdim: bool = False, dtype=None, *, unbiased=None,
            correction=None) -> MaskedTensor:  # fmt: skip
        """The variance of the masked-in elements (``correction`` 1 unless given).

        NOTE: the second positional argument is ``keepdim``, as in PyTorch's MaskedTensor
        (not ``unbiased`` as in ``Tensor.var``).
        """
        return self._reduce("var", dim, keepdim, dtype, unbiased=unbiased,
                            correction=correction)  # fmt: skip

    def std(self, dim=None, keepdim: bool = False, dtype=None, *, unbiased=None,
            correction=None) -> MaskedTensor:  # fmt: skip
        """The standard deviation of the masked-in elements; arguments as in ``var``."""
        return self._reduce("std", dim, keepdim, dtype, unbiased=unbiased,
                            correction=correction)  # fmt: skip

    # ------------------------------------------------------------------ operators
    def __add__(self, o):
        return E.binary("add", self, o)

    def __radd__(self, o):
        return E.binary("add", o, self)

    def __sub__(self, o):
        return E.binary("sub", self, o)

    def __rsub__(self, o):
        return E.binary("sub", o, self)

    def __mul__(self, o):
        return E.binary("mul", self, o)

    def __rmul__(self, o):
        return E.binary("mul", o, self)

    def __truediv__(self, o):
        return E.binary("div", self, o)

    def __rtruediv__(self, o):
        return E.binary("div", o, self)

    def __floordiv__(self, o):
        return E.binary("floor_divide", self, o)

    def __mod__(self, o):
        return E.binary("remainder", self, o)

    def __pow__(self, o):
        return E.unary("pow", self, (o,), {})

    def __and__(self, o):
        return E.binary("bitwise_and", self, o)

    def __or__(self, o):
        return E.binary("bitwise_or", self, o)

    def __xor__(self, o):
        return E.binary("bitwise_xor", self, o)

    def __iadd__(self, o):
        return E.binary("add_", self, o)

    def __isub__(self, o):
        return E.binary("sub_", self, o)

    def __imul__(self, o):
        return E.binary("mul_", self, o)

    def __itruediv__(self, o):
        return E.binary("div_", self, o)

    def __eq__(self, o):
        return E.binary("eq", self, o)

    def __ne__(self, o):
        return E.binary("ne", self, o)

    def __lt__(self, o):
        return E.binary("lt", self, o)

    def __le__(self, o):
        return E.binary("le", self, o)

    def __gt__(self, o):
        return E.binary("gt", self, o)

    def __ge__(self, o):
        return E.binary("ge", self, o)

    def __neg__(self):
        return E.unary("neg", self, (), {})

    def __pos__(self):
        return E.unary("positive", self, (), {})

    def __abs__(self):
        return E.unary("abs", self, (), {})

    def __invert__(self):
        return E.unary("bitwise_not", self, (), {})

    def __getattr__(self, name: str):
        # NOTE: the elementwise ops come from tables (as PyTorch's MaskedTensor dispatches
        # them); the other Tensor names exist but refuse, naming the op
        if name in E.UNARY or name in E.UNARY_INPLACE:
            return lambda *a, **k: E.unary(name, self, a, k)
        if name in E.BINARY or name in E.BINARY_INPLACE:
            return lambda other, *a, **k: E.binary(name, self, other, a, k)
        if not name.startswith("_") and hasattr(Tensor, name):
            if isinstance(inspect.getattr_static(Tensor, name), property):
                raise _unsupported(f"the Tensor attribute {name!r}")
            return functools.partial(_refuse, name)
        raise AttributeError(f"'MaskedTensor' object has no attribute {name!r}")

    def __dir__(self):
        return sorted(set(super().__dir__()) | E.UNARY | E.UNARY_INPLACE | E.BINARY
                      | E.BINARY_INPLACE)  # fmt: skip
