"""QR, SVD and symmetric eigendecompositions with first and second derivatives
(``mg.linalg.qr``, ``svd``, ``svdvals``, ``eigh``, ``eigvalsh``; ``mg.svd`` is
``torch.svd``'s older form). Batched over leading dims."""

from __future__ import annotations

from collections import namedtuple

from .. import backend
from ..autograd import Function
from ..errors import ShapeError
from ..tensor import Tensor
from .linalg import matmul
from .linalg_extra import _T, _off_inverse, _square, solve

_QR = namedtuple("qr", ["Q", "R"])
_SVD = namedtuple("svd", ["U", "S", "Vh"])
_SVDold = namedtuple("svd", ["U", "S", "V"])
_Eigh = namedtuple("eigh", ["eigenvalues", "eigenvectors"])


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


__all__: list[str] = []  # NOTE: reached through mg.linalg (and mg.svd)
