"""Connectionist temporal classification loss (Graves et al., 2006): ``ctc_loss``.

The forward (alpha) recursion over the blank-extended targets is written with
differentiable ops (gather, logsumexp over three shifted copies, where), so its gradient is
the exact gradient of the loss with respect to ``log_probs`` (and has a gradient itself).

NOTE: PyTorch's own CTC backward returns ``exp(log_probs) - posterior``, the gradient with
respect to the logits *behind a log_softmax*, not with respect to ``log_probs``; through
``log_softmax`` (how CTC is used) both give the same gradient of the logits.
NOTE: unreachable states hold a large negative number instead of -inf, so that no
0 * inf appears in the gradients; an impossible alignment still gives an infinite loss.
"""

# ruff: noqa: A002  (`input` is PyTorch's argument name)
from __future__ import annotations

from .. import backend
from ..autograd import autocast_fp32
from ..errors import ShapeError
from ..tensor import Tensor
from .elementwise import clamp, exp, log, where
from .indexing import gather
from .movement import cat, stack
from .nn import _check_reduction
from .reduce import amax, mean, sum

_NEG = -1e30  # "log 0" for unreachable states; finite in float32 (see the module note)


def _lengths(v, n: int, what: str) -> list:
    vals = v.tolist() if isinstance(v, Tensor) else list(v)
    vals = [int(x) for x in (vals if isinstance(vals, list) else [vals])]
    if len(vals) != n:
        raise ShapeError(f"ctc_loss: {what} must have one entry per batch element ({n}), got "
                         f"{len(vals)}")  # fmt: skip
    return vals


def _lse3(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """log(exp(a) + exp(b) + exp(c)), stable (the maximum taken as a constant)."""
    m = amax(stack([a, b, c], 0), 0).detach()
    return log(exp(a - m) + exp(b - m) + exp(c - m)) + m


@backend.on_tensor_device
@autocast_fp32()
def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths, target_lengths,
             blank: int = 0, reduction: str = "mean", zero_infinity: bool = False) -> Tensor:  # fmt: skip
    """The negative log likelihood of the targets summed over all CTC alignments.

    Args:
        log_probs: (T, N, C) or (T, C) log-probabilities (e.g. ``log_softmax(x, 2)``).
        targets: (N, S) padded targets, or all targets concatenated (1-d).
        input_lengths: (N,) lengths of the inputs (<= T).
        target_lengths: (N,) lengths of the targets.
        blank: the blank label (default 0).
        reduction: "mean" (each loss divided by its target length, then averaged; default),
            "sum" or "none".
        zero_infinity: replace infinite losses (impossible alignments) by 0 (default False).

    Example: ``F.ctc_loss(F.log_softmax(logits, 2), targets, in_lens, tgt_lens)``
    """
    _check_reduction(reduction, "ctc_loss")
    batched = log_probs.ndim == 3
    if log_probs.ndim not in (2, 3):
        raise ShapeError(f"ctc_loss: expected log_probs (T, N, C) or (T, C), got shape "
                         f"{tuple(log_probs.shape)}")  # fmt: skip
    lp = log_probs if batched else log_probs.unsqueeze(1)
    t_max, n, c = lp.shape
    in_lens = _lengths(input_lengths, n, "input_lengths")
    tg_lens = _lengths(target_lengths, n, "target_lengths")
    if max(in_lens) > t_max or min(in_lens) < 0:
        raise ShapeError(f"ctc_loss: input_lengths {in_lens} must be within [0, {t_max}]")
    xp = backend.array_module(lp._data)
    tg = targets._data if isinstance(targets, Tensor) else xp.asarray(targets)
    if not batched:
        tg = tg.reshape(1, -1)
    s_max = max(max(tg_lens), 0)
    lab = xp.full((n, s_max), blank, xp.int64)
    start = 0
    for i, k in enumerate(tg_lens):  # padded (N, S) or concatenated 1-d targets
        row = tg[i, :k] if tg.ndim == 2 else tg[start : start + k]
        lab[i, :k] = row
        start += k
    width = 2 * s_max + 1
    ext = xp.full((n, width), blank, xp.int64)  # blank, l1, blank, l2, ..., blank
    ext[:, 1::2] = lab
    skip = xp.zeros((n, width), bool)  # s may come from s - 2: a label unlike the one before
    if width > 2:
        skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    dt = lp._data.dtype
    neg = Tensor._wrap(xp.full((n, 1), _NEG, dt), lp._device)
    idx = Tensor._wrap(xp.broadcast_to(ext, (t_max, n, width)).copy(), lp._device)
    e = gather(lp, 2, idx)  # (T, N, width): log-prob of each extended label at each step
    init = xp.full((n, width), _NEG, dt)
    init[:, :2] = 0.0
    alpha = where(Tensor._wrap(init == 0.0, lp._device), e[0], _NEG)
    skip_t = Tensor._wrap(skip, lp._device)
    lens = xp.asarray(in_lens).reshape(n, 1)
    none = Tensor._wrap(xp.full((n, width), _NEG, dt), lp._device)
    for t in range(1, max(in_lens) if in_lens else 0):
        a1 = cat([neg, alpha[:, :-1]], 1)
        a2 = where(skip_t, cat([neg, neg, alpha[:, :-2]], 1), _NEG) if width > 2 else none
        new = _lse3(alpha, a1, a2) + e[t]
        alpha = where(Tensor._wrap(xp.broadcast_to(lens > t, (n, width)), lp._device), new, alpha)
    ends = xp.stack([2 * xp.asarray(tg_lens), xp.maximum(2 * xp.asarray(tg_lens) - 1, 0)], 1)
    last = gather(alpha, 1, Tensor._wrap(ends.astype(xp.int64), lp._device))  # (N, 2)
    two = xp.asarray(tg_lens).reshape(n, 1) > xp.asarray([-1, 0]).reshape(1, 2)
    last = where(Tensor._wrap(two, lp._device), last, _NEG)
    m = amax(last, 1, keepdim=True).detach()
    ll = log(sum(exp(last - m), 1)) + m.reshape(n)
    impossible = Tensor._wrap(ll._data < _NEG / 2, lp._device)
    if min(in_lens) == 0:  # an empty input explains only an empty target
        empty = Tensor._wrap(xp.asarray(in_lens) == 0, lp._device)
        ok = Tensor._wrap(xp.asarray(tg_lens) == 0, lp._device)
        impossible = impossible | (empty & ~ok)
        ll = where(empty & ok, 0.0, ll)
    loss = where(impossible, 0.0 if zero_infinity else float("inf"), -ll)
    if reduction == "none":
        return loss if batched else loss.reshape(())
    if reduction == "sum":
        return sum(loss)
    div = clamp(Tensor._wrap(xp.asarray(tg_lens, dtype=dt), lp._device), min=1)
    return mean(loss / div)


from ._common import public  # noqa: E402

__all__ = public(globals())
