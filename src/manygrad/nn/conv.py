"""Convolutions: ``Conv1d``, ``Conv2d``, ``ConvTranspose1d/2d`` (PyTorch's arguments)."""

from __future__ import annotations

from .. import creation
from .. import ops as F
from ..tensor import Tensor
from . import init
from .module import Module
from .parameter import Parameter

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _ntuple(v, n: int) -> tuple:
    if isinstance(v, (tuple, list)):
        if len(v) != n:
            raise ValueError(f"expected {n} values, got {tuple(v)}")
        return tuple(v)
    return (v,) * n


class _ConvNd(Module):
    _n = 2
    transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride, padding,
                 dilation, groups: int, bias: bool, padding_mode: str, output_padding=0,
                 device=None, dtype=None) -> None:  # fmt: skip
        super().__init__()
        n = self._n
        name = type(self).__name__
        if groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must "
                f"both be divisible by groups ({groups})"
            )
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got "
                             f"{padding_mode!r}")  # fmt: skip
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: padding must be 'same', 'valid' or numbers, got "
                                 f"{padding!r}")  # fmt: skip
            if padding == "same" and any(s != 1 for s in _ntuple(stride, n)):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 "convolutions")  # fmt: skip
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _ntuple(kernel_size, n)
        self.stride = _ntuple(stride, n)
        self.padding = padding if isinstance(padding, str) else _ntuple(padding, n)
        self.dilation = _ntuple(dilation, n)
        self.output_padding = _ntuple(output_padding, n)
        self.groups = groups
        self.padding_mode = padding_mode
        if isinstance(self.padding, str):
            pads = []
            for d, k in zip(self.dilation, self.kernel_size):
                total = d * (k - 1)
                left = total // 2
                pads = [left, total - left] + pads
            self._reversed_padding_repeated_twice = pads
        else:
            self._reversed_padding_repeated_twice = [p for p in reversed(self.padding)
                                                     for _ in range(2)]  # fmt: skip
        if self.transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(creation.empty(*shape, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(creation.empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init._default_weight_bias_(self.weight, self.bias)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", stride={self.stride}"
        if isinstance(self.padding, str) or self.padding != (0,) * len(self.padding):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def _padded(self, input: Tensor):
        """(input, padding) with non-zero padding modes applied explicitly."""
        if self.padding_mode == "zeros":
            if not isinstance(self.padding, str):
                return input, self.padding
            pads = self._reversed_padding_repeated_twice
            if all(pads[i] == pads[i + 1] for i in range(0, len(pads), 2)):
                return input, tuple(reversed(pads[::2]))
            return F.pad(input, tuple(pads)), 0
        x = F.pad(input, tuple(self._reversed_padding_repeated_twice), mode=self.padding_mode)
        return x, 0


class Conv1d(_ConvNd):
    """1-D convolution over (N, C_in, L) inputs.

    Args:
        in_channels, out_channels: channels of input and output.
        kernel_size, stride (1), padding (0, or "same"/"valid"), dilation (1), groups (1),
        bias (True), padding_mode ("zeros", "reflect", "replicate", "circular").

    Example:
        >>> mg.nn.Conv1d(3, 8, 5, padding=2)(mg.randn(2, 3, 16)).shape
        manygrad.Size([2, 8, 16])
    """

    _n = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, 0, device, dtype)  # fmt: skip

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(input, self.weight, self.bias)

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """This layer's convolution with the given weight and bias (padding mode applied);
        subclasses that transform the weight call it, as in PyTorch."""
        x, pad = self._padded(input)
        return F.conv1d(x, weight, bias, self.stride, pad, self.dilation, self.groups)


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W) inputs.

    Args:
        in_channels, out_channels: channels of input and output.
        kernel_size, stride (1), padding (0, or "same"/"valid"), dilation (1), groups (1),
        bias (True), padding_mode ("zeros", "reflect", "replicate", "circular").

    Weight (out_channels, in_channels / groups, kH, kW) starts as PyTorch's
    kaiming_uniform_(a=sqrt(5)); bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Example:
        >>> mg.nn.Conv2d(3, 8, 3, padding=1)(mg.randn(2, 3, 8, 8)).shape
        manygrad.Size([2, 8, 8, 8])
    """

    _n = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, 0, device, dtype)  # fmt: skip

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(input, self.weight, self.bias)

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """This layer's convolution with the given weight and bias (padding mode applied);
        subclasses that transform the weight call it, as in PyTorch."""
        x, pad = self._padded(input)
        return F.conv2d(x, weight, bias, self.stride, pad, self.dilation, self.groups)


class _ConvTransposeNd(_ConvNd):
    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None) -> None:  # fmt: skip
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for '
                             f"{type(self).__name__}")  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, device, dtype)  # fmt: skip

    def forward(self, input: Tensor, output_size=None) -> Tensor:
        out_pad = self.output_padding
        if output_size is not None:
            out_pad = self._output_padding(input, output_size)
        fn = F.conv_transpose1d if self._n == 1 else F.conv_transpose2d
        return fn(input, self.weight, self.bias, self.stride, self.padding, out_pad,
                  self.groups, self.dilation)  # fmt: skip

    def _output_padding(self, input: Tensor, output_size) -> tuple:
        n = self._n
        size = tuple(output_size)[-n:]
        res = []
        for d in range(n):
            n_in = input.shape[d - n]
            least = ((n_in - 1) * self.stride[d] - 2 * self.padding[d]
                     + self.dilation[d] * (self.kernel_size[d] - 1) + 1)  # fmt: skip
            extra = size[d] - least
            if not 0 <= extra < max(self.stride[d], self.dilation[d]):
                raise ValueError(
                    f"{type(self).__name__}: requested output size {size} is not reachable "
                    f"from input {tuple(input.shape)}; sizes between the minimum and minimum "
                    "+ stride - 1 are possible"
                )
            res.append(extra)
        return tuple(res)


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution over (N, C_in, L) inputs.

    Args:
        in_channels, out_channels, kernel_size, stride (1), padding (0),
        output_padding (0), groups (1), bias (True), dilation (1), padding_mode ("zeros").

    Example:
        >>> mg.nn.ConvTranspose1d(8, 3, 2, stride=2)(mg.randn(1, 8, 5)).shape
        manygrad.Size([1, 3, 10])
    """

    _n = 1


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution (the gradient of Conv2d with respect to its input).

    Args:
        in_channels, out_channels, kernel_size, stride (1), padding (0),
        output_padding (0), groups (1), bias (True), dilation (1), padding_mode ("zeros").

    Weight shape is (in_channels, out_channels / groups, kH, kW); ``forward(input,
    output_size=None)`` picks output_padding to reach ``output_size``.

    Example:
        >>> mg.nn.ConvTranspose2d(8, 3, 2, stride=2)(mg.randn(1, 8, 4, 4)).shape
        manygrad.Size([1, 3, 8, 8])
    """

    _n = 2
