"""Weight initialisation, as ``torch.nn.init``: every function fills a tensor in place.

Random values come from the generator of the tensor's own device, so initialising a GPU
model draws on the GPU and copies nothing from the host.
"""

from __future__ import annotations

import math
import warnings

from .. import backend
from .. import dtypes as D
from ..autograd import no_grad
from ..autograd._inference import check_inplace
from ..tensor import Tensor

_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "sigmoid")  # fmt: skip


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table).

    Args:
        nonlinearity: "linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu".
        param: the negative slope of leaky_relu (default 0.01).

    Example:
        >>> mg.nn.init.calculate_gain("relu")  # sqrt(2)
    """
    if nonlinearity in _LINEAR:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out): dim 1 and dim 0 times the receptive field (dims 2..)."""
    if tensor.dim() < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
        )
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= s
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _draw_dtype(t: Tensor):
    dt = t._data.dtype
    return dt if dt.kind == "f" and dt.itemsize >= 4 else D.float32.np


def _gen(t: Tensor, generator):
    return generator if generator is not None else backend.generator(t._device)


def _write(t: Tensor, values) -> Tensor:
    check_inplace(t, "init")
    with no_grad():
        xp = backend.array_module(t._data)
        xp.copyto(t._data, values, casting="unsafe")
    return t


@backend.on_tensor_device
def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    """Fill with samples of U(a, b).

    Example:
        >>> mg.nn.init.uniform_(w, -0.1, 0.1)
    """
    r = _gen(tensor, generator).random(tensor._data.shape, _draw_dtype(tensor))
    return _write(tensor, r * (b - a) + a)


@backend.on_tensor_device
def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    """Fill with samples of N(mean, std^2)."""
    r = _gen(tensor, generator).normal(tensor._data.shape, _draw_dtype(tensor))
    return _write(tensor, r * std + mean)


@backend.on_tensor_device
def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    check_inplace(tensor, "init.constant_")
    with no_grad():
        tensor._data[...] = val
    return tensor


@backend.on_tensor_device
def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


@backend.on_tensor_device
def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


@backend.on_tensor_device
def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fill a 3-, 4- or 5-d convolution weight so that the convolution passes its input
    through (channel ``d`` of each group to output ``d``, at the kernel's center)."""
    nd = tensor.dim()
    if nd not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    sizes = tuple(tensor.shape)
    if sizes[0] % groups:
        raise ValueError("dim 0 must be divisible by groups")
    per = sizes[0] // groups
    xp = backend.array_module(tensor._data)
    arr = xp.zeros(sizes, dtype=tensor._data.dtype)
    center = tuple(s // 2 for s in sizes[2:])
    for g in range(groups):
        for d in range(min(per, sizes[1])):
            arr[(g * per + d, d) + center] = 1
    return _write(tensor, arr)


@backend.on_tensor_device
def sparse_(tensor: Tensor, sparsity: float, std: float = 0.01, generator=None) -> Tensor:
    """Fill a 2-d tensor with N(0, std²) values and zero ``ceil(sparsity * rows)`` random
    rows of each column (Martens, 2010)."""
    if tensor.dim() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    rows, cols = tuple(tensor.shape)
    num_zeros = int(math.ceil(sparsity * rows))
    normal_(tensor, 0.0, std, generator=generator)
    xp = backend.array_module(tensor._data)
    arr = tensor._data.copy()
    gen = backend.generator(tensor._device)
    for col in range(cols):
        zero_rows = gen.permutation(rows)[:num_zeros]
        arr[zero_rows, col] = 0
    return _write(tensor, xp.ascontiguousarray(arr))


@backend.on_tensor_device
def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity matrix."""
    if tensor.dim() != 2:
        raise ValueError(f"eye_: only 2-D tensors are supported, got shape {tuple(tensor.shape)}")
    xp = backend.array_module(tensor._data)
    return _write(tensor, xp.eye(*tensor.shape, dtype=tensor._data.dtype))


@backend.on_tensor_device
def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot & Bengio (2010): U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    return uniform_(tensor, -a, a, generator)


@backend.on_tensor_device
def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot & Bengio (2010): N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


@backend.on_tensor_device
def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None) -> Tensor:  # fmt: skip
    """He et al. (2015): U(-bound, bound), bound = gain * sqrt(3 / fan).

    Args:
        a: negative slope of the rectifier after this layer (leaky_relu).
        mode: "fan_in" (default) keeps forward variance, "fan_out" backward variance.
        nonlinearity: name for ``calculate_gain`` (default "leaky_relu").

    Example:
        >>> mg.nn.init.kaiming_uniform_(w, a=math.sqrt(5))  # Linear's default
    """
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


@backend.on_tensor_device
def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None) -> Tensor:  # fmt: skip
    """He et al. (2015): N(0, std^2), std = gain / sqrt(fan)."""
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator)


def _default_weight_bias_(weight: Tensor, bias: Tensor | None) -> None:
    """PyTorch's default for Linear and Conv layers: weight kaiming_uniform_(a=sqrt(5)),
    bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (zeros when fan_in is 0)."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = _calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        uniform_(bias, -bound, bound)


_ERFINV_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                   0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)  # fmt: skip
_ERFINV_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
                0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)  # fmt: skip


def _erfinv(xp, x):
    """erfinv of ``x`` (float64, in (-1, 1)), in place.

    NOTE: Giles (2010), "Approximating the erfinv function": |relative error| < 4e-7, plenty
    for initial weights; written with xp so that it runs on any device. The central
    polynomial serves |x| < 0.9966; the tail one runs on the few values beyond. Blocks of
    64K values keep the temporaries in cache (9.4M values: ~4x fewer seconds than whole-array
    passes)."""
    flat = x.reshape(-1)
    block = 1 << 16
    w = xp.empty(min(flat.size, block), flat.dtype)
    p = xp.empty_like(w)
    for i in range(0, flat.size, block):
        xb = flat[i : i + block]
        wb, pb = w[: xb.size], p[: xb.size]
        xp.subtract(1.0, xb, out=wb)
        xp.add(1.0, xb, out=pb)
        wb *= pb
        xp.log(wb, out=wb)
        xp.negative(wb, out=wb)  # w = -log((1 - x)(1 + x))
        tail = xp.nonzero(wb >= 5.0)[0]
        wt = wb[tail]
        wb -= 2.5
        pb.fill(_ERFINV_CENTRAL[0])
        for c in _ERFINV_CENTRAL[1:]:
            pb *= wb
            pb += c
        if tail.size:
            wt = xp.sqrt(wt) - 3.0
            pt = xp.full(wt.shape, _ERFINV_TAIL[0], wt.dtype)
            for c in _ERFINV_TAIL[1:]:
                pt = c + pt * wt
            pb[tail] = pt
        xb *= pb
    return x


@backend.on_tensor_device
def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator=None) -> Tensor:  # fmt: skip
    """Fill with N(mean, std^2) truncated to [a, b] (inverse-CDF sampling).

    Example:
        >>> mg.nn.init.trunc_normal_(w, std=0.02)
    """

    def norm_cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn(
            "mean is more than 2 std from [a, b] in nn.init.trunc_normal_; the distribution "
            "of values may be incorrect",
            stacklevel=2,
        )
    if tensor._device.type == "meta":
        return tensor  # NOTE: a meta tensor holds no values (model skeletons build at once)
    lo, hi = norm_cdf((a - mean) / std), norm_cdf((b - mean) / std)
    xp = backend.array_module(tensor._data)
    u = _gen(tensor, generator).random(tensor._data.shape, D.float64.np)
    u = u * (2 * hi - 2 * lo) + (2 * lo - 1)
    u = xp.clip(u, -1 + 1e-12, 1 - 1e-12)
    v = _erfinv(xp, u)
    v *= std * math.sqrt(2.0)
    v += mean
    return _write(tensor, xp.clip(v, a, b))


@backend.on_tensor_device
def orthogonal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Saxe et al. (2013): a (semi-)orthogonal matrix from the QR of a Gaussian one."""
    if tensor.dim() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0 or tensor._device.type == "meta":
        return tensor  # NOTE: a meta tensor holds no values: no QR to run
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    xp = backend.array_module(tensor._data)
    flat = _gen(tensor, generator).normal((rows, cols), D.float64.np)
    if rows < cols:
        flat = flat.T
    res = xp.linalg.qr(flat)
    # NOTE: asarray re-wraps results that a namespace returns as a named tuple of raw arrays
    q, r = xp.asarray(res[0]), xp.asarray(res[1])
    q = q * xp.sign(xp.diagonal(r))
    if rows < cols:
        q = q.T
    return _write(tensor, (q * gain).reshape(tensor._data.shape))


def _make_deprecate(meth):
    """PyTorch's old name of an in-place initialiser (no trailing underscore): it warns with
    PyTorch's FutureWarning, then calls ``meth``."""
    new_name = meth.__name__
    old_name = new_name[:-1]

    def deprecated_init(*args, **kwargs):
        warnings.warn(
            f"`nn.init.{old_name}` is now deprecated in favor of `nn.init.{new_name}`.",
            FutureWarning,
            stacklevel=2,
        )
        return meth(*args, **kwargs)

    deprecated_init.__name__ = deprecated_init.__qualname__ = old_name
    deprecated_init.__doc__ = f"Deprecated: use ``nn.init.{new_name}`` (same arguments)."
    return deprecated_init


uniform = _make_deprecate(uniform_)
normal = _make_deprecate(normal_)
constant = _make_deprecate(constant_)
eye = _make_deprecate(eye_)
dirac = _make_deprecate(dirac_)
xavier_uniform = _make_deprecate(xavier_uniform_)
xavier_normal = _make_deprecate(xavier_normal_)
kaiming_uniform = _make_deprecate(kaiming_uniform_)
kaiming_normal = _make_deprecate(kaiming_normal_)
orthogonal = _make_deprecate(orthogonal_)
sparse = _make_deprecate(sparse_)

__all__ = [
    "calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_",
    "eye_", "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
    "kaiming_normal_", "orthogonal_", "sparse_", "uniform", "normal", "constant", "eye",
    "dirac", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
    "orthogonal", "sparse",
]  # fmt: skip
