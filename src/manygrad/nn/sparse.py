"""``Embedding``: a lookup table of vectors indexed by integer ids."""

from __future__ import annotations

from .. import backend, creation
from .. import ops as F
from ..autograd import no_grad
from ..errors import DimError, ShapeError
from ..tensor import Tensor
from . import init
from .module import Module
from .parameter import Parameter


def _check_ids(input: Tensor, n: int) -> None:
    """Ids outside [0, n) raise, as in PyTorch. NOTE: only on the CPU, where the check costs
    no sync; on a GPU they are not checked."""
    a = getattr(input, "_data", None)
    if a is None or input.numel() == 0 or backend.device_of(a).type != "cpu":
        return
    if a.dtype.kind not in "iu":
        return  # F.embedding names the dtype
    lo, hi = a.min(), a.max()
    if lo < 0 or hi >= n:
        raise DimError(
            f"Embedding: index {int(lo if lo < 0 else hi)} is out of range for a table of {n} "
            f"rows (ids are 0..{n - 1})"
        )


class Embedding(Module):
    """Row ``i`` of ``weight`` for each id ``i`` of the input.

    Args:
        num_embeddings: table size (ids are in [0, num_embeddings)).
        embedding_dim: size of each vector.
        padding_idx: an id whose row is zero and receives no gradient (default None).
        max_norm, norm_type, scale_grad_by_freq, sparse: as PyTorch (passed to
            ``F.embedding``).
        _weight: an initial table to use instead of N(0, 1) samples.
        _freeze: make the table not require grad.

    Example:
        >>> emb = mg.nn.Embedding(10, 4, padding_idx=0)
        >>> emb(mg.tensor([[1, 2, 0]])).shape
        manygrad.Size([1, 3, 4])
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, sparse: bool = False,
                 _weight: Tensor | None = None, _freeze: bool = False, device=None,
                 dtype=None) -> None:  # fmt: skip
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx must be within num_embeddings ({num_embeddings}), "
                    f"got {padding_idx}"
                )
            padding_idx %= num_embeddings
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        if _weight is None:
            w = creation.empty(num_embeddings, embedding_dim, device=device, dtype=dtype)
            self.weight = Parameter(w, requires_grad=not _freeze)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ShapeError(
                    f"Embedding: _weight has shape {tuple(_weight.shape)}, expected "
                    f"{(num_embeddings, embedding_dim)}"
                )
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self) -> None:
        if self.padding_idx is not None:
            with no_grad():
                self.weight._data[self.padding_idx] = 0

    def forward(self, input: Tensor) -> Tensor:
        _check_ids(input, self.num_embeddings)
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)  # fmt: skip

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        if self.sparse is not False:
            s += ", sparse=True"
        return s

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True,
                        padding_idx: int | None = None, max_norm: float | None = None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> Embedding:  # fmt: skip
        """An Embedding whose table is ``embeddings`` (2-D), frozen by default."""
        if embeddings.dim() != 2:
            raise ShapeError(
                f"Embedding.from_pretrained: expected a 2-D table, got shape "
                f"{tuple(embeddings.shape)}"
            )
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze)  # fmt: skip
