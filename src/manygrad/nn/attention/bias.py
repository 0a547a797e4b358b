"""``torch.nn.attention.bias``: causal attention biases that ``scaled_dot_product_attention``
takes as ``attn_mask`` when query and key lengths differ (decoding with a KV cache).

``causal_upper_left(L, S)`` lets query ``i`` see keys ``0..i``; ``causal_lower_right(L, S)``
aligns the last query with the last key, so query ``i`` sees keys ``0..i + S - L``.

Example:
    >>> bias = causal_lower_right(q.shape[-2], k.shape[-2])
    >>> out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
"""

from __future__ import annotations

import warnings
from enum import IntEnum, auto

__all__ = ["causal_upper_left", "causal_lower_right", "CausalVariant", "CausalBias"]


class CausalVariant(IntEnum):
    """Where the causal triangle is anchored: ``UPPER_LEFT`` (query 0 sees key 0) or
    ``LOWER_RIGHT`` (the last query sees the last key)."""

    UPPER_LEFT = auto()
    LOWER_RIGHT = auto()


class CausalBias:
    """A causal mask of ``seq_len_q`` x ``seq_len_kv`` that attention builds only when it
    needs it (``_materialize(device)`` gives the bool mask; True = attend).

    Args:
        variant: a ``CausalVariant``.
        seq_len_q: the query length L. seq_len_kv: the key/value length S.
    """

    def __init__(self, variant: CausalVariant, seq_len_q: int, seq_len_kv: int) -> None:
        if not isinstance(variant, CausalVariant):
            raise AssertionError(f"variant must be a CausalVariant, got {type(variant).__name__}")
        self.variant, self.seq_len_q, self.seq_len_kv = variant, seq_len_q, seq_len_kv
        if seq_len_q > seq_len_kv and variant == CausalVariant.LOWER_RIGHT:
            warnings.warn(
                "Lower right causal bias will produce NaNs in the output when "
                "seq_len_q > seq_len_kv!",
                stacklevel=2,
            )

    def _tril(self, device, diagonal: int):
        from ... import creation

        ones = creation.ones(self.seq_len_q, self.seq_len_kv, dtype=bool, device=device)
        return ones.tril(diagonal)

    def _upper_left(self, device):
        return self._tril(device, 0)

    def _lower_right(self, device):
        return self._tril(device, self.seq_len_kv - self.seq_len_q)

    def _materialize(self, device=None):
        """The bool mask (L, S) on ``device`` (default the CPU)."""
        if self.variant == CausalVariant.UPPER_LEFT:
            return self._upper_left(device)
        return self._lower_right(device)

    def _sdpa_dispatch(self, query, key, value, dropout_p: float = 0.0, is_causal: bool = False,
                       scale: float | None = None, enable_gqa: bool = False):  # fmt: skip
        """``scaled_dot_product_attention`` with this bias: ``is_causal`` where the triangle
        is the upper-left one, else the materialised mask."""
        from ...ops.attention import scaled_dot_product_attention as sdpa

        if is_causal:
            raise ValueError("CausalBias should not be used with causal=True")
        upper = self.variant == CausalVariant.UPPER_LEFT or self.seq_len_q == self.seq_len_kv
        mask = None if upper else self._lower_right(query.device)
        return sdpa(query, key, value, attn_mask=mask, dropout_p=dropout_p, is_causal=upper,
                    scale=scale, enable_gqa=enable_gqa)  # fmt: skip

    def __repr__(self) -> str:
        return repr(self._materialize())


def _size(size, what: str) -> tuple[int, int]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if len(size) != 2:
        raise AssertionError(f"{what} only supports 2D tensors")
    return int(size[0]), int(size[1])


def causal_upper_left(*size) -> CausalBias:
    """An upper-left causal bias of ``size`` (L, S): query ``i`` attends keys ``0..i``.

    Example: ``F.scaled_dot_product_attention(q, k, v, attn_mask=causal_upper_left(4, 6))``
    """
    return CausalBias(CausalVariant.UPPER_LEFT, *_size(size, "causal_upper_left"))


def causal_lower_right(*size) -> CausalBias:
    """A lower-right causal bias of ``size`` (L, S): query ``i`` attends keys
    ``0..i + S - L``.

    Example: ``F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(2, 6))``
    """
    return CausalBias(CausalVariant.LOWER_RIGHT, *_size(size, "causal_lower_right"))
