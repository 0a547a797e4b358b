"""``Linear`` and the shape-only layers ``Identity``, ``Flatten``, ``Unflatten``."""

from __future__ import annotations

from .. import creation
from .. import ops as F
from ..tensor import Tensor
from . import init
from .module import Module
from .parameter import Parameter


class Identity(Module):
    """Returns its input unchanged (arguments are accepted and ignored).

    Example:
        >>> mg.nn.Identity()(x) is x
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Linear(Module):
    """``y = x @ weight.T + bias``.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: learn an additive bias (default True).
        device, dtype: where and in which float type to create the parameters.

    Weight and bias start as U(-1/sqrt(in_features), 1/sqrt(in_features)) (PyTorch's
    kaiming_uniform_ with a=sqrt(5)).

    Example:
        >>> mg.nn.Linear(4, 3)(mg.randn(2, 4)).shape
        manygrad.Size([2, 3])
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device=None, dtype=None) -> None:  # fmt: skip
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(creation.empty(out_features, in_features, device=device,
                                               dtype=dtype))  # fmt: skip
        if bias:
            self.bias = Parameter(creation.empty(out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init._default_weight_bias_(self.weight, self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Flatten(Module):
    """Flatten dims ``start_dim..end_dim`` into one.

    Args:
        start_dim: first dim to flatten (default 1, keeping the batch dim).
        end_dim: last dim to flatten (default -1).

    Example:
        >>> mg.nn.Flatten()(mg.zeros(2, 3, 4)).shape
        manygrad.Size([2, 12])
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        return F.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim ``dim`` into the shape ``unflattened_size``.

    Args:
        dim: the dim to split.
        unflattened_size: its new shape (a tuple whose product is the dim's size).

    Example:
        >>> mg.nn.Unflatten(1, (3, 4))(mg.zeros(2, 12)).shape
        manygrad.Size([2, 3, 4])
    """

    def __init__(self, dim: int, unflattened_size) -> None:
        super().__init__()
        self.dim = dim
        self.unflattened_size = unflattened_size

    def forward(self, input: Tensor) -> Tensor:
        return F.unflatten(input, self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
