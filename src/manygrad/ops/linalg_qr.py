"""QR factorizations with gradients: ``mg.linalg.qr`` in its three modes and the legacy
``mg.qr(A, some)`` / ``Tensor.qr``, for real and complex matrices, batched over leading dims.

The gradient is PyTorch's (for ``m >= n``: ``(gQ + Q copyltu(M)) R⁻ᴴ`` with
``M = R gRᴴ - gQᴴ Q``; for wide inputs the square part's, with ``gQ + Q R₂ gR₂ᴴ``, and
``Q gR₂`` for the rest). As in PyTorch, ``mode='r'`` (no Q) and ``mode='complete'`` of a
tall matrix are not differentiable: their backward raises.
"""

from __future__ import annotations

from .. import backend, return_types
from ..autograd import Function
from ..errors import AutogradError
from .arrange import tril
from .linalg import matmul
from .linalg_extra import _T, ArgumentError, _matrices, _raw, solve
from .shaping import diag_embed, diagonal

_QR = return_types.linalg_qr
_MODES = ("reduced", "complete", "r")
_NO_Q = ("The derivative of linalg.qr depends on Q, which is not computed when mode='r'. Please "
         "use linalg.qr(A, mode='reduced') if you are going to differentiate through linalg.qr.")  # fmt: skip
_TALL = ("The QR decomposition is not differentiable when mode='complete' and nrows > ncols. "
         "Use mode='reduced' to differentiate through linalg.qr.")  # fmt: skip


def _qr_tall_grad(Q, R, gQ, gR):  # noqa: N803
    """``m >= n``: ``(gQ + Q G) R⁻ᴴ``, ``G`` the Hermitian matrix with ``M``'s strict lower
    triangle and the real part of its diagonal (R's diagonal is real)."""
    M = matmul(R, gR.mH) - matmul(gQ.mH, Q)  # noqa: N806
    low, d = tril(M, -1), diagonal(M, 0, -2, -1)
    G = low + low.mH + diag_embed(d.real if M.is_complex() else d)  # noqa: N806
    b = gQ + matmul(Q, G)
    return solve(R, b.mH).mH


def _qr_grad(Q, R, gQ, gR):  # noqa: N803
    from .movement import cat

    m, n = Q.shape[-2], R.shape[-1]
    if m >= n:
        return _qr_tall_grad(Q, R, gQ, gR)
    # A = [A₁ | A₂] with A₁ = Q R₁ square and A₂ = Q R₂: R₂ = Qᴴ A₂ moves with Q too
    R1, R2, gR1, gR2 = R[..., :m], R[..., m:], gR[..., :m], gR[..., m:]  # noqa: N806
    g1 = _qr_tall_grad(Q, R1, gQ + matmul(Q, matmul(R2, gR2.mH)), gR1)
    return cat([g1, matmul(Q, gR2)], -1)


class QR(Function):
    """``Q`` over ``Rᵀ`` in one array (``m + n`` rows); R alone for ``mode='r'``."""

    complex_ok = True

    def forward(self, a, mode):
        xp = backend.array_module(a)
        self.mode, self.m, self.n = mode, a.shape[-2], a.shape[-1]
        if mode == "r":
            return xp.linalg.qr(a, mode="r")
        self.Q, self.R = xp.linalg.qr(a, mode=mode)
        self.out = xp.concatenate([self.Q, _T(self.R)], -2)
        return self.out

    def _check(self):
        if self.mode == "r":
            raise AutogradError(_NO_Q)
        if self.mode == "complete" and self.m > self.n:
            raise AutogradError(_TALL)

    def backward(self, g):
        self._check()
        return _raw(_qr_grad, self.Q, self.R, g[..., : self.m, :], _T(g[..., self.m :, :])), None

    def backward_graph(self, g):
        self._check()
        out, m = self.saved_output(self.out), self.m
        return _qr_grad(out[..., :m, :], out[..., m:, :].mT, g[..., :m, :], g[..., m:, :].mT), None


def qr(A, mode: str = "reduced"):  # noqa: N803
    """``(Q, R)`` with ``A = Q R``, Q with orthonormal columns and R upper-triangular with a
    real diagonal.

    Args:
        A: matrices (..., m, n), real or complex.
        mode: ``'reduced'`` (default): Q (m, k), R (k, n), ``k = min(m, n)``;
            ``'complete'``: Q (m, m), R (m, n); ``'r'``: R (k, n) only, Q an empty tensor.

    Example:
        >>> Q, R = mg.linalg.qr(A, mode="complete")
    """
    _matrices(A, "linalg.qr")
    if mode not in _MODES:
        raise ArgumentError(
            f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), "
            "'r', or 'complete'"
        )
    out = QR.apply(A, mode)
    if mode == "r":
        xp = backend.array_module(A._data)
        with backend.device_scope(A._device):
            empty = xp.zeros(0, A._data.dtype)
        return _QR((type(A)._wrap(empty, A._device), out))
    m = A.shape[-2]
    return _QR((out[..., :m, :], out[..., m:, :].mT))


def qr_legacy(input, some: bool = True):  # noqa: A002
    """``torch.qr`` / ``Tensor.qr``: ``linalg.qr`` with mode ``'reduced'`` when ``some``,
    else ``'complete'``."""
    return return_types.qr(qr(input, "reduced" if some else "complete"))


__all__: list[str] = []  # NOTE: reached through mg.linalg.qr and mg.qr
