"""``Tensor``'s in-place methods that are their out-of-place op written back (``exp_``,
``scatter_``, ``index_put_``, ...), through ``Tensor._inplace`` (see ``autograd._inplace``), and
the methods that change a tensor's shape in place. The hot in-place updates (``add_``,
``mul_``, ``copy_``, ``zero_``...) keep a fast path of their own in ``tensor.py``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import numpy as np

from . import backend

if TYPE_CHECKING:
    from .tensor import Tensor


class _Ops:
    """``manygrad.ops``, looked up on use (ops import tensor.py, which imports this)."""

    def __getattr__(self, name):
        return getattr(sys.modules["manygrad.ops"], name)


F = _Ops()


def _tensor():
    return sys.modules["manygrad.tensor"].Tensor


def _wrap(arr, dev=None):
    return _tensor()._wrap(arr, dev)


def _overwrite(s, v):
    from .autograd._inplace import overwrite

    return overwrite(s, v)


def _check_inference(t, name: str) -> None:
    from .autograd._inference import check_inplace

    check_inplace(t, name)


def _generator(t: Tensor, generator, name: str):
    """The stream a random fill draws from: ``generator``, which must draw on ``t``'s device
    (as PyTorch requires), or the device's own."""
    if generator is None:
        return backend.generator(t._device)
    if not isinstance(generator, backend.Generator):
        raise TypeError(
            f"{name}(): argument 'generator' must be a manygrad.Generator, not "
            f"{type(generator).__name__}"
        )
    gd, dev = generator.device, t._device
    if gd.type != dev.type or (gd.index or 0) != (dev.index or 0):
        from .errors import DeviceError

        raise DeviceError(
            f"{name}(): the generator draws on {gd} but the tensor is on {dev}; pass a "
            f"generator of that device: mg.Generator({str(dev)!r})"
        )
    return generator


def copy_source(src, other):
    """The source of ``copy_``, given as ``src`` (PyTorch's documented name) or ``other`` (the
    name its Python binding takes)."""
    if src is None and other is None:
        raise TypeError("copy_() missing 1 required argument: 'src'")
    if src is not None and other is not None:
        raise TypeError("copy_() got the source twice, as src and as other; pass one")
    return other if src is None else src


def _no_grad():
    from .autograd import no_grad

    return no_grad()


class InplaceMethods:
    """In-place methods of ``Tensor`` (a base of it)."""

    __slots__ = ()

    def neg_(self) -> Tensor:
        return self._inplace("neg_", F.neg)

    def abs_(self) -> Tensor:
        return self._inplace("abs_", F.abs)

    def exp_(self) -> Tensor:
        return self._inplace("exp_", F.exp)

    def log_(self) -> Tensor:
        return self._inplace("log_", F.log)

    def sqrt_(self) -> Tensor:
        return self._inplace("sqrt_", F.sqrt)

    def rsqrt_(self) -> Tensor:
        return self._inplace("rsqrt_", F.rsqrt)

    def sin_(self) -> Tensor:
        return self._inplace("sin_", F.sin)

    def cos_(self) -> Tensor:
        return self._inplace("cos_", F.cos)

    def tanh_(self) -> Tensor:
        return self._inplace("tanh_", F.tanh)

    def sigmoid_(self) -> Tensor:
        return self._inplace("sigmoid_", F.sigmoid)

    def relu_(self) -> Tensor:
        return self._inplace("relu_", F.relu)

    def square_(self) -> Tensor:
        return self._inplace("square_", F.square)

    def reciprocal_(self) -> Tensor:
        return self._inplace("reciprocal_", F.reciprocal)

    def pow_(self, exponent) -> Tensor:
        return self._inplace("pow_", F.pow, exponent)

    def remainder_(self, other) -> Tensor:
        return self._inplace("remainder_", F.remainder, other)

    def floor_divide_(self, other) -> Tensor:
        return self._inplace("floor_divide_", F.floor_divide, other)

    def clamp_min_(self, min) -> Tensor:  # noqa: A002
        return self._inplace("clamp_min_", F.clamp, min, None)

    def clamp_max_(self, max) -> Tensor:  # noqa: A002
        return self._inplace("clamp_max_", F.clamp, None, max)

    def lerp_(self, end, weight) -> Tensor:
        return self._inplace("lerp_", F.lerp, end, weight)

    def addcmul_(self, tensor1, tensor2, value=1) -> Tensor:
        return self._inplace("addcmul_", lambda s, a, b: s + a * b * value, tensor1, tensor2)

    def addcdiv_(self, tensor1, tensor2, value=1) -> Tensor:
        from .ops.mathfns import _check_addcdiv_operands

        _check_addcdiv_operands(tensor1, tensor2)
        return self._inplace("addcdiv_", lambda s, a, b: s + a / b * value, tensor1, tensor2)

    def masked_fill_(self, mask, value) -> Tensor:
        return self._inplace("masked_fill_", F.masked_fill, mask, value)

    def leaky_relu_(self, negative_slope: float = 0.01) -> Tensor:
        return self._inplace("leaky_relu_", F.leaky_relu, negative_slope)

    def floor_(self) -> Tensor:
        return self._inplace("floor_", F.floor)

    def ceil_(self) -> Tensor:
        return self._inplace("ceil_", F.ceil)

    def trunc_(self) -> Tensor:
        return self._inplace("trunc_", F.trunc)

    def frac_(self) -> Tensor:
        return self._inplace("frac_", F.frac)

    def tan_(self) -> Tensor:
        return self._inplace("tan_", F.tan)

    def asin_(self) -> Tensor:
        return self._inplace("asin_", F.asin)

    def acos_(self) -> Tensor:
        return self._inplace("acos_", F.acos)

    def atan_(self) -> Tensor:
        return self._inplace("atan_", F.atan)

    def sinh_(self) -> Tensor:
        return self._inplace("sinh_", F.sinh)

    def cosh_(self) -> Tensor:
        return self._inplace("cosh_", F.cosh)

    def asinh_(self) -> Tensor:
        return self._inplace("asinh_", F.asinh)

    def atanh_(self) -> Tensor:
        return self._inplace("atanh_", F.atanh)

    def erf_(self) -> Tensor:
        return self._inplace("erf_", F.erf)

    def erfinv_(self) -> Tensor:
        return self._inplace("erfinv_", F.erfinv)

    def log2_(self) -> Tensor:
        return self._inplace("log2_", F.log2)

    def log10_(self) -> Tensor:
        return self._inplace("log10_", F.log10)

    def exp2_(self) -> Tensor:
        return self._inplace("exp2_", F.exp2)

    def log1p_(self) -> Tensor:
        return self._inplace("log1p_", F.log1p)

    def expm1_(self) -> Tensor:
        return self._inplace("expm1_", F.expm1)

    def sign_(self) -> Tensor:
        return self._inplace("sign_", F.sign)

    def sgn_(self) -> Tensor:
        return self._inplace("sgn_", F.sgn)

    def logit_(self, eps=None) -> Tensor:
        return self._inplace("logit_", F.logit, eps)

    def digamma_(self) -> Tensor:
        return self._inplace("digamma_", F.digamma)

    def lgamma_(self) -> Tensor:
        return self._inplace("lgamma_", F.lgamma)

    def nan_to_num_(self, nan=0.0, posinf=None, neginf=None) -> Tensor:
        return self._inplace("nan_to_num_", F.nan_to_num, nan, posinf, neginf)

    def round_(self, decimals: int = 0) -> Tensor:
        return self._inplace("round_", F.round, decimals=decimals)

    def fmod_(self, other) -> Tensor:
        return self._inplace("fmod_", F.fmod, other)

    def copysign_(self, other) -> Tensor:
        return self._inplace("copysign_", F.copysign, other)

    def atan2_(self, other) -> Tensor:
        return self._inplace("atan2_", F.atan2, other)

    def hypot_(self, other) -> Tensor:
        return self._inplace("hypot_", F.hypot, other)

    def xlogy_(self, other) -> Tensor:
        return self._inplace("xlogy_", F.xlogy, other)

    def heaviside_(self, values) -> Tensor:
        return self._inplace("heaviside_", F.heaviside, values)

    def scatter_(self, dim, index, src=None, value=None, *, reduce=None) -> Tensor:
        if src is None:
            src = value
        if reduce is not None:
            return self._inplace("scatter_", F.scatter, dim, index, src, reduce=reduce)
        return self._inplace("scatter_", F.scatter, dim, index, src)

    def scatter_add_(self, dim, index, src) -> Tensor:
        return self._inplace("scatter_add_", F.scatter_add, dim, index, src)

    def scatter_reduce_(self, dim, index, src, reduce, *, include_self=True) -> Tensor:
        return self._inplace("scatter_reduce_", F.scatter_reduce, dim, index, src, reduce,
                             include_self=include_self)  # fmt: skip

    def index_add_(self, dim, index, source, *, alpha=1) -> Tensor:
        return self._inplace("index_add_", F.index_add, dim, index, source, alpha=alpha)

    def index_fill_(self, dim, index, value) -> Tensor:
        return self._inplace("index_fill_", F.index_fill, dim, index, value)

    def index_copy_(self, dim, index, source) -> Tensor:
        return self._inplace("index_copy_", F.index_copy, dim, index, source)

    def masked_scatter_(self, mask, source) -> Tensor:
        return self._inplace("masked_scatter_", F.masked_scatter, mask, source)

    def bernoulli_(self, p=0.5, *, generator=None) -> Tensor:
        from .creation import full_like

        prob = p if isinstance(p, _tensor()) else full_like(self.detach(), p)
        with _no_grad():
            v = F.bernoulli(prob, generator=generator)
        return self._inplace("bernoulli_", _overwrite, v)

    def index_put_(self, indices, values, accumulate: bool = False) -> Tensor:
        return self._inplace("index_put_", F.index_put, indices, values, accumulate=accumulate)

    def put_(self, index, source, accumulate: bool = False) -> Tensor:
        def put(s, i, v):
            flat = s.reshape(-1)
            return F.index_put(flat, (i.reshape(-1),), v.reshape(-1), accumulate).reshape(*s.shape)

        return self._inplace("put_", put, index, source)

    @backend.on_tensor_device
    def uniform_(self, from_=0.0, to=1.0, *, generator=None) -> Tensor:
        """Fill with draws from ``[from_, to)`` (PyTorch's ``from``, a Python keyword, is
        positional only)."""
        g = _generator(self, generator, "uniform_")
        v = g.random(self._data.shape, self._data.dtype) * (to - from_) + from_
        if not self._plain("uniform_"):
            return self._inplace("uniform_", _overwrite, _wrap(v, self._device))
        return self._set("uniform_", v)

    @backend.on_tensor_device
    def normal_(self, mean=0.0, std=1.0, *, generator=None) -> Tensor:
        g = _generator(self, generator, "normal_")
        v = g.normal(self._data.shape, self._data.dtype) * std + mean
        if not self._plain("normal_"):
            return self._inplace("normal_", _overwrite, _wrap(v, self._device))
        return self._set("normal_", v)

    def exponential_(self, lambd: float = 1.0, *, generator=None) -> Tensor:
        g = _generator(self, generator, "exponential_")
        u = _wrap(g.random(self._data.shape, self._data.dtype))
        return self._inplace("exponential_", _overwrite, -(1 - u).log() / lambd)

    def random_(self, from_=0, to=None, *, generator=None) -> Tensor:
        """Fill with integers drawn from ``[from_, to)`` (``[0, from_)`` when only one bound
        is given); PyTorch's ``from``, a Python keyword, is positional only."""
        if to is None:
            from_, to = 0, from_ if from_ else (1 << 24 if self.is_floating_point() else 1 << 31)
        g = _generator(self, generator, "random_")
        v = _wrap(g.integers(from_, to, self._data.shape, self._data.dtype))
        return self._inplace("random_", _overwrite, v)

    def apply_(self, fn) -> Tensor:
        """Apply a Python function to every element (CPU tensors only, as in PyTorch)."""
        if self._device.type != "cpu":
            raise TypeError("apply_ is only implemented on CPU tensors, as in PyTorch")
        out = np.vectorize(fn, otypes=[self._data.dtype])(self._data)
        return self._set("apply_", out)

    def transpose_(self, dim0: int, dim1: int) -> Tensor:
        _check_inference(self, "transpose_")
        self._data = self._data.swapaxes(dim0, dim1)
        return self._done("transpose_")

    def unfold(self, dimension: int, size: int, step: int) -> Tensor:
        """Windows of ``size`` elements every ``step`` along ``dimension``, as a new last dim."""
        from .creation import arange

        d = dimension % max(self.ndim, 1)
        n = self.shape[d] if self.ndim else 1
        count = (n - size) // step + 1
        if size > n or step <= 0 or count <= 0:
            raise ValueError(
                f"unfold: size {size} and step {step} don't fit dim {d} of size {n}; need "
                "1 <= size <= the dim's size and step >= 1"
            )
        starts = arange(0, count * step, step, device=self._device).reshape(-1, 1)
        idx = (starts + arange(size, device=self._device).reshape(1, -1)).reshape(-1)
        win = F.index_select(self, d, idx)
        win = win.reshape(*self.shape[:d], count, size, *self.shape[d + 1 :])
        return win.movedim(d + 1, -1)

    def t_(self) -> Tensor:
        _check_inference(self, "t_")
        self._data = self._data.T
        return self._done("t_")

    def squeeze_(self, dim=None) -> Tensor:
        _check_inference(self, "squeeze_")
        self._data = F.squeeze(self.detach(), dim)._data
        return self._done("squeeze_")

    def unsqueeze_(self, dim) -> Tensor:
        _check_inference(self, "unsqueeze_")
        self._data = F.unsqueeze(self.detach(), dim)._data
        return self._done("unsqueeze_")
