"""Integration and statistics with PyTorch's names: trapezoid, cumulative_trapezoid, cov,
corrcoef, vander, renorm, histogram."""

from __future__ import annotations

from .. import backend, return_types
from .. import dtypes as D
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from .elementwise import _float_input, mul, sub, where
from .indexing import _dim
from .linalg import matmul
from .movement import narrow, reshape
from .reduce import cumsum, mean, sum

# ---------------------------------------------------------------------------- integration


def _spacing(y: Tensor, x, dx, d: int):
    if x is None:
        return 1.0 if dx is None else dx
    if x.ndim == 1:
        shape = [1] * y.ndim
        shape[d] = -1
        x = reshape(x, *shape)
    n = x.shape[d]
    return sub(narrow(x, d, 1, n - 1), narrow(x, d, 0, n - 1))


def trapezoid(y: Tensor, x=None, *, dx=None, dim: int = -1) -> Tensor:
    """The trapezoidal rule along ``dim`` (spacing ``x`` or ``dx``, default 1)."""
    d = _dim(dim, y.ndim, "trapezoid")
    n = y.shape[d]
    if n == 0:
        return sum(y, d)
    mid = (narrow(y, d, 1, n - 1) + narrow(y, d, 0, n - 1)) * 0.5
    return sum(mul(mid, _spacing(y, x, dx, d)), d)


trapz = trapezoid


def cumulative_trapezoid(y: Tensor, x=None, *, dx=None, dim: int = -1) -> Tensor:
    """Running trapezoidal integrals along ``dim`` (one fewer than ``y``)."""
    d = _dim(dim, y.ndim, "cumulative_trapezoid")
    n = y.shape[d]
    mid = (narrow(y, d, 1, n - 1) + narrow(y, d, 0, n - 1)) * 0.5
    return cumsum(mul(mid, _spacing(y, x, dx, d)), d)


# ---------------------------------------------------------------------------- statistics


def cov(input: Tensor, *, correction: int = 1, fweights=None, aweights=None) -> Tensor:  # noqa: A002
    """Covariance of the variables in the rows of ``input`` (observations in columns),
    optionally with integer frequency weights and float observation weights per column."""
    x = reshape(input, 1, -1) if input.ndim < 2 else input
    x = _float_input(x)
    n = x.shape[1]
    w = None
    for name, wt in (("fweights", fweights), ("aweights", aweights)):
        if wt is None:
            continue
        if wt.ndim > 1 or wt.numel() != n:
            raise ShapeError(f"cov: {name} must be 1-d with one weight per observation ({n}), "
                             f"got shape {tuple(wt.shape)}")  # fmt: skip
        if name == "fweights" and wt.is_floating_point():
            raise DTypeError("cov: fweights must be integral; use aweights for float weights")
        if name == "aweights" and not wt.is_floating_point():
            raise DTypeError("cov: aweights must be floating point")
        w = wt if w is None else w * wt
    if w is None:
        xc = x - mean(x, 1, keepdim=True)
        out = matmul(xc, xc.mT.conj() if xc.is_complex() else xc.mT) / max(n - correction, 0)
        return reshape(out, ()) if input.ndim < 2 else out
    w = w.to(x.dtype) if not w.is_floating_point() else w
    w_sum = w.sum()
    avg = (x * w).sum(1, keepdim=True) / w_sum
    if correction == 0:
        norm = w_sum
    elif aweights is None:
        norm = w_sum - correction
    else:
        norm = w_sum - correction * (w * aweights).sum() / w_sum
    norm = norm.clamp(min=0)
    xc = x - avg
    out = matmul(xc * w, xc.mT.conj() if xc.is_complex() else xc.mT) / norm
    return reshape(out, ()) if input.ndim < 2 else out


def corrcoef(input: Tensor) -> Tensor:  # noqa: A002
    """Pearson correlation coefficients of the rows of ``input``."""
    c = cov(input)
    if c.ndim == 0:
        return c / c
    from .shaping import diagonal

    s = diagonal(c).sqrt()
    out = c / s.unsqueeze(1) / s.unsqueeze(0)
    return out.clamp(-1, 1)


def vander(x: Tensor, N=None, increasing: bool = False) -> Tensor:  # noqa: N803
    """The Vandermonde matrix of a 1-d tensor (powers decreasing unless ``increasing``):
    a column of ones, then the running products of ``x`` (integers in int64), as PyTorch
    builds it, so with its values (float32 products carried in double).

    Example: ``mg.vander(mg.tensor([1.0, 2.0, 3.0]), 3)``  # [[1, 1, 1], [4, 2, 1], [9, 3, 1]]
    """
    from .. import creation
    from .movement import cat
    from .scans import cumprod

    if x.ndim != 1:
        raise ShapeError(f"vander: x must be a 1-d tensor, got shape {tuple(x.shape)}")
    n = x.shape[0] if N is None else N
    if n < 0:
        raise ValueError(f"vander: N must be non-negative, got {n}")
    # NOTE: one cumprod (one C pass on the CPU) instead of a power per column: 256 columns
    # took 4.9 ms against PyTorch's 0.13
    dt = x.dtype if x.is_floating_point() or x.is_complex() else D.int64
    out = creation.ones(x.shape[0], min(n, 1), dtype=dt, device=x.device)
    if n > 1 and x.is_complex():  # NOTE: no complex cumprod: a power per column
        out = cat([out] + [x.unsqueeze(1) ** k for k in range(1, n)], 1)
    elif n > 1:
        out = cat([out, cumprod(x.unsqueeze(1).expand(x.shape[0], n - 1), 1)], 1)
    return out if increasing else out.flip(1)


def renorm(input: Tensor, p, dim: int, maxnorm) -> Tensor:  # noqa: A002
    """Each slice along ``dim`` rescaled so its p-norm is at most ``maxnorm``."""
    from .products import _pnorm

    d = _dim(dim, input.ndim, "renorm")
    others = tuple(i for i in range(input.ndim) if i != d)
    norms = _pnorm(input, p, others, True)
    factor = where(norms > maxnorm, maxnorm / (norms + 1e-7), 1.0)
    return input * factor


@backend.on_tensor_device
def histogram(input: Tensor, bins=100, *, range=None, weight=None, density: bool = False):  # noqa: A002
    """``(hist, bin_edges)`` of the values (``bins`` a count or a tensor of edges)."""
    xp = backend.array_module(input._data)
    b = bins._data if isinstance(bins, Tensor) else bins
    w = weight._data if isinstance(weight, Tensor) else None
    h, e = xp.histogram(input._data.reshape(-1), bins=b, range=range, weights=w,
                        density=density)  # fmt: skip
    dt = input._data.dtype
    hist, edges = (Tensor._wrap(a.astype(dt), input._device) for a in (h, e))
    return return_types.histogram((hist, edges))


@backend.on_tensor_device
def histogramdd(input: Tensor, bins=10, *, range=None, weight=None, density: bool = False):  # noqa: A002
    """``(hist, bin_edges)`` of points ``(..., D)`` in ``D`` dimensions: ``bins`` a count, a
    count per dimension or a list of edge tensors; ``range`` a flat ``[min0, max0, min1,
    max1, ...]``."""
    xp = backend.array_module(input._data)
    d = input.shape[-1]
    pts = input._data.reshape(-1, d)
    if isinstance(bins, (list, tuple)) and bins and isinstance(bins[0], Tensor):
        b = [e._data for e in bins]
    else:
        b = bins
    rng = None
    if range is not None:
        if len(range) != 2 * d:
            raise ValueError(f"histogramdd: range needs 2 values per dimension ({2 * d}), "
                             f"got {len(range)}")  # fmt: skip
        rng = [(float(range[2 * i]), float(range[2 * i + 1])) for i in _brange(d)]
    w = weight._data.reshape(-1) if isinstance(weight, Tensor) else None
    h, edges = xp.histogramdd(pts, bins=b, range=rng, weights=w, density=density)
    dt = input._data.dtype
    hist = Tensor._wrap(h.astype(dt), input._device)
    edges = tuple(Tensor._wrap(e.astype(dt), input._device) for e in edges)
    return return_types.histogramdd((hist, edges))


def _brange(n):
    import builtins

    return builtins.range(n)


from ._common import public  # noqa: E402

__all__ = public(globals())
