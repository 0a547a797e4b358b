"""Distances and similarities: cosine_similarity, pairwise_distance, normalize.

Compositions of differentiable ops (their gradients of gradients come for free).
"""

from __future__ import annotations

from ..tensor import Tensor
from .elementwise import _float_input, clamp
from .movement import expand
from .reduce import _need_float, norm, sum


def _broadcast(a: Tensor, b: Tensor):
    shape = _broadcast_shape(tuple(a.shape), tuple(b.shape))
    a = a if tuple(a.shape) == shape else expand(a, *shape)
    b = b if tuple(b.shape) == shape else expand(b, *shape)
    return a, b


def _broadcast_shape(s1, s2):
    n = max(len(s1), len(s2))
    s1, s2 = (1,) * (n - len(s1)) + s1, (1,) * (n - len(s2)) + s2
    out = []
    for a, b in zip(s1, s2):
        if a != b and 1 not in (a, b):
            raise ValueError(f"shapes {s1} and {s2} do not broadcast")
        out.append(max(a, b))
    return tuple(out)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``x1 . x2 / (max(|x1|, eps) * max(|x2|, eps))`` along ``dim`` (inputs broadcast).

    Example: ``F.cosine_similarity(mg.randn(4, 8), mg.randn(4, 8))``  # shape (4,)
    """
    x1, x2 = _broadcast(_float_input(x1), _float_input(x2))
    # NOTE: each side normalised first (as PyTorch, following SciPy) for precision
    n1 = clamp(norm(x1, 2, dim, True), min=eps)
    n2 = clamp(norm(x2, 2, dim, True), min=eps)
    return sum((x1 / n1) * (x2 / n2), dim)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:  # fmt: skip
    """p-norm of ``x1 - x2 + eps`` over the last dim.

    Example: ``F.pairwise_distance(a, b)``  # (N, D), (N, D) -> (N,)
    """
    d = _float_input(x1) - _float_input(x2) + eps
    if d.ndim == 0:
        d = d.reshape(1)
    return norm(d, p, -1, keepdim)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,  # noqa: A002
              out=None) -> Tensor:  # fmt: skip
    """``input / max(||input||_p, eps)`` along ``dim``.

    Example: ``F.normalize(embeddings, dim=-1)``
    """
    if out is not None:
        raise TypeError("normalize: out= is not supported; use the returned tensor")
    _need_float("normalize", input)  # NOTE: PyTorch's norms take no integers
    return input / clamp(norm(input, p, dim, True), min=eps)


from ._common import public  # noqa: E402

__all__ = public(globals())
