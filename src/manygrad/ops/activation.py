"""More activations, named as in ``torch.nn.functional``: relu6, hardtanh, prelu, selu,
celu, mish, hardswish, hardsigmoid, glu, softsign, threshold, logsigmoid, softmin,
tanhshrink, softshrink, hardshrink.

The piecewise-linear ones are single graph nodes (``_piecewise``); the others are
compositions of differentiable ops (where, exp, softplus, ...), so their gradient, and the
gradient of that gradient, come from those ops.
"""

# ruff: noqa: A002  (`input` is PyTorch's argument name)
from __future__ import annotations

from .. import backend
from .. import dtypes as D
from ..errors import ShapeError
from ..tensor import Tensor
from . import _piecewise as _pw
from .elementwise import (
    Elu,
    _float_input,
    _tie,
    abs,
    leaky_relu,
    sigmoid,
    softplus,
    tanh,
    where,
)
from .movement import chunk
from .nn import softmax

# NOTE: the constants of Klambauer et al. (2017), as PyTorch writes them
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


@backend.on_tensor_device
def _write(input: Tensor, name: str, fn, *args) -> Tensor:
    """``fn(input, *args)``, a one-node op, written into ``input`` (``inplace=True``) with
    PyTorch's rules: a leaf that requires grad refuses, the version counter is bumped, the
    history moves to the op's node (``autograd._inplace``)."""
    return input._inplace(name, fn, *args)


def _in_place(input: Tensor, name: str, fn, *args) -> Tensor:
    """``_write`` for ``fn`` a composition of ops.

    NOTE: its nodes may save ``input``, which the write changes; when autograd records
    they get a copy of it instead (``_write`` protects the saved values of one node only)."""
    return _write(input, name, _of_copy, fn, *args)


def _of_copy(x: Tensor, fn, *args) -> Tensor:
    return fn(x.clone() if x.requires_grad else x, *args)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:  # fmt: skip
    """``x`` limited to ``[min_val, max_val]`` (gradient 0 outside, and at the bounds).

    Example: ``F.hardtanh(x, -2.0, 2.0)``
    """
    if max_val < min_val:
        raise ValueError(f"hardtanh: max_val ({max_val}) must be >= min_val ({min_val})")
    if inplace:
        return _in_place(input, "hardtanh_", _hardtanh_strict, min_val, max_val)
    if isinstance(input, Tensor) and input._data.dtype.kind in "iu" and not input.is_quantized:
        from .elementwise import clamp  # NOTE: as PyTorch: integers stay integers, the
        # bounds truncated toward zero

        return clamp(input, int(min_val), int(max_val))
    return _pw.Hardtanh.apply(_float_input(input), float(min_val), float(max_val))


def _hardtanh_strict(input: Tensor, min_val: float, max_val: float) -> Tensor:
    """``hardtanh`` as PyTorch's in-place form differentiates it (0 for NaN)."""
    if input._data.dtype.kind in "iu":
        return hardtanh(input, min_val, max_val)
    return _pw.Hardtanh.apply(_float_input(input), float(min_val), float(max_val), True)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """``min(max(x, 0), 6)``. Example: ``F.relu6(x)``"""
    return hardtanh(input, 0.0, 6.0, inplace)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """``x`` for x >= 0, ``weight * x`` otherwise; ``weight`` has 1 or C (dim 1) values.

    Example: ``F.prelu(x, mg.full((1,), 0.25))``
    """
    w = weight
    if w.ndim > 1:
        raise ShapeError(
            f"prelu: expected weight to be a scalar or 1-D tensor, got shape {tuple(w.shape)}"
        )
    if w.numel() != 1:
        # NOTE: as PyTorch's: an input of fewer than 2 dims has no channel dim (1 channel)
        c = input.shape[1] if input.ndim >= 2 else 1
        if w.numel() != c:
            fix = f"use 1 or {c} parameters" if input.ndim >= 2 else "use 1 parameter"
            raise ShapeError(
                f"prelu: weight has {w.numel()} values but the input of shape "
                f"{tuple(input.shape)} has {c} channel{'s' if c != 1 else ''}; {fix}"
            )
        if input.ndim >= 2:
            w = w.reshape((c,) + (1,) * (input.ndim - 2))
    elif input.ndim == 0:
        w = w.reshape(())
    return _tie(where(input > 0, input, w * input), input)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """Klambauer et al. (2017): ``scale * elu(x, alpha)`` with fixed constants."""
    if inplace:
        return _in_place(input, "selu_", selu)
    return Elu.apply(_float_input(input), _SELU_ALPHA, _SELU_SCALE)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """Barron (2017): ``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``."""
    if alpha == 0:
        from .linalg_extra import ArgumentError  # NOTE: a RuntimeError, as PyTorch's

        raise ArgumentError("celu: alpha must not be 0")
    if inplace:
        return _in_place(input, "celu_", celu, alpha)
    return Elu.apply(_float_input(input), alpha, 1.0, 1.0 / alpha)  # NOTE: as PyTorch's


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """Misra (2019): ``x * tanh(softplus(x))``."""
    if inplace:
        return _in_place(input, "mish_", mish)
    x = _float_input(input)
    return x * tanh(softplus(x))


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """``relu6(x + 3) / 6`` (gradient 1/6 strictly inside (-3, 3))."""
    if inplace:
        return _in_place(input, "hardsigmoid_", hardsigmoid)
    return _pw.Hardsigmoid.apply(_float_input(input))


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """Howard et al. (2019): ``x * relu6(x + 3) / 6`` (gradient 0 at -3 and 1 at 3, as
    PyTorch's)."""
    if inplace:
        return _in_place(input, "hardswish_", hardswish)
    return _pw.Hardswish.apply(_float_input(input))


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """Dauphin et al. (2017): ``a * sigmoid(b)`` of the two halves of ``dim``."""
    if input.ndim == 0 or input.shape[dim] % 2:
        raise ShapeError(
            f"glu: dim {dim} of the input of shape {tuple(input.shape)} must have an even size"
        )
    a, b = chunk(input, 2, dim)
    return a * sigmoid(b)


def softsign(input: Tensor) -> Tensor:
    """``x / (1 + |x|)``."""
    x = _float_input(input)
    return x / (abs(x) + 1)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """``x`` where ``x > threshold``, else ``value``. Example: ``F.threshold(x, 0.1, 20.0)``"""
    if inplace:
        return _in_place(input, "threshold_", _threshold, threshold, value)
    return _threshold(input, threshold, value)


def _threshold(input: Tensor, threshold: float, value: float) -> Tensor:
    if getattr(input, "is_quantized", False):  # NOTE: the input's qparams, as PyTorch's
        from ..ao import _qops

        return _qops.threshold(input, float(threshold), float(value))
    if not input.is_floating_point():
        return where(input <= threshold, value, input)
    return _pw.Threshold.apply(input, float(threshold), float(value))


def logsigmoid(input: Tensor) -> Tensor:
    """``log(sigmoid(x)) = -softplus(-x)``, stable for large ``|x|``."""
    return -softplus(-_float_input(input))


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``softmax(-x)`` along ``dim``."""
    x = _float_input(input) if dtype is None else input.to(dtype)
    if dim is None:
        dim = 0 if x.ndim in (0, 1, 3) else 1
    return softmax(-x, dim)


def tanhshrink(input: Tensor) -> Tensor:
    """``x - tanh(x)``."""
    x = _float_input(input)
    return x - tanh(x)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else 0."""
    if lambd < 0:
        from .linalg_extra import ArgumentError  # NOTE: a RuntimeError, as PyTorch's

        raise ArgumentError(f"softshrink: lambd must be >= 0, got {lambd}")
    return _pw.Softshrink.apply(_float_input(input), float(lambd))


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x`` where ``|x| > lambd``, else 0."""
    return _pw.Hardshrink.apply(_float_input(input), float(lambd))


@backend.on_tensor_device
def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
          training: bool = False, inplace: bool = False) -> Tensor:  # fmt: skip
    """Xu et al. (2015): leaky ReLU whose negative slope is drawn from U(lower, upper) per
    element in training and is ``(lower + upper) / 2`` otherwise."""
    if inplace:
        return _in_place(input, "rrelu_", rrelu, lower, upper, training)
    x = _float_input(input)
    # NOTE: x > 0, as PyTorch's kernel: the gradient at 0 is the slope
    if not training:
        return leaky_relu(x, (lower + upper) / 2)
    r = backend.generator(x._device).random(tuple(x.shape), D.float32.np)
    slope = Tensor._wrap((lower + (upper - lower) * r).astype(x._data.dtype), x._device)
    return _tie(where(x > 0, x, x * slope), x)


@backend.on_tensor_device
def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-10,
                   dim: int = -1) -> Tensor:  # fmt: skip
    """Samples of the Gumbel-softmax (concrete) distribution (Jang et al., 2016; Maddison
    et al., 2016); ``hard=True`` returns one-hot samples with the soft sample's gradient.

    Example: ``F.gumbel_softmax(logits, tau=0.5, hard=True)``
    """
    x = _float_input(logits)
    xp = backend.array_module(x._data)
    u = backend.generator(x._device).random(tuple(x.shape), D.float32.np)
    g = -xp.log(-xp.log(u.astype(x._data.dtype) + eps) + eps)  # Gumbel(0, 1) noise
    y = softmax((x + Tensor._wrap(g.astype(x._data.dtype), x._device)) / tau, dim)
    if not hard:
        return y
    d = dim % x.ndim
    idx = xp.expand_dims(y._data.argmax(axis=d), d)
    pos = xp.arange(x.shape[d]).reshape((-1,) + (1,) * (x.ndim - d - 1))
    onehot = (pos == idx).astype(y._data.dtype)
    # NOTE: straight-through: the value of the one-hot sample, the gradient of y
    return Tensor._wrap(onehot, x._device) - y.detach() + y


from ._common import public  # noqa: E402

__all__ = public(globals())
