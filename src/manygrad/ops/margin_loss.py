"""Margin, embedding and likelihood losses, named as in ``torch.nn.functional``:
margin_ranking_loss, triplet_margin_loss, cosine_embedding_loss, hinge_embedding_loss,
soft_margin_loss, multi_margin_loss, multilabel_soft_margin_loss, poisson_nll_loss,
gaussian_nll_loss.

Each is a composition of differentiable ops, so gradients of gradients come for free.
"""

# ruff: noqa: A002  (`input` is PyTorch's argument name)
from __future__ import annotations

import math

from .. import backend
from ..autograd import autocast_fp32, is_grad_enabled
from ..errors import AutogradError, ShapeError
from ..tensor import Tensor
from ._dtype_rules import check_int64, check_same_as_input
from .activation import logsigmoid
from .distance import pairwise_distance
from .elementwise import _float_input, clamp, exp, log, relu, softplus, where
from .elementwise import pow as _pow
from .indexing import gather
from .nn import _check_reduction, _legacy_reduction, _no_grad_for, _reduce
from .reduce import mean, sum


def _reduction(size_average, reduce, reduction: str, op: str) -> str:
    """``reduction``, or what the deprecated ``size_average`` / ``reduce`` say instead."""
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    _check_reduction(reduction, op)
    return reduction


@autocast_fp32()
def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                        size_average=None, reduce=None, reduction: str = "mean") -> Tensor:  # fmt: skip
    """``max(0, -target * (input1 - input2) + margin)``; target is 1 or -1."""
    reduction = _reduction(size_average, reduce, reduction, "margin_ranking_loss")
    return _reduce(relu(-target * (input1 - input2) + margin), reduction)


@autocast_fp32()
def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor,
                        margin: float = 1.0, p: float = 2, eps: float = 1e-6,
                        swap: bool = False, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:  # fmt: skip
    """Schroff et al. (2015): ``max(d(a, p) - d(a, n) + margin, 0)``, d the pairwise p-norm."""
    reduction = _reduction(size_average, reduce, reduction, "triplet_margin_loss")
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise ShapeError(
            "triplet_margin_loss: anchor, positive and negative must have the same number of "
            f"dims, got {anchor.ndim}, {positive.ndim} and {negative.ndim}"
        )
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_swap = pairwise_distance(positive, negative, p, eps)
        d_neg = where(d_swap < d_neg, d_swap, d_neg)
    return _reduce(relu(margin + d_pos - d_neg), reduction)


@autocast_fp32()
def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                          size_average=None, reduce=None, reduction: str = "mean") -> Tensor:  # fmt: skip
    """``1 - cos(x1, x2)`` where target is 1, ``max(0, cos(x1, x2) - margin)`` where -1."""
    reduction = _reduction(size_average, reduce, reduction, "cosine_embedding_loss")
    eps = 1e-12  # NOTE: PyTorch's EPSILON, added to each squared magnitude
    d = input1.ndim - 1
    dot = sum(input1 * input2, d)
    m1 = sum(input1 * input1, d) + eps
    m2 = sum(input2 * input2, d) + eps
    cos = dot / _pow(m1 * m2, 0.5)
    loss = where(target == 1, 1 - cos, 0.0) + where(target == -1, relu(cos - margin), 0.0)
    return _reduce(loss, reduction)


@autocast_fp32()
def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:  # fmt: skip
    """``x`` where target is 1, ``max(0, margin - x)`` where target is -1."""
    reduction = _reduction(size_average, reduce, reduction, "hinge_embedding_loss")
    loss = where(target != 1, relu(margin - input), 0.0) + where(target != -1, input, 0.0)
    return _reduce(loss, reduction)


@autocast_fp32()
def soft_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:  # fmt: skip
    """``log(1 + exp(-target * input))`` (two-class logistic loss, target 1 or -1).

    NOTE: the result has the input's dtype whatever the target's, as in PyTorch 2.13."""
    reduction = _reduction(size_average, reduce, reduction, "soft_margin_loss")
    if isinstance(target, Tensor) and target.requires_grad and is_grad_enabled():
        # NOTE: PyTorch's soft_margin_loss has no derivative for its target, and says so
        raise AutogradError(
            "soft_margin_loss: not differentiable with respect to argument 'target', which "
            "cannot have requires_grad=True; pass target.detach()"
        )
    x = _float_input(input)
    t = target if target.dtype is x.dtype else target.to(x.dtype)
    return _reduce(softplus(-t * x), reduction)


@autocast_fp32()
def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0,
                      weight: Tensor | None = None, size_average=None, reduce=None,
                      reduction: str = "mean") -> Tensor:  # fmt: skip
    """Multi-class hinge loss: ``sum_{i != y} max(0, margin - x[y] + x[i])^p / C``.

    NOTE: as in PyTorch 2.13, the target is int64 and the weight has the input's dtype."""
    reduction = _reduction(size_average, reduce, reduction, "multi_margin_loss")
    check_int64("multi_margin_loss", "target", target)
    check_same_as_input("multi_margin_loss", input, "weight", weight)
    _no_grad_for(weight, "weight", "multi_margin_loss")
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: only p == 1 and p == 2 are supported, got {p}")
    x = input if input.ndim == 2 else input.reshape(1, -1)
    t = target.reshape(-1, 1)
    if input.ndim > 2 or x.shape[0] != t.shape[0]:
        raise ShapeError(f"multi_margin_loss: expected input (N, C) or (C,) and target (N,) "
                         f"or (), got {tuple(input.shape)} and {tuple(target.shape)}")  # fmt: skip
    xy = gather(x, 1, t)
    z = relu(margin - xy + x)
    if p == 2:
        z = z * z
    if weight is not None:
        z = z * gather(weight.reshape(1, -1).expand(x.shape[0], -1), 1, t)
    # NOTE: the target class's own term (margin ** p, weighted) is dropped, not masked
    cols = _arange_like(x)
    loss = sum(where(cols == t, 0.0, z), 1) / x.shape[1]
    if input.ndim < 2:
        loss = loss.reshape(())
    return _reduce(loss, reduction)


def _arange_like(x: Tensor) -> Tensor:
    from .. import creation

    return creation.arange(x.shape[1], device=x.device).reshape(1, -1)


def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                size_average=None, reduce=None,
                                reduction: str = "mean") -> Tensor:  # fmt: skip
    """Per-class logistic loss averaged over the classes (the last dim)."""
    reduction = _reduction(size_average, reduce, reduction, "multilabel_soft_margin_loss")
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    return _reduce(mean(loss, input.ndim - 1), reduction)


@autocast_fp32()
def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
                     size_average=None, eps: float = 1e-8, reduce=None,
                     reduction: str = "mean") -> Tensor:  # fmt: skip
    """Negative log likelihood of a Poisson target: ``exp(input) - target * input`` (or
    ``input - target * log(input + eps)`` with ``log_input=False``); ``full`` adds
    Stirling's approximation of ``log(target!)`` where target > 1."""
    reduction = _reduction(size_average, reduce, reduction, "poisson_nll_loss")
    if log_input:
        loss = exp(input) - target * input
    else:
        loss = input - target * log(input + eps)
    if full:
        # NOTE: differentiable in the target, as PyTorch's (which gives NaN gradients at a
        # target of 0, through 0 * log(0))
        stirling = target * log(target) - target + 0.5 * log(2 * math.pi * target)
        loss = loss + where(target > 1, stirling, 0.0)
    return _reduce(loss, reduction)


def _check_var_sign(negative: bool) -> None:
    if negative:
        raise ValueError(
            "gaussian_nll_loss: var has negative entry/entries; variances must be >= 0 (pass "
            "a softplus or exp of the network's output)"
        )


def gaussian_nll_loss(input: Tensor, target: Tensor, var, full: bool = False,
                      eps: float = 1e-6, reduction: str = "mean") -> Tensor:  # fmt: skip
    """Negative log likelihood of a Gaussian target: ``0.5 * (log(var) + (input - target)^2
    / var)`` (+ ``0.5 * log(2 pi)`` with ``full``); var is clamped to ``eps`` for the value
    only (its gradient passes unchanged, as in PyTorch)."""
    _check_reduction(reduction, "gaussian_nll_loss")
    if not isinstance(var, Tensor):
        _check_var_sign(float(var) < 0)
        var = _full_like(input, float(var))
    elif backend.device_of(var._data).type == "cpu" and var.numel():
        # NOTE: only on the CPU, where the check costs no sync (PyTorch syncs on a GPU too)
        _check_var_sign(bool((var._data < 0).any()))
    if tuple(var.shape) != tuple(input.shape):
        mismatched = [v for i, v in zip(input.shape, var.shape) if i != v]
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif not (var.ndim == input.ndim and math.fsum(mismatched) == 1):
            # one dim of size 1 where the input's is larger: a variance shared along it
            raise ValueError(f"gaussian_nll_loss: var of shape {tuple(var.shape)} does not fit "
                             f"input of shape {tuple(input.shape)}")  # fmt: skip
    v = var.detach()
    var = var + (clamp(v, min=eps) - v)
    loss = 0.5 * (log(var) + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *,
                                      distance_function=None, margin: float = 1.0,
                                      swap: bool = False, reduction: str = "mean") -> Tensor:  # fmt: skip
    """``max(d(a, p) - d(a, n) + margin, 0)`` with any distance (default: pairwise_distance).

    Example: ``F.triplet_margin_with_distance_loss(a, p, n, distance_function=lambda x, y:
    1 - F.cosine_similarity(x, y))``
    """
    _check_reduction(reduction, "triplet_margin_with_distance_loss")
    if margin <= 0:
        raise ValueError(f"triplet_margin_with_distance_loss: margin must be > 0, got {margin}")
    dist = distance_function if distance_function is not None else pairwise_distance
    d_pos, d_neg = dist(anchor, positive), dist(anchor, negative)
    if swap:
        d_swap = dist(positive, negative)
        d_neg = where(d_swap < d_neg, d_swap, d_neg)
    return _reduce(relu(margin + d_pos - d_neg), reduction)


@backend.on_tensor_device
@autocast_fp32()
def multilabel_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                           reduction: str = "mean") -> Tensor:  # fmt: skip
    """Multi-class multi-label hinge loss: for each target class j (the leading entries of
    ``target`` up to the first -1) and each non-target class i,
    ``max(0, 1 - (x[j] - x[i])) / C``.

    NOTE: the target is int64, as in PyTorch 2.13."""
    reduction = _reduction(size_average, reduce, reduction, "multilabel_margin_loss")
    check_int64("multilabel_margin_loss", "target", target)
    x = input if input.ndim == 2 else input.reshape(1, -1)
    t = target._data.reshape(x.shape)
    xp = backend.array_module(t)
    n, c = x.shape
    valid = xp.cumprod(t >= 0, axis=1).astype(bool)  # entries before the first -1
    tgt = xp.zeros((n, c), bool)  # is class i among the sample's targets?
    rows = xp.broadcast_to(xp.arange(n).reshape(-1, 1), (n, c))
    tgt[rows[valid], t[valid]] = True
    idx = Tensor._wrap(xp.where(valid, t, 0).astype(xp.int64), x._device)
    xj = gather(x, 1, idx)  # (N, C): the score of the j-th target
    hinge = relu(1 - (xj.unsqueeze(2) - x.unsqueeze(1)))  # (N, j, i)
    keep = valid[:, :, None] & ~tgt[:, None, :]
    loss = sum(where(Tensor._wrap(keep, x._device), hinge, 0.0), (1, 2)) / c
    if input.ndim < 2:
        loss = loss.reshape(())
    return _reduce(loss, reduction)


def _full_like(x: Tensor, value: float) -> Tensor:
    from .. import creation

    return creation.full(tuple(x.shape), value, dtype=x.dtype, device=x.device)


from ._common import public  # noqa: E402

__all__ = public(globals())
