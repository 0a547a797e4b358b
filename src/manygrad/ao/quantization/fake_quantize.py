"""``FakeQuantize``: quantization-aware training's stand-in for quantization, an observer
plus ``fake_quantize_per_tensor_affine`` / ``_per_channel_affine`` (straight-through
gradient), as ``torch.ao.quantization.fake_quantize``.

Example:
    >>> fq = default_fake_quant()
    >>> y = fq(mg.randn(4, 8, requires_grad=True))  # on the quint8 grid, gradient 1 inside
"""

from __future__ import annotations

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
from .observer import (
    FixedQParamsObserver,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    _with_args,
    default_fixed_qparams_range_0to1_observer,
    default_fixed_qparams_range_neg1to1_observer,
)

_PER_CHANNEL = (per_channel_affine, per_channel_symmetric, per_channel_affine_float_qparams)


class FakeQuantizeBase(Module):
    """The on/off switches shared by fake-quantize modules (uint8 buffers, as in PyTorch)."""

    with_args = classmethod(_with_args)

    def __init__(self):
        super().__init__()
        self.register_buffer("fake_quant_enabled", tensor([1], dtype=D.uint8))
        self.register_buffer("observer_enabled", tensor([1], dtype=D.uint8))

    def enable_fake_quant(self, enabled: bool = True) -> None:
        self.fake_quant_enabled[0] = 1 if enabled else 0

    def disable_fake_quant(self) -> None:
        self.enable_fake_quant(False)

    def enable_observer(self, enabled: bool = True) -> None:
        self.observer_enabled[0] = 1 if enabled else 0

    def disable_observer(self) -> None:
        self.enable_observer(False)


def _resized(mod: Module, name: str, like) -> None:
    """Buffer ``name`` of ``mod`` given ``like``'s shape (its values come next)."""
    buf = getattr(mod, name)
    if tuple(buf.shape) != tuple(like.shape):
        from ... import creation

        setattr(mod, name, creation.zeros(*like.shape, dtype=buf.dtype, device=buf.device))


class FakeQuantize(FakeQuantizeBase):
    """Observe ``x`` (while the observer is on), then round it to the grid the observer's
    qparams give (while fake quantization is on).

    Args:
        observer: the observer class or ``with_args`` factory (default
            MovingAverageMinMaxObserver).
        quant_min, quant_max: the integer range (default: the dtype's).
        observer_kwargs: passed to the observer (dtype, qscheme, reduce_range, ch_axis, ...).
    """

    def __init__(self, observer=MovingAverageMinMaxObserver, quant_min=None, quant_max=None,
                 is_dynamic=False, **observer_kwargs):  # fmt: skip
        super().__init__()
        if quant_min is not None and quant_max is not None:
            if quant_min > quant_max:
                raise ValueError(
                    f"FakeQuantize: quant_min ({quant_min}) must be <= quant_max ({quant_max})"
                )
            observer_kwargs.update(quant_min=quant_min, quant_max=quant_max)
        observer_kwargs["is_dynamic"] = is_dynamic
        self.activation_post_process = observer(**observer_kwargs)
        obs = self.activation_post_process
        self.quant_min, self.quant_max = obs.quant_min, obs.quant_max
        self.is_dynamic = obs.is_dynamic
        float_zp = obs.qscheme is per_channel_affine_float_qparams
        self.register_buffer("scale", tensor([1.0]))
        self.register_buffer("zero_point", tensor([0], dtype=D.float32 if float_zp else D.int32))
        self.dtype, self.qscheme = obs.dtype, obs.qscheme
        self.ch_axis = getattr(obs, "ch_axis", -1)
        self.is_per_channel = self.qscheme in _PER_CHANNEL

    def calculate_qparams(self):
        return self.activation_post_process.calculate_qparams()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):  # fmt: skip
        # NOTE: per-channel qparams of a trained checkpoint load into the fresh (1,) buffers
        # (they are resized here, then copied by the default loading), as PyTorch's
        for name in ("scale", "zero_point"):
            key = prefix + name
            if key in state_dict:
                _resized(self, name, state_dict[key])
            elif strict:
                missing_keys.append(key)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        import manygrad as ops

        if int(self.observer_enabled[0]) == 1:
            self.activation_post_process(x.detach())
            scale, zero_point = self.calculate_qparams()
            # NOTE: buffers are replaced, not resized in place: per-channel shapes change once
            self.scale = scale.to(D.float32)
            self.zero_point = zero_point.to(self.zero_point.dtype)
        if int(self.fake_quant_enabled[0]) == 1:
            if self.is_per_channel:
                x = ops.fake_quantize_per_channel_affine(
                    x, self.scale, self.zero_point, self.ch_axis, self.quant_min, self.quant_max
                )
            else:
                x = ops.fake_quantize_per_tensor_affine(
                    x, self.scale, self.zero_point, self.quant_min, self.quant_max
                )
        return x

    def extra_repr(self) -> str:
        return (f"fake_quant_enabled={self.fake_quant_enabled}, observer_enabled="
                f"{self.observer_enabled}, quant_min={self.quant_min}, quant_max="
                f"{self.quant_max}, dtype={self.dtype}, qscheme={self.qscheme}, ch_axis="
                f"{self.ch_axis}, scale={self.scale}, zero_point={self.zero_point}")  # fmt: skip


class FixedQParamsFakeQuantize(FakeQuantize):
    """Fake quantization with fixed qparams (a ``FixedQParamsObserver``'s), per tensor: the
    output grid of sigmoid-like layers during quantization-aware training.

    Example:
        >>> fq = default_fixed_qparams_range_0to1_fake_quant()
    """

    def __init__(self, observer):
        super().__init__(observer=observer)
        if type(self.activation_post_process) is not FixedQParamsObserver:
            raise AssertionError(f"{type(self).__name__}'s observer must be a "
                                 "FixedQParamsObserver")  # fmt: skip
        self._observer_ctr = observer
        self.scale = self.activation_post_process.scale
        self.zero_point = self.activation_post_process.zero_point
        if self.qscheme not in (per_tensor_affine, per_tensor_symmetric):
            raise AssertionError("Only per tensor quantization is supported "
                                 f"FixedQParamsFakeQuantize module, got qscheme:{self.qscheme}")  # fmt: skip

    def calculate_qparams(self):
        return self.scale, self.zero_point

    def extra_repr(self) -> str:
        obs = self.activation_post_process
        return (f"fake_quant_enabled={self.fake_quant_enabled}, observer_enabled="
                f"{self.observer_enabled}, scale={self.scale}, zero_point={self.zero_point}, "
                f"dtype={self.dtype}, quant_min={obs.quant_min}, quant_max={obs.quant_max}, "
                f"qscheme={self.qscheme}")  # fmt: skip


class FusedMovingAvgObsFakeQuantize(FakeQuantize):
    """``FakeQuantize`` whose observation, qparams and rounding run as PyTorch's fused kernel
    (``fused_moving_avg_obs_fake_quant``): the fake quantizer of the default QAT qconfigs.
    Its observer must be a ``MovingAverageMinMaxObserver`` or
    ``MovingAveragePerChannelMinMaxObserver``; ``convert`` reads the observer's qparams.

    Example:
        >>> fq = default_fused_act_fake_quant()
        >>> y = fq(x)     # x observed, then rounded to the quint8 grid
    """

    def __init__(self, observer=MovingAverageMinMaxObserver, quant_min: int = 0,
                 quant_max: int = 255, **observer_kwargs):  # fmt: skip
        super().__init__(observer, quant_min, quant_max, **observer_kwargs)
        obs = self.activation_post_process
        if not isinstance(obs, (MovingAverageMinMaxObserver,
                                MovingAveragePerChannelMinMaxObserver)):  # fmt: skip
            raise AssertionError("Fused observer+fake_quant module only works with "
                                 "MovingAverageMinMaxObserver")  # fmt: skip
        self.register_buffer("fake_quant_enabled", tensor([1], dtype=D.int64))
        self.register_buffer("observer_enabled", tensor([1], dtype=D.int64))
        self.is_symmetric_quant = obs.qscheme in (per_tensor_symmetric, per_channel_symmetric)

    def forward(self, x: Tensor) -> Tensor:
        from ._fused_fq import fused_moving_avg_obs_fake_quant

        obs = self.activation_post_process
        return fused_moving_avg_obs_fake_quant(
            x, self.observer_enabled, self.fake_quant_enabled, obs.min_val, obs.max_val,
            self.scale, self.zero_point, obs.averaging_constant, obs.quant_min, obs.quant_max,
            self.ch_axis, self.is_per_channel, self.is_symmetric_quant,
        )  # fmt: skip

    def extra_repr(self) -> str:
        obs = self.activation_post_process
        return (f"fake_quant_enabled={self.fake_quant_enabled}, observer_enabled="
                f"{self.observer_enabled}, scale={self.scale}, zero_point={self.zero_point}, "
                f"dtype={self.dtype}, quant_min={obs.quant_min}, quant_max={obs.quant_max}, "
                f"qscheme={self.qscheme}, reduce_range={obs.reduce_range}")  # fmt: skip


def _apply_to(name: str):
    def fn(mod: Module) -> None:
        if isinstance(mod, FakeQuantizeBase):
            getattr(mod, name)()

    fn.__name__ = name
    fn.__doc__ = f"``model.apply({name})``: calls ``{name}()`` on each FakeQuantize module."
    return fn


disable_fake_quant = _apply_to("disable_fake_quant")
enable_fake_quant = _apply_to("enable_fake_quant")
disable_observer = _apply_to("disable_observer")
enable_observer = _apply_to("enable_observer")

default_fake_quant = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=D.quint8,
    qscheme=per_tensor_affine, reduce_range=True,
)  # fmt: skip
default_weight_fake_quant = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=D.qint8,
    qscheme=per_tensor_symmetric, reduce_range=False,
)  # fmt: skip
default_per_channel_weight_fake_quant = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
    dtype=D.qint8, qscheme=per_channel_symmetric, reduce_range=False, ch_axis=0,
)  # fmt: skip
default_fixed_qparams_range_0to1_fake_quant = FixedQParamsFakeQuantize.with_args(
    observer=default_fixed_qparams_range_0to1_observer
)
default_fixed_qparams_range_neg1to1_fake_quant = FixedQParamsFakeQuantize.with_args(
    observer=default_fixed_qparams_range_neg1to1_observer
)
default_symmetric_fixed_qparams_fake_quant = default_fixed_qparams_range_neg1to1_fake_quant
default_affine_fixed_qparams_fake_quant = default_fixed_qparams_range_0to1_fake_quant

default_fused_act_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=D.quint8
)
default_fused_wt_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=D.qint8,
    qscheme=per_tensor_symmetric,
)  # fmt: skip
default_fused_per_channel_wt_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
    dtype=D.qint8, qscheme=per_channel_symmetric,
)  # fmt: skip
fused_wt_fake_quant_range_neg_127_to_127 = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=-127, quant_max=127, dtype=D.qint8,
    qscheme=per_tensor_symmetric, eps=2**-12,
)  # fmt: skip
fused_per_channel_wt_fake_quant_range_neg_127_to_127 = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, quant_min=-127, quant_max=127,
    dtype=D.qint8, qscheme=per_channel_symmetric, eps=2**-12,
)  # fmt: skip
default_embedding_fake_quant = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, qscheme=per_channel_affine_float_qparams,
    dtype=D.quint8, quant_min=0, quant_max=255, ch_axis=0, averaging_constant=1,
)  # fmt: skip
default_embedding_fake_quant_4bit = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, qscheme=per_channel_affine_float_qparams,
    ch_axis=0, dtype=D.quint4x2, averaging_constant=1,
)  # fmt: skip
