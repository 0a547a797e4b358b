"""3-d convolutions for video and volumes: ``Conv3d``, ``ConvTranspose3d``."""

from __future__ import annotations

from ..ops import conv3d as C3
from ..tensor import Tensor
from .conv import _ConvNd, _ConvTransposeNd


class Conv3d(_ConvNd):
    """3-D convolution over (N, C_in, D, H, W) inputs.

    Args:
        in_channels, out_channels, kernel_size, stride (1), padding (0, or "same"/"valid"),
        dilation (1), groups (1), bias (True), padding_mode ("zeros", "reflect",
        "replicate", "circular").

    Weight (out_channels, in_channels / groups, kD, kH, kW), initialised as PyTorch's.

    Example:
        >>> mg.nn.Conv3d(3, 8, 3, padding=1)(mg.randn(1, 3, 4, 8, 8)).shape
        manygrad.Size([1, 8, 4, 8, 8])
    """

    _n = 3

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, 0, device, dtype)  # fmt: skip

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(input, self.weight, self.bias)

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """This layer's convolution with the given weight and bias (padding mode applied)."""
        x, pad = self._padded(input)
        return C3.conv3d(x, weight, bias, self.stride, pad, self.dilation, self.groups)


class ConvTranspose3d(_ConvTransposeNd):
    """3-D transposed convolution (the gradient of Conv3d with respect to its input).

    Args:
        in_channels, out_channels, kernel_size, stride (1), padding (0),
        output_padding (0), groups (1), bias (True), dilation (1), padding_mode ("zeros").

    Example:
        >>> mg.nn.ConvTranspose3d(8, 3, 2, stride=2)(mg.randn(1, 8, 2, 4, 4)).shape
        manygrad.Size([1, 3, 4, 8, 8])
    """

    _n = 3

    def forward(self, input: Tensor, output_size=None) -> Tensor:
        out_pad = self.output_padding
        if output_size is not None:
            out_pad = self._output_padding(input, output_size)
        return C3.conv_transpose3d(input, self.weight, self.bias, self.stride, self.padding,
                                   out_pad, self.groups, self.dilation)  # fmt: skip
