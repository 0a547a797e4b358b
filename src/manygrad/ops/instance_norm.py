"""instance_norm (Ulyanov et al., 2016) and local_response_norm (Krizhevsky et al., 2012),
as compositions of differentiable ops (mean, var, avg_pool2d, pow). instance_norm computes
16-bit inputs in float32 and returns the input's dtype."""

# ruff: noqa: A002  (`input` is PyTorch's argument name)
from __future__ import annotations

from .. import backend
from .. import dtypes as D
from ..autograd import no_grad
from ..errors import ShapeError
from ..tensor import Tensor
from ._dtype_rules import check_norm_params
from .arrange import pad
from .elementwise import _float_input, rsqrt
from .pool import avg_pool2d
from .reduce import mean, var


def _update(buf: Tensor, new: Tensor, momentum: float) -> None:
    """``buf = (1 - momentum) * buf + momentum * new`` on the buffer's array (no graph)."""
    with no_grad():
        val = buf * (1 - momentum) + new.detach().to(buf.dtype) * momentum
    buf._data[...] = val._data


@backend.on_tensor_device
def instance_norm(input: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:  # fmt: skip
    """Normalise each channel of each sample over its spatial dims, then scale and shift.

    Args:
        input: (N, C, *spatial).
        running_mean, running_var: (C,) statistics, updated when ``use_input_stats``;
            used instead of the input's when not.
        weight, bias: per-channel affine parameters (C,) or None, of the input's dtype (or
            both float32 for a bfloat16/float16 input).
        use_input_stats: normalise with each instance's statistics (default True).
        momentum: running-statistics update factor (default 0.1). eps: default 1e-5.

    Example: ``F.instance_norm(mg.randn(2, 3, 8, 8))``
    """
    x = _float_input(input)
    if x.ndim < 3:
        raise ShapeError(f"instance_norm: expected an input of shape (N, C, *spatial), got "
                         f"{tuple(x.shape)}")  # fmt: skip
    # NOTE: weight and bias follow the normalisations' rule (the input's dtype, or float32
    # for a 16-bit input); the running statistics may have any float dtype, as in PyTorch
    check_norm_params("instance_norm", x, (("weight", weight), ("bias", bias)))
    out_dt = x.dtype
    if x.dtype.itemsize < 4:
        x = x.to(D.float32)
    c = x.shape[1]
    axes = tuple(range(2, x.ndim))
    view = (1, c) + (1,) * (x.ndim - 2)
    if use_input_stats:
        m = mean(x, axes, keepdim=True)
        v = var(x, axes, keepdim=True, correction=0)
        if running_mean is not None:
            _update(running_mean, mean(m.reshape(x.shape[0], c), 0), momentum)
        if running_var is not None:
            n = 1
            for a in axes:
                n *= x.shape[a]
            unbiased = v.reshape(x.shape[0], c) * (n / max(n - 1, 1))
            _update(running_var, mean(unbiased, 0), momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm: use_input_stats=False needs running_mean and "
                             "running_var")  # fmt: skip
        m, v = running_mean.to(x.dtype).reshape(view), running_var.to(x.dtype).reshape(view)
    y = (x - m) * rsqrt(v + eps)
    if weight is not None:
        y = y * weight.to(x.dtype).reshape(view)
    if bias is not None:
        y = y + bias.to(x.dtype).reshape(view)
    return y if y.dtype is out_dt else y.to(out_dt)


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:  # fmt: skip
    """``x / (k + alpha * mean of x^2 over size neighbouring channels) ** beta``.

    Example: ``F.local_response_norm(mg.randn(2, 8, 5, 5), size=3)``
    """
    x = _float_input(input)
    if x.ndim < 3:
        raise ShapeError(f"local_response_norm: expected an input of 3 or more dims (N, C, "
                         f"...), got shape {tuple(x.shape)}")  # fmt: skip
    n, c = x.shape[0], x.shape[1]
    sq = (x * x).reshape(n, 1, c, -1)
    sq = pad(sq, (0, 0, size // 2, (size - 1) // 2))
    div = avg_pool2d(sq, (size, 1), stride=1).reshape(tuple(x.shape))
    return x / (div * alpha + k) ** beta


from ._common import public  # noqa: E402

__all__ = public(globals())
