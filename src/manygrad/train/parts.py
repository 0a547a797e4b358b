"""Pieces of the training loop: loss, optimizer and scheduler by name, Ctrl-C handling."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from typing import Any

from ..errors import ManygradError
from ..nn import functional as F


class DivergedError(ManygradError, RuntimeError):
    """The loss became NaN or infinite."""

    def __init__(self, msg: str, step: int):
        super().__init__(msg)
        self.step = step


@dataclass
class FitResult:
    """What :func:`fit` returns."""

    model: Any
    metrics: dict
    history: list = field(default_factory=list)
    run_dir: str | None = None
    step: int = 0
    interrupted: bool = False
    checkpoint_step: int | None = None  # step of the last checkpoint written

    def __repr__(self) -> str:
        shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.metrics.items()}
        state = ", interrupted" if self.interrupted else ""
        return f"FitResult(step={self.step}{state}, run_dir={self.run_dir!r}, metrics={shown})"


def diverged(loss: float, step: int, steps_per_epoch: int, lr: float) -> DivergedError:
    """The error for a non-finite ``loss`` at ``step``, with what to try."""
    return DivergedError(
        f"the loss became {loss} at step {step} (epoch {(step - 1) // steps_per_epoch + 1}); "
        f"try a lower learning rate (--lr, now {lr:g}), use a GradScaler for fp16, or train "
        "in full precision (--precision fp32)",
        step,
    )


def read_pending(pending: list, classification: bool, shard=None, device=None, stop=False):
    """The losses logged since the last read, brought to the host in one transfer.

    ``pending`` holds ``(loss, correct or None, n_rank, n_batch)`` per step. With a
    ``shard`` the sums are all-reduced first (with ``stop``), so the values are global.
    Returns (mean loss per step, samples per step, correct predictions, stop on any rank).
    """
    import numpy as np

    from .. import backend

    if shard is not None:
        sums, correct, stop = shard.sum_logged(pending, stop, device)
        ns = np.asarray([p[3] for p in pending], np.float64)
        return sums / ns, ns, correct, stop
    xp = backend.array_module(pending[0][0]._data)
    losses = backend.to_numpy(xp.stack([p[0]._data.astype(xp.float32) for p in pending]))
    ns = np.asarray([p[2] for p in pending], np.float64)
    correct = 0.0
    if classification:
        correct = float(backend.to_numpy(xp.stack([p[1]._data for p in pending])).sum())
    return losses, ns, correct, stop


def default_loss(out, y, label_smoothing: float = 0.0):
    if out.ndim > 2:  # sequence models: (B, T, V) logits, (B, T) targets
        out, y = out.reshape(-1, out.shape[-1]), y.reshape(-1)
    if label_smoothing:
        return F.cross_entropy(out, y, label_smoothing=label_smoothing)
    return F.cross_entropy(out, y)


def correct_count(out, y):
    """Number of correct predictions as a device scalar (classification only)."""
    return (out.argmax(-1) == y).sum()


def make_optimizer(name: str, params, lr: float, weight_decay: float = 0.0):
    """``sgd`` (momentum 0.9), ``adam`` or ``adamw`` from ``mg.optim``."""
    from .. import optim

    name = name.lower()
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; available: sgd, adam, adamw")


def make_scheduler(name: str | None, optimizer, total_steps: int):
    """``cosine`` (per step, to 0), ``onecycle`` or ``None``/``"none"``."""
    if name in (None, "none", "constant"):
        return None
    from ..optim import lr_scheduler

    if name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    if name == "onecycle":
        lr = optimizer.param_groups[0]["lr"]
        return lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(total_steps, 1))
    raise ValueError(f"unknown scheduler {name!r}; available: cosine, onecycle, none")


class SigintDeferred:
    """Turns the first Ctrl-C into a flag checked between steps (a step is never cut in half);
    a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
