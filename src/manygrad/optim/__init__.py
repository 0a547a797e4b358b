"""Optimizers and learning-rate schedules, as ``torch.optim``.

Example:
    >>> opt = mg.optim.AdamW(model.parameters(), lr=1e-3)
    >>> sched = mg.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
"""

from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "lr_scheduler"]
