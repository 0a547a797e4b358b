"""The vector and matrix norms of ``torch.linalg`` (``vector_norm``, ``matrix_norm``,
``norm``), real or complex (a complex input's norms are real)."""

from __future__ import annotations

from ..errors import DTypeError
from ..tensor import Tensor
from .elementwise import abs as _abs
from .movement import unsqueeze
from .reduce import _need_float, amax, amin, sum


def vector_norm(input: Tensor, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    """The vector ``ord``-norm over ``dim`` (all elements when None)."""
    from .products import _pnorm

    _need_float("linalg.vector_norm", input)
    if dtype is not None:
        input = input.to(_norm_dtype(input, dtype))
    if input.is_complex():  # NOTE: the norm of complex values is that of their moduli
        input = input.abs()
    if dim is not None and not isinstance(dim, int) and len(dim) == 0:
        dim = None  # NOTE: dim=() reduces over every dim, as PyTorch's
    if ord in (float("inf"), -float("inf")) and not input._data.size:
        _empty_max_norm(input, ord, dim)
    if dim is None and not keepdim:
        input, dim = input.reshape(-1), 0
    elif dim is None:
        dim = tuple(range(input.ndim))
    return _pnorm(input, ord, dim, keepdim)


_SCALAR_NAMES = {"float64": "Double", "float32": "Float", "float16": "Half",
                 "bfloat16": "BFloat16", "complex64": "ComplexFloat",
                 "complex128": "ComplexDouble"}  # fmt: skip


def _norm_dtype(x: Tensor, dtype):
    """``dtype`` for a norm of ``x``, refused as PyTorch refuses it: complex for complex
    inputs only, and no narrower than ``x``'s (float64 -> float32 would lose digits)."""
    from .. import dtypes as D

    dt = D.from_any(dtype)
    name = lambda t: _SCALAR_NAMES.get(t.name, t.name)  # noqa: E731
    if x.is_complex() and not dt.is_complex:
        raise DTypeError(f"linalg.vector_norm: dtype should be complex for complex inputs, but "
                         f"got {name(dt)}")  # fmt: skip
    if not x.is_complex() and dt.is_complex:
        raise DTypeError(f"linalg.vector_norm: dtype should be real for real inputs, but got "
                         f"{name(dt)}")  # fmt: skip
    if D.promote_types(x.dtype, dt) is not dt:
        raise DTypeError(f"linalg.vector_norm: the dtype of the input ({name(x.dtype)}) should be "
                         f"convertible without narrowing to the specified dtype ({name(dt)})")  # fmt: skip
    return dt


def _empty_max_norm(x: Tensor, ord, dim) -> None:  # noqa: A002
    """PyTorch's RuntimeError for the inf (-inf) norm over an empty dim: a max has no value."""
    from ..errors import ShapeError

    dims = range(x.ndim) if dim is None else (dim,) if isinstance(dim, int) else dim
    empty = [d for d in dims if -x.ndim <= d < x.ndim and x.shape[d] == 0]
    if empty:
        where = "an empty tensor" if dim is None else f"the dimension {empty[0]}"
        raise ShapeError(
            f"linalg.vector_norm cannot compute the {ord:g} norm on {where} because this "
            "dimension is empty and the operation does not have an identity"
        )


def matrix_norm(input: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None):  # noqa: A002
    """Matrix norms: 'fro', 'nuc', 2, -2, 1, -1, inf, -inf over the two ``dim`` dims."""
    if dtype is not None:
        input = input.to(dtype)  # noqa: N806
    r, c = (d % input.ndim for d in dim)
    inf = float("inf")
    if ord == "fro":
        from .pnorm import pnorm

        return pnorm(input.abs() if input.is_complex() else input, 2, (r, c), keepdim)
    if ord in ("nuc", 2, -2):
        from .decompositions import svdvals

        M = input.movedim((r, c), (-2, -1))  # noqa: N806
        S = svdvals(M)  # noqa: N806
        out = sum(S, -1) if ord == "nuc" else (amax(S, -1) if ord == 2 else amin(S, -1))
        if keepdim:
            out = unsqueeze(unsqueeze(out, min(r, c)), max(r, c))
        return out
    if ord in (1, -1, inf, -inf):
        along, across = (r, c) if ord in (1, -1) else (c, r)
        s = sum(_abs(input), along, True)
        out = amax(s, across, True) if ord in (1, inf) else amin(s, across, True)
        return out if keepdim else out.squeeze(max(r, c)).squeeze(min(r, c))
    raise ValueError(
        f"matrix_norm: ord must be 'fro', 'nuc', 2, -2, 1, -1, inf or -inf, got {ord!r}"
    )


def linalg_norm(input: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None):  # noqa: A002
    """``torch.linalg.norm``: a vector norm, or a matrix norm for 2 dims and a matrix ord."""
    if dim is None and ord is None:
        return vector_norm(input, 2, None, keepdim, dtype=dtype)
    if dim is None:
        dim = (-2, -1) if input.ndim == 2 else (-1,)
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if len(dims) == 2:
        return matrix_norm(input, "fro" if ord is None else ord, dims, keepdim, dtype=dtype)
    return vector_norm(input, 2 if ord is None else ord, dims, keepdim, dtype=dtype)


__all__: list[str] = []  # NOTE: reached through mg.linalg
