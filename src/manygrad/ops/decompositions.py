"""SVD and Hermitian eigendecompositions with first and second derivatives, for real and
complex matrices (``mg.linalg.svd``, ``svdvals``, ``eigh``, ``eigvalsh``; ``mg.svd`` is
``torch.svd``'s older form; QR is in ``linalg_qr``). Batched over leading dims.

The gradients are PyTorch's: for complex inputs the conjugate Wirtinger convention, and a
loss that depends on the singular vectors' or eigenvectors' arbitrary phases is refused
with PyTorch's error."""

from __future__ import annotations

from .. import backend, return_types
from ..autograd import Function
from ..errors import AutogradError
from ..tensor import Tensor
from .elementwise import where
from .linalg import matmul
from .linalg_extra import _T, _gap_div, _matrices, _raw, _square
from .linalg_qr import qr  # noqa: F401  (mg.linalg.qr's old home)
from .shaping import diag_embed, diagonal

_SVD = return_types.linalg_svd
_SVDold = return_types.svd
_Eigh = return_types.linalg_eigh
_FIX = " Use a loss that does not depend on the phases, e.g. of abs(V) or of U diag(S) Vh."
_SVD_PHASE = (
    "svd_backward: The singular vectors in the complex case are specified up to multiplication "
    "by e^{i phi}. The specified loss function depends on this phase term, making it "
    "ill-defined." + _FIX
)
_EIGH_PHASE = (
    "linalg_eigh_backward: The eigenvectors in the complex case are specified up to "
    "multiplication by e^{i phi}. The specified loss function depends on this quantity, so it "
    "is ill-defined." + _FIX
)


def _safe_div(num: Tensor, den) -> Tensor:
    """``num / den`` with 0 where ``num`` is 0 (a term PyTorch leaves out when its output
    is unused)."""
    zero = num == 0
    return where(zero, 0.0, num / where(zero, 1.0, den))


def _svd_grad(U, S, Vh, gU, gS, gVh):  # noqa: N803
    """PyTorch's ``svd_backward`` for the reduced factors ``U (m, k)``, ``S``, ``Vh (k, n)``:
    ``U [skew(Uᴴ gU) S + S skew(Vh gVhᴴ)] / E Vh`` plus the diagonal and the parts of
    ``gU`` (``gVh``) outside the span of ``U`` (``Vhᴴ``)."""
    m, n = U.shape[-2], Vh.shape[-1]
    uhgu, vhgv = matmul(U.mH, gU), matmul(Vh, gVh.mH)
    uhgu, vhgv = uhgu - uhgu.mH, vhgv - vhgv.mH
    if U.is_complex():
        du, dv = diagonal(uhgu, 0, -2, -1).imag, diagonal(vhgv, 0, -2, -1).imag
        if bool(((du + dv).abs() > 1e-2 + 1e-2 * dv.abs()).any()):
            raise AutogradError(_SVD_PHASE)
    row, col = S.unsqueeze(-2), S.unsqueeze(-1)
    s2 = S * S
    inner = _gap_div(uhgu * row + col * vhgv, s2.unsqueeze(-2) - s2.unsqueeze(-1))
    inner = inner + diag_embed(gS)
    if U.is_complex():  # NOTE: the phase that U and V share: i Im(diag(Uᴴ gU)) / S
        inner = inner + diag_embed(_safe_div(diagonal(uhgu, 0, -2, -1), 2 * S))
    if m > n:
        gus = _safe_div(gU, row)
        return matmul(matmul(U, inner) + gus - matmul(U, matmul(U.mH, gus)), Vh)
    if m < n:
        sgv = _safe_div(gVh, col)
        return matmul(U, matmul(inner, Vh) + sgv - matmul(matmul(sgv, Vh.mH), Vh))
    return matmul(matmul(U, inner), Vh)


class SVD(Function):
    """``U``, ``S`` and ``Vhᵀ`` packed in one array (rows ``[0, m)``, ``m`` and ``m + 1..``),
    as wide as ``max(m, n)`` for the full factors (zero-padded) or ``k = min(m, n)``. The
    gradient is that of the reduced factors: the extra columns of full ones get none, as in
    PyTorch."""

    complex_ok = True

    def forward(self, a, full):
        xp = backend.array_module(a)
        U, S, Vh = xp.linalg.svd(a, full_matrices=full)  # noqa: N806
        m, n = a.shape[-2], a.shape[-1]
        k = S.shape[-1]
        out = xp.zeros(a.shape[:-2] + (m + n + 1, max(m, n) if full else k), a.dtype)
        out[..., :m, : U.shape[-1]] = U
        out[..., m, :k] = S
        out[..., m + 1 :, : Vh.shape[-2]] = _T(Vh)
        self.U, self.S, self.Vh, self.out = U[..., :k], S, Vh[..., :k, :], out
        return out

    def backward(self, g):
        m, k = self.U.shape[-2], self.S.shape[-1]
        gU, gS, gVh = g[..., :m, :k], g[..., m, :k].real, _T(g[..., m + 1 :, :k])  # noqa: N806
        return _raw(_svd_grad, self.U, self.S, self.Vh, gU, gS, gVh), None

    def backward_graph(self, g):
        m, k = self.U.shape[-2], self.S.shape[-1]
        out = self.saved_output(self.out)
        U, S, Vh = out[..., :m, :k], out[..., m, :k], out[..., m + 1 :, :k].mT  # noqa: N806
        return _svd_grad(U, S, Vh, g[..., :m, :k], g[..., m, :k], g[..., m + 1 :, :k].mT), None


def svd(A: Tensor, full_matrices: bool = True, *, driver=None):  # noqa: N803
    """``(U, S, Vh)`` with ``A = U diag(S) Vh`` (``linalg.svd``; S real and descending);
    gradients as PyTorch's (those of the first ``min(m, n)`` columns for full factors).

    Args:
        A: matrices (..., m, n), real or complex.
        full_matrices: U (m, m) and Vh (n, n) when True, else (m, k) and (k, n).
        driver: accepted for PyTorch's signature (its cuSOLVER choice); ignored.

    Example:
        >>> U, S, Vh = mg.linalg.svd(A, full_matrices=False)
    """
    _matrices(A, "linalg.svd")
    m, n = A.shape[-2], A.shape[-1]
    k, full = min(m, n), full_matrices and m != n
    out = SVD.apply(A, full)
    wu, wv = (m, n) if full else (k, k)
    S = out[..., m, :k]  # noqa: N806
    U, Vh = out[..., :m, :wu], out[..., m + 1 :, :wv].mT  # noqa: N806
    return _SVD((U, S.real if A.is_complex() else S, Vh))


def svd_legacy(input: Tensor, some: bool = True, compute_uv: bool = True):
    """``torch.svd``: ``(U, S, V)`` (V, not Vh), reduced when ``some``; without
    ``compute_uv``, U and V are zeros of shape (m, m) and (n, n), as in PyTorch."""
    if not compute_uv:
        from ..creation import zeros

        m, n, lead = input.shape[-2], input.shape[-1], tuple(input.shape[:-2])
        z = [zeros(*lead, d, d, dtype=input.dtype, device=input.device) for d in (m, n)]
        return _SVDold((z[0], svdvals(input), z[1]))
    U, S, Vh = svd(input, full_matrices=not some)  # noqa: N806
    return _SVDold((U, S, Vh.mH))


class SVDVals(Function):
    """The singular values; gradient ``U diag(gS) Vh``."""

    complex_ok = True

    def forward(self, a):
        U, S, Vh = backend.array_module(a).linalg.svd(a, full_matrices=False)  # noqa: N806
        self.a, self.U, self.Vh = a, U, Vh
        return S

    def backward(self, g):
        return (self.U * g[..., None, :]) @ self.Vh

    def backward_graph(self, g):
        U, _, Vh = svd(self.saved_input(0, self.a), full_matrices=False)  # noqa: N806
        return matmul(U * g.unsqueeze(-2), Vh)


def svdvals(A: Tensor, *, driver=None) -> Tensor:  # noqa: N803
    """The singular values (real, descending) of real or complex matrices."""
    _matrices(A, "linalg.svdvals")
    return SVDVals.apply(A)


def _eigh_grad(w, V, gw, gV):  # noqa: N803
    """PyTorch's: ``V (skew(Vᴴ gV) / E + diag(gw)) Vᴴ``, ``E_ij = w_j - w_i``."""
    vhgv = matmul(V.mH, gV)
    if V.is_complex() and bool((diagonal(vhgv, 0, -2, -1).imag.abs() > 1e-2).any()):
        raise AutogradError(_EIGH_PHASE)
    inner = _gap_div(0.5 * (vhgv - vhgv.mH), w.unsqueeze(-2) - w.unsqueeze(-1))
    return matmul(matmul(V, inner + diag_embed(gw)), V.mH)


class Eigh(Function):
    """Eigenvalues and eigenvectors packed as ``[w; V]`` (``n + 1`` rows, V's dtype)."""

    complex_ok = True

    def forward(self, a, uplo):
        xp = backend.array_module(a)
        w, V = xp.linalg.eigh(a, UPLO=uplo)  # noqa: N806
        self.w, self.V = w, V
        self.out = xp.concatenate([w[..., None, :].astype(V.dtype), V], -2)
        return self.out

    def backward(self, g):
        return _raw(_eigh_grad, self.w, self.V, g[..., 0, :].real, g[..., 1:, :]), None

    def backward_graph(self, g):
        out = self.saved_output(self.out)
        return _eigh_grad(out[..., 0, :], out[..., 1:, :], g[..., 0, :], g[..., 1:, :]), None


def eigh(input: Tensor, UPLO: str = "L"):  # noqa: N803
    """Eigenvalues (real, ascending) and orthonormal eigenvectors of real symmetric or
    complex Hermitian matrices (only the ``UPLO`` triangle is read)."""
    _square(input, "linalg.eigh")
    if UPLO not in ("L", "U"):
        raise ValueError(f"linalg.eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    out = Eigh.apply(input, UPLO)
    w = out[..., 0, :]
    return _Eigh((w.real if input.is_complex() else w, out[..., 1:, :]))


def eigvalsh(input: Tensor, UPLO: str = "L") -> Tensor:  # noqa: N803
    """The eigenvalues (real, ascending) of real symmetric or complex Hermitian matrices."""
    return eigh(input, UPLO).eigenvalues


__all__: list[str] = []  # NOTE: reached through mg.linalg (and mg.svd)
