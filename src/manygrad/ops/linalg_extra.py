"""Linear algebra with gradients: inv, det, slogdet, solve, cholesky, pinv, matrix_rank,
matrix_power and the norms (``mg.linalg`` re-exports them under ``torch.linalg``'s names;
qr, svd and eigh are in ``decompositions``). Batched over leading dims."""

from __future__ import annotations

from collections import namedtuple

from .. import backend
from ..autograd import Function
from ..errors import ShapeError
from ..tensor import Tensor
from .elementwise import abs as _abs
from .elementwise import where
from .linalg import matmul
from .movement import unsqueeze
from .reduce import amax, amin, sum

_SlogDet = namedtuple("slogdet", ["sign", "logabsdet"])


def _T(a):  # noqa: N802
    return a.swapaxes(-1, -2)


def _square(x: Tensor, op: str) -> None:
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ShapeError(f"{op}: expected square matrices (.., n, n), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{op}: expected a floating tensor, got {x.dtype}")


class Inv(Function):
    def forward(self, a):
        self.y = backend.array_module(a).linalg.inv(a)
        return self.y

    def backward(self, g):
        yt = _T(self.y)
        return -(yt @ g @ yt)

    def backward_graph(self, g):
        yt = self.saved_output(self.y).mT
        return -matmul(matmul(yt, g), yt)


def inv(A: Tensor) -> Tensor:  # noqa: N803
    """The inverse of square matrices."""
    _square(A, "inv")
    return Inv.apply(A)


inverse = inv


class Det(Function):
    def forward(self, a):
        xp = backend.array_module(a)
        self.a, self.d = a, xp.linalg.det(a)
        return self.d

    def backward(self, g):
        xp = backend.array_module(g)
        return (g * self.d)[..., None, None] * _T(xp.linalg.inv(self.a))

    def backward_graph(self, g):
        a, d = self.saved_input(0, self.a), self.saved_output(self.d)
        return (g * d)[..., None, None] * inv(a).mT


def det(A: Tensor) -> Tensor:  # noqa: N803
    """The determinant of square matrices."""
    _square(A, "det")
    return Det.apply(A)


class LogAbsDet(Function):
    def forward(self, a):
        xp = backend.array_module(a)
        self.a = a
        sign, lad = xp.linalg.slogdet(a)
        self.sign = sign
        return lad.astype(a.dtype, copy=False)

    def backward(self, g):
        xp = backend.array_module(g)
        return g[..., None, None] * _T(xp.linalg.inv(self.a))

    def backward_graph(self, g):
        return g[..., None, None] * inv(self.saved_input(0, self.a)).mT


def slogdet(A: Tensor):  # noqa: N803
    """``(sign, logabsdet)`` of square matrices; the gradient flows through logabsdet."""
    _square(A, "slogdet")
    lad = LogAbsDet.apply(A)
    xp = backend.array_module(A._data)
    with backend.device_scope(A._device):
        sign = xp.linalg.slogdet(A._data)[0].astype(A._data.dtype, copy=False)
    return _SlogDet(Tensor._wrap(sign, A._device), lad)


def logdet(A: Tensor) -> Tensor:  # noqa: N803
    """``log(det(A))``: NaN where the determinant is negative."""
    s, lad = slogdet(A)
    return where(s < 0, float("nan"), lad)  # NOTE: a negative determinant has no log


class Solve(Function):
    def forward(self, a, b, vec):
        xp = backend.array_module(a)
        self.a, self.vec = a, vec
        self.x = xp.linalg.solve(a, b[..., None] if vec else b)
        self.out = self.x[..., 0] if vec else self.x
        return self.out

    def backward(self, g):
        xp = backend.array_module(g)
        g2 = g[..., None] if self.vec else g
        gb = xp.linalg.solve(_T(self.a), g2)
        ga = -gb @ _T(self.x)
        return ga, (gb[..., 0] if self.vec else gb), None

    def backward_graph(self, g):
        a, x = self.saved_input(0, self.a), self.saved_output(self.out)
        gb = solve(a.mT, g)
        if self.vec:
            return -(gb.unsqueeze(-1) * x.unsqueeze(-2)), gb, None
        return -matmul(gb, x.mT), gb, None


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:  # noqa: N803
    """``X`` with ``A @ X = B`` (``X @ A = B`` when ``left=False``); a B with one dim fewer
    than A is a (batch of) vector(s)."""
    _square(A, "solve")
    if not left:
        return solve(A.mT, B.mT).mT
    vec = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    return Solve.apply(A, B, vec)


def _phi(xp, a):
    """Lower triangle with the diagonal halved."""
    return xp.tril(a) - 0.5 * (xp.eye(a.shape[-1], dtype=a.dtype) * a)


def _phi_t(a: Tensor) -> Tensor:
    """``_phi`` with Tensor ops (for double backward)."""
    from .arrange import tril
    from .shaping import diag_embed, diagonal

    return tril(a) - 0.5 * diag_embed(diagonal(a, 0, -2, -1))


def _off_inverse(d: Tensor) -> Tensor:
    """``1 / d`` off the diagonal of the last two dims, 0 on it (Tensor ops)."""
    xp = backend.array_module(d._data)
    n = d.shape[-1]
    with backend.device_scope(d._device):
        eye = Tensor._wrap(xp.eye(n, dtype=bool), d._device)
    return where(eye, 0.0, 1 / where(eye, 1.0, d))


class Cholesky(Function):
    def forward(self, a):
        self.L = backend.array_module(a).linalg.cholesky(a)
        return self.L

    def backward(self, g):
        xp = backend.array_module(g)
        L = self.L  # noqa: N806
        linv = xp.linalg.inv(L)
        s = _T(linv) @ _phi(xp, _T(L) @ g) @ linv
        return 0.5 * (s + _T(s))

    def backward_graph(self, g):
        L = self.saved_output(self.L)  # noqa: N806
        linv = inv(L)
        s = matmul(matmul(linv.mT, _phi_t(matmul(L.mT, g))), linv)
        return 0.5 * (s + s.mT)


def cholesky(A: Tensor, *, upper: bool = False) -> Tensor:  # noqa: N803
    """The lower Cholesky factor ``L`` (``A = L L^T``), or the upper ``L^T``."""
    _square(A, "cholesky")
    L = Cholesky.apply(A)  # noqa: N806
    return L.mT if upper else L


def pinv(A: Tensor, *, rtol=None, hermitian: bool = False) -> Tensor:  # noqa: N803
    """The Moore-Penrose pseudo-inverse, from the SVD (singular values below
    ``rtol * max(S)`` count as zero; rtol defaults to ``eps * max(m, n)``)."""
    from .decompositions import svd

    U, S, Vh = svd(A, full_matrices=False)  # noqa: N806
    if rtol is None:
        eps = backend.array_module(A._data).finfo(A._data.dtype).eps
        rtol = float(eps) * max(A.shape[-2], A.shape[-1])
    cut = amax(S, -1, keepdim=True).detach() * rtol
    keep = S > cut
    sinv = (1 / (S * keep + (~keep).to(S.dtype))) * keep.to(S.dtype)
    return matmul(Vh.mT * unsqueeze(sinv, -2), U.mT)


pinverse = pinv


def matrix_rank(A: Tensor, *, atol=None, rtol=None, hermitian: bool = False) -> Tensor:  # noqa: N803
    """The number of singular values above the tolerance (int64)."""
    from .decompositions import svdvals

    S = svdvals(A.detach())  # noqa: N806
    if rtol is None:
        eps = backend.array_module(A._data).finfo(A._data.dtype).eps
        rtol = 0.0 if atol else float(eps) * max(A.shape[-2:])
    tol = amax(S, -1, keepdim=True) * rtol
    if atol:
        tol = tol.clamp(min=atol)
    return sum(S > tol, -1)


def matrix_power(A: Tensor, n: int) -> Tensor:  # noqa: N803
    """``A`` multiplied by itself ``n`` times (the inverse's powers for negative n)."""
    _square(A, "matrix_power")
    if n < 0:
        return matrix_power(inv(A), -n)
    if n == 0:
        xp = backend.array_module(A._data)
        with backend.device_scope(A._device):
            e = xp.broadcast_to(xp.eye(A.shape[-1], dtype=A._data.dtype), A.shape).copy()
        return Tensor._wrap(e, A._device)
    out, base = None, A
    while n:
        if n & 1:
            out = base if out is None else matmul(out, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return out


def multi_dot(tensors) -> Tensor:
    out = tensors[0]
    for t in tensors[1:]:
        out = matmul(out, t)
    return out


def vector_norm(x: Tensor, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    """The vector ``ord``-norm over ``dim`` (all elements when None)."""
    from .products import _pnorm

    if dtype is not None:
        x = x.to(dtype)
    if x.is_complex():  # NOTE: the norm of complex values is that of their moduli
        x = x.abs()
    if dim is None and not keepdim:
        x, dim = x.reshape(-1), 0
    elif dim is None:
        dim = tuple(range(x.ndim))
    return _pnorm(x, ord, dim, keepdim)


def matrix_norm(A: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None):  # noqa: A002, N803
    """Matrix norms: 'fro', 'nuc', 2, -2, 1, -1, inf, -inf over the two ``dim`` dims."""
    if dtype is not None:
        A = A.to(dtype)  # noqa: N806
    r, c = (d % A.ndim for d in dim)
    inf = float("inf")
    if ord == "fro":
        from .pnorm import pnorm

        return pnorm(A.abs() if A.is_complex() else A, 2, (r, c), keepdim)
    if ord in ("nuc", 2, -2):
        from .decompositions import svdvals

        M = A.movedim((r, c), (-2, -1))  # noqa: N806
        S = svdvals(M)  # noqa: N806
        out = sum(S, -1) if ord == "nuc" else (amax(S, -1) if ord == 2 else amin(S, -1))
        if keepdim:
            out = unsqueeze(unsqueeze(out, min(r, c)), max(r, c))
        return out
    if ord in (1, -1, inf, -inf):
        along, across = (r, c) if ord in (1, -1) else (c, r)
        s = sum(_abs(A), along, True)
        out = amax(s, across, True) if ord in (1, inf) else amin(s, across, True)
        return out if keepdim else out.squeeze(max(r, c)).squeeze(min(r, c))
    raise ValueError(
        f"matrix_norm: ord must be 'fro', 'nuc', 2, -2, 1, -1, inf or -inf, got {ord!r}"
    )


def linalg_norm(A: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None):  # noqa: A002, N803
    """``torch.linalg.norm``: a vector norm, or a matrix norm for 2 dims and a matrix ord."""
    if dim is None and ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype)
    if dim is None:
        dim = (-2, -1) if A.ndim == 2 else (-1,)
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if len(dims) == 2:
        return matrix_norm(A, "fro" if ord is None else ord, dims, keepdim, dtype=dtype)
    return vector_norm(A, 2 if ord is None else ord, dims, keepdim, dtype=dtype)


# NOTE: the top level has PyTorch's older names; torch.linalg's are in manygrad.linalg
__all__ = ["cholesky", "det", "inverse", "logdet", "matrix_power", "pinverse", "slogdet"]
