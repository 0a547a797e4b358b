"""``CosineSimilarity`` and ``PairwiseDistance`` (functions in ``mg.ops.distance``)."""

from __future__ import annotations

from ..ops import distance as D
from ..tensor import Tensor
from .module import Module


class CosineSimilarity(Module):
    """Cosine of the angle between ``x1`` and ``x2`` along ``dim``.

    Args:
        dim: the dim to compare along (default 1). eps: norm floor (default 1e-8).

    Example:
        >>> mg.nn.CosineSimilarity(dim=1)(mg.randn(4, 8), mg.randn(4, 8)).shape
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return D.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """p-norm distance between rows: ``||x1 - x2 + eps||_p`` over the last dim.

    Args:
        p: the norm degree (default 2). eps: added to the difference (default 1e-6).
        keepdim: keep the reduced dim (default False).
    """

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return D.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
