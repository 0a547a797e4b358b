"""The functional API: every op as a function of tensors (``mg.ops.exp(x)``).

``manygrad`` re-exports these at the top level and ``manygrad.nn.functional`` re-exports
them too, as PyTorch does.
"""

from . import (
    arrange,
    attention,
    conv,
    elementwise,
    indexing,
    linalg,
    loss,
    movement,
    nn,
    norm,
    pool,
    reduce,
)  # fmt: skip

# NOTE: taken before the star imports: `from .reduce import *` rebinds the name `norm`
_MODULES = (
    arrange, attention, conv, elementwise, indexing, linalg, loss, movement, nn, norm, pool,
    reduce,
)  # fmt: skip

from .arrange import *  # noqa: E402, F403
from .attention import *  # noqa: E402, F403
from .conv import *  # noqa: E402, F403
from .elementwise import *  # noqa: E402, F403
from .indexing import *  # noqa: E402, F403
from .linalg import *  # noqa: E402, F403
from .loss import *  # noqa: E402, F403
from .movement import *  # noqa: E402, F403
from .nn import *  # noqa: E402, F403
from .norm import *  # noqa: E402, F403
from .pool import *  # noqa: E402, F403
from .reduce import *  # noqa: E402, F403

__all__ = sorted({n for m in _MODULES for n in getattr(m, "__all__", [])})

# PyTorch's wider op set (sorting, scatter, products, linalg, random, more maths)
from . import (  # noqa: E402
    compat_ops,
    complex_ops,
    linalg_extra,
    linalg_lu,
    mathfns,
    misc,
    products,
    quantize,
    random,
    scans,
    scatter,
    shaping,
    sorting,
    special_fns,
    special_more,
    stats,
    strided,
)

_MORE = (
    compat_ops, complex_ops, linalg_extra, linalg_lu, mathfns, misc, products, quantize, random, scans, scatter, shaping, sorting,
    special_fns, special_more, stats, strided,
)  # fmt: skip
from .compat_ops import *  # noqa: E402, F403
from .complex_ops import *  # noqa: E402, F403
from .linalg_extra import *  # noqa: E402, F403
from .linalg_lu import *  # noqa: E402, F403
from .mathfns import *  # noqa: E402, F403
from .misc import *  # noqa: E402, F403
from .products import *  # noqa: E402, F403
from .quantize import *  # noqa: E402, F403
from .random import *  # noqa: E402, F403
from .scans import *  # noqa: E402, F403
from .scatter import *  # noqa: E402, F403
from .shaping import *  # noqa: E402, F403
from .sorting import *  # noqa: E402, F403
from .special_fns import *  # noqa: E402, F403
from .special_more import *  # noqa: E402, F403
from .stats import *  # noqa: E402, F403
from .strided import *  # noqa: E402, F403

__all__ = sorted(set(__all__) | {n for m in _MORE for n in getattr(m, "__all__", [])})

# PyTorch runs these in float32 under autocast on GPUs (exp, sum, softmax, layer_norm, ...)
from ..autograd import autocast_fp32_public  # noqa: E402

autocast_fp32_public(globals())
