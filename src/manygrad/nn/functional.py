"""``mg.nn.functional`` (``F``): the ops as functions, named as in ``torch.nn.functional``."""

from ..ops import *  # noqa: F403
from ..ops import __all__ as _ops_all

# layer families whose functions live only here (as in torch.nn.functional)
from ..ops import activation as _activation
from ..ops.activation import *  # noqa: F403

__all__ = sorted(set(_ops_all) | {n for m in (_activation,) for n in m.__all__})
