"""Complex tensors: their parts (``real``, ``imag``, ``view_as_real``), ``conj``, ``angle``,
``sgn`` and ``abs`` of complex values, and building them (``complex``, ``polar``,
``view_as_complex``).

Gradients follow PyTorch's convention for complex inputs: the gradient of a real loss
``L`` with respect to ``z = x + iy`` is ``dL/dx + i dL/dy``.

Example:
    >>> z = mg.complex(mg.tensor([1.0]), mg.tensor([2.0]))    # 1+2j
    >>> mg.view_as_real(z.conj())                               # [[1., -2.]]
"""

from __future__ import annotations

from .. import backend
from .. import dtypes as D
from ..autograd import Function
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from ._common import public


def _complex_of(dt) -> D.dtype:
    return D.complex128 if dt in (D.float64, D.complex128) else D.complex64


class Real(Function):
    complex_ok = changes_dtype = True
    view = True  # NOTE: z.real shares z's memory, as in PyTorch

    def forward(self, z):
        return z.real

    def backward(self, g):
        return g  # NOTE: the engine makes it complex: the real axis only


class Imag(Function):
    complex_ok = changes_dtype = True
    view = True

    def forward(self, z):
        return z.imag

    def backward(self, g):
        return g * 1j


class Conj(Function):
    complex_ok = True

    def forward(self, z):
        return backend.array_module(z).conj(z)

    def backward(self, g):
        return backend.array_module(g).conj(g)


class ComplexAngle(Function):
    complex_ok = changes_dtype = True

    def forward(self, z):
        self.z = z
        return backend.array_module(z).angle(z)

    def backward(self, g):
        xp = backend.array_module(g)
        r2 = (self.z * xp.conj(self.z)).real  # NOTE: d(angle) is i z / |z|^2, 0 at 0
        return g * xp.where(r2 == 0, 0, 1j * self.z / xp.where(r2 == 0, 1, r2))


class Sgn(Function):
    """``z / |z|`` of complex ``z`` (0 at 0): the unit number with ``z``'s argument."""

    complex_ok = True

    def reference(self, z):
        from .elementwise import where

        r = z.abs()
        zero = r == 0
        return where(zero, 0.0, z / where(zero, 1.0, r))

    def forward(self, z):
        xp = backend.array_module(z)
        self.inputs = (z,)
        with backend.quiet_float_errors():  # NOTE: NaN for NaN or infinite parts, silently
            r = xp.abs(z)
            self.r = r
            self.s = xp.where(r == 0, 0, z / xp.where(r == 0, 1, r)).astype(z.dtype, copy=False)
        return self.s

    def backward(self, g):
        # NOTE: |sgn z| is 1, so the part of g along sgn z has no effect: what is left,
        # over |z|, is the gradient (0 at z = 0, as PyTorch's)
        xp = backend.array_module(g)
        s, r = self.s, self.r
        with backend.quiet_float_errors():
            along = (xp.conj(s) * g).real
            out = xp.where(r == 0, 0, (g - s * along) / xp.where(r == 0, 1, r))
        return out.astype(s.dtype, copy=False)


class ViewAsReal(Function):
    complex_ok = changes_dtype = True
    view = True

    def forward(self, z):
        if z.ndim and z.strides[-1] == z.itemsize:  # NOTE: a view of z's memory
            return z.view(z.real.dtype).reshape(z.shape + (2,))
        if z.ndim == 0:
            return z.reshape(1).view(z.real.dtype)
        return backend.array_module(z).stack([z.real, z.imag], axis=-1)

    def backward(self, g):
        return g[..., 0] + 1j * g[..., 1]


class MakeComplex(Function):
    complex_ok = changes_dtype = True

    def forward(self, re, im):
        return (re + 1j * im).astype(_complex_of(D.from_np(re.dtype)).np, copy=False)

    def backward(self, g):
        return g.real, g.imag


def _check_complex(op: str, z: Tensor) -> None:
    if not z.is_complex():
        raise DTypeError(f"{op}: expected a complex tensor, got {z.dtype.name}")


def real(input: Tensor) -> Tensor:  # noqa: A002
    """The real part (the tensor itself for real dtypes)."""
    return Real.apply(input) if input.is_complex() else input


def imag(input: Tensor) -> Tensor:  # noqa: A002
    """The imaginary part of a complex tensor."""
    if not input.is_complex():
        raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")
    return Imag.apply(input)


def conj(input: Tensor) -> Tensor:  # noqa: A002
    """The complex conjugate (the tensor itself for real dtypes)."""
    return Conj.apply(input) if input.is_complex() else input


def conj_physical(input: Tensor) -> Tensor:  # noqa: A002
    return Conj.apply(input) if input.is_complex() else input.clone()


def view_as_real(input: Tensor) -> Tensor:  # noqa: A002
    """A complex tensor as real numbers with a last dim of 2 (real, imaginary)."""
    _check_complex("view_as_real", input)
    return ViewAsReal.apply(input)


def view_as_complex(input: Tensor) -> Tensor:  # noqa: A002
    """A float tensor whose last dim has size 2 (real, imaginary) as complex numbers."""
    if input.dtype not in (D.float32, D.float64):
        raise DTypeError(
            f"view_as_complex: expected a float32 or float64 tensor, got {input.dtype.name}"
        )
    if input.ndim == 0 or input.shape[-1] != 2:
        raise ShapeError(
            f"view_as_complex: the last dim must have size 2 (real, imaginary), got shape "
            f"{tuple(input.shape)}"
        )
    if input._data.strides[-1] == input._data.itemsize and (
        input.ndim == 1
        or all(st % (2 * input._data.itemsize) == 0 for st in input._data.strides[:-1])  # fmt: skip
    ):
        return ViewAsComplex.apply(input)
    return MakeComplex.apply(input[..., 0], input[..., 1])


class ViewAsComplex(Function):
    """Pairs of floats seen as complex numbers: a view of the same memory."""

    complex_ok = changes_dtype = True
    view = True

    def forward(self, x):
        return x.view(_complex_of(D.from_np(x.dtype)).np)[..., 0]

    def backward(self, g):
        xp = backend.array_module(g)
        return xp.stack([g.real, g.imag], axis=-1)


def complex(real: Tensor, imag: Tensor) -> Tensor:  # noqa: A001
    """``real + i * imag`` from two float tensors of the same dtype (broadcast)."""
    _two_tensors("complex", ("real", real), ("imag", imag))
    if real.dtype is not imag.dtype or real.dtype not in (D.float32, D.float64):
        raise DTypeError(
            f"complex: expected real and imag of one dtype, float32 or float64, got "
            f"{real.dtype.name} and {imag.dtype.name}"
        )
    if tuple(real.shape) != tuple(imag.shape):
        from .misc import broadcast_tensors

        real, imag = broadcast_tensors(real, imag)
    return MakeComplex.apply(real, imag)


def _two_tensors(op: str, *named) -> None:
    for name, t in named:
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}(): argument '{name}' must be Tensor, not {type(t).__name__}")


def polar(abs: Tensor, angle: Tensor) -> Tensor:  # noqa: A002
    """``abs * (cos(angle) + i sin(angle))`` from two float tensors of the same dtype."""
    _two_tensors("polar", ("abs", abs), ("angle", angle))
    if abs.dtype is not angle.dtype or not abs.is_floating_point():
        raise DTypeError(
            f"polar: expected abs and angle of one floating point dtype, got "
            f"{abs.dtype.name} and {angle.dtype.name}"
        )
    return complex(abs * angle.cos(), abs * angle.sin())


def complex_angle(input: Tensor) -> Tensor:  # noqa: A002
    """The argument of each complex element, in (-pi, pi]."""
    return ComplexAngle.apply(input)


def complex_sgn(input: Tensor) -> Tensor:  # noqa: A002
    """``input / |input|`` of a complex tensor, 0 where it is 0 (``mg.sgn`` of complex
    values)."""
    return Sgn.apply(input)


__all__ = [n for n in public(globals()) if n not in ("complex_angle", "complex_sgn")]
