"""``torch.distributions.utils``: broadcasting parameters, probabilities and logits, cached
properties, and packing lower-triangular matrices."""

from __future__ import annotations

from ..tensor import Tensor
from ._lazy import lazy_property
from ._transforms_matrix import tril_matrix_to_vec, vec_to_tril_matrix
from .distribution import broadcast_all

__all__ = ["broadcast_all", "logits_to_probs", "clamp_probs", "probs_to_logits",
           "lazy_property", "tril_matrix_to_vec", "vec_to_tril_matrix"]  # fmt: skip


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    """Probabilities from logits: ``sigmoid`` for binary outcomes, else ``softmax`` over the
    last dim."""
    from ..ops.elementwise import sigmoid
    from ..ops.nn import softmax

    return sigmoid(logits) if is_binary else softmax(logits, dim=-1)


def clamp_probs(probs: Tensor) -> Tensor:
    """``probs`` kept inside ``[eps, 1 - eps]`` (``eps`` of their dtype), so that their logs
    and the logs of their complements are finite."""
    from .. import finfo

    eps = finfo(probs.dtype).eps
    return probs.clamp(min=eps, max=1 - eps)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    """Logits from probabilities (clamped first): ``log(p) - log1p(-p)`` for binary outcomes,
    else ``log(p)``."""
    p = clamp_probs(probs)
    return p.log() - (-p).log1p() if is_binary else p.log()
