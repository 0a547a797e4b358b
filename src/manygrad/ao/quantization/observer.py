"""Observers: modules that watch the values passing through and choose ``scale`` and
``zero_point`` for them (``torch.ao.quantization.observer``).

``calculate_qparams`` follows PyTorch's formulas, in float32: affine
``scale = (max(max, 0) - min(min, 0)) / (qmax - qmin)``, ``zero_point = qmin -
round_half_even(min(min, 0) / scale)`` clamped; symmetric ``scale = max(-min, max) /
((qmax - qmin) / 2)`` with zero point 0 (128 for quint8); ``scale >= eps`` always.

Example:
    >>> obs = MinMaxObserver(dtype=mg.quint8)
    >>> obs(mg.randn(8, 4))
    >>> scale, zero_point = obs.calculate_qparams()
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from ... import dtypes as D
from ...creation import tensor
from ...nn import Module
from ...tensor import Tensor
from ..qtensor import (
    per_channel_affine,
    per_channel_affine_float_qparams,
    per_channel_symmetric,
    per_tensor_affine,
    per_tensor_symmetric,
)

_EPS = float(np.finfo(np.float32).eps)


class _PartialWrapper:
    """``Observer.with_args(...)``: a factory that makes the observer with these arguments."""

    def __init__(self, p: functools.partial):
        self.p = p

    def __call__(self, *args, **kwargs):
        return self.p(*args, **kwargs)

    def with_args(self, **kwargs) -> _PartialWrapper:
        return _PartialWrapper(functools.partial(self.p, **kwargs))

    def __repr__(self) -> str:
        return f"functools.partial({self.p.func.__name__}, {self.p.keywords})"


def _with_args(cls_or_self, **kwargs) -> _PartialWrapper:
    return _PartialWrapper(functools.partial(cls_or_self, **kwargs))


def calculate_qmin_qmax(quant_min, quant_max, customized: bool, dtype, reduce_range: bool):
    """The integer range of ``dtype`` (or the custom one), halved by ``reduce_range``."""
    if customized:
        if reduce_range:
            return quant_min // 2, quant_max // 2
        return quant_min, quant_max
    ranges = {"qint8": (-128, 127), "int8": (-128, 127), "quint8": (0, 255), "uint8": (0, 255),
              "qint32": (-(2**31), 2**31 - 1), "int32": (-(2**31), 2**31 - 1),
              "int16": (-(2**15), 2**15 - 1), "uint16": (0, 2**16 - 1)}  # fmt: skip
    lo, hi = ranges.get(dtype.name, (0, 15))
    if reduce_range and dtype.name in ("qint8", "int8", "quint8", "uint8"):
        lo, hi = (-64, 63) if lo < 0 else (0, 127)
    return lo, hi


class ObserverBase(Module):
    """Base of the observers: ``forward`` records and returns its input unchanged."""

    with_args = classmethod(_with_args)

    def __init__(self, dtype=D.quint8, is_dynamic: bool = False):
        super().__init__()
        self.dtype = dtype
        self.is_dynamic = is_dynamic

    def calculate_qparams(self, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}.calculate_qparams")


class UniformQuantizationObserverBase(ObserverBase):
    """Shared range and qparam rules of the min/max observers."""

    def __init__(self, dtype=D.quint8, qscheme=per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, factory_kwargs=None, eps=_EPS,
                 is_dynamic=False, **kwargs):  # fmt: skip
        super().__init__(dtype=dtype, is_dynamic=is_dynamic)
        schemes = (per_tensor_affine, per_tensor_symmetric, per_channel_affine,
                   per_channel_symmetric, per_channel_affine_float_qparams)  # fmt: skip
        if qscheme not in schemes:
            raise ValueError(f"{type(self).__name__}: qscheme must be one of {schemes}, got "
                             f"{qscheme!r}")  # fmt: skip
        allowed = ("qint8", "quint8", "quint4x2", "qint32", "int8", "uint8", "int16", "int32",
                   "uint16")  # fmt: skip
        if getattr(dtype, "name", None) not in allowed:
            raise ValueError(f"{type(self).__name__}: dtype must be one of {allowed}, got {dtype}")
        self.qscheme, self.reduce_range = qscheme, reduce_range
        self.register_buffer("eps", tensor([eps]))
        self.has_customized_qrange = quant_min is not None and quant_max is not None
        if self.has_customized_qrange and not (quant_min <= 0 <= quant_max
                                               and quant_min < quant_max):  # fmt: skip
            raise ValueError(
                f"{type(self).__name__}: a custom range must include 0 and have quant_min < "
                f"quant_max, got [{quant_min}, {quant_max}]"
            )
        self.quant_min, self.quant_max = calculate_qmin_qmax(
            quant_min, quant_max, self.has_customized_qrange, dtype, reduce_range
        )

    def _calculate_qparams(self, min_val: Tensor, max_val: Tensor):
        if (
            min_val.numel() == 1
            and float(min_val) == float("inf")
            and float(max_val) == float("-inf")
        ):
            warnings.warn(
                "must run observer before calling calculate_qparams. Returning default values.",
                stacklevel=3,
            )
            return tensor([1.0]), tensor([0])
        import manygrad as ops

        qmin, qmax = self.quant_min, self.quant_max
        zeros = ops.zeros_like(min_val)
        min_neg, max_pos = ops.minimum(min_val, zeros), ops.maximum(max_val, zeros)
        eps = self.eps
        if self.qscheme in (per_tensor_symmetric, per_channel_symmetric):
            max_pos = ops.maximum(-min_neg, max_pos)
            scale = ops.maximum(max_pos / (float(qmax - qmin) / 2), eps)
            zp = 0
            if self.dtype.name in ("quint8", "uint8"):
                zp = (qmin + qmax) // 2 if self.has_customized_qrange else 128
            elif self.dtype.name == "uint16":
                zp = 2**15
            zero_point = ops.full(tuple(min_val.shape), zp, dtype=D.int64)
        elif self.qscheme is per_channel_affine_float_qparams:
            scale = (max_val - min_val) / float(qmax - qmin)
            scale = ops.where(scale > eps, scale, ops.ones_like(scale))
            zero_point = -1 * min_val / scale
        else:
            scale = ops.maximum((max_pos - min_neg) / float(qmax - qmin), eps)
            zero_point = qmin - ops.round(min_neg / scale).to(D.int32)
            zero_point = ops.clamp(zero_point, qmin, qmax)
        if scale.ndim == 0:
            scale = scale.reshape(1)
        if zero_point.ndim == 0:
            zero_point = zero_point.reshape(1)
        return scale, zero_point


class MinMaxObserver(UniformQuantizationObserverBase):
    """qparams from the running minimum and maximum of everything seen."""

    def __init__(self, dtype=D.quint8, qscheme=per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, factory_kwargs=None, eps=_EPS,
                 is_dynamic=False, **kwargs):  # fmt: skip
        if qscheme in (per_channel_affine, per_channel_symmetric,
                       per_channel_affine_float_qparams):  # fmt: skip
            raise NotImplementedError(
                f"{type(self).__name__}: per-channel schemes need PerChannelMinMaxObserver"
            )
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs,
                         eps, is_dynamic, **kwargs)  # fmt: skip
        self.register_buffer("min_val", tensor(float("inf")))
        self.register_buffer("max_val", tensor(float("-inf")))

    def _new_range(self, x: Tensor):
        import manygrad as ops

        lo, hi = ops.aminmax(x)
        return ops.minimum(lo, self.min_val), ops.maximum(hi, self.max_val)

    def forward(self, x_orig: Tensor) -> Tensor:
        if x_orig.numel() == 0:
            return x_orig
        x = x_orig.detach().to(self.min_val.dtype)
        lo, hi = self._new_range(x)
        self.min_val.copy_(lo)
        self.max_val.copy_(hi)
        return x_orig

    def calculate_qparams(self):
        return self._calculate_qparams(self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"

    def reset_min_max_vals(self) -> None:
        self.min_val.copy_(tensor(float("inf")))
        self.max_val.copy_(tensor(float("-inf")))


class MovingAverageMinMaxObserver(MinMaxObserver):
    """qparams from exponential moving averages of each batch's min and max
    (``averaging_constant`` the weight of the new batch, default 0.01)."""

    def __init__(self, averaging_constant=0.01, dtype=D.quint8, qscheme=per_tensor_affine,
                 reduce_range=False, quant_min=None, quant_max=None, eps=_EPS,
                 is_dynamic=False, **kwargs):  # fmt: skip
        if is_dynamic and averaging_constant != 1:
            raise NotImplementedError(
                "MovingAverageMinMaxObserver: a dynamic observer needs averaging_constant=1"
            )
        self.averaging_constant = averaging_constant
        super().__init__(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range,
                         quant_min=quant_min, quant_max=quant_max, eps=eps,
                         is_dynamic=is_dynamic, **kwargs)  # fmt: skip

    def _new_range(self, x: Tensor):
        import manygrad as ops

        lo, hi = ops.aminmax(x)
        if float(self.min_val) == float("inf") and float(self.max_val) == float("-inf"):
            return lo, hi
        c = self.averaging_constant
        return self.min_val + c * (lo - self.min_val), self.max_val + c * (hi - self.max_val)


class PerChannelMinMaxObserver(UniformQuantizationObserverBase):
    """One min/max (and so one scale and zero point) per slice along ``ch_axis``."""

    def __init__(self, ch_axis=0, dtype=D.quint8, qscheme=per_channel_affine,
                 reduce_range=False, quant_min=None, quant_max=None, factory_kwargs=None,
                 eps=_EPS, is_dynamic=False, **kwargs):  # fmt: skip
        if qscheme not in (per_channel_affine, per_channel_symmetric,
                           per_channel_affine_float_qparams):  # fmt: skip
            raise NotImplementedError(
                f"{type(self).__name__}: per-tensor schemes need MinMaxObserver"
            )
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs,
                         eps, is_dynamic, **kwargs)  # fmt: skip
        self.ch_axis = ch_axis
        self.register_buffer("min_val", tensor([]))
        self.register_buffer("max_val", tensor([]))

    def _per_channel(self, x: Tensor):
        import manygrad as ops

        y = x.detach().to(D.float32).movedim(self.ch_axis, 0).flatten(1)
        return ops.aminmax(y, dim=1)

    def forward(self, x_orig: Tensor) -> Tensor:
        if x_orig.numel() == 0:
            return x_orig
        import manygrad as ops

        lo, hi = self._per_channel(x_orig)
        if self.min_val.numel() == 0:
            self.min_val, self.max_val = lo, hi
        else:
            self.min_val, self.max_val = self._combine(lo, hi, ops)
        return x_orig

    def _combine(self, lo, hi, ops):
        return ops.minimum(lo, self.min_val), ops.maximum(hi, self.max_val)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):  # fmt: skip
        # NOTE: a trained observer's per-channel ranges load into the fresh empty buffers
        from .fake_quantize import _resized

        for name in ("min_val", "max_val"):
            if prefix + name in state_dict:
                _resized(self, name, state_dict[prefix + name])
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)  # fmt: skip

    def calculate_qparams(self):
        if self.min_val.numel() == 0:
            return self._calculate_qparams(tensor(float("inf")), tensor(float("-inf")))
        return self._calculate_qparams(self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class MovingAveragePerChannelMinMaxObserver(PerChannelMinMaxObserver):
    """Per-channel moving averages of min and max (see MovingAverageMinMaxObserver)."""

    def __init__(self, averaging_constant=0.01, ch_axis=0, dtype=D.quint8,
                 qscheme=per_channel_affine, reduce_range=False, quant_min=None,
                 quant_max=None, eps=_EPS, is_dynamic=False, **kwargs):  # fmt: skip
        self.averaging_constant = averaging_constant
        super().__init__(ch_axis=ch_axis, dtype=dtype, qscheme=qscheme,
                         reduce_range=reduce_range, quant_min=quant_min, quant_max=quant_max,
                         eps=eps, is_dynamic=is_dynamic, **kwargs)  # fmt: skip

    def _combine(self, lo, hi, ops):
        c = self.averaging_constant
        return self.min_val + c * (lo - self.min_val), self.max_val + c * (hi - self.max_val)


class PlaceholderObserver(ObserverBase):
    """Records nothing: stands for a dtype (dynamic activations; float16)."""

    def __init__(self, dtype=D.float32, custom_op_name: str = "", compute_dtype=None,
                 quant_min=None, quant_max=None, qscheme=None, eps=None,
                 is_dynamic=False):  # fmt: skip
        super().__init__(dtype=dtype, is_dynamic=is_dynamic)
        self.qscheme = per_tensor_affine if qscheme is None else qscheme
        self.quant_min, self.quant_max = quant_min, quant_max

    def forward(self, x: Tensor) -> Tensor:
        return x

    def calculate_qparams(self):
        raise RuntimeError("calculate_qparams should not be called for PlaceholderObserver")


class NoopObserver(ObserverBase):
    """Records nothing and has no qparams: passes its ``dtype`` on to ``from_float`` (float
    activations around QAT embeddings, float16 weights)."""

    def __init__(self, dtype=D.float16, custom_op_name: str = ""):
        super().__init__(dtype=dtype, is_dynamic=False)
        self.custom_op = custom_op_name

    def forward(self, x: Tensor) -> Tensor:
        return x

    def calculate_qparams(self):
        raise RuntimeError("calculate_qparams should not be called for NoopObserver")


class FixedQParamsObserver(ObserverBase):
    """Records nothing; its qparams are the fixed ``scale`` / ``zero_point`` (per tensor), as
    for outputs with a known range (sigmoid, tanh, softmax).

    Example:
        >>> FixedQParamsObserver(1.0 / 256.0, 0).calculate_qparams()
    """

    def __init__(self, scale, zero_point, dtype=D.quint8, qscheme=per_tensor_affine,
                 quant_min=0, quant_max=255, is_dynamic=False, **kwargs):  # fmt: skip
        if is_dynamic:
            raise NotImplementedError("FixedQParamsObserver doesn't support dynamic quantization")
        super().__init__(dtype=dtype, is_dynamic=is_dynamic)
        self.quant_min, self.quant_max = quant_min, quant_max
        self.register_buffer("scale", tensor([scale], dtype=D.float32))
        self.register_buffer("zero_point", tensor([zero_point], dtype=D.int32))
        self.qscheme = qscheme

    def forward(self, x: Tensor) -> Tensor:
        return x

    def calculate_qparams(self):
        return self.scale, self.zero_point


default_fixed_qparams_range_0to1_observer = FixedQParamsObserver.with_args(
    scale=1.0 / 256.0, zero_point=0, dtype=D.quint8, quant_min=0, quant_max=255
)
default_fixed_qparams_range_neg1to1_observer = FixedQParamsObserver.with_args(
    scale=2.0 / 256.0, zero_point=128, dtype=D.quint8, quant_min=0, quant_max=255
)
default_symmetric_fixed_qparams_observer = default_fixed_qparams_range_neg1to1_observer
default_affine_fixed_qparams_observer = default_fixed_qparams_range_0to1_observer

default_observer = MinMaxObserver.with_args(quant_min=0, quant_max=127)
default_placeholder_observer = PlaceholderObserver
default_weight_observer = MinMaxObserver.with_args(dtype=D.qint8, qscheme=per_tensor_symmetric)
default_per_channel_weight_observer = PerChannelMinMaxObserver.with_args(
    dtype=D.qint8, qscheme=per_channel_symmetric
)
default_dynamic_quant_observer = PlaceholderObserver.with_args(
    dtype=D.quint8, quant_min=0, quant_max=255, is_dynamic=True
)
default_float_qparams_observer = PerChannelMinMaxObserver.with_args(
    dtype=D.quint8, qscheme=per_channel_affine_float_qparams, ch_axis=0
)

# NOTE: it builds on the classes above
from ._histogram import HistogramObserver  # noqa: E402, F401
