"""Stochastic weight averaging, as ``torch.optim.swa_utils``: ``AveragedModel``, ``SWALR``,
``update_bn`` and the EMA helpers.

From Izmailov et al., "Averaging Weights Leads to Wider Optima and Better Generalization"
(UAI 2018).

Example:
    >>> swa_model = AveragedModel(model)
    >>> swa_sched = SWALR(opt, swa_lr=0.05)
    >>> for epoch in range(n):
    ...     train(model, opt); swa_model.update_parameters(model); swa_sched.step()
    >>> update_bn(loader, swa_model)
"""

from __future__ import annotations

import copy
import math

from .. import nn
from ..autograd import no_grad
from ..dtypes import int64
from ..tensor import Tensor
from .lr_scheduler import LRScheduler, _per_group

__all__ = [
    "AveragedModel",
    "SWALR",
    "get_ema_avg_fn",
    "get_ema_multi_avg_fn",
    "get_swa_avg_fn",
    "get_swa_multi_avg_fn",
    "update_bn",
]


def _check_decay(decay: float) -> None:
    if not 0.0 <= decay <= 1.0:
        raise ValueError(
            f"Invalid decay value {decay} provided. Please provide a value in [0,1] range."
        )


def get_ema_avg_fn(decay: float = 0.999):
    """An ``avg_fn`` for exponential moving averages: ``decay * avg + (1 - decay) * new``.

    Example:
        >>> ema = AveragedModel(model, avg_fn=get_ema_avg_fn(0.99))
    """
    _check_decay(decay)

    @no_grad()
    def ema_update(ema_param: Tensor, current_param: Tensor, num_averaged):
        return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_ema_multi_avg_fn(decay: float = 0.999):
    """A ``multi_avg_fn`` for exponential moving averages over lists of parameters.

    Floating tensors move by ``lerp_`` towards the model's (PyTorch's ``_foreach_lerp_``),
    others are set to ``decay * avg + (1 - decay) * new``.

    Example:
        >>> ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.99))
    """
    _check_decay(decay)

    def ema_update(ema_param_list, current_param_list, _):
        with no_grad():
            for p_ema, p_model in zip(ema_param_list, current_param_list):
                if p_ema.is_floating_point() or p_ema.is_complex():
                    p_ema.lerp_(p_model, 1 - decay)
                else:
                    p_ema.copy_(p_ema * decay + p_model * (1 - decay))

    return ema_update


def get_swa_avg_fn():
    """An ``avg_fn`` for the equal-weight running mean (SWA):
    ``avg + (new - avg) / (num_averaged + 1)``.

    Example:
        >>> swa = AveragedModel(model, avg_fn=get_swa_avg_fn())
    """

    @no_grad()
    def swa_update(averaged_param: Tensor, current_param: Tensor, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)

    return swa_update


def get_swa_multi_avg_fn():
    """A ``multi_avg_fn`` for the equal-weight running mean (SWA) over lists of tensors,
    in place: floating tensors by ``lerp_`` with weight ``1 / (num_averaged + 1)``,
    others by adding ``(new - avg) / (num_averaged + 1)``.

    Example:
        >>> swa = AveragedModel(model, multi_avg_fn=get_swa_multi_avg_fn())
    """

    def swa_update(averaged_param_list, current_param_list, num_averaged):
        with no_grad():
            for avg, cur in zip(averaged_param_list, current_param_list):
                if avg.is_floating_point() or avg.is_complex():
                    avg.lerp_(cur, 1 / (num_averaged + 1))
                else:
                    avg.copy_(avg + (cur - avg) / (num_averaged + 1))

    return swa_update


class AveragedModel(nn.Module):
    """A copy of ``model`` whose parameters (and optionally buffers) are running averages
    of the model's, updated by ``update_parameters``.

    Args:
        model: the model to average.
        device: where to keep the copy (default: where the model is).
        avg_fn: ``(averaged, current, num_averaged) -> new averaged`` per tensor (default:
            the equal-weight running mean).
        multi_avg_fn: updates lists of tensors in place instead.
        use_buffers: average the buffers too (default False).
    """

    def __init__(self, model: nn.Module, device=None, avg_fn=None, multi_avg_fn=None,
                 use_buffers: bool = False):  # fmt: skip
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            # NOTE: PyTorch's exception type for this misuse
            raise AssertionError(
                "Only one of avg_fn and multi_avg_fn should be provided (AveragedModel takes "
                "a per-tensor avg_fn or an in-place multi_avg_fn)"
            )
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        from ..creation import tensor

        self.register_buffer("n_averaged", tensor(0, dtype=int64, device=device))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def update_parameters(self, model: nn.Module) -> None:
        """Fold the current parameters (and buffers, with ``use_buffers``) of ``model``
        into the average.

        As PyTorch: the first call copies them; later calls run ``avg_fn(avg, new, n)`` per
        tensor, or ``multi_avg_fn(avgs, news, n)`` once per device and dtype (``n``, the
        count so far, is a 0-d tensor on their device); without either, the running mean
        (``lerp_`` on a GPU, ``avg + (new - avg) / (n + 1)`` on the CPU). Integer buffers
        are averaged too and rounded toward zero as they are written back.
        """
        if self.use_buffers:
            mine = list(self.module.parameters()) + list(self.module.buffers())
            theirs = list(model.parameters()) + list(model.buffers())
        else:
            mine, theirs = list(self.parameters()), list(model.parameters())
        with no_grad():
            pairs = [(m.detach(), t.detach().to(m.device)) for m, t in zip(mine, theirs)]
            n = self.n_averaged
            if int(n.item()) == 0:
                for m, c in pairs:
                    m.copy_(c)
            elif self.avg_fn is not None:
                for m, c in pairs:
                    m.copy_(self.avg_fn(m, c, n.to(m.device)))
            else:
                groups: dict = {}
                for m, c in pairs:
                    groups.setdefault((m.device, m.dtype), []).append((m, c))
                for (dev, _), grp in groups.items():
                    ms, cs = [m for m, _ in grp], [c for _, c in grp]
                    if self.multi_avg_fn is not None:
                        self.multi_avg_fn(ms, cs, n.to(dev))
                    elif dev.type != "cpu":  # NOTE: PyTorch's foreach (lerp) path on a GPU
                        get_swa_multi_avg_fn()(ms, cs, n.to(dev))
                    else:
                        avg = get_swa_avg_fn()
                        for m, c in grp:
                            m.copy_(avg(m, c, n.to(dev)))
            if not self.use_buffers:
                # NOTE: as PyTorch, the buffers follow the model (BatchNorm stats via update_bn)
                for b_swa, b in zip(self.module.buffers(), model.buffers()):
                    b_swa.copy_(b.detach().to(b_swa.device))
            self.n_averaged.add_(1)


@no_grad()
def update_bn(loader, model: nn.Module, device=None) -> None:
    """Recompute the BatchNorm running statistics of ``model`` with one pass over ``loader``
    (a cumulative average over its batches)."""
    from ..nn.normalization import _BatchNorm

    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    if not norms:
        return
    saved = {}
    for m in norms:
        m.reset_running_stats()
        saved[m] = m.momentum
        m.momentum = None
    was_training = model.training
    model.train()
    for batch in loader:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        if device is not None:
            x = x.to(device)
        model(x)
    for m, mom in saved.items():
        m.momentum = mom
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's lr to ``swa_lr`` over ``anneal_epochs`` steps (cosine or linear),
    then hold it.

    Example:
        >>> sched = SWALR(opt, swa_lr=0.05, anneal_epochs=5, anneal_strategy="linear")
    """

    def __init__(self, optimizer, swa_lr, anneal_epochs: int = 10, anneal_strategy: str = "cos",
                 last_epoch: int = -1):  # fmt: skip
        for lr, group in zip(_per_group("swa_lr", optimizer.param_groups, swa_lr),
                             optimizer.param_groups):  # fmt: skip
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"SWALR: anneal_strategy must be 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")  # fmt: skip
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"SWALR: anneal_epochs must be an int >= 0, got {anneal_epochs}")
        self.anneal_strategy, self.anneal_epochs = anneal_strategy, anneal_epochs
        super().__init__(optimizer, last_epoch)

    def _anneal(self, t: float) -> float:
        return t if self.anneal_strategy == "linear" else (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _initial(lr: float, swa_lr: float, alpha: float) -> float:
        return swa_lr if alpha == 1 else (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self):
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        groups = self.optimizer.param_groups
        prev_alpha = self._anneal(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        prev = [self._initial(g["lr"], g["swa_lr"], prev_alpha) for g in groups]
        alpha = self._anneal(max(0, min(1, step / max(1, self.anneal_epochs))))
        return [g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(groups, prev)]
