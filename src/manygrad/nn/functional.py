"""``mg.nn.functional`` (``F``): the ops as functions, named as in ``torch.nn.functional``."""

from ..ops import *  # noqa: F403
from ..ops import __all__  # noqa: F401
