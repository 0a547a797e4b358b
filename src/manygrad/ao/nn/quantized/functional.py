"""``torch.ao.nn.quantized.functional``: functional forms of the quantized ops (quantized
tensors in and out; see ``ao._qops`` for the numerics).

Example:
    >>> y = hardswish(xq, scale=0.05, zero_point=10)
"""

from __future__ import annotations

from ... import _qops
from ...qtensor import QTensor


def avg_pool2d(input: QTensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None) -> QTensor:  # fmt: skip
    """Average pooling of a quantized (N, C, H, W) tensor (output keeps its qparams)."""
    return _qops.avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                            divisor_override)  # fmt: skip


def adaptive_avg_pool2d(input: QTensor, output_size) -> QTensor:
    """Adaptive average pooling of a quantized tensor (output keeps its qparams)."""
    return _qops.adaptive_avg_pool2d(input, output_size)


def hardswish(input: QTensor, scale: float, zero_point: int) -> QTensor:
    """``x * relu6(x + 3) / 6`` requantized with ``scale`` / ``zero_point``."""
    return _qops.unary("hardswish", input, scale, zero_point)


def leaky_relu(input: QTensor, negative_slope: float = 0.01, inplace: bool = False,
               scale: float | None = None, zero_point: int | None = None) -> QTensor:  # fmt: skip
    """Leaky ReLU, requantized with ``scale`` / ``zero_point`` (default: the input's)."""
    return _qops.unary("leaky_relu", input, scale, zero_point, negative_slope)


def elu(input: QTensor, scale: float, zero_point: int, alpha: float = 1.0) -> QTensor:
    """ELU requantized with ``scale`` / ``zero_point``."""
    return _qops.unary("elu", input, scale, zero_point, alpha)


def hardsigmoid(input: QTensor, inplace: bool = False) -> QTensor:
    """``relu6(x + 3) / 6``, with the input's qparams."""
    return _qops.unary("hardsigmoid", input)


def clamp(input: QTensor, min_, max_) -> QTensor:
    """Codes clipped at the codes of ``min_`` and ``max_``."""
    return _qops.clamp(input, min_, max_)


def hardtanh(input: QTensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> QTensor:  # fmt: skip
    """``clamp(x, min_val, max_val)`` on the codes."""
    return _qops.clamp(input, min_val, max_val)


def relu6(input: QTensor, inplace: bool = False) -> QTensor:
    """``clamp(x, 0, 6)`` on the codes."""
    return _qops.clamp(input, 0.0, 6.0)


def max_pool2d(input: QTensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False) -> QTensor:  # fmt: skip
    """Max pooling of the codes (output keeps the qparams)."""
    from ....nn import functional as F

    return F.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "clamp", "elu", "hardsigmoid", "hardswish",
           "hardtanh", "leaky_relu", "max_pool2d", "relu6"]  # fmt: skip
