"""Loss modules: thin wrappers over the loss functions of ``mg.nn.functional``."""

from __future__ import annotations

from .. import ops as F
from ..ops.nn import _legacy_reduction
from ..tensor import Tensor
from .module import Module


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__()
        if size_average is not None or reduce is not None:
            reduction = _legacy_reduction(size_average, reduce)
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction


class _WeightedLoss(_Loss):
    def __init__(self, weight: Tensor | None = None, size_average=None, reduce=None,
                 reduction: str = "mean") -> None:  # fmt: skip
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class L1Loss(_Loss):
    """Mean (or sum) absolute error ``|input - target|``.

    Args:
        reduction: "mean" (default), "sum" or "none".

    Example:
        >>> mg.nn.L1Loss()(pred, target)
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean (or sum) squared error ``(input - target)^2``.

    Args:
        reduction: "mean" (default), "sum" or "none".

    Example:
        >>> loss = mg.nn.MSELoss()(pred, target); loss.backward()
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of class indices, given log-probabilities (N, C, ...).

    Args:
        weight: per-class weights (C,) (default None).
        ignore_index: target value that contributes nothing (default -100).
        reduction: "mean" (weighted mean, default), "sum" or "none".

    Example:
        >>> mg.nn.NLLLoss()(logits.log_softmax(-1), labels)
    """

    def __init__(self, weight: Tensor | None = None, size_average=None,
                 ignore_index: int = -100, reduce=None, reduction: str = "mean") -> None:  # fmt: skip
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)  # fmt: skip


class CrossEntropyLoss(_WeightedLoss):
    """Cross entropy between logits (N, C, ...) and class indices or class probabilities.

    Args:
        weight: per-class weights (C,) (default None).
        ignore_index: target value that contributes nothing (default -100).
        reduction: "mean" (default), "sum" or "none".
        label_smoothing: mix the targets with the uniform distribution (default 0.0).

    Example:
        >>> loss = mg.nn.CrossEntropyLoss()(logits, labels)
    """

    def __init__(self, weight: Tensor | None = None, size_average=None,
                 ignore_index: int = -100, reduce=None, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:  # fmt: skip
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        kw = {}
        if self.label_smoothing:
            kw["label_smoothing"] = self.label_smoothing
        return F.cross_entropy(input, target, weight=self.weight,
                               ignore_index=self.ignore_index, reduction=self.reduction,
                               **kw)  # fmt: skip


class BCEWithLogitsLoss(_Loss):
    """Binary cross entropy of ``sigmoid(input)`` against targets in [0, 1], computed stably.

    Args:
        weight: rescaling weight broadcast to the input (default None).
        reduction: "mean" (default), "sum" or "none".
        pos_weight: weight of positive examples per class (default None).

    Example:
        >>> mg.nn.BCEWithLogitsLoss()(logits, targets.float())
    """

    def __init__(self, weight: Tensor | None = None, size_average=None, reduce=None,
                 reduction: str = "mean", pos_weight: Tensor | None = None) -> None:  # fmt: skip
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, weight=self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight)  # fmt: skip


class BCELoss(_WeightedLoss):
    """Binary cross entropy between probabilities in (0, 1) and targets in [0, 1].

    Args:
        weight: rescaling weight broadcast to the input (default None).
        reduction: "mean" (default), "sum" or "none".

    Example:
        >>> mg.nn.BCELoss()(probs, targets)
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy(input, target, weight=self.weight,
                                      reduction=self.reduction)  # fmt: skip


class SmoothL1Loss(_Loss):
    """Squared error below ``beta``, absolute error (minus beta/2) above it.

    Args:
        reduction: "mean" (default), "sum" or "none".
        beta: where the loss switches from quadratic to linear (default 1.0).
    """

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean",
                 beta: float = 1.0) -> None:  # fmt: skip
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """Huber (1964): squared error below ``delta``, linear (slope delta) above it.

    Args:
        reduction: "mean" (default), "sum" or "none".
        delta: where the loss switches from quadratic to linear (default 1.0).
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class KLDivLoss(_Loss):
    """Kullback-Leibler divergence of ``target`` from the log-probabilities ``input``.

    Args:
        reduction: "mean" (default, PyTorch's elementwise mean), "batchmean", "sum" or
            "none".
        log_target: the target is given as log-probabilities (default False).
    """

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean",
                 log_target: bool = False) -> None:  # fmt: skip
        # NOTE: size_average or reduce, when given, override "batchmean" too (as in PyTorch)
        batchmean = reduction == "batchmean" and size_average is None and reduce is None
        super().__init__(size_average, reduce, "mean" if batchmean else reduction)
        if batchmean:
            self.reduction = "batchmean"
        self.log_target = log_target

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


# ---------------------------------------------------------------------------- margin, embedding
# and likelihood losses (functions in mg.ops.margin_loss)
from . import functional as _F  # noqa: E402


class MarginRankingLoss(_Loss):
    """``max(0, -y * (x1 - x2) + margin)``. Args: margin (default 0), reduction."""

    def __init__(self, margin: float = 0.0, size_average=None, reduce=None,
                 reduction: str = "mean") -> None:  # fmt: skip
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Tensor, input2: Tensor, target: Tensor) -> Tensor:
        return _F.margin_ranking_loss(input1, input2, target, self.margin,
                                      reduction=self.reduction)  # fmt: skip


class TripletMarginLoss(_Loss):
    """Schroff et al. (2015). Args: margin (1.0), p (2.0), eps (1e-6), swap (False)."""

    def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6,
                 swap: bool = False, size_average=None, reduce=None,
                 reduction: str = "mean") -> None:  # fmt: skip
        super().__init__(size_average, reduce, reduction)
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return _F.triplet_margin_loss(anchor, positive, negative, margin=self.margin, p=self.p,
                                      eps=self.eps, swap=self.swap,
                                      reduction=self.reduction)  # fmt: skip


class CosineEmbeddingLoss(MarginRankingLoss):
    """``1 - cos`` for target 1, ``max(0, cos - margin)`` for -1. Args: margin (0)."""

    def forward(self, input1: Tensor, input2: Tensor, target: Tensor) -> Tensor:
        return _F.cosine_embedding_loss(input1, input2, target, self.margin,
                                        reduction=self.reduction)  # fmt: skip


class HingeEmbeddingLoss(_Loss):
    """``x`` for target 1, ``max(0, margin - x)`` for -1. Args: margin (default 1.0)."""

    def __init__(self, margin: float = 1.0, size_average=None, reduce=None,
                 reduction: str = "mean") -> None:  # fmt: skip
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return _F.hinge_embedding_loss(input, target, self.margin, reduction=self.reduction)


class SoftMarginLoss(_Loss):
    """``log(1 + exp(-y * x))``, y in {1, -1}."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return _F.soft_margin_loss(input, target, reduction=self.reduction)


class MultiMarginLoss(_WeightedLoss):
    """Multi-class hinge loss. Args: p (1 or 2), margin (1.0), weight (per class)."""

    def __init__(self, p: int = 1, margin: float = 1.0, weight: Tensor | None = None,
                 size_average=None, reduce=None, reduction: str = "mean") -> None:  # fmt: skip
        if p not in (1, 2):
            raise ValueError(f"MultiMarginLoss: only p == 1 and p == 2 are supported, got {p}")
        super().__init__(weight, size_average, reduce, reduction)
        self.p, self.margin = p, margin

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return _F.multi_margin_loss(input, target, self.p, self.margin, self.weight,
                                    reduction=self.reduction)  # fmt: skip


class MultiLabelSoftMarginLoss(_WeightedLoss):
    """Per-class logistic loss averaged over classes. Args: weight (per class)."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return _F.multilabel_soft_margin_loss(input, target, self.weight,
                                              reduction=self.reduction)  # fmt: skip


class PoissonNLLLoss(_Loss):
    """Poisson negative log likelihood. Args: log_input (True), full (False), eps (1e-8)."""

    def __init__(self, log_input: bool = True, full: bool = False, size_average=None,
                 eps: float = 1e-8, reduce=None, reduction: str = "mean") -> None:  # fmt: skip
        super().__init__(size_average, reduce, reduction)
        self.log_input, self.full, self.eps = log_input, full, eps

    def forward(self, log_input: Tensor, target: Tensor) -> Tensor:
        return _F.poisson_nll_loss(log_input, target, self.log_input, self.full, eps=self.eps,
                                   reduction=self.reduction)  # fmt: skip


class GaussianNLLLoss(_Loss):
    """Gaussian negative log likelihood with predicted variance. Args: full, eps (1e-6).

    ``forward(input, target, var)``.
    """

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean"):
        super().__init__(None, None, reduction)
        self.full, self.eps = full, eps

    def forward(self, input: Tensor, target: Tensor, var) -> Tensor:
        return _F.gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps,
                                    reduction=self.reduction)  # fmt: skip


class CTCLoss(_Loss):
    """Connectionist temporal classification (Graves et al., 2006).

    Args: blank (0), reduction ("mean": per-target-length mean), zero_infinity (False).

    ``forward(log_probs, targets, input_lengths, target_lengths)``.

    Example:
        >>> loss = mg.nn.CTCLoss()(log_probs, targets, input_lengths, target_lengths)
    """

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False):
        super().__init__(None, None, reduction)
        self.blank, self.zero_infinity = blank, zero_infinity

    def forward(self, log_probs: Tensor, targets: Tensor, input_lengths,
                target_lengths) -> Tensor:  # fmt: skip
        return _F.ctc_loss(log_probs, targets, input_lengths, target_lengths, self.blank,
                           self.reduction, self.zero_infinity)  # fmt: skip


class TripletMarginWithDistanceLoss(_Loss):
    """Triplet loss with any distance function (default: pairwise Euclidean).

    Args: distance_function (None), margin (1.0), swap (False), reduction.
    """

    def __init__(self, *, distance_function=None, margin: float = 1.0, swap: bool = False,
                 reduction: str = "mean") -> None:  # fmt: skip
        super().__init__(None, None, reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginWithDistanceLoss: margin must be > 0, got {margin}")
        self.distance_function, self.margin, self.swap = distance_function, margin, swap

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return _F.triplet_margin_with_distance_loss(
            anchor, positive, negative, distance_function=self.distance_function,
            margin=self.margin, swap=self.swap, reduction=self.reduction)  # fmt: skip


class MultiLabelMarginLoss(_Loss):
    """Multi-class multi-label hinge loss; targets list class indices, ended by -1."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return _F.multilabel_margin_loss(input, target, reduction=self.reduction)


class NLLLoss2d(NLLLoss):
    """PyTorch's deprecated name of ``NLLLoss`` for (N, C, H, W) inputs."""
