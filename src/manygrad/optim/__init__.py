"""Optimizers and learning-rate schedules, as ``torch.optim``.

Example:
    >>> opt = mg.optim.AdamW(model.parameters(), lr=1e-3)
    >>> sched = mg.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
"""

from . import lr_scheduler, swa_utils

# more of torch.optim
from ._stateless import swap_in_optimizer_params_and_state  # noqa: E402
from .adafactor import Adafactor, Muon  # noqa: E402
from .adagrad import Adadelta, Adagrad  # noqa: E402
from .adam import Adam, AdamW
from .adamax import Adamax, NAdam, RAdam  # noqa: E402
from .lbfgs import LBFGS  # noqa: E402
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .rprop import ASGD, Rprop  # noqa: E402
from .sgd import SGD
from .sparse_adam import SparseAdam  # noqa: E402

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "lr_scheduler"]
__all__ += [
    "swa_utils",
    "Adadelta",
    "Adafactor",
    "Muon",
    "Adagrad",
    "Adamax",
    "ASGD",
    "LBFGS",
    "NAdam",
    "RAdam",
    "Rprop",
    "SparseAdam",
    "swap_in_optimizer_params_and_state",
]
