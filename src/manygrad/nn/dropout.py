"""``Dropout``: zero random elements while training (Srivastava et al., 2014)."""

from __future__ import annotations

from .. import ops as F
from ..tensor import Tensor
from .module import Module


class Dropout(Module):
    """Zero each element with probability ``p`` in training and scale the rest by 1/(1-p).

    In eval mode (``model.eval()``) it returns its input unchanged.

    Args:
        p: probability of zeroing an element (default 0.5).
        inplace: accepted for compatibility (default False).

    Example:
        >>> drop = mg.nn.Dropout(0.1); y = drop(x); drop.eval(); drop(x) is x
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return input
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
