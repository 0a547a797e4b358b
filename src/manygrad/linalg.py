"""``manygrad.linalg``: PyTorch's ``torch.linalg`` functions.

Example:
    >>> import manygrad as mg
    >>> mg.linalg.solve(mg.eye(2) * 2, mg.ones(2))
"""

from collections import namedtuple

from .ops.decompositions import eigh, eigvalsh, qr, svd, svdvals
from .ops.linalg import matmul
from .ops.linalg_eig import eig, eigvals
from .ops.linalg_extra import (
    cholesky,
    det,
    inv,
    matrix_norm,
    matrix_power,
    matrix_rank,
    multi_dot,
    pinv,
    slogdet,
    solve,
    vector_norm,
)
from .ops.linalg_extra import linalg_norm as norm
from .ops.linalg_lu import (
    cond,
    householder_product,
    lu,
    lu_factor,
    lu_factor_ex,
    lu_solve,
    solve_ex,
    tensorinv,
    tensorsolve,
)
from .ops.misc import matrix_exp
from .ops.products import cross as _cross
from .ops.reduce import sum as _sum


def cross(input, other, *, dim: int = -1):  # noqa: A002
    """The 3-d cross product along ``dim`` (default the last)."""
    return _cross(input, other, dim)


def vecdot(x, y, *, dim: int = -1):
    """Dot products of vectors along ``dim``."""
    return _sum(x * y, dim)


def solve_triangular(A, B, *, upper: bool, left: bool = True, unitriangular: bool = False):  # noqa: N803
    """``X`` with ``A @ X = B`` (or ``X @ A = B``) for triangular ``A`` (only its upper or
    lower triangle is read)."""
    from .ops.arrange import tril, triu
    from .ops.shaping import diag_embed, diagonal

    T = triu(A) if upper else tril(A)  # noqa: N806
    if unitriangular:
        T = T - diag_embed(diagonal(T, 0, -2, -1)) + diag_embed(diagonal(T, 0, -2, -1) * 0 + 1)  # noqa: N806
    return solve(T, B, left=left)


_Lstsq = namedtuple("lstsq", ["solution", "residuals", "rank", "singular_values"])


def lstsq(A, B, rcond=None, *, driver=None):  # noqa: N803
    """The least-squares solution of ``A @ X = B`` (through the pseudo-inverse), with
    ``rank``; ``residuals`` and ``singular_values`` are empty, as for PyTorch's default
    CPU driver."""
    vec = B.ndim == A.ndim - 1
    X = matmul(pinv(A, rtol=rcond), B.unsqueeze(-1) if vec else B)  # noqa: N806
    X = X.squeeze(-1) if vec else X  # noqa: N806
    empty = X.detach().reshape(-1)[:0]
    return _Lstsq(X, empty, matrix_rank(A.detach()), empty)


def vander(x, N=None):  # noqa: N803
    """Powers ``x**0 .. x**(N-1)`` of the last dim (increasing)."""
    from .ops.movement import stack

    n = x.shape[-1] if N is None else N
    return stack([x**k if k else x * 0 + 1 for k in range(n)], -1)


def diagonal(A, *, offset: int = 0, dim1: int = -2, dim2: int = -1):  # noqa: N803
    from .ops.shaping import diagonal as _diagonal

    return _diagonal(A, offset, dim1, dim2)


def inv_ex(A, *, check_errors: bool = False):  # noqa: N803
    return inv(A), None


def cholesky_ex(A, *, upper: bool = False, check_errors: bool = False):  # noqa: N803
    return cholesky(A, upper=upper), None


__all__ = [
    "cholesky", "cholesky_ex", "cross", "det", "eigh", "eigvalsh", "inv", "inv_ex", "matmul",
    "matrix_norm", "matrix_power", "matrix_rank", "multi_dot", "norm", "pinv", "qr", "slogdet",
    "solve", "svd", "svdvals", "vecdot", "vector_norm", "solve_triangular", "lstsq",
    "matrix_exp", "vander", "diagonal", "cond", "householder_product", "lu", "lu_factor",
    "lu_factor_ex", "lu_solve", "solve_ex", "tensorinv", "tensorsolve", "eig", "eigvals",
]  # fmt: skip

from .autograd import autocast_fp32_public  # noqa: E402

# float32 under autocast on GPUs, as PyTorch's linalg norms
autocast_fp32_public(globals(), ("vector_norm", "matrix_norm", "norm"))
