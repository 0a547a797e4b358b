"""``torch.nn.utils.memory_format``: convolution weights to a memory format (defined in
``manygrad.nn.utils``)."""

from . import (  # noqa: F401
    convert_conv2d_weight_memory_format,
    convert_conv3d_weight_memory_format,
)

__all__ = ["convert_conv2d_weight_memory_format", "convert_conv3d_weight_memory_format"]
