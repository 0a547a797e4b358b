"""``mg.nn.functional`` (``F``): the ops as functions, named as in ``torch.nn.functional``."""

# ruff: noqa: A002  (`input` is PyTorch's argument name)
from __future__ import annotations

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
from ..ops import elementwise as _ew
from ..ops import fold as _fold
from ..ops import fractional_pool as _fractional_pool
from ..ops import instance_norm as _instance_norm
from ..ops import lp_pool as _lp_pool
from ..ops import margin_loss as _margin_loss
from ..ops import nn as _nn
from ..ops import pool3d as _pool3d
from ..ops import sampling as _sampling
from ..ops import unpool as _unpool
from ..ops.activation import *  # noqa: F403
from ..ops.activation import _write
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
from ..tensor import Tensor

_FAMILIES = (
    _activation, _adaptive_max, _conv3d, _ctc, _distance, _dropout_ext, _fold, _fractional_pool,
    _instance_norm,
    _lp_pool, _margin_loss, _pool3d, _sampling, _unpool,
)  # fmt: skip
__all__ = sorted(set(_ops_all) | {n for m in _FAMILIES for n in m.__all__})
autocast_fp32_public(globals())  # softmin, normalize, ... (as in manygrad.ops)


# ---------------------------------------------------------------------------- PyTorch's own
# signatures: the top-level ops (``mg.relu(input)``, ``mg.dropout(input, p, train)``) differ


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """``max(input, 0)``.

    Args:
        input: a tensor.
        inplace: write the result into ``input`` and return it (default False).

    Example: ``h = F.relu(h, inplace=True)``.
    """
    # NOTE: relu, elu, leaky_relu, silu and dropout are one node each, whose saved values
    # the write protects (``_activation._write``); without a graph, CPU float arrays are
    # computed straight into the input
    if not inplace:
        return _ew.relu(input)
    if _ew._rectify_in_place(input, "relu_"):
        return input
    return _write(input, "relu_", _ew.relu)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """Clevert et al. (2015): ``input`` where positive, else ``alpha * (exp(input) - 1)``.

    Args:
        input: a float tensor.
        alpha: the value approached for large negative inputs (default 1.0).
        inplace: write the result into ``input`` and return it (default False).

    Example: ``h = F.elu(h, alpha=0.5)``.
    """
    return _write(input, "elu_", _ew.elu, alpha) if inplace else _ew.elu(input, alpha)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``input`` where positive, else ``negative_slope * input``.

    Args:
        input: a tensor.
        negative_slope: the slope for negative inputs (default 0.01).
        inplace: write the result into ``input`` and return it (default False).

    Example: ``h = F.leaky_relu(h, 0.2, inplace=True)``.
    """
    if not inplace:
        return _ew.leaky_relu(input, negative_slope)
    if _ew._rectify_in_place(input, "leaky_relu_", negative_slope):
        return input
    # NOTE: the node keeps the result, as PyTorch's leaky_relu_: no copy of the input
    return _write(input, "leaky_relu_", _ew._leaky_relu_on_result, negative_slope)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """Elfwing et al. (2017): ``input * sigmoid(input)`` (a.k.a. swish).

    Args:
        input: a float tensor.
        inplace: write the result into ``input`` and return it (default False).

    Example: ``h = F.silu(h)``.
    """
    return _write(input, "silu_", _ew.silu) if inplace else _ew.silu(input)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    The mask comes from the device's generator (``mg.manual_seed`` makes it repeatable).

    Args:
        input: a float tensor.
        p: probability of zeroing an element (default 0.5).
        training: apply dropout; when False the input is returned as is (default True).
        inplace: write the result into ``input`` and return it (default False).

    Example: ``h = F.dropout(h, p=0.1, training=model.training)``.
    """
    if inplace and training:
        return _write(input, "dropout_", _nn._dropout, p, True)
    return _nn._dropout(input, p, training)


def relu_(input: Tensor) -> Tensor:
    """``relu`` written into ``input``."""
    return relu(input, inplace=True)


def _in_place(fn):
    """``fn(..., inplace=True)`` under the name ``fn_`` (PyTorch's ``F.elu_`` and kin)."""

    def op(input, *args, **kwargs):
        return fn(input, *args, inplace=True, **kwargs)

    op.__name__ = op.__qualname__ = fn.__name__ + "_"
    op.__doc__ = f"``{fn.__name__}`` written into ``input``."
    return op


elu_ = _in_place(elu)
celu_ = _in_place(celu)  # noqa: F405
selu_ = _in_place(selu)  # noqa: F405
leaky_relu_ = _in_place(leaky_relu)
hardtanh_ = _in_place(hardtanh)  # noqa: F405
rrelu_ = _in_place(rrelu)  # noqa: F405
threshold_ = _in_place(threshold)  # noqa: F405
fractional_max_pool2d_with_indices = _fractional_pool.fractional_max_pool2d
fractional_max_pool3d_with_indices = _fractional_pool.fractional_max_pool3d


def __getattr__(name: str):
    # NOTE: lazily: nn.attention and nn.linear_cross_entropy import the layers, which import this
    # module's ops
    if name == "multi_head_attention_forward":
        from .attention import multi_head_attention_forward

        return multi_head_attention_forward
    if name == "linear_cross_entropy":
        from .linear_cross_entropy import linear_cross_entropy

        return linear_cross_entropy
    if name in ("has_torch_function", "has_torch_function_unary",
                "has_torch_function_variadic", "handle_torch_function"):  # fmt: skip
        from .. import overrides

        return getattr(overrides, name)
    raise AttributeError(f"module 'manygrad.nn.functional' has no attribute {name!r}")
