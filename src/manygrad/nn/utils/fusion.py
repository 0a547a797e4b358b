"""``nn.utils.fusion``: fold an inference-mode BatchNorm into the convolution or linear
layer before it (one layer, the same outputs in ``eval()``).

Example:
    >>> fused = fuse_conv_bn_eval(conv.eval(), bn.eval())
"""

from __future__ import annotations

import copy

from ...autograd import no_grad
from ...errors import ManygradError
from ..parameter import Parameter

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval",
           "fuse_linear_bn_weights"]  # fmt: skip


class FusionError(ManygradError, AssertionError, ValueError):
    """The modules cannot be fused (PyTorch raises ``AssertionError``; also a ``ValueError``)."""


def _check_eval(first, bn, fn: str) -> None:
    if first.training or bn.training:
        raise FusionError(
            f"Fusion only for eval! {fn} folds the BatchNorm's running statistics: call "
            ".eval() on both modules first"
        )


def _check_stats(bn, fn: str) -> None:
    if bn.running_mean is None or bn.running_var is None:
        raise FusionError(
            f"bn.running_mean and bn.running_var must not be None ({fn} needs a BatchNorm "
            "built with track_running_stats=True)"
        )


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b,
                         transpose: bool = False):  # fmt: skip
    """The weight and bias of ``bn(conv(x))`` as one convolution's (as Parameters).

    Args:
        conv_w, conv_b: the convolution's weight and bias (or None).
        bn_rm, bn_rv, bn_eps: the BatchNorm's running mean, running variance and eps.
        bn_w, bn_b: the BatchNorm's affine weight and bias (or None).
        transpose: True for a ConvTranspose weight, whose output channels are dim 1.

    Example:
        >>> w, b = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean,
        ...                             bn.running_var, bn.eps, bn.weight, bn.bias)
    """
    w_dtype = conv_w.dtype
    b_dtype = conv_b.dtype if conv_b is not None else w_dtype
    with no_grad():
        if conv_b is None:
            conv_b = bn_rm.new_zeros(bn_rm.shape)
        if bn_w is None:
            bn_w = bn_rm.new_ones(bn_rm.shape)
        if bn_b is None:
            bn_b = bn_rm.new_zeros(bn_rm.shape)
        rsqrt = (bn_rv + bn_eps).rsqrt()
        shape = [1] * conv_w.ndim
        shape[1 if transpose else 0] = -1
        w = (conv_w * (bn_w * rsqrt).reshape(shape)).to(w_dtype)
        b = ((conv_b - bn_rm) * rsqrt * bn_w + bn_b).to(b_dtype)
    return Parameter(w, conv_w.requires_grad), Parameter(b, conv_b.requires_grad)


def fuse_conv_bn_eval(conv, bn, transpose: bool = False):
    """A copy of ``conv`` computing ``bn(conv(x))`` (both in eval mode).

    Args:
        conv: a Conv or ConvTranspose layer.
        bn: the BatchNorm after it, with running statistics.
        transpose: True when ``conv`` is a ConvTranspose (default False).

    Example:
        >>> fused = fuse_conv_bn_eval(conv.eval(), bn.eval())
    """
    _check_eval(conv, bn, "fuse_conv_bn_eval")
    fused = copy.deepcopy(conv)
    _check_stats(bn, "fuse_conv_bn_eval")
    fused.weight, fused.bias = fuse_conv_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias,
        transpose,
    )  # fmt: skip
    return fused


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """The weight and bias of ``bn(linear(x))`` as one linear layer's (as Parameters).

    Example:
        >>> w, b = fuse_linear_bn_weights(lin.weight, lin.bias, bn.running_mean,
        ...                               bn.running_var, bn.eps, bn.weight, bn.bias)
    """
    w_dtype = linear_w.dtype
    b_dtype = linear_b.dtype if linear_b is not None else w_dtype
    with no_grad():
        if linear_b is None:
            linear_b = bn_rm.new_zeros(bn_rm.shape)
        scale = bn_w * (bn_rv + bn_eps).rsqrt()
        w = linear_w * scale.unsqueeze(-1).to(w_dtype)
        b = ((linear_b - bn_rm) * scale + bn_b).to(b_dtype)
    return Parameter(w, linear_w.requires_grad), Parameter(b, linear_b.requires_grad)


def fuse_linear_bn_eval(linear, bn):
    """A copy of ``linear`` computing ``bn(linear(x))`` (both in eval mode); the BatchNorm's
    features must equal the linear layer's outputs, or be 1.

    Example:
        >>> fused = fuse_linear_bn_eval(lin.eval(), bn.eval())
    """
    _check_eval(linear, bn, "fuse_linear_bn_eval")
    fused = copy.deepcopy(linear)
    if linear.out_features != bn.num_features and bn.num_features != 1:
        raise FusionError(
            "To fuse, linear.out_features == bn.num_features or bn.num_features == 1, "
            f"got linear.out_features={linear.out_features} and "
            f"bn.num_features={bn.num_features}"
        )
    _check_stats(bn, "fuse_linear_bn_eval")
    fused.weight, fused.bias = fuse_linear_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
    )
    return fused
