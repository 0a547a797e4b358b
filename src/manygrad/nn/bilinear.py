"""``Bilinear``: ``y = x1^T A x2 + b`` with PyTorch's parameter names and initialisation."""

from __future__ import annotations

import math

from .. import creation
from ..ops import dropout_ext as _D
from ..tensor import Tensor
from . import init
from .module import Module
from .parameter import Parameter


class Bilinear(Module):
    """A bilinear map of two inputs.

    Args:
        in1_features, in2_features, out_features: widths. bias: default True.

    weight (out, in1, in2) and bias (out,) start as U(-1/sqrt(in1), 1/sqrt(in1)).

    Example:
        >>> mg.nn.Bilinear(3, 5, 2)(mg.randn(4, 3), mg.randn(4, 5)).shape
        manygrad.Size([4, 2])
    """

    def __init__(self, in1_features: int, in2_features: int, out_features: int,
                 bias: bool = True, device=None, dtype=None) -> None:  # fmt: skip
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.in1_features, self.in2_features = in1_features, in2_features
        self.out_features = out_features
        self.weight = Parameter(creation.empty(out_features, in1_features, in2_features, **kw))
        if bias:
            self.bias = Parameter(creation.empty(out_features, **kw))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        return _D.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")  # fmt: skip
