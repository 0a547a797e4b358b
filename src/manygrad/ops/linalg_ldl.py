"""LDLᴴ factorization of symmetric and Hermitian matrices, with symmetric pivoting, and its
solve: ``mg.linalg.ldl_factor``, ``ldl_factor_ex``, ``ldl_solve``. Batched over leading dims.

The factorization is LAPACK's Bunch-Kaufman ``sytf2`` / ``hetf2`` (the lower triangle; 1x1
and 2x2 pivot blocks, alpha = (1 + sqrt 17) / 8), written once for NumPy and CuPy arrays and
vectorized over the batch: at column ``j`` a matrix either starts a block there or is in
the second column of the 2x2 block it started at ``j - 1``. ``LD`` and ``pivots`` are then
LAPACK's, as PyTorch returns them: 1-based int32 pivots, ``k`` for a 1x1 block whose row
and column swapped with ``k``, ``-k`` on both columns of a 2x2 block whose second index
swapped with ``k``. No gradients, as in PyTorch.
"""

from __future__ import annotations

import math

from .. import backend, return_types
from ..autograd import Function, is_grad_enabled
from ..errors import AutogradError, DTypeError, ShapeError
from ..tensor import Tensor
from .linalg_extra import LinAlgError
from .misc import broadcast_shapes

_LDLFactor = return_types.linalg_ldl_factor
_LDLFactorEx = return_types.linalg_ldl_factor_ex
_ALPHA = (1 + 17**0.5) / 8  # NOTE: Bunch-Kaufman's bound on element growth


def _abs1(xp, z):
    """LAPACK's pivot size: ``|re| + |im|`` for complex values (``|x|`` for real)."""
    return xp.abs(z.real) + xp.abs(z.imag) if z.dtype.kind == "c" else xp.abs(z)


def _sym_full(xp, w, herm: bool):
    """The whole symmetric (Hermitian) matrix from its lower triangle ``w``."""
    n = w.shape[-1]
    up = xp.swapaxes(w, -1, -2)
    lower = xp.arange(n)[:, None] >= xp.arange(n)[None, :]
    return xp.where(lower, w, up.conj() if herm else up)


def _sytf2(xp, a, herm: bool):
    """``(LD, pivots, info)`` of ``a`` (..., n, n), from its lower triangle."""
    shape, n = a.shape, a.shape[-1]
    herm = herm and a.dtype.kind == "c"
    batch = math.prod(shape[:-2])
    w = xp.tril(a.reshape((batch, n, n)))
    ar, rows = xp.arange(n), xp.arange(batch)
    if herm:  # NOTE: hetrf reads only the real part of the diagonal
        w[:, ar, ar] = w[:, ar, ar].real
    piv = xp.zeros((batch, n), xp.int32)
    info = xp.zeros(batch, xp.int32)
    inside = xp.zeros(batch, bool)  # column j is the second one of a 2x2 block
    lower = ar[:, None] >= ar[None, :]

    def diag_size(z):  # NOTE: hetrf sizes a diagonal pivot by its real part alone
        return xp.abs(z.real) if herm else _abs1(xp, z)

    for j in range(n):
        act = ~inside
        absakk = diag_size(w[:, j, j])
        if j + 1 < n:
            col = _abs1(xp, w[:, j + 1 :, j])
            imax = col.argmax(axis=1) + j + 1
            colmax = col.max(axis=1)
        else:
            imax, colmax = xp.full(batch, j), xp.zeros(batch, absakk.dtype)
        singular = act & ((xp.maximum(absakk, colmax) == 0) | xp.isnan(absakk))
        # the largest off-diagonal entry of row imax in the trailing matrix
        across = xp.where(ar < imax[:, None], w[rows, imax, :], w[rows, :, imax])
        off = (ar >= j) & (ar != imax[:, None])
        rowmax = xp.where(off, _abs1(xp, across), 0).max(axis=1)
        safe = xp.where(rowmax > 0, rowmax, 1)
        keep = (absakk >= _ALPHA * colmax) | (absakk >= _ALPHA * colmax * (colmax / safe))
        swap1 = ~keep & (diag_size(w[rows, imax, imax]) >= _ALPHA * rowmax)
        two = act & ~singular & ~keep & ~swap1
        kp = xp.where(act & ~singular & (swap1 | two), imax, j)
        kk = j + two.astype(kp.dtype)
        # swap indices kk and kp of the trailing matrix (a symmetric permutation)
        perm = xp.broadcast_to(ar, (batch, n)).copy()
        perm[rows, kk], perm[rows, kp] = kp, kk
        full = _sym_full(xp, w, herm)
        moved = full[rows[:, None, None], perm[:, :, None], perm[:, None, :]]
        trail = lower & (ar[:, None] >= j) & (ar[None, :] >= j)
        w = xp.where(trail, moved, w)
        one = act & ~two
        if j + 1 < n:
            _update_1x1(xp, w, j, one & ~singular, herm)
        if j + 2 < n:
            _update_2x2(xp, w, j, two, herm)
        kp1 = (kp + 1).astype(xp.int32)
        piv[:, j] = xp.where(two, -kp1, xp.where(act, kp1, piv[:, j]))
        if j + 1 < n:
            piv[:, j + 1] = xp.where(two, -kp1, piv[:, j + 1])
        info = xp.where(singular & (info == 0), j + 1, info).astype(xp.int32)
        inside = two
    return w.reshape(shape), piv.reshape(shape[:-1]), info.reshape(shape[:-2])


def _update_1x1(xp, w, j: int, on, herm: bool) -> None:
    """``A22 -= x d⁻¹ xᴴ`` and ``x /= d`` below a 1x1 pivot ``d`` (where ``on``)."""
    d = w[:, j, j].real if herm else w[:, j, j]
    r = 1 / xp.where(on, d, 1)
    x = w[:, j + 1 :, j]
    xt = x.conj() if herm else x
    upd = x[:, :, None] * (-r[:, None] * xt)[:, None, :]
    keep = on[:, None, None] & xp.tri(x.shape[1], dtype=bool)
    w[:, j + 1 :, j + 1 :] = xp.where(keep, w[:, j + 1 :, j + 1 :] + upd, w[:, j + 1 :, j + 1 :])
    w[:, j + 1 :, j] = xp.where(on[:, None], x * r[:, None], x)
    if herm:
        m = x.shape[1]
        w[:, j + 1 + xp.arange(m), j + 1 + xp.arange(m)] = w[
            :, j + 1 + xp.arange(m), j + 1 + xp.arange(m)
        ].real


def _update_2x2(xp, w, j: int, on, herm: bool) -> None:
    """The rank-2 update below a 2x2 pivot block at ``j, j + 1`` (where ``on``)."""
    a_k, a_k1 = w[:, j + 2 :, j], w[:, j + 2 :, j + 1]
    d21 = xp.where(on, w[:, j + 1, j], 1)
    if herm:
        mag = xp.abs(d21)
        d11, d22 = w[:, j + 1, j + 1].real / mag, w[:, j, j].real / mag
        tt = 1 / xp.where(on, d11 * d22 - 1, 1)
        unit, dd = d21 / mag, tt / mag
        wk = dd[:, None] * (d11[:, None] * a_k - unit[:, None] * a_k1)
        wkp1 = dd[:, None] * (d22[:, None] * a_k1 - unit.conj()[:, None] * a_k)
        ck, ck1 = wk.conj(), wkp1.conj()
    else:
        d11, d22 = w[:, j + 1, j + 1] / d21, w[:, j, j] / d21
        t = 1 / xp.where(on, d11 * d22 - 1, 1)
        d21 = t / d21
        wk = d21[:, None] * (d11[:, None] * a_k - a_k1)
        wkp1 = d21[:, None] * (d22[:, None] * a_k1 - a_k)
        ck, ck1 = wk, wkp1
    sub = w[:, j + 2 :, j + 2 :]
    new = sub - a_k[:, :, None] * ck[:, None, :] - a_k1[:, :, None] * ck1[:, None, :]
    keep = on[:, None, None] & xp.tri(sub.shape[1], dtype=bool)
    w[:, j + 2 :, j + 2 :] = xp.where(keep, new, sub)
    if herm:
        m = sub.shape[1]
        idx = j + 2 + xp.arange(m)
        w[:, idx, idx] = w[:, idx, idx].real
    w[:, j + 2 :, j] = xp.where(on[:, None], wk, a_k)
    w[:, j + 2 :, j + 1] = xp.where(on[:, None], wkp1, a_k1)


class _NotDifferentiable(Function):
    """A precomputed result whose backward refuses, as PyTorch's for ``op``."""

    complex_ok = True

    def forward(self, a, out, op):
        self.op = op
        return out

    def backward(self, g):
        raise AutogradError(
            f"{self.op}: the derivative is not implemented (as in PyTorch); detach the "
            "inputs, or use a differentiable op (e.g. linalg.solve) on the path to the loss"
        )


def _result(x: Tensor, out, op: str) -> Tensor:
    if x.requires_grad and is_grad_enabled():
        return _NotDifferentiable.apply(x, out, op)
    return Tensor._wrap(out, x._device)


def _check_square(A: Tensor, op: str) -> None:  # noqa: N803
    if not isinstance(A, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(A).__name__}")
    if A.ndim < 2:
        raise ShapeError(f"{op}: expected matrices (..., n, n), got shape {tuple(A.shape)}")
    if A.shape[-1] != A.shape[-2]:
        raise ShapeError(f"{op}: expected square matrices (..., n, n), got shape {tuple(A.shape)}")
    if A.dtype.name not in ("float32", "float64", "complex64", "complex128"):
        raise DTypeError(f"{op}: expected a float32/64 or complex64/128 tensor, got {A.dtype}")


def _factor(A: Tensor, hermitian: bool, op: str):  # noqa: N803
    _check_square(A, op)
    xp = backend.array_module(A._data)
    with backend.device_scope(A._device):
        ld, piv, info = _sytf2(xp, A._data, hermitian)
    dev = A._device
    return _result(A, ld, op), Tensor._wrap(piv, dev), Tensor._wrap(info, dev)


def ldl_factor_ex(input: Tensor, *, hermitian: bool = False, check_errors: bool = False):
    """``ldl_factor`` with ``info``: 0, or ``i`` when ``D[i-1, i-1]`` is exactly zero (the
    factorization is complete, but ``D`` is singular)."""
    LD, piv, info = _factor(input, hermitian, "linalg.ldl_factor_ex")  # noqa: N806
    if check_errors:
        _raise_singular(info, "linalg.ldl_factor_ex")
    return _LDLFactorEx((LD, piv, info))


def ldl_factor(input: Tensor, *, hermitian: bool = False) -> tuple:
    """``(LD, pivots)``: the factors of ``A = P L D Lᴴ Pᵀ`` (``Lᵀ`` when ``hermitian`` is False)
    in LAPACK's compact form, read from the lower triangle of the symmetric (or, with
    ``hermitian=True``, Hermitian) ``A = input``; raises ``LinAlgError`` where ``D`` is
    singular.

    Args:
        input: symmetric or Hermitian matrices (..., n, n).
        hermitian: take complex ``input`` as Hermitian (default False: complex symmetric).

    Example:
        >>> LD, piv = mg.linalg.ldl_factor(A); x = mg.linalg.ldl_solve(LD, piv, B)
    """
    LD, piv, info = _factor(input, hermitian, "linalg.ldl_factor")  # noqa: N806
    _raise_singular(info, "linalg.ldl_factor")
    return _LDLFactor((LD, piv))


def _raise_singular(info: Tensor, op: str) -> None:
    if bool((info != 0).any()):
        from .linalg_extra import _first_failure

        where, k = _first_failure(info._data)
        raise LinAlgError(
            f"{op}: {where}The factorization has been completed, but the block diagonal "
            f"matrix D is exactly singular (D[{k - 1}, {k - 1}] is zero); use ldl_factor_ex "
            "to get info without raising"
        )


def _unpack(xp, ld, piv, herm: bool):
    """``(perm, L, D)`` with ``A[perm][:, perm] = L D Lᴴ`` (``Lᵀ``), ``L`` unit lower
    triangular, ``D`` block diagonal, from the compact ``LD`` and ``pivots``: the swaps of
    later steps are applied to the columns of L found before them (as LAPACK's syconv)."""
    batch, n = ld.shape[0], ld.shape[-1]
    ar, rows = xp.arange(n), xp.arange(batch)
    p = piv.astype(xp.int64)
    low = xp.tril(ld, -1)
    dmat = xp.zeros_like(ld)
    dmat[:, ar, ar] = ld[:, ar, ar].real if herm else ld[:, ar, ar]
    perm = xp.broadcast_to(ar, (batch, n)).copy()
    inside = xp.zeros(batch, bool)
    for j in range(n):
        two = ~inside & (p[:, j] < 0)
        act = ~inside
        kk = j + two.astype(xp.int64)
        kp = xp.where(act, xp.abs(p[:, j]) - 1, kk)
        if j + 1 < n:  # a 2x2 block's off-diagonal entry is D's, not L's
            off = xp.where(two, low[:, j + 1, j], 0)
            dmat[:, j + 1, j] = off
            dmat[:, j, j + 1] = off.conj() if herm else off
            low[:, j + 1, j] = xp.where(two, 0, low[:, j + 1, j])
        before = ar < j
        r_kk, r_kp = low[rows, kk, :], low[rows, kp, :]
        low[rows, kk, :] = xp.where(before, r_kp, r_kk)
        low[rows, kp, :] = xp.where(before, r_kk, r_kp)
        perm[rows, kk], perm[rows, kp] = perm[rows, kp], perm[rows, kk]
        inside = two
    return perm, low + xp.eye(n, dtype=ld.dtype), dmat


def ldl_solve(LD: Tensor, pivots: Tensor, B: Tensor, *,  # noqa: N803
              hermitian: bool = False) -> Tensor:  # fmt: skip
    """``X`` with ``A @ X = B`` from ``ldl_factor(A)`` (give the same ``hermitian``); batch
    dims broadcast.

    Example:
        >>> X = mg.linalg.ldl_solve(*mg.linalg.ldl_factor(A), B)
    """
    op = "linalg.ldl_solve"
    _check_square(LD, op)
    if not isinstance(B, Tensor) or B.ndim < 2:
        got = tuple(B.shape) if isinstance(B, Tensor) else type(B).__name__
        raise ShapeError(f"{op}: expected B of matrices (..., n, k), got {got}; use B[..., None]")
    if B.dtype is not LD.dtype:
        raise DTypeError(f"{op}: expected B of LD's dtype {LD.dtype}, got {B.dtype}")
    if pivots.dtype.is_floating_point or pivots.is_complex() or pivots.dtype.name == "bool":
        raise DTypeError(f"{op}: expected integer pivots (from ldl_factor), got {pivots.dtype}")
    if tuple(pivots.shape) != tuple(LD.shape[:-1]):
        raise ShapeError(
            f"{op}: expected pivots of shape LD.shape[:-1] = {tuple(LD.shape[:-1])}, got "
            f"{tuple(pivots.shape)}; pass the pivots ldl_factor gave with LD"
        )
    n = LD.shape[-1]
    if B.shape[-2] != n:
        raise ShapeError(f"{op}: LD is {n} by {n} but B is {B.shape[-2]} by {B.shape[-1]}")
    xp = backend.array_module(LD._data)
    with backend.device_scope(LD._device):
        lead = tuple(broadcast_shapes(LD.shape[:-2], B.shape[:-2]))
        batch = math.prod(lead)
        ld = xp.broadcast_to(LD._data, lead + (n, n)).reshape((batch, n, n))
        piv = xp.broadcast_to(pivots._data, lead + (n,)).reshape((batch, n))
        b = xp.broadcast_to(B._data, lead + tuple(B.shape[-2:])).reshape((batch, *B.shape[-2:]))
        herm = hermitian and ld.dtype.kind == "c"
        perm, low, dmat = _unpack(xp, ld, piv, herm)
        lt = xp.swapaxes(low, -1, -2)
        lt = lt.conj() if herm else lt
        y = xp.linalg.solve(low, xp.take_along_axis(b, perm[:, :, None], 1))
        y = xp.linalg.solve(lt, xp.linalg.solve(dmat, y))
        back = xp.empty_like(perm)
        back[xp.arange(perm.shape[0])[:, None], perm] = xp.arange(n)
        x = xp.take_along_axis(y, back[:, :, None], 1).reshape(lead + tuple(B.shape[-2:]))
    if (LD.requires_grad or B.requires_grad) and is_grad_enabled():
        return _NotDifferentiable.apply(LD if LD.requires_grad else B, x, op)
    return Tensor._wrap(x, LD._device)
