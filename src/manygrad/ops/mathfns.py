"""More elementwise maths: rounding, trig and hyperbolic functions, two-operand functions
(atan2, hypot, logaddexp, xlogy), interpolation (lerp, addcmul, addcdiv) and bitwise ops,
with PyTorch's names. The special functions (erf, lgamma, ...) are in ``special_fns``."""

from __future__ import annotations

import math

from .. import backend
from .. import dtypes as D
from ..autograd import Function
from ..errors import DTypeError, DTypeNotImplementedError
from ..tensor import Tensor
from .elementwise import (
    _compare,
    _float_pair,
    _promote,
    _unary,
    _unary_test,
    abs,
    add,
    cast,
    clamp,
    exp,
    log1p,
    maximum,
    minimum,
    mul,
    sqrt,
    sub,
    where,
)

_IMPORTED = {"abs", "add", "cast", "clamp", "exp", "log", "maximum", "mul", "sqrt", "sub", "where"}

# ---------------------------------------------------------------------------- rounding


def _zero(xp, g, x, y):
    return xp.zeros_like(g)


def _gzero(g, x, y):
    return g * 0


_floor = _unary("Floor", lambda xp, x: xp.floor(x), _zero, False, False, graph=_gzero)
_ceil = _unary("Ceil", lambda xp, x: xp.ceil(x), _zero, False, False, graph=_gzero)
_trunc = _unary("Trunc", lambda xp, x: xp.trunc(x), _zero, False, False, graph=_gzero)
_frac = _unary(
    "Frac", lambda xp, x: x - xp.trunc(x), lambda xp, g, x, y: g, False, graph=lambda g, x, y: g
)


def _refuse(op: str, input, kinds: str, fix: str) -> None:
    """PyTorch's NotImplementedError for a tensor whose dtype kind is in ``kinds``
    ("b" bool, "iu" integers)."""
    if isinstance(input, Tensor) and input._data.dtype.kind in kinds:
        raise DTypeNotImplementedError(
            f"{op}: not implemented for {input.dtype.name} tensors (as in PyTorch); {fix}"
        )


def frac(input: Tensor) -> Tensor:
    """``input - trunc(input)``: the fractional part, with the sign of ``input``; floating
    point tensors only (integers have none: PyTorch raises)."""
    _refuse("frac", input, "biu", "convert first (x.float()) or use zeros_like(x)")
    return _frac(input)


def _int_passthrough(fn):
    def op(input: Tensor) -> Tensor:
        _refuse(op.__name__, input, "b", "convert the mask first (x.int())")
        return input.clone() if not input.is_floating_point() else fn(input)

    op.__name__ = op.__qualname__ = fn.__name__.lower()  # NOTE: picklable by reference
    op.__doc__ = f"``{op.__name__}`` elementwise (integers are returned unchanged, as copies)."
    return op


floor = _int_passthrough(_floor)
ceil = _int_passthrough(_ceil)
trunc = _int_passthrough(_trunc)
fix = trunc


class Round(Function):
    def forward(self, x, decimals):
        xp = backend.array_module(x)
        if decimals == 0:
            return xp.round(x)
        # NOTE: PyTorch scales, rounds half to even and scales back; for negative decimals
        # it divides first (x * 10**-3 is inexact: 1200.1 would round to 999.9999)
        s = 10.0 ** (-decimals if decimals < 0 else decimals)
        if decimals < 0:
            return (xp.round(x / s) * s).astype(x.dtype, copy=False)
        return (xp.round(x * s) / s).astype(x.dtype, copy=False)

    def backward(self, g):
        return backend.array_module(g).zeros_like(g)

    def backward_graph(self, g):
        return g * 0


def round(input: Tensor, decimals: int = 0) -> Tensor:  # noqa: A001
    """Round half to even; with ``decimals``, to that many decimal places.

    Example: ``mg.round(mg.tensor([0.5, 1.5, 1.234]), decimals=0)``
    """
    _refuse("round", input, "b", "convert the mask first (x.int())")
    if not input.is_floating_point():
        return input.clone()
    return Round.apply(input, int(decimals))


# ---------------------------------------------------------------------------- trig & co

tan = _unary(
    "Tan",
    lambda xp, x: xp.tan(x),
    lambda xp, g, x, y: g * (1 + y * y),
    graph=lambda g, x, y: g * (1 + y * y),
)
asin = _unary(
    "Asin",
    lambda xp, x: xp.arcsin(x),
    lambda xp, g, x, y: g / xp.sqrt(1 - x * x),
    graph=lambda g, x, y: g / sqrt(1 - x * x),
)
acos = _unary(
    "Acos",
    lambda xp, x: xp.arccos(x),
    lambda xp, g, x, y: -g / xp.sqrt(1 - x * x),
    graph=lambda g, x, y: -g / sqrt(1 - x * x),
)
atan = _unary(
    "Atan",
    lambda xp, x: xp.arctan(x),
    lambda xp, g, x, y: g / (1 + x * x),
    graph=lambda g, x, y: g / (1 + x * x),
)
sinh = _unary(
    "Sinh",
    lambda xp, x: xp.sinh(x),
    lambda xp, g, x, y: g * xp.cosh(x),
    graph=lambda g, x, y: g * cosh(x),
)
cosh = _unary(
    "Cosh",
    lambda xp, x: xp.cosh(x),
    lambda xp, g, x, y: g * xp.sinh(x),
    graph=lambda g, x, y: g * sinh(x),
)
asinh = _unary(
    "Asinh",
    lambda xp, x: xp.arcsinh(x),
    lambda xp, g, x, y: g / xp.sqrt(x * x + 1),
    graph=lambda g, x, y: g / sqrt(x * x + 1),
)
acosh = _unary(
    "Acosh",
    lambda xp, x: xp.arccosh(x),
    lambda xp, g, x, y: g / xp.sqrt(x * x - 1),
    graph=lambda g, x, y: g / sqrt(x * x - 1),
)
atanh = _unary(
    "Atanh",
    lambda xp, x: xp.arctanh(x),
    lambda xp, g, x, y: g / (1 - x * x),
    graph=lambda g, x, y: g / (1 - x * x),
)
arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh
log2 = _unary(
    "Log2",
    lambda xp, x: xp.log2(x),
    lambda xp, g, x, y: g / (x * math.log(2)),
    graph=lambda g, x, y: g / (x * math.log(2)),
)
log10 = _unary(
    "Log10",
    lambda xp, x: xp.log10(x),
    lambda xp, g, x, y: g / (x * math.log(10)),
    graph=lambda g, x, y: g / (x * math.log(10)),
)
exp2 = _unary(
    "Exp2",
    lambda xp, x: xp.exp2(x),
    lambda xp, g, x, y: g * y * math.log(2),
    graph=lambda g, x, y: g * y * math.log(2),
)


def _sinc(xp, x):
    a = x.astype("float32") if x.dtype.itemsize == 2 else x  # NOTE: 16-bit floats in f32
    px = a * math.pi
    safe = xp.where(a == 0, 1, px)
    return xp.where(a == 0, 1, xp.sin(safe) / safe).astype(x.dtype, copy=False)


def _dsinc(xp, g, x, y):
    px = x * math.pi
    safe = xp.where(x == 0, 1, px)
    d = (xp.cos(safe) * math.pi - y * math.pi) / safe
    return g * xp.where(x == 0, 0, d)


def _gsinc(g, x, y):
    px = x * math.pi
    safe = where(x == 0, 1.0, px)
    from .elementwise import cos

    return g * where(x == 0, 0.0, (cos(safe) * math.pi - y * math.pi) / safe)


sinc = _unary("Sinc", _sinc, _dsinc, graph=_gsinc)


class Atan2(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return backend.array_module(a).arctan2(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        r = a * a + b * b
        return g * b / r, -g * a / r

    def backward_graph(self, g):
        a, b = self.saved_input(0, self.a), self.saved_input(1, self.b)
        r = a * a + b * b
        return g * b / r, -g * a / r


def _both_tensors(a, b):
    """A Python number operand as a tensor like the other one (same device and dtype)."""
    if not isinstance(a, Tensor):
        a = _filled(b, a)
    if not isinstance(b, Tensor):
        b = _filled(a, b)
    return a, b


def _filled(like: Tensor, value) -> Tensor:
    with backend.device_scope(like._device):
        arr = backend.array_module(like._data).full(like.shape, value, like._data.dtype)
    return Tensor._wrap(arr, like._device)


def atan2(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """``atan(input / other)`` with the quadrant of (other, input)."""
    a, b = _float_pair(input, other)
    a, b = _both_tensors(a, b)
    return Atan2.apply(a, b)


arctan2 = atan2


def hypot(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """``sqrt(input**2 + other**2)`` elementwise (in the promoted floating type)."""
    a, b = _float_pair(input, other)
    return sqrt(add(mul(a, a), mul(b, b)))


def logaddexp(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """``log(exp(input) + exp(other))`` without overflow; 16-bit floats compute in float32."""
    a, b = _float_pair(input, other)
    t = a if isinstance(a, Tensor) else b
    if t.dtype in (D.float16, D.bfloat16):
        up = (cast(v, D.float32) if isinstance(v, Tensor) else v for v in (a, b))
        return cast(logaddexp(*up), t.dtype)
    # NOTE: PyTorch's form: the larger plus log1p(exp(-|a - b|)) (an infinite one with a
    # finite other gives it, with gradients 1 and 0), and equal infinities give themselves
    m = maximum(a, b)
    y = add(m, log1p(exp(-abs(sub(a, b)))))
    return where(m.isinf() & (m == minimum(a, b)), m, y)


def logaddexp2(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """``log2(2**input + 2**other)`` without overflow; 16-bit floats compute in float32."""
    a, b = _float_pair(input, other)
    t = a if isinstance(a, Tensor) else b
    if t.dtype in (D.float16, D.bfloat16):  # NOTE: x * ln2 in 16 bits would lose digits
        up = (cast(v, D.float32) if isinstance(v, Tensor) else v for v in (a, b))
        return cast(logaddexp2(*up), t.dtype)
    a, b = _both_tensors(a, b)
    # NOTE: PyTorch's form: the larger plus log2(1 + 2**-|a - b|), equal infinities as they are
    m = maximum(a, b)
    y = add(m, mul(log1p(exp2(-abs(sub(a, b)))), 1 / math.log(2)))
    return where(m.isinf() & (m == minimum(a, b)), m, y)


class Xlogy(Function):
    def forward(self, a, b):
        xp = backend.array_module(a)
        self.a, self.b = a, b
        zero = (a == 0) & (b == b)  # NOTE: 0 * log(y) is 0, but NaN in y stays NaN
        return xp.where(zero, 0, a * xp.log(xp.where(zero, 1, b))).astype(a.dtype)

    def backward(self, g):
        xp = backend.array_module(g)
        a, b = self.a, self.b
        na, nb = self.needs_input_grad
        ga = None
        if na:  # NOTE: PyTorch's xlogy(g, other), 0 where input == 0 and other <= 0
            gz = (g == 0) & (b == b)
            ga = xp.where(gz | ((a == 0) & (b <= 0)), 0, g * xp.log(xp.where(gz, 1, b)))
        return ga, (g * a / b if nb else None)

    def backward_graph(self, g):
        a, b = self.saved_input(0, self.a), self.saved_input(1, self.b)
        na, nb = self.needs_input_grad
        ga = where((a == 0) & (b <= 0), 0.0, xlogy(g, b)) if na else None
        return ga, (g * a / b if nb else None)


def xlogy(input, other) -> Tensor:  # noqa: A002
    """``input * log(other)``, 0 where input is 0 (also when other is 0; NaN when other is
    NaN)."""
    a, b = _float_pair(input, other)
    a, b = _both_tensors(a, b)
    return Xlogy.apply(a, b)


def lerp(input: Tensor, end: Tensor, weight) -> Tensor:  # noqa: A002
    """``input + weight * (end - input)``; weight a number or a tensor.

    NOTE: as PyTorch, ``end - (end - input) * (1 - weight)`` where ``|weight| >= 0.5``: weight
    1 then gives ``end`` exactly (``1e8 + (1 - 1e8)`` is 0 in float32), and the rounding is
    PyTorch's but for its fused multiply-add."""
    diff = sub(end, input)
    if isinstance(weight, Tensor):
        near = add(input, mul(weight, diff))
        far = sub(end, mul(diff, sub(1, weight)))
        return where(abs(weight) < 0.5, near, far)
    if -0.5 < weight < 0.5:
        return add(input, mul(weight, diff))
    return sub(end, mul(diff, 1 - weight))


def addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:  # noqa: A002
    """``input + value * tensor1 * tensor2``."""
    return add(input, mul(mul(tensor1, tensor2), value))


def addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:  # noqa: A002
    """``input + value * tensor1 / tensor2``."""
    _check_addcdiv_operands(tensor1, tensor2)
    return add(input, mul(tensor1 / tensor2, value))


def _check_addcdiv_operands(tensor1, tensor2) -> None:
    """PyTorch refuses addcdiv of two integer (or bool) tensors: its old integer division
    was removed, and true division is not done silently."""
    ints = [
        t for t in (tensor1, tensor2)
        if isinstance(t, Tensor) and not (t.is_floating_point() or t.is_complex())
    ]  # fmt: skip
    if len(ints) == 2:
        raise DTypeError(
            f"addcdiv: integer division with addcdiv is no longer supported (tensor1 is "
            f"{tensor1.dtype}, tensor2 is {tensor2.dtype}); for true division use "
            "input + value * tensor1 / tensor2, for the old behaviour "
            "(input + value * torch.trunc(tensor1 / tensor2)).to(input.dtype)"
        )


def clamp_min(input: Tensor, min) -> Tensor:  # noqa: A002
    return clamp(input, min=min)


def clamp_max(input: Tensor, max) -> Tensor:  # noqa: A002
    return clamp(input, max=max)


class NanToNum(Function):
    def forward(self, x, nan, posinf, neginf):
        xp = backend.array_module(x)
        self.keep = xp.isfinite(x)
        return xp.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)

    def backward(self, g):
        return g * self.keep

    def backward_graph(self, g):
        return g * Tensor._wrap(self.keep)


def nan_to_num(input: Tensor, nan: float = 0.0, posinf=None, neginf=None) -> Tensor:  # noqa: A002
    """NaN, +inf, -inf replaced by ``nan``, ``posinf`` (default the dtype's largest value)
    and ``neginf`` (its smallest)."""
    if not input.is_floating_point():
        return input.clone()
    return NanToNum.apply(input, nan, posinf, neginf)


def isclose(input: Tensor, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> Tensor:  # noqa: A002
    """``|input - other| <= atol + rtol * |other|`` elementwise (a bool tensor)."""
    a, b = _promote(input, other)
    if a.dtype._f8:
        from .._float8 import refused

        raise refused("isclose", a.dtype.name)
    xp = backend.array_module(a._data)
    bd = b._data if isinstance(b, Tensor) else b
    with backend.device_scope(a._device):
        return Tensor._wrap(xp.isclose(a._data, bd, rtol=rtol, atol=atol, equal_nan=equal_nan))


def heaviside(input: Tensor, values: Tensor) -> Tensor:  # noqa: A002
    """0 where input < 0, 1 where input > 0, ``values`` where input == 0."""
    step = (input > 0).to(input.dtype)  # NOTE: +0 below zero (input * 0 would give -0)
    return where(input == 0, values, step).detach()


# ---------------------------------------------------------------------------- bitwise


def _bits(name, ufunc):
    cmp = _compare(name, ufunc)

    def op(input, other) -> Tensor:  # noqa: A002
        for v in (input, other):
            if isinstance(v, float) or (
                isinstance(v, Tensor) and (v.is_floating_point() or v.is_complex())
            ):  # NOTE: NotImplementedError as PyTorch's, and a TypeError as before
                dt = v.dtype if isinstance(v, Tensor) else "a float scalar"
                raise DTypeNotImplementedError(
                    f"{ufunc}: not defined for floating or complex operands ({dt}); bitwise "
                    "ops take integer and bool tensors"
                )
        return cmp(input, other)

    op.__name__ = ufunc
    op.__qualname__ = ufunc if ufunc.startswith("bitwise") else f"bitwise_{ufunc}"  # pickle
    return op


bitwise_and = _bits("BitwiseAnd", "bitwise_and")
bitwise_or = _bits("BitwiseOr", "bitwise_or")
bitwise_xor = _bits("BitwiseXor", "bitwise_xor")
bitwise_left_shift = _bits("LeftShift", "left_shift")
bitwise_right_shift = _bits("RightShift", "right_shift")


_BitwiseNot = _unary_test("BitwiseNot", lambda xp, x: xp.invert(x))


def bitwise_not(input: Tensor) -> Tensor:  # noqa: A002
    """``~input``: every bit flipped for integers, logical not for bools."""
    if input.is_floating_point() or input.is_complex():
        raise DTypeNotImplementedError(
            f"bitwise_not: not defined for floating or complex tensors ({input.dtype}); "
            "bitwise ops take integer and bool tensors (a mask's inverse: ~(x > 0))"
        )
    return _BitwiseNot.apply(input)


def absolute(input: Tensor) -> Tensor:  # noqa: A002
    return abs(input)


def negative(input: Tensor) -> Tensor:  # noqa: A002
    return -input


def float_power(input, exponent) -> Tensor:  # noqa: A002
    """``input ** exponent`` computed in float64."""
    a = input.to(D.float64) if isinstance(input, Tensor) else input
    b = exponent.to(D.float64) if isinstance(exponent, Tensor) else exponent
    return a**b


# NOTE: ops built by _unary / _compare report elementwise as their module; claim them here
for _n, _v in list(globals().items()):
    if callable(_v) and getattr(_v, "__module__", None) == "manygrad.ops.elementwise":
        if _n not in _IMPORTED:
            _v.__module__ = __name__

from ._common import public  # noqa: E402

__all__ = public(globals())
