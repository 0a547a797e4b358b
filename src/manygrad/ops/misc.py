"""The smaller rest of PyTorch's top-level functions: sign and NaN-aware helpers, angle
conversions, integration (trapezoid), statistics (cov, corrcoef), splitting, out-of-place
scatters (index_put, select/slice/diagonal_scatter), matrix_exp and dtype queries."""

from __future__ import annotations

import math

from .. import backend, return_types
from .. import dtypes as D
from ..autograd import Function
from ..errors import DTypeError, DTypeNotImplementedError, ShapeError
from ..tensor import Size, Tensor
from .elementwise import _float_input, _float_pair, abs, cast, div, isnan, log, mul, sub, where
from .indexing import _dim, getitem
from .linalg import matmul
from .movement import movedim, narrow, reshape, transpose
from .reduce import amax, sum

# ---------------------------------------------------------------------------- elementwise


def sgn(input: Tensor) -> Tensor:  # noqa: A002
    """The sign of each element, 0 for NaN (as PyTorch).

    For complex ``x`` it is ``x / |x|`` (0 where ``x`` is 0), with a gradient; ``sign``
    refuses complex tensors, as PyTorch's.

    Example:
        >>> mg.sgn(mg.tensor([3 + 4j, 0j]))   # tensor([0.6000+0.8000j, 0.0000+0.0000j])
    """
    if input.is_complex():
        from .complex_ops import complex_sgn

        return complex_sgn(input)
    s = input.sign()
    return where(isnan(input), 0.0, s) if input.is_floating_point() else s


@backend.on_tensor_device
def signbit(input: Tensor) -> Tensor:  # noqa: A002
    return Tensor._wrap(backend.array_module(input._data).signbit(input._data), input._device)


class Copysign(Function):
    """``|a|`` with the sign bit of ``b``; the gradient is ``g * y / a`` (0 where a is 0)
    for ``a`` and zeros for ``b``, as PyTorch's CopysignBackward."""

    def forward(self, a, b):
        xp = backend.array_module(a)
        self.a, self.y = a, xp.copysign(a, b)
        return self.y

    def backward(self, g):
        xp = backend.array_module(g)
        ga = gb = None
        if self.needs_input_grad[0]:
            with backend.quiet_float_errors():
                ratio = self.y / self.a
            ga = g * xp.where(self.a == 0, xp.zeros((), ratio.dtype), ratio)
        if self.needs_input_grad[1]:
            gb = xp.zeros(g.shape, g.dtype)
        return ga, gb

    def backward_graph(self, g):
        # NOTE: the factor is +-1 (0 at a == 0): piecewise constant, so a constant here
        xp = backend.array_module(self.a)
        with backend.quiet_float_errors():
            ratio = self.y / self.a
        ratio = Tensor._wrap(xp.where(self.a == 0, xp.zeros((), ratio.dtype), ratio))
        return g * ratio, g * 0


def copysign(input, other) -> Tensor:  # noqa: A002
    """``|input|`` with the sign (bit) of ``other``; always floating."""
    a = _float_input(input)
    if isinstance(other, Tensor):
        a, b = _float_pair(input, other)
        return Copysign.apply(a, b)
    neg = math.copysign(1.0, other) < 0
    return -abs(a) if neg else abs(a)


def fmax(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """Elementwise maximum that ignores NaN (NaN only where both are NaN)."""
    from .elementwise import maximum

    return where(isnan(other), input, where(isnan(input), other, maximum(input, other)))


def fmin(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """Elementwise minimum that ignores NaN (NaN only where both are NaN)."""
    from .elementwise import minimum

    return where(isnan(other), input, where(isnan(input), other, minimum(input, other)))


def logit(input: Tensor, eps=None) -> Tensor:  # noqa: A002
    """``log(p / (1 - p))``, with p clamped to [eps, 1 - eps] when eps is given."""
    p = _float_input(input)
    if eps is not None:
        p = p.clamp(eps, 1 - eps)
    return log(div(p, 1 - p))


def _int_pair(name, ufunc):
    @backend.on_tensor_device
    def op(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
        for v in (input, other):
            if isinstance(v, Tensor) and v._data.dtype.kind not in "iu":
                raise DTypeNotImplementedError(
                    f"{name}: not implemented for {v.dtype} tensors; it takes integer ones"
                )
        xp = backend.array_module(input._data)
        o = other._data if isinstance(other, Tensor) else other
        return Tensor._wrap(getattr(xp, ufunc)(input._data, o), input._device)

    op.__name__ = op.__qualname__ = name  # NOTE: picklable by reference
    return op


gcd = _int_pair("gcd", "gcd")
lcm = _int_pair("lcm", "lcm")


def rad2deg(input: Tensor) -> Tensor:  # noqa: A002
    return mul(_float_input(input), 180.0 / math.pi)


def deg2rad(input: Tensor) -> Tensor:  # noqa: A002
    return mul(_float_input(input), math.pi / 180.0)


def ldexp(input: Tensor, other) -> Tensor:  # noqa: A002
    """``input * 2 ** other``."""
    if not isinstance(other, Tensor):
        return mul(_float_input(input), 2.0 ** float(other))
    a, b = _float_pair(input, other)
    return mul(a, 2.0**b)


@backend.on_tensor_device
def frexp(input: Tensor):  # noqa: A002
    """``(mantissa, exponent)`` with ``input = mantissa * 2 ** exponent``, |mantissa| in
    [0.5, 1)."""
    m, e = backend.array_module(input._data).frexp(input._data)
    dev = input._device
    return return_types.frexp((Tensor._wrap(m, dev), Tensor._wrap(e.astype("int32"), dev)))


def isposinf(input: Tensor) -> Tensor:  # noqa: A002
    return (input == math.inf) if input.is_floating_point() else input != input


def isneginf(input: Tensor) -> Tensor:  # noqa: A002
    return (input == -math.inf) if input.is_floating_point() else input != input


@backend.on_tensor_device
def isreal(input: Tensor) -> Tensor:  # noqa: A002
    """True where the value is real (a complex value with imaginary part 0)."""
    xp = backend.array_module(input._data)
    if input.is_complex():
        return Tensor._wrap(xp.imag(input._data) == 0, input._device)
    return Tensor._wrap(xp.ones(input.shape, bool), input._device)


def positive(input: Tensor) -> Tensor:  # noqa: A002
    """``input`` itself (unary ``+``); bool tensors raise, as in PyTorch."""
    if isinstance(input, Tensor) and input._data.dtype.kind == "b":
        raise DTypeError(
            "positive: the `+` operator, on a bool tensor is not supported (as in PyTorch)"
        )
    return input


def rsub(input, other, alpha=1) -> Tensor:  # noqa: A002
    """``other - alpha * input``."""
    return sub(other, mul(input, alpha) if alpha != 1 else input)


multiply, subtract, divide = mul, sub, div

# ---------------------------------------------------------------------------- splitting


def select(input: Tensor, dim: int, index: int) -> Tensor:  # noqa: A002
    d = _dim(dim, input.ndim, "select")
    return getitem(input, (slice(None),) * d + (index,))


def _split_points(op: str, *given):
    """The one split argument given (positionally, or by one of PyTorch's overload names)."""
    points = [v for v in given if v is not None]
    if len(points) != 1:
        raise TypeError(
            f"{op}: give the split points once: positionally, or as sections= (a number of "
            "parts) or indices= (a list of indices)"
        )
    return points[0]


def tensor_split(input: Tensor, indices_or_sections=None, dim: int = 0, *,  # noqa: A002
                 sections=None, indices=None, tensor_indices_or_sections=None) -> tuple:  # fmt: skip
    """Split into ``n`` nearly equal parts, or at the given indices, along ``dim``.

    As in PyTorch, the second argument may also be named by its overload: ``sections=``
    (an int), ``indices=`` (a list) or ``tensor_indices_or_sections=`` (a tensor)."""
    indices_or_sections = _split_points("tensor_split", indices_or_sections, sections, indices,
                                        tensor_indices_or_sections)  # fmt: skip
    d = _dim(dim, input.ndim, "tensor_split")
    n = input.shape[d]
    if isinstance(indices_or_sections, Tensor):
        indices_or_sections = indices_or_sections.tolist()
    if isinstance(indices_or_sections, int):
        k = indices_or_sections
        if k <= 0:
            from .linalg_extra import ArgumentError  # NOTE: a RuntimeError, as PyTorch's

            raise ArgumentError(f"tensor_split: sections must be positive, got {k}")
        sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
        bounds = [0]
        for s in sizes:
            bounds.append(bounds[-1] + s)
    else:
        bounds = [0] + [min(max(int(i), 0), n) for i in indices_or_sections] + [n]
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        b = max(a, b)
        out.append(narrow(input, d, a, b - a))
    return tuple(out)


def _split_dim(x: Tensor, sections, dim: int, op: str) -> tuple:
    if isinstance(sections, int) and x.shape[dim] % sections:
        raise ShapeError(f"{op}: dim {dim} of size {x.shape[dim]} does not split into "
                         f"{sections} equal parts")  # fmt: skip
    return tensor_split(x, sections, dim)


def hsplit(input: Tensor, sections=None, *, indices=None) -> tuple:  # noqa: A002
    """Split along dim 1 (0 for 1-d tensors) into ``sections`` equal parts, or at ``indices``."""
    sections = _split_points("hsplit", sections, indices)
    return _split_dim(input, sections, 1 if input.ndim > 1 else 0, "hsplit")


def vsplit(input: Tensor, sections=None, *, indices=None) -> tuple:  # noqa: A002
    """Split along dim 0 into ``sections`` equal parts, or at ``indices``."""
    return _split_dim(input, _split_points("vsplit", sections, indices), 0, "vsplit")


def dsplit(input: Tensor, sections=None, *, indices=None) -> tuple:  # noqa: A002
    """Split along dim 2 into ``sections`` equal parts, or at ``indices``."""
    return _split_dim(input, _split_points("dsplit", sections, indices), 2, "dsplit")


def ravel(input: Tensor) -> Tensor:  # noqa: A002
    return reshape(input, -1)


def adjoint(input: Tensor) -> Tensor:  # noqa: A002
    """The conjugate transpose of the last two dims."""
    t = transpose(input, -2, -1)
    return t.conj() if input.is_complex() else t


def narrow_copy(input: Tensor, dim: int, start: int, length: int) -> Tensor:  # noqa: A002
    if getattr(input, "is_sparse", False):  # NOTE: a sparse COO tensor's entries in the range
        from .._sparse_ops import narrow_copy as sparse_narrow_copy

        return sparse_narrow_copy(input, dim, start, length)
    return narrow(input, dim, start, length).clone()


def broadcast_shapes(*shapes) -> Size:
    """The shape that the given shapes broadcast to."""
    out: list[int] = []
    for s in shapes:
        s = (s,) if isinstance(s, int) else tuple(s)
        n = max(len(out), len(s))
        a, b = [1] * (n - len(out)) + out, [1] * (n - len(s)) + list(s)
        if any(x != y and 1 not in (x, y) for x, y in zip(a, b)):
            raise ShapeError(f"broadcast_shapes: shapes {shapes} do not broadcast")
        out = [y if x == 1 else x for x, y in zip(a, b)]
    return Size(out)


def broadcast_tensors(*tensors) -> tuple:
    shape = broadcast_shapes(*(t.shape for t in tensors))
    return tuple(t.expand(*shape) if tuple(t.shape) != tuple(shape) else t for t in tensors)


# ---------------------------------------------------------------------------- scatters


class Put(Function):
    """``out = x; out[key] = src`` (or ``+=`` with ``accumulate``)."""

    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, x, src, key, accumulate):
        self.key, self.accumulate, self.src_shape = key, accumulate, src.shape
        out = x.copy()
        if accumulate:
            backend.index_add(out, key, src)
        else:
            out[key] = src
        return out

    def backward(self, g):
        gs = g[self.key]
        if self.accumulate:
            return g, gs, None, None
        gx = g.copy()
        gx[self.key] = 0
        return gx, gs, None, None

    def backward_graph(self, g):
        gs = getitem(g, self.key)
        if self.accumulate:
            return g, gs, None, None
        keep = backend.array_module(g._data).ones(g.shape, bool)
        keep[self.key] = False
        return g * Tensor._wrap(keep), gs, None, None


def _put(x: Tensor, src, key, accumulate=False) -> Tensor:
    if not isinstance(src, Tensor):
        xp = backend.array_module(x._data)
        src = Tensor._wrap(xp.asarray(src, dtype=x._data.dtype), x._device)
    if src.dtype is not x.dtype:
        src = cast(src, x.dtype)
    return Put.apply(x, src, key, accumulate)


@backend.on_tensor_device
def index_put(input: Tensor, indices, values, accumulate: bool = False) -> Tensor:  # noqa: A002
    """A copy of ``input`` with ``values`` written (or added) at ``input[indices]``."""
    from .indexing import _index_array

    key = tuple(_index_array(input, i, "index_put") for i in indices)
    return _put(input, values, key, accumulate)


def select_scatter(input: Tensor, src: Tensor, dim: int, index: int) -> Tensor:  # noqa: A002
    """A copy of ``input`` with ``input.select(dim, index)`` replaced by ``src``."""
    d = _dim(dim, input.ndim, "select_scatter")
    return _put(input, src, (slice(None),) * d + (index,))


def slice_scatter(input: Tensor, src: Tensor, dim: int = 0, start=None, end=None,  # noqa: A002
                  step: int = 1) -> Tensor:  # fmt: skip
    """A copy of ``input`` with the slice ``start:end:step`` of ``dim`` replaced by ``src``."""
    d = _dim(dim, input.ndim, "slice_scatter")
    return _put(input, src, (slice(None),) * d + (slice(start, end, step),))


@backend.on_tensor_device
def diagonal_scatter(input: Tensor, src: Tensor, offset: int = 0, dim1: int = 0,  # noqa: A002
                     dim2: int = 1) -> Tensor:  # fmt: skip
    """A copy of ``input`` with its diagonal (as ``torch.diagonal``) replaced by ``src``."""
    from .shaping import _diag_index

    d1, d2 = _dim(dim1, input.ndim, "diagonal_scatter"), _dim(dim2, input.ndim, "diagonal_scatter")
    y = movedim(input, (d1, d2), (-2, -1))
    r, c = _diag_index(backend.array_module(input._data), y.shape[-2], y.shape[-1], offset)
    out = _put(y, src, (Ellipsis, r, c))
    return movedim(out, (-2, -1), (d1, d2))


# ---------------------------------------------------------------------------- matrices


def matrix_exp(input: Tensor) -> Tensor:  # noqa: A002
    """``exp`` of square matrices: scaling and squaring with an 18-term Taylor series
    (matmuls only, so differentiable to any order)."""
    from .shaping import diag_embed

    A = input  # noqa: N806
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ShapeError(f"matrix_exp: expected square matrices, got shape {tuple(A.shape)}")
    norm = float(amax(sum(abs(A.detach()), -2)).item()) if A.numel() else 0.0
    s = max(0, math.ceil(math.log2(norm))) if norm > 0.5 else 0
    X = A / (2.0**s)  # noqa: N806
    eye = diag_embed(X.detach()[..., 0] * 0 + 1)
    out = eye
    for k in range(18, 0, -1):  # Horner: I + X/1 (I + X/2 (I + ...))
        out = eye + matmul(X, out) / k
    for _ in range(s):
        out = matmul(out, out)
    return out


def qr(input: Tensor, some: bool = True):  # noqa: A002
    """``torch.qr``: ``linalg.qr`` in mode 'reduced' when ``some``, else 'complete'."""
    from .linalg_qr import qr_legacy

    return qr_legacy(input, some)


# ---------------------------------------------------------------------------- dtype queries


def result_type(tensor, other):
    return D.result_type(tensor, other)


def promote_types(type1, type2):
    return D.promote_types(D.from_any(type1), D.from_any(type2))


def can_cast(from_, to) -> bool:
    """Whether PyTorch's casting rules allow ``from_`` to ``to`` (no lower category)."""
    return D.from_any(from_)._cat <= D.from_any(to)._cat


def is_floating_point(input: Tensor) -> bool:  # noqa: A002
    return input.is_floating_point()


def is_complex(input: Tensor) -> bool:  # noqa: A002
    """True for complex64 and complex128 tensors."""
    return input.is_complex()


def is_nonzero(input: Tensor) -> bool:  # noqa: A002
    if input.numel() != 1:
        raise RuntimeError(f"is_nonzero: expected a tensor of one element, got {input.numel()}")
    return bool(input.item())


def is_same_size(input: Tensor, other: Tensor) -> bool:  # noqa: A002
    return tuple(input.shape) == tuple(other.shape)


from ._common import public  # noqa: E402

__all__ = public(globals()) + ["multiply", "subtract", "divide"]
