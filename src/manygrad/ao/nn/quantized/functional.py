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


def avg_pool3d(input: QTensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None) -> QTensor:  # fmt: skip
    """Average pooling of a quantized (N, C, D, H, W) tensor (output keeps its qparams)."""
    return _qops.avg_pool3d(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                            divisor_override)  # fmt: skip


def adaptive_avg_pool3d(input: QTensor, output_size) -> QTensor:
    """Adaptive average pooling over the last three dims (output keeps its qparams)."""
    return _qops.adaptive_avg_pool(input, output_size, 3)


def max_pool1d(input: QTensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False) -> QTensor:  # fmt: skip
    """Max pooling of the codes of an (N, C, L) tensor (output keeps the qparams)."""
    from ....nn import functional as F

    return F.max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def celu(input: QTensor, scale: float, zero_point: int, alpha: float = 1.0) -> QTensor:
    """CELU requantized with ``scale`` / ``zero_point``."""
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: alpha cannot be 0 for CELU")
    return _qops.unary("celu", input, scale, zero_point, alpha)


def threshold(input: QTensor, threshold: float, value: float) -> QTensor:
    """``value`` where ``x <= threshold``, else ``x`` (the input's qparams)."""
    if threshold is None or value is None:
        raise ValueError("Input to 'threshold' must be specified!")
    return _qops.threshold(input, threshold, value)


def _qconv(cls_name: str, nd: int, input, weight, bias, stride, padding, dilation, groups,
           padding_mode, scale, zero_point, dtype):  # fmt: skip
    from .... import dtypes as D
    from . import conv as C
    from . import modules as M

    if padding_mode != "zeros":
        raise NotImplementedError("Only zero-padding is supported!")
    if input.dtype is not D.quint8:
        raise NotImplementedError("Only torch.quint8 is supported for activation tensor!")
    if weight.dtype is not D.qint8:
        raise NotImplementedError("Only torch.qint8 is supported for weight tensor!")
    if input.ndim != nd + 2:
        dims = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}[nd]
        raise ValueError(f"Input shape must be `{dims}`!")
    cls = getattr(C, cls_name, None) or getattr(M, cls_name)
    m = cls(input.shape[1], weight.shape[0], tuple(weight.shape[2:]), stride, padding, dilation,
            groups, bias is not None)  # fmt: skip
    m.set_weight_bias(weight, bias)
    m.scale, m.zero_point = float(scale), int(zero_point)
    return m(input)


def conv1d(input: QTensor, weight: QTensor, bias=None, stride=1, padding=0, dilation=1,
           groups=1, padding_mode="zeros", scale=1.0, zero_point=0, dtype=None) -> QTensor:  # fmt: skip
    """1-d convolution of a quint8 (N, C, L) tensor with a qint8 weight and float bias, the
    output quantized with ``scale`` / ``zero_point``."""
    return _qconv("Conv1d", 1, input, weight, bias, stride, padding, dilation, groups,
                  padding_mode, scale, zero_point, dtype)  # fmt: skip


def conv2d(input: QTensor, weight: QTensor, bias=None, stride=1, padding=0, dilation=1,
           groups=1, padding_mode="zeros", scale=1.0, zero_point=0, dtype=None) -> QTensor:  # fmt: skip
    """2-d convolution of a quint8 (N, C, H, W) tensor with a qint8 weight and float bias,
    the output quantized with ``scale`` / ``zero_point``.

    Example:
        >>> y = conv2d(xq, wq, b, padding=1, scale=0.1, zero_point=64)
    """
    return _qconv("Conv2d", 2, input, weight, bias, stride, padding, dilation, groups,
                  padding_mode, scale, zero_point, dtype)  # fmt: skip


def conv3d(input: QTensor, weight: QTensor, bias=None, stride=1, padding=0, dilation=1,
           groups=1, padding_mode="zeros", scale=1.0, zero_point=0, dtype=None) -> QTensor:  # fmt: skip
    """3-d convolution of a quint8 (N, C, D, H, W) tensor with a qint8 weight and float
    bias, the output quantized with ``scale`` / ``zero_point``."""
    return _qconv("Conv3d", 3, input, weight, bias, stride, padding, dilation, groups,
                  padding_mode, scale, zero_point, dtype)  # fmt: skip


def linear(input: QTensor, weight: QTensor, bias=None, scale=None, zero_point=None) -> QTensor:
    """``x W^T + b`` of a quint8 input and qint8 weight, quantized with ``scale`` /
    ``zero_point`` (default: the input's)."""
    from . import modules as M

    m = M.Linear(weight.shape[1], weight.shape[0], bias is not None, dtype=weight.dtype)
    m.set_weight_bias(weight, bias)
    m.scale = float(input.q_scale() if scale is None else scale)
    m.zero_point = int(input.q_zero_point() if zero_point is None else zero_point)
    return m(input)


def interpolate(input: QTensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners=None) -> QTensor:  # fmt: skip
    """Resize a quantized tensor ("nearest" or "bilinear"), keeping its qparams."""
    from ....nn import functional as F

    if not getattr(input, "is_quantized", False):
        raise ValueError("Input to 'quantized.interpolate' must be quantized!")
    return F.interpolate(input, size, scale_factor, mode, align_corners)


def upsample(input: QTensor, size=None, scale_factor=None, mode: str = "nearest",
             align_corners=None) -> QTensor:  # fmt: skip
    """Deprecated name of ``interpolate``."""
    import warnings

    warnings.warn("nn.quantized.functional.upsample is deprecated. Use "
                  "nn.quantized.functional.interpolate instead.", stacklevel=2)  # fmt: skip
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_bilinear(input: QTensor, size=None, scale_factor=None) -> QTensor:
    """Deprecated: ``interpolate(..., mode="bilinear", align_corners=True)``."""
    import warnings

    warnings.warn("nn.quantized.functional.upsample_bilinear is deprecated. Use "
                  "nn.quantized.functional.interpolate instead.", stacklevel=2)  # fmt: skip
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def upsample_nearest(input: QTensor, size=None, scale_factor=None) -> QTensor:
    """Deprecated: ``interpolate(..., mode="nearest")``."""
    import warnings

    warnings.warn("nn.quantized.functional.upsample_nearest is deprecated. Use "
                  "nn.quantized.functional.interpolate instead.", stacklevel=2)  # fmt: skip
    return interpolate(input, size, scale_factor, mode="nearest")


__all__ = ["adaptive_avg_pool2d", "adaptive_avg_pool3d", "avg_pool2d", "avg_pool3d", "celu",
           "clamp", "conv1d", "conv2d", "conv3d", "elu", "hardsigmoid", "hardswish", "hardtanh",
           "interpolate", "leaky_relu", "linear", "max_pool1d", "max_pool2d", "relu6",
           "threshold", "upsample", "upsample_bilinear", "upsample_nearest"]  # fmt: skip
