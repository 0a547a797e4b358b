"""The functional API: every op as a function of tensors (``mg.ops.exp(x)``).

``manygrad`` re-exports these at the top level and ``manygrad.nn.functional`` re-exports
them too, as PyTorch does.
"""

from . import arrange, conv, elementwise, indexing, linalg, movement, nn, norm, reduce
from .conv import *  # noqa: F403
from .elementwise import *  # noqa: F403
from .linalg import *  # noqa: F403
from .movement import *  # noqa: F403
from .nn import *  # noqa: F403
from .norm import *  # noqa: F403
from .reduce import *  # noqa: F403

__all__ = sorted(
    {n for m in (arrange, conv, elementwise, indexing, linalg, movement, nn, norm, reduce) for n in getattr(m, "__all__", [])}
)
