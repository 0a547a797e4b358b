"""Pooling layers: ``MaxPool1d/2d``, ``AvgPool1d/2d``, ``AdaptiveAvgPool1d/2d``."""

from __future__ import annotations

from .. import ops as F
from ..tensor import Tensor
from .module import Module


class MaxPool2d(Module):
    """The maximum over each ``kernel_size`` window of (N, C, H, W) inputs.

    Args:
        kernel_size: window size (int or pair).
        stride: step between windows (default: kernel_size).
        padding: implicit -inf padding on each side (default 0).
        dilation: spacing of window elements (default 1).
        return_indices: also return the argmax positions (default False).
        ceil_mode: round the output size up (default False).

    Example:
        >>> mg.nn.MaxPool2d(2)(mg.randn(1, 3, 8, 8)).shape
        manygrad.Size([1, 3, 4, 4])
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode,
                            return_indices=self.return_indices)  # fmt: skip

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class AvgPool2d(Module):
    """The mean over each ``kernel_size`` window of (N, C, H, W) inputs.

    Args:
        kernel_size: window size (int or pair).
        stride: step between windows (default: kernel_size).
        padding: implicit zero padding on each side (default 0).
        ceil_mode: round the output size up (default False).
        count_include_pad: count padded zeros in the mean (default True).
        divisor_override: divide by this instead of the window size (default None).

    Example:
        >>> mg.nn.AvgPool2d(2)(mg.randn(1, 3, 8, 8)).shape
        manygrad.Size([1, 3, 4, 4])
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None) -> None:  # fmt: skip
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)  # fmt: skip

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size, whatever the input's H and W.

    Args:
        output_size: (H_out, W_out), or one int for both; None keeps that input dim.

    Example:
        >>> mg.nn.AdaptiveAvgPool2d(1)(mg.randn(2, 8, 5, 7)).shape
        manygrad.Size([2, 8, 1, 1])
    """

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class MaxPool1d(MaxPool2d):
    """The maximum over each ``kernel_size`` window of (N, C, L) inputs.

    Args: as ``MaxPool2d`` (ints).

    Example:
        >>> mg.nn.MaxPool1d(2)(mg.randn(1, 3, 8)).shape
        manygrad.Size([1, 3, 4])
    """

    def forward(self, input: Tensor):
        return F.max_pool1d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode,
                            return_indices=self.return_indices)  # fmt: skip


class AvgPool1d(Module):
    """The mean over each ``kernel_size`` window of (N, C, L) inputs.

    Args:
        kernel_size, stride (default kernel_size), padding (0), ceil_mode (False),
        count_include_pad (True).

    Example:
        >>> mg.nn.AvgPool1d(2)(mg.randn(1, 3, 8)).shape
        manygrad.Size([1, 3, 4])
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.kernel_size = _single(kernel_size)
        self.stride = _single(stride if stride is not None else kernel_size)
        self.padding = _single(padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)  # fmt: skip

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool1d(AdaptiveAvgPool2d):
    """Average pooling of (N, C, L) inputs to a fixed output length.

    Args:
        output_size: L_out.

    Example:
        >>> mg.nn.AdaptiveAvgPool1d(1)(mg.randn(2, 8, 5)).shape
        manygrad.Size([2, 8, 1])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.adaptive_avg_pool1d(input, self.output_size)


def _single(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


# ---------------------------------------------------------------------------- 3-d pooling
from ..ops import pool3d as _P3  # noqa: E402


class MaxPool3d(MaxPool2d):
    """The maximum over each ``kernel_size`` window of (N, C, D, H, W) inputs.

    Args: as ``MaxPool2d`` (indices are flat positions in D * H * W).

    Example:
        >>> mg.nn.MaxPool3d(2)(mg.randn(1, 3, 4, 8, 8)).shape
        manygrad.Size([1, 3, 2, 4, 4])
    """

    def forward(self, input: Tensor):
        return _P3.max_pool3d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                              self.ceil_mode, self.return_indices)  # fmt: skip


class AvgPool3d(AvgPool2d):
    """The mean over each ``kernel_size`` window of (N, C, D, H, W) inputs.

    Args: as ``AvgPool2d``.
    """

    def forward(self, input: Tensor) -> Tensor:
        return _P3.avg_pool3d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                              self.count_include_pad, self.divisor_override)  # fmt: skip


class AdaptiveAvgPool3d(AdaptiveAvgPool2d):
    """Average pooling of (N, C, D, H, W) inputs to a fixed (Do, Ho, Wo)."""

    def forward(self, input: Tensor) -> Tensor:
        return _P3.adaptive_avg_pool3d(input, self.output_size)


class _AdaptiveMaxPoolNd(Module):
    fn = ""

    def __init__(self, output_size, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, input: Tensor) -> Tensor:
        from ..ops import adaptive_max as _AM

        return getattr(_AM, self.fn)(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """Max pooling of (N, C, L) inputs to a fixed length."""

    fn = "adaptive_max_pool1d"


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """Max pooling of (N, C, H, W) inputs to a fixed (Ho, Wo).

    Example:
        >>> mg.nn.AdaptiveMaxPool2d((2, 3))(mg.randn(1, 4, 7, 9)).shape
    """

    fn = "adaptive_max_pool2d"


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """Max pooling of (N, C, D, H, W) inputs to a fixed (Do, Ho, Wo)."""

    fn = "adaptive_max_pool3d"


class _LPPoolNd(Module):
    fn = ""

    def __init__(self, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False):
        super().__init__()
        self.norm_type, self.kernel_size = norm_type, kernel_size
        self.stride, self.ceil_mode = stride, ceil_mode

    def forward(self, input: Tensor) -> Tensor:
        from ..ops import lp_pool as _LP

        return getattr(_LP, self.fn)(input, float(self.norm_type), self.kernel_size,
                                     self.stride, self.ceil_mode)  # fmt: skip

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")  # fmt: skip


class LPPool1d(_LPPoolNd):
    """Power-average pooling over (N, C, L): ``(sum x^p)^(1/p)`` per window."""

    fn = "lp_pool1d"


class LPPool2d(_LPPoolNd):
    """Power-average pooling over (N, C, H, W)."""

    fn = "lp_pool2d"


class LPPool3d(_LPPoolNd):
    """Power-average pooling over (N, C, D, H, W)."""

    fn = "lp_pool3d"


class _MaxUnpoolNd(Module):
    fn = ""
    nd = 1

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()

        def tup(v):
            return (v,) * self.nd if isinstance(v, int) else tuple(v)

        self.kernel_size = tup(kernel_size)
        self.stride = tup(stride if stride is not None else kernel_size)
        self.padding = tup(padding)

    def forward(self, input: Tensor, indices: Tensor, output_size=None) -> Tensor:
        from ..ops import unpool as _U

        return getattr(_U, self.fn)(input, indices, self.kernel_size, self.stride,
                                    self.padding, output_size)  # fmt: skip

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """The partial inverse of ``MaxPool1d``: ``forward(input, indices, output_size=None)``."""

    fn = "max_unpool1d"


class MaxUnpool2d(_MaxUnpoolNd):
    """The partial inverse of ``MaxPool2d`` (values back at their argmax, zeros elsewhere)."""

    fn = "max_unpool2d"
    nd = 2


class MaxUnpool3d(_MaxUnpoolNd):
    """The partial inverse of 3-d max pooling."""

    fn = "max_unpool3d"
    nd = 3
