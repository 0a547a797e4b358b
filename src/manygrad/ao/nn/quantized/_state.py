"""State dicts of quantized modules, with PyTorch's keys.

- ``Conv*``: ``weight`` (the quantized weight), ``bias``, ``scale`` (0-d float32),
  ``zero_point`` (0-d int64).
- ``Linear`` (static and dynamic): ``scale``, ``zero_point``, then its ``_packed_params``
  child: ``_packed_params.dtype`` (``torch.qint8``) and ``_packed_params._packed_params``, the
  tuple ``(weight, bias)``. The older layout (``weight`` / ``bias`` beside ``scale``) loads
  too.

Example:
    >>> sd = quantized_model.state_dict()     # sd["fc._packed_params._packed_params"][0]
    >>> fresh_converted_model.load_state_dict(sd)
"""

from __future__ import annotations

import warnings

from .... import backend
from .... import dtypes as D
from ....creation import tensor
from ....nn import Module
from ....tensor import Tensor
from ...qtensor import QTensor


def _pop(state_dict, key: str, missing_keys: list, strict: bool):
    if key in state_dict:
        return state_dict.pop(key)
    if strict:
        missing_keys.append(key)
    return None


def check_weight(mod: Module, key: str, w, shape: tuple, error_msgs: list) -> bool:
    """Whether ``w`` can be ``mod``'s quantized weight; else an error naming ``key``."""
    if not isinstance(w, QTensor):
        got = getattr(w, "dtype", type(w).__name__)
        error_msgs.append(
            f'While copying the parameter named "{key}": a quantized {mod._get_name()} needs a '
            f"quantized weight (torch.qint8), got {got}; load the state dict of a converted "
            "model here, or load float weights into the float model before convert"
        )
        return False
    if tuple(w.shape) != tuple(shape):
        error_msgs.append(
            f"size mismatch for {key}: copying a param with shape {tuple(w.shape)} from "
            f"checkpoint, the shape in current model is {tuple(shape)}."
        )
        return False
    return True


_FP16_MAX = 65504.0


def fp16_weight(w: Tensor) -> Tensor:
    """``w`` rounded to float16 (clamped to its range first, as fbgemm's packing) and held as
    float32, the weight of float16 dynamic modules."""
    if not isinstance(w, Tensor) or w.is_quantized or not w.is_floating_point():
        raise TypeError(f"a float16 dynamic module needs a float weight, got "
                        f"{getattr(w, 'dtype', type(w).__name__)}")  # fmt: skip
    a = w.detach()._data.astype("float32")
    xp = backend.array_module(a)
    if a.size and float(xp.abs(a).max()) > _FP16_MAX:
        warnings.warn("Found weights outside the float16 range; they are clamped to "
                      "[-65504, 65504]", stacklevel=3)  # fmt: skip
    with backend.quiet_float_errors():
        a = xp.clip(a, -_FP16_MAX, _FP16_MAX).astype(xp.float16).astype(xp.float32)
    return Tensor._wrap(a, w._device)


def _as_bias(b):
    if b is None or isinstance(b, Tensor):
        return b
    raise TypeError(f"a quantized module's bias must be a float tensor or None, got {type(b)}")


class QParamsState:
    """``scale`` / ``zero_point`` entries (0-d tensors) in and out of state dicts."""

    def _save_qparams(self, destination, prefix: str) -> None:
        destination[prefix + "scale"] = tensor(float(self.scale))
        destination[prefix + "zero_point"] = tensor(int(self.zero_point))

    def _load_qparams(self, state_dict, prefix, missing_keys, strict) -> None:
        scale = _pop(state_dict, prefix + "scale", missing_keys, strict)
        zero_point = _pop(state_dict, prefix + "zero_point", missing_keys, strict)
        if scale is not None:
            self.scale = float(scale)
        if zero_point is not None:
            self.zero_point = int(zero_point)


class QParamsOnlyState(QParamsState):
    """Modules whose state is only ``scale`` / ``zero_point`` (QFunctional, Hardswish, ...)."""

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        self._save_qparams(destination, prefix)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:  # fmt: skip
        self._load_qparams(state_dict, prefix, missing_keys, strict)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)  # fmt: skip


class WeightBiasState(QParamsState):
    """The Conv layout: ``weight``, ``bias``, ``scale``, ``zero_point``."""

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "weight"] = self.weight()
        destination[prefix + "bias"] = self.bias()
        self._save_qparams(destination, prefix)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:  # fmt: skip
        w = _pop(state_dict, prefix + "weight", missing_keys, strict)
        has_bias = prefix + "bias" in state_dict
        b = _pop(state_dict, prefix + "bias", missing_keys, strict)
        if w is not None and check_weight(self, prefix + "weight", w, self.weight().shape,
                                          error_msgs):  # fmt: skip
            self.set_weight_bias(w, _as_bias(b) if has_bias else self.bias())
        self._load_qparams(state_dict, prefix, missing_keys, strict)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)  # fmt: skip


class LinearPackedParams(Module):
    """The ``_packed_params`` child of quantized ``Linear``: its weight, bias and dtype."""

    _version = 3

    def __init__(self, dtype=D.qint8):
        super().__init__()
        self.dtype = dtype
        self._weight, self._bias = None, None

    def set_weight_bias(self, weight: QTensor, bias: Tensor | None) -> None:
        if self.dtype is D.float16:  # NOTE: float16 values, kept (and given back) as float32
            weight = fp16_weight(weight)
        self._weight = weight
        self._bias = None if bias is None else bias.detach().float()

    def _weight_bias(self):
        return self._weight, self._bias

    def forward(self, x):
        return x

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "dtype"] = self.dtype
        destination[prefix + "_packed_params"] = self._weight_bias()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:  # fmt: skip
        dtype = _pop(state_dict, prefix + "dtype", missing_keys, strict)
        if dtype is not None:
            self.dtype = D.from_any(dtype)
        wb = _pop(state_dict, prefix + "_packed_params", missing_keys, strict)
        key = prefix + "_packed_params"
        if wb is not None:
            if not (isinstance(wb, (tuple, list)) and len(wb) == 2):
                error_msgs.append(f"{key}: expected the tuple (weight, bias), got {type(wb)}")
            elif self.dtype is D.float16 or check_weight(self, key, wb[0], self._weight.shape,
                                                         error_msgs):  # fmt: skip
                self.set_weight_bias(wb[0], _as_bias(wb[1]))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)  # fmt: skip

    def _get_name(self) -> str:
        return "LinearPackedParams"


class PackedLinearState(QParamsState):
    """The Linear layout: ``scale``, ``zero_point`` and the ``_packed_params`` child."""

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        self._save_qparams(destination, prefix)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:  # fmt: skip
        if prefix + "weight" in state_dict:  # NOTE: version 1 kept them beside scale
            pp = prefix + "_packed_params."
            state_dict[pp + "_packed_params"] = (state_dict.pop(prefix + "weight"),
                                                 state_dict.pop(prefix + "bias", None))  # fmt: skip
            state_dict.setdefault(pp + "dtype", self._packed_params.dtype)
        self._load_qparams(state_dict, prefix, missing_keys, strict)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)  # fmt: skip

    def __repr__(self) -> str:
        # NOTE: PyTorch hides the _packed_params child in the module's repr
        return f"{self._get_name()}({self.extra_repr()})"
