"""``manygrad.linalg``: PyTorch's ``torch.linalg`` functions.

Example:
    >>> import manygrad as mg
    >>> mg.linalg.solve(mg.eye(2) * 2, mg.ones(2))
"""

from . import return_types
from .ops.decompositions import eigh, eigvalsh, svd, svdvals
from .ops.linalg import matmul
from .ops.linalg_eig import eig, eigvals
from .ops.linalg_extra import (
    LinAlgError,
    cholesky,
    inv,
    matrix_power,
    multi_dot,
    solve,
)
from .ops.linalg_extra import linalg_det as det
from .ops.linalg_extra import linalg_slogdet as slogdet
from .ops.linalg_ldl import ldl_factor, ldl_factor_ex, ldl_solve
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
from .ops.linalg_norms import linalg_norm as norm
from .ops.linalg_norms import matrix_norm, vector_norm
from .ops.linalg_pinv import lstsq, matrix_rank, pinv
from .ops.linalg_qr import qr
from .ops.misc import matrix_exp
from .ops.products import cross as _cross
from .ops.reduce import sum as _sum


def cross(input, other, *, dim: int = -1):  # noqa: A002
    """The 3-d cross product along ``dim`` (default the last)."""
    return _cross(input, other, dim)


def vecdot(x, y, *, dim: int = -1):
    """Dot products of vectors along ``dim``."""
    return _sum(x * y, dim)


def solve_triangular(input, B, *, upper: bool, left: bool = True, unitriangular: bool = False):  # noqa: N803
    """``X`` with ``input @ X = B`` (or ``X @ input = B``) for triangular ``input`` (only its
    upper or lower triangle is read)."""
    from .ops.arrange import tril, triu
    from .ops.shaping import diag_embed, diagonal

    T = triu(input) if upper else tril(input)  # noqa: N806
    if unitriangular:
        T = T - diag_embed(diagonal(T, 0, -2, -1)) + diag_embed(diagonal(T, 0, -2, -1) * 0 + 1)  # noqa: N806
    try:
        return solve(T, B, left=left)
    except LinAlgError:  # NOTE: a zero on the diagonal gives inf/nan in PyTorch, no error
        return _substitute(T, B, upper, left)


def _substitute(T, B, upper: bool, left: bool):  # noqa: N803
    """Back (forward) substitution on raw arrays, for a triangular ``T`` with zeros on its
    diagonal (values only: the gradient of an inf/nan solution is not tracked)."""
    import warnings

    from . import backend
    from .ops.misc import broadcast_shapes
    from .tensor import Tensor

    if not left:  # X T = B  <=>  Tᵀ Xᵀ = Bᵀ
        return _substitute(T.mT, B.mT, not upper, True).mT
    xp = backend.array_module(T._data)
    n = T.shape[-1]
    with backend.device_scope(T._device):
        lead = tuple(broadcast_shapes(T.shape[:-2], B.shape[:-2]))
        t = xp.broadcast_to(T._data, lead + (n, n))
        x = xp.broadcast_to(B._data, lead + tuple(B.shape[-2:])).astype(T._data.dtype)
        with warnings.catch_warnings():  # NOTE: the divisions by zero are meant
            warnings.simplefilter("ignore", RuntimeWarning)
            for i in range(n - 1, -1, -1) if upper else range(n):
                done = slice(i + 1, n) if upper else slice(0, i)
                acc = x[..., i, :] - (t[..., i : i + 1, done] @ x[..., done, :])[..., 0, :]
                x[..., i, :] = acc / t[..., i, i, None]
    return Tensor._wrap(x, T._device)


def vander(x, N=None):  # noqa: N803
    """Powers ``x**0 .. x**(N-1)`` of the last dim (increasing)."""
    from .ops.movement import stack

    n = x.shape[-1] if N is None else N
    return stack([x**k if k else x * 0 + 1 for k in range(n)], -1)


def diagonal(A, *, offset: int = 0, dim1: int = -2, dim2: int = -1):  # noqa: N803
    from .ops.shaping import diagonal as _diagonal

    return _diagonal(A, offset, dim1, dim2)


_InvEx = return_types.linalg_inv_ex
_EX_FIX = "Pass check_errors=False to get info without raising."
_CholeskyEx = return_types.linalg_cholesky_ex


def inv_ex(A, *, check_errors: bool = False):  # noqa: N803
    """``(inverse, info)``: ``info`` 0, or ``i`` where LU meets a zero ``U[i-1, i-1]`` (that
    matrix's inverse is NaN); raises ``LinAlgError`` only with ``check_errors``."""
    from . import backend
    from .creation import eye as _eye
    from .ops.elementwise import where
    from .ops.linalg_extra import _singular_error, _square
    from .ops.linalg_lu import _getrf
    from .tensor import Tensor

    _square(A, "linalg.inv_ex")
    xp = backend.array_module(A._data)
    with backend.device_scope(A._device):
        info = Tensor._wrap(_getrf(xp, A._data)[2], A._device)
    if check_errors and bool((info != 0).any()):
        raise _singular_error("linalg.inv_ex", A._data, _EX_FIX)
    try:
        return _InvEx((inv(A), info))
    except LinAlgError:  # NOTE: the batch's regular matrices still get their inverse
        bad = (info != 0)[..., None, None]
        eye = _eye(A.shape[-1], dtype=A.dtype, device=A.device)
        return _InvEx((where(bad, float("nan"), inv(where(bad, eye, A))), info))


def cholesky_ex(input, *, upper: bool = False, check_errors: bool = False):
    """``(L, info)``: ``info`` 0, or the order of the first leading minor that is not
    positive-definite (``L`` then holds the columns done before it, as LAPACK's); raises
    ``LinAlgError`` only with ``check_errors``."""
    from . import backend
    from .ops.linalg_extra import _not_pd_error, _potf2, _square
    from .tensor import Tensor

    _square(input, "linalg.cholesky_ex")
    xp = backend.array_module(input._data)
    try:
        L = cholesky(input)  # noqa: N806
        with backend.device_scope(input._device):
            bad = ~(xp.diagonal(L._data, 0, -2, -1).real > 0)  # NOTE: CuPy does not raise
            first = bad.argmax(-1) + 1 if input.shape[-1] else 0
            info = xp.where(bad.any(-1), first, 0).astype(xp.int32)
    except LinAlgError:
        with backend.device_scope(input._device):
            low, info = _potf2(xp, input._data)
        L = Tensor._wrap(low, input._device)  # noqa: N806
    info = Tensor._wrap(info, input._device)
    if check_errors and bool((info != 0).any()):
        raise _not_pd_error("linalg.cholesky_ex", input._data, _EX_FIX)
    return _CholeskyEx((L.mH if upper else L, info))


__all__ = [
    "cholesky", "cholesky_ex", "cross", "det", "eigh", "eigvalsh", "inv", "inv_ex", "matmul",
    "matrix_norm", "matrix_power", "matrix_rank", "multi_dot", "norm", "pinv", "qr", "slogdet",
    "solve", "svd", "svdvals", "vecdot", "vector_norm", "solve_triangular", "lstsq",
    "matrix_exp", "vander", "diagonal", "cond", "householder_product", "lu", "lu_factor",
    "lu_factor_ex", "lu_solve", "solve_ex", "tensorinv", "tensorsolve", "eig", "eigvals",
    "LinAlgError", "ldl_factor", "ldl_factor_ex", "ldl_solve",
]  # fmt: skip

from .autograd import autocast_fp32_public  # noqa: E402

# float32 under autocast on GPUs, as PyTorch's linalg norms
autocast_fp32_public(globals(), ("vector_norm", "matrix_norm", "norm"))

from . import _out  # noqa: E402

# PyTorch's out= keyword on the torch.linalg functions that take it
_out.add_out(__import__(__name__, fromlist=["_"]), _out.LINALG, "linalg")
