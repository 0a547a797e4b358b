"""Elementwise ops: arithmetic, math functions, activations, comparisons, where, casts.

Arguments take PyTorch's names (``input``, ``other``, ``exponent``), so that
``mg.add(input=x, other=y, alpha=2)`` works as ``torch.add`` does."""

from __future__ import annotations

import math

from .. import _native, backend
from .. import dtypes as D
from ..autograd import Function, is_grad_enabled
from ..errors import DivisionByZeroError, DTypeError, DTypeNotImplementedError
from ..tensor import Tensor
from . import _relu_blocks as _rb

# ---------------------------------------------------------------------------- promotion


def _promote(a, b, wrap: bool = True):
    """Cast tensor operands to PyTorch's result dtype; Python scalars stay as they are (an
    int out of an integer result type's range wraps, unless ``wrap`` is False: for ops
    that compute in floating point)."""
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if ta and tb:
        if a._data.dtype == b._data.dtype:
            return a, b
        dt = D.result_type(a, b)
        return (a if a.dtype is dt else cast(a, dt)), (b if b.dtype is dt else cast(b, dt))
    if not ta and not tb:
        raise TypeError(f"expected at least one Tensor operand, got {type(a)} and {type(b)}")
    t, s = (a, b) if ta else (b, a)
    s = D.py_scalar(s)
    if not isinstance(s, (int, float, bool, complex)):
        if backend.is_array(s):
            s = Tensor._wrap(s)
            return _promote(a if ta else s, s if ta else b, wrap)
        raise TypeError(f"unsupported operand type {type(s).__name__} for a tensor op")
    dt = D.result_type(t, s)
    if dt is not t.dtype:
        t = cast(t, dt)
    if wrap and type(s) is int and dt._cat == 1:
        s = _wrap_int(s, dt)
    if dt is D.bfloat16:  # NOTE: ml_dtypes' loops would promote a Python float to float32
        with backend.device_scope(t._device):  # NOTE: a 0-d array on t's GPU
            s = backend.array_module(t._data).asarray(s, dtype=dt.np)
    elif dt._f8:  # NOTE: and round a number to float8 otherwise than PyTorch (CPU arrays)
        from .._float8 import scalar

        s = scalar(s, dt.np)
    return (t, s) if ta else (s, t)


def _wrap_int(s: int, dt) -> int:
    """A Python int in range of the integer dtype ``dt``, wrapped modulo 2**bits as
    PyTorch's cast of a scalar operand does (``uint8_tensor - 1`` subtracts 255)."""
    bits = dt.itemsize * 8
    lo = -(1 << (bits - 1)) if dt.is_signed else 0
    if lo <= s < lo + (1 << bits):
        return s
    return (s - lo) % (1 << bits) + lo


def _float_pair(a, b):
    """Both operands promoted together, then to the default float when the result is
    integral (``atan2``, ``hypot``, ... on an int8 and a float16 tensor compute in float16)."""
    a, b = _promote(a, b, wrap=False)
    t = a if isinstance(a, Tensor) else b
    if not (t.is_floating_point() or t.is_complex()):
        a = _float_input(a) if isinstance(a, Tensor) else a
        b = _float_input(b) if isinstance(b, Tensor) else b
    return a, b


def _float_input(x: Tensor) -> Tensor:
    """Integer tensors become the default float for math functions (as in PyTorch)."""
    if x.is_floating_point() or x.is_complex() or x.is_quantized:  # NOTE: see ao._qdispatch
        return x
    return cast(x, D.get_default_dtype())


def _conj(xp, a):
    """The complex conjugate of an array or number, and real values as they are (no copy)."""
    return xp.conj(a) if getattr(a, "dtype", None) is not None and a.dtype.kind == "c" else (
        a.conjugate() if isinstance(a, complex) else a)  # fmt: skip


# ---------------------------------------------------------------------------- casts, moves


class Cast(Function):
    node_name = "ToCopyBackward0"  # NOTE: PyTorch's .to(dtype) records _to_copy
    keeps_nothing = True  # a second backward works without retain_graph
    changes_dtype = True
    complex_ok = True

    def forward(self, a, dt):
        if dt._f8 or a.dtype.itemsize == 1 and a.dtype.kind in "fV":
            from .._float8 import astype  # NOTE: PyTorch's float8 rounding, not ml_dtypes'

            return astype(a, dt.np)
        return a.astype(dt.np)

    def backward(self, g):
        return g  # the engine casts back to the input's dtype

    backward_graph = backward


class ToDevice(Function):
    moves_device = True
    complex_ok = True

    def forward(self, a, d):
        self.src = backend.device_of(a)
        return backend.to_device(a, backend.check_device(d))

    def backward(self, g):
        return backend.to_device(g, self.src)

    def backward_graph(self, g):
        return g.to(self.src)


class Clone(Function):
    keeps_nothing = True  # a second backward works without retain_graph
    complex_ok = True

    def forward(self, a):
        return a.copy()

    def backward(self, g):
        return g

    backward_graph = backward


@backend.on_tensor_device
def cast(x: Tensor, dtype) -> Tensor:
    dt = D.from_any(dtype)
    if x.requires_grad and not (dt.is_floating_point or dt.is_complex):
        return Tensor._wrap(x._data.astype(dt.np), x._device)
    return Cast.apply(x, dt)


def to_device(x: Tensor, d) -> Tensor:
    return ToDevice.apply(x, backend.device(d))


def clone(input: Tensor) -> Tensor:
    return Clone.apply(input)


# ---------------------------------------------------------------------------- arithmetic


class Add(Function):
    graph_inputs = (0, 1)  # NOTE: PyTorch wraps a number operand in a tensor: (None, 0)
    keeps_nothing = True  # a second backward works without retain_graph
    complex_ok = True

    def forward(self, a, b):
        return a + b

    def backward(self, g):
        return g, g

    backward_graph = backward


class Sub(Function):
    graph_inputs = (0, 1)
    keeps_nothing = True  # a second backward works without retain_graph
    complex_ok = True

    def forward(self, a, b):
        return a - b

    def backward(self, g):
        return g, -g

    backward_graph = backward


class Mul(Function):
    graph_inputs = (0, 1)

    def forward(self, a, b):
        # NOTE: each factor is kept only for the other's gradient: ``x * 2`` keeps no ``x``,
        # so an in-place change of ``x`` later does not invalidate this node
        na, nb = self.needs_input_grad
        self.a, self.b = a if nb else None, b if na else None
        return a * b

    complex_ok = True  # NOTE: gradients take the other factor's conjugate, as PyTorch's

    def backward(self, g):
        na, nb = self.needs_input_grad
        if g.dtype.kind == "c":
            xp = backend.array_module(g)
            return (g * _conj(xp, self.b) if na else None), (g * _conj(xp, self.a) if nb else None)
        return (g * self.b if na else None), (g * self.a if nb else None)

    def backward_graph(self, g):
        na, nb = self.needs_input_grad
        a, b = self.saved_input(0, self.a), self.saved_input(1, self.b)
        return (g * b if na else None), (g * a if nb else None)


class Div(Function):
    graph_inputs = (0, 1)

    def forward(self, a, b):
        self.a, self.b = a if self.needs_input_grad[1] else None, b
        return a / b

    complex_ok = True

    def backward(self, g):
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        if g.dtype.kind == "c":
            xp = backend.array_module(g)
            a, b = _conj(xp, a), _conj(xp, b)
        ga = g / b if na else None
        gb = -g * a / (b * b) if nb else None
        return ga, gb

    def backward_graph(self, g):
        na, nb = self.needs_input_grad
        a, b = self.saved_input(0, self.a), self.saved_input(1, self.b)
        return (g / b if na else None), (-g * a / (b * b) if nb else None)


class HalfScale(Function):
    """``x * s`` for a float16 or bfloat16 array ``x`` and a Python number ``s``, computed
    in float32 (``s`` too) and rounded once; ``HalfScaleDiv`` is ``x / s``.

    NOTE: PyTorch's kernels take a scalar factor or divisor of a 16-bit tensor at float32
    precision; NumPy would round ``s`` to 16 bits first (a sum with a scalar rounds it
    first in PyTorch too, so ``add``/``sub`` keep the plain path). The nodes are named
    ``Mul`` and ``Div`` (``grad_fn.name()`` gives ``MulBackward0``, as PyTorch's), since
    they are those ops; ONNX export writes them as Mul and Div too."""

    graph_inputs = (0, 1)
    divide = False

    def forward(self, x, s):
        self.s = s
        return _scale32(x, s, self.divide)

    def backward(self, g):
        return _scale32(g, self.s, self.divide), None

    def backward_graph(self, g):
        return (g / self.s if self.divide else g * self.s), None


class HalfScaleDiv(HalfScale):
    divide = True


HalfScale.__name__ = HalfScale.__qualname__ = "Mul"
HalfScaleDiv.__name__ = HalfScaleDiv.__qualname__ = "Div"


def _scale32(a, s, divide: bool):
    a32, s32 = a.astype(D.float32.np), D.float32.np.type(s)
    with backend.quiet_float_errors():  # NOTE: x / 0 and overflow give inf, as PyTorch's
        return (a32 / s32 if divide else a32 * s32).astype(a.dtype)


_PY_NUMBERS = (int, float)


def _half_and_scalar(a, b):
    """``(tensor, number)`` when one of ``a``, ``b`` is a 16-bit float tensor and the other
    a Python int or float (not bool), else None."""
    t, s = (a, b) if isinstance(a, Tensor) else (b, a)
    if (
        isinstance(t, Tensor)
        and type(s) in (int, float)
        and t._data.dtype.itemsize == 2
        and t._data.dtype.kind in "fV"
    ):
        return t, s
    return None


def _int_power(xp, a, b):
    """Integer ``a ** b`` with negative exponents as PyTorch has them: 1 for a == 1,
    +-1 for a == -1, 0 otherwise (NumPy refuses them)."""
    if isinstance(a, int):
        a = xp.asarray(a, dtype=b.dtype)
    neg = b < 0
    out = a ** xp.where(neg, 0, b).astype(b.dtype)
    if a.dtype.kind == "u":
        return xp.where(neg & (a != 1), 0, out).astype(out.dtype)
    odd = (b % 2) != 0
    small = xp.where(a == 1, 1, xp.where(a == -1, xp.where(odd, -1, 1), 0))
    return xp.where(neg, small, out).astype(out.dtype)


def _by_products(a, b) -> bool:
    """``a ** b`` for a 32/64-bit float array and a scalar exponent of 3 or -2."""
    return (
        isinstance(b, (int, float))
        and not isinstance(b, bool)
        and b in (3, -2)
        and backend.is_array(a)
        and a.dtype.kind == "f"
        and a.dtype.itemsize >= 4
    )


class Pow(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        if (
            backend.is_array(b)
            and b.dtype.kind in "iu"
            and (isinstance(a, int) or (backend.is_array(a) and a.dtype.kind in "iu"))
        ):
            self.out = _int_power(backend.array_module(b), a, b)
        elif _by_products(a, b):
            # NOTE: PyTorch's CPU kernel multiplies for these exponents, and NumPy's power
            # loop is 45x slower than that for x ** 3 (GELU's tanh form): 2.2 ms against
            # 0.05 ms for 196K float32 values; the same products give PyTorch's bits
            self.out = a * a * a if b == 3 else 1 / (a * a)
        else:
            self.out = a**b
        return self.out

    complex_ok = True  # NOTE: complex powers take conjugate derivatives, as PyTorch's

    def backward(self, g):
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        xp = backend.array_module(g)
        ga = None
        if na:
            with backend.quiet_float_errors():  # a ** (b - 1) at a == 0: inf, silently
                d = b * a ** (b - 1)
                ga = g * (_conj(xp, d) if g.dtype.kind == "c" else d)
            # NOTE: 0 where b == 0, as PyTorch's (b * a**(b - 1) is 0 * inf at a == 0)
            if backend.is_array(b):
                ga = xp.where(b == 0, 0, ga)
            elif b == 0:
                ga = xp.zeros_like(ga)
        if g.dtype.kind == "c":
            gb = g * _conj(xp, self.out * xp.log(a)) if nb else None
            return ga, gb
        if nb:
            xp = backend.array_module(self.out)
            # NOTE: d(a**b)/db = a**b * log(a); defined as 0 where a == 0 (as PyTorch)
            gb = g * xp.where(a == 0, 0, self.out * xp.log(xp.where(a == 0, 1, a)))
        else:
            gb = None
        return ga, gb

    def backward_graph(self, g):
        na, nb = self.needs_input_grad
        a, b = self.saved_input(0, self.a), self.saved_input(1, self.b)
        ga = None
        if na and isinstance(b, Tensor):
            ga = where(b == 0, 0.0, g * b * a ** (b - 1))  # 0 where b == 0, as in backward
        elif na and b == 0:  # a constant 0, as PyTorch's
            ga = Tensor._wrap(backend.array_module(g._data).zeros_like(g._data), g._device)
        elif na:
            ga = g * b * a ** (b - 1)
        gb = None
        if nb:
            y = self.saved_output(self.out)
            zero = a == 0
            gb = g * where(zero, 0.0, y * log(where(zero, 1.0, a)))
        return ga, gb


class Remainder(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        r = a % b
        if r.dtype.kind not in "biu":  # NOTE: a zero takes a's sign (b's in NumPy), as PyTorch
            xp = backend.array_module(r)
            r = xp.where(r == 0, xp.copysign(r, a), r)
        return r

    def backward(self, g):
        na, nb = self.needs_input_grad
        xp = backend.array_module(g)
        return (g if na else None), (-g * xp.floor_divide(self.a, self.b) if nb else None)

    def backward_graph(self, g):
        na, nb = self.needs_input_grad
        q = Tensor._wrap(backend.array_module(g._data).floor_divide(self.a, self.b))
        return (g if na else None), (-g * q if nb else None)


class Fmod(Function):
    """C's fmod: the remainder of truncated division (the sign of ``a``), unlike ``%``."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return backend.array_module(a).fmod(a, b)

    def backward(self, g):
        na, nb = self.needs_input_grad
        xp = backend.array_module(g)
        return (g if na else None), (-g * xp.trunc(self.a / self.b) if nb else None)

    def backward_graph(self, g):
        na, nb = self.needs_input_grad
        q = Tensor._wrap(backend.array_module(g._data).trunc(self.a / self.b))
        return (g if na else None), (-g * q if nb else None)


class FloorDivide(Function):
    differentiable = False

    def forward(self, a, b):
        return a // b


def _binary(fn, a, b):
    try:
        a, b = _promote(a, b)
    except TypeError:  # NOTE: a sparse COO operand: its sparse form (``dense * sparse``)
        from .._sparse_ops import binary

        res = binary(fn.op_name.lower(), a, b)
        if res is NotImplemented:
            raise
        return res
    return fn.apply(a, b)


def _divide(fn, name, a, b):
    """``fn`` (floor division, remainder, fmod) of promoted operands, with PyTorch's checks
    of integer operands."""
    a, b = _promote(a, b)
    t = a if isinstance(a, Tensor) else b
    if t._data.dtype.kind in "biu":
        _check_int_divisor(name, t, b)
    return fn.apply(a, b)


def _check_int_divisor(name, t, b) -> None:
    """Refuse bool operands, and a zero divisor on the CPU, as PyTorch does for integers."""
    if t._data.dtype.kind == "b":
        raise DTypeNotImplementedError(
            f"{name}: not implemented for bool tensors; convert them first (x.int())"
        )
    # NOTE: PyTorch checks the divisor on the CPU only: its CUDA kernels run without a host
    # sync and give an undefined value where the divisor is 0. manygrad's cuda and fakegpu
    # devices skip the check in the same way (the array library's result, no sync).
    if t._device.type == "cpu" and t._data.size:
        v = b._data if isinstance(b, Tensor) else b
        if not (v.all() if backend.is_array(v) else v):
            raise DivisionByZeroError(
                f"ZeroDivisionError: {name} of integer tensors by zero; make the divisor "
                "nonzero, or divide floating-point tensors (x.float()), which give inf/nan"
            )


def add(input, other, alpha=1) -> Tensor:
    """``input + alpha * other`` with broadcasting."""
    return _binary(Add, input, other if alpha == 1 else other * alpha)


def sub(input, other, alpha=1) -> Tensor:
    for v in (input, other):
        if isinstance(v, bool) or (isinstance(v, Tensor) and v.dtype is D.bool_):
            raise DTypeError(
                "sub: subtraction, the `-` operator, with a bool tensor is not supported; "
                "to invert a mask use `~` or logical_not(), or convert it first (mask.int())"
            )
    return _binary(Sub, input, other if alpha == 1 else other * alpha)


def _half_and_cpu_scalar(a, b):
    """The value of ``b`` as a Python number when ``a`` is a 16-bit float tensor with
    dimensions and ``b`` a 0-d CPU tensor that leaves ``a``'s dtype as the result's (a real
    number, not needing a gradient), else None.

    NOTE: PyTorch's CPU kernels for ``x * s`` and ``x / s`` read such a second operand at
    float32 precision from its own dtype (as a Python number is read), not rounded to 16
    bits first; a 0-d first operand (``s * x``) is rounded first, as NumPy rounds it."""
    d = b._data
    if d.ndim or b._device.type != "cpu" or d.dtype.kind not in "biuf":
        return None
    if not isinstance(a, Tensor) or a._data.ndim == 0:
        return None
    ad = a._data.dtype
    if ad.itemsize != 2 or ad.kind not in "fV" or (b.requires_grad and is_grad_enabled()):
        return None
    return d.item()


def mul(input, other) -> Tensor:
    cls = other.__class__
    if cls in _PY_NUMBERS or input.__class__ in _PY_NUMBERS:  # NOTE: cheap gate
        half = _half_and_scalar(input, other)
        if half is not None:
            return HalfScale.apply(*half)
    elif cls is Tensor and other._data.ndim == 0:
        s = _half_and_cpu_scalar(input, other)
        if s is not None:
            return HalfScale.apply(input, s)
    return _binary(Mul, input, other)


def div(input, other, rounding_mode=None) -> Tensor:
    """True division; integers divide to the default float (PyTorch's rule)."""
    if rounding_mode == "floor":
        return floor_divide(input, other)
    if rounding_mode is None:
        if other.__class__ in _PY_NUMBERS:  # NOTE: a cheap gate before the 16-bit check
            half = _half_and_scalar(input, other)
            if half is not None and half[0] is input:
                return HalfScaleDiv.apply(input, other)
        elif other.__class__ is Tensor and other._data.ndim == 0:
            s = _half_and_cpu_scalar(input, other)
            if s is not None:
                return HalfScaleDiv.apply(input, s)
        return _binary(Div, *_float_pair(input, other))
    a, b = _promote(input, other)
    if rounding_mode == "trunc":
        t = a if isinstance(a, Tensor) else b
        if t._data.dtype.kind in "biu":
            _check_int_divisor("div", t, b)
        q = _binary(Div, _as_float(a), _as_float(b))
        with backend.device_scope(q._device):
            r = backend.array_module(q._data).trunc(q._data).astype(_dtype_of(a, b))
        return Tensor._wrap(r, q._device)
    if rounding_mode is not None:
        raise ValueError(
            f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}"
        )
    return _binary(Div, _as_float(a), _as_float(b))


def _as_float(v):
    if isinstance(v, Tensor):
        return _float_input(v)
    return v


def _dtype_of(a, b):
    return (a if isinstance(a, Tensor) else b)._data.dtype


def true_divide(input, other) -> Tensor:
    return div(input, other)


def floor_divide(input, other) -> Tensor:
    return _divide(FloorDivide, "floor_divide", input, other)


def remainder(input, other) -> Tensor:
    return _divide(Remainder, "remainder", input, other)


def fmod(input, other) -> Tensor:
    """The remainder of ``input / other`` rounded toward zero, with the sign of ``input``
    (PyTorch's ``torch.fmod``); ``remainder`` follows the sign of ``other``."""
    return _divide(Fmod, "fmod", input, other)


def pow(input, exponent) -> Tensor:  # noqa: A001
    exponent = D.py_scalar(exponent)
    if (
        isinstance(input, Tensor)
        and isinstance(exponent, (int, float))
        and not isinstance(exponent, bool)
    ):
        if isinstance(exponent, float) and not (input.is_floating_point() or input.is_complex()):
            input = cast(input, D.get_default_dtype())
        elif exponent < 0 and type(exponent) is int and input.dtype._cat < 2:  # bool, ints
            raise DTypeError(
                f"pow: Integers to negative integer powers are not allowed ({input.dtype} "
                f"tensor ** {exponent}); use a float exponent ({float(exponent)}) or tensor"
            )
        elif input.dtype is D.bool_:
            input = cast(input, D.int64)  # NOTE: bool ** int is int64, as PyTorch
        return Pow.apply(input, exponent)
    a, b = _promote(input, exponent)
    t = a if isinstance(a, Tensor) else b
    if t.dtype is D.bool_:  # NOTE: bool ** bool stays bool (x ** False is True)
        a, b = (cast(v, D.uint8) if isinstance(v, Tensor) else int(v) for v in (a, b))
        return cast(Pow.apply(a, b), D.bool_)
    return Pow.apply(a, b)


# ---------------------------------------------------------------------------- unary maths


def _unary(name, fwd, bwd, save_out=True, float_only=True, graph=None, complex_ok=False,
           holomorphic=False):  # fmt: skip
    """Build a unary Function: ``fwd(xp, x)``; ``bwd(xp, g, x, y)`` with y the output;
    ``graph(g, x, y)`` the same derivative on Tensors (for double backward).
    ``holomorphic``: ``fwd`` is complex-differentiable, so complex gradients are
    ``conj(bwd(conj(g)))`` (``g`` times the conjugate derivative, PyTorch's convention).
    ``nn.functional`` has its own forms with ``inplace`` (nn/functional.py)."""

    # NOTE: an op whose derivatives read only the output (exp, tanh, sigmoid, sqrt, ...)
    # keeps no reference to its input, so changing the input in place afterwards is
    # harmless, as in PyTorch (the in-place check looks only at what the node kept)
    keep_x = _reads(bwd, "x") or (graph is not None and _reads(graph, "x")) or not save_out

    class Unary(Function):
        def forward(self, x):
            xp = backend.array_module(x)
            y = fwd(xp, x)
            self.x, self.y = (x if keep_x else None), (y if save_out else None)
            return y

        def backward(self, g):
            xp = backend.array_module(g)
            if holomorphic and g.dtype.kind == "c":
                return xp.conj(bwd(xp, xp.conj(g), self.x, self.y))
            return bwd(xp, g, self.x, self.y)

        def backward_graph(self, g):
            y = None if self.y is None else self.saved_output(self.y)
            return graph(g, None if self.x is None else self.saved_input(0, self.x), y)

    Unary.__name__ = Unary.__qualname__ = name
    Unary.complex_ok = complex_ok or holomorphic

    def op(input: Tensor) -> Tensor:  # noqa: A002
        if not isinstance(input, Tensor):
            from .._sparse_ops import unary

            return unary(name.lower(), input)  # NOTE: a sparse COO tensor (or a TypeError)
        return Unary.apply(_float_input(input) if float_only else input)

    op.__name__ = op.__qualname__ = name.lower()  # NOTE: picklable by reference
    return op


def _reads(fn, name: str) -> bool:
    """Whether the body of ``fn`` reads its argument ``name``."""
    import dis

    for i in dis.get_instructions(fn):
        # NOTE: Python 3.13's LOAD_FAST_LOAD_FAST names two arguments at once (a tuple)
        if i.opname.startswith("LOAD_") and (
            i.argval == name or (isinstance(i.argval, tuple) and name in i.argval)
        ):
            return True
    return False


def _const(f):
    """A derivative factor that is piecewise constant (sign, masks): no gradient of its own."""
    return lambda t: Tensor._wrap(f(backend.array_module(t._data), t._data), t._device)


_sgn = _const(lambda xp, a: xp.sign(a))


def _abs_grad(xp, g, x, y):
    if x.dtype.kind != "c":
        return g * xp.sign(x)
    r = xp.abs(x)  # NOTE: d|z| is z / |z| (0 at 0), in PyTorch's conjugate convention
    return g * xp.where(r == 0, 0, x / xp.where(r == 0, 1, r))


def _neg(xp, x):
    try:
        return -x
    except TypeError:  # NOTE: NumPy's and CuPy's refusal of bool negation, as PyTorch's
        if x.dtype.kind != "b":
            raise
    raise DTypeError(
        "neg: Negation, the `-` operator, on a bool tensor is not supported; to invert a "
        "mask use the `~` or logical_not() operator instead"
    )


neg = _unary("Neg", _neg, lambda xp, g, x, y: -g, False, False,
             lambda g, x, y: -g, complex_ok=True)  # fmt: skip


# NOTE: sgn z varies with z; a real sign is a mask, tied to x as PyTorch's (_zero_grad_of)
def _abs(xp, x):
    if x.dtype.kind == "b":
        raise DTypeNotImplementedError("abs: not implemented for bool tensors (|x| of a mask is x)")
    return xp.abs(x)


abs = _unary("Abs", _abs, _abs_grad, False, False,  # noqa: A001
             lambda g, x, y: g * x.sgn() if x.is_complex() else _zero_grad_of(g * _sgn(x), x),
             complex_ok=True)  # fmt: skip
exp = _unary("Exp", lambda xp, x: xp.exp(x), lambda xp, g, x, y: g * _conj(xp, y),
             graph=lambda g, x, y: g * y, complex_ok=True)  # fmt: skip
log = _unary(
    "Log",
    lambda xp, x: xp.log(x),
    lambda xp, g, x, y: g / x,
    graph=lambda g, x, y: g / x,
    holomorphic=True,
)
log1p = _unary("Log1p", lambda xp, x: xp.log1p(x), lambda xp, g, x, y: g / (1 + x),
               graph=lambda g, x, y: g / (1 + x), holomorphic=True)  # fmt: skip
expm1 = _unary("Expm1", lambda xp, x: xp.expm1(x), lambda xp, g, x, y: g * (y + 1),
               graph=lambda g, x, y: g * (y + 1), holomorphic=True)  # fmt: skip
sqrt = _unary("Sqrt", lambda xp, x: xp.sqrt(x), lambda xp, g, x, y: g / (2 * y),
              graph=lambda g, x, y: g / (2 * y), holomorphic=True)  # fmt: skip
rsqrt = _unary("Rsqrt", lambda xp, x: 1 / xp.sqrt(x), lambda xp, g, x, y: -0.5 * g * y * y * y,
               graph=lambda g, x, y: -0.5 * g * y * y * y, holomorphic=True)  # fmt: skip
sin = _unary("Sin", lambda xp, x: xp.sin(x), lambda xp, g, x, y: g * xp.cos(x),
             graph=lambda g, x, y: g * cos(x), holomorphic=True)  # fmt: skip
cos = _unary("Cos", lambda xp, x: xp.cos(x), lambda xp, g, x, y: -g * xp.sin(x),
             graph=lambda g, x, y: -g * sin(x), holomorphic=True)  # fmt: skip
tanh = _unary("Tanh", lambda xp, x: xp.tanh(x), lambda xp, g, x, y: g * (1 - y * y),
              graph=lambda g, x, y: g * (1 - y * y), holomorphic=True)  # fmt: skip
_square = _unary("Square", lambda xp, x: x * x, lambda xp, g, x, y: 2 * g * x, False, False,
                lambda g, x, y: 2 * g * x, holomorphic=True)  # fmt: skip


def square(input: Tensor) -> Tensor:
    """``input * input``; bools square to int64, as in PyTorch."""
    return _square(cast(input, D.int64) if input.dtype is D.bool_ else input)


reciprocal = _unary("Reciprocal", lambda xp, x: 1 / x, lambda xp, g, x, y: -g * y * y,
                    graph=lambda g, x, y: -g * y * y, holomorphic=True)  # fmt: skip


class _ZeroGradOf(Function):
    """``g`` itself (a view) with a zero derivative with respect to ``a``. PyTorch's backward
    ops of piecewise-linear functions (threshold_backward of relu, leaky_relu_backward,
    hardtanh_backward, abs's ``sgn``) take the tensor they read their mask from with the
    derivative ``zeros_like``: in double backward, a tensor seen only through such a mask
    (an input, a bias before a ReLU) gets a zero gradient, not none, and an optimizer
    steps it (momentum, weight decay) as PyTorch's does."""

    view = True

    def forward(self, g, a):
        self.shape, self.dtype = a.shape, a.dtype
        return g.view()

    def backward(self, gg):
        return gg, backend.array_module(gg).zeros(self.shape, self.dtype)

    def backward_graph(self, gg):
        return gg, Tensor._wrap(backend.array_module(gg._data).zeros(self.shape, self.dtype))


def _zero_grad_of(g: Tensor, a: Tensor) -> Tensor:
    return _ZeroGradOf.apply(g, a) if a.requires_grad else g


class _Tie(Function):
    """``y``, a composite of ``where``s computing a piecewise-linear op of ``x`` (hardtanh,
    threshold, prelu, ...), made one node of ``x``: its gradient passes as it is, and in
    double backward it is tied to ``x`` by ``_zero_grad_of``, as PyTorch's backward ops."""

    def forward(self, y, x):
        self.x = x  # NOTE: kept, as PyTorch's op keeps its input (changing it refuses backward)
        return y

    def backward(self, g):
        return g, None

    def backward_graph(self, g):
        return _zero_grad_of(g, self.saved_input(1, self.x)), None


def _tie(y: Tensor, x: Tensor) -> Tensor:
    return _Tie.apply(y, x) if y.requires_grad and x.requires_grad else y


class Relu(Function):
    """``max(x, 0)`` as PyTorch's: -0.0 and NaN pass; the gradient is PyTorch's
    threshold_backward, ``y <= 0 ? 0 : g`` (0 at 0; a select, so inf or NaN in ``g`` where
    y <= 0 give 0). It keeps its output, as PyTorch's: changing that in place refuses
    backward. C-contiguous float32/float64 CPU arrays take ``_relu_blocks``; integers take
    ``maximum``."""

    def forward(self, x):
        xp = backend.array_module(x)
        if _rb.fast(x):
            y = _rb.relu(xp, x)
        elif x.dtype.kind in "biu":
            y = xp.maximum(x, 0)
        else:
            y = backend.where(x < 0, xp.zeros((), x.dtype), x)
        self.y = y
        return y

    def backward(self, g):
        y = self.y
        xp = backend.array_module(g)
        if _rb.fast(g, y):
            return _rb.relu_grad(xp, g, y)
        return backend.where(y <= 0, xp.zeros((), g.dtype), g)

    def backward_graph(self, g):
        return _zero_grad_of(where(Tensor._wrap(self.y <= 0), 0.0, g), self.saved_output(self.y))


def relu(input: Tensor) -> Tensor:  # noqa: A002
    """``max(input, 0)`` (``F.relu`` also takes ``inplace``)."""
    if not isinstance(input, Tensor):
        from .._sparse_ops import unary

        return unary("relu", input)  # NOTE: a sparse COO tensor (or a TypeError)
    if input._data.dtype.kind == "b":
        raise DTypeError("relu: Boolean inputs not supported for relu; convert first (x.int())")
    return Relu.apply(input)


def _sigmoid(xp, x):
    # NOTE: 1 / (1 + exp(-x)) as PyTorch computes it, 16-bit floats in float32: below
    # about -88 (float32) exp overflows to inf and the result is 0, as PyTorch's (and
    # SiLU's -0.0). No where(): NumPy's is ~10x slower on random signs
    dt = x.dtype
    if (y := _native.unary("sigmoid", x)) is not None:
        return y  # NOTE: CPU float32: one pass of the CPU kernels
    e = xp.exp(-(x.astype(xp.float32) if dt.itemsize == 2 else x))
    if not e.ndim:  # NOTE: NumPy gives a scalar for a 0-d input; the steps below are in place
        e = xp.asarray(e)
    e += 1
    xp.reciprocal(e, out=e)
    return e.astype(dt, copy=False)


def _sigmoid_grad(xp, g, x, y):
    if (dx := _native.unary_backward("sigmoid", g, y)) is not None:
        return dx
    return g * y * (1 - y)


sigmoid = _unary("Sigmoid", _sigmoid, _sigmoid_grad, graph=lambda g, x, y: g * y * (1 - y))


def _opmath(f):
    """``f`` evaluated in float32 for 16-bit float arrays (as PyTorch's kernels do), the
    result rounded once to the input's dtype."""

    def run(xp, *arrays):
        dt = arrays[-1].dtype
        if dt.itemsize != 2 or dt.kind == "c":
            return f(xp, *arrays)
        return f(xp, *(a.astype(xp.float32) for a in arrays)).astype(dt, copy=False)

    return run


_silu_grad_ref = _opmath(lambda xp, g, x: g * (s := _sigmoid(xp, x)) * (1 + x * (1 - s)))
_silu_ref = _opmath(lambda xp, x: x * _sigmoid(xp, x))


def _silu(xp, x):
    if (y := _native.unary("silu", x)) is not None:
        return y  # NOTE: CPU float32: one pass of the CPU kernels
    return _silu_ref(xp, x)


def _silu_grad(xp, g, x):
    if (dx := _native.unary_backward("silu", g, x)) is not None:
        return dx
    return _silu_grad_ref(xp, g, x)


silu = _unary(
    "Silu",
    _silu,
    lambda xp, g, x, y: _silu_grad(xp, g, x),
    False,
    graph=lambda g, x, y: g * (s := sigmoid(x)) * (1 + x * (1 - s)),
)


def _unary_test(name, fn):
    """A unary op without a gradient (sign, logical_not, isnan, ...), as a Function so that
    tracing (ONNX export) sees it."""

    class Test(Function):
        differentiable = False

        def forward(self, x):
            return fn(backend.array_module(x), x)

    Test.__name__ = Test.__qualname__ = name
    return Test


def _sign(xp, x):
    if x.dtype.kind == "b":
        return x.copy()  # NOTE: sign(True) is True, as in PyTorch
    s = xp.sign(x)
    if s.dtype.kind not in "biuc":  # NOTE: PyTorch's sign is (0 < x) - (x < 0): 0 for NaN
        s = xp.where(s == s, s, xp.zeros((), s.dtype))
    return s


# NOTE: differentiable with a zero gradient, as PyTorch's (sign(x) * y backpropagates to y)
_Sign = _unary("Sign", _sign, lambda xp, g, x, y: xp.zeros_like(g), True, False,
               graph=lambda g, x, y: g * 0)  # fmt: skip


def sign(input: Tensor) -> Tensor:
    if input.is_complex():
        from ..errors import DTypeNotImplementedError

        raise DTypeNotImplementedError(
            "sign: unlike NumPy's, sign is not meant for complex numbers; use sgn instead "
            "(mg.sgn(x) or x.sgn(): x / |x|, 0 where x is 0)"
        )
    return _Sign(input)


class LeakyRelu(Function):
    """PyTorch's ``x > 0 ? x : x * slope`` and its gradient ``x > 0 ? g : g * slope`` (slope
    at 0 and NaN; 16-bit floats computed in float32, as PyTorch's CPU kernels). It keeps its
    input, as PyTorch's, or with ``on_result`` its output (PyTorch's ``leaky_relu_``): for a
    slope >= 0 the output is > 0 exactly where the input is. C-contiguous float32/float64
    CPU arrays with slope > 0 take ``_relu_blocks``."""

    def forward(self, x, slope, on_result=False):
        xp = backend.array_module(x)
        if slope > 0 and _rb.fast(x):
            y = _rb.leaky(xp, x, slope)
        else:
            with backend.quiet_float_errors():  # NOTE: inf * 0 and overflow, silent as PyTorch
                y = backend.where(x > 0, x, _opmath(lambda xp, v: v * slope)(xp, x))
        self.on_y = on_result and slope >= 0
        self.slope, self.a = slope, (y if self.on_y else x)
        return y

    def backward(self, g):
        a, slope = self.a, self.slope
        xp = backend.array_module(g)
        if _rb.fast(g, a):
            return _rb.leaky_grad(xp, g, a, slope)
        with backend.quiet_float_errors():
            return backend.where(a > 0, g, _opmath(lambda xp, v: v * slope)(xp, g))

    def backward_graph(self, g):
        a = self.saved_output(self.a) if self.on_y else self.saved_input(0, self.a)
        return _zero_grad_of(where(Tensor._wrap(self.a > 0), g, g * self.slope), a)


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:  # noqa: A002
    """``input`` where positive, else ``negative_slope * input`` (``F.leaky_relu`` also
    takes ``inplace``)."""
    return LeakyRelu.apply(input, negative_slope)


def _leaky_relu_on_result(input: Tensor, negative_slope: float) -> Tensor:  # noqa: A002
    """``leaky_relu`` whose node keeps its output rather than its input (``leaky_relu_``:
    the write replaces the input)."""
    return LeakyRelu.apply(input, negative_slope, True)


def _rectify_in_place(t: Tensor, name: str, slope: float | None = None) -> bool:
    """relu (``slope`` None) or leaky relu computed straight into ``t``'s memory when no
    graph is needed and ``t`` is a C-contiguous float32/float64 CPU array (no result to
    copy back); False, having done nothing, otherwise."""
    d = t._data
    if (slope is not None and slope <= 0) or not _rb.fast(d) or not t._plain(name):
        return False
    xp = backend.array_module(d)
    if slope is None:
        _rb.relu(xp, d, out=d)
    else:
        _rb.leaky(xp, d, slope, out=d)
    t._done(name)
    return True


class Elu(Function):
    """PyTorch's ELU with its scales: ``alpha * scale * expm1(x * input_scale)`` where
    ``x < 0``, else ``x * scale`` (SELU and CELU are ELUs; +-0 keep their sign)."""

    # NOTE: as PyTorch's elu_backward on the input: alpha * exp(x) where x <= 0 (not
    # y + alpha, which cancels to 0 far left) and 1 elsewhere, NaN included
    def forward(self, x, alpha, scale=1.0, input_scale=1.0):
        self.x, self.alpha, self.scale, self.input_scale = x, alpha, scale, input_scale
        if (y := _native.elu(x, alpha, scale, input_scale)) is not None:
            return y  # NOTE: CPU float32: one pass of the CPU kernels
        xp = backend.array_module(x)
        neg = _opmath(lambda xp, x: (alpha * scale) * xp.expm1(xp.minimum(x, 0) * input_scale))
        with backend.quiet_float_errors():  # a negative alpha: expm1 overflows far left
            pos = x if scale == 1 else _opmath(lambda xp, x: x * scale)(xp, x)
            return backend.where(x < 0, neg(xp, x), pos)

    def backward(self, g):
        x, alpha, scale, ins = self.x, self.alpha, self.scale, self.input_scale
        if (dx := _native.elu_backward(g, x, alpha, scale, ins)) is not None:
            return dx
        xp = backend.array_module(g)
        c = alpha * scale * ins
        with backend.quiet_float_errors():
            neg = _opmath(lambda xp, g, x: g * (c * xp.exp(xp.minimum(x, 0) * ins)))(xp, g, x)
            return backend.where(x <= 0, neg, g if scale == 1 else g * scale)

    def backward_graph(self, g):
        x, c, ins = self.saved_input(0, self.x), self.alpha * self.scale, self.input_scale
        return where(x <= 0, g * (exp(x.clamp(max=0) * ins) * (c * ins)), g * self.scale)


def elu(input: Tensor, alpha: float = 1.0) -> Tensor:  # noqa: A002
    """``input`` where positive, else ``alpha * (exp(input) - 1)`` (``F.elu`` also takes
    ``inplace``)."""
    return Elu.apply(_float_input(input), alpha)


_SQRT_2_PI = math.sqrt(2 / math.pi)


def _mul(g, d):
    """``g * d``: one pass of the CPU kernels for float32 CPU arrays of one shape."""
    if (out := _native.mul(g, d)) is not None:
        return out
    return g * d


class Gelu(Function):
    def forward(self, x, approximate):
        xp = backend.array_module(x)
        self.x, self.approx = x, approximate
        if approximate == "tanh":
            fast = _native.gelu(x, True, self.needs_input_grad[0])
            if fast is not None:  # NOTE: CPU float32: one pass, the derivative saved
                y, self.slope = fast
                return y
            self.t = xp.tanh(_SQRT_2_PI * (x + 0.044715 * x * x * x))
            return 0.5 * x * (1 + self.t)
        # NOTE: float32 on CPUs: one pass over cache-sized blocks computes the output and,
        # when a gradient is wanted, the derivative backward multiplies by (the plain path's
        # float32 formulas, bit for bit); 786k values, output and derivative: 1.62 against
        # 1.82 ms for the CDF here and the derivative in backward, on one thread
        fused = backend.gelu_exact(x, self.needs_input_grad[0])
        if fused is not None:
            y, self.slope = fused
            self.cdf = None
            return y
        # NOTE: the CDF is kept for backward: erf is the costly part on CPUs
        self.cdf = backend.normal_cdf(x)
        return x * self.cdf

    def backward(self, g):
        xp = backend.array_module(g)
        x = self.x
        if self.approx == "tanh" and "slope" in self.__dict__:
            slope = self.slope if self.slope is not None else _native.gelu(x, True, True)[1]
            return _mul(g, slope)
        if self.approx == "tanh":
            t = self.t
            dt = (1 - t * t) * _SQRT_2_PI * (1 + 3 * 0.044715 * x * x)
            return g * (0.5 * (1 + t) + 0.5 * x * dt)
        if self.cdf is None:
            slope = self.slope if self.slope is not None else backend.gelu_exact(x, True)[1]
            return _mul(g, slope)
        pdf = xp.exp(-0.5 * x * x)
        pdf *= x * (1 / math.sqrt(2 * math.pi))
        pdf += self.cdf
        return g * pdf

    def backward_graph(self, g):
        x = self.saved_input(0, self.x)
        if self.approx == "tanh":
            t = tanh(_SQRT_2_PI * (x + 0.044715 * x * x * x))
            dt = (1 - t * t) * _SQRT_2_PI * (1 + 3 * 0.044715 * x * x)
            return g * (0.5 * (1 + t) + 0.5 * x * dt)
        return g * (x * _pdf(x) + NormalCdf.apply(x))


def _pdf(x: Tensor) -> Tensor:
    return exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))


class NormalCdf(Function):
    """The standard normal CDF (GELU's derivative needs it as an op of the graph)."""

    def forward(self, x):
        self.x = x
        return backend.normal_cdf(x)

    def backward(self, g):
        xp = backend.array_module(g)
        return g * xp.exp(-0.5 * self.x * self.x) * (1 / math.sqrt(2 * math.pi))

    def backward_graph(self, g):
        return g * _pdf(self.saved_input(0, self.x))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit; ``approximate="tanh"`` for the tanh form."""
    if approximate not in ("none", "tanh"):
        from .linalg_extra import ArgumentError  # NOTE: a RuntimeError, as PyTorch's

        raise ArgumentError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return Gelu.apply(_float_input(input), approximate)


class Softplus(Function):
    def forward(self, x, beta, threshold):
        if (y := _native.softplus(x, beta, threshold)) is not None:
            self.x, self.beta, self.threshold = x, beta, threshold
            return y  # NOTE: CPU float32: one pass of the CPU kernels; backward from x
        xp = backend.array_module(x)
        with backend.quiet_float_errors():  # NOTE: beta * x may overflow, silently as PyTorch
            self.bx, self.threshold, self.x, self.beta = x * beta, threshold, x, beta
            # NOTE: 16-bit floats in float32, as PyTorch: exp(bx) overflows float16 from 11
            bx = self.bx.astype(xp.float32) if x.dtype.itemsize == 2 else self.bx
            soft = xp.log1p(xp.exp(xp.minimum(bx, threshold))) / beta
        return backend.where(self.bx > threshold, x, soft.astype(x.dtype, copy=False))

    def backward(self, g):
        fast = _native.softplus_backward(g, self.x, self.beta, self.threshold)
        if fast is not None:
            return fast
        xp = backend.array_module(g)
        if "bx" not in self.__dict__:  # NOTE: the forward ran the CPU kernels
            self.bx = self.x * self.beta
        return backend.where(self.bx > self.threshold, g, g * _sigmoid(xp, self.bx))

    def backward_graph(self, g):
        if "bx" not in self.__dict__:
            self.bx = self.x * self.beta
        over = Tensor._wrap(self.bx > self.threshold)
        return where(over, g, g * sigmoid(self.saved_input(0, self.x) * self.beta))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return Softplus.apply(_float_input(input), beta, threshold)


# ---------------------------------------------------------------------------- min / max / where


class Where(Function):
    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, c, a, b):
        self.c = c
        return backend.where(c, a, b)

    def backward(self, g):
        xp = backend.array_module(g)
        _, na, nb = self.needs_input_grad
        zero = xp.zeros((), g.dtype)
        return None, (backend.where(self.c, g, zero) if na else None), (
            backend.where(self.c, zero, g) if nb else None)  # fmt: skip

    def backward_graph(self, g):
        _, na, nb = self.needs_input_grad
        c = Tensor._wrap(self.c)
        return None, (where(c, g, 0.0) if na else None), (where(c, 0.0, g) if nb else None)


@backend.on_tensor_device
def where(condition, input=None, other=None) -> Tensor:  # noqa: A002
    """Elements of ``input`` where ``condition`` holds, else of ``other``.

    ``where(condition)`` alone is ``nonzero(condition, as_tuple=True)``: one index tensor
    per dim, as in PyTorch."""
    if input is None and other is None:
        from .sorting import nonzero

        if not isinstance(condition, Tensor):
            condition = Tensor(condition)
        return nonzero(condition, as_tuple=True)
    if input is None or other is None:
        raise TypeError(
            "where: give both input and other (where(condition, input, other)), or neither "
            "(where(condition) gives the indices where condition holds)"
        )
    if not isinstance(condition, Tensor):
        condition = Tensor(condition)
    if condition._data.dtype != bool:
        condition = Tensor._wrap(condition._data.astype(bool), condition._device)
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        xp = backend.array_module(condition._data)
        dt = D.result_type(input, other)
        input = Tensor._wrap(xp.asarray(input, dt.np), condition._device)
    a, b = _promote(input, other)
    return Where.apply(condition, a, b)


class _MinMax(Function):
    """``maximum``/``minimum``: the gradient goes to the winner, half to each on a tie, and
    to both where one is NaN (PyTorch's rule: a select, so an inf or NaN gradient never
    reaches the loser as 0 * inf)."""

    def forward(self, a, b):
        xp = backend.array_module(a)
        self.a, self.b = a, b
        return self.pick(xp, a, b)

    def _masks(self):
        a, b = self.a, self.b
        return a == b, self.loses(a, b), self.loses(b, a)

    def backward(self, g):
        xp = backend.array_module(g)
        tie, a_loses, b_loses = self._masks()
        zero, half = xp.zeros((), g.dtype), g * 0.5
        na, nb = self.needs_input_grad
        ga = backend.where(tie, half, backend.where(a_loses, zero, g)) if na else None
        gb = backend.where(tie, half, backend.where(b_loses, zero, g)) if nb else None
        return ga, gb

    def backward_graph(self, g):
        tie, a_loses, b_loses = (Tensor._wrap(m) for m in self._masks())
        na, nb = self.needs_input_grad
        ga = where(tie, g * 0.5, where(a_loses, 0.0, g)) if na else None
        gb = where(tie, g * 0.5, where(b_loses, 0.0, g)) if nb else None
        return ga, gb


class Maximum(_MinMax):
    pick = staticmethod(lambda xp, a, b: xp.maximum(a, b))
    loses = staticmethod(lambda a, b: a < b)


class Minimum(_MinMax):
    pick = staticmethod(lambda xp, a, b: xp.minimum(a, b))
    loses = staticmethod(lambda a, b: a > b)


def maximum(input, other) -> Tensor:
    return _binary(Maximum, input, other)


def minimum(input, other) -> Tensor:
    return _binary(Minimum, input, other)


class Clamp(Function):
    node_name = "ClampBackward1"  # NOTE: PyTorch's clamp with number bounds

    def forward(self, x, lo, hi):
        xp = backend.array_module(x)
        self.mask = None
        if lo is not None:
            self.mask = x >= lo
        if hi is not None:
            self.mask = (x <= hi) if self.mask is None else self.mask & (x <= hi)
        return xp.clip(x, lo, hi)

    # NOTE: a select, not g * mask: an inf or NaN gradient outside the range gives 0
    def backward(self, g):
        if self.mask is None:
            return g
        return backend.where(self.mask, g, backend.array_module(g).zeros((), g.dtype))

    def backward_graph(self, g):
        return where(Tensor._wrap(self.mask), g, 0.0) if self.mask is not None else g


class ClampTensor(Function):
    """``clamp`` with tensor bounds (either may be None), with PyTorch's gradients: the
    input's where ``min <= x <= max``, ``min``'s where ``x < min`` (and ``min < max``),
    ``max``'s where ``x > max`` or ``max < min`` (all bounds crossed: the output is max)."""

    node_name = "ClampBackward0"  # NOTE: PyTorch's clamp with tensor bounds

    def forward(self, x, lo, hi):
        xp = backend.array_module(x)
        self.x, self.lo, self.hi = x, lo, hi
        out = x if lo is None else xp.maximum(x, lo)
        return out if hi is None else xp.minimum(out, hi)

    def _masks(self):
        x, lo, hi = self.x, self.lo, self.hi
        if lo is not None and hi is not None:
            return (x >= lo) & (x <= hi), (x < lo) & (lo < hi), (x > hi) | (hi < lo)
        if lo is not None:
            return x >= lo, x < lo, None
        return x <= hi, None, x > hi

    def backward(self, g):
        zero = backend.array_module(g).zeros((), g.dtype)
        return tuple(
            backend.where(m, g, zero) if m is not None and need else None
            for m, need in zip(self._masks(), self.needs_input_grad)
        )

    def backward_graph(self, g):
        return tuple(
            where(Tensor._wrap(m), g, 0.0) if m is not None and need else None
            for m, need in zip(self._masks(), self.needs_input_grad)
        )


def _clamp_tensor(input: Tensor, min, max) -> Tensor:  # noqa: A002
    x = input
    if min is not None:
        x, min = _promote(x, min)  # noqa: A001
    if max is not None:
        x, max = _promote(x, max)  # noqa: A001
        if min is not None and min.dtype is not x.dtype:
            min = cast(min, x.dtype)  # noqa: A001
    return ClampTensor.apply(x, min, max)


def _clamp_bounds(min, max):  # noqa: A002
    """``(min, max)`` by PyTorch's rules for clamp's bounds: at least one, both tensors or
    both numbers, where a 0-d tensor that does not require grad passes as a number."""
    if min is None and max is None:
        from .linalg_extra import ArgumentError

        raise ArgumentError("clamp: at least one of 'min' or 'max' must not be None")
    if min is None or max is None or isinstance(min, Tensor) == isinstance(max, Tensor):
        return min, max
    t = min if isinstance(min, Tensor) else max
    if t.ndim != 0 or t.requires_grad:
        # NOTE: PyTorch has one overload with tensor bounds and one with number bounds
        raise TypeError(
            f"clamp: min and max must both be tensors or both numbers, got "
            f"{type(min).__name__} and {type(max).__name__} (a tensor passes as a number "
            "only when 0-d and not requiring grad); wrap the number as a tensor: "
            "clamp(x, min=lo, max=torch.full_like(lo, hi))"
        )
    return (t.item(), max) if t is min else (min, t.item())


def clamp(input: Tensor, min=None, max=None) -> Tensor:  # noqa: A002
    """Limit values to [min, max]; either bound may be None, and the bounds given are both
    numbers or both tensors."""
    min, max = _clamp_bounds(min, max)  # noqa: A001
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        return _clamp_tensor(input, min, max)
    min, max = D.py_scalar(min), D.py_scalar(max)  # noqa: A001
    if isinstance(min, float) or isinstance(max, float):
        input = _float_input(input)
    elif input.dtype._cat == 1 and not input.is_quantized:  # NOTE: int bounds wrap, as PyTorch
        min, max = (_wrap_int(v, input.dtype) if type(v) is int else v for v in (min, max))  # noqa: A001
    return Clamp.apply(input, min, max)


clip = clamp

# ---------------------------------------------------------------------------- comparisons


def _compare(name, ufunc_name):
    class Compare(Function):
        differentiable = False

        def forward(self, a, b):
            return getattr(backend.array_module(a if backend.is_array(a) else b), ufunc_name)(a, b)

    Compare.__name__ = name
    Compare.complex_ok = name in ("Eq", "Ne")  # NOTE: complex numbers have no order

    def op(input, other) -> Tensor:
        a, b = _promote(input, other)
        return Compare.apply(a, b)

    op.__name__ = name.lower()
    op.__qualname__ = "".join("_" + c.lower() if c.isupper() else c for c in name)[1:]
    return op


eq = _compare("Eq", "equal")
ne = _compare("Ne", "not_equal")
lt = _compare("Lt", "less")
le = _compare("Le", "less_equal")
gt = _compare("Gt", "greater")
ge = _compare("Ge", "greater_equal")
logical_and = _compare("LogicalAnd", "logical_and")
logical_or = _compare("LogicalOr", "logical_or")
logical_xor = _compare("LogicalXor", "logical_xor")
greater, less, greater_equal, less_equal, not_equal = gt, lt, ge, le, ne


def _test(name, cls_name):
    fn = _unary_test(cls_name, lambda xp, x: getattr(xp, name)(x))

    def op(input: Tensor) -> Tensor:
        if not isinstance(input, Tensor):
            from .._sparse_ops import unary

            return unary(name, input)  # NOTE: a sparse COO tensor (or a TypeError)
        return fn.apply(input)

    op.__name__ = op.__qualname__ = name
    return op


logical_not = _test("logical_not", "LogicalNot")
isnan = _test("isnan", "IsNan")
isinf = _test("isinf", "IsInf")
isfinite = _test("isfinite", "IsFinite")


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both tensors have the same shape and elements (a host sync)."""
    return input.shape == other.shape and bool(eq(input, other).all())


@backend.on_tensor_device
def allclose(input: Tensor, other: Tensor, rtol=1e-5, atol=1e-8, equal_nan: bool = False) -> bool:
    """True when ``|input - other| <= atol + rtol * |other|`` everywhere (NaNs in the same
    places count as equal with ``equal_nan``); a host sync."""
    a, b = input.dtype, other.dtype
    if a._f8 or b._f8:
        from .._float8 import refused

        raise refused("allclose", (a if a._f8 else b).name)
    xp = backend.array_module(input._data)
    return bool(xp.allclose(input._data, other._data, rtol=rtol, atol=atol, equal_nan=equal_nan))


from ._common import public  # noqa: E402

__all__ = public(globals())
