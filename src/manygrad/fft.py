"""``manygrad.fft``: PyTorch's ``torch.fft`` (discrete Fourier transforms with gradients),
on NumPy's pocketfft on the CPU and cuFFT (through CuPy) on the GPU.

Real inputs to the complex transforms are taken as complex; ``rfft*`` keep the
non-negative frequencies of a real signal, ``irfft*`` rebuild a real signal from them.
``norm`` is ``"backward"`` (default: no scaling forward, 1/n back), ``"ortho"`` or
``"forward"``.

Example:
    >>> x = mg.randn(8, requires_grad=True)
    >>> mg.fft.rfft(x).abs().sum().backward()
"""

from __future__ import annotations

from . import backend
from . import dtypes as D
from .autograd import Function
from .errors import DimError, DTypeError, ShapeError
from .tensor import Tensor

_DUAL = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def _fit(xp, a, axes, sizes):
    """``a`` cut or zero-padded to ``sizes`` along ``axes``."""
    for ax, n in zip(axes, sizes):
        m = a.shape[ax]
        if m > n:
            a = a[(slice(None),) * (ax % a.ndim) + (slice(0, n),)]
        elif m < n:
            pad = [(0, 0)] * a.ndim
            pad[ax] = (0, n - m)
            a = xp.pad(a, pad)
    return a


class FFT(Function):
    """One n-d transform: ``kind`` ``c2c`` (``inverse`` or not), ``r2c`` or ``c2r``."""

    complex_ok = changes_dtype = True

    def forward(self, x, kind, inverse, axes, sizes, norm):
        xp = backend.array_module(x)
        self.kind, self.inverse, self.axes, self.sizes, self.norm = kind, inverse, axes, sizes, norm
        self.shape, self.dt = x.shape, x.dtype
        wide = x.dtype in (xp.float64, xp.complex128)
        if kind == "c2c" and inverse and len(axes) == 1 and x.dtype.kind != "c":
            # NOTE: a real signal's inverse transform is the conjugate of its forward one
            # (scaled as the inverse); computed so, its zero imaginary parts are -0.0 as
            # PyTorch's (ifft of [0, 1, 2] prints 1.0000-0.0000j first)
            out = xp.conj(xp.fft.fftn(x, s=sizes, axes=axes, norm=_DUAL[norm]))
        elif kind == "c2c":
            fn = xp.fft.ifftn if inverse else xp.fft.fftn
            out = fn(x, s=sizes, axes=axes, norm=norm)
        elif kind == "r2c":
            out = xp.fft.rfftn(x, s=sizes, axes=axes, norm=norm)
        else:
            out = xp.fft.irfftn(x, s=sizes, axes=axes, norm=norm)
        if kind == "c2r":
            return out.astype(xp.float64 if wide else xp.float32, copy=False)
        return out.astype(xp.complex128 if wide else xp.complex64, copy=False)

    def backward(self, g):
        xp = backend.array_module(g)
        axes, sizes, norm = self.axes, self.sizes, _DUAL[self.norm]
        if self.kind == "c2c":
            fn = xp.fft.fftn if self.inverse else xp.fft.ifftn
            gx = fn(g, axes=axes, norm=norm)
        elif self.kind == "r2c":  # NOTE: the half spectrum's adjoint: zeros for the rest
            full = _fit(xp, g, axes[-1:], sizes[-1:])
            gx = xp.fft.ifftn(full, axes=axes, norm=norm).real
        else:  # NOTE: bins that stand for a conjugate pair count twice
            n = sizes[-1]
            gx = xp.fft.rfftn(g, axes=axes, norm=norm)
            last = axes[-1] % gx.ndim
            w = xp.full(gx.shape[last], 2.0, dtype=gx.real.dtype)
            w[0] = 1.0
            if n % 2 == 0:
                w[-1] = 1.0
            gx = gx * w.reshape((-1,) + (1,) * (gx.ndim - last - 1))
        gx = _fit(xp, gx, axes, [self.shape[a] for a in axes])
        if gx.dtype.kind == "c" and self.dt.kind != "c":
            gx = gx.real  # NOTE: a real input moves along the real axis only
        return gx.astype(self.dt, copy=False)


def _norm(norm) -> str:
    if norm is None:
        return "backward"
    if norm not in _DUAL:
        raise ValueError(f"fft: norm must be 'backward', 'ortho' or 'forward', got {norm!r}")
    return norm


def _axes_sizes(x: Tensor, s, dim, default_dims, op: str):
    if dim is None and s is not None and len(s) > x.ndim:
        raise ShapeError(
            f"{op}: got s with {len(s)} sizes but the input has only {x.ndim} dims; give "
            "at most one size per dim"
        )
    if dim is None:
        dims = list(range(x.ndim - len(s), x.ndim)) if s is not None else list(default_dims)
    else:
        dims = [dim] if isinstance(dim, int) else list(dim)
    bad = [d for d in dims if not -x.ndim <= d < x.ndim]
    if bad:
        raise DimError(
            f"{op}: dim {bad[0]} is out of range for a {x.ndim}-d input (expected to be in "
            f"range of [{-x.ndim}, {x.ndim - 1}])"
        )
    dims = [d + x.ndim if d < 0 else d for d in dims]
    if len(set(dims)) != len(dims):
        raise ShapeError(f"{op}: FFT dims must be unique, got {dims}")
    if s is not None and len(s) != len(dims):
        raise ShapeError(f"{op}: s has {len(s)} sizes for {len(dims)} dims")
    sizes = [x.shape[d] for d in dims] if s is None else [int(n) for n in s]
    sizes = [x.shape[d] if n == -1 else n for d, n in zip(dims, sizes)]
    if any(n < 1 for n in sizes):
        raise ShapeError(f"{op}: transform sizes must be >= 1, got {sizes}")
    return tuple(dims), tuple(sizes)


def _input(x: Tensor, op: str, real: bool) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if real and x.is_complex():
        raise DTypeError(
            f"{op}: expects a real input tensor, but got {x.dtype.name}; take .real (or "
            "use the complex transform)"
        )
    if not (x.is_floating_point() or x.is_complex()):
        x = x.to(D.get_default_dtype())
    if x.dtype in (D.float16, D.bfloat16):
        x = x.float()
    return x


def _c2c(x, s, dim, norm, inverse, op, default):
    x = _input(x, op, False)
    axes, sizes = _axes_sizes(x, s, dim, default, op)
    return FFT.apply(x, "c2c", inverse, axes, sizes, _norm(norm))


def _some_axes(axes, op: str) -> None:
    if not axes:
        raise ShapeError(f"{op} must transform at least one axis; pass dim=None or a non-empty dim")


def _r2c(x, s, dim, norm, op, default):
    x = _input(x, op, True)
    axes, sizes = _axes_sizes(x, s, dim, default, op)
    _some_axes(axes, op)
    return FFT.apply(x, "r2c", False, axes, sizes, _norm(norm))


def _c2r(x, s, dim, norm, op, default):
    x = _input(x, op, False)
    axes, sizes = _axes_sizes(x, s, dim, default, op)
    _some_axes(axes, op)
    if s is None or s[-1] == -1:  # NOTE: n defaults to 2 (m - 1) for m half-spectrum bins
        sizes = sizes[:-1] + (2 * (x.shape[axes[-1]] - 1),)
    if sizes[-1] < 1:
        raise ShapeError(f"{op}: the output size {sizes[-1]} along the last dim is < 1")
    return FFT.apply(x, "c2r", True, axes, sizes, _norm(norm))


def _one(n):
    return None if n is None else (n,)


def fft(input, n=None, dim=-1, norm=None):  # noqa: A002
    """The 1-d discrete Fourier transform along ``dim`` (``n`` pads or cuts the input)."""
    return _c2c(input, _one(n), dim, norm, False, "fft", (-1,))


def ifft(input, n=None, dim=-1, norm=None):  # noqa: A002
    return _c2c(input, _one(n), dim, norm, True, "ifft", (-1,))


def rfft(input, n=None, dim=-1, norm=None):  # noqa: A002
    """The non-negative frequencies (``n // 2 + 1``) of a real signal's transform."""
    return _r2c(input, _one(n), dim, norm, "rfft", (-1,))


def irfft(input, n=None, dim=-1, norm=None):  # noqa: A002
    """The real signal (``n`` samples, default ``2 (m - 1)``) of a half spectrum."""
    return _c2r(input, _one(n), dim, norm, "irfft", (-1,))


def hfft(input, n=None, dim=-1, norm=None):  # noqa: A002
    """The real transform of a Hermitian-symmetric signal given by its first half."""
    return irfft(input.conj(), n, dim, _DUAL[_norm(norm)])


def ihfft(input, n=None, dim=-1, norm=None):  # noqa: A002
    """The inverse of ``hfft``: half of the inverse transform of a real signal."""
    return rfft(input, n, dim, _DUAL[_norm(norm)]).conj()


def fft2(input, s=None, dim=(-2, -1), norm=None):  # noqa: A002
    return fftn(input, s, dim, norm)


def ifft2(input, s=None, dim=(-2, -1), norm=None):  # noqa: A002
    return ifftn(input, s, dim, norm)


def rfft2(input, s=None, dim=(-2, -1), norm=None):  # noqa: A002
    return rfftn(input, s, dim, norm)


def irfft2(input, s=None, dim=(-2, -1), norm=None):  # noqa: A002
    return irfftn(input, s, dim, norm)


def hfft2(input, s=None, dim=(-2, -1), norm=None):  # noqa: A002
    """``hfftn`` over two dims (default the last two)."""
    return _hfftn(input, s, dim, norm, "hfft2")


def ihfft2(input, s=None, dim=(-2, -1), norm=None):  # noqa: A002
    """``ihfftn`` over two dims (default the last two)."""
    return _ihfftn(input, s, dim, norm, "ihfft2")


def hfftn(input, s=None, dim=None, norm=None):  # noqa: A002
    """The real n-d transform of a Hermitian-symmetric signal given by the first half of
    its last dim (``s[-1]`` samples out there, default ``2 (m - 1)``).

    Args:
        input: the half signal (complex; real is taken as complex).
        s: output sizes per dim (-1 keeps a dim's size); default the input's.
        dim: the dims (default: the last ``len(s)``, or all).
        norm: "backward" (default: no scaling), "ortho" or "forward" (1/n).

    Example:
        >>> mg.fft.hfftn(mg.fft.ihfftn(x), s=x.shape)  # x back, for a real x
    """
    return _hfftn(input, s, dim, norm, "hfftn")


def ihfftn(input, s=None, dim=None, norm=None):  # noqa: A002
    """The inverse of ``hfftn``: the n-d inverse transform of a real signal, keeping the
    first half (``s[-1] // 2 + 1`` bins) of the last dim.

    Args:
        input: a real signal.
        s, dim: as ``hfftn``.
        norm: "backward" (default: 1/n), "ortho" or "forward" (no scaling).

    Example:
        >>> mg.fft.ihfftn(mg.randn(4, 6)).shape  # (4, 4)
    """
    return _ihfftn(input, s, dim, norm, "ihfftn")


def _hfftn(x, s, dim, norm, op):
    # NOTE: the transform of a Hermitian signal is real: hfftn(x) = irfftn(conj(x)) with
    # the dual scaling, exactly as PyTorch computes it (c2c, conj, c2r), gradients included
    x = _input(x, op, False)
    x = x.conj() if x.is_complex() else x
    return _c2r(x, s, dim, _DUAL[_norm(norm)], op, range(x.ndim))


def _ihfftn(x, s, dim, norm, op):
    x = _input(x, op, True)
    return _r2c(x, s, dim, _DUAL[_norm(norm)], op, range(x.ndim)).conj()


def fftn(input, s=None, dim=None, norm=None):  # noqa: A002
    """The n-d transform over ``dim`` (default: the last ``len(s)`` dims, or all)."""
    return _c2c(input, s, dim, norm, False, "fftn", range(input.ndim))


def ifftn(input, s=None, dim=None, norm=None):  # noqa: A002
    return _c2c(input, s, dim, norm, True, "ifftn", range(input.ndim))


def rfftn(input, s=None, dim=None, norm=None):  # noqa: A002
    return _r2c(input, s, dim, norm, "rfftn", range(input.ndim))


def irfftn(input, s=None, dim=None, norm=None):  # noqa: A002
    return _c2r(input, s, dim, norm, "irfftn", range(input.ndim))


def fftfreq(n: int, d: float = 1.0, *, dtype=None, device=None, requires_grad=False):
    """The sample frequencies of an ``n``-point transform: ``[0, 1, ..., -1] / (d n)``."""
    from .creation import tensor

    k = [i if i < (n + 1) // 2 else i - n for i in range(n)]
    return tensor([v / (d * n) for v in k], dtype=dtype or D.get_default_dtype(),
                  device=device, requires_grad=requires_grad)  # fmt: skip


def rfftfreq(n: int, d: float = 1.0, *, dtype=None, device=None, requires_grad=False):
    """The non-negative sample frequencies of an ``n``-point real transform."""
    from .creation import tensor

    return tensor([i / (d * n) for i in range(n // 2 + 1)],
                  dtype=dtype or D.get_default_dtype(), device=device,
                  requires_grad=requires_grad)  # fmt: skip


def fftshift(input, dim=None):  # noqa: A002
    """The zero frequency moved to the middle of ``dim`` (default all dims)."""
    dims = list(range(input.ndim)) if dim is None else [dim] if isinstance(dim, int) else dim
    return input.roll([input.shape[d] // 2 for d in dims], dims)


def ifftshift(input, dim=None):  # noqa: A002
    """The inverse of ``fftshift``."""
    dims = list(range(input.ndim)) if dim is None else [dim] if isinstance(dim, int) else dim
    return input.roll([-(input.shape[d] // 2) for d in dims], dims)


__all__ = [
    "fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fft2", "ifft2", "rfft2", "irfft2",
    "fftn", "ifftn", "rfftn", "irfftn", "fftfreq", "rfftfreq", "fftshift", "ifftshift",
    "hfft2", "ihfft2", "hfftn", "ihfftn",
]  # fmt: skip

from . import _out  # noqa: E402

# PyTorch's out= keyword on the torch.fft functions that take it
_out.add_out(__import__(__name__, fromlist=["_"]), _out.FFT, "fft")
