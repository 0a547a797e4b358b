"""PyTorch's deprecated top-level linalg forms, still in torch 2.13: ``mg.lu``,
``mg.lu_solve`` and ``mg.triangular_solve`` (also ``Tensor.lu`` / ``lu_solve`` /
``triangular_solve``), written on ``linalg.lu_factor_ex``, ``linalg.lu_solve`` and
``linalg.solve_triangular`` (so their gradients are those ops')."""

from __future__ import annotations

import warnings

from .. import return_types
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from .linalg_lu import _matrices, lu_factor_ex
from .linalg_lu import lu_solve as _lu_solve
from .misc import broadcast_shapes

_LUWithInfo = return_types._lu_with_info
_TriangularSolve = return_types.triangular_solve
_warned: set[str] = set()


def _deprecated(name: str, instead: str) -> None:
    """PyTorch's deprecation warning, once per process (as its TORCH_WARN_ONCE)."""
    if name not in _warned:
        _warned.add(name)
        warnings.warn(f"{name} is deprecated in favor of {instead} and will be removed in a "
                      "future PyTorch release.", UserWarning, stacklevel=3)  # fmt: skip


def lu(A: Tensor, pivot: bool = True, get_infos: bool = False):  # noqa: N803
    """``(LU, pivots)`` as ``linalg.lu_factor`` (``(LU, pivots, infos)`` with
    ``get_infos=True``); deprecated in PyTorch in favour of ``linalg.lu_factor``.

    Args:
        A: matrices (..., m, n).
        pivot: partial pivoting (False is refused: PyTorch has it on CUDA only).
        get_infos: also return ``infos``: 0, or ``i`` where ``U[i-1, i-1]`` is zero.

    Example:
        >>> LU, piv = mg.lu(A); x = mg.lu_solve(b, LU, piv)
    """
    _deprecated("torch.lu", "torch.linalg.lu_factor / torch.linalg.lu_factor_ex")
    LU, piv, info = lu_factor_ex(A, pivot=pivot)  # noqa: N806
    return _LUWithInfo((LU, piv, info)) if get_infos else (LU, piv)


def lu_solve(input: Tensor, LU_data: Tensor, LU_pivots: Tensor) -> Tensor:  # noqa: N803
    """``x`` with ``A @ x = b`` from ``mg.lu(A)``; deprecated in PyTorch in favour of
    ``linalg.lu_solve(LU, pivots, B)`` (note its order of arguments).

    Example:
        >>> x = mg.lu_solve(b, *mg.lu(A))  # b: (..., n, k)
    """
    if not isinstance(input, Tensor) or input.ndim < 2:
        got = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
        raise ShapeError(
            f"lu_solve: expected b of matrices (..., n, k), got {got}; for a vector use "
            "b.unsqueeze(-1)"
        )
    _deprecated("torch.lu_solve", "torch.linalg.lu_solve (note its reversed arguments)")
    return _lu_solve(LU_data, LU_pivots, input)


def triangular_solve(input: Tensor, A: Tensor, upper: bool = True,  # noqa: N803
                     transpose: bool = False, unitriangular: bool = False):  # fmt: skip
    """``(solution, cloned_coefficient)``: ``X`` with ``A @ X = b`` (``Aᵀ @ X = b`` when
    ``transpose``) for triangular ``A`` (only its ``upper`` or lower triangle is read; its
    diagonal taken as ones when ``unitriangular``), and ``A`` broadcast and copied;
    deprecated in PyTorch in favour of ``linalg.solve_triangular``.

    Example:
        >>> X, _ = mg.triangular_solve(b, mg.triu(A))
    """
    from ..linalg import solve_triangular

    _deprecated("torch.triangular_solve", "torch.linalg.solve_triangular (reversed arguments)")
    _matrices(A, "triangular_solve")
    if not isinstance(input, Tensor) or input.ndim < 2:
        got = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
        raise ShapeError(
            f"triangular_solve: expected b of matrices (..., n, k), got {got}; for a vector "
            "use b.unsqueeze(-1)"
        )
    n = A.shape[-1]
    if A.shape[-2] != n:
        raise ShapeError(f"triangular_solve: A must be square (..., n, n), got {tuple(A.shape)}")
    if input.shape[-2] != n:
        raise ShapeError(
            f"triangular_solve: A is {n} by {n} but b is {input.shape[-2]} by {input.shape[-1]}; "
            "b needs A's number of rows"
        )
    if input.dtype is not A.dtype:
        raise DTypeError(f"triangular_solve: expected b and A of one dtype, got {input.dtype} and "
                         f"{A.dtype}; cast one with .to(other.dtype)")  # fmt: skip
    lead = tuple(broadcast_shapes(input.shape[:-2], A.shape[:-2]))
    A_b, b_b = A.expand(*lead, n, n), input.expand(*lead, *input.shape[-2:])  # noqa: N806
    T = A_b.mT if transpose else A_b  # noqa: N806
    up = upper != transpose
    X = solve_triangular(T, b_b, upper=up, unitriangular=unitriangular)  # noqa: N806
    return _TriangularSolve((X, A_b.clone()))
