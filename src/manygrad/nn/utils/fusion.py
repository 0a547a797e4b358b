"""``nn.utils.fusion``: fold an inference-mode BatchNorm into the convolution or linear
layer before it (one layer, the same outputs in ``eval()``).

Example:
    >>> fused = fuse_conv_bn_eval(conv.eval(), bn.eval())
"""

from __future__ import annotations

import copy

from ...autograd import no_grad
from ..parameter import Parameter


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b,
                         transpose: bool = False):  # fmt: skip
    """The weight and bias of ``bn(conv(x))`` as one convolution's (as Parameters)."""
    with no_grad():
        dtype = conv_w.dtype
        if conv_b is None:
            conv_b = bn_rm.new_zeros(bn_rm.shape)
        if bn_w is None:
            bn_w = bn_rm.new_ones(bn_rm.shape)
        if bn_b is None:
            bn_b = bn_rm.new_zeros(bn_rm.shape)
        scale = bn_w * (bn_rv + bn_eps).rsqrt()
        shape = [1] * conv_w.ndim
        shape[1 if transpose else 0] = -1
        w = (conv_w * scale.reshape(shape)).to(dtype)
        b = ((conv_b - bn_rm) * scale + bn_b).to(dtype)
    return Parameter(w, conv_w.requires_grad), Parameter(b, conv_b.requires_grad)


def fuse_conv_bn_eval(conv, bn, transpose: bool = False):
    """A copy of ``conv`` computing ``bn(conv(x))`` (both in eval mode)."""
    if conv.training or bn.training:
        raise ValueError("fuse_conv_bn_eval: only eval mode is supported; call .eval() on both")
    fused = copy.deepcopy(conv)
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("fuse_conv_bn_eval: the BatchNorm needs running statistics")
    fused.weight, fused.bias = fuse_conv_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias,
        transpose,
    )  # fmt: skip
    return fused


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """The weight and bias of ``bn(linear(x))`` as one linear layer's (as Parameters)."""
    with no_grad():
        if linear_b is None:
            linear_b = bn_rm.new_zeros(bn_rm.shape)
        scale = bn_w * (bn_rv + bn_eps).rsqrt()
        w = linear_w * scale.unsqueeze(-1)
        b = (linear_b - bn_rm) * scale + bn_b
    return Parameter(w, linear_w.requires_grad), Parameter(b, linear_b.requires_grad)


def fuse_linear_bn_eval(linear, bn):
    """A copy of ``linear`` computing ``bn(linear(x))`` (both in eval mode)."""
    if linear.training or bn.training:
        raise ValueError("fuse_linear_bn_eval: only eval mode is supported; call .eval() on both")
    if linear.out_features != bn.num_features and bn.num_features != 1:
        raise ValueError(
            "fuse_linear_bn_eval: the BatchNorm's features must equal the linear layer's "
            f"outputs ({bn.num_features} and {linear.out_features})"
        )
    fused = copy.deepcopy(linear)
    fused.weight, fused.bias = fuse_linear_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
    )
    return fused
