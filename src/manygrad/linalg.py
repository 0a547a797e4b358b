"""``manygrad.linalg``: PyTorch's ``torch.linalg`` functions.

Example:
    >>> import manygrad as mg
    >>> mg.linalg.solve(mg.eye(2) * 2, mg.ones(2))
"""

from .ops.linalg import matmul
from .ops.linalg_extra import (
    cholesky,
    det,
    eigh,
    eigvalsh,
    inv,
    matrix_norm,
    matrix_power,
    matrix_rank,
    multi_dot,
    pinv,
    qr,
    slogdet,
    solve,
    svd,
    svdvals,
    vector_norm,
)
from .ops.linalg_extra import linalg_norm as norm
from .ops.products import cross as _cross
from .ops.reduce import sum as _sum


def cross(input, other, *, dim: int = -1):  # noqa: A002
    """The 3-d cross product along ``dim`` (default the last)."""
    return _cross(input, other, dim)


def vecdot(x, y, *, dim: int = -1):
    """Dot products of vectors along ``dim``."""
    return _sum(x * y, dim)


def inv_ex(A, *, check_errors: bool = False):  # noqa: N803
    return inv(A), None


def cholesky_ex(A, *, upper: bool = False, check_errors: bool = False):  # noqa: N803
    return cholesky(A, upper=upper), None


__all__ = [
    "cholesky", "cholesky_ex", "cross", "det", "eigh", "eigvalsh", "inv", "inv_ex", "matmul",
    "matrix_norm", "matrix_power", "matrix_rank", "multi_dot", "norm", "pinv", "qr", "slogdet",
    "solve", "svd", "svdvals", "vecdot", "vector_norm",
]  # fmt: skip
