"""LU with partial pivoting and what is built on it, Householder products and Cholesky
solves: ``mg.linalg.lu_factor``, ``lu``, ``lu_solve``, ``lu_factor_ex``, ``solve_ex``,
``householder_product``, ``cond``, ``tensorinv``, ``tensorsolve``, ``mg.lu_unpack``,
``mg.geqrf``, ``mg.cholesky_solve``, ``mg.cholesky_inverse``. Batched over leading dims.

The factorization is LAPACK's ``getrf`` (row swaps chosen by the largest magnitude in each
column, pivots stored 1-based as int32), written once for NumPy and CuPy arrays. Its
gradient is the formula for square inputs; the solves and unpacking are written with
differentiable ops, so they have first and second derivatives.
"""

from __future__ import annotations

import math

from .. import backend, return_types
from ..autograd import Function
from ..errors import ShapeError
from ..tensor import Tensor
from .arrange import tril, triu
from .linalg import matmul
from .linalg_extra import _T, LinAlgError, _singular_error, inv, solve

_LUFactor = return_types.linalg_lu_factor
_LUFactorEx = return_types.linalg_lu_factor_ex
_PLU = return_types.linalg_lu
_LUUnpack = return_types.lu_unpack
_SolveEx = return_types.linalg_solve_ex
_Geqrf = return_types.geqrf


def _matrices(A: Tensor, op: str) -> None:  # noqa: N803
    if not isinstance(A, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(A).__name__}")
    if A.ndim < 2:
        raise ShapeError(f"{op}: expected matrices (..., m, n), got shape {tuple(A.shape)}")
    if not (A.dtype.is_floating_point or A.is_complex()):
        raise TypeError(f"{op}: expected a floating-point or complex tensor, got {A.dtype}")


def _getrf(xp, a):
    """``(LU, pivots, info)`` of ``a`` (..., m, n): LAPACK's partial pivoting, unblocked."""
    shape = a.shape
    m, n = shape[-2], shape[-1]
    k = min(m, n)
    lu = a.reshape((math.prod(shape[:-2]), m, n)).copy()
    batch = lu.shape[0]
    piv = xp.zeros((batch, k), xp.int32)
    info = xp.zeros(batch, xp.int32)
    rows = xp.arange(batch)
    for j in range(k):
        p = xp.argmax(xp.abs(lu[:, j:, j]), axis=1) + j
        piv[:, j] = (p + 1).astype(xp.int32)
        top, best = lu[rows, j, :].copy(), lu[rows, p, :].copy()
        lu[rows, p, :] = top
        lu[rows, j, :] = best
        pivot = lu[:, j, j]
        zero = pivot == 0
        info = xp.where(zero & (info == 0), j + 1, info).astype(xp.int32)
        if j + 1 < m:
            lu[:, j + 1 :, j] /= xp.where(zero, 1, pivot)[:, None]
            if j + 1 < n:
                lu[:, j + 1 :, j + 1 :] -= lu[:, j + 1 :, j : j + 1] * lu[:, j : j + 1, j + 1 :]
    return lu.reshape(shape), piv.reshape(shape[:-2] + (k,)), info.reshape(shape[:-2])


def _H(a):  # noqa: N802
    return _T(a).conj()


def _perm(xp, piv, m: int):
    """The row order ``perm`` with ``A[perm] == L @ U`` from 1-based LAPACK pivots."""
    batch_shape = piv.shape[:-1]
    p2 = piv.reshape((-1, piv.shape[-1])).astype(xp.int64) - 1
    perm = xp.broadcast_to(xp.arange(m), (p2.shape[0], m)).copy()
    rows = xp.arange(p2.shape[0])
    for j in range(p2.shape[1]):
        a, b = perm[rows, j].copy(), perm[rows, p2[:, j]].copy()
        perm[rows, j] = b
        perm[rows, p2[:, j]] = a
    return perm.reshape(batch_shape + (m,))


def _perm_matrix(xp, perm, dtype):
    """``P`` with ``P[perm[i], i] = 1``, so that ``A = P @ L @ U``."""
    m = perm.shape[-1]
    eye = xp.eye(m, dtype=dtype)
    return xp.swapaxes(eye[perm], -1, -2)


def _unit_lower(lu_t: Tensor, k: int) -> Tensor:
    m = lu_t.shape[-2]
    from ..creation import eye

    one = eye(m, k, dtype=lu_t.dtype, device=lu_t.device)
    return tril(lu_t[..., :, :k], -1) + one


class LUFactor(Function):
    """The packed ``L + U - I`` of a precomputed factorization; the gradient for square
    inputs: ``P L⁻ᴴ (tril(Lᴴ gL, -1) + triu(gU Uᴴ)) U⁻ᴴ``."""

    def forward(self, a, lu, piv):
        self.lu, self.piv = lu, piv
        return lu

    def backward(self, g):
        xp = backend.array_module(g)
        lu = self.lu
        m, n = lu.shape[-2], lu.shape[-1]
        if m != n:
            raise NotImplementedError(
                f"lu_factor: the gradient is implemented for square matrices, got {m}x{n}"
            )
        eye = xp.eye(n, dtype=lu.dtype)
        L, U = xp.tril(lu, -1) + eye, xp.triu(lu)  # noqa: N806
        gL, gU = xp.tril(g, -1), xp.triu(g)  # noqa: N806
        phi = xp.tril(_H(L) @ gL, -1) + xp.triu(gU @ _H(U))
        x = xp.linalg.solve(_H(L), phi)  # L⁻ᴴ phi
        x = _H(xp.linalg.solve(U, _H(x)))  # X U⁻ᴴ = (U⁻¹ Xᴴ)ᴴ
        P = _perm_matrix(xp, _perm(xp, self.piv, n), lu.dtype)  # noqa: N806
        return P @ x, None, None

    def backward_graph(self, g):
        from ..creation import eye

        lu = self.saved_output(self.lu)
        n = lu.shape[-1]
        if lu.shape[-2] != n:
            return NotImplemented
        L, U = tril(lu, -1) + eye(n, dtype=lu.dtype, device=lu.device), triu(lu)  # noqa: N806
        phi = tril(matmul(L.mH, tril(g, -1)), -1) + triu(matmul(triu(g), U.mH))
        x = solve(U, solve(L.mH, phi).mH).mH
        xp = backend.array_module(self.lu)
        P = Tensor._wrap(_perm_matrix(xp, _perm(xp, self.piv, n), self.lu.dtype), lu._device)  # noqa: N806
        return matmul(P, x), None, None


def _lu_factor_tensor(A: Tensor, op: str):  # noqa: N803
    _matrices(A, op)
    xp = backend.array_module(A._data)
    with backend.device_scope(A._device):
        lu, piv, info = _getrf(xp, A._data)
    LU = LUFactor.apply(A, lu, piv)  # noqa: N806
    return LU, Tensor._wrap(piv, A._device), Tensor._wrap(info, A._device)


def lu_factor(A: Tensor, *, pivot: bool = True) -> tuple:  # noqa: N803
    """``(LU, pivots)``: ``L`` (unit lower, below the diagonal) and ``U`` packed in one
    matrix, and LAPACK's 1-based row swaps (int32), as ``torch.linalg.lu_factor``.

    Example:
        >>> LU, piv = mg.linalg.lu_factor(A); x = mg.linalg.lu_solve(LU, piv, b)
    """
    if not pivot:
        raise NotImplementedError("lu_factor: pivot=False is only available on CUDA in PyTorch")
    LU, piv, info = _lu_factor_tensor(A, "lu_factor")  # noqa: N806
    return _LUFactor((LU, piv))


def lu_factor_ex(A: Tensor, *, pivot: bool = True, check_errors: bool = False):  # noqa: N803
    """``lu_factor`` with ``info``: 0, or ``i`` when ``U[i-1, i-1]`` is exactly zero."""
    if not pivot:
        raise NotImplementedError("lu_factor_ex: pivot=False is only available on CUDA in PyTorch")
    LU, piv, info = _lu_factor_tensor(A, "lu_factor_ex")  # noqa: N806
    if check_errors and bool((info != 0).any()):
        raise RuntimeError(
            "lu_factor_ex: U is singular (a zero on its diagonal); see `info` for where"
        )
    return _LUFactorEx((LU, piv, info))


def lu_unpack(LU_data: Tensor, LU_pivots: Tensor, unpack_data: bool = True,  # noqa: N803
              unpack_pivots: bool = True) -> tuple:  # fmt: skip
    """``(P, L, U)`` from ``lu_factor``'s output, with ``A = P @ L @ U``."""
    m, n = LU_data.shape[-2], LU_data.shape[-1]
    k = min(m, n)
    empty = LU_data.new_zeros(0)
    if unpack_pivots:
        xp = backend.array_module(LU_pivots._data)
        with backend.device_scope(LU_pivots._device):
            P = _perm_matrix(xp, _perm(xp, LU_pivots._data, m), LU_data.dtype.np)  # noqa: N806
        P = Tensor._wrap(P, LU_data._device)  # noqa: N806
    else:
        P = empty  # noqa: N806
    if unpack_data:
        L, U = _unit_lower(LU_data, k), triu(LU_data[..., :k, :])  # noqa: N806
    else:
        L = U = empty  # noqa: N806
    return _LUUnpack((P, L, U))


def lu(A: Tensor, *, pivot: bool = True) -> tuple:  # noqa: N803
    """``(P, L, U)`` with ``A = P @ L @ U``: ``L`` unit lower (m x k), ``U`` upper (k x n)."""
    LU, piv = lu_factor(A, pivot=pivot)  # noqa: N806
    return _PLU(lu_unpack(LU, piv))


def _tri_solve(T: Tensor, B: Tensor, *, upper: bool, unit: bool = False) -> Tensor:  # noqa: N803
    from ..creation import eye

    if upper:
        T = triu(T, 1 if unit else 0)  # noqa: N806
    else:
        T = tril(T, -1 if unit else 0)  # noqa: N806
    if unit:
        T = T + eye(T.shape[-1], dtype=T.dtype, device=T.device)  # noqa: N806
    return solve(T, B)


def lu_solve(LU: Tensor, pivots: Tensor, B: Tensor, *, left: bool = True,  # noqa: N803
             adjoint: bool = False) -> Tensor:  # fmt: skip
    """``X`` with ``A @ X = B`` from ``lu_factor(A)`` (``X @ A = B`` when ``left=False``;
    ``Aᴴ`` in place of ``A`` when ``adjoint=True``)."""
    n = LU.shape[-1]
    if LU.shape[-2] != n:
        raise ShapeError(f"lu_solve: expected square LU factors, got {tuple(LU.shape)}")
    if B.ndim < 2:
        raise ShapeError(
            f"lu_solve: expected B of matrices (..., n, k), got shape {tuple(B.shape)}; for a "
            "vector use B.unsqueeze(-1)"
        )
    P, _, _ = lu_unpack(LU, pivots, unpack_data=False)  # noqa: N806
    if not left:  # X A = B  <=>  Aᴴ Xᴴ = Bᴴ
        return lu_solve(LU, pivots, B.mH, left=True, adjoint=not adjoint).mH
    if not adjoint:  # A = P L U: X = U⁻¹ L⁻¹ Pᵀ B
        y = _tri_solve(LU, matmul(P.mT, B), upper=False, unit=True)
        return _tri_solve(LU, y, upper=True)
    # Aᴴ = Uᴴ Lᴴ Pᵀ: X = P L⁻ᴴ U⁻ᴴ B
    y = _tri_solve(LU.mH, B, upper=False)
    return matmul(P, _tri_solve(LU.mH, y, upper=True, unit=True))


def solve_ex(A: Tensor, B: Tensor, *, left: bool = True, check_errors: bool = False):  # noqa: N803
    """``solve`` with ``info`` (0, or where LU found an exact zero pivot)."""
    _, _, info = _lu_factor_tensor(A.detach(), "solve_ex")
    if check_errors and bool((info != 0).any()):
        raise _singular_error(
            "torch.linalg.solve_ex", A._data, "Pass check_errors=False to get info."
        )
    if bool((info != 0).any()):  # NOTE: a singular system has no solution to give
        return _SolveEx((B.detach() * float("nan"), info))
    return _SolveEx((solve(A, B, left=left), info))


def _cholesky_product(L: Tensor, upper: bool) -> Tensor:  # noqa: N803
    """``A = L Lᴴ`` (``Uᴴ U``) from the factor's triangle. NOTE: the other triangle's values
    are not read, but its gradient is PyTorch's, the full ``(G + Gᴴ) L``."""
    other = tril(L, -1) if upper else triu(L, 1)
    T = L - other.detach()  # noqa: N806
    return matmul(T.mH, T) if upper else matmul(T, T.mH)


def cholesky_solve(input: Tensor, input2: Tensor, upper: bool = False) -> Tensor:
    """``X`` with ``A @ X = input`` for ``A = L Lᴴ`` (``Uᴴ U`` when ``upper``), from the
    factor ``input2`` (``L``, or ``U`` when ``upper``)."""
    return solve(_cholesky_product(input2, upper), input)


def cholesky_inverse(input: Tensor, upper: bool = False) -> Tensor:
    """``A⁻¹`` for ``A = L Lᴴ`` (``Uᴴ U`` when ``upper``), from the factor ``input``."""
    try:
        return inv(_cholesky_product(input, upper))
    except LinAlgError as e:  # NOTE: named as PyTorch names it
        raise LinAlgError(str(e).replace("linalg.inv:", "cholesky_inverse:", 1)) from None


def geqrf(input: Tensor) -> tuple:
    """LAPACK's QR in Householder form ``(a, tau)``: R on and above the diagonal of ``a``,
    the reflectors' vectors below it (not differentiable, as in PyTorch)."""
    _matrices(input, "geqrf")
    xp = backend.array_module(input._data)
    with backend.device_scope(input._device):
        h, tau = xp.linalg.qr(input._data, mode="raw")
        a = xp.ascontiguousarray(xp.swapaxes(h, -1, -2))
        tau = xp.ascontiguousarray(tau)
    dev = input._device
    return _Geqrf((Tensor._wrap(a, dev), Tensor._wrap(tau, dev)))


def householder_product(input: Tensor, tau: Tensor) -> Tensor:
    """The first ``n`` columns of ``H₁ H₂ ⋯ Hₖ``, ``Hᵢ = I - τᵢ vᵢ vᵢᴴ`` with ``vᵢ`` the
    ``i``-th column of ``input`` below the diagonal and 1 on it (LAPACK's ``orgqr``)."""
    from ..creation import eye

    _matrices(input, "householder_product")
    m, n = input.shape[-2], input.shape[-1]
    k = tau.shape[-1]
    if not m >= n >= k:
        raise ShapeError(
            f"householder_product: need m >= n >= k, got input {tuple(input.shape)} and tau "
            f"{tuple(tau.shape)}"
        )
    if tuple(tau.shape[:-1]) != tuple(input.shape[:-2]):
        raise ShapeError(
            f"householder_product: tau's batch dims {tuple(tau.shape[:-1])} must equal input's "
            f"{tuple(input.shape[:-2])}"
        )
    V = tril(input, -1) + eye(m, n, dtype=input.dtype, device=input.device)  # noqa: N806
    Q = eye(m, n, dtype=input.dtype, device=input.device).expand(input.shape)  # noqa: N806
    for i in range(k - 1, -1, -1):
        v = V[..., :, i : i + 1]
        Q = Q - tau[..., i : i + 1].unsqueeze(-1) * matmul(v, matmul(v.mH, Q))  # noqa: N806
    return Q


def cond(input: Tensor, p=None) -> Tensor:
    """The condition number ``‖A‖ ‖A⁻¹‖`` of ``A = input`` in the norm ``p`` (None or 2:
    the ratio of the largest to the smallest singular value)."""
    from .decompositions import svdvals
    from .linalg_extra import matrix_norm

    _matrices(input, "cond")
    if p in (None, 2, -2):
        s = svdvals(input)
        big, small = s[..., 0], s[..., -1]
        return big / small if p != -2 else small / big
    return matrix_norm(input, ord=p) * matrix_norm(inv(input), ord=p)


def tensorinv(input: Tensor, ind: int = 2) -> Tensor:
    """The inverse of ``input`` read as a linear map from its last dims to its first ``ind``
    dims (``tensordot(tensorinv(A), A, ind)`` is the identity)."""
    if ind <= 0:
        raise ValueError(f"tensorinv: expected a strictly positive integer for ind, got {ind}")
    out_dims, in_dims = tuple(input.shape[:ind]), tuple(input.shape[ind:])
    rows, cols = math.prod(out_dims), math.prod(in_dims)
    if rows != cols:
        raise ShapeError(
            f"tensorinv: expected prod(shape[:ind]) == prod(shape[ind:]), got {rows} and "
            f"{cols} for shape {tuple(input.shape)}"
        )
    return inv(input.reshape(rows, cols)).reshape(in_dims + out_dims)


def tensorsolve(input: Tensor, other: Tensor, dims=None) -> Tensor:
    """``X`` with ``tensordot(input, X, X.ndim) == other``."""
    if dims is not None:
        dims = [d % input.ndim for d in dims]
        rest = [d for d in range(input.ndim) if d not in dims]
        input = input.permute(*rest, *dims)
    x_shape = tuple(input.shape[other.ndim :])
    rows, cols = math.prod(tuple(input.shape[: other.ndim])), math.prod(x_shape)
    if rows != cols:
        raise ShapeError(
            f"tensorsolve: input's leading dims (size {rows}) must match its trailing dims "
            f"(size {cols}); input {tuple(input.shape)}, other {tuple(other.shape)}"
        )
    return solve(input.reshape(rows, cols), other.reshape(rows)).reshape(x_shape)


def orgqr(input: Tensor, input2: Tensor) -> Tensor:
    """``torch.orgqr``: ``linalg.householder_product`` under PyTorch's older name, with the
    reflectors in ``input`` and their scales ``tau`` in ``input2``."""
    return householder_product(input, input2)


__all__ = ["cholesky_inverse", "cholesky_solve", "geqrf", "lu_unpack", "orgqr"]
