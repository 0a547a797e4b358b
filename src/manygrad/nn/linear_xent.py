"""``F.linear_cross_entropy`` and ``nn.LinearCrossEntropyLoss``: the cross entropy of a
linear layer's logits, optionally without ever holding the whole ``(batch, classes)``
logits (a language model's vocabulary head).

``options=None`` computes ``cross_entropy(linear(x, W, b), target, ...)``. With
``LinearCrossEntropyOptions`` the batch is processed in chunks: each chunk's logits are
made, reduced to losses and dropped, and made again in backward (checkpointing), so the
memory for logits is one chunk's. The numbers are the reference's.

Example:
    >>> loss = F.linear_cross_entropy(hidden, head.weight, targets,
    ...                               options=LinearCrossEntropyOptions())
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from .. import ops as F
from ..tensor import Tensor
from .linear import Linear
from .module import Module

__all__ = ["LinearCrossEntropyLoss", "LinearCrossEntropyOptions", "linear_cross_entropy"]

_LOGITS_PER_CHUNK = 1 << 22  # NOTE: about 16 MB of float32 logits per chunk by default


@dataclass
class LinearCrossEntropyOptions:
    """Opts in to the chunked computation; ``batch_chunk_size`` rows per chunk (default:
    about 4M logits per chunk). The other fields are PyTorch's tuning knobs, accepted."""

    allow_retain_graph: bool = False
    batch_chunk_size: int | None = None
    chunking_method: str | None = "auto"
    acc_policy: str = "auto"
    acc_dtype: object = None


def _reference(x, w, target, b, weight, reduction, ignore_index, label_smoothing):
    logits = F.linear(x, w, b)
    return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                           reduction=reduction, label_smoothing=label_smoothing)  # fmt: skip


def linear_cross_entropy(input: Tensor, linear_weight: Tensor, target: Tensor, *,  # noqa: A002
                         linear_bias: Tensor | None = None, weight: Tensor | None = None,
                         reduction: str = "mean", ignore_index: int | None = None,
                         label_smoothing: float = 0.0, options=None) -> Tensor:  # fmt: skip
    """``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)``; with
    ``options`` (a ``LinearCrossEntropyOptions``), chunked over the batch."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"linear_cross_entropy: {reduction!r} is not a valid reduction")
    ii = -100 if ignore_index is None else ignore_index
    if options is None:
        return _reference(input, linear_weight, target, linear_bias, weight, reduction, ii,
                          label_smoothing)  # fmt: skip
    simple = (input.ndim == 2 and target.ndim == 1 and linear_weight.ndim == 2
              and not target.is_floating_point()
              and (linear_bias is None or linear_bias.ndim == 1))  # fmt: skip
    if not simple:
        warnings.warn(
            "linear_cross_entropy: the chunked path takes (N, D) inputs with class-index "
            "targets; computing the reference instead", stacklevel=2,
        )  # fmt: skip
        return _reference(input, linear_weight, target, linear_bias, weight, reduction, ii,
                          label_smoothing)  # fmt: skip
    from ..utils.checkpoint import checkpoint

    n, c = input.shape[0], linear_weight.shape[0]
    rows = options.batch_chunk_size or max(1, _LOGITS_PER_CHUNK // max(c, 1))

    def chunk_loss(xc, tc, red):
        return _reference(xc, linear_weight, tc, linear_bias, weight, red, ii, label_smoothing)

    red = "none" if reduction == "none" else "sum"
    parts = []
    for start in range(0, n, rows):
        xc, tc = input[start : start + rows], target[start : start + rows]
        parts.append(checkpoint(chunk_loss, xc, tc, red, use_reentrant=False))
    if reduction == "none":
        return F.cat(parts, 0) if len(parts) > 1 else parts[0]
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    if reduction == "sum":
        return total
    keep = (target != ii).to(total.dtype)
    if weight is not None:
        safe = F.where(target == ii, target * 0, target)
        keep = keep * weight.index_select(0, safe.reshape(-1)).reshape(tuple(target.shape))
    return total / keep.sum()


class LinearCrossEntropyLoss(Module):
    """A linear layer to ``num_classes`` logits and their cross entropy with the target, as
    one module (``linear_cross_entropy``); the layer is ``self.linear``."""

    def __init__(self, in_features: int, num_classes: int, *, out_features: tuple = (),
                 bias: bool = False, device=None, dtype=None, reduction: str = "mean",
                 weight: Tensor | None = None, ignore_index: int | None = None,
                 label_smoothing: float = 0.0, options=None) -> None:  # fmt: skip
        super().__init__()
        if tuple(out_features):
            raise NotImplementedError(
                "LinearCrossEntropyLoss: out_features (K-dimensional losses) is not "
                "supported; flatten the extra dims into the batch"
            )
        self.in_features, self.num_classes = in_features, num_classes
        self.out_features = ()
        self.reduction, self.ignore_index = reduction, ignore_index
        self.label_smoothing, self.options = label_smoothing, options
        self.register_buffer("weight", weight)
        self.linear = Linear(in_features, num_classes, bias=bias, device=device, dtype=dtype)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return linear_cross_entropy(
            input, self.linear.weight, target, linear_bias=self.linear.bias,
            weight=self.weight, reduction=self.reduction, ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing, options=self.options,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, num_classes={self.num_classes}, "
                f"out_features={self.out_features}, bias={self.linear.bias is not None}, "
                f"reduction={self.reduction}, ignore_index={self.ignore_index}, "
                f"label_smoothing={self.label_smoothing}, options={self.options}")  # fmt: skip
