"""The pseudo-inverse, the numerical rank and least squares: ``mg.linalg.pinv``,
``matrix_rank`` and ``lstsq``, for real and complex matrices, batched over leading dims.

``pinv``'s gradient is PyTorch's (Golub and Pereyra's formula for the derivative of the
pseudo-inverse), which stays finite where singular values repeat. ``lstsq`` solves through
the pseudo-inverse on every device (CuPy has no LAPACK least-squares drivers), so its
solution and gradients are those of ``pinv(A) @ B``; ``driver`` picks which of ``rank``,
``residuals`` and ``singular_values`` are filled in, as LAPACK's drivers do in PyTorch.
"""

from __future__ import annotations

from .. import backend, return_types
from ..autograd import Function
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from .linalg import matmul
from .linalg_extra import ArgumentError, _matrices, _raw
from .misc import broadcast_shapes

_Lstsq = return_types.linalg_lstsq
_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


def _raw_tol(x):
    return x._data if isinstance(x, Tensor) else x


def _cutoff(xp, big, shape, dtype, atol, rtol):
    """PyTorch's tolerance ``max(atol, rtol * big)``: rtol defaults to ``eps * max(m, n)``,
    or to 0 where ``atol`` is given and positive."""
    eps = float(xp.finfo(dtype).eps) * max(shape[-2], shape[-1])
    atol, rtol = _raw_tol(atol), _raw_tol(rtol)
    if rtol is None:
        rtol = eps if atol is None else xp.where(xp.asarray(atol) > 0, 0.0, eps)
    tol = big * (rtol[..., None] if getattr(rtol, "ndim", 0) else rtol)
    if atol is not None:
        tol = xp.maximum(tol, atol[..., None] if getattr(atol, "ndim", 0) else atol)
    return tol


def _spectrum(xp, a, hermitian: bool, vectors: bool):
    """``(U, s, Vh)`` with ``a = U diag(s) Vh`` (SVD), or for Hermitian ``a`` its
    eigendecomposition (``Vh = Uᴴ``, ``s`` real but maybe negative); ``s`` alone when not
    ``vectors``."""
    if hermitian:
        if not vectors:
            return xp.linalg.eigvalsh(a)
        w, v = xp.linalg.eigh(a)
        return v, w, xp.conj(xp.swapaxes(v, -1, -2))
    if not vectors:
        return xp.linalg.svd(a, compute_uv=False)
    return xp.linalg.svd(a, full_matrices=False)


def _pinv_grad(A: Tensor, P: Tensor, g: Tensor) -> Tensor:  # noqa: N803
    """``-Pᴴ G Pᴴ + (I - A P) Gᴴ P Pᴴ + Pᴴ P Gᴴ (I - P A)`` for ``P = pinv(A)``."""
    Ph, gh = P.mH, g.mH  # noqa: N806
    first = -matmul(matmul(Ph, g), Ph)
    left = matmul(gh - matmul(A, matmul(P, gh)), matmul(P, Ph))
    right = matmul(matmul(Ph, P), gh - matmul(matmul(gh, P), A))
    return first + left + right


class PInv(Function):
    complex_ok = True

    def forward(self, a, atol, rtol, hermitian):
        xp = backend.array_module(a)
        u, s, vh = _spectrum(xp, a, hermitian, True)
        big = xp.abs(s).max(-1, keepdims=True) if s.shape[-1] else xp.abs(s)
        keep = xp.abs(s) > _cutoff(xp, big, a.shape, a.dtype, atol, rtol)
        with backend.quiet_float_errors():
            sinv = xp.where(keep, 1 / xp.where(keep, s, 1), 0).astype(a.dtype)
        self.a = a
        self.p = (xp.conj(xp.swapaxes(vh, -1, -2)) * sinv[..., None, :]) @ xp.conj(
            xp.swapaxes(u, -1, -2)
        )
        return self.p

    def backward(self, g):
        return _raw(_pinv_grad, self.a, self.p, g), None, None, None

    def backward_graph(self, g):
        A, P = self.saved_input(0, self.a), self.saved_output(self.p)  # noqa: N806
        return _pinv_grad(A, P, g), None, None, None


def pinv(input: Tensor, rcond=None, hermitian: bool = False, *, atol=None, rtol=None) -> Tensor:
    """The Moore-Penrose pseudo-inverse, from the SVD (the eigendecomposition when
    ``hermitian``; then only the lower triangle is read).

    Args:
        input: matrices (..., m, n), real or complex.
        rcond: PyTorch's older name for ``rtol``.
        hermitian: input is Hermitian (real symmetric).
        atol, rtol: singular values at or below ``max(atol, rtol * largest)`` count as zero;
            ``rtol`` defaults to ``eps * max(m, n)`` (0 when a positive ``atol`` is given).

    Example:
        >>> X = mg.linalg.pinv(A)  # (n, m) for A of shape (m, n)
    """
    _matrices(input, "linalg.pinv")
    if rcond is not None:
        if rtol is not None:
            raise TypeError("linalg.pinv: pass rtol or its older name rcond, not both")
        rtol = rcond
    if hermitian and input.shape[-1] != input.shape[-2]:
        raise ShapeError(
            f"linalg.pinv: hermitian=True needs square matrices, got shape {tuple(input.shape)}"
        )
    return PInv.apply(input, atol, rtol, hermitian)


def matrix_rank(input: Tensor, tol=None, hermitian: bool = False, *, atol=None, rtol=None):
    """The number of singular values (eigenvalue moduli when ``hermitian``) above
    ``max(atol, rtol * largest)`` (int64); ``tol`` is PyTorch's older name for ``atol``."""
    _matrices(input, "linalg.matrix_rank")
    if tol is not None:
        if atol is not None or rtol is not None:
            raise TypeError("linalg.matrix_rank: pass tol, or atol/rtol, not both")
        atol, rtol = tol, 0.0
    if hermitian and input.shape[-1] != input.shape[-2]:
        raise ShapeError(
            f"linalg.matrix_rank: hermitian=True needs square matrices, got {tuple(input.shape)}"
        )
    xp = backend.array_module(input._data)
    with backend.device_scope(input._device):
        s = xp.abs(_spectrum(xp, input._data, hermitian, False))
        big = s.max(-1, keepdims=True) if s.shape[-1] else s[..., :1]
        rank = (s > _cutoff(xp, big, input.shape, input._data.dtype, atol, rtol)).sum(-1)
        # NOTE: NumPy sums one matrix's flags to a scalar: an array, as CuPy gives
        return Tensor._wrap(xp.asarray(rank, dtype=xp.int64), input._device)


def _lstsq_shapes(A: Tensor, B: Tensor):  # noqa: N803
    """``(vector case, batch shape)``, as PyTorch reads them: B of one dim fewer than A is a
    (batch of) vector(s) when its shape is A's without the last dim. NOTE: otherwise such a
    B's batch dims are still read as its shape without the last dim, a PyTorch quirk kept
    for equal results: A (1, 3, 3) with B (3, 2) gives a solution of shape (3, 3, 2)."""
    diff = A.ndim - B.ndim
    if not 0 <= diff <= 1:
        raise ShapeError(
            f"linalg.lstsq: B needs as many dims as A or one fewer, got A {tuple(A.shape)} "
            f"and B {tuple(B.shape)}"
        )
    vec = diff == 1 and tuple(B.shape) == tuple(A.shape[:-1])
    rows = B.shape[-1] if vec else B.shape[-2]
    if rows != A.shape[-2]:
        raise ShapeError(
            f"linalg.lstsq: A has {A.shape[-2]} rows but B has {rows}; B must be (..., m, k) "
            f"or (..., m) for A of shape (..., m, n), got A {tuple(A.shape)}, B {tuple(B.shape)}"
        )
    lead = broadcast_shapes(tuple(A.shape[:-2]), tuple(B.shape[: B.ndim - 2 + diff]))
    return vec, tuple(lead)


def lstsq(input: Tensor, b: Tensor, rcond=None, *, driver=None):
    """``(solution, residuals, rank, singular_values)`` of ``min ‖A X - B‖`` for
    ``A = input``, ``B = b``: the minimum-norm solution on every device.

    Args:
        input: matrices A (..., m, n); b: B (..., m, k), or (..., m) for vectors.
        rcond: singular values at or below ``rcond * largest`` count as zero (default
            ``eps * max(m, n)``).
        driver: PyTorch's LAPACK driver name, which picks the outputs that are filled in:
            ``'gelsy'`` (default) rank; ``'gels'`` residuals; ``'gelsd'``/``'gelss'`` rank,
            singular values and residuals. Residuals (``‖A X - B‖²`` per column) need
            ``m > n`` and, except for ``'gels'``, full-rank matrices; otherwise empty.

    Example:
        >>> X = mg.linalg.lstsq(A, B).solution
    """
    from .reduce import sum as _sum

    _matrices(input, "linalg.lstsq")
    if not isinstance(b, Tensor):
        raise TypeError(f"linalg.lstsq: expected b to be a Tensor, got {type(b).__name__}")
    if b.dtype is not input.dtype:
        raise DTypeError(
            f"linalg.lstsq: expected input and b of one dtype, got {input.dtype} and {b.dtype}; "
            "cast one with .to(other.dtype)"
        )
    if driver is not None and driver not in _DRIVERS:
        raise ArgumentError(
            "torch.linalg.lstsq: parameter `driver` should be one of (gels, gelsy, gelsd, "
            f"gelss), got {driver!r}"
        )
    driver = driver or "gelsy"
    vec, lead = _lstsq_shapes(input, b)
    m, n = input.shape[-2], input.shape[-1]
    B2 = b.unsqueeze(-1) if vec else b  # noqa: N806
    B2 = B2.expand(*lead, *B2.shape[-2:])  # noqa: N806
    X = matmul(pinv(input, rtol=rcond), B2)  # noqa: N806
    xp = backend.array_module(input._data)
    with backend.device_scope(input._device):
        empty = Tensor._wrap(xp.zeros(0, xp.finfo(input._data.dtype).dtype), input._device)
        rank = Tensor._wrap(xp.zeros(0, xp.int64), input._device)
    sv = empty
    if driver != "gels":
        rank = matrix_rank(input, rtol=rcond)
    if driver in ("gelsd", "gelss"):
        from .decompositions import svdvals

        sv = svdvals(input.detach())
    residuals = empty
    # NOTE: gelsd and gelss give residuals only when every matrix has full rank (a sync)
    if m > n and (driver == "gels" or (driver != "gelsy" and bool((rank == n).all()))):
        r = matmul(input, X) - B2
        sq = r.real * r.real + r.imag * r.imag if r.is_complex() else r * r
        residuals = _sum(sq, -2)
    return _Lstsq((X.squeeze(-1) if vec else X, residuals, rank, sv))


__all__: list[str] = []  # NOTE: reached through mg.linalg (and mg.pinverse)
