"""Fake quantization for quantization-aware training: values rounded to an integer grid
and mapped back to floats, with the straight-through gradient.

``torch.fake_quantize_per_tensor_affine`` and ``torch.fake_quantize_per_channel_affine``:
``q = round_half_even(x / scale) + zero_point`` (``round(x / scale + zero_point)`` for a
floating zero point), ``out = (clamp(q, quant_min, quant_max) - zero_point) * scale``; the
gradient passes unchanged where ``quant_min <= q <= quant_max`` and is 0 elsewhere. Values
off the grid's integer range go where PyTorch's kernels put them: NaN to ``quant_min``,
+-inf to the nearer bound per tensor and to ``quant_min`` per channel (PyTorch's int64 cast).

Example:
    >>> w = mg.randn(16, 8, requires_grad=True)
    >>> scale = w.detach().abs().amax(1) / 127
    >>> wq = mg.fake_quantize_per_channel_affine(w, scale, mg.zeros(16, dtype=mg.int32), 0, -128, 127)
"""

from __future__ import annotations

from .. import backend
from .. import dtypes as D
from ..autograd import Function
from ..errors import DimError, DTypeError, DTypeNotImplementedError, ShapeError
from ..tensor import Tensor
from ._common import public


class _FakeQuantize(Function):
    """``out`` and the in-range mask from ``x`` (an array) and host or array qparams."""

    def forward(self, x, *, inv_scale, scale, zero_point, qmin, qmax, float_zp, int64_cast):
        xp = backend.array_module(x)
        dt = x.dtype
        v = x.astype(xp.float32) if dt.itemsize == 2 else x
        with backend.quiet_float_errors():  # NOTE: 0 * inf (a zero scale) is NaN, silently
            if float_zp:  # NOTE: a floating zero point is added before rounding
                q = xp.rint(v * inv_scale + zero_point)
            else:
                q = xp.rint(v * inv_scale) + zero_point
            if int64_cast:  # NOTE: NaN, +-inf and |q| >= 2**63 go to quant_min, as PyTorch's
                q = backend.where(xp.abs(q) < 2.0**63, q, xp.asarray(-xp.inf, q.dtype))
            self.mask = (q >= qmin) & (q <= qmax)
            # NOTE: fmax/fmin: NaN goes to quant_min (fmax ignores it), +-inf to the bounds
            out = (xp.fmin(xp.fmax(q, qmin), qmax) - zero_point) * scale
        return out.astype(dt, copy=False)

    def backward(self, g):
        xp = backend.array_module(g)
        return backend.where(self.mask, g, xp.zeros((), g.dtype))

    def backward_graph(self, g):
        from .elementwise import where

        return where(Tensor._wrap(self.mask), g, 0.0)


def _check_input(fn: str, input) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}: expected a Tensor input, got {type(input).__name__}")
    if not input.dtype.is_floating_point:
        raise DTypeNotImplementedError(
            f"{fn}: the input must be floating point (float32, float64, float16, bfloat16), "
            f"got {input.dtype}; convert it first, e.g. x.float()"
        )


def _check_range(quant_min: int, quant_max: int) -> None:
    if quant_min > quant_max:
        raise RuntimeError(
            f"`quant_min` should be less than or equal to `quant_max`. (got quant_min="
            f"{quant_min}, quant_max={quant_max})"
        )


def _no_grad_qparam(fn: str, name: str, t) -> None:
    if isinstance(t, Tensor) and t.requires_grad:
        raise RuntimeError(
            f"{fn}: not differentiable with respect to argument '{name}'; pass "
            f"{name}.detach() (learnable quantization parameters need their own gradient rule)"
        )


def fake_quantize_per_tensor_affine(
    input: Tensor, scale, zero_point, quant_min: int, quant_max: int
) -> Tensor:
    """``input`` rounded to the grid ``scale * (k - zero_point)``, ``quant_min <= k <=
    quant_max``, with the straight-through gradient (1 inside the range, 0 outside).

    Args:
        input: a floating tensor.
        scale: the grid step, a float or a one-element tensor (not differentiated).
        zero_point: the integer that stands for 0.0, an int or a one-element tensor.
        quant_min, quant_max: the integer range, e.g. -128 and 127 for int8.

    Example:
        >>> mg.fake_quantize_per_tensor_affine(mg.tensor([0.26, 9.0]), 0.1, 0, -128, 127)
        tensor([0.3000, 9.0000])
    """
    fn = "fake_quantize_per_tensor_affine"
    _check_input(fn, input)
    _no_grad_qparam(fn, "scale", scale)
    quant_min, quant_max = int(quant_min), int(quant_max)
    _check_range(quant_min, quant_max)
    # NOTE: scale and zero point are read on the host, once per call (PyTorch's tensor
    # overload reads them on the device; one value each, so the results agree)
    sc = float(scale.item() if isinstance(scale, Tensor) else scale)
    zp = int(zero_point.item() if isinstance(zero_point, Tensor) else zero_point)
    if not quant_min <= zp <= quant_max:
        raise RuntimeError(
            f"`zero_point` must be between `quant_min` and `quant_max`. (got zero_point={zp}, "
            f"range [{quant_min}, {quant_max}])"
        )
    f32 = D.float32.np
    sc32 = f32.type(sc)
    with backend.quiet_float_errors():  # NOTE: a zero scale gives an infinite inverse
        inv = f32.type(1.0) / sc32
    if input.dtype is D.float64:  # NOTE: the float32 qparams, the product in float64
        inv, sc32 = float(inv), float(sc32)
    return _FakeQuantize.apply(
        input, inv_scale=inv, scale=sc32, zero_point=zp, qmin=quant_min, qmax=quant_max,
        float_zp=False, int64_cast=False,
    )  # fmt: skip


def fake_quantize_per_channel_affine(
    input: Tensor, scale: Tensor, zero_point: Tensor, axis: int, quant_min: int, quant_max: int
) -> Tensor:
    """Fake quantization with one ``scale`` and ``zero_point`` per slice along ``axis``
    (per output channel of a weight, typically); the straight-through gradient as
    ``fake_quantize_per_tensor_affine``'s.

    Args:
        input: a floating tensor.
        scale: 1-d float32 (or bfloat16) tensor of ``input.shape[axis]`` steps.
        zero_point: 1-d int32 tensor of the same size (float32/float16: a fractional zero
            point, added before rounding).
        axis: the dim the parameters run along.
        quant_min, quant_max: the integer range.
    """
    fn = "fake_quantize_per_channel_affine"
    _check_input(fn, input)
    for name, t in (("scale", scale), ("zero_point", zero_point)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{fn}: {name} must be a 1-d Tensor, got {type(t).__name__}")
        _no_grad_qparam(fn, name, t)
    quant_min, quant_max = int(quant_min), int(quant_max)
    _check_range(quant_min, quant_max)
    if scale.dtype not in (D.float32, D.bfloat16):
        raise DTypeError(f"{fn}: scale must be float32 or bfloat16, got {scale.dtype}")
    if zero_point.dtype not in (D.int32, D.float32, D.float16):
        raise DTypeError(
            f"{fn}: zero_point must be int32, float32 or float16, got {zero_point.dtype}; "
            "convert it, e.g. zero_point.int()"
        )
    if scale.ndim != 1:
        raise ShapeError(f"{fn}: scale should be a 1-D tensor, got shape {tuple(scale.shape)}")
    if zero_point.ndim != 1 or zero_point.shape[0] != scale.shape[0]:
        raise ShapeError(
            f"{fn}: scale and zero_point need the same 1-d shape, got {tuple(scale.shape)} and "
            f"{tuple(zero_point.shape)}"
        )
    nd = input.ndim
    if not 0 <= axis < max(nd, 1):  # NOTE: PyTorch takes no negative axis here
        raise DimError(
            f"{fn}: axis {axis} is out of range for a {nd}-d input (expected in "
            f"[0, {max(nd, 1) - 1}])"
        )
    if nd == 0 or input.shape[axis] != scale.shape[0]:
        raise ShapeError(
            f"{fn}: {scale.shape[0]} scales and zero points for dim {axis} of an input of shape "
            f"{tuple(input.shape)}; give one per slice along axis"
        )
    float_zp = zero_point.dtype.is_floating_point
    zpd = zero_point._data
    if zpd.size and (float(zpd.min()) < quant_min or float(zpd.max()) > quant_max):
        raise RuntimeError(
            f"`zero_point` must be between `quant_min` and `quant_max`. (range [{quant_min}, "
            f"{quant_max}])"
        )
    xp = backend.array_module(input._data)
    shape = [1] * nd
    shape[axis] = -1
    sc = scale._data.astype(xp.float32).reshape(shape)
    with backend.quiet_float_errors():
        inv = (xp.float32(1.0) / sc).astype(xp.float32)
    zp = zpd.astype(xp.float32 if float_zp else xp.int64).reshape(shape)
    if input.dtype is D.float64:
        sc, inv = sc.astype(xp.float64), inv.astype(xp.float64)
    if not float_zp:
        zp = zp.astype(sc.dtype)
    return _FakeQuantize.apply(
        input, inv_scale=inv, scale=sc, zero_point=zp, qmin=quant_min, qmax=quant_max,
        float_zp=float_zp, int64_cast=True,
    )  # fmt: skip


__all__ = public(globals())
