"""``Upsample`` (and its fixed-mode variants), ``PixelShuffle``/``PixelUnshuffle``,
``Fold``/``Unfold``: thin modules over ``mg.ops.sampling`` and ``mg.ops.fold``."""

from __future__ import annotations

from ..ops import fold as _fold
from ..ops import sampling as _sampling
from ..tensor import Tensor
from .module import Module


class Upsample(Module):
    """Resize the spatial dims: ``F.interpolate`` as a layer.

    Args:
        size: output spatial size, or scale_factor: multiplier (one of the two).
        mode: "nearest" (default), "linear", "bilinear", "bicubic", "trilinear", ...
        align_corners: for linear and cubic modes (default None, i.e. False).
        recompute_scale_factor: default None.

    Example:
        >>> mg.nn.Upsample(scale_factor=2, mode="bilinear")(mg.randn(1, 3, 4, 4)).shape
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest",
                 align_corners: bool | None = None,
                 recompute_scale_factor: bool | None = None) -> None:  # fmt: skip
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        self.scale_factor = float(scale_factor) if isinstance(scale_factor, (int, float)) else (
            scale_factor)  # fmt: skip
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input: Tensor) -> Tensor:
        return _sampling.interpolate(input, self.size, self.scale_factor, self.mode,
                                     self.align_corners,
                                     recompute_scale_factor=self.recompute_scale_factor)  # fmt: skip

    def extra_repr(self) -> str:
        what = f"scale_factor={self.scale_factor}" if self.scale_factor is not None else (
            f"size={self.size}")  # fmt: skip
        return f"{what}, mode='{self.mode}'"


class UpsamplingNearest2d(Upsample):
    """2-d nearest-neighbour upsampling."""

    def __init__(self, size=None, scale_factor=None) -> None:
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """2-d bilinear upsampling with ``align_corners=True``."""

    def __init__(self, size=None, scale_factor=None) -> None:
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class PixelShuffle(Module):
    """(*, C * r^2, H, W) -> (*, C, H * r, W * r) (Shi et al., 2016: sub-pixel convolution).

    Example:
        >>> mg.nn.PixelShuffle(3)(mg.randn(1, 9, 4, 4)).shape  # (1, 1, 12, 12)
    """

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return _fold.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(*, C, H * r, W * r) -> (*, C * r^2, H, W), the inverse of ``PixelShuffle``."""

    def __init__(self, downscale_factor: int) -> None:
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return _fold.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"


class Unfold(Module):
    """Sliding local blocks as columns (im2col): (N, C, H, W) -> (N, C * kh * kw, L).

    Args: kernel_size, dilation (1), padding (0), stride (1).
    """

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1) -> None:
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.padding, self.stride = padding, stride

    def forward(self, input: Tensor) -> Tensor:
        return _fold.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")  # fmt: skip


class Fold(Unfold):
    """Columns back into an image, summing overlaps (col2im).

    Args: output_size, kernel_size, dilation (1), padding (0), stride (1).
    """

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1) -> None:
        super().__init__(kernel_size, dilation, padding, stride)
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return _fold.fold(input, self.output_size, self.kernel_size, self.dilation,
                          self.padding, self.stride)  # fmt: skip

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, " + super().extra_repr()


class ChannelShuffle(Module):
    """Reorder channels as in ShuffleNet (Zhang et al., 2017). Args: groups."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, input: Tensor) -> Tensor:
        return _fold.channel_shuffle(input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
