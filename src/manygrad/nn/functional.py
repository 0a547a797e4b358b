"""``mg.nn.functional`` (``F``): the ops as functions, named as in ``torch.nn.functional``."""

from ..autograd import autocast_fp32_public
from ..ops import *  # noqa: F403
from ..ops import __all__ as _ops_all

# layer families whose functions live only here (as in torch.nn.functional)
from ..ops import activation as _activation
from ..ops import adaptive_max as _adaptive_max
from ..ops import conv3d as _conv3d
from ..ops import ctc as _ctc
from ..ops import distance as _distance
from ..ops import dropout_ext as _dropout_ext
from ..ops import fold as _fold
from ..ops import fractional_pool as _fractional_pool
from ..ops import instance_norm as _instance_norm
from ..ops import lp_pool as _lp_pool
from ..ops import margin_loss as _margin_loss
from ..ops import pool3d as _pool3d
from ..ops import sampling as _sampling
from ..ops import unpool as _unpool
from ..ops.activation import *  # noqa: F403
from ..ops.adaptive_max import *  # noqa: F403
from ..ops.conv3d import *  # noqa: F403
from ..ops.ctc import *  # noqa: F403
from ..ops.distance import *  # noqa: F403
from ..ops.dropout_ext import *  # noqa: F403
from ..ops.fold import *  # noqa: F403
from ..ops.fractional_pool import *  # noqa: F403
from ..ops.instance_norm import *  # noqa: F403
from ..ops.lp_pool import *  # noqa: F403
from ..ops.margin_loss import *  # noqa: F403
from ..ops.pool3d import *  # noqa: F403
from ..ops.sampling import *  # noqa: F403
from ..ops.unpool import *  # noqa: F403

_FAMILIES = (
    _activation, _adaptive_max, _conv3d, _ctc, _distance, _dropout_ext, _fold, _fractional_pool,
    _instance_norm,
    _lp_pool, _margin_loss, _pool3d, _sampling, _unpool,
)  # fmt: skip
__all__ = sorted(set(_ops_all) | {n for m in _FAMILIES for n in m.__all__})
autocast_fp32_public(globals())  # softmin, normalize, ... (as in manygrad.ops)


def _in_place(fn):
    """``fn`` writing its result into its input (PyTorch's ``F.relu_`` and kin)."""

    def op(input, *args, **kwargs):  # noqa: A002
        return input.copy_(fn(input, *args, **kwargs))

    op.__name__ = op.__qualname__ = fn.__name__ + "_"
    op.__doc__ = f"``{fn.__name__}`` in place: the result is written into ``input``."
    return op


relu_ = _in_place(relu)  # noqa: F405
elu_ = _in_place(elu)  # noqa: F405
celu_ = _in_place(celu)  # noqa: F405
selu_ = _in_place(selu)  # noqa: F405
leaky_relu_ = _in_place(leaky_relu)  # noqa: F405
hardtanh_ = _in_place(hardtanh)  # noqa: F405
rrelu_ = _in_place(rrelu)  # noqa: F405
threshold_ = _in_place(threshold)  # noqa: F405
fractional_max_pool2d_with_indices = _fractional_pool.fractional_max_pool2d
fractional_max_pool3d_with_indices = _fractional_pool.fractional_max_pool3d


def __getattr__(name: str):
    # NOTE: lazily: nn.attention and nn.linear_xent import the layers, which import this
    # module's ops
    if name == "multi_head_attention_forward":
        from .attention import multi_head_attention_forward

        return multi_head_attention_forward
    if name == "linear_cross_entropy":
        from .linear_xent import linear_cross_entropy

        return linear_cross_entropy
    if name in ("has_torch_function", "has_torch_function_unary",
                "has_torch_function_variadic", "handle_torch_function"):  # fmt: skip
        from .. import overrides

        return getattr(overrides, name)
    raise AttributeError(f"module 'manygrad.nn.functional' has no attribute {name!r}")
