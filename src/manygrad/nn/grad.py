"""``torch.nn.grad``: the gradients of a convolution with respect to its input or its
weight, given the output gradient, as functions of their own (custom backward passes and
layer-wise relevance code call them).

Each runs the convolution's own backward: a zero tensor of the requested size stands in
for the input (or the weight), and autograd returns its gradient. The result is
differentiable with respect to ``weight`` (or ``input``) and ``grad_output`` as well.

Example:
    >>> gx = mg.nn.grad.conv2d_input(x.shape, w, gy, padding=1)
    >>> gw = mg.nn.grad.conv2d_weight(x, w.shape, gy, padding=1)
"""

from __future__ import annotations

from .. import autograd
from ..tensor import Tensor


def _grad_of(conv, size, other: Tensor, grad_output: Tensor, wrt_input: bool, kwargs) -> Tensor:
    from .. import creation

    z = creation.zeros(tuple(size), dtype=other.dtype, device=other.device, requires_grad=True)
    deep = other.requires_grad or grad_output.requires_grad
    with autograd.enable_grad():
        y = conv(z, other, None, **kwargs) if wrt_input else conv(other, z, None, **kwargs)
        (g,) = autograd.grad(y, z, grad_output, create_graph=deep)
    return g


def _pair(conv_name: str):
    def input_grad(input_size, weight: Tensor, grad_output: Tensor, stride=1, padding=0,
                   dilation=1, groups: int = 1) -> Tensor:  # fmt: skip
        from . import functional as F

        kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        return _grad_of(getattr(F, conv_name), input_size, weight, grad_output, True, kw)

    def weight_grad(input: Tensor, weight_size, grad_output: Tensor, stride=1, padding=0,  # noqa: A002
                    dilation=1, groups: int = 1) -> Tensor:  # fmt: skip
        from . import functional as F

        kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        return _grad_of(getattr(F, conv_name), weight_size, input, grad_output, False, kw)

    input_grad.__name__, weight_grad.__name__ = f"{conv_name}_input", f"{conv_name}_weight"
    input_grad.__qualname__, weight_grad.__qualname__ = input_grad.__name__, weight_grad.__name__
    input_grad.__doc__ = (f"The gradient of ``{conv_name}`` with respect to an input of size "
                          "``input_size``, given ``weight`` and ``grad_output``.")  # fmt: skip
    weight_grad.__doc__ = (f"The gradient of ``{conv_name}`` with respect to a weight of "
                           "size ``weight_size``, given ``input`` and ``grad_output``.")  # fmt: skip
    return input_grad, weight_grad


conv1d_input, conv1d_weight = _pair("conv1d")
conv2d_input, conv2d_weight = _pair("conv2d")
conv3d_input, conv3d_weight = _pair("conv3d")

__all__ = ["conv1d_input", "conv1d_weight", "conv2d_input", "conv2d_weight", "conv3d_input",
           "conv3d_weight"]  # fmt: skip
