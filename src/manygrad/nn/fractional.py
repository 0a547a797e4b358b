"""``FractionalMaxPool2d`` / ``FractionalMaxPool3d`` (Graham, 2014): max pooling to an
output size that need not divide the input's, over pseudo-randomly placed windows (drawn
anew at every call unless ``_random_samples`` fixes them).

Example:
    >>> pool = mg.nn.FractionalMaxPool2d(3, output_ratio=(0.7, 0.7))
    >>> pool(mg.randn(8, 16, 32, 32)).shape
    manygrad.Size([8, 16, 22, 22])
"""

from __future__ import annotations

from ..ops.fractional_pool import fractional_max_pool2d, fractional_max_pool3d
from .module import Module


class _FractionalMaxPoolNd(Module):
    _nd = 2

    def __init__(self, kernel_size, output_size=None, output_ratio=None,
                 return_indices: bool = False, _random_samples=None) -> None:  # fmt: skip
        super().__init__()
        nd = self._nd
        self.kernel_size = (
            (kernel_size,) * nd if isinstance(kernel_size, int) else tuple(kernel_size)
        )
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)
        if output_size is not None:
            output_size = (
                (output_size,) * nd if isinstance(output_size, int) else tuple(output_size)
            )
        if output_ratio is not None:
            output_ratio = ((output_ratio,) * nd if isinstance(output_ratio, (int, float))
                            else tuple(output_ratio))  # fmt: skip
        self.output_size, self.output_ratio = output_size, output_ratio
        if output_size is None and output_ratio is None:
            raise ValueError(
                f"FractionalMaxPool{nd}d requires specifying either an output size, or a "
                "pooling ratio"
            )
        if output_size is not None and output_ratio is not None:
            raise ValueError("only one of output_size and output_ratio may be specified")
        if output_ratio is not None and not all(0 < r < 1 for r in output_ratio):
            raise ValueError(f"output_ratio must be between 0 and 1 (got {output_ratio})")

    def forward(self, input):  # noqa: A002
        fn = fractional_max_pool2d if self._nd == 2 else fractional_max_pool3d
        return fn(input, self.kernel_size, self.output_size, self.output_ratio,
                  self.return_indices, _random_samples=self._random_samples)  # fmt: skip

    def extra_repr(self) -> str:
        size = f"output_size={self.output_size}" if self.output_size else (
            f"output_ratio={self.output_ratio}")  # fmt: skip
        return f"kernel_size={self.kernel_size}, {size}"


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    """Fractional max pooling over ``(H, W)`` of ``(N, C, H, W)`` or ``(C, H, W)`` inputs."""

    _nd = 2


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    """Fractional max pooling over ``(D, H, W)``."""

    _nd = 3
