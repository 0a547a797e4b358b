"""Matrix decompositions and their relatives with gradients: inv, det, slogdet, solve,
cholesky, qr, svd, eigh, pinv, matrix norms (``mg.linalg`` re-exports them under
PyTorch's ``torch.linalg`` names). Batched over leading dims."""

from __future__ import annotations

from collections import namedtuple

from .. import backend
from ..autograd import Function
from ..errors import ShapeError
from ..tensor import Tensor
from .elementwise import abs as _abs
from .elementwise import sqrt, where
from .linalg import matmul
from .movement import unsqueeze
from .reduce import amax, amin, sum

_SlogDet = namedtuple("slogdet", ["sign", "logabsdet"])
_QR = namedtuple("qr", ["Q", "R"])
_SVD = namedtuple("svd", ["U", "S", "Vh"])
_SVDold = namedtuple("svd", ["U", "S", "V"])
_Eigh = namedtuple("eigh", ["eigenvalues", "eigenvectors"])


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


class QR(Function):
    def forward(self, a):
        xp = backend.array_module(a)
        self.Q, self.R = xp.linalg.qr(a, mode="reduced")
        self.out = xp.concatenate([self.Q, _T(self.R)], -2)  # NOTE: split again by qr()
        return self.out

    def backward(self, g):
        xp = backend.array_module(g)
        Q, R = self.Q, self.R  # noqa: N806
        k, m = Q.shape[-1], Q.shape[-2]
        gQ, gR = g[..., :m, :], _T(g[..., m:, :])  # noqa: N806
        m = R @ _T(gR) - _T(gQ) @ Q
        low = xp.tril(m, -1)
        copyltu = low + _T(low) + xp.eye(k, dtype=m.dtype) * m
        b = gQ + Q @ copyltu
        return _T(xp.linalg.solve(R, _T(b)))

    def backward_graph(self, g):
        from .arrange import tril
        from .shaping import diag_embed, diagonal

        m = self.Q.shape[-2]
        out = self.saved_output(self.out)
        Q, R = out[..., :m, :], out[..., m:, :].mT  # noqa: N806
        gQ, gR = g[..., :m, :], g[..., m:, :].mT  # noqa: N806
        mm_ = matmul(R, gR.mT) - matmul(gQ.mT, Q)
        low = tril(mm_, -1)
        copyltu = low + low.mT + diag_embed(diagonal(mm_, 0, -2, -1))
        b = gQ + matmul(Q, copyltu)
        return solve(R, b.mT).mT


def qr(A: Tensor, mode: str = "reduced"):  # noqa: N803
    """``(Q, R)`` with orthonormal columns in Q and upper-triangular R (``mode="reduced"``;
    gradients for tall or square inputs)."""
    if mode != "reduced":
        raise ValueError(f"qr: only mode='reduced' is supported, got {mode!r}")
    if A.ndim < 2:
        raise ShapeError(f"qr: expected matrices (.., m, n), got shape {tuple(A.shape)}")
    if A.shape[-2] < A.shape[-1]:
        xp = backend.array_module(A._data)
        with backend.device_scope(A._device):
            q, r = xp.linalg.qr(A._data, mode="reduced")
        return _QR(Tensor._wrap(q, A._device), Tensor._wrap(r, A._device))
    both = QR.apply(A)
    m = A.shape[-2]
    return _QR(both[..., :m, :], both[..., m:, :].mT)


class SVD(Function):
    def forward(self, a):
        xp = backend.array_module(a)
        U, S, Vh = xp.linalg.svd(a, full_matrices=False)  # noqa: N806
        self.U, self.S, self.V = U, S, _T(Vh)
        self.k = S.shape[-1]
        m, n = a.shape[-2], a.shape[-1]
        out = xp.zeros(a.shape[:-2] + (m + n + 1, self.k), a.dtype)
        out[..., :m, :] = U
        out[..., m, :] = S
        out[..., m + 1 :, :] = self.V
        self.out = out
        return out

    def backward(self, g):
        xp = backend.array_module(g)
        U, S, V = self.U, self.S, self.V  # noqa: N806
        m = U.shape[-2]
        gU, gS, gV = g[..., :m, :], g[..., m, :], g[..., m + 1 :, :]  # noqa: N806
        s2 = S[..., None, :] ** 2 - S[..., :, None] ** 2  # s_j^2 - s_i^2
        eye = xp.eye(self.k, dtype=bool)
        with backend.quiet_float_errors():
            F = xp.where(eye, 0, 1 / xp.where(eye, 1, s2))  # noqa: N806
        Sm = S[..., None, :]  # noqa: N806  scales columns
        ut_gu = _T(U) @ gU
        vt_gv = _T(V) @ gV
        inner = (F * (ut_gu - _T(ut_gu))) * Sm + _T(Sm) * (F * (vt_gv - _T(vt_gv)))
        inner = inner + xp.eye(self.k, dtype=g.dtype) * gS[..., None, :]
        ga = U @ inner @ _T(V)
        if m > self.k:
            ga = ga + (gU - U @ ut_gu) / Sm @ _T(V)
        if V.shape[-2] > self.k:
            ga = ga + U @ _T((gV - V @ vt_gv) / Sm)
        return ga

    def backward_graph(self, g):
        from .shaping import diag_embed

        m = self.U.shape[-2]
        out = self.saved_output(self.out)
        U, S, V = out[..., :m, :], out[..., m, :], out[..., m + 1 :, :]  # noqa: N806
        gU, gS, gV = g[..., :m, :], g[..., m, :], g[..., m + 1 :, :]  # noqa: N806
        F = _off_inverse(S.unsqueeze(-2) ** 2 - S.unsqueeze(-1) ** 2)  # noqa: N806
        Sm = S.unsqueeze(-2)  # noqa: N806
        ut_gu, vt_gv = matmul(U.mT, gU), matmul(V.mT, gV)
        inner = (F * (ut_gu - ut_gu.mT)) * Sm + Sm.mT * (F * (vt_gv - vt_gv.mT)) + diag_embed(gS)
        ga = matmul(matmul(U, inner), V.mT)
        if m > self.k:
            ga = ga + matmul((gU - matmul(U, ut_gu)) / Sm, V.mT)
        if V.shape[-2] > self.k:
            ga = ga + matmul(U, ((gV - matmul(V, vt_gv)) / Sm).mT)
        return ga


def svd(A: Tensor, full_matrices: bool = True):  # noqa: N803
    """``(U, S, Vh)`` with ``A = U diag(S) Vh`` (``linalg.svd``); gradients for the reduced
    form (``full_matrices=False``, or square inputs)."""
    if A.ndim < 2:
        raise ShapeError(f"svd: expected matrices (.., m, n), got shape {tuple(A.shape)}")
    m, n = A.shape[-2], A.shape[-1]
    if full_matrices and m != n:
        xp = backend.array_module(A._data)
        with backend.device_scope(A._device):
            u, s, vh = xp.linalg.svd(A._data, full_matrices=True)
        return _SVD(*(Tensor._wrap(a, A._device) for a in (u, s, vh)))
    out = SVD.apply(A)
    return _SVD(out[..., :m, :], out[..., m, :], out[..., m + 1 :, :].mT)


def svd_legacy(A: Tensor, some: bool = True, compute_uv: bool = True):  # noqa: N803
    """``torch.svd``: ``(U, S, V)`` (V, not Vh), reduced when ``some``."""
    U, S, Vh = svd(A, full_matrices=not some)  # noqa: N806
    return _SVDold(U, S, Vh.mT)


def svdvals(A: Tensor) -> Tensor:  # noqa: N803
    """The singular values, in descending order."""
    return svd(A, full_matrices=False).S


class Eigh(Function):
    def forward(self, a, uplo):
        xp = backend.array_module(a)
        w, V = xp.linalg.eigh(a, UPLO=uplo)  # noqa: N806
        self.w, self.V = w, V
        self.out = xp.concatenate([w[..., None, :], V], -2)
        return self.out

    def backward(self, g):
        xp = backend.array_module(g)
        w, V = self.w, self.V  # noqa: N806
        gw, gV = g[..., 0, :], g[..., 1:, :]  # noqa: N806
        n = w.shape[-1]
        eye = xp.eye(n, dtype=bool)
        d = w[..., None, :] - w[..., :, None]  # w_j - w_i
        with backend.quiet_float_errors():
            F = xp.where(eye, 0, 1 / xp.where(eye, 1, d))  # noqa: N806
        inner = F * (_T(V) @ gV) + xp.eye(n, dtype=g.dtype) * gw[..., None, :]
        return V @ inner @ _T(V), None

    def backward_graph(self, g):
        from .shaping import diag_embed

        out = self.saved_output(self.out)
        w, V = out[..., 0, :], out[..., 1:, :]  # noqa: N806
        gw, gV = g[..., 0, :], g[..., 1:, :]  # noqa: N806
        F = _off_inverse(w.unsqueeze(-2) - w.unsqueeze(-1))  # noqa: N806
        inner = F * matmul(V.mT, gV) + diag_embed(gw)
        return matmul(matmul(V, inner), V.mT), None


def eigh(A: Tensor, UPLO: str = "L"):  # noqa: N803
    """Eigenvalues (ascending) and orthonormal eigenvectors of symmetric matrices."""
    _square(A, "eigh")
    out = Eigh.apply(A, UPLO)
    return _Eigh(out[..., 0, :], out[..., 1:, :])


def eigvalsh(A: Tensor, UPLO: str = "L") -> Tensor:  # noqa: N803
    return eigh(A, UPLO).eigenvalues


def pinv(A: Tensor, *, rtol=None, hermitian: bool = False) -> Tensor:  # noqa: N803
    """The Moore-Penrose pseudo-inverse, from the SVD (singular values below
    ``rtol * max(S)`` count as zero; rtol defaults to ``eps * max(m, n)``)."""
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
        return sqrt(sum(A * A, (r, c), keepdim))
    if ord in ("nuc", 2, -2):
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
